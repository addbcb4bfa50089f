"""Greedy non-maximum suppression.

The pairwise overlaps are computed in one vectorised step; the greedy pass that follows is inherently
sequential (whether a box survives depends on which earlier boxes survived), so it runs as a short scan on the
host over a boolean "would suppress" matrix, the same split torchvision's CUDA kernel makes. The scan touches
only surviving boxes, so it costs microseconds per kept box.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from segmentoly.ops._checks import check_finite, check_size, check_tensor
from segmentoly.ops.boxes import box_iou


def greedy_keep(suppresses: np.ndarray, max_output: int = -1) -> np.ndarray:
    """Greedy selection over candidates already sorted best first.

    ``suppresses[b, i, j]`` says that candidate ``i`` removes candidate ``j`` of batch ``b`` if ``i`` is kept
    (only ``j > i`` is read). Returns a boolean ``[B, N]`` mask of kept candidates, at most ``max_output`` per
    batch when it is positive.
    """
    batches, count, _ = suppresses.shape
    keep = np.zeros((batches, count), dtype=bool)
    for b in range(batches):
        removed = np.zeros(count, dtype=bool)
        rows = suppresses[b]
        kept = 0
        for i in range(count):
            if removed[i]:
                continue
            keep[b, i] = True
            kept += 1
            if kept == max_output:
                break
            removed |= rows[i]
    return keep


def nms_sorted(boxes: Tensor, iou_threshold: float, *, offset: float = 0.0, max_output: int = -1) -> Tensor:
    """NMS over boxes already in priority order; returns the kept positions in that order.

    A box is removed when its IoU with a kept, higher-priority box is greater than ``iou_threshold``.
    """
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    suppresses = box_iou(boxes, boxes, offset=offset) > iou_threshold
    keep = greedy_keep(suppresses.cpu().numpy()[None], max_output)[0]
    return torch.from_numpy(np.flatnonzero(keep)).to(boxes.device)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, *, offset: float = 0.0, max_output: int = -1) -> Tensor:
    """Greedy NMS: indices of the kept boxes, best score first.

    Boxes are visited by descending score, ties by index; a box is removed when its IoU with an already kept
    box is greater than ``iou_threshold``. ``offset`` is the box convention (see :mod:`segmentoly.ops.boxes`).
    ``max_output`` caps the number kept (no cap when not positive).
    """
    check_tensor("boxes", boxes, 2, "[N, 4]")
    check_size("boxes", boxes, 1, 4, "[N, 4]")
    check_tensor("scores", scores, 1, "[N]")
    check_size("scores", scores, 0, boxes.shape[0], "[N] (one per box)")
    check_finite("boxes", boxes)
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[nms_sorted(boxes[order], iou_threshold, offset=offset, max_output=max_output)]


def batched_nms(
    boxes: Tensor,
    scores: Tensor,
    groups: Tensor,
    iou_threshold: float,
    *,
    offset: float = 0.0,
    max_output_per_group: int = -1,
) -> Tensor:
    """NMS applied independently within each group (class, image); indices of the kept boxes.

    The result is ordered by group, then by descending score within a group.
    """
    check_tensor("boxes", boxes, 2, "[N, 4]")
    check_size("boxes", boxes, 1, 4, "[N, 4]")
    check_tensor("scores", scores, 1, "[N]")
    check_tensor("groups", groups, 1, "[N]", floating=False)
    check_size("scores", scores, 0, boxes.shape[0], "[N] (one per box)")
    check_size("groups", groups, 0, boxes.shape[0], "[N] (one per box)")
    check_finite("boxes", boxes)
    order, starts, sizes = group_by_score(scores, groups)
    keep = grouped_nms_sorted(
        boxes[order], starts, sizes, iou_threshold, offset=offset, max_output=max_output_per_group
    )
    return order[keep]


def group_by_score(scores: Tensor, groups: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Order candidates by group, then by descending score, ties by index.

    Returns the order and, per non-empty group, where its run starts and how long it is.
    """
    by_score = torch.sort(scores, descending=True, stable=True).indices
    order = by_score[torch.sort(groups[by_score], stable=True).indices]
    _, sizes = torch.unique_consecutive(groups[order], return_counts=True)
    starts = torch.cumsum(sizes, 0) - sizes
    return order, starts, sizes


def grouped_nms_sorted(
    boxes: Tensor,
    starts: Tensor,
    sizes: Tensor,
    iou_threshold: float,
    *,
    offset: float,
    max_output: int = -1,
    max_elements: int = 1 << 24,
) -> Tensor:
    """NMS within consecutive runs of boxes (each run in priority order); kept positions, in order.

    Runs are padded to a common length and processed together, in chunks of at most ``max_elements``
    pairwise overlaps, so that many small groups (classes) cost one vectorised step instead of one each.
    """
    device = boxes.device
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    starts_list = starts.tolist()
    sizes_list = sizes.tolist()
    # Longest runs first, so that each chunk pads to a similar length.
    run_order = sorted(range(len(sizes_list)), key=lambda r: -sizes_list[r])
    keep_mask = torch.zeros(boxes.shape[0], dtype=torch.bool)
    position = 0
    while position < len(run_order):
        longest = sizes_list[run_order[position]]
        chunk = run_order[position : position + max(1, max_elements // (longest * longest))]
        position += len(chunk)
        chunk_starts = torch.tensor([starts_list[r] for r in chunk], device=device)
        chunk_sizes = torch.tensor([sizes_list[r] for r in chunk], device=device)
        slots = torch.arange(longest, device=device)
        valid = slots[None, :] < chunk_sizes[:, None]
        index = torch.where(valid, chunk_starts[:, None] + slots[None, :], 0)
        padded = boxes[index]  # [runs, longest, 4]
        suppresses = box_iou(padded, padded, offset=offset) > iou_threshold
        suppresses &= valid[:, None, :] & valid[:, :, None]
        keep = torch.from_numpy(greedy_keep(suppresses.cpu().numpy(), max_output))
        keep &= valid.cpu()
        keep_mask[index.cpu()[keep]] = True
    return torch.from_numpy(np.flatnonzero(keep_mask.numpy())).to(device)
