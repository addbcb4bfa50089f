"""Small FPN Mask R-CNNs that train from scratch on a CPU in minutes (tests, the bundled demo model)."""

from __future__ import annotations

from segmentoly.rcnn.backbones.resnet import BackboneConfig
from segmentoly.rcnn.fpn import FPNConfig
from segmentoly.rcnn.mask_rcnn import MaskRCNNConfig
from segmentoly.rcnn.model_zoo.base import ZooModel
from segmentoly.rcnn.roi_heads import BoxHeadConfig, MaskHeadConfig
from segmentoly.rcnn.rpn import RPNConfig

#: BGR ImageNet standard deviations: inputs of networks trained from scratch are scaled to unit variance.
IMAGENET_PIXEL_STD = (57.375, 57.12, 58.395)


class LightFPNMaskRCNN(ZooModel):
    """A basic-block ResNet (one block per stage, 32..256 channels) with a 64-channel FPN, a box head of two
    convolutions and a 256-wide fully connected layer, and a two-convolution mask head: about 1.5 M parameters.

    GroupNorm everywhere (as in Detectron's GN models): it normalises each image, or each ROI, on its own, so
    results do not depend on how a batch is split across processes or accumulation steps, and the network
    trains from scratch with small batches without the divergence an unnormalised head shows. Anchors are half
    the size of the COCO models' (16..256), for images of a few hundred pixels.
    """

    name = "light_fpn"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        return MaskRCNNConfig(
            num_classes=num_classes,
            backbone=BackboneConfig(
                block="basic",
                blocks=(1, 1, 1, 1),
                stage_channels=(32, 64, 128, 256),
                bottleneck_channels=(32, 64, 128, 256),
                stem_channels=24,
                norm="gn",
                norm_groups=8,
                freeze_at=0,
            ),
            fpn=FPNConfig(channels=64, norm="gn", norm_groups=8),
            rpn=RPNConfig(
                anchor_sizes=((16.0,), (32.0,), (64.0,), (128.0,), (256.0,)),
                pre_nms_count_train=500,
                post_nms_count_train=300,
                proposals_train=300,
                pre_nms_count_test=500,
                post_nms_count_test=300,
                proposals_test=300,
            ),
            box_head=BoxHeadConfig(
                kind="4conv1fc",
                conv_channels=64,
                num_convs=2,
                fc_channels=256,
                norm="gn",
                norm_groups=8,
                batch_size_per_image=64,
            ),
            mask_head=MaskHeadConfig(num_convs=2, conv_channels=64, norm="gn", norm_groups=8),
            pixel_std=IMAGENET_PIXEL_STD,
        )
