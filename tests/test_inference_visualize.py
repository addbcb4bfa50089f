"""Drawing detections: what changes in the image, what does not, colours, labels at the edges, speed."""

import time

import cv2
import numpy as np
import pytest

from segmentoly.inference.detections import Detections
from segmentoly.inference.visualize import DEFAULT_PALETTE, draw_detections, draw_fps, label_rectangle

CLASS_NAMES = ("__background__", "person", "a-very-long-class-name")


def detections_from_masks(masks: np.ndarray, labels=None, scores=None) -> Detections:
    """Detections whose boxes are the tight (inclusive) boxes of ``masks``."""
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()] if xs.size else [0, 0, 0, 0])
    count = len(masks)
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.linspace(0.9, 0.5, count).astype(np.float32) if scores is None else np.asarray(scores, np.float32),
        np.ones(count, np.int64) if labels is None else np.asarray(labels, np.int64),
        masks,
        CLASS_NAMES,
    )


def rectangle_masks(height, width, rects) -> np.ndarray:
    masks = np.zeros((len(rects), height, width), bool)
    for mask, (x0, y0, x1, y1) in zip(masks, rects):
        mask[y0:y1, x0:x1] = True
    return masks


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (before != after).any(axis=2)


def test_masks_are_blended_and_the_rest_of_the_image_is_untouched():
    image = np.full((120, 160, 3), 100, np.uint8)
    original = image.copy()
    detections = detections_from_masks(rectangle_masks(120, 160, [(20, 30, 60, 90)]))
    out = draw_detections(image, detections, show_names=False)

    np.testing.assert_array_equal(image, original)  # the input is never drawn on
    assert out is not image and out.dtype == np.uint8 and out.shape == image.shape
    # Strictly inside the mask (away from the outline) every pixel is the 50/50 blend with the instance colour.
    expected = np.round(0.5 * 100 + 0.5 * DEFAULT_PALETTE[0].astype(float))
    np.testing.assert_allclose(out[40:80, 25:55].reshape(-1, 3), np.broadcast_to(expected, (40 * 30, 3)), atol=1)
    # Far from the instance nothing changes.
    assert not changed(image, out)[:, 80:].any()
    assert not changed(image, out)[100:, :].any()


def test_zero_detections_return_an_identical_copy():
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    out = draw_detections(image, Detections.empty(50, 70, CLASS_NAMES), show_boxes=True, show_scores=True)
    assert out is not image
    np.testing.assert_array_equal(out, image)


def test_the_same_instance_id_gives_the_same_colour():
    image = np.zeros((100, 200, 3), np.uint8)
    first = detections_from_masks(rectangle_masks(100, 200, [(10, 10, 50, 50), (120, 10, 160, 50)]))
    # The next frame: the objects have swapped places in the detection order and moved.
    second = detections_from_masks(rectangle_masks(100, 200, [(125, 15, 165, 55), (12, 12, 52, 52)]))
    out1 = draw_detections(image, first, show_names=False, instance_ids=[7, 3])
    out2 = draw_detections(image, second, show_names=False, instance_ids=[3, 7])
    np.testing.assert_array_equal(out1[30, 30], out2[30, 30])  # id 7 on the left in both
    np.testing.assert_array_equal(out1[30, 140], out2[30, 140])  # id 3 on the right in both
    assert not np.array_equal(out1[30, 30], out1[30, 140])
    np.testing.assert_allclose(out1[30, 30], np.round(0.5 * DEFAULT_PALETTE[7]), atol=1)
    # Without ids, colours follow the detection index instead.
    plain = draw_detections(image, second, show_names=False)
    np.testing.assert_allclose(plain[30, 140], np.round(0.5 * DEFAULT_PALETTE[0]), atol=1)
    np.testing.assert_allclose(plain[30, 30], np.round(0.5 * DEFAULT_PALETTE[1]), atol=1)


