"""Shared helpers for the tests: comparisons and realistic random inputs."""

from __future__ import annotations

import math

import numpy as np
import torch

# Float outputs of the PyTorch ops agree with OpenVINO's to 1e-4 relative; the absolute part covers values
# near zero (coordinates, features), where a relative bound alone means nothing.
RTOL = 1e-4
ATOL = 1e-4


def assert_close(actual: torch.Tensor | np.ndarray, expected: np.ndarray, *, atol: float = ATOL) -> None:
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=atol)


def rows_as_set(rows: np.ndarray, decimals: int = 3) -> list[tuple]:
    """Rows rounded and sorted, to compare outputs whose order is unspecified."""
    return sorted(tuple(np.round(r, decimals)) for r in np.asarray(rows).reshape(rows.shape[0], -1))


def cell_anchors(sizes=(32,), ratios=(0.5, 1.0, 2.0)) -> np.ndarray:
    """Detectron-style anchors centred on the origin, ``[A, 4]``."""
    rows = []
    for size in sizes:
        for ratio in ratios:
            w = round(math.sqrt(size * size / ratio))
            h = round(w * ratio)
            rows.append([-(w - 1) / 2, -(h - 1) / 2, (w - 1) / 2, (h - 1) / 2])
    return np.array(rows, dtype=np.float32)


def random_boxes(rng: np.random.Generator, count: int, width: float, height: float, min_size=4.0, max_size=None):
    """Boxes with log-uniform sizes, mostly inside a ``width x height`` image, ``[count, 4]`` float32."""
    max_size = max_size or max(width, height)
    size = np.exp(rng.uniform(math.log(min_size), math.log(max_size), (count, 2)))
    x0 = rng.uniform(-0.1 * width, width, count)
    y0 = rng.uniform(-0.1 * height, height, count)
    return np.stack([x0, y0, x0 + size[:, 0], y0 + size[:, 1]], axis=1).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))
