"""Preprocessing and postprocessing shared by every backend."""

import numpy as np
import pytest
import torch

from segmentoly import ops
from segmentoly.data.transforms import FitMax, FixedSize
from segmentoly.inference.postprocess import paste_masks, postprocess
from segmentoly.inference.preprocess import ImageError, Prepared, as_bgr_image, preprocess

MEAN = (102.9801, 115.9465, 122.7717)


def test_grayscale_and_bgra_become_bgr_and_others_are_refused():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (as_bgr_image(gray) == gray[:, :, None]).all() and as_bgr_image(gray).shape == (3, 4, 3)
    bgra = np.random.default_rng(0).integers(0, 255, (3, 4, 4), dtype=np.uint8)
    assert (as_bgr_image(bgra) == bgra[:, :, :3]).all()
    with pytest.raises(ImageError, match="expected dtype uint8"):
        as_bgr_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageError, match=r"expected an \[H, W, 3\] BGR image .* got shape \(4, 4, 2\)"):
        as_bgr_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="expected a numpy array"):
        as_bgr_image([[0, 1]])


def test_preprocess_resizes_and_pads_with_the_mean():
    image = np.full((300, 500, 3), 7, np.uint8)
    prepared = preprocess(image, FitMax(200, 333), pixel_mean=MEAN, size_divisor=32)
    # short side 200 would make the long side 333.3 -> 333 (not over 333): scale 2/3.
    assert prepared.resized_size == (200, 333) and prepared.blob.shape == (1, 3, 224, 352)
    assert prepared.scale == pytest.approx((2 / 3, 2 / 3))
    assert (prepared.blob[0, :, :200, :333] == 7).all()
    for channel, mean in enumerate(MEAN):
        assert (prepared.blob[0, channel, 200:, :] == np.float32(mean)).all()
        assert (prepared.blob[0, channel, :, 333:] == np.float32(mean)).all()


def test_paste_masks_fills_the_box():
    # A full 28x28 mask of a box pastes (after Detectron's one-pixel margin and expansion) onto the box.
    box = np.array([[20.0, 30.0, 59.0, 89.0]], np.float32)
    pasted = paste_masks(np.ones((1, 28, 28), np.float32), box, (120, 100))
    ys, xs = np.nonzero(pasted[0])
    assert abs(xs.min() - 20) <= 1 and abs(xs.max() - 59) <= 1
    assert abs(ys.min() - 30) <= 1 and abs(ys.max() - 89) <= 1
    assert pasted[0].sum() == pytest.approx(40 * 60, rel=0.06)


def test_paste_masks_clips_at_the_image_border():
    boxes = np.array([[-30.0, -30.0, 20.0, 20.0], [90.0, 50.0, 150.0, 120.0], [200.0, 200.0, 210.0, 210.0]], np.float32)
    pasted = paste_masks(np.ones((3, 28, 28), np.float32), boxes, (100, 100))
    assert pasted.shape == (3, 100, 100)
    assert pasted[0, 0, 0] and pasted[0, 17, 17] and not pasted[0, 25, 25]
    assert pasted[1, 99, 99] and pasted[1, 50, 90]
    assert not pasted[2].any()


def test_mask_targets_and_pasting_use_the_same_geometry():
    # Sample a real-looking shape into a 28x28 box-relative grid (as training targets are made, by ROIAlign)
    # and paste it back: the shape comes back in place.
    height, width = 160, 200
    yy, xx = np.mgrid[:height, :width]
    shape = ((xx - 90) / 50.0) ** 2 + ((yy - 70) / 35.0) ** 2 <= 1.0
    box = np.array([40.0, 35.0, 140.0, 105.0], np.float32)
    rois = torch.tensor([[0.0, *box]])
    target = ops.roi_align(
        torch.from_numpy(shape[None, None].astype(np.float32)),
        rois,
        output_size=28,
        spatial_scale=1.0,
        sampling_ratio=2,
        aligned=True,
    )[0, 0].numpy()
    pasted = paste_masks(target[None], box[None], (height, width))[0]
    iou = (pasted & shape).sum() / (pasted | shape).sum()
    assert iou > 0.95


def test_postprocess_drops_padding_sorts_rescales_and_clips():
    raw = {
        "boxes": np.array([[10, 10, 50, 50], [0, 0, 0, 0], [-8, 20, 600, 40]], np.float32),
        "scores": np.array([0.3, 0.0, 0.9], np.float32),
        "classes": np.array([2, 0, 1], np.int32),
        "masks": np.ones((3, 28, 28), np.float32),
    }
    prepared = Prepared(np.zeros((1, 3, 64, 64), np.float32), (100, 200), (50, 100), (0.5, 0.5))
    detections = postprocess(raw, prepared, class_names=["bg", "a", "b"])
    assert detections.labels.tolist() == [1, 2] and detections.scores.tolist() == pytest.approx([0.9, 0.3])
    np.testing.assert_allclose(detections.boxes, [[0, 40, 199, 80], [20, 20, 100, 99]])
    assert detections.masks.shape == (2, 100, 200) and detections.names() == ["a", "b"]
    assert len(postprocess(raw, prepared, class_names=["bg", "a", "b"], score_threshold=0.5)) == 1


def test_fixed_size_rescales_each_axis():
    image = np.zeros((100, 400, 3), np.uint8)
    prepared = preprocess(image, FixedSize(64, 64), pixel_mean=MEAN, size_divisor=32)
    assert prepared.scale == (0.64, 0.16) and prepared.blob.shape == (1, 3, 64, 64)
