"""ResNet and ResNeXt backbones with the layer shapes of Detectron's and maskrcnn-benchmark's.

One class covers the bottleneck networks of the pretrained zoos (R-50, R-101, X-101-32x8d, X-101-64x4d,
X-152-32x8d, with frozen BatchNorm or GroupNorm) and small basic-block networks that train from scratch on a
CPU. The "MSRA" ResNets put the stride of a downsampling block in its first 1x1 convolution, the ResNeXts in
the 3x3 one; both exist in the pretrained zoos, so it is a config switch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from segmentoly.rcnn.layers import conv_norm, conv_norm_block


@dataclass
class BackboneConfig:
    """Shape of a ResNet-family backbone. The defaults are ResNet-50 with frozen BatchNorm."""

    block: str = "bottleneck"  # "bottleneck" or "basic"
    blocks: tuple[int, ...] = (3, 4, 6, 3)  # per stage, res2..res5
    stage_channels: tuple[int, ...] = (256, 512, 1024, 2048)  # output width of each stage
    bottleneck_channels: tuple[int, ...] = (64, 128, 256, 512)  # inner width of each stage's bottlenecks
    groups: int = 1  # grouped 3x3 convolutions (ResNeXt)
    stem_channels: int = 64
    stride_in_1x1: bool = True
    norm: str = "frozen_bn"  # "frozen_bn", "gn" or "none"
    norm_groups: int = 32
    freeze_at: int = 2  # 0: nothing frozen; 1: the stem; k >= 2: the stem and res2..res{k}
    num_stages: int = 4  # 3 for a C4 body (res2..res4)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (grouped) -> 1x1, with a projection shortcut where the shape changes."""

    def __init__(
        self, in_channels: int, inner_channels: int, out_channels: int, stride: int, config: BackboneConfig
    ) -> None:
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if config.stride_in_1x1 else (1, stride)
        norm = dict(norm=config.norm, norm_groups=config.norm_groups)
        self.conv1, self.norm1 = conv_norm(in_channels, inner_channels, 1, stride=stride_1x1, **norm)
        self.conv2, self.norm2 = conv_norm(
            inner_channels, inner_channels, 3, stride=stride_3x3, groups=config.groups, **norm
        )
        self.conv3, self.norm3 = conv_norm(inner_channels, out_channels, 1, **norm)
        self.shortcut = _shortcut(in_channels, out_channels, stride, config)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class BasicBlock(nn.Module):
    """3x3 -> 3x3, the block of ResNet-18/34 and of the small backbones."""

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, stride: int, config: BackboneConfig):
        super().__init__()
        norm = dict(norm=config.norm, norm_groups=config.norm_groups)
        self.conv1, self.norm1 = conv_norm(in_channels, out_channels, 3, stride=stride, **norm)
        self.conv2, self.norm2 = conv_norm(out_channels, out_channels, 3, **norm)
        self.shortcut = _shortcut(in_channels, out_channels, stride, config)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


def _shortcut(in_channels: int, out_channels: int, stride: int, config: BackboneConfig) -> nn.Sequential | None:
    if in_channels == out_channels and stride == 1:
        return None
    return conv_norm_block(
        in_channels, out_channels, 1, stride=stride, norm=config.norm, norm_groups=config.norm_groups
    )


BLOCKS = {"bottleneck": Bottleneck, "basic": BasicBlock}


def make_stage(
    config: BackboneConfig, num_blocks: int, in_channels: int, inner_channels: int, out_channels: int, stride: int
) -> nn.Sequential:
    """A stage of ``num_blocks`` blocks, the first one changing resolution and width."""
    if config.block not in BLOCKS:
        raise ValueError(f"backbone.block: expected one of {sorted(BLOCKS)}, got {config.block!r}")
    block = BLOCKS[config.block]
    return nn.Sequential(
        *(
            block(
                in_channels if i == 0 else out_channels, inner_channels, out_channels, stride if i == 0 else 1, config
            )
            for i in range(num_blocks)
        )
    )


class ResNet(nn.Module):
    """The stem (7x7 convolution and max pooling, stride 4) and the stages res2..res5 (or res2..res4).

    ``forward`` returns the output of every stage; ``out_channels`` and ``strides`` describe them.
    """

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = conv_norm_block(
            3, config.stem_channels, 7, stride=2, norm=config.norm, norm_groups=config.norm_groups
        )
        self.stage_names: list[str] = []
        self.out_channels: list[int] = []
        self.strides: list[int] = []
        in_channels = config.stem_channels
        for index in range(config.num_stages):
            name = f"res{index + 2}"
            out_channels = config.stage_channels[index]
            stage = make_stage(
                config,
                config.blocks[index],
                in_channels,
                config.bottleneck_channels[index],
                out_channels,
                stride=1 if index == 0 else 2,
            )
            self.add_module(name, stage)
            self.stage_names.append(name)
            self.out_channels.append(out_channels)
            self.strides.append(4 * 2**index)
            in_channels = out_channels
        self.freeze(config.freeze_at)

    def freeze(self, freeze_at: int) -> None:
        """Stop training the stem (``freeze_at >= 1``) and the stages res2..res{freeze_at}."""
        modules = [self.stem] if freeze_at >= 1 else []
        modules += [getattr(self, name) for name in self.stage_names[: max(0, freeze_at - 1)]]
        for module in modules:
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = F.relu(self.stem(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        outputs = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            outputs.append(x)
        return outputs
