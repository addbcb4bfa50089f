"""Box coding and overlap, in the pixel conventions of Detectron and OpenVINO.

Boxes are ``[..., 4]`` tensors ``(x0, y0, x1, y1)``. ``offset`` selects the convention: with ``offset=1`` (the
legacy Detectron convention the pretrained weights and the OpenVINO operators use) a box covers the pixels
``x0..x1`` inclusive, so its width is ``x1 - x0 + 1``; with ``offset=0`` the width is ``x1 - x0``.

The arithmetic follows OpenVINO's CPU kernels operation by operation so that float32 results agree to the last
bit or two, which matters where a value is compared against a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

# Largest log-space width/height change a delta may ask for: the clamp of Detectron and OpenVINO.
BBOX_XFORM_CLIP = math.log(1000.0 / 16.0)


def decode_boxes(
    boxes: Tensor,
    deltas: Tensor,
    *,
    weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    max_delta_log_wh: float = BBOX_XFORM_CLIP,
    offset: float = 1.0,
) -> Tensor:
    """Apply regression deltas ``(dx, dy, dw, dh)`` (divided by ``weights``) to reference boxes.

    ``boxes`` broadcasts against ``deltas``; both end in 4. The log-space deltas are clamped at
    ``max_delta_log_wh`` from above, so a huge delta cannot overflow ``exp``.
    """
    x0, y0, x1, y1 = boxes.unbind(-1)
    widths = x1 - x0 + offset
    heights = y1 - y0 + offset
    ctr_x = x0 + 0.5 * widths
    ctr_y = y0 + 0.5 * heights

    wx, wy, ww, wh = (float(w) for w in weights)
    dx, dy, dw, dh = deltas.unbind(-1)
    if (wx, wy, ww, wh) != (1.0, 1.0, 1.0, 1.0):
        dx, dy, dw, dh = dx / wx, dy / wy, dw / ww, dh / wh

    pred_ctr_x = dx * widths + ctr_x
    pred_ctr_y = dy * heights + ctr_y
    pred_w = torch.exp(torch.clamp(dw, max=max_delta_log_wh)) * widths
    pred_h = torch.exp(torch.clamp(dh, max=max_delta_log_wh)) * heights
    return torch.stack(
        (
            pred_ctr_x - 0.5 * pred_w,
            pred_ctr_y - 0.5 * pred_h,
            pred_ctr_x + 0.5 * pred_w - offset,
            pred_ctr_y + 0.5 * pred_h - offset,
        ),
        dim=-1,
    )


def encode_boxes(
    boxes: Tensor, targets: Tensor, *, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), offset: float = 1.0
) -> Tensor:
    """The deltas that :func:`decode_boxes` turns ``boxes`` into ``targets`` with (the training targets)."""
    widths = boxes[..., 2] - boxes[..., 0] + offset
    heights = boxes[..., 3] - boxes[..., 1] + offset
    ctr_x = boxes[..., 0] + 0.5 * widths
    ctr_y = boxes[..., 1] + 0.5 * heights
    target_widths = targets[..., 2] - targets[..., 0] + offset
    target_heights = targets[..., 3] - targets[..., 1] + offset
    target_ctr_x = targets[..., 0] + 0.5 * target_widths
    target_ctr_y = targets[..., 1] + 0.5 * target_heights
    wx, wy, ww, wh = (float(w) for w in weights)
    return torch.stack(
        (
            wx * (target_ctr_x - ctr_x) / widths,
            wy * (target_ctr_y - ctr_y) / heights,
            ww * torch.log(target_widths / widths),
            wh * torch.log(target_heights / heights),
        ),
        dim=-1,
    )


def box_area(boxes: Tensor, *, offset: float = 1.0) -> Tensor:
    """Areas of ``[..., 4]`` boxes."""
    return (boxes[..., 2] - boxes[..., 0] + offset) * (boxes[..., 3] - boxes[..., 1] + offset)


def box_iou(boxes1: Tensor, boxes2: Tensor, *, offset: float = 1.0) -> Tensor:
    """Pairwise intersection over union of ``[..., N, 4]`` and ``[..., M, 4]`` boxes, ``[..., N, M]``.

    Disjoint boxes have IoU 0 even where ``offset`` would give their gap a positive "intersection" (boxes less
    than a pixel apart in the +1 convention), as in OpenVINO. Two degenerate boxes of zero area give NaN, which
    compares false with any threshold, as in OpenVINO's proposal NMS.
    """
    a = boxes1[..., :, None, :]
    b = boxes2[..., None, :, :]
    inter_w = torch.clamp(torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0]) + offset, min=0)
    inter_h = torch.clamp(torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1]) + offset, min=0)
    inter = inter_w * inter_h
    union = (box_area(a, offset=offset) + box_area(b, offset=offset)) - inter
    iou = inter / union
    overlapping = (
        (a[..., 0] <= b[..., 2]) & (a[..., 1] <= b[..., 3]) & (b[..., 0] <= a[..., 2]) & (b[..., 1] <= a[..., 3])
    )
    return torch.where(overlapping, iou, torch.zeros((), dtype=iou.dtype, device=iou.device))


def clip_boxes(boxes: Tensor, height: float | Tensor, width: float | Tensor, *, offset: float = 1.0) -> Tensor:
    """Clip boxes to the image ``[0, width - offset] x [0, height - offset]``."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    max_x = width - offset
    max_y = height - offset
    return torch.stack(
        (
            torch.clamp(torch.minimum(x0, _as(max_x, x0)), min=0),
            torch.clamp(torch.minimum(y0, _as(max_y, y0)), min=0),
            torch.clamp(torch.minimum(x1, _as(max_x, x1)), min=0),
            torch.clamp(torch.minimum(y1, _as(max_y, y1)), min=0),
        ),
        dim=-1,
    )


def _as(value: float | Tensor, like: Tensor) -> Tensor:
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)
