"""Selecting the best proposals across feature levels."""

from __future__ import annotations

import torch
from torch import Tensor

from segmentoly.ops._checks import check_finite, check_positive_int, check_size, check_tensor
from segmentoly.ops._openvino import exporting, openvino_node


def topk_rois(rois: Tensor, rois_probs: Tensor, *, max_rois: int) -> Tensor:
    """The ``max_rois`` boxes of ``rois`` ``[N, 4]`` with the highest ``rois_probs`` ``[N]``, best first;
    mirrors OpenVINO's ``ExperimentalDetectronTopKROIs``.

    Returns ``[max_rois, 4]``. When ``N < max_rois`` the rows past ``N`` are zero (OpenVINO leaves them
    uninitialised). The order of equal probabilities is unspecified, as in OpenVINO.
    """
    check_tensor("rois", rois, 2, "[N, 4]")
    check_size("rois", rois, 1, 4, "[N, 4]")
    check_tensor("rois_probs", rois_probs, 1, "[N]")
    check_size("rois_probs", rois_probs, 0, rois.shape[0], "[N] (one per roi)")
    check_positive_int("max_rois", max_rois)
    check_finite("rois", rois)
    if exporting():
        return openvino_node(
            "ExperimentalDetectronTopKROIs",
            (rois, rois_probs),
            dict(max_rois=max_rois),
            dtype=rois.dtype,
            shape=(max_rois, 4),
        )
    count = min(max_rois, rois.shape[0])
    top = torch.topk(rois_probs, count, sorted=True).indices
    out = rois.new_zeros((max_rois, 4))
    out[:count] = rois[top]
    return out
