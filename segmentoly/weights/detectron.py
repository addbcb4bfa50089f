"""Detectron's ``.pkl`` weights (Caffe2 blobs) under this project's parameter names.

Detectron names blobs after the Caffe2 graph it builds (``detectron/modeling/ResNet.py``, ``FPN.py``,
``rpn_heads.py``, ``fast_rcnn_heads.py``, ``mask_rcnn_heads.py``); the rules below rebuild those names from the
model's config:

- stem ``conv1_w`` and ``res_conv1_bn_{s,b}`` (GroupNorm: ``conv1_gn_{s,b}``); blocks
  ``res{stage}_{block}_branch2{a,b,c}_w`` with ``..._bn_{s,b}`` / ``..._gn_{s,b}``, shortcuts ``..._branch1_*``.
  BatchNorm was folded into an affine ``scale, bias`` (AffineChannel): they become FrozenBatchNorm2d's
  ``weight, bias`` with ``running_mean = 0``, ``running_var = 1``.
- FPN blobs are named after the last block of each stage: C5's ``fpn_inner_res5_2_sum_*``, the others'
  ``fpn_inner_res4_5_sum_lateral_*`` (R-50), outputs ``fpn_res4_5_sum_*``; with GroupNorm no conv bias but
  ``..._gn_{s,b}``.
- the RPN, shared by the FPN levels, is stored once as ``conv_rpn_fpn2``, ``rpn_cls_logits_fpn2``,
  ``rpn_bbox_pred_fpn2`` (C4: ``conv_rpn``, ``rpn_cls_logits``, ``rpn_bbox_pred``). Its anchor order is
  Detectron's, which this project's RPN keeps.
- box head ``fc6``, ``fc7`` (GroupNorm models: ``head_conv{1..4}`` then ``fc6``; C4: ``res5_*``, the res5 stage
  run on the pooled ROIs, which is also the C4 mask head's), ``cls_score`` (background row 0), ``bbox_pred``
  (class-specific); mask head ``_[mask]_fcn{1..4}`` (GroupNorm models: ``_mask_fcn{1..4}``), the
  deconvolution ``conv5_mask`` and ``mask_fcn_logits``.

Known to be unused and dropped: optimiser state (``*_momentum``), the ImageNet classifier that Detectron keeps
in every file it saved after initialising from it (``fc1000_*``, ``pred_*``), and the all-zero convolution
biases of the backbone that its convolutions do not use (``conv1_b``, ``res*_branch*_b``). Anything else that
is left over is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from segmentoly.rcnn.backbones.resnet import BackboneConfig
from segmentoly.rcnn.mask_rcnn import MaskRCNNConfig
from segmentoly.weights.checkpoint import CheckpointError
from segmentoly.weights.mapping import ConversionError, Rule, flip_input_channels, ignore_patterns
from segmentoly.weights.safe_pickle import load_pickle

#: Blobs a Detectron file may hold that no segmentoly parameter corresponds to (see the module docstring).
IGNORED = (
    r".*_momentum",
    r"fc1000_[wb]",
    r"pred_[wb]",
    r"conv1_b",
    r"res\d+_\d+_branch(1|2[abc])_b",
)
is_ignored = ignore_patterns(IGNORED)


def read_blobs(path: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of a Detectron weight file (``{"blobs": {...}, "cfg": ...}`` or a bare dict of blobs),
    unpickled without running code."""
    data = load_pickle(path)
    if isinstance(data, dict) and isinstance(data.get("blobs"), dict):
        data = data["blobs"]
    if not isinstance(data, dict) or not data:
        raise CheckpointError(f"{path}: not a Detectron weight file (expected a dict of named arrays)")
    blobs = {}
    for name, value in data.items():
        if not isinstance(name, str):
            raise CheckpointError(f"{path}: not a Detectron weight file (a blob is named {name!r})")
        if value is None:  # Detectron skips None blobs when loading; they carry nothing
            continue
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        blobs[name] = value
    return blobs


def _norm_rules(blob: str, target: str, norm: str) -> list[Rule]:
    """The normalisation after the convolution ``blob``: Detectron's folded BatchNorm or GroupNorm."""
    if norm == "frozen_bn":
        return [
            Rule.copy(f"{blob}_bn_s", f"{target}.weight"),
            Rule.copy(f"{blob}_bn_b", f"{target}.bias"),
            Rule.fill(f"{target}.running_mean", 0.0),
            Rule.fill(f"{target}.running_var", 1.0),
        ]
    if norm == "gn":
        return [Rule.copy(f"{blob}_gn_s", f"{target}.weight"), Rule.copy(f"{blob}_gn_b", f"{target}.bias")]
    raise ConversionError(f"Detectron has no {norm!r} normalisation")


def _conv_rules(blob: str, target: str, norm: str) -> list[Rule]:
    """A convolution followed by ``norm`` (``none``: the convolution has a bias)."""
    if norm == "none":
        return [Rule.copy(f"{blob}_w", f"{target}.conv.weight"), Rule.copy(f"{blob}_b", f"{target}.conv.bias")]
    return [Rule.copy(f"{blob}_w", f"{target}.conv.weight"), *_norm_rules(blob, f"{target}.norm", norm)]


def _check_backbone(config: BackboneConfig) -> None:
    if config.block != "bottleneck":
        raise ConversionError(f"Detectron has no ResNets of {config.block!r} blocks (only bottleneck ones)")
    if config.norm not in ("frozen_bn", "gn"):
        raise ConversionError(f"Detectron's ResNets use frozen BatchNorm or GroupNorm, not {config.norm!r}")


