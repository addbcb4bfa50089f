"""maskrcnn-benchmark's ``.pth`` checkpoints under this project's parameter names.

A maskrcnn-benchmark checkpoint is ``{"model": state_dict, "optimizer": ..., "scheduler": ..., "iteration": n}``
(only ``model`` is used), saved from a DistributedDataParallel wrapper, hence the ``module.`` prefix on every
key. Its modules (``maskrcnn_benchmark/modeling``) map one to one:

- ``backbone.body.stem.{conv1,bn1}``, ``backbone.body.layer{1..4}.{i}.{conv,bn}{1,2,3}``, ``...downsample.{0,1}``
  -> ``backbone.stem``, ``backbone.res{2..5}.{i}``; FrozenBatchNorm2d is the same ``x * w / sqrt(var) + ...``
  without epsilon (older checkpoints lack ``running_mean/var``: then 0 and 1);
- ``backbone.fpn.fpn_inner{1..4}`` / ``fpn_layer{1..4}`` (C2..C5) -> ``fpn.lateral.{0..3}`` / ``fpn.output.{0..3}``;
- ``rpn.head.{conv,cls_logits,bbox_pred}`` -> ``rpn.head.{conv,objectness,deltas}`` (anchor order is
  Detectron's); ``rpn.anchor_generator.cell_anchors.*`` are anchors, not weights, and are dropped;
- ``roi_heads.box.feature_extractor.{fc6,fc7}`` (C4: ``...head.layer4``, the res5 stage) and
  ``roi_heads.box.predictor.{cls_score,bbox_pred}``; ``roi_heads.mask.feature_extractor.mask_fcn{1..4}`` and
  ``roi_heads.mask.predictor.{conv5_mask,mask_fcn_logits}``. The C4 model shares the box head's res5 with the
  mask head (SHARE_BOX_FEATURE_EXTRACTOR), so its state dict lists that stage twice: the copies must be equal.

The COCO models listed in the registry were initialised from Detectron's Caffe2 ImageNet weights and take BGR
0..255 input minus Detectron's mean, like this project's models: no channel reordering is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from segmentoly.rcnn.backbones.resnet import BackboneConfig
from segmentoly.rcnn.mask_rcnn import MaskRCNNConfig
from segmentoly.weights.checkpoint import CheckpointError
from segmentoly.weights.mapping import ConversionError, Rule, flip_input_channels, ignore_patterns

IGNORED = (r"rpn\.anchor_generator\.cell_anchors\.\d+",)
is_ignored = ignore_patterns(IGNORED)

BOX_BODY = "roi_heads.box.feature_extractor."
MASK_BODY = "roi_heads.mask.feature_extractor."


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The model weights of a maskrcnn-benchmark checkpoint, ``module.`` prefixes removed. Loaded with
    ``weights_only=True``: no code in the file runs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch reports damaged or unsafe files through many exception types
        raise CheckpointError(
            f"{path}: cannot read it as a PyTorch checkpoint of plain tensors (truncated or damaged?): {error}"
        ) from error
    if isinstance(data, dict) and str(data.get("format", "")).startswith("segmentoly-"):
        raise CheckpointError(f"{path}: already a segmentoly file ({data['format']}); it needs no conversion")
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: not a maskrcnn-benchmark checkpoint (expected {{'model': state_dict}})")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in data.items()}


def _bn_rules(source: str, target: str, names: Mapping[str, object]) -> list[Rule]:
    rules = [Rule.copy(f"{source}.weight", f"{target}.weight"), Rule.copy(f"{source}.bias", f"{target}.bias")]
    for stat, default in (("running_mean", 0.0), ("running_var", 1.0)):
        if f"{source}.{stat}" in names:
            rules.append(Rule.copy(f"{source}.{stat}", f"{target}.{stat}"))
        else:
            rules.append(Rule.fill(f"{target}.{stat}", default))
    return rules


def _linear(source: str, target: str) -> list[Rule]:
    return [Rule.copy(f"{source}.weight", f"{target}.weight"), Rule.copy(f"{source}.bias", f"{target}.bias")]


def _stage_rules(
    config: BackboneConfig, stage: int, source: str, target: str, names: Mapping[str, object]
) -> list[Rule]:
    index = stage - 2
    rules = []
    for block in range(config.blocks[index]):
        src, dst = f"{source}.{block}", f"{target}.{block}"
        for number in (1, 2, 3):
            rules.append(Rule.copy(f"{src}.conv{number}.weight", f"{dst}.conv{number}.weight"))
            rules += _bn_rules(f"{src}.bn{number}", f"{dst}.norm{number}", names)
        if block == 0:
            rules.append(Rule.copy(f"{src}.downsample.0.weight", f"{dst}.shortcut.conv.weight"))
            rules += _bn_rules(f"{src}.downsample.1", f"{dst}.shortcut.norm", names)
    return rules


def model_rules(config: MaskRCNNConfig, names: Mapping[str, object], *, channel_order: str = "bgr") -> list[Rule]:
    """Rules for a whole Mask R-CNN of ``config`` as maskrcnn-benchmark's GeneralizedRCNN stores it; ``names``
    (the file's keys) says whether the frozen BatchNorms carry running statistics."""
    backbone = config.backbone
    if backbone.block != "bottleneck" or backbone.norm != "frozen_bn":
        raise ConversionError(
            "the maskrcnn-benchmark converter handles ResNets with frozen BatchNorm (the published COCO models), "
            f"not {backbone.block!r} blocks with {backbone.norm!r}"
        )
    transform = flip_input_channels if channel_order == "rgb" else None
    rules = [Rule.copy("backbone.body.stem.conv1.weight", "backbone.stem.conv.weight", transform)]
    rules += _bn_rules("backbone.body.stem.bn1", "backbone.stem.norm", names)
    for index in range(backbone.num_stages):
        rules += _stage_rules(backbone, index + 2, f"backbone.body.layer{index + 1}", f"backbone.res{index + 2}", names)
    if config.fpn is not None:
        if config.fpn.norm != "none":
            raise ConversionError("the maskrcnn-benchmark converter handles FPNs without normalisation")
        for index in range(backbone.num_stages):
            rules += _linear(f"backbone.fpn.fpn_inner{index + 1}", f"fpn.lateral.{index}.conv")
            rules += _linear(f"backbone.fpn.fpn_layer{index + 1}", f"fpn.output.{index}.conv")
    for source, target in (("conv", "conv"), ("cls_logits", "objectness"), ("bbox_pred", "deltas")):
        rules += _linear(f"rpn.head.{source}", f"rpn.head.{target}")

    box = config.box_head
    if box.kind == "res5":
        rules += _stage_rules(backbone, 5, f"{BOX_BODY}head.layer4", "box_head.res5", names)
    elif box.kind == "2fc":
        rules += _linear(f"{BOX_BODY}fc6", "box_head.fc6") + _linear(f"{BOX_BODY}fc7", "box_head.fc7")
    else:
        raise ConversionError(f"the maskrcnn-benchmark converter handles 2fc and res5 box heads, not {box.kind!r}")
    rules += _linear("roi_heads.box.predictor.cls_score", "box_predictor.cls_score")
    rules += _linear("roi_heads.box.predictor.bbox_pred", "box_predictor.bbox_pred")

    mask = config.mask_head
    if mask.kind == "fcn":
        if mask.norm != "none":
            raise ConversionError("the maskrcnn-benchmark converter handles mask heads without normalisation")
        for i in range(mask.num_convs):
            rules += _linear(f"{MASK_BODY}mask_fcn{i + 1}", f"mask_head.fcn{i + 1}.conv")
    rules += _linear("roi_heads.mask.predictor.conv5_mask", "mask_head.deconv")
    rules += _linear("roi_heads.mask.predictor.mask_fcn_logits", "mask_predictor.logits")
    return rules


def shared_duplicates(config: MaskRCNNConfig, weights: Mapping[str, torch.Tensor], where: str) -> set[str]:
    """The names under which a C4 checkpoint repeats the box head's res5 for the mask head; each copy must
    equal its original (they are one module in maskrcnn-benchmark, and one in segmentoly)."""
    if config.box_head.kind != "res5" or config.mask_head.kind != "res5":
        return set()
    copies = {name for name in weights if name.startswith(MASK_BODY)}
    differing = []
    for name in sorted(copies):
        original = BOX_BODY + name[len(MASK_BODY) :]
        if original not in weights or not torch.equal(weights[original], weights[name]):
            differing.append(name)
    if differing:
        raise ConversionError(
            f"{where}: the mask head has a res5 of its own ({differing[0]}, ... differ from the box head's): "
            "segmentoly's C4 model shares one res5 stage between the heads (SHARE_BOX_FEATURE_EXTRACTOR)"
        )
    return copies


def num_classes(weights: Mapping[str, torch.Tensor], where: str) -> int:
    """Classes (background included) of a maskrcnn-benchmark Mask R-CNN, from its classifier."""
    name = "roi_heads.box.predictor.cls_score.weight"
    if name not in weights:
        raise ConversionError(f"{where}: no {name}: not a maskrcnn-benchmark detection model")
    return int(weights[name].shape[0])
