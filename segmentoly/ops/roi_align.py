"""ROIAlign with Caffe2's (and OpenVINO's) sampling, and its multi-level form over a feature pyramid.

Every output bin averages a grid of bilinear samples. Each sample has four taps with separable weights, so
one output bin is a weighted sum of at most ``4 * grid_h * grid_w`` feature vectors: exactly what
``embedding_bag`` computes in one fused, vectorised kernel over a channels-last view of the features. It never
materialises the per-sample features, and its backward pass gives the gradient with respect to the features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from segmentoly.ops._checks import check_finite, check_pyramid, check_size, check_tensor

# Caffe2 / OpenVINO level mapping: a box of sqrt(area) 224 belongs to level 2 of the canonical pyramid.
CANONICAL_SCALE = 224.0
CANONICAL_LEVEL = 2
# Upper bound on the (ROI, bin, tap) entries pooled in one embedding_bag call.
MAX_TAPS = 1 << 23


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _axis_taps(start: Tensor, end: Tensor, bins: int, grid: Tensor, max_grid: int, size: int) -> tuple[Tensor, Tensor]:
    """Sample taps along one axis: indices and weights, ``[K, bins, max_grid, 2]`` each.

    ``grid`` ``[K]`` is the number of samples per bin of each ROI (samples past it get weight 0). Follows
    Caffe2's ``pre_calc_for_bilinear_interpolate``: a sample outside ``[-1, size]`` contributes nothing, one
    in ``[-1, 0]`` reads the border, one past ``size - 1`` reads the last row.
    """
    dtype = start.dtype
    length = torch.clamp(end - start, min=1.0)  # malformed ROIs are forced to 1 pixel
    bin_size = length / bins
    bin_index = torch.arange(bins, dtype=dtype, device=start.device)
    sample_index = torch.arange(max_grid, dtype=dtype, device=start.device) + 0.5
    grid_f = grid.to(dtype)
    pos = (start[:, None, None] + bin_index[None, :, None] * bin_size[:, None, None]) + (
        sample_index[None, None, :] * bin_size[:, None, None]
    ) / grid_f[:, None, None]
    inside = (pos >= -1.0) & (pos <= size)
    used = torch.arange(max_grid, device=start.device)[None, None, :] < grid[:, None, None]
    pos = torch.clamp(pos, min=0.0)
    low = pos.to(torch.int64)
    at_end = low >= size - 1
    low = torch.clamp(low, max=size - 1)
    high = torch.where(at_end, low, low + 1)
    pos = torch.where(at_end, low.to(dtype), pos)
    frac = pos - low.to(dtype)
    weight = (inside & used).to(dtype)
    index = torch.stack((low, high), dim=-1)
    weights = torch.stack(((1.0 - frac) * weight, frac * weight), dim=-1)
    return index, weights


def roi_align(
    features: Tensor,
    rois: Tensor,
    *,
    output_size: int | Sequence[int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = False,
) -> Tensor:
    """Pool ``rois`` ``[K, 5]`` (image index, x0, y0, x1, y1 in input pixels) from ``features``
    ``[N, C, H, W]`` into ``[K, C, out_h, out_w]``, with the semantics of Caffe2's ROIAlign.

    ROI coordinates are multiplied by ``spatial_scale`` (and shifted by half a pixel when ``aligned``), ROIs
    are made at least 1x1, and each bin averages ``sampling_ratio x sampling_ratio`` bilinear samples
    (``ceil(roi_size / bins)`` per axis when ``sampling_ratio`` is 0). Differentiable with respect to
    ``features``.
    """
    check_tensor("features", features, 4, "[N, C, H, W]")
    check_tensor("rois", rois, 2, "[K, 5]")
    check_size("rois", rois, 1, 5, "[K, 5] (image index, x0, y0, x1, y1)")
    check_finite("rois", rois)
    out_h, out_w = _pair(output_size)
    batch, channels, height, width = features.shape
    num_rois = rois.shape[0]
    if num_rois == 0:
        return features.new_zeros((0, channels, out_h, out_w))

    rois = rois.to(features.dtype)
    image = rois[:, 0].to(torch.int64)
    if bool(((image < 0) | (image >= batch)).any()):
        raise ValueError(f"rois: image index out of range [0, {batch}) in column 0")
    offset = 0.5 if aligned else 0.0
    x0 = rois[:, 1] * spatial_scale - offset
    y0 = rois[:, 2] * spatial_scale - offset
    x1 = rois[:, 3] * spatial_scale - offset
    y1 = rois[:, 4] * spatial_scale - offset
    if sampling_ratio > 0:
        grid_y = torch.full((num_rois,), sampling_ratio, dtype=torch.int64, device=rois.device)
        grid_x = grid_y
    else:
        grid_y = torch.ceil(torch.clamp(y1 - y0, min=1.0) / out_h).to(torch.int64)
        grid_x = torch.ceil(torch.clamp(x1 - x0, min=1.0) / out_w).to(torch.int64)
    max_grid_y = sampling_ratio if sampling_ratio > 0 else int(grid_y.max())
    max_grid_x = sampling_ratio if sampling_ratio > 0 else int(grid_x.max())

    rows, row_weights = _axis_taps(y0, y1, out_h, grid_y, max_grid_y, height)
    cols, col_weights = _axis_taps(x0, x1, out_w, grid_x, max_grid_x, width)
    count = (grid_y * grid_x).to(features.dtype)
    taps = 4 * max_grid_y * max_grid_x
    table = features.permute(0, 2, 3, 1).reshape(batch * height * width, channels)
    # One bag per (roi, bin_y, bin_x) with (sample_y, tap_y, sample_x, tap_x) members; adaptive sampling of
    # large ROIs makes long bags, so ROIs are pooled in pieces that bound the index memory.
    chunk = max(1, MAX_TAPS // (taps * out_h * out_w))
    pieces = []
    for first in range(0, num_rois, chunk):
        part = slice(first, first + chunk)
        index = (image[part].view(-1, 1, 1, 1, 1, 1, 1) * height + rows[part, :, None, :, :, None, None]) * width
        index = (index + cols[part, None, :, None, None, :, :]).reshape(-1, taps)
        weights = row_weights[part, :, None, :, :, None, None] * col_weights[part, None, :, None, None, :, :]
        weights = (weights / count[part].view(-1, 1, 1, 1, 1, 1, 1)).reshape(-1, taps)
        pieces.append(F.embedding_bag(index, table, per_sample_weights=weights, mode="sum"))
    pooled = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    return pooled.reshape(num_rois, out_h, out_w, channels).permute(0, 3, 1, 2)


def map_rois_to_levels(rois: Tensor, num_levels: int) -> Tensor:
    """Pyramid level of each ``[K, 4]`` ROI, as OpenVINO's ROIFeatureExtractor assigns it.

    ``floor(log2(sqrt(area) / 224 + 1e-6) + 2)`` clamped to ``[0, num_levels - 1]``, with the area computed
    without +1. A ROI of zero or negative area gets ``num_levels``: it is pooled from no level.
    """
    area = (rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1])
    positive = area > 0
    scale = torch.sqrt(torch.where(positive, area, torch.ones_like(area))) / CANONICAL_SCALE
    level = torch.floor(torch.log2(scale + 1e-6) + CANONICAL_LEVEL)
    level = torch.clamp(level, 0, num_levels - 1).to(torch.int64)
    return torch.where(positive, level, torch.full_like(level, num_levels))


def multilevel_roi_align(
    features: Sequence[Tensor],
    rois: Tensor,
    *,
    output_size: int | Sequence[int],
    sampling_ratio: int,
    pyramid_scales: Sequence[int],
    aligned: bool = False,
) -> Tensor:
    """Pool ``rois`` ``[K, 5]`` (image index first) from a feature pyramid, each ROI from its level
    (:func:`map_rois_to_levels`); ROIs of zero area give zero features. Returns ``[K, C, out_h, out_w]``.

    Level ``i`` of ``features`` (``[N, C, Hi, Wi]``) has stride ``pyramid_scales[i]``.
    """
    check_tensor("rois", rois, 2, "[K, 5]")
    check_size("rois", rois, 1, 5, "[K, 5] (image index, x0, y0, x1, y1)")
    channels = check_pyramid(features, pyramid_scales, batch_size=features[0].shape[0])
    out_h, out_w = _pair(output_size)
    levels = map_rois_to_levels(rois[:, 1:], len(features))
    pooled = features[0].new_zeros((rois.shape[0], channels, out_h, out_w))
    for level, (feature, scale) in enumerate(zip(features, pyramid_scales)):
        index = torch.nonzero(levels == level).flatten()
        if index.numel() == 0:
            continue
        level_pooled = roi_align(
            feature,
            rois[index],
            output_size=(out_h, out_w),
            spatial_scale=1.0 / scale,
            sampling_ratio=sampling_ratio,
            aligned=aligned,
        )
        pooled = pooled.index_put((index,), level_pooled)
    return pooled