def test_masks_touching_every_border_are_drawn_up_to_the_edge():
    height, width = 60, 90
    image = np.zeros((height, width, 3), np.uint8)
    rects = [
        (0, 0, 10, 10),
        (width - 5, 0, width, 8),
        (0, height - 6, 8, height),
        (width - 3, height - 3, width, height),
    ]
    # Plus an empty mask (a degenerate detection), which draws nothing and must not fail.
    masks = np.concatenate([rectangle_masks(height, width, rects), np.zeros((1, height, width), bool)])
    out = draw_detections(image, detections_from_masks(masks), show_names=False)
    drawn = changed(image, out)
    covered = masks.any(axis=0)
    assert drawn[covered].all()  # up to the edge pixels
    # Nothing beyond the mask but the anti-aliased fringe of its outline.
    near = cv2.dilate(covered.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not drawn[~near].any()
    # With boxes and labels too, everything still fits (labels are moved inside).
    out = draw_detections(image, detections_from_masks(masks, labels=[2] * 5), show_boxes=True, show_scores=True)
    assert out.shape == image.shape


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_a_label_near_an_edge_is_drawn_whole(corner):
    height, width = 200, 300
    x0 = 0 if "left" in corner else width - 4
    y0 = 0 if "top" in corner else height - 4
    image = np.zeros((height, width, 3), np.uint8)
    # An empty mask, so that the label's background is the only thing drawn.
    detections = Detections(
        np.array([[x0, y0, x0 + 3, y0 + 3]], np.float32),
        np.array([0.87], np.float32),
        np.array([2], np.int64),
        np.zeros((1, height, width), bool),
        CLASS_NAMES,
    )
    out = draw_detections(image, detections, show_scores=True)
    ys, xs = np.nonzero(changed(image, out))
    text = "a-very-long-class-name 0.87"
    (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    # The whole background rectangle is there (not cut off by an edge): at least the text's size.
    assert xs.max() - xs.min() + 1 >= text_width
    assert ys.max() - ys.min() + 1 >= text_height + baseline


def test_label_rectangle_is_inside_the_image_wherever_it_is_anchored():
    height, width = 100, 150
    for x in range(-20, width + 20, 7):
        for y in range(-20, height + 20, 7):
            x0, y0, x1, y1 = label_rectangle((60, 15), (x, y), (height, width))
            assert 0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height
            assert (x1 - x0 + 1, y1 - y0 + 1) == (64, 19)
    # Room above the anchor: the label sits just above it; none: just below.
    assert label_rectangle((60, 15), (40, 50), (height, width))[1::2] == (31, 49)
    assert label_rectangle((60, 15), (40, 5), (height, width))[1::2] == (5, 23)


def test_bad_inputs_are_rejected_with_clear_messages():
    image = np.zeros((40, 50, 3), np.uint8)
    detections = detections_from_masks(rectangle_masks(40, 50, [(0, 0, 5, 5)]))
    with pytest.raises(ValueError, match="masks: expected shape"):
        draw_detections(np.zeros((41, 50, 3), np.uint8), detections)
    with pytest.raises(ValueError, match="BGR uint8"):
        draw_detections(image.astype(np.float32), detections)
    with pytest.raises(ValueError, match="instance_ids: expected one id per detection"):
        draw_detections(image, detections, instance_ids=[1, 2])


def test_fps_overlay_draws_in_the_top_left_corner():
    image = np.zeros((240, 320, 3), np.uint8)
    out = draw_fps(image, 12.34)
    assert out is image  # in place, on the fresh frame draw_detections returned
    ys, xs = np.nonzero(image.any(axis=2))
    assert ys.size > 0 and ys.max() < 60 and xs.max() < 160


def test_a_hd_frame_with_20_instances_draws_fast():
    rng = np.random.default_rng(0)
    height, width = 720, 1280
    yy, xx = np.ogrid[:height, :width]
    masks = np.zeros((20, height, width), bool)
    for mask in masks:
        cx, cy, radius = rng.integers(0, width), rng.integers(0, height), rng.integers(30, 200)
        mask[:] = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
    detections = detections_from_masks(masks, labels=rng.integers(1, 3, 20))
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    draw_detections(image, detections)  # warm-up: first calls into OpenCV allocate
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        draw_detections(image, detections, show_boxes=True, show_scores=True)
        best = min(best, time.perf_counter() - start)
    assert best < 0.1, f"drawing took {best * 1000:.1f} ms"
