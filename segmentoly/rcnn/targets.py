"""Training targets: matching anchors and proposals to ground truth, sampling them, and mask targets.

Detectron's recipe (DESIGN.md section 5), in the +1 box convention. Sampling draws from the ``generator`` it is
given (on the CPU): the trainer seeds one per micro-batch from the run's seed, the step and the micro-batch's
place in the global batch, so the samples do not depend on how the batch is split across processes, and a
resumed run samples exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from segmentoly import ops

#: A box whose area lies more than this fraction inside a crowd region is neither positive nor negative
#: (Detectron's TRAIN.CROWD_FILTER_THRESH).
CROWD_OVERLAP = 0.7


def intersection_over_area(boxes: Tensor, regions: Tensor) -> Tensor:
    """For each box ``[N, 4]``, the largest fraction of its area inside one of ``regions`` ``[M, 4]`` (+1)."""
    if regions.shape[0] == 0 or boxes.shape[0] == 0:
        return boxes.new_zeros(boxes.shape[0])
    a = boxes[:, None, :]
    b = regions[None, :, :]
    inter_w = torch.clamp(torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0]) + 1, min=0)
    inter_h = torch.clamp(torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1]) + 1, min=0)
    area = ops.box_area(boxes, offset=1.0).clamp(min=1e-6)
    return (inter_w * inter_h).max(dim=1).values / area


def sample_labels(
    labels: Tensor, batch_size: int, positive_fraction: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random positives (``labels > 0``, at most ``positive_fraction * batch_size``) and negatives
    (``labels == 0``) filling the batch; ``-1`` is ignored. Returns both index sets."""
    positive = torch.nonzero(labels > 0).flatten()
    negative = torch.nonzero(labels == 0).flatten()
    num_positive = min(int(batch_size * positive_fraction), positive.numel())
    num_negative = min(batch_size - num_positive, negative.numel())
    positive = positive[torch.randperm(positive.numel(), generator=generator)[:num_positive].to(labels.device)]
    negative = negative[torch.randperm(negative.numel(), generator=generator)[:num_negative].to(labels.device)]
    return positive, negative


@dataclass
class AnchorTargets:
    """RPN targets of one image: sampled anchor indices, their objectness labels, and box targets of the
    positive ones (the first ``num_positive`` of ``indices``)."""

    indices: Tensor
    labels: Tensor
    box_targets: Tensor
    num_positive: int


def anchor_targets(
    anchors: Tensor,
    gt_boxes: Tensor,
    crowd_boxes: Tensor,
    image_size: tuple[int, int],
    *,
    positive_iou: float,
    negative_iou: float,
    straddle_threshold: float,
    batch_size: int,
    positive_fraction: float,
    generator: torch.Generator | None = None,
) -> AnchorTargets:
    """Label and sample the anchors of one image (Detectron's ``_get_rpn_blobs``).

    Anchors leaving the image by more than ``straddle_threshold`` are ignored. An anchor is positive when its IoU
    with a ground-truth box reaches ``positive_iou`` or when it is (one of) the best anchor(s) of a ground-truth
    box; negative below ``negative_iou``; ignored in between and when mostly inside a crowd region.
    """
    height, width = image_size
    labels = torch.full((anchors.shape[0],), -1, dtype=torch.int64, device=anchors.device)
    if straddle_threshold >= 0:
        inside = (
            (anchors[:, 0] >= -straddle_threshold)
            & (anchors[:, 1] >= -straddle_threshold)
            & (anchors[:, 2] < width + straddle_threshold)
            & (anchors[:, 3] < height + straddle_threshold)
        )
    else:
        inside = torch.ones_like(labels, dtype=torch.bool)
    matched = torch.zeros_like(labels)
    if gt_boxes.shape[0] == 0:
        labels[inside] = 0
    else:
        iou = ops.box_iou(anchors, gt_boxes, offset=1.0)
        iou[~inside] = -1.0
        best_iou, matched = iou.max(dim=1)
        labels[inside & (best_iou < negative_iou)] = 0
        # The best anchor(s) of each ground truth, even below the threshold (but not for a box no anchor touches).
        best_per_gt = iou.max(dim=0).values
        is_best = (iou == best_per_gt[None, :]) & (best_per_gt[None, :] > 0)
        labels[is_best.any(dim=1)] = 1
        labels[best_iou >= positive_iou] = 1
    crowded = (intersection_over_area(anchors, crowd_boxes) > CROWD_OVERLAP) & (labels == 0)
    labels[crowded] = -1

    positive, negative = sample_labels(labels, batch_size, positive_fraction, generator)
    indices = torch.cat((positive, negative))
    box_targets = ops.encode_boxes(anchors[positive], gt_boxes[matched[positive]], offset=1.0)
    return AnchorTargets(indices, labels[indices], box_targets, positive.numel())


