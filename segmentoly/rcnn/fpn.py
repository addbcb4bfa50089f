"""Feature Pyramid Network (Lin et al.), in Detectron's form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from segmentoly.rcnn.layers import conv_norm_block


@dataclass
class FPNConfig:
    channels: int = 256
    norm: str = "none"  # "gn" for the GroupNorm models
    norm_groups: int = 32
    extra_max_pool: bool = True  # P6: max-pooling of P5 with stride 2, for the RPN's largest anchors


class FPN(nn.Module):
    """Top-down pathway with lateral connections: C2..C5 -> P2..P5 (+ P6).

    Each level is a 1x1 lateral projection of the backbone stage plus the nearest-neighbour 2x upsampling of
    the level above, smoothed by a 3x3 convolution. Inputs whose sides are multiples of the coarsest stride
    make every level exactly twice the size of the next.
    """

    def __init__(self, in_channels: Sequence[int], strides: Sequence[int], config: FPNConfig) -> None:
        super().__init__()
        norm = dict(norm=config.norm, norm_groups=config.norm_groups)
        self.lateral = nn.ModuleList()
        self.output = nn.ModuleList()
        for channels in in_channels:
            self.lateral.append(conv_norm_block(channels, config.channels, 1, **norm))
            self.output.append(conv_norm_block(config.channels, config.channels, 3, **norm))
        self.extra_max_pool = config.extra_max_pool
        self.out_channels = config.channels
        self.strides = list(strides) + ([strides[-1] * 2] if config.extra_max_pool else [])
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # Caffe2's XavierFill, as Detectron initialises FPN.
                nn.init.kaiming_uniform_(module.weight, a=1)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        inner = self.lateral[-1](features[-1])
        outputs = [self.output[-1](inner)]
        for level in range(len(features) - 2, -1, -1):
            inner = self.lateral[level](features[level]) + F.interpolate(inner, scale_factor=2.0, mode="nearest")
            outputs.insert(0, self.output[level](inner))
        if self.extra_max_pool:
            outputs.append(F.max_pool2d(outputs[-1], kernel_size=1, stride=2))
        return outputs
