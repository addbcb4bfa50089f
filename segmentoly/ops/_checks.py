"""Argument validation shared by the detection ops.

The ops are called from model code with tensors whose shapes come from configuration; a wrong shape deep
inside a vectorised op would surface as an unreadable indexing error, so every op checks its arguments first
and raises a ``ValueError`` that names the argument and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def tracing() -> bool:
    """True while the graph is being traced for ONNX export or compiled, when values are not available."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def check_tensor(name: str, value: object, rank: int, layout: str, *, floating: bool = True) -> Tensor:
    """Check that ``value`` is a tensor of the given rank; ``layout`` describes the expected shape."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}: expected a {layout} tensor, got {type(value).__name__}")
    if value.dim() != rank:
        raise ValueError(f"{name}: expected a {layout} tensor (rank {rank}), got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point {layout} tensor, got dtype {value.dtype}")
    return value


def check_size(name: str, tensor: Tensor, dim: int, expected: int, layout: str) -> None:
    """Check one dimension of an already rank-checked tensor."""
    if tensor.shape[dim] != expected:
        raise ValueError(
            f"{name}: expected a {layout} tensor with size {expected} in dimension {dim}, "
            f"got shape {tuple(tensor.shape)}"
        )


def check_finite(name: str, tensor: Tensor) -> None:
    """Reject NaN and infinite values (skipped while tracing, where values are unknown)."""
    if tracing() or tensor.numel() == 0:
        return
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = (~finite).reshape(tensor.shape[0], -1).any(dim=1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name}: contains non-finite values (NaN or inf), first bad rows: {bad}")


def check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def check_pyramid(features: Sequence[Tensor], scales: Sequence[int], batch_size: int | None) -> int:
    """Check a list of feature maps ``[N, C, Hi, Wi]`` with one integer scale each; returns C."""
    if isinstance(features, Tensor) or len(features) == 0:
        raise ValueError("features: expected a non-empty list of [N, C, H, W] tensors")
    if len(scales) != len(features):
        raise ValueError(f"pyramid_scales: expected one scale per feature level ({len(features)}), got {list(scales)}")
    for level, scale in enumerate(scales):
        if isinstance(scale, bool) or not isinstance(scale, int) or scale <= 0:
            raise ValueError(f"pyramid_scales[{level}]: expected a positive integer, got {scale!r}")
    channels = None
    for level, feature in enumerate(features):
        check_tensor(f"features[{level}]", feature, 4, "[N, C, H, W]")
        if batch_size is not None and feature.shape[0] != batch_size:
            raise ValueError(f"features[{level}]: expected batch size {batch_size}, got shape {tuple(feature.shape)}")
        if channels is None:
            channels = feature.shape[1]
        elif feature.shape[1] != channels:
            raise ValueError(
                f"features[{level}]: has {feature.shape[1]} channels but features[0] has {channels}; "
                "all levels must have the same channel count"
            )
    return int(channels)
