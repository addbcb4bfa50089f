"""Anchors: a set of priors replicated over every cell of a feature map."""

from __future__ import annotations

import torch
from torch import Tensor

from segmentoly.ops._checks import check_finite, check_size, check_tensor
from segmentoly.ops._openvino import exporting, openvino_node


def prior_grid_generator(
    priors: Tensor,
    feature_map: Tensor,
    image: Tensor,
    *,
    flatten: bool = True,
    h: int = 0,
    w: int = 0,
    stride_x: float = 0.0,
    stride_y: float = 0.0,
) -> Tensor:
    """Shift ``priors`` ``[A, 4]`` to the centre of every cell of the grid; mirrors
    OpenVINO's ``ExperimentalDetectronPriorGridGenerator``.

    The prior ``a`` of cell ``(i, j)`` is shifted by ``(stride_x * (j + 0.5), stride_y * (i + 0.5))``. The grid
    has the ``H x W`` cells of ``feature_map`` ``[N, C, H, W]`` and the strides default to the size of
    ``image`` ``[N, C, H_img, W_img]`` divided by the grid size; only the shapes of both are read. Returns
    ``[H * W * A, 4]`` in (row, column, prior) order, or ``[H, W, A, 4]`` when ``flatten`` is false.

    Non-zero ``h`` and ``w`` override the grid size used for the strides and the cells; like OpenVINO, the
    output keeps the feature map's size and the ``h * w * A`` anchors fill its first rows (OpenVINO leaves the
    remaining rows uninitialised, here they are zero).
    """
    check_tensor("priors", priors, 2, "[A, 4]")
    check_size("priors", priors, 1, 4, "[A, 4]")
    check_tensor("feature_map", feature_map, 4, "[N, C, H, W]")
    check_tensor("image", image, 4, "[N, C, H, W]")
    check_finite("priors", priors)
    map_h, map_w = feature_map.shape[2], feature_map.shape[3]
    grid_h = h if h else map_h
    grid_w = w if w else map_w
    num_priors = priors.shape[0]

    if exporting():
        shape = (map_h * map_w * num_priors, 4) if flatten else (map_h, map_w, num_priors, 4)
        attrs = dict(flatten=flatten, h=h, w=w, stride_x=float(stride_x), stride_y=float(stride_y))
        return openvino_node(
            "ExperimentalDetectronPriorGridGenerator",
            (priors, feature_map, image),
            attrs,
            dtype=priors.dtype,
            shape=shape,
        )

    dtype, device = priors.dtype, priors.device
    # The step is computed in the priors' precision, like the float arithmetic of OpenVINO's kernel.
    step_x = torch.tensor(stride_x if stride_x else image.shape[3], dtype=dtype, device=device)
    step_y = torch.tensor(stride_y if stride_y else image.shape[2], dtype=dtype, device=device)
    if not stride_x:
        step_x = step_x / grid_w
    if not stride_y:
        step_y = step_y / grid_h
    shift_x = step_x * (torch.arange(grid_w, dtype=dtype, device=device) + 0.5)
    shift_y = step_y * (torch.arange(grid_h, dtype=dtype, device=device) + 0.5)
    shifts = torch.stack(
        (
            shift_x[None, :].expand(grid_h, grid_w),
            shift_y[:, None].expand(grid_h, grid_w),
            shift_x[None, :].expand(grid_h, grid_w),
            shift_y[:, None].expand(grid_h, grid_w),
        ),
        dim=-1,
    )
    anchors = (priors[None, None, :, :] + shifts[:, :, None, :]).reshape(-1, 4)
    if (grid_h, grid_w) != (map_h, map_w):
        rows = map_h * map_w * num_priors
        anchors = torch.cat((anchors, anchors.new_zeros((rows, 4))))[:rows]
    return anchors if flatten else anchors.reshape(map_h, map_w, num_priors, 4)
