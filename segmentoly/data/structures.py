"""What flows out of the data pipeline: one image with its ground truth, and batches of them.

Boxes are ``(x0, y0, x1, y1)`` in the legacy "+1" pixel convention of Detectron (a box covers the pixels
``x0..x1`` inclusive, see :mod:`segmentoly.ops.boxes`), in the pixels of the image they travel with: a transform
that resizes or flips the image updates the boxes, masks and ``scale`` together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import Tensor


@dataclass
class Target:
    """The ground truth of one image.

    Attributes:
        boxes: ``[N, 4]`` float32 instance boxes ``(x0, y0, x1, y1)``, +1 convention.
        labels: ``[N]`` int64 contiguous class labels 1..C (0 is the background and never appears).
        masks: ``[N, H, W]`` uint8 0/1 full-image instance masks, the same ``H, W`` as the image.
        crowd_boxes: ``[M, 4]`` float32 boxes of crowd regions: not instances to detect, but regions where
            anchors and proposals are neither positive nor negative during matching.
    """

    boxes: Tensor
    labels: Tensor
    masks: Tensor
    crowd_boxes: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Target:
        """A copy with every tensor on ``device``."""
        return Target(
            boxes=self.boxes.to(device, non_blocking=non_blocking),
            labels=self.labels.to(device, non_blocking=non_blocking),
            masks=self.masks.to(device, non_blocking=non_blocking),
            crowd_boxes=self.crowd_boxes.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Target:
        """A copy in page-locked memory (called by ``DataLoader(pin_memory=True)``)."""
        return Target(
            boxes=self.boxes.pin_memory(),
            labels=self.labels.pin_memory(),
            masks=self.masks.pin_memory(),
            crowd_boxes=self.crowd_boxes.pin_memory(),
        )

    @classmethod
    def empty(cls, height: int, width: int) -> Target:
        """A target without instances or crowd regions for a ``height x width`` image."""
        return cls(
            boxes=torch.zeros((0, 4), dtype=torch.float32),
            labels=torch.zeros((0,), dtype=torch.int64),
            masks=torch.zeros((0, height, width), dtype=torch.uint8),
            crowd_boxes=torch.zeros((0, 4), dtype=torch.float32),
        )


@dataclass
class Sample:
    """One image and its ground truth, as the dataset yields it after the transforms.

    Attributes:
        image: ``[3, H, W]`` float32, BGR, 0..255. No mean is subtracted: the model does that from its config.
        target: the ground truth in the pixels of ``image``.
        image_id: the image's id in the annotation file.
        original_size: ``(height, width)`` of the image file.
        scale: ``(scale_y, scale_x)``: a coordinate of the original image times ``scale`` is a coordinate of
            ``image`` (a flip does not change it). Detections are mapped back by dividing by it.
    """

    image: Tensor
    target: Target
    image_id: int
    original_size: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the image as it is now."""
        return int(self.image.shape[1]), int(self.image.shape[2])

    def replace(self, **changes: object) -> Sample:
        """A copy with some fields replaced (transforms build new samples rather than edit them)."""
        return replace(self, **changes)


@dataclass
class Batch:
    """Images padded into one tensor, with the per-image information the model and evaluation need.

    Attributes:
        images: ``[B, 3, Hp, Wp]`` float32, each image at the top left, padded at the bottom and right (with
            zeros, or the value given to :func:`~segmentoly.data.batching.collate`) so that ``Hp`` and ``Wp``
            are multiples of the size divisor.
        image_sizes: ``(height, width)`` of each image before padding (boxes must be clipped to these, not to
            the padded size).
        targets: the ground truth of each image, not padded (masks keep their image's size).
        image_ids, original_sizes, scales: as in :class:`Sample`, one per image.
    """

    images: Tensor
    image_sizes: list[tuple[int, int]]
    targets: list[Target]
    image_ids: list[int]
    original_sizes: list[tuple[int, int]]
    scales: list[tuple[float, float]]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """A copy with the images and targets on ``device``."""
        return replace(
            self,
            images=self.images.to(device, non_blocking=non_blocking),
            targets=[target.to(device, non_blocking=non_blocking) for target in self.targets],
        )

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (called by ``DataLoader(pin_memory=True)``)."""
        return replace(self, images=self.images.pin_memory(), targets=[t.pin_memory() for t in self.targets])


class SampleKey(NamedTuple):
    """An index into a dataset with the seed of the random transforms for this one draw of it.

    The training batch sampler yields these, so that the augmentation of every sample is a function of the
    sampler's seed and iteration only, whichever worker process loads it: that makes a resumed run see exactly
    the images and augmentations an uninterrupted run would.
    """

    index: int
    seed: int
