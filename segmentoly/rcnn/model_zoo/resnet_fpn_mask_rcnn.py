"""FPN Mask R-CNNs with the shapes of Detectron's e2e Mask R-CNN baselines (their weights load)."""

from __future__ import annotations

from segmentoly.rcnn.backbones.resnet import BackboneConfig
from segmentoly.rcnn.fpn import FPNConfig
from segmentoly.rcnn.mask_rcnn import MaskRCNNConfig
from segmentoly.rcnn.model_zoo.base import ZooModel
from segmentoly.rcnn.roi_heads import BoxHeadConfig, MaskHeadConfig

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def resnet_backbone(
    depth: int,
    *,
    groups: int = 1,
    width_per_group: int = 64,
    norm: str = "frozen_bn",
    stride_in_1x1: bool = True,
    num_stages: int = 4,
) -> BackboneConfig:
    """A bottleneck ResNet (``groups == 1``) or ResNeXt (``groups x width_per_group`` wide at res2)."""
    inner = groups * width_per_group
    return BackboneConfig(
        block="bottleneck",
        blocks=DEPTHS[depth],
        stage_channels=(256, 512, 1024, 2048),
        bottleneck_channels=(inner, 2 * inner, 4 * inner, 8 * inner),
        groups=groups,
        stride_in_1x1=stride_in_1x1,
        norm=norm,
        num_stages=num_stages,
    )


class ResNet50FPNMaskRCNN(ZooModel):
    """ResNet-50-FPN Mask R-CNN (Detectron ``e2e_mask_rcnn_R-50-FPN``), MSRA ResNet with frozen BatchNorm."""

    name = "resnet50_fpn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        return MaskRCNNConfig(num_classes=num_classes, backbone=resnet_backbone(50))


class ResNet101FPNMaskRCNN(ZooModel):
    """ResNet-101-FPN Mask R-CNN (Detectron ``e2e_mask_rcnn_R-101-FPN``)."""

    name = "resnet101_fpn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        return MaskRCNNConfig(num_classes=num_classes, backbone=resnet_backbone(101))


class ResNeXt101FPNMaskRCNN(ZooModel):
    """ResNeXt-101-32x8d-FPN Mask R-CNN (Detectron ``e2e_mask_rcnn_X-101-32x8d-FPN``)."""

    name = "resnext101_32x8d_fpn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        backbone = resnet_backbone(101, groups=32, width_per_group=8, stride_in_1x1=False)
        return MaskRCNNConfig(num_classes=num_classes, backbone=backbone)


class ResNeXt10164x4dFPNMaskRCNN(ZooModel):
    """ResNeXt-101-64x4d-FPN Mask R-CNN (Detectron ``e2e_mask_rcnn_X-101-64x4d-FPN``)."""

    name = "resnext101_64x4d_fpn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        backbone = resnet_backbone(101, groups=64, width_per_group=4, stride_in_1x1=False)
        return MaskRCNNConfig(num_classes=num_classes, backbone=backbone)


class ResNeXt152FPNMaskRCNN(ZooModel):
    """ResNeXt-152-32x8d-FPN Mask R-CNN (Detectron ``e2e_mask_rcnn_X-152-32x8d-FPN-IN5k``)."""

    name = "resnext152_32x8d_fpn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        backbone = resnet_backbone(152, groups=32, width_per_group=8, stride_in_1x1=False)
        return MaskRCNNConfig(num_classes=num_classes, backbone=backbone)


def groupnorm_config(depth: int, num_classes: int) -> MaskRCNNConfig:
    """Detectron's GroupNorm baselines (``e2e_mask_rcnn_R-*-FPN_*_gn``): GN in the backbone (stride in the 3x3
    convolution, like the GN ImageNet models), the FPN, a 4conv1fc box head and the mask head."""
    return MaskRCNNConfig(
        num_classes=num_classes,
        backbone=resnet_backbone(depth, norm="gn", stride_in_1x1=False),
        fpn=FPNConfig(norm="gn"),
        box_head=BoxHeadConfig(kind="4conv1fc", norm="gn"),
        mask_head=MaskHeadConfig(norm="gn"),
    )


class ResNet50GNFPNMaskRCNN(ZooModel):
    """ResNet-50-FPN Mask R-CNN with GroupNorm everywhere (Detectron ``e2e_mask_rcnn_R-50-FPN_2x_gn``)."""

    name = "resnet50_fpn_gn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        return groupnorm_config(50, num_classes)


class ResNet101GNFPNMaskRCNN(ZooModel):
    """ResNet-101-FPN Mask R-CNN with GroupNorm everywhere (Detectron ``e2e_mask_rcnn_R-101-FPN_3x_gn``)."""

    name = "resnet101_fpn_gn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        return groupnorm_config(101, num_classes)
