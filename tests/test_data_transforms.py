"""Resize arithmetic, and transforms that keep image, boxes, masks and scale together."""

import cv2
import numpy as np
import pytest
import torch

from segmentoly.data import (
    CocoDataset,
    Compose,
    FitMax,
    FitWindow,
    FixedSize,
    RandomHorizontalFlip,
    RandomResize,
    Resize,
    Sample,
    SampleKey,
    Target,
    parse_resize,
    resize_image,
)
from segmentoly.data.transforms import hflip_sample, resize_sample

from helpers import coco_tiny_root


@pytest.fixture(scope="module")
def tiny_samples():
    """A spread of coco_tiny images: landscape and portrait, with many and few instances."""
    root = coco_tiny_root()
    dataset = CocoDataset(root / "annotations" / "instances_train2017.json", root / "train2017")
    return [dataset[i] for i in range(0, len(dataset), 4)]


def test_fit_max_is_detectrons_arithmetic():
    mode = FitMax(800, 1333)
    assert mode.output_size(480, 640) == (800, 1067)  # short side 800
    assert mode.scale_factors(480, 640) == (800 / 480, 800 / 480)
    assert mode.output_size(640, 480) == (1067, 800)
    assert mode.output_size(300, 1000) == (400, 1333)  # 800 / 300 * 1000 = 2667 > 1333: long side 1333
    assert mode.scale_factors(300, 1000) == (1.3330, 1.3330)
    # round(800 / 600 * 1000) = 1333 is not over the limit, so the short side stays 800.
    assert mode.output_size(600, 1000) == (800, 1333)
    assert FitMax(800, 1333).output_size(800, 1333) == (800, 1333)


def test_fit_window_and_fixed_size():
    assert FitWindow(800, 1333).output_size(480, 640) == (800, 1067)
    assert FitWindow(800, 1333).output_size(640, 480) == (800, 600)  # portrait: height bounds it, unlike fit_max
    assert FitWindow(480, 480).scale_factors(427, 640) == (0.75, 0.75)
    assert FitWindow(480, 480).output_size(427, 640) == (320, 480)
    assert FixedSize(512, 384).output_size(427, 640) == (512, 384)
    assert FixedSize(512, 384).scale_factors(427, 640) == (512 / 427, 384 / 640)


@pytest.mark.parametrize("mode", [FitMax(800, 1333), FitMax(96, 160), FitWindow(300, 200), FixedSize(61, 97)])
def test_resize_image_gives_the_announced_size(mode):
    rng = np.random.default_rng(0)
    for height, width in rng.integers(5, 700, (40, 2)):
        image = np.zeros((height, width, 3), np.float32)
        resized, scale = resize_image(image, mode)
        assert resized.shape == (*mode.output_size(height, width), 3)
        assert scale == mode.scale_factors(height, width)
    single, _ = resize_image(np.zeros((20, 30, 1), np.uint8), mode)
    assert single.ndim == 3 and single.shape[2] == 1


def test_parse_resize_spellings_and_errors():
    assert parse_resize("fit_max", [800, 1333]) == FitMax(800, 1333)
    assert parse_resize("--fix_max", ["800", "1333"]) == FitMax(800, 1333)  # the seed README's spelling
    assert parse_resize("fit-window", (480, 640)) == FitWindow(480, 640)
    assert parse_resize("size", [512, 384]) == FixedSize(512, 384)
    mode = parse_resize("size", [512, 384])
    assert parse_resize(mode.name, mode.values) == mode
    with pytest.raises(ValueError, match="unknown resize mode 'stretch': expected one of fit_max, fit_window, size"):
        parse_resize("stretch", [1, 2])
    with pytest.raises(ValueError, match=r"fit_window takes two integers MAX_HEIGHT MAX_WIDTH, got \[800\]"):
        parse_resize("fit_window", [800])
    with pytest.raises(ValueError, match="positive"):
        parse_resize("size", [0, 10])


def tight_box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return np.array([xs[0], ys[0], xs[-1], ys[-1]], dtype=np.float64)


def solid(mask: np.ndarray) -> bool:
    """Whether the mask reaches its box with parts at least 5 pixels thick.

    A one- or two-pixel sliver (a ski pole, a kite string) is rightly lost when an image is shrunk, and
    then no box can stay tight; such masks say nothing about alignment and are left out.
    """
    if mask.sum() < 100:
        return False
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    return bool(opened.any()) and np.abs(tight_box(opened) - tight_box(mask)).max() <= 1


