"""From raw network outputs to :class:`Detections` in original image coordinates: shared by every backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from segmentoly.inference.detections import Detections
from segmentoly.inference.preprocess import Prepared


def paste_masks(
    masks: np.ndarray, boxes: np.ndarray, image_size: tuple[int, int], threshold: float = 0.5
) -> np.ndarray:
    """Paste ``[N, M, M]`` mask probabilities into full images ``[N, H, W]`` (bool), Detectron's way.

    The ``M x M`` mask covers its box with a margin: it is padded by one pixel, the box is expanded by
    ``(M + 2) / M`` about its centre and truncated to integers, the padded mask is resized bilinearly to that
    box and thresholded, and the part inside the image is placed.
    """
    count = masks.shape[0]
    height, width = image_size
    out = np.zeros((count, height, width), dtype=bool)
    if count == 0:
        return out
    size = masks.shape[-1]
    scale = (size + 2.0) / size
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    ctr_x = (boxes[:, 2] + boxes[:, 0]) * 0.5
    ctr_y = (boxes[:, 3] + boxes[:, 1]) * 0.5
    expanded = np.stack([ctr_x - half_w, ctr_y - half_h, ctr_x + half_w, ctr_y + half_h], axis=1).astype(np.int32)
    padded = np.zeros((size + 2, size + 2), np.float32)
    for i in range(count):
        x0, y0, x1, y1 = (int(v) for v in expanded[i])
        box_w = max(x1 - x0 + 1, 1)
        box_h = max(y1 - y0 + 1, 1)
        left, top = max(x0, 0), max(y0, 0)
        right, bottom = min(x1 + 1, width), min(y1 + 1, height)
        if right <= left or bottom <= top:
            continue
        padded[1:-1, 1:-1] = masks[i]
        resized = cv2.resize(padded, (box_w, box_h)) > threshold
        out[i, top:bottom, left:right] = resized[top - y0 : bottom - y0, left - x0 : right - x0]
    return out


def postprocess(
    raw: Mapping[str, np.ndarray],
    prepared: Prepared,
    *,
    class_names: Sequence[str],
    score_threshold: float = 0.0,
    mask_threshold: float = 0.5,
) -> Detections:
    """Drop the padding rows, sort by score, bring boxes back to the original image and clip them, and paste
    the masks.

    ``raw`` holds the model contract's outputs: ``boxes [K, 4]`` in network pixels, ``scores [K]``,
    ``classes [K]`` (0 for padding) and ``masks [K, M, M]``.
    """
    classes = np.asarray(raw["classes"]).astype(np.int64).reshape(-1)
    scores = np.asarray(raw["scores"], np.float32).reshape(-1)
    keep = np.flatnonzero((classes > 0) & (scores >= score_threshold))
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    height, width = prepared.original_size
    scale_y, scale_x = prepared.scale
    boxes = np.asarray(raw["boxes"], np.float32)[keep] / np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width - 1)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height - 1)
    masks = paste_masks(np.asarray(raw["masks"], np.float32)[keep], boxes, (height, width), mask_threshold)
    return Detections(boxes, scores[keep], classes[keep], masks, tuple(class_names))
