"""generate_proposals_single_image against OpenVINO's ExperimentalDetectronGenerateProposalsSingleImage."""

import numpy as np
import pytest
import torch

from segmentoly import ops
from segmentoly.ops.openvino_reference import OpenVINOOp

from helpers import assert_close, cell_anchors, rows_as_set, t

OP = "ExperimentalDetectronGenerateProposalsSingleImage"


def level_inputs(rng, height, width, stride, image_hw, *, delta_std=0.5, anchor_size=None, ratios=(0.5, 1.0, 2.0)):
    """Anchors of one pyramid level with random deltas and scores, as numpy arrays."""
    priors = cell_anchors((anchor_size or 8 * stride,), ratios)
    count = len(ratios)
    anchors = ops.prior_grid_generator(
        t(priors), torch.zeros(1, 1, height, width), torch.zeros(1, 3, height * stride, width * stride)
    ).numpy()
    deltas = rng.normal(0, delta_std, (count * 4, height, width)).astype(np.float32)
    scores = rng.uniform(0, 1, (count, height, width)).astype(np.float32)
    im_info = np.array([image_hw[0], image_hw[1], 1.0], np.float32)
    return im_info, anchors, deltas, scores


def run_both(inputs, **attrs):
    expected = OpenVINOOp(OP, **attrs)(*inputs)
    actual = ops.generate_proposals_single_image(*map(t, inputs), **attrs)
    return [a.numpy() for a in actual], expected


def assert_same_proposals(rois, scores, rois_ov, scores_ov, min_size):
    """Proposals with a positive score match row for row (random scores have no ties).

    Boxes under ``min_size`` all get score 0 and come last; the order among equal scores is unspecified in
    OpenVINO, and with it which of them survive NMS, so of those rows only the score and the size are checked.
    """
    assert_close(scores, scores_ov)
    positive = scores_ov > 0
    assert_close(rois[positive], rois_ov[positive])
    for boxes in (rois[~positive], rois_ov[~positive]):
        small = np.minimum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1) < min_size
        padding = ~boxes.any(axis=1)
        assert (small | padding).all()


@pytest.mark.parametrize("seed", range(12))
def test_matches_openvino_on_random_levels(seed):
    rng = np.random.default_rng(seed)
    stride = int(rng.choice([4, 8, 16, 32, 64]))
    height, width = (int(v) for v in rng.integers(2, 60, 2))
    # The image may be smaller than the grid covers, so that boxes leave it and are clipped.
    image_hw = (height * stride * rng.uniform(0.6, 1.0), width * stride * rng.uniform(0.6, 1.0))
    inputs = level_inputs(rng, height, width, stride, image_hw)
    attrs = dict(
        min_size=float(rng.choice([0.0, 4.0, 16.0])),
        nms_threshold=float(rng.choice([0.5, 0.7, 0.9])),
        pre_nms_count=int(rng.choice([50, 1000, 6000])),
        post_nms_count=int(rng.choice([10, 300, 1000])),
    )
    (rois, scores), (rois_ov, scores_ov) = run_both(inputs, **attrs)
    assert rois.shape == rois_ov.shape == (attrs["post_nms_count"], 4)
    assert_same_proposals(rois, scores, rois_ov, scores_ov, attrs["min_size"])


def test_more_candidates_than_the_output_holds():
    rng = np.random.default_rng(1)
    inputs = level_inputs(rng, 50, 84, 16, (800, 1344))
    (rois, scores), (rois_ov, scores_ov) = run_both(
        inputs, min_size=0.0, nms_threshold=0.7, pre_nms_count=2000, post_nms_count=100
    )
    assert (scores > 0).all()
    assert_close(rois, rois_ov)
    assert_close(scores, scores_ov)


def test_fewer_candidates_than_the_output_holds_pads_with_zeros():
    rng = np.random.default_rng(2)
    inputs = level_inputs(rng, 3, 4, 32, (96, 128))  # 36 anchors
    (rois, scores), (rois_ov, scores_ov) = run_both(
        inputs, min_size=0.0, nms_threshold=0.7, pre_nms_count=1000, post_nms_count=100
    )
    kept = int((scores_ov > 0).sum())
    assert 0 < kept <= 36
    assert_close(rois, rois_ov)
    assert_close(scores, scores_ov)
    assert not rois[kept:].any() and not scores[kept:].any()


