"""Detectron's anchors, expressed as the priors of OpenVINO's PriorGridGenerator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def cell_anchors(stride: int, sizes: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """The anchors of the cell at the origin, ``[len(aspect_ratios) * len(sizes), 4]``, as Detectron's
    ``generate_anchors`` makes them: for each aspect ratio, for each size, a box of about ``size**2`` pixels
    centred on the cell ``[0, stride - 1]``, widths and heights rounded half to even (numpy's ``round``).

    The order (ratio-major) is the order of the RPN's output channels in the pretrained models.
    """
    anchor = np.array([0.0, 0.0, stride - 1.0, stride - 1.0])
    scales = np.asarray(sizes, dtype=np.float64) / stride
    ratio_anchors = _ratio_enum(anchor, np.asarray(aspect_ratios, dtype=np.float64))
    return np.vstack([_scale_enum(ratio_anchors[i], scales) for i in range(ratio_anchors.shape[0])])


def grid_priors(stride: int, sizes: Sequence[float], aspect_ratios: Sequence[float]) -> torch.Tensor:
    """Priors for :func:`segmentoly.ops.prior_grid_generator` reproducing Detectron's anchor grid.

    Detectron shifts the cell anchors by ``stride * j``, the operator by ``stride * (j + 0.5)``; the priors
    are the cell anchors moved back by half a stride so that both give the same anchors.
    """
    return torch.from_numpy(cell_anchors(stride, sizes, aspect_ratios) - 0.5 * stride).to(torch.float32)


def _whctrs(anchor: np.ndarray) -> tuple[float, float, float, float]:
    w = anchor[2] - anchor[0] + 1
    h = anchor[3] - anchor[1] + 1
    return w, h, anchor[0] + 0.5 * (w - 1), anchor[1] + 0.5 * (h - 1)


def _mkanchors(ws: np.ndarray, hs: np.ndarray, x_ctr: float, y_ctr: float) -> np.ndarray:
    ws = ws[:, None]
    hs = hs[:, None]
    return np.hstack((x_ctr - 0.5 * (ws - 1), y_ctr - 0.5 * (hs - 1), x_ctr + 0.5 * (ws - 1), y_ctr + 0.5 * (hs - 1)))


def _ratio_enum(anchor: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    w, h, x_ctr, y_ctr = _whctrs(anchor)
    ws = np.round(np.sqrt(w * h / ratios))
    hs = np.round(ws * ratios)
    return _mkanchors(ws, hs, x_ctr, y_ctr)


def _scale_enum(anchor: np.ndarray, scales: np.ndarray) -> np.ndarray:
    w, h, x_ctr, y_ctr = _whctrs(anchor)
    return _mkanchors(w * scales, h * scales, x_ctr, y_ctr)
