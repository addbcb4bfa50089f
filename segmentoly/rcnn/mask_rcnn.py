"""Mask R-CNN: backbone, optional FPN, RPN, box head and mask head, assembled.

In eval mode the model maps one input image to the raw outputs of the model contract (DESIGN.md section 2):
fixed-size ``boxes [K, 4]``, ``scores [K]``, ``classes [K]`` (0 marks padding) and ``masks [K, M, M]`` (the
probabilities of each detection's class), in the coordinates of the network input, using the detection ops
for every step, so that the same forward pass exports to one OpenVINO-ready ONNX graph. In training mode it
returns the losses (see :mod:`segmentoly.rcnn.training`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from segmentoly import ops
from segmentoly.ops._checks import tracing
from segmentoly.rcnn.backbones.resnet import BackboneConfig, ResNet
from segmentoly.rcnn.fpn import FPN, FPNConfig
from segmentoly.rcnn.roi_heads import (
    BoxHeadConfig,
    BoxPredictor,
    FCBoxHead,
    FCNMaskHead,
    MaskHeadConfig,
    MaskPredictor,
    Res5BoxHead,
    Res5MaskHead,
    select_class_masks,
)
from segmentoly.rcnn.rpn import RPN, RPNConfig

#: BGR means of the ImageNet-pretrained backbones of Detectron and maskrcnn-benchmark.
DETECTRON_PIXEL_MEAN = (102.9801, 115.9465, 122.7717)


@dataclass
class MaskRCNNConfig:
    """Everything that defines a Mask R-CNN; the defaults are Detectron's R-50-FPN for COCO."""

    num_classes: int = 81  # including the background
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fpn: FPNConfig | None = field(default_factory=FPNConfig)  # None: a C4 model (RPN and heads on res4)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    box_head: BoxHeadConfig = field(default_factory=BoxHeadConfig)
    mask_head: MaskHeadConfig = field(default_factory=MaskHeadConfig)
    pixel_mean: tuple[float, float, float] = DETECTRON_PIXEL_MEAN  # BGR, subtracted inside the model
    pixel_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    size_divisor: int = 32  # input height and width must be multiples of it


Outputs = tuple[Tensor, Tensor, Tensor, Tensor]

#: Names of the raw outputs, in order, as the exported graph names them.
OUTPUT_NAMES = ("boxes", "scores", "classes", "masks")


