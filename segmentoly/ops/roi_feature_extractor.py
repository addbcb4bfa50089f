"""Per-ROI features from a feature pyramid, the op of the exported graphs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from segmentoly.ops._checks import check_finite, check_positive_int, check_pyramid, check_size, check_tensor
from segmentoly.ops._openvino import exporting, openvino_multi_node
from segmentoly.ops.roi_align import multilevel_roi_align


def roi_feature_extractor(
    rois: Tensor,
    features: Sequence[Tensor],
    *,
    output_size: int,
    sampling_ratio: int,
    pyramid_scales: Sequence[int],
    aligned: bool = False,
) -> Tensor:
    """ROIAlign of ``rois`` ``[K, 4]`` of one image from the pyramid level that fits each; mirrors
    OpenVINO's ``ExperimentalDetectronROIFeatureExtractor``.

    ``features`` are ``[1, C, Hi, Wi]`` tensors with strides ``pyramid_scales``. A ROI goes to level
    ``floor(log2(sqrt(area) / 224 + 1e-6) + 2)`` clamped to the levels given (area without +1); a ROI of zero
    area gives zero features. Returns ``[K, C, output_size, output_size]``. Differentiable with respect to the
    features.
    """
    check_tensor("rois", rois, 2, "[K, 4]")
    check_size("rois", rois, 1, 4, "[K, 4]")
    check_positive_int("output_size", output_size)
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) or sampling_ratio < 0:
        raise ValueError(f"sampling_ratio: expected a non-negative integer, got {sampling_ratio!r}")
    channels = check_pyramid(features, pyramid_scales, batch_size=1)
    check_finite("rois", rois)

    if exporting():
        attrs = dict(
            output_size=output_size,
            sampling_ratio=sampling_ratio,
            pyramid_scales=[int(s) for s in pyramid_scales],
            aligned=aligned,
        )
        pooled, _ = openvino_multi_node(
            "ExperimentalDetectronROIFeatureExtractor",
            (rois, *features),
            attrs,
            dtypes=(features[0].dtype, rois.dtype),
            shapes=((rois.shape[0], channels, output_size, output_size), (rois.shape[0], 4)),
        )
        return pooled

    with_image_index = torch.cat((rois.new_zeros((rois.shape[0], 1)), rois), dim=1)
    return multilevel_roi_align(
        features,
        with_image_index,
        output_size=output_size,
        sampling_ratio=sampling_ratio,
        pyramid_scales=pyramid_scales,
        aligned=aligned,
    )