def mean_colour(sample: Sample, mask: torch.Tensor) -> np.ndarray:
    """The mean BGR colour of the image under a mask (cropped to the mask's box first: boolean indexing of a
    whole 800 x 1333 image per instance would dominate the test's time)."""
    mask = mask.numpy().astype(bool)
    x0, y0, x1, y1 = tight_box(mask).astype(int)
    crop = sample.image[:, y0 : y1 + 1, x0 : x1 + 1].numpy()
    return crop[:, mask[y0 : y1 + 1, x0 : x1 + 1]].mean(axis=1)


def alignment_errors(sample: Sample) -> list[np.ndarray | None]:
    """Per instance, how far each side of the mask's tight box is from the box (None for non-solid masks)."""
    return [
        np.abs(tight_box(mask) - box) if solid(mask) else None
        for box, mask in zip(sample.target.boxes.numpy().astype(np.float64), sample.target.masks.numpy())
    ]


@pytest.mark.parametrize(
    "mode", [FitMax(800, 1333), FitMax(320, 512), FitWindow(480, 480), FixedSize(512, 384), FixedSize(200, 900)]
)
def test_resize_keeps_boxes_and_masks_aligned(tiny_samples, mode):
    checked = 0
    for sample in tiny_samples:
        resized = resize_sample(sample, mode)
        height, width = sample.size
        scale_y, scale_x = mode.scale_factors(height, width)
        assert resized.size == mode.output_size(height, width)
        assert resized.scale == (scale_y, scale_x)
        target = resized.target
        assert target.masks.shape == (len(sample.target), *resized.size) and target.masks.dtype == torch.uint8
        assert bool((target.masks <= 1).all())
        assert torch.equal(target.labels, sample.target.labels)
        # Boxes are multiplied by the scale factors, as in Detectron, and kept inside the new image.
        factors = torch.tensor([scale_x, scale_y, scale_x, scale_y], dtype=torch.float64)
        new_height, new_width = resized.size
        limits = torch.tensor([new_width - 1, new_height - 1] * 2, dtype=torch.float64)
        for name in ("boxes", "crowd_boxes"):
            expected = torch.minimum(getattr(sample.target, name).double() * factors, limits)
            torch.testing.assert_close(getattr(target, name).double(), expected, atol=1e-4, rtol=0)
        for before, after, error_before, error_after in zip(
            sample.target.masks, target.masks, alignment_errors(sample), alignment_errors(resized)
        ):
            if error_before is None or error_after is None:
                continue
            # Each side of the mask's box lands within 2 pixels of where the scaled box says, beyond the
            # misalignment the annotation already had (COCO boxes and polygons disagree by a pixel or so).
            scaled_before = error_before * np.array([scale_x, scale_y, scale_x, scale_y])
            assert (error_after <= scaled_before + 2.0).all(), (sample.image_id, error_before, error_after)
            # The image moved with the mask: the mean colour under it is the same as before.
            colour_before, colour_after = mean_colour(sample, before), mean_colour(resized, after)
            assert np.abs(colour_before - colour_after).max() < 12, sample.image_id
            checked += 1
    assert checked > 15, checked


def test_flip_mirrors_and_twice_restores(tiny_samples):
    for sample in tiny_samples:
        width = sample.size[1]
        flipped = hflip_sample(sample)
        assert torch.equal(flipped.image, sample.image.flip(2))
        assert torch.equal(flipped.target.masks, sample.target.masks.flip(2))
        boxes, mirrored = sample.target.boxes, flipped.target.boxes
        torch.testing.assert_close(mirrored[:, [0, 2]], (width - 1) - boxes[:, [2, 0]])
        torch.testing.assert_close(mirrored[:, [1, 3]], boxes[:, [1, 3]])
        assert flipped.scale == sample.scale
        # A mirrored mask is exactly as far from its mirrored box as before, with left and right swapped.
        for error, error_flipped in zip(alignment_errors(sample), alignment_errors(flipped)):
            if error is not None:
                np.testing.assert_allclose(error_flipped, error[[2, 1, 0, 3]], atol=1e-3)

        twice = hflip_sample(flipped)
        assert torch.equal(twice.image, sample.image)
        assert torch.equal(twice.target.masks, sample.target.masks)
        assert torch.equal(twice.target.labels, sample.target.labels)
        # W - 1 - (W - 1 - x) is x up to float32 rounding of the intermediate value.
        torch.testing.assert_close(twice.target.boxes, boxes, atol=1e-4, rtol=0)
        torch.testing.assert_close(twice.target.crowd_boxes, sample.target.crowd_boxes, atol=1e-4, rtol=0)


