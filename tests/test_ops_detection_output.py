"""detection_output against OpenVINO's ExperimentalDetectronDetectionOutput."""

import math

import numpy as np
import pytest
import torch

from segmentoly import ops
from segmentoly.ops.openvino_reference import OpenVINOOp

from helpers import assert_close, random_boxes, rows_as_set, softmax, t

OP = "ExperimentalDetectronDetectionOutput"


def attributes(num_classes, **overrides):
    return (
        dict(
            score_threshold=0.05,
            nms_threshold=0.5,
            max_delta_log_wh=math.log(1000 / 16),
            num_classes=num_classes,
            post_nms_count=100,
            max_detections_per_image=100,
            class_agnostic_box_regression=False,
            deltas_weights=[10.0, 10.0, 5.0, 5.0],
        )
        | overrides
    )


def run_both(rois, deltas, scores, **attrs):
    im_info = np.array([[600.0, 800.0, 1.0]], np.float32)
    expected = OpenVINOOp(OP, **attrs)(rois, deltas, scores, im_info)
    actual = ops.detection_output(t(rois), t(deltas), t(scores), t(im_info), **attrs)
    return [a.numpy() for a in actual], expected


def assert_same_detections(actual, expected):
    (boxes, classes, scores), (boxes_ov, classes_ov, scores_ov) = actual, expected
    assert classes.dtype == np.int32
    np.testing.assert_array_equal(classes, classes_ov)
    assert_close(scores, scores_ov)
    assert_close(boxes, boxes_ov)


def inputs(rng, rois_count, num_classes, *, logit_scale=3.0, delta_std=1.0):
    rois = random_boxes(rng, rois_count, 800, 600, min_size=2.0)
    deltas = rng.normal(0, delta_std, (rois_count, 4 * num_classes)).astype(np.float32)
    scores = softmax(rng.normal(0, logit_scale, (rois_count, num_classes)))
    return rois, deltas, scores


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("num_classes", [2, 81])
def test_matches_openvino_on_softmax_scores(seed, num_classes):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 1000))
    attrs = attributes(
        num_classes,
        score_threshold=float(rng.choice([0.0, 0.05, 0.3])),
        nms_threshold=float(rng.choice([0.3, 0.5, 0.7])),
        post_nms_count=int(rng.choice([5, 100])),
        max_detections_per_image=int(rng.choice([10, 100, 300])),
    )
    actual, expected = run_both(*inputs(rng, count, num_classes), **attrs)
    assert_same_detections(actual, expected)


def test_more_detections_than_the_output_holds_sorts_by_score():
    rng = np.random.default_rng(20)
    rois, deltas, _ = inputs(rng, 400, 81)
    scores = rng.uniform(0, 1, (400, 81)).astype(np.float32)  # most candidates pass the threshold
    attrs = attributes(81, post_nms_count=50, max_detections_per_image=100)
    actual, expected = run_both(rois, deltas, scores, **attrs)
    assert_same_detections(actual, expected)
    assert (np.diff(actual[2]) <= 0).all()


def test_all_scores_under_the_threshold_gives_only_padding():
    rng = np.random.default_rng(21)
    rois, deltas, scores = inputs(rng, 50, 81)
    actual, expected = run_both(rois, deltas, scores * 0.0 + 0.01, **attributes(81))
    assert_same_detections(actual, expected)
    assert not any(a.any() for a in actual)


def test_one_class_means_background_only():
    rng = np.random.default_rng(22)
    actual, expected = run_both(*inputs(rng, 30, 1), **attributes(1))
    assert_same_detections(actual, expected)
    assert not actual[1].any()


def test_degenerate_rois_huge_deltas_and_boxes_outside_the_image():
    rng = np.random.default_rng(23)
    rois, deltas, scores = inputs(rng, 200, 5, logit_scale=1.0, delta_std=40.0)
    rois[:20, 2] = rois[:20, 0]  # zero width: dropped
    rois[20:40, 3] = rois[20:40, 1] - 5  # negative height: dropped
    rois[40:60] -= 1000  # far left and above the image: clipped at 0
    actual, expected = run_both(rois, deltas, scores, **attributes(5))
    assert_same_detections(actual, expected)
    assert (actual[0] >= 0).all()


