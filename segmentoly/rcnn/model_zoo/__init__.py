"""Named architectures: the table of short names, and lookup by name or class path.

``--model`` accepts a short name (``resnet50_fpn``) or, as the original tool did, a class path
(``segmentoly.rcnn.model_zoo.resnet_fpn_mask_rcnn.ResNet50FPNMaskRCNN``).
"""

from __future__ import annotations

import importlib

from segmentoly.rcnn.model_zoo.base import ZooModel
from segmentoly.rcnn.model_zoo.light import LightFPNMaskRCNN
from segmentoly.rcnn.model_zoo.resnet_c4_mask_rcnn import ResNet50C4MaskRCNN
from segmentoly.rcnn.model_zoo.resnet_fpn_mask_rcnn import (
    ResNet50FPNMaskRCNN,
    ResNet50GNFPNMaskRCNN,
    ResNet101FPNMaskRCNN,
    ResNet101GNFPNMaskRCNN,
    ResNeXt101FPNMaskRCNN,
    ResNeXt152FPNMaskRCNN,
    ResNeXt10164x4dFPNMaskRCNN,
)

ARCHITECTURES: dict[str, type[ZooModel]] = {
    cls.name: cls
    for cls in (
        ResNet50FPNMaskRCNN,
        ResNet101FPNMaskRCNN,
        ResNeXt101FPNMaskRCNN,
        ResNeXt10164x4dFPNMaskRCNN,
        ResNeXt152FPNMaskRCNN,
        ResNet50GNFPNMaskRCNN,
        ResNet101GNFPNMaskRCNN,
        ResNet50C4MaskRCNN,
        LightFPNMaskRCNN,
    )
}


def resolve_architecture(spec: str) -> type[ZooModel]:
    """The architecture class for a short name or a ``package.module.Class`` path."""
    if spec in ARCHITECTURES:
        return ARCHITECTURES[spec]
    if "." in spec:
        module_name, _, class_name = spec.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"--model {spec!r}: cannot import it ({error})") from error
        if not (isinstance(cls, type) and issubclass(cls, ZooModel)):
            raise ValueError(f"--model {spec!r}: not a segmentoly model architecture")
        return cls
    raise ValueError(f"--model {spec!r}: unknown architecture; known names: {', '.join(sorted(ARCHITECTURES))}")


def architecture_name(model_or_cls: ZooModel | type[ZooModel]) -> str:
    cls = model_or_cls if isinstance(model_or_cls, type) else type(model_or_cls)
    return cls.name if ARCHITECTURES.get(cls.name) is cls else f"{cls.__module__}.{cls.__qualname__}"


__all__ = [
    "ARCHITECTURES",
    "ZooModel",
    "architecture_name",
    "resolve_architecture",
    *[c.__name__ for c in ARCHITECTURES.values()],
]
