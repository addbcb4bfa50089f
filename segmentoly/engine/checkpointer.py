"""Training checkpoints: the model in the project's checkpoint format plus what a resumed run needs.

A training checkpoint is an ordinary segmentoly checkpoint (evaluation and the demo read it as it is) with a
``training`` entry: the iteration, the optimiser and gradient-scaler states, the config, and every process's
random number generator state. Writes are atomic and ``last_checkpoint`` names the newest file only once it is
complete, so a crash never leaves a broken latest checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from segmentoly.weights.checkpoint import CheckpointError, read_checkpoint, save_checkpoint

POINTER = "last_checkpoint"


def rng_state() -> dict[str, Any]:
    """This process's torch random generator states (the only ones training draws from)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(
    output_dir: str | Path,
    name: str,
    model: torch.nn.Module,
    *,
    class_names: list[str],
    preprocessing: dict[str, Any],
    training: dict[str, Any],
) -> Path:
    """Write ``output_dir/name`` and then point ``last_checkpoint`` at it."""
    output_dir = Path(output_dir)
    path = save_checkpoint(
        output_dir / name, model, class_names=class_names, preprocessing=preprocessing, extra={"training": training}
    )
    pointer = output_dir / POINTER
    temporary = pointer.with_suffix(".tmp")
    temporary.write_text(name + "\n")
    os.replace(temporary, pointer)
    return path


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint ``last_checkpoint`` names, or None when training has not saved one yet."""
    pointer = Path(output_dir) / POINTER
    if not pointer.is_file():
        return None
    path = Path(output_dir) / pointer.read_text().strip()
    if not path.is_file():
        raise CheckpointError(f"{pointer}: names {path.name}, which does not exist")
    return path


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    state = read_checkpoint(path)
    if "training" not in state:
        raise CheckpointError(f"{path}: holds model weights but no training state to resume from")
    return state
