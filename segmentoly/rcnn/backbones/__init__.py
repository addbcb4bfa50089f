"""Backbones: ResNet / ResNeXt with frozen BatchNorm or GroupNorm, and small basic-block networks."""

from segmentoly.rcnn.backbones.resnet import BackboneConfig, ResNet

__all__ = ["BackboneConfig", "ResNet"]
