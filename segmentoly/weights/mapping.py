"""Renaming foreign weights to this project's names, completely or not at all.

A converter describes a foreign file as a list of :class:`Rule`: which stored tensor becomes which of our
parameters (or which constant fills a buffer the foreign format folds away), plus the names it knows to be
unused (optimiser momentum, ImageNet classifiers, anchors). :func:`apply_rules` then insists on a perfect fit:
a rule whose source is absent, a stored tensor that no rule uses and no pattern ignores, or a shape that
differs from the model's is an error naming every such tensor. A file is never half loaded.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from segmentoly.weights.checkpoint import CheckpointError


class ConversionError(CheckpointError):
    """Foreign weights that do not map onto the architecture (missing, unused or misshapen tensors)."""


@dataclass(frozen=True)
class Rule:
    """One of our tensors: copied from ``source`` (optionally transformed) or filled with ``constant``."""

    target: str
    source: str | None = None
    constant: float | None = None
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    @staticmethod
    def copy(source: str, target: str, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Rule:
        return Rule(target=target, source=source, transform=transform)

    @staticmethod
    def fill(target: str, value: float) -> Rule:
        return Rule(target=target, constant=value)


def shorten(names: Sequence[str], limit: int = 12) -> str:
    """A readable list of names for an error message: the first ``limit`` and how many there are in all."""
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def ignore_patterns(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A predicate matching names against regular expressions (each must match the whole name)."""
    compiled = [re.compile(p) for p in patterns]
    return lambda name: any(p.fullmatch(name) for p in compiled)


def as_tensor(value: Any, name: str, where: str) -> torch.Tensor:
    """A float32 CPU tensor from a numpy array or tensor; anything else is an error naming the tensor."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise ConversionError(f"{where}: {name} holds {value.dtype} data, not numbers")
        if any(stride < 0 for stride in value.strides):
            value = np.ascontiguousarray(value)
        # Arrays unpickled from bytes are read-only. The tensor is never written (it is saved, or copied into
        # a model), so it may share their memory instead of doubling it.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensor = torch.from_numpy(value)
    else:
        raise ConversionError(f"{where}: {name} is a {type(value).__name__}, not an array")
    if not tensor.is_floating_point() and tensor.dtype not in (torch.int32, torch.int64, torch.uint8):
        raise ConversionError(f"{where}: {name} holds {tensor.dtype} data, not numbers")
    return tensor.to(torch.float32)


def apply_rules(
    source: Mapping[str, Any],
    rules: Sequence[Rule],
    expected: Mapping[str, torch.Tensor],
    *,
    ignored: Callable[[str], bool],
    where: str,
) -> dict[str, torch.Tensor]:
    """Our state dict from ``source`` by ``rules``, which must cover ``expected`` (the model's state dict)
    exactly; every source tensor must be used by a rule or be ``ignored``."""
    targets = [rule.target for rule in rules]
    duplicated = sorted({t for t in targets if targets.count(t) > 1})
    not_in_model = sorted(set(targets) - set(expected))
    not_covered = sorted(set(expected) - set(targets))
    if duplicated or not_in_model or not_covered:
        # The rules come from the model's config, so this is a converter bug, not a bad file.
        raise ConversionError(
            f"{where}: internal error, the conversion rules do not fit the model "
            f"(duplicated: {shorten(duplicated)}; not in the model: {shorten(not_in_model)}; "
            f"not covered: {shorten(not_covered)})"
        )
    missing = [f"{r.source} (for {r.target})" for r in rules if r.source is not None and r.source not in source]
    used = {r.source for r in rules if r.source is not None}
    unmapped = sorted(name for name in source if name not in used and not ignored(name))
    problems = []
    if missing:
        problems.append(f"missing from the file: {shorten(missing)}")
    if unmapped:
        problems.append(f"not mapped to any parameter: {shorten(unmapped)}")
    if problems:
        raise ConversionError(f"{where}: the weights do not fit this architecture; " + "; ".join(problems))

    state: dict[str, torch.Tensor] = {}
    misshapen = []
    for rule in rules:
        reference = expected[rule.target]
        if rule.source is None:
            state[rule.target] = torch.full(reference.shape, float(rule.constant), dtype=torch.float32)
            continue
        tensor = as_tensor(source[rule.source], rule.source, where)
        if rule.transform is not None:
            tensor = rule.transform(tensor)
        if tuple(tensor.shape) != tuple(reference.shape):
            misshapen.append(f"{rule.source} {tuple(tensor.shape)} (for {rule.target} {tuple(reference.shape)})")
            continue
        state[rule.target] = tensor.to(reference.dtype)
    if misshapen:
        raise ConversionError(f"{where}: tensors with another shape than the architecture's: {shorten(misshapen)}")
    return state


def flip_input_channels(weight: torch.Tensor) -> torch.Tensor:
    """The first convolution of an RGB-trained network made to read BGR input (input channels reversed)."""
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise ConversionError(f"cannot reorder the colour channels of a weight of shape {tuple(weight.shape)}")
    return weight.flip(1)
