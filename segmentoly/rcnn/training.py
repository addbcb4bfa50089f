"""The training forward pass of :class:`~segmentoly.rcnn.mask_rcnn.MaskRCNN`: the losses of DESIGN.md section 5.

RPN: binary cross-entropy on the sampled anchors and smooth-L1 (beta 1/9) on the positives, both divided by the
number of sampled anchors. Box head: cross-entropy over the sampled ROIs and smooth-L1 (beta 1) on the class
specific deltas of the foreground ROIs, divided by the number of sampled ROIs. Mask head: per-pixel binary
cross-entropy on the ground-truth class's mask of each foreground ROI.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from segmentoly import ops
from segmentoly.rcnn.roi_heads import select_class_masks
from segmentoly.rcnn.targets import anchor_targets, mask_targets, proposal_targets

LOSS_NAMES = ("loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box", "loss_mask")


def smooth_l1(input: Tensor, target: Tensor, beta: float) -> Tensor:
    """Summed smooth-L1 (Huber with slope 1) loss."""
    return F.smooth_l1_loss(input, target, beta=beta, reduction="sum")


def flatten_levels(outputs: Sequence[Tensor], channels_per_anchor: int) -> Tensor:
    """RPN outputs of all levels ``[B, A * c, H, W]`` as ``[B, sum(H * W * A), c]`` in the anchors' order."""
    flat = []
    for output in outputs:
        batch, channels, height, width = output.shape
        anchors = channels // channels_per_anchor
        flat.append(
            output.reshape(batch, anchors, channels_per_anchor, height, width)
            .permute(0, 3, 4, 1, 2)
            .reshape(batch, -1, channels_per_anchor)
        )
    return torch.cat(flat, dim=1)


def mask_rcnn_losses(
    model,
    images: Tensor,
    targets: Sequence,
    image_sizes: Sequence[tuple[int, int]],
    generator: torch.Generator | None = None,
) -> dict:
    """The losses of one batch: ``images`` ``[B, 3, H, W]`` padded, one target and one (unpadded) size each.

    Anchors and ROIs are sampled with ``generator`` (a CPU generator; the global one when None).
    """
    if targets is None or image_sizes is None:
        raise ValueError("training mode needs targets and image_sizes (call model.eval() for inference)")
    if len(targets) != images.shape[0] or len(image_sizes) != images.shape[0]:
        raise ValueError(f"expected one target and one size per image ({images.shape[0]})")
    config = model.config
    rpn_config, box_config, mask_config = config.rpn, config.box_head, config.mask_head
    rpn_features, roi_features = model.features(images)
    logits, deltas = model.rpn.head(rpn_features)
    anchors = model.rpn.anchors(rpn_features, images)
    all_anchors = torch.cat(anchors)
    flat_logits = flatten_levels(logits, 1)[..., 0]
    flat_deltas = flatten_levels(deltas, 4)

    # RPN losses over the sampled anchors of every image.
    rpn_cls, rpn_box, num_sampled = flat_logits.new_zeros(()), flat_logits.new_zeros(()), 0
    for index, (target, size) in enumerate(zip(targets, image_sizes)):
        sampled = anchor_targets(
            all_anchors,
            target.boxes,
            target.crowd_boxes,
            size,
            positive_iou=rpn_config.positive_iou,
            negative_iou=rpn_config.negative_iou,
            straddle_threshold=rpn_config.straddle_threshold,
            batch_size=rpn_config.batch_size_per_image,
            positive_fraction=rpn_config.positive_fraction,
            generator=generator,
        )
        rpn_cls = rpn_cls + F.binary_cross_entropy_with_logits(
            flat_logits[index, sampled.indices], sampled.labels.to(flat_logits.dtype), reduction="sum"
        )
        positive = sampled.indices[: sampled.num_positive]
        rpn_box = rpn_box + smooth_l1(flat_deltas[index, positive], sampled.box_targets, rpn_config.smooth_l1_beta)
        num_sampled += sampled.indices.numel()
    num_sampled = max(num_sampled, 1)

    # Proposals (no gradient), matched and sampled per image.
    sampled_rois, labels, box_targets, foreground, mask_goals = [], [], [], [], []
    for index, (target, (height, width)) in enumerate(zip(targets, image_sizes)):
        one = images.new_ones(())
        image_info = torch.stack((one * height, one * width, one))
        with torch.no_grad():
            proposals, _ = model.rpn.proposals(image_info, anchors, logits, deltas, image_index=index)
        picked = proposal_targets(
            proposals,
            target.boxes,
            target.labels,
            target.crowd_boxes,
            foreground_iou=box_config.foreground_iou,
            background_iou_low=box_config.background_iou_low,
            batch_size=box_config.batch_size_per_image,
            positive_fraction=box_config.positive_fraction,
            regression_weights=box_config.regression_weights,
            generator=generator,
        )
        image_column = picked.rois.new_full((picked.rois.shape[0], 1), index)
        sampled_rois.append(torch.cat((image_column, picked.rois), dim=1))
        labels.append(picked.labels)
        box_targets.append(picked.box_targets)
        foreground.append(sampled_rois[-1][: picked.num_foreground])
        mask_goals.append(
            mask_targets(target.masks, picked.rois[: picked.num_foreground], picked.matched_gt, model.mask_size)
        )
    rois = torch.cat(sampled_rois)
    labels = torch.cat(labels)
    box_targets = torch.cat(box_targets)
    foreground_rois = torch.cat(foreground)

    pooled = ops.multilevel_roi_align(
        roi_features,
        rois,
        output_size=box_config.resolution,
        sampling_ratio=box_config.sampling_ratio,
        pyramid_scales=model.roi_strides,
    )
    class_logits, box_deltas = model.box_predictor(model.box_head(pooled))
    loss_cls = F.cross_entropy(class_logits, labels)
    is_foreground = labels > 0
    foreground_deltas = box_deltas[is_foreground].reshape(-1, config.num_classes, 4)
    foreground_labels = labels[is_foreground]
    foreground_deltas = foreground_deltas[torch.arange(foreground_labels.numel()), foreground_labels]
    loss_box = smooth_l1(foreground_deltas, box_targets, box_config.smooth_l1_beta) / max(labels.numel(), 1)

    mask_pooled = ops.multilevel_roi_align(
        roi_features,
        foreground_rois,
        output_size=mask_config.resolution,
        sampling_ratio=mask_config.sampling_ratio,
        pyramid_scales=model.roi_strides,
    )
    mask_logits = select_class_masks(model.mask_logits(mask_pooled), foreground_labels)
    goals = torch.cat(mask_goals)
    if goals.numel():
        loss_mask = F.binary_cross_entropy_with_logits(mask_logits, goals)
    else:  # no foreground ROI in the batch: a zero that still reaches every mask-head parameter
        loss_mask = mask_logits.sum() * 0.0

    return {
        "loss_rpn_cls": rpn_cls / num_sampled,
        "loss_rpn_box": rpn_box / num_sampled,
        "loss_cls": loss_cls,
        "loss_box": loss_box,
        "loss_mask": loss_mask,
    }
