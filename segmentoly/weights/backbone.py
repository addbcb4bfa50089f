"""Backbone files: ImageNet-pretrained ResNet weights to start training from (``--load_backbone``).

A backbone file is a plain dict that ``torch.load(weights_only=True)`` reads::

    {"format": "segmentoly-backbone", "version": 1,
     "backbone": {...BackboneConfig, all four stages...},
     "model": {"stem.conv.weight": ..., "res2.0.conv1.weight": ..., ..., "res5.2.norm3.bias": ...},
     "source": {...where it came from...}}

Keys are relative to the backbone module. :func:`load_backbone` puts the weights into a model's backbone, and
into the box head's res5 stage for a C4 model (whose backbone stops at res4), after checking that the file's
network is the model's (same depth, widths, groups, stride placement and normalisation).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from segmentoly.config import ConfigError, from_dict, to_dict
from segmentoly.rcnn.backbones.resnet import BackboneConfig
from segmentoly.rcnn.mask_rcnn import MaskRCNN
from segmentoly.weights.checkpoint import FORMAT as CHECKPOINT_FORMAT
from segmentoly.weights.checkpoint import CheckpointError, atomic_save, load_weights

FORMAT = "segmentoly-backbone"
VERSION = 1

#: Config fields that decide the weights' shapes and meaning; freezing and the stage count do not.
SHAPE_FIELDS = (
    "block",
    "blocks",
    "stage_channels",
    "bottleneck_channels",
    "groups",
    "stem_channels",
    "stride_in_1x1",
    "norm",
    "norm_groups",
)


def full_backbone_config(config: BackboneConfig) -> BackboneConfig:
    """``config`` with all four stages: what an ImageNet classifier's trunk has."""
    data = to_dict(config)
    data["num_stages"] = len(config.blocks)
    return from_dict(BackboneConfig, data)


def save_backbone(
    path: str | Path,
    config: BackboneConfig,
    weights: Mapping[str, torch.Tensor],
    *,
    source: Mapping[str, Any] | None = None,
) -> Path:
    """Write a backbone file atomically."""
    state = {
        "format": FORMAT,
        "version": VERSION,
        "backbone": to_dict(config),
        "model": {k: v.detach().cpu().contiguous() for k, v in weights.items()},
        "source": dict(source or {}),
    }
    return atomic_save(state, path)


def read_backbone(path: str | Path) -> dict[str, Any]:
    """Read a backbone file safely (no code runs) and check its format; ``"backbone"`` becomes a
    :class:`BackboneConfig`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: backbone file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # damaged files raise many exception types
        raise CheckpointError(f"{path}: cannot read the backbone file (truncated or damaged?): {error}") from error
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: a segmentoly checkpoint (a whole model), not a backbone file; fine-tune from it instead"
        )
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("model"), dict):
        raise CheckpointError(
            f"{path}: not a segmentoly backbone file; convert ImageNet weights first, e.g. "
            "`segmentoly download --models resnet50` or `segmentoly download --convert_file R-50.pkl --name resnet50`"
        )
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path}: backbone file version {state.get('version')!r}, expected {VERSION}")
    try:
        state["backbone"] = from_dict(BackboneConfig, state.get("backbone"), where="backbone")
    except ConfigError as error:
        raise CheckpointError(f"{path}: its backbone config is invalid: {error}") from error
    return state


def describe_difference(saved: BackboneConfig, model: BackboneConfig, stages: int) -> list[str]:
    """The shape-relevant fields in which the file's backbone differs from the model's first ``stages`` stages."""
    differences = []
    for name in SHAPE_FIELDS:
        have, want = getattr(saved, name), getattr(model, name)
        if isinstance(want, tuple):
            have, want = tuple(have)[:stages], tuple(want)[:stages]
        if have != want:
            differences.append(f"{name}: the file has {have!r}, the model {want!r}")
    return differences


def load_backbone(model: MaskRCNN, path: str | Path) -> None:
    """Load a backbone file into ``model``: its backbone and, for a C4 model, the box head's res5 stage.

    The file's network must be the model's (a ResNet-101 file does not load into a ResNet-50 model) and the
    weights must fit exactly; a model without a res5 stage anywhere leaves the file's res5 unused.
    """
    state = read_backbone(path)
    saved: BackboneConfig = state["backbone"]
    wanted = model.config.backbone
    res5_head = getattr(model.box_head, "res5", None)
    stages = wanted.num_stages + (1 if res5_head is not None else 0)
    differences = describe_difference(saved, wanted, stages)
    if len(saved.blocks) < stages:
        differences.append(f"stages: the file has {len(saved.blocks)}, the model needs {stages}")
    if differences:
        raise CheckpointError(f"{path}: this backbone is not the model's: " + "; ".join(differences))
    weights = state["model"]
    prefixes = tuple(f"res{i + 2}." for i in range(wanted.num_stages, len(saved.blocks)))
    load_weights(
        model.backbone,
        {k: v for k, v in weights.items() if not k.startswith(prefixes)},
        source=f"{path} (backbone)",
    )
    if res5_head is not None:
        head = {k[len("res5.") :]: v for k, v in weights.items() if k.startswith("res5.")}
        load_weights(res5_head, head, source=f"{path} (res5 of the box head)")
