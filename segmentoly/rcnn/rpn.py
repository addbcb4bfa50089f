"""Region Proposal Network: the head, the anchors, and proposals from its outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from segmentoly import ops
from segmentoly.rcnn.anchors import grid_priors


@dataclass
class RPNConfig:
    """RPN settings; defaults are Detectron's FPN recipe."""

    anchor_sizes: tuple[tuple[float, ...], ...] = ((32.0,), (64.0,), (128.0,), (256.0,), (512.0,))  # per level
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    nms_threshold: float = 0.7
    min_size: float = 0.0
    # Boxes kept per level before and after NMS, and per image after merging the levels.
    pre_nms_count_train: int = 2000
    post_nms_count_train: int = 2000
    proposals_train: int = 2000
    pre_nms_count_test: int = 1000
    post_nms_count_test: int = 1000
    proposals_test: int = 1000
    # Training: anchor sampling and matching.
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    positive_iou: float = 0.7
    negative_iou: float = 0.3
    straddle_threshold: float = 0.0  # anchors leaving the image by more than this are ignored; < 0 keeps all
    smooth_l1_beta: float = 1.0 / 9.0


class RPNHead(nn.Module):
    """A 3x3 convolution shared by all levels, then per-anchor objectness logits and box deltas."""

    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.objectness = nn.Conv2d(channels, num_anchors, 1)
        self.deltas = nn.Conv2d(channels, 4 * num_anchors, 1)
        for layer in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, deltas = [], []
        for feature in features:
            x = torch.relu(self.conv(feature))
            logits.append(self.objectness(x))
            deltas.append(self.deltas(x))
        return logits, deltas


class RPN(nn.Module):
    """The RPN over the levels of a feature pyramid (or the single C4 level)."""

    def __init__(self, config: RPNConfig, channels: int, strides: Sequence[int]) -> None:
        super().__init__()
        if len(config.anchor_sizes) != len(strides):
            raise ValueError(
                f"rpn.anchor_sizes: expected one tuple of sizes per feature level ({len(strides)}), "
                f"got {len(config.anchor_sizes)}"
            )
        counts = {len(sizes) for sizes in config.anchor_sizes}
        if len(counts) != 1:
            raise ValueError("rpn.anchor_sizes: every level needs the same number of sizes (the head is shared)")
        self.config = config
        self.strides = list(strides)
        self.num_anchors = counts.pop() * len(config.aspect_ratios)
        self.head = RPNHead(channels, self.num_anchors)
        for level, (stride, sizes) in enumerate(zip(strides, config.anchor_sizes)):
            self.register_buffer(f"priors{level}", grid_priors(stride, sizes, config.aspect_ratios), persistent=False)

    def priors(self, level: int) -> Tensor:
        return getattr(self, f"priors{level}")

    def anchors(self, features: Sequence[Tensor], image: Tensor) -> list[Tensor]:
        """Anchors ``[H * W * A, 4]`` of every level, in input pixels."""
        return [
            ops.prior_grid_generator(self.priors(level), feature, image, stride_x=float(stride), stride_y=float(stride))
            for level, (feature, stride) in enumerate(zip(features, self.strides))
        ]

    def proposals(
        self,
        image_info: Tensor,
        anchors: Sequence[Tensor],
        logits: Sequence[Tensor],
        deltas: Sequence[Tensor],
        image_index: int = 0,
    ) -> tuple[Tensor, Tensor]:
        """Proposals of one image of the batch, all levels together: ``[P, 4]`` boxes and ``[P]`` scores.

        In eval mode this is the exported graph: per-level proposals with fixed output sizes and the best
        ``proposals_test`` of them by :func:`segmentoly.ops.topk_rois` (scores are then not needed and zero).
        In training the padding is dropped and the best ``proposals_train`` are returned with their scores.
        """
        training = self.training
        config = self.config
        pre_nms = config.pre_nms_count_train if training else config.pre_nms_count_test
        post_nms = config.post_nms_count_train if training else config.post_nms_count_test
        rois, scores = [], []
        for level_anchors, level_logits, level_deltas in zip(anchors, logits, deltas):
            # Proposals are constants for the heads (as in Detectron): no gradient flows back through them.
            level_rois, level_scores = ops.generate_proposals_single_image(
                image_info,
                level_anchors,
                level_deltas[image_index].detach(),
                torch.sigmoid(level_logits[image_index].detach()),
                min_size=config.min_size,
                nms_threshold=config.nms_threshold,
                pre_nms_count=pre_nms,
                post_nms_count=post_nms,
            )
            rois.append(level_rois)
            scores.append(level_scores)
        rois = torch.cat(rois) if len(rois) > 1 else rois[0]
        scores = torch.cat(scores) if len(scores) > 1 else scores[0]
        if not training:
            if len(anchors) == 1 and rois.shape[0] <= config.proposals_test:
                return rois, scores
            return ops.topk_rois(rois, scores, max_rois=config.proposals_test), scores.new_zeros(0)
        real = (scores > 0) | (rois != 0).any(dim=1)
        rois, scores = rois[real], scores[real]
        best = torch.topk(scores, min(config.proposals_train, scores.shape[0])).indices
        return rois[best], scores[best]
