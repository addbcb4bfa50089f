"""prior_grid_generator and topk_rois against OpenVINO's operators."""

import numpy as np
import pytest
import torch

from segmentoly import ops
from segmentoly.ops.openvino_reference import OpenVINOOp

from helpers import assert_close, cell_anchors, random_boxes, t


@pytest.mark.parametrize(
    "grid, image, attrs",
    [
        ((25, 42), (800, 1344), {}),
        ((13, 21), (800, 1344), {}),  # P6: the image is not a multiple of the grid
        ((7, 5), (224, 160), {"flatten": False}),
        ((10, 10), (100, 100), {"h": 6, "w": 4}),
        ((10, 12), (100, 100), {"stride_x": 7.5, "stride_y": 3.25}),
        ((1, 1), (32, 32), {}),
    ],
)
def test_prior_grid_generator_matches_openvino(grid, image, attrs):
    rng = np.random.default_rng(0)
    priors = np.concatenate([cell_anchors((32, 64)), rng.uniform(-90, 90, (2, 4)).astype(np.float32)])
    feature_map = np.zeros((1, 2, *grid), np.float32)
    image_blob = np.zeros((1, 3, *image), np.float32)
    full = dict(flatten=True, h=0, w=0, stride_x=0.0, stride_y=0.0) | attrs
    expected = OpenVINOOp("ExperimentalDetectronPriorGridGenerator", **full)(priors, feature_map, image_blob)[0]
    actual = ops.prior_grid_generator(t(priors), t(feature_map), t(image_blob), **full)
    assert tuple(actual.shape) == expected.shape
    if "h" in attrs:
        # OpenVINO fills only the h * w cells of the grid and leaves the rest of the output uninitialised.
        filled = attrs["h"] * attrs["w"] * priors.shape[0]
        assert_close(actual[:filled], expected[:filled])
        assert not actual[filled:].any()
    else:
        assert_close(actual, expected)


def test_prior_grid_generator_hand_computed():
    priors = torch.tensor([[-8.0, -4.0, 8.0, 4.0]])
    anchors = ops.prior_grid_generator(priors, torch.zeros(1, 1, 2, 3), torch.zeros(1, 3, 16, 24))
    # stride 8: cell (i, j) centre (8 (j + 0.5), 8 (i + 0.5)), rows first.
    expected = [
        [-8 + 8 * (j + 0.5), -4 + 8 * (i + 0.5), 8 + 8 * (j + 0.5), 4 + 8 * (i + 0.5)]
        for i in range(2)
        for j in range(3)
    ]
    torch.testing.assert_close(anchors, torch.tensor(expected))


@pytest.mark.parametrize("seed", range(8))
def test_topk_rois_matches_openvino(seed):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 3000))
    max_rois = int(rng.choice([1, 10, 1000]))
    rois = random_boxes(rng, count, 1333, 800)
    probs = rng.uniform(0, 1, count).astype(np.float32)
    expected = OpenVINOOp("ExperimentalDetectronTopKROIs", max_rois=max_rois)(rois, probs)[0]
    actual = ops.topk_rois(t(rois), t(probs), max_rois=max_rois)
    assert tuple(actual.shape) == (max_rois, 4)
    n = min(count, max_rois)
    # OpenVINO leaves the rows past the input count uninitialised; ours are zero.
    assert_close(actual[:n], expected[:n])
    assert not actual[n:].any()


def test_topk_rois_ties_compare_as_sets():
    rng = np.random.default_rng(3)
    rois = random_boxes(rng, 60, 300, 300)
    probs = np.repeat(np.array([0.9, 0.5, 0.1], np.float32), 20)  # ties: order within a value is unspecified
    expected = OpenVINOOp("ExperimentalDetectronTopKROIs", max_rois=40)(rois, probs)[0]
    actual = ops.topk_rois(t(rois), t(probs), max_rois=40).numpy()
    # The 20 boxes of 0.9 and the 20 of 0.5 are selected in both; each block's order is unspecified.
    for block in (slice(0, 20), slice(20, 40)):
        assert sorted(map(tuple, actual[block])) == sorted(map(tuple, expected[block]))


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match=r"priors: expected a \[A, 4\] tensor"):
        ops.prior_grid_generator(torch.zeros(3, 5), torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"feature_map: expected a \[N, C, H, W\] tensor \(rank 4\)"):
        ops.prior_grid_generator(torch.zeros(3, 4), torch.zeros(2, 2), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="priors: contains non-finite"):
        ops.prior_grid_generator(torch.full((1, 4), float("inf")), torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"rois_probs: expected a \[N\] \(one per roi\)"):
        ops.topk_rois(torch.zeros(5, 4), torch.zeros(6), max_rois=2)
    with pytest.raises(ValueError, match="max_rois: expected a positive integer"):
        ops.topk_rois(torch.zeros(5, 4), torch.zeros(5), max_rois=0)
    with pytest.raises(ValueError, match="rois: contains non-finite"):
        ops.topk_rois(torch.tensor([[0.0, float("nan"), 1.0, 1.0]]), torch.zeros(1), max_rois=1)