@dataclass
class ProposalTargets:
    """Sampled ROIs of one image for the box and mask heads; foreground ROIs come first."""

    rois: Tensor  # [R, 4]
    labels: Tensor  # [R], 0 for background
    box_targets: Tensor  # [F, 4] for the foreground ROIs
    matched_gt: Tensor  # [F] index of each foreground ROI's ground truth
    num_foreground: int


def proposal_targets(
    proposals: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    crowd_boxes: Tensor,
    *,
    foreground_iou: float,
    background_iou_low: float,
    batch_size: int,
    positive_fraction: float,
    regression_weights: tuple[float, float, float, float],
    generator: torch.Generator | None = None,
) -> ProposalTargets:
    """Add the ground-truth boxes to the proposals, match, and sample (Detectron's ``_sample_rois``).

    Foreground: IoU with a ground truth of at least ``foreground_iou``; background: IoU in
    ``[background_iou_low, foreground_iou)``; proposals mostly inside a crowd region are neither.
    """
    rois = torch.cat((proposals, gt_boxes)) if gt_boxes.shape[0] else proposals
    labels = torch.full((rois.shape[0],), -1, dtype=torch.int64, device=rois.device)
    matched = torch.zeros_like(labels)
    if gt_boxes.shape[0]:
        best_iou, matched = ops.box_iou(rois, gt_boxes, offset=1.0).max(dim=1)
        background = (best_iou < foreground_iou) & (best_iou >= background_iou_low)
        labels[background] = 0
        foreground = best_iou >= foreground_iou
        labels[foreground] = gt_labels[matched[foreground]]
    else:
        labels[:] = 0
    crowded = intersection_over_area(rois, crowd_boxes) > CROWD_OVERLAP
    crowded[proposals.shape[0] :] = False  # ground-truth boxes are never ignored
    labels[crowded] = -1

    positive, negative = sample_labels(labels, batch_size, positive_fraction, generator)
    keep = torch.cat((positive, negative))
    box_targets = ops.encode_boxes(rois[positive], gt_boxes[matched[positive]], weights=regression_weights, offset=1.0)
    return ProposalTargets(rois[keep], labels[keep], box_targets, matched[positive], positive.numel())


def mask_targets(gt_masks: Tensor, rois: Tensor, matched_gt: Tensor, size: int) -> Tensor:
    """``[F, size, size]`` binary targets: each ROI's ground-truth mask sampled on the ROI's grid.

    ROIAlign on the full-image bitmap puts the mask on the same geometry the inference pastes it back with
    (cell ``j`` of ``M`` covers ``x0 + j (x1 - x0) / M`` onwards, see
    :func:`segmentoly.inference.postprocess.paste_masks`).
    """
    if rois.shape[0] == 0:
        return rois.new_zeros((0, size, size))
    # Only the masks that foreground ROIs matched are converted to float: full-image masks are large.
    used, position = torch.unique(matched_gt, return_inverse=True)
    masks = gt_masks[used][:, None].to(rois.dtype)
    index = torch.cat((position[:, None].to(rois.dtype), rois), dim=1)
    sampled = ops.roi_align(masks, index, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=False)
    return (sampled[:, 0] >= 0.5).to(rois.dtype)
