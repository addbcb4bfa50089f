"""Emitting OpenVINO operators during ONNX export.

Each detection op has a PyTorch body for eager execution and, while ``torch.onnx.export`` traces the model,
returns a node of the OpenVINO operator of the same semantics in the ``org.openvinotoolkit`` ONNX domain
instead. OpenVINO's ONNX frontend maps these nodes to its opset-6 ``ExperimentalDetectron*`` operators, so the
exported graph has fixed output shapes and no data-dependent control flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

DOMAIN = "org.openvinotoolkit"


def exporting() -> bool:
    """True while ``torch.onnx.export`` traces the model."""
    return torch.onnx.is_in_onnx_export()


def _attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    # ONNX has no boolean attributes: OpenVINO's frontend reads flags as int64.
    return {key: int(value) if isinstance(value, bool) else value for key, value in attrs.items()}


def openvino_node(
    op_type: str, inputs: Sequence[Tensor], attrs: dict[str, Any], *, dtype: torch.dtype, shape: Sequence[Any]
) -> Tensor:
    """A single-output OpenVINO node; ``shape`` may hold symbolic sizes taken from the inputs."""
    return torch.onnx.ops.symbolic(
        f"{DOMAIN}::{op_type}", tuple(inputs), _attributes(attrs), dtype=dtype, shape=tuple(shape), version=1
    )


def openvino_multi_node(
    op_type: str,
    inputs: Sequence[Tensor],
    attrs: dict[str, Any],
    *,
    dtypes: Sequence[torch.dtype],
    shapes: Sequence[Sequence[Any]],
) -> Sequence[Tensor]:
    """A multi-output OpenVINO node."""
    return torch.onnx.ops.symbolic_multi_out(
        f"{DOMAIN}::{op_type}",
        tuple(inputs),
        _attributes(attrs),
        dtypes=tuple(dtypes),
        shapes=tuple(tuple(s) for s in shapes),
        version=1,
    )
