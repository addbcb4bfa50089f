"""The per-ROI heads: box classification and regression, and instance masks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segmentoly.rcnn.backbones.resnet import BackboneConfig, make_stage
from segmentoly.rcnn.layers import conv_norm_block


@dataclass
class BoxHeadConfig:
    """Box head settings; defaults are Detectron's FPN two-fc head and its test-time thresholds."""

    kind: str = "2fc"  # "2fc", "4conv1fc" (the GroupNorm models' head) or "res5" (the C4 models' head)
    resolution: int = 7  # ROIAlign output size
    sampling_ratio: int = 2
    fc_channels: int = 1024
    conv_channels: int = 256
    num_convs: int = 4
    norm: str = "none"
    norm_groups: int = 32
    score_threshold: float = 0.05
    nms_threshold: float = 0.5
    detections_per_image: int = 100
    regression_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    # Training: proposal sampling and matching.
    batch_size_per_image: int = 512
    positive_fraction: float = 0.25
    foreground_iou: float = 0.5
    background_iou_low: float = 0.0
    smooth_l1_beta: float = 1.0


@dataclass
class MaskHeadConfig:
    """Mask head settings; defaults are Detectron's FPN head (4 convolutions, 2x deconvolution, 28x28)."""

    kind: str = "fcn"  # "fcn" or "res5" (C4: the box head's res5 stage, shared, then a deconvolution)
    resolution: int = 14  # ROIAlign output size; masks are twice that
    sampling_ratio: int = 2
    num_convs: int = 4
    conv_channels: int = 256
    norm: str = "none"
    norm_groups: int = 32
    threshold: float = 0.5  # binarisation of the pasted mask probabilities


def _xavier(layer: nn.Module) -> None:
    """Caffe2's XavierFill, Detectron's initialisation of the fully connected box head."""
    nn.init.kaiming_uniform_(layer.weight, a=1)
    nn.init.zeros_(layer.bias)


def _msra(layer: nn.Module) -> None:
    """Caffe2's MSRAFill (fan-out), Detectron's initialisation of the mask head convolutions."""
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _add_conv_stack(
    module: nn.Module, prefix: str, count: int, in_channels: int, config: BoxHeadConfig | MaskHeadConfig
) -> list[str]:
    """Add ``count`` 3x3 convolution blocks (``conv_channels`` wide, normalised as ``config`` says) to
    ``module`` as ``prefix1``, ``prefix2``, ...; returns their names in order."""
    names = [f"{prefix}{i + 1}" for i in range(count)]
    for i, name in enumerate(names):
        block = conv_norm_block(
            in_channels if i == 0 else config.conv_channels,
            config.conv_channels,
            3,
            norm=config.norm,
            norm_groups=config.norm_groups,
        )
        _msra(block.conv)
        module.add_module(name, block)
    return names


class FCBoxHead(nn.Module):
    """Optional 3x3 convolutions (``conv1..``), then fully connected layers (``fc6``, ``fc7``, Detectron's names):
    ``[K, C, R, R]`` -> ``[K, fc_channels]``."""

    def __init__(self, in_channels: int, config: BoxHeadConfig) -> None:
        super().__init__()
        num_convs = config.num_convs if config.kind == "4conv1fc" else 0
        self.conv_names = _add_conv_stack(self, "conv", num_convs, in_channels, config)
        if num_convs:
            in_channels = config.conv_channels
        self.fc_names = ["fc6"] if num_convs else ["fc6", "fc7"]
        size = in_channels * config.resolution**2
        for name in self.fc_names:
            fc = nn.Linear(size, config.fc_channels)
            _xavier(fc)
            self.add_module(name, fc)
            size = config.fc_channels
        self.out_channels = size

    def forward(self, x: Tensor) -> Tensor:
        for name in self.conv_names:
            x = F.relu(getattr(self, name)(x))
        x = x.flatten(1)
        for name in self.fc_names:
            x = F.relu(getattr(self, name)(x))
        return x


class Res5BoxHead(nn.Module):
    """The C4 models' head: the backbone's res5 stage on 14x14 ROI features, then average pooling."""

    def __init__(self, backbone: BackboneConfig) -> None:
        super().__init__()
        self.res5 = make_stage(
            backbone,
            backbone.blocks[3],
            backbone.stage_channels[2],
            backbone.bottleneck_channels[3],
            backbone.stage_channels[3],
            stride=2,
        )
        self.out_channels = backbone.stage_channels[3]

    def forward(self, x: Tensor) -> Tensor:
        x = self.res5(x)
        return x.mean(dim=(2, 3))


class BoxPredictor(nn.Module):
    """Class scores and class-specific box deltas."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, 4 * num_classes)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


class FCNMaskHead(nn.Module):
    """3x3 convolutions (``fcn1..``) then a 2x deconvolution: ``[K, C, R, R]`` -> ``[K, conv_channels, 2R, 2R]``."""

    def __init__(self, in_channels: int, config: MaskHeadConfig) -> None:
        super().__init__()
        self.conv_names = _add_conv_stack(self, "fcn", config.num_convs, in_channels, config)
        channels = config.conv_channels if config.num_convs else in_channels
        self.deconv = nn.ConvTranspose2d(channels, config.conv_channels, 2, stride=2)
        _msra(self.deconv)
        self.out_channels = config.conv_channels

    def forward(self, x: Tensor) -> Tensor:
        for name in self.conv_names:
            x = F.relu(getattr(self, name)(x))
        return F.relu(self.deconv(x))


class Res5MaskHead(nn.Module):
    """The C4 models' mask head after the shared res5 stage: a 2x deconvolution of its 7x7 output."""

    def __init__(self, in_channels: int, config: MaskHeadConfig) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, config.conv_channels, 2, stride=2)
        _msra(self.deconv)
        self.out_channels = config.conv_channels

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.deconv(x))


class MaskPredictor(nn.Module):
    """Per-class mask logits."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.logits = nn.Conv2d(in_channels, num_classes, 1)
        nn.init.normal_(self.logits.weight, std=0.001)
        nn.init.zeros_(self.logits.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)


def select_class_masks(mask_logits: Tensor, classes: Tensor) -> Tensor:
    """The ``[K, M, M]`` logits of each ROI's class out of ``[K, num_classes, M, M]``."""
    k, _, height, width = mask_logits.shape
    index = classes.to(torch.int64).reshape(k, 1, 1, 1).expand(k, 1, height, width)
    return torch.gather(mask_logits, 1, index).squeeze(1)
