"""The result of instance segmentation on one image, in its original pixel coordinates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    """Detected instances of one image, best score first.

    Attributes:
        boxes: ``[N, 4]`` float32 ``(x0, y0, x1, y1)`` in original image pixels, inclusive corners
            (the +1 convention: the box covers ``x1 - x0 + 1`` pixels).
        scores: ``[N]`` float32 confidences.
        labels: ``[N]`` int64 class indices into ``class_names`` (1..C; 0 is the background and never appears).
        masks: ``[N, H, W]`` bool instance masks of the full image.
        class_names: names indexed by label, ``class_names[0]`` being the background.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    class_names: Sequence[str] = field(default_factory=tuple)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of the image the masks cover."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def names(self) -> list[str]:
        """The class name of each detection."""
        return [self.class_names[int(label)] if self.class_names else str(int(label)) for label in self.labels]

    def select(self, keep: np.ndarray) -> Detections:
        """The detections selected by a boolean mask or an index array."""
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep], self.masks[keep], self.class_names)

    @classmethod
    def empty(cls, height: int, width: int, class_names: Sequence[str] = ()) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.int64),
            np.zeros((0, height, width), bool),
            tuple(class_names),
        )

    def to_coco(self, image_id: int, category_ids: Mapping[int, int] | Sequence[int]) -> list[dict]:
        """COCO results-format records (``bbox`` as xywh, ``segmentation`` as RLE).

        ``category_ids`` maps a label to the dataset's category id.
        """
        import pycocotools.mask as mask_util

        if len(self) == 0:
            return []
        rles = mask_util.encode(np.asfortranarray(self.masks.transpose(1, 2, 0).astype(np.uint8)))
        records = []
        for box, score, label, rle in zip(self.boxes, self.scores, self.labels, rles):
            rle["counts"] = rle["counts"].decode("ascii")
            x0, y0, x1, y1 = (float(v) for v in box)
            records.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_ids[int(label)]),
                    "bbox": [x0, y0, x1 - x0 + 1.0, y1 - y0 + 1.0],
                    "score": float(score),
                    "segmentation": rle,
                }
            )
        return records
