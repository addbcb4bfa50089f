"""roi_align and roi_feature_extractor against OpenVINO's ExperimentalDetectronROIFeatureExtractor."""

import math

import numpy as np
import pytest
import torch

from segmentoly import ops
from segmentoly.ops.openvino_reference import OpenVINOOp

from helpers import assert_close, random_boxes, t

OP = "ExperimentalDetectronROIFeatureExtractor"
SCALES = [4, 8, 16, 32, 64]


def pyramid(rng, levels, channels, height, width):
    return [
        rng.standard_normal((1, channels, math.ceil(height / s), math.ceil(width / s))).astype(np.float32)
        for s in SCALES[:levels]
    ]


def run_both(rois, features, **attrs):
    expected = OpenVINOOp(OP, **attrs)(rois, *features)[0]
    attrs = attrs | {"aligned": bool(attrs["aligned"])}
    actual = ops.roi_feature_extractor(t(rois), [t(f) for f in features], **attrs)
    return actual, expected


@pytest.mark.parametrize("seed", range(10))
def test_matches_openvino_on_random_rois(seed):
    rng = np.random.default_rng(seed)
    levels = int(rng.integers(1, 6))
    height, width = (int(v) for v in rng.integers(64, 420, 2))
    features = pyramid(rng, levels, int(rng.choice([1, 3, 16])), height, width)
    rois = random_boxes(rng, int(rng.integers(1, 300)), width, height, min_size=1.0)
    attrs = dict(
        output_size=int(rng.choice([1, 7, 14])),
        sampling_ratio=int(rng.choice([0, 1, 2])),
        pyramid_scales=SCALES[:levels],
        aligned=int(rng.integers(0, 2)),
    )
    actual, expected = run_both(rois, features, **attrs)
    assert tuple(actual.shape) == expected.shape
    assert_close(actual, expected)


def test_rois_straddling_level_boundaries():
    # sqrt(area) of 112, 224 and 448 are where FPN levels change; probe each exactly and a hair either side.
    rng = np.random.default_rng(11)
    features = pyramid(rng, 4, 8, 640, 640)
    sides = [s * f for s in (112.0, 224.0, 448.0) for f in (0.999, 1.0, 1.001)]
    rois = np.array([[10.0, 20.0, 10.0 + s, 20.0 + s] for s in sides], np.float32)
    actual, expected = run_both(rois, features, output_size=7, sampling_ratio=2, pyramid_scales=SCALES[:4], aligned=0)
    assert_close(actual, expected)
    levels = ops.map_rois_to_levels(t(rois), 4).tolist()
    assert levels == [0, 1, 1, 1, 2, 2, 2, 3, 3]


def test_zero_area_and_outside_rois():
    rng = np.random.default_rng(12)
    features = pyramid(rng, 4, 4, 128, 160)
    rois = np.array(
        [
            [10, 10, 10, 50],  # zero width: pooled from no level, zero features
            [30, 30, 30, 30],  # a point
            [50, 40, 20, 60],  # negative width
            [-300, -300, -200, -200],  # entirely outside: every sample out of the map
            [-20, -10, 40, 30],  # partly outside
            [150, 120, 400, 300],  # past the bottom-right corner
        ],
        np.float32,
    )
    for aligned in (0, 1):
        actual, expected = run_both(
            rois, features, output_size=7, sampling_ratio=2, pyramid_scales=SCALES[:4], aligned=aligned
        )
        assert_close(actual, expected)
        assert not actual[:4].any()
        assert actual[4:].abs().sum(dim=(1, 2, 3)).min() > 0


def test_roi_align_batched_images_equals_per_image_extraction():
    rng = np.random.default_rng(13)
    features = rng.standard_normal((3, 5, 20, 30)).astype(np.float32)
    rois = random_boxes(rng, 40, 120, 80, min_size=2.0)
    images = rng.integers(0, 3, 40)
    batched = ops.roi_align(
        t(features),
        t(np.concatenate([images[:, None], rois], 1).astype(np.float32)),
        output_size=7,
        spatial_scale=0.25,
        sampling_ratio=2,
    )
    for image in range(3):
        ref = OpenVINOOp(OP, output_size=7, sampling_ratio=2, pyramid_scales=[4], aligned=0)(
            rois[images == image], features[image : image + 1]
        )[0]
        assert_close(batched[torch.from_numpy(images == image)], ref)


