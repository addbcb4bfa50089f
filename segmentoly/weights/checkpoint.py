"""The project's checkpoint format: a plain dict that ``torch.load(weights_only=True)`` reads.

A checkpoint holds everything needed to rebuild and run a model: its architecture (zoo name or class path),
its config, the class names and the preprocessing the model expects, next to the state dict. Loading never
unpickles code, a damaged file is reported by name, and a state dict that does not fit the architecture is an
error listing the names that do not match, never a silent partial load.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from segmentoly.config import ConfigError, from_dict, to_dict
from segmentoly.rcnn.mask_rcnn import MaskRCNNConfig
from segmentoly.rcnn.model_zoo import ZooModel, architecture_name, resolve_architecture

FORMAT = "segmentoly-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the model."""


def save_checkpoint(
    path: str | Path,
    model: ZooModel,
    *,
    class_names: Sequence[str],
    preprocessing: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: a crash mid-write leaves the previous file intact."""
    state = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture_name(model),
        "config": to_dict(model.config),
        "class_names": list(class_names),
        "preprocessing": dict(preprocessing or {}),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    state.update(extra or {})
    return atomic_save(state, path)


def atomic_save(state: Mapping[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(dict(state), stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file safely (no code runs) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files: report them all the same way
        raise CheckpointError(
            f"{path}: cannot read the checkpoint (truncated or not a checkpoint?): {error}"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise CheckpointError(
            f"{path}: not a segmentoly checkpoint (convert foreign weights with `segmentoly download`)"
        )
    return state


def build_model(state: Mapping[str, Any], *, architecture: str | None = None, source: str = "checkpoint") -> ZooModel:
    """The model a checkpoint describes, with its weights loaded.

    ``architecture`` (``--model``) must agree with the checkpoint's; the weights must fit exactly.
    """
    saved = state.get("architecture", "")
    cls = resolve_architecture(architecture or saved)
    if architecture and saved and resolve_architecture(saved) is not cls:
        raise CheckpointError(
            f"{source}: holds weights of architecture {saved!r}, but --model asks for {architecture!r}"
        )
    try:
        config = from_dict(MaskRCNNConfig, state["config"]) if "config" in state else None
    except ConfigError as error:
        raise CheckpointError(f"{source}: its model config is invalid: {error}") from error
    class_names = state.get("class_names") or []
    num_classes = config.num_classes if config else len(class_names)
    model = cls(num_classes, config=config)
    load_weights(model, state["model"], source=source)
    return model


def load_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Load a state dict that must fit ``model`` exactly; otherwise list what does not."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = [
        f"{name} {tuple(weights[name].shape)} (model: {tuple(expected[name].shape)})"
        for name in sorted(set(expected) & set(weights))
        if tuple(weights[name].shape) != tuple(expected[name].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for title, names in (("missing", missing), ("unexpected", unexpected), ("with another shape", mismatched)):
            if names:
                shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
                parts.append(f"{title}: {shown}")
        raise CheckpointError(f"{source}: the weights do not fit {type(model).__name__}; " + "; ".join(parts))
    model.load_state_dict(weights, strict=True)


def pack_checkpoint(source: str | Path, destination: str | Path) -> Path:
    """A shippable copy of a checkpoint: the model, its config, class names and preprocessing, without the
    training state, with floating-point weights stored as float16 (they load back into float32 models).
    """
    state = read_checkpoint(source)
    packed = {key: value for key, value in state.items() if key != "training"}
    packed["model"] = {
        name: value.half() if value.is_floating_point() else value for name, value in state["model"].items()
    }
    return atomic_save(packed, destination)
