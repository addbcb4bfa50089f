"""The base of named architectures: a Mask R-CNN with a preset config."""

from __future__ import annotations

from typing import ClassVar

from segmentoly.rcnn.mask_rcnn import MaskRCNN, MaskRCNNConfig


class ZooModel(MaskRCNN):
    """A named architecture. ``ZooModel(num_classes)`` builds the preset; ``config`` replaces it whole
    (a checkpoint's saved config, say)."""

    #: Short name, accepted wherever a model is named (``--model resnet50_fpn``).
    name: ClassVar[str] = ""

    @classmethod
    def default_config(cls, num_classes: int = 81) -> MaskRCNNConfig:
        raise NotImplementedError

    def __init__(self, num_classes: int = 81, config: MaskRCNNConfig | None = None) -> None:
        if config is not None and config.num_classes != num_classes:
            num_classes = config.num_classes
        super().__init__(config if config is not None else self.default_config(num_classes))