def test_flip_of_a_hand_made_box_in_the_plus_one_convention():
    mask = torch.zeros((1, 4, 10), dtype=torch.uint8)
    mask[0, 1:3, 0:3] = 1  # columns 0..2
    sample = Sample(
        image=torch.zeros((3, 4, 10)),
        target=Target(torch.tensor([[0.0, 1.0, 2.0, 2.0]]), torch.tensor([1]), mask, torch.zeros((0, 4))),
        image_id=1,
        original_size=(4, 10),
    )
    flipped = hflip_sample(sample)
    assert flipped.target.boxes.tolist() == [[7.0, 1.0, 9.0, 2.0]]
    assert tight_box(flipped.target.masks[0].numpy()).tolist() == [7, 1, 9, 2]


def test_random_transforms_are_reproducible_from_the_sample_seed(tiny_samples):
    transform = Compose([RandomResize((320, 352, 384, 416), 700), RandomHorizontalFlip(0.5)])
    sample = tiny_samples[1]
    outcomes = set()
    for seed in range(12):
        first = transform(sample, np.random.default_rng(seed))
        again = transform(sample, np.random.default_rng(seed))
        assert torch.equal(first.image, again.image) and torch.equal(first.target.boxes, again.target.boxes)
        assert min(first.size) in (320, 352, 384, 416)
        flipped = not torch.equal(first.image, resize_sample(sample, FitMax(min(first.size), 700)).image)
        outcomes.add((min(first.size), flipped))
    assert len(outcomes) >= 5  # both the scale and the flip vary with the seed
    with pytest.raises(ValueError, match="is random and needs a numpy Generator"):
        transform(sample)


def test_multi_scale_and_flip_keep_alignment(tiny_samples):
    transform = Compose([RandomResize((480, 640, 800), 1333), RandomHorizontalFlip(0.5)])
    for seed, sample in enumerate(tiny_samples[:5]):
        out = transform(sample, np.random.default_rng(seed))
        scale_y, scale_x = out.scale
        assert min(out.size) in (480, 640, 800) or max(out.size) == 1333
        for error_before, error_after in zip(alignment_errors(sample), alignment_errors(out)):
            if error_before is not None and error_after is not None:
                # Left and right may have swapped sides; compare with the worse of the two.
                bound = error_before.max() * max(scale_x, scale_y) + 2.0
                assert (error_after <= bound).all()


def test_dataset_applies_transforms_with_the_key_seed():
    root = coco_tiny_root()
    dataset = CocoDataset(
        root / "annotations" / "instances_val2017.json",
        root / "val2017",
        transforms=Compose([Resize(FitWindow(256, 256)), RandomHorizontalFlip(0.5)]),
    )
    first = dataset[SampleKey(3, 99)]
    assert max(first.size) == 256
    again = dataset[SampleKey(3, 99)]
    assert torch.equal(first.image, again.image)
    flips = {torch.equal(dataset[SampleKey(3, seed)].image, first.image) for seed in range(8)}
    assert flips == {True, False}
    with pytest.raises(ValueError, match="SampleKey"):
        dataset[3]
    info = dataset.image_info(3)
    assert first.original_size == (info.height, info.width)
    assert first.scale == FitWindow(256, 256).scale_factors(info.height, info.width)


def test_empty_targets_survive_every_transform():
    sample = Sample(torch.rand(3, 30, 50) * 255, Target.empty(30, 50), image_id=5, original_size=(30, 50))
    out = Compose([Resize(FixedSize(64, 64)), RandomHorizontalFlip(1.0)])(sample)
    assert out.target.masks.shape == (0, 64, 64) and out.target.boxes.shape == (0, 4)
    assert out.scale == (64 / 30, 64 / 50)
