"""The C4 Mask R-CNN: RPN and heads on res4, res5 as the (shared) ROI head."""

from __future__ import annotations

from segmentoly.rcnn.mask_rcnn import MaskRCNNConfig
from segmentoly.rcnn.model_zoo.base import ZooModel
from segmentoly.rcnn.model_zoo.resnet_fpn_mask_rcnn import resnet_backbone
from segmentoly.rcnn.roi_heads import BoxHeadConfig, MaskHeadConfig
from segmentoly.rcnn.rpn import RPNConfig


class ResNet50C4MaskRCNN(ZooModel):
    """ResNet-50-C4 Mask R-CNN (Detectron ``e2e_mask_rcnn_R-50-C4``): 15 anchors on res4 (stride 16), 14x14
    ROIAlign with adaptive sampling, res5 and average pooling as the box head, and 14x14 masks from res5."""

    name = "resnet50_c4"

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        return MaskRCNNConfig(
            num_classes=num_classes,
            backbone=resnet_backbone(50, num_stages=3),
            fpn=None,
            rpn=RPNConfig(
                anchor_sizes=((32.0, 64.0, 128.0, 256.0, 512.0),),
                pre_nms_count_train=12000,
                post_nms_count_train=2000,
                proposals_train=2000,
                pre_nms_count_test=6000,
                post_nms_count_test=1000,
                proposals_test=1000,
            ),
            box_head=BoxHeadConfig(kind="res5", resolution=14, sampling_ratio=0),
            mask_head=MaskHeadConfig(kind="res5", resolution=14, sampling_ratio=0),
        )