def test_class_agnostic_flag_is_ignored_like_openvino():
    rng = np.random.default_rng(24)
    data = inputs(rng, 100, 4)
    plain, _ = run_both(*data, **attributes(4))
    actual, expected = run_both(*data, **attributes(4, class_agnostic_box_regression=True))
    assert_same_detections(actual, expected)
    for a, b in zip(actual, plain):
        np.testing.assert_array_equal(a, b)


def test_ties_compare_as_sets():
    # One score for all classes of a ROI, and few distinct scores: when the output must be cut to the best
    # detections they are ordered by score, then by ROI, and the order of a ROI's classes is unspecified in
    # OpenVINO. The cut (40 = 8 ROIs x 5 classes) falls between ROIs, so the selected set is defined.
    rng = np.random.default_rng(25)
    rois, deltas, _ = inputs(rng, 60, 6)
    scores = np.repeat(rng.choice(np.array([0.3, 0.6, 0.9], np.float32), (60, 1)), 6, axis=1)
    attrs = attributes(6, max_detections_per_image=40, nms_threshold=0.99)
    (boxes, classes, out_scores), (boxes_ov, classes_ov, scores_ov) = run_both(rois, deltas, scores, **attrs)
    assert (scores[:, 1:] == 0.9).sum() > 40
    assert_close(out_scores, scores_ov)
    ours = np.concatenate([boxes, classes[:, None]], 1)
    theirs = np.concatenate([boxes_ov, classes_ov[:, None]], 1)
    assert rows_as_set(ours) == rows_as_set(theirs)


def test_hand_computed_suppression():
    # Two ROIs of class 1: the weaker overlaps the stronger with IoU 25/175 in the +1 convention.
    rois = torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 5.0, 14.0, 14.0]])
    deltas = torch.zeros(2, 8)
    scores = torch.tensor([[0.1, 0.9], [0.2, 0.8]])
    kwargs = attributes(2, max_detections_per_image=3)
    boxes, classes, out_scores = ops.detection_output(
        rois, deltas, scores, torch.tensor([[20.0, 20.0, 1.0]]), **kwargs | {"nms_threshold": 0.2}
    )
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.8, 0.0]))  # 0.143 < 0.2: both kept
    boxes, classes, out_scores = ops.detection_output(
        rois, deltas, scores, torch.tensor([[20.0, 20.0, 1.0]]), **kwargs | {"nms_threshold": 0.1}
    )
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.0, 0.0]))
    torch.testing.assert_close(boxes[0], rois[0])
    assert classes.tolist() == [1, 0, 0]


def test_bad_input_is_reported():
    rois, deltas, scores, info = torch.zeros(4, 4), torch.zeros(4, 12), torch.zeros(4, 3), torch.zeros(1, 3)
    kwargs = attributes(3)
    with pytest.raises(ValueError, match=r"deltas: expected a \[N, 4 \* num_classes\] tensor with size 12"):
        ops.detection_output(rois, torch.zeros(4, 8), scores, info, **kwargs)
    with pytest.raises(ValueError, match=r"scores: expected a \[N, num_classes\] \(N from rois\)"):
        ops.detection_output(rois, deltas, torch.zeros(5, 3), info, **kwargs)
    with pytest.raises(ValueError, match=r"im_info: expected a \[1, 3\]"):
        ops.detection_output(rois, deltas, scores, torch.zeros(3), **kwargs)
    with pytest.raises(ValueError, match="deltas_weights: expected 4 values"):
        ops.detection_output(rois, deltas, scores, info, **kwargs | {"deltas_weights": [1.0, 1.0]})
    bad = rois.clone()
    bad[2, 0] = float("-inf")
    with pytest.raises(ValueError, match=r"rois: contains non-finite values .* \[2\]"):
        ops.detection_output(bad, deltas, scores, info, **kwargs)