def stage_rules(config: BackboneConfig, stage: int, target: str, *, first_stride: int | None = None) -> list[Rule]:
    """The blocks of stage ``res{stage}`` (2..5) under ``target`` (e.g. ``backbone.res3``)."""
    index = stage - 2
    in_channels = config.stem_channels if index == 0 else config.stage_channels[index - 1]
    out_channels = config.stage_channels[index]
    stride = first_stride if first_stride is not None else (1 if index == 0 else 2)
    rules = []
    for block in range(config.blocks[index]):
        blob, name = f"res{stage}_{block}", f"{target}.{block}"
        for letter, number in (("a", 1), ("b", 2), ("c", 3)):
            rules.append(Rule.copy(f"{blob}_branch2{letter}_w", f"{name}.conv{number}.weight"))
            rules += _norm_rules(f"{blob}_branch2{letter}", f"{name}.norm{number}", config.norm)
        if block == 0 and (in_channels != out_channels or stride != 1):
            rules += _conv_rules(f"{blob}_branch1", f"{name}.shortcut", config.norm)
    return rules


def backbone_rules(config: BackboneConfig, prefix: str = "", *, channel_order: str = "bgr") -> list[Rule]:
    """The stem and the stages of ``config`` (``num_stages`` of them) under ``prefix``."""
    _check_backbone(config)
    transform = flip_input_channels if channel_order == "rgb" else None
    # The stem's folded BatchNorm is "res_conv1_bn", its GroupNorm "conv1_gn" (ResNet.py basic_bn_stem / _gn_stem).
    stem = "res_conv1" if config.norm == "frozen_bn" else "conv1"
    rules = [Rule.copy("conv1_w", f"{prefix}stem.conv.weight", transform)]
    rules += _norm_rules(stem, f"{prefix}stem.norm", config.norm)
    for index in range(config.num_stages):
        rules += stage_rules(config, index + 2, f"{prefix}res{index + 2}")
    return rules


def _fpn_rules(config: MaskRCNNConfig) -> list[Rule]:
    backbone, fpn = config.backbone, config.fpn
    rules = []
    top = config.backbone.num_stages + 1  # 5
    for index in range(backbone.num_stages):
        stage = index + 2
        last = f"res{stage}_{backbone.blocks[index] - 1}_sum"
        lateral = f"fpn_inner_{last}" if stage == top else f"fpn_inner_{last}_lateral"
        rules += _conv_rules(lateral, f"fpn.lateral.{index}", fpn.norm)
        rules += _conv_rules(f"fpn_{last}", f"fpn.output.{index}", fpn.norm)
    return rules


def _linear(blob: str, target: str) -> list[Rule]:
    return [Rule.copy(f"{blob}_w", f"{target}.weight"), Rule.copy(f"{blob}_b", f"{target}.bias")]


def model_rules(config: MaskRCNNConfig, *, channel_order: str = "bgr") -> list[Rule]:
    """Rules for a whole Mask R-CNN of ``config``, as Detectron's ``generalized_rcnn`` stores it."""
    rules = backbone_rules(config.backbone, "backbone.", channel_order=channel_order)
    if config.fpn is not None:
        if not config.fpn.extra_max_pool:
            raise ConversionError("Detectron's FPN Mask R-CNNs have a max-pooled P6 (fpn.extra_max_pool)")
        rules += _fpn_rules(config)
        rpn = ("conv_rpn_fpn2", "rpn_cls_logits_fpn2", "rpn_bbox_pred_fpn2")
    else:
        rpn = ("conv_rpn", "rpn_cls_logits", "rpn_bbox_pred")
    for blob, name in zip(rpn, ("conv", "objectness", "deltas")):
        rules += _linear(blob, f"rpn.head.{name}")

    box = config.box_head
    if box.kind == "res5":
        # Detectron's add_ResNet_roi_conv5_head: stage res5 (3 blocks) on the pooled ROIs, first stride
        # ROI resolution / 7.
        rules += stage_rules(config.backbone, 5, "box_head.res5", first_stride=max(1, box.resolution // 7))
    elif box.kind == "2fc":
        rules += _linear("fc6", "box_head.fc6") + _linear("fc7", "box_head.fc7")
    elif box.kind == "4conv1fc":
        for i in range(box.num_convs):
            rules += _conv_rules(f"head_conv{i + 1}", f"box_head.conv{i + 1}", box.norm)
        rules += _linear("fc6", "box_head.fc6")
    else:
        raise ConversionError(f"Detectron has no {box.kind!r} box head")
    rules += _linear("cls_score", "box_predictor.cls_score") + _linear("bbox_pred", "box_predictor.bbox_pred")

    mask = config.mask_head
    if mask.kind == "fcn":
        # mask_rcnn_fcn_head_v1upXconvs names its convolutions "_[mask]_fcn<i>", the GroupNorm variant
        # (..._v1upXconvs_gn) "_mask_fcn<i>".
        prefix = "_mask_fcn" if mask.norm == "gn" else "_[mask]_fcn"
        for i in range(mask.num_convs):
            rules += _conv_rules(f"{prefix}{i + 1}", f"mask_head.fcn{i + 1}", mask.norm)
    rules += _linear("conv5_mask", "mask_head.deconv") + _linear("mask_fcn_logits", "mask_predictor.logits")
    return rules


def num_classes(blobs: Mapping[str, Any], where: str) -> int:
    """Classes (background included) of a Detectron Mask R-CNN, from its classifier."""
    if "cls_score_w" not in blobs:
        raise ConversionError(f"{where}: no cls_score_w blob: not a Detectron detection model (an ImageNet backbone?)")
    return int(np.shape(blobs["cls_score_w"])[0])