def test_huge_deltas_and_boxes_outside_the_image():
    rng = np.random.default_rng(3)
    im_info, anchors, deltas, scores = level_inputs(rng, 20, 30, 16, (200, 300), delta_std=30.0)
    anchors = anchors + rng.uniform(-400, 400, (1, 4)).astype(np.float32)  # many anchors leave the image
    (rois, roi_scores), (rois_ov, scores_ov) = run_both(
        (im_info, anchors, deltas, scores), min_size=0.0, nms_threshold=0.7, pre_nms_count=1000, post_nms_count=500
    )
    assert rois.max() <= 299 and rois[:, 3].max() <= 199 and rois.min() >= 0
    assert_close(rois, rois_ov)
    assert_close(roi_scores, scores_ov)


def test_small_boxes_get_score_zero_but_stay():
    rng = np.random.default_rng(4)
    inputs = level_inputs(rng, 10, 12, 8, (80, 96), anchor_size=6)
    (rois, scores), (rois_ov, scores_ov) = run_both(
        inputs, min_size=10.0, nms_threshold=0.7, pre_nms_count=1000, post_nms_count=1000
    )
    zero = scores == 0
    assert zero.any() and (~zero).any()
    assert_same_proposals(rois, scores, rois_ov, scores_ov, 10.0)


def test_ties_in_scores_compare_as_sets():
    # One small anchor per cell, cells far apart: no two boxes overlap, so NMS keeps every box whatever the
    # order of equal scores.
    rng = np.random.default_rng(5)
    height, width, stride = 6, 7, 64
    im_info, anchors, deltas, _ = level_inputs(
        rng, height, width, stride, (384, 448), delta_std=0.05, anchor_size=16, ratios=(1.0,)
    )
    scores = rng.choice(np.array([0.2, 0.5, 0.9], np.float32), (1, height, width))
    attrs = dict(min_size=0.0, nms_threshold=0.5, pre_nms_count=1000, post_nms_count=1000)
    (rois, roi_scores), (rois_ov, scores_ov) = run_both((im_info, anchors, deltas, scores), **attrs)
    assert_close(roi_scores, scores_ov)
    for value in (0.2, 0.5, 0.9):
        assert rows_as_set(rois[roi_scores == value]) == rows_as_set(rois_ov[scores_ov == value])


def test_hand_computed_single_anchor():
    anchors = torch.tensor([[0.0, 0.0, 15.0, 15.0]])  # 16 x 16, centre (8, 8)
    deltas = torch.tensor([0.5, 0.0, 0.0, 0.0]).reshape(4, 1, 1)
    scores = torch.tensor([0.8]).reshape(1, 1, 1)
    rois, roi_scores = ops.generate_proposals_single_image(
        torch.tensor([100.0, 20.0, 1.0]),
        anchors,
        deltas,
        scores,
        min_size=0.0,
        nms_threshold=0.7,
        pre_nms_count=10,
        post_nms_count=2,
    )
    # Shifted by half a width to x 8..23, then clipped to the image width 20 (x <= 19).
    torch.testing.assert_close(rois, torch.tensor([[8.0, 0.0, 19.0, 15.0], [0.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(roi_scores, torch.tensor([0.8, 0.0]))


def test_bad_input_is_reported():
    im_info = torch.tensor([64.0, 64.0, 1.0])
    anchors = torch.zeros(2 * 2 * 3, 4)
    deltas = torch.zeros(12, 2, 2)
    scores = torch.zeros(3, 2, 2)
    kwargs = dict(min_size=0.0, nms_threshold=0.7, pre_nms_count=10, post_nms_count=10)
    with pytest.raises(ValueError, match=r"deltas: expected a \[A \* 4, H, W\] \(A from scores\)"):
        ops.generate_proposals_single_image(im_info, anchors, torch.zeros(8, 2, 2), scores, **kwargs)
    with pytest.raises(ValueError, match=r"anchors: expected a \[H \* W \* A, 4\] \(H, W, A from scores\) tensor"):
        ops.generate_proposals_single_image(im_info, torch.zeros(10, 4), deltas, scores, **kwargs)
    with pytest.raises(ValueError, match=r"scores: expected a \[A, H, W\] tensor \(rank 3\)"):
        ops.generate_proposals_single_image(im_info, anchors, deltas, torch.zeros(1, 3, 2, 2), **kwargs)
    with pytest.raises(ValueError, match=r"im_info: expected a \[3\]"):
        ops.generate_proposals_single_image(torch.zeros(1, 3), anchors, deltas, scores, **kwargs)
    bad = anchors.clone()
    bad[5, 2] = float("nan")
    with pytest.raises(ValueError, match=r"anchors: contains non-finite values .* \[5\]"):
        ops.generate_proposals_single_image(im_info, bad, deltas, scores, **kwargs)
    with pytest.raises(ValueError, match="post_nms_count: expected a positive integer"):
        ops.generate_proposals_single_image(im_info, anchors, deltas, scores, **(kwargs | {"post_nms_count": 0}))
