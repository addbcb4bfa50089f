"""Drawing detections onto images: blended masks, contours, boxes and labels, and a text overlay for FPS.

Everything here works on BGR ``uint8`` images, the format OpenCV reads and writes. Each instance is drawn inside
the bounding rectangle of its mask only, so the cost grows with the area the instances cover rather than with
``instances x image size``: a 1280x720 frame with 20 instances draws in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from segmentoly.inference.detections import Detections

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _make_palette(size: int = 64) -> np.ndarray:
    """``[size, 3]`` BGR colours whose hues step by the golden ratio, so neighbouring indices differ strongly.

    Saturation and value cycle through three levels as well, so colours whose hues come close again (every
    ~13 steps) still differ in brightness. All colours are bright enough for a mask to stay visible on dark
    scenes.
    """
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    index = np.arange(size)
    hue = (index * golden) % 1.0 * 180.0  # OpenCV's 8-bit hue range is 0..179
    saturation = np.array([230, 160, 255])[index % 3]
    value = np.array([255, 220, 190])[(index // 3) % 3]
    hsv = np.stack([hue, saturation, value], axis=1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]


DEFAULT_PALETTE: np.ndarray = _make_palette()
"""The colours instances get by default, ``[64, 3]`` BGR ``uint8``; index ``i`` is used for id ``i % 64``."""


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    *,
    show_boxes: bool = False,
    show_scores: bool = False,
    show_names: bool = True,
    instance_ids: Sequence[int] | np.ndarray | None = None,
    mask_alpha: float = 0.5,
    palette: Sequence[Sequence[int]] | np.ndarray | None = None,
) -> np.ndarray:
    """A copy of ``image`` with the detections drawn on it; ``image`` itself is left unchanged.

    Each instance gets its mask blended in its colour (``mask_alpha`` is the colour's weight), the outline of
    its mask, optionally its box, and a label (class name and/or score) on a filled background at the top-left
    of its box, moved as needed to stay inside the image.

    Args:
        image: ``[H, W, 3]`` BGR ``uint8``, the image the detections were computed on.
        detections: instances whose masks are ``[N, H, W]``; drawn best score on top.
        instance_ids: one integer per detection choosing its colour (``palette[id % len(palette)]``), e.g. the
            track ids of :class:`~segmentoly.inference.tracking.IoUTracker`, so that an object keeps its colour
            from frame to frame. By default the detection's index is used.
        palette: ``[K, 3]`` BGR colours; :data:`DEFAULT_PALETTE` by default.
    """
    _check_image(image)
    count = len(detections)
    height, width = image.shape[:2]
    if detections.masks.shape != (count, height, width):
        raise ValueError(
            f"detections.masks: expected shape {(count, height, width)} to match the {width}x{height} image, "
            f"got {tuple(detections.masks.shape)}"
        )
    masks = detections.masks
    if masks.dtype != np.bool_:
        if not np.issubdtype(masks.dtype, np.integer):
            raise ValueError(f"detections.masks: expected bool masks, got {masks.dtype} (threshold them first)")
        masks = masks != 0
    if not 0.0 <= mask_alpha <= 1.0:
        raise ValueError(f"mask_alpha: expected a value in [0, 1], got {mask_alpha}")
    colours = _instance_colours(count, instance_ids, palette)

    canvas = image.copy()
    if count == 0:
        return canvas
    labels = _label_texts(detections, show_names, show_scores)
    boxes = _pixel_boxes(detections.boxes, width, height)
    font_scale, thickness = _text_style(height, width)
    line_thickness = 1 if min(height, width) < 600 else 2

    # Lowest score first, so that where instances overlap the most confident one ends up on top; labels go
    # last so that no mask or outline covers them.
    order = range(count - 1, -1, -1)
    for i in order:
        _blend_mask(canvas, masks[i], colours[i], mask_alpha, line_thickness)
    if show_boxes:
        for i in order:
            x0, y0, x1, y1 = boxes[i]
            cv2.rectangle(canvas, (x0, y0), (x1, y1), _bgr(colours[i]), line_thickness)
    for i in order:
        if labels[i]:
            _draw_label(canvas, labels[i], (boxes[i][0], boxes[i][1]), colours[i], font_scale, thickness)
    return canvas


def draw_text(
    image: np.ndarray,
    text: str | Sequence[str],
    *,
    origin: tuple[int, int] = (8, 8),
    colour: Sequence[int] = (255, 255, 255),
    background: Sequence[int] = (0, 0, 0),
) -> np.ndarray:
    """Write one or more lines of text on a filled background whose top-left corner is at ``origin``.

    Draws **in place** (meant for the fresh image :func:`draw_detections` returns) and returns ``image``.
    """
    _check_image(image)
    lines = [text] if isinstance(text, str) else list(text)
    font_scale, thickness = _text_style(*image.shape[:2])
    padding = _label_padding(font_scale)
    x, y = origin
    for line in lines:
        (_, text_height), baseline = cv2.getTextSize(line, _FONT, font_scale, thickness)
        line_height = text_height + baseline + 2 * padding
        # Anchored at the bottom-left so that the label's rectangle starts at (x, y) (labels sit above anchors).
        _draw_label(image, line, (x, y + line_height), background, font_scale, thickness, colour)
        y += line_height
    return image


def draw_fps(image: np.ndarray, fps: float) -> np.ndarray:
    """Write ``"FPS: 12.3"`` in the top-left corner of ``image`` (in place; returns ``image``)."""
    return draw_text(image, f"FPS: {fps:.1f}")


def label_rectangle(
    text_size: tuple[int, int], anchor: tuple[int, int], image_size: tuple[int, int], padding: int = 2
) -> tuple[int, int, int, int]:
    """Where a label's background goes: ``(x0, y0, x1, y1)``, inclusive, inside the image when it fits.

    The label sits just above ``anchor`` (a box's top-left corner), or just below it when there is no room
    above, and is shifted left or up where it would cross the right or bottom edge.

    Args:
        text_size: ``(width, height)`` of the text including its baseline.
        anchor: ``(x, y)`` pixel the label attaches to.
        image_size: ``(height, width)``.
    """
    image_height, image_width = image_size
    width = text_size[0] + 2 * padding
    height = text_size[1] + 2 * padding
    x, y = anchor
    top = y - height if y - height >= 0 else y
    left = min(max(x, 0), image_width - width)
    top = min(max(top, 0), image_height - height)
    # A label larger than the image keeps its start visible rather than its end.
    left, top = max(left, 0), max(top, 0)
    return left, top, left + width - 1, top + height - 1


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        description = (
            f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        )
        raise ValueError(f"image: expected a [H, W, 3] BGR uint8 array, got {description}")


def _instance_colours(
    count: int, instance_ids: Sequence[int] | np.ndarray | None, palette: Sequence[Sequence[int]] | np.ndarray | None
) -> np.ndarray:
    colours = DEFAULT_PALETTE if palette is None else np.asarray(palette)
    if colours.ndim != 2 or colours.shape[1] != 3 or colours.shape[0] == 0:
        raise ValueError(f"palette: expected a non-empty [K, 3] list of BGR colours, got shape {colours.shape}")
    ids = np.arange(count) if instance_ids is None else np.asarray(instance_ids, dtype=np.int64).reshape(-1)
    if ids.shape[0] != count:
        raise ValueError(f"instance_ids: expected one id per detection ({count}), got {ids.shape[0]}")
    return np.clip(colours, 0, 255).astype(np.uint8)[ids % colours.shape[0]]


def _label_texts(detections: Detections, show_names: bool, show_scores: bool) -> list[str]:
    names = detections.class_names
    texts = []
    for label, score in zip(detections.labels.tolist(), detections.scores.tolist()):
        parts = []
        if show_names:
            # A label outside the name table (a model trained on another dataset) still gets a readable tag.
            parts.append(names[label] if 0 <= label < len(names) else f"class {label}")
        if show_scores:
            parts.append(f"{score:.2f}")
        texts.append(" ".join(parts))
    return texts


def _pixel_boxes(boxes: np.ndarray, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Boxes as integer pixel corners clipped to the image (cv2 wants ints; a stray NaN must not crash)."""
    boxes = np.nan_to_num(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    boxes = np.round(boxes)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width - 1)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height - 1)
    return [tuple(box) for box in boxes.astype(int).tolist()]


def _text_style(height: int, width: int) -> tuple[float, int]:
    """Font scale and stroke that stay readable from thumbnails to 4K frames."""
    scale = float(np.clip(min(height, width) / 1000.0, 0.4, 1.5))
    return scale, 1 if scale < 0.8 else 2


def _label_padding(font_scale: float) -> int:
    return max(2, round(4 * font_scale))


def _bgr(colour: np.ndarray | Sequence[int]) -> tuple[int, int, int]:
    return tuple(int(c) for c in colour)


def _blend_mask(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray, alpha: float, thickness: int) -> None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[y0:y1].any(axis=0))
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    inside = mask[y0:y1, x0:x1].view(np.uint8)  # OpenCV takes 0/1 bytes as a mask; bool is not a cv2 type
    region = canvas[y0:y1, x0:x1]
    # (1 - alpha) * pixel + alpha * colour, computed by OpenCV on the rectangle, then copied where the mask is
    # set: several times faster than numpy's boolean indexing on large masks.
    blended = cv2.addWeighted(region, 1.0 - alpha, region, 0.0, 0.0)
    cv2.add(blended, (*(alpha * float(c) for c in colour), 0.0), dst=blended)
    cv2.copyTo(blended, inside, region)  # writes through the view into ``canvas``
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
    cv2.drawContours(canvas, contours, -1, _bgr(colour), thickness, cv2.LINE_AA)


def _draw_label(
    canvas: np.ndarray,
    text: str,
    anchor: tuple[int, int],
    background: np.ndarray | Sequence[int],
    font_scale: float,
    thickness: int,
    text_colour: Sequence[int] | None = None,
) -> None:
    (text_width, text_height), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    padding = _label_padding(font_scale)
    x0, y0, x1, y1 = label_rectangle((text_width, text_height + baseline), anchor, canvas.shape[:2], padding)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), _bgr(background), cv2.FILLED)
    if text_colour is None:
        # Dark text on light colours and light text on dark ones (ITU-R BT.601 luma).
        blue, green, red = (int(c) for c in background)
        text_colour = (0, 0, 0) if 0.114 * blue + 0.587 * green + 0.299 * red > 140 else (255, 255, 255)
    cv2.putText(
        canvas,
        text,
        (x0 + padding, y0 + padding + text_height),
        _FONT,
        font_scale,
        _bgr(text_colour),
        thickness,
        cv2.LINE_AA,
    )