def test_roi_align_hand_computed():
    # A linear ramp f(y, x) = x: bilinear sampling reproduces it, so each bin holds its centre's x.
    features = torch.arange(10.0).repeat(1, 1, 10, 1)
    rois = torch.tensor([[0.0, 2.0, 2.0, 6.0, 6.0]])
    out = ops.roi_align(features, rois, output_size=2, spatial_scale=1.0, sampling_ratio=2)
    torch.testing.assert_close(out, torch.tensor([[[[3.0, 5.0], [3.0, 5.0]]]]))
    aligned = ops.roi_align(features, rois, output_size=2, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    torch.testing.assert_close(aligned, out - 0.5)


def test_gradients_double_precision():
    rng = np.random.default_rng(14)
    features = torch.from_numpy(rng.standard_normal((2, 2, 9, 11))).requires_grad_()
    rois = torch.tensor(
        [[0, 3.0, 2.0, 30.0, 25.0], [1, -4.0, 5.0, 12.0, 40.0], [1, 17.0, 1.0, 17.5, 2.0]], dtype=torch.float64
    )
    for sampling_ratio, aligned in ((2, False), (0, True)):
        kwargs = dict(output_size=3, spatial_scale=0.5, sampling_ratio=sampling_ratio, aligned=aligned)
        assert torch.autograd.gradcheck(lambda f, kwargs=kwargs: ops.roi_align(f, rois, **kwargs), (features,))
    levels = [torch.from_numpy(rng.standard_normal((1, 2, 16 // s, 16 // s))).requires_grad_() for s in (1, 2, 4)]
    boxes = torch.tensor(
        [[0.0, 0.0, 5.0, 5.0], [1.0, 2.0, 15.0, 14.0], [0.0, 0.0, 60.0, 60.0], [4.0, 4.0, 4.0, 9.0]],
        dtype=torch.float64,
    )
    assert torch.autograd.gradcheck(
        lambda *f: ops.roi_feature_extractor(boxes, list(f), output_size=2, sampling_ratio=2, pyramid_scales=[1, 2, 4]),
        tuple(levels),
    )


def test_bad_input_is_reported():
    features = [torch.zeros(1, 8, 16, 16), torch.zeros(1, 8, 8, 8)]
    kwargs = dict(output_size=7, sampling_ratio=2, pyramid_scales=[4, 8])
    with pytest.raises(ValueError, match=r"features\[1\]: has 4 channels but features\[0\] has 8"):
        ops.roi_feature_extractor(torch.zeros(3, 4), [features[0], torch.zeros(1, 4, 8, 8)], **kwargs)
    with pytest.raises(ValueError, match=r"rois: expected a \[K, 4\] tensor with size 4 in dimension 1"):
        ops.roi_feature_extractor(torch.zeros(3, 5), features, **kwargs)
    with pytest.raises(ValueError, match="pyramid_scales: expected one scale per feature level"):
        ops.roi_feature_extractor(torch.zeros(3, 4), features, **(kwargs | {"pyramid_scales": [4]}))
    with pytest.raises(ValueError, match=r"features\[0\]: expected batch size 1"):
        ops.roi_feature_extractor(torch.zeros(3, 4), [torch.zeros(2, 8, 16, 16), features[1]], **kwargs)
    with pytest.raises(ValueError, match=r"features\[1\]: expected a \[N, C, H, W\] tensor \(rank 4\)"):
        ops.roi_feature_extractor(torch.zeros(3, 4), [features[0], torch.zeros(8, 8, 8)], **kwargs)
    with pytest.raises(ValueError, match="rois: contains non-finite"):
        ops.roi_feature_extractor(torch.tensor([[0.0, 0.0, float("inf"), 4.0]]), features, **kwargs)
    with pytest.raises(ValueError, match=r"rois: image index out of range \[0, 1\)"):
        ops.roi_align(
            features[0], torch.tensor([[1.0, 0.0, 0.0, 4.0, 4.0]]), output_size=2, spatial_scale=1.0, sampling_ratio=2
        )