class MaskRCNN(nn.Module):
    """A Mask R-CNN built from a :class:`MaskRCNNConfig`."""

    def __init__(self, config: MaskRCNNConfig) -> None:
        super().__init__()
        if config.num_classes < 2:
            raise ValueError(f"num_classes: expected at least 2 (background and one class), got {config.num_classes}")
        self.config = config
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std).reshape(1, 3, 1, 1), persistent=False)
        self.backbone = ResNet(config.backbone)
        if config.fpn is not None:
            self.fpn = FPN(self.backbone.out_channels, self.backbone.strides, config.fpn)
            channels, rpn_strides = self.fpn.out_channels, self.fpn.strides
            # The ROI heads read P2..P5; P6 only serves the RPN's largest anchors.
            self.roi_strides = list(self.backbone.strides)
        else:
            self.fpn = None
            channels, rpn_strides = self.backbone.out_channels[-1], [self.backbone.strides[-1]]
            self.roi_strides = rpn_strides
        self.rpn = RPN(config.rpn, channels, rpn_strides)

        if config.box_head.kind == "res5":
            self.box_head = Res5BoxHead(config.backbone)
        elif config.box_head.kind in ("2fc", "4conv1fc"):
            self.box_head = FCBoxHead(channels, config.box_head)
        else:
            raise ValueError(f"box_head.kind: expected '2fc', '4conv1fc' or 'res5', got {config.box_head.kind!r}")
        self.box_predictor = BoxPredictor(self.box_head.out_channels, config.num_classes)

        if config.mask_head.kind == "res5":
            if config.box_head.kind != "res5":
                raise ValueError("mask_head.kind 'res5' shares the box head's res5 stage: box_head.kind must be 'res5'")
            self.mask_head = Res5MaskHead(self.box_head.out_channels, config.mask_head)
        elif config.mask_head.kind == "fcn":
            self.mask_head = FCNMaskHead(channels, config.mask_head)
        else:
            raise ValueError(f"mask_head.kind: expected 'fcn' or 'res5', got {config.mask_head.kind!r}")
        self.mask_predictor = MaskPredictor(self.mask_head.out_channels, config.num_classes)

    @property
    def mask_size(self) -> int:
        """Side of the predicted masks: the deconvolution doubles the pooled ROI features, which the C4
        models' res5 stage first halves."""
        resolution = self.config.mask_head.resolution
        return resolution if self.config.mask_head.kind == "res5" else 2 * resolution

    # -- shared by training and inference -----------------------------------------------------------------

    def normalize(self, images: Tensor) -> Tensor:
        """Subtract the BGR mean (and divide by the std) of the pretrained backbone."""
        return (images - self.pixel_mean) / self.pixel_std

    def features(self, images: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Feature maps for the RPN and for the ROI heads (FPN: P2..P6 and P2..P5; C4: res4 for both)."""
        stages = self.backbone(self.normalize(images))
        if self.fpn is None:
            return stages[-1:], stages[-1:]
        pyramid = self.fpn(stages)
        return pyramid, pyramid[: len(self.roi_strides)]

    def pool(self, rois: Tensor, features: Sequence[Tensor], resolution: int, sampling_ratio: int) -> Tensor:
        """ROI features of one image's ``[K, 4]`` boxes from the ROI levels."""
        return ops.roi_feature_extractor(
            rois,
            list(features),
            output_size=resolution,
            sampling_ratio=sampling_ratio,
            pyramid_scales=self.roi_strides,
        )

    def mask_logits(self, pooled: Tensor) -> Tensor:
        """Per-class mask logits ``[K, num_classes, M, M]`` from pooled mask-head ROI features."""
        if self.config.mask_head.kind == "res5":
            pooled = self.box_head.res5(pooled)
        return self.mask_predictor(self.mask_head(pooled))

    # -- inference ------------------------------------------------------------------------------------------

    def forward(
        self,
        images: Tensor,
        targets: list | None = None,
        image_sizes: list | None = None,
        generator: torch.Generator | None = None,
    ):
        """Eval mode: :meth:`detect` on one image. Training mode: the losses of a batch (``targets`` and
        unpadded ``image_sizes`` per image; ``generator`` drives the anchor and ROI sampling)."""
        if self.training:
            from segmentoly.rcnn.training import mask_rcnn_losses

            return mask_rcnn_losses(self, images, targets, image_sizes, generator)
        return self.detect(images)

    def detect(self, image: Tensor) -> Outputs:
        """Raw outputs for one ``[1, 3, H, W]`` BGR image (0..255, sides multiples of ``size_divisor``)."""
        self._check_image(image)
        rpn_features, roi_features = self.features(image)
        return self._detect_one(image, rpn_features, roi_features, image.shape[2], image.shape[3])

    def detect_batch(self, images: Tensor, sizes: Sequence[tuple[int, int]]) -> list[Outputs]:
        """Raw outputs of each image of a padded ``[B, 3, H, W]`` batch (eager PyTorch only): the backbone runs
        once on the batch, the per-image detection steps on each image's features. ``sizes`` are the images'
        own sizes padded to the divisor, the ``im_info`` each would have alone."""
        rpn_features, roi_features = self.features(images)
        return [
            self._detect_one(
                images[index : index + 1],
                [f[index : index + 1] for f in rpn_features],
                [f[index : index + 1] for f in roi_features],
                height,
                width,
            )
            for index, (height, width) in enumerate(sizes)
        ]

    def _detect_one(
        self, image: Tensor, rpn_features: list[Tensor], roi_features: list[Tensor], height: Any, width: Any
    ) -> Outputs:
        config = self.config
        # im_info of the detection ops: the network input's size (as Detectron's blob) and scale 1.
        one = image.new_ones(())
        image_info = torch.stack((one * height, one * width, one))

        logits, deltas = self.rpn.head(rpn_features)
        anchors = self.rpn.anchors(rpn_features, image)
        rois, _ = self.rpn.proposals(image_info, anchors, logits, deltas)

        box = config.box_head
        class_logits, box_deltas = self.box_predictor(
            self.box_head(self.pool(rois, roi_features, box.resolution, box.sampling_ratio))
        )
        boxes, classes, scores = ops.detection_output(
            rois,
            box_deltas,
            torch.softmax(class_logits, dim=1),
            image_info[None],
            score_threshold=box.score_threshold,
            nms_threshold=box.nms_threshold,
            max_delta_log_wh=ops.BBOX_XFORM_CLIP,
            num_classes=config.num_classes,
            post_nms_count=box.detections_per_image,
            max_detections_per_image=box.detections_per_image,
            deltas_weights=box.regression_weights,
        )

        mask = config.mask_head
        logits = self.mask_logits(self.pool(boxes, roi_features, mask.resolution, mask.sampling_ratio))
        masks = torch.sigmoid(select_class_masks(logits, classes))
        return boxes, scores, classes, masks

    def _check_image(self, image: Tensor) -> None:
        if not isinstance(image, Tensor) or image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ValueError(f"image: expected a [1, 3, H, W] tensor (one BGR image), got {shape}")
        if tracing():
            return
        divisor = self.config.size_divisor
        if image.shape[2] % divisor or image.shape[3] % divisor:
            raise ValueError(
                f"image: height and width must be multiples of {divisor}, got {tuple(image.shape[2:])}; "
                "pad the image (the Predictor does)"
            )
