"""Normalisation layers and small conv helpers shared by backbones, FPN and heads."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters: a per-channel ``x * scale + bias``.

    The pretrained ImageNet and COCO models of Detectron and maskrcnn-benchmark were trained with it (batches of
    one or two images per GPU are too small for batch statistics). Everything is a buffer, so it never trains
    and does not count as a parameter. Like maskrcnn-benchmark there is no epsilon: Detectron's weights store
    the folded ``scale`` and ``bias`` directly (``running_var = 1``, ``running_mean = 0``).
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * self.running_var.rsqrt()
        bias = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1).to(x.dtype) + bias.reshape(1, -1, 1, 1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}"


#: Normalisations a config may name.
NORMS = ("frozen_bn", "gn", "none")


def make_norm(kind: str, channels: int, groups: int = 32) -> nn.Module:
    """A normalisation layer: ``frozen_bn``, ``gn`` (GroupNorm with ``groups`` groups, Detectron's
    epsilon 1e-5) or ``none``."""
    if kind == "frozen_bn":
        return FrozenBatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(min(groups, channels), channels, eps=1e-5)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm: expected one of {NORMS}, got {kind!r}")


def conv_norm(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    groups: int = 1,
    norm: str = "none",
    norm_groups: int = 32,
) -> tuple[nn.Conv2d, nn.Module]:
    """A same-padded convolution and its normalisation; the convolution has a bias only without a norm."""
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        groups=groups,
        bias=norm == "none",
    )
    return conv, make_norm(norm, out_channels, norm_groups)


def conv_norm_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    groups: int = 1,
    norm: str = "none",
    norm_groups: int = 32,
) -> nn.Sequential:
    """:func:`conv_norm` as one module whose parts are named ``conv`` and ``norm`` (readable weight names)."""
    conv, norm_layer = conv_norm(
        in_channels, out_channels, kernel_size, stride=stride, groups=groups, norm=norm, norm_groups=norm_groups
    )
    return nn.Sequential(OrderedDict([("conv", conv), ("norm", norm_layer)]))
