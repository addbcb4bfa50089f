"""A COCO-format instance segmentation dataset: any instances json with a folder of images.

The json is read and checked once, when the dataset is built, so that a malformed file fails at once with a
message naming the file and the record, not hours into training. Annotations that are merely degenerate (a box
of zero size, a polygon of fewer than three points, an empty segmentation) occur in real data sets, COCO
included; they are skipped and counted, never fatal. Pixels are read and masks decoded only per sample.

Labels are contiguous: the categories sorted by id get labels 1..C, 0 being the background, as in Detectron.
Boxes follow Detectron's ``xywh_to_xyxy``: ``x1 = x + max(w, 1) - 1`` (the "+1" convention), clipped to the
image like Detectron's ``clip_xyxy_to_image``.
"""

from __future__ import annotations

import json
import logging
import math
import operator
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch

from segmentoly.data.splits import DATASET_SPLITS, dataset_paths
from segmentoly.data.structures import Sample, SampleKey, Target
from segmentoly.data.transforms import Transform

__all__ = ["DATASET_SPLITS", "CocoDataset", "DatasetError", "ImageInfo", "dataset_paths", "decode_segmentation"]

log = logging.getLogger(__name__)

# Reasons an annotation is skipped, the keys of ``CocoDataset.skipped``.
ZERO_SIZE_BOX = "box of zero or negative size"
BOX_OUTSIDE_IMAGE = "box outside the image"
SHORT_POLYGON = "polygon with fewer than 3 points"
EMPTY_SEGMENTATION = "empty segmentation"


class DatasetError(ValueError):
    """Bad input data: a missing or malformed annotation file, an unknown category, an unreadable image."""


@dataclass(frozen=True)
class ImageInfo:
    """An image as the annotation file describes it."""

    id: int
    file_name: str
    height: int
    width: int


@dataclass(frozen=True)
class _ImageRecord:
    info: ImageInfo
    boxes: np.ndarray  # [N, 4] float32, +1 convention, clipped to the image
    labels: np.ndarray  # [N] int64
    segmentations: tuple[Any, ...]  # N lists of float64 polygon arrays (degenerate parts dropped) or RLE dicts
    crowd_boxes: np.ndarray  # [M, 4] float32


class CocoDataset(torch.utils.data.Dataset):
    """Instance segmentation samples from a COCO instances json and its image folder.

    Args:
        annotation_file: the COCO instances json.
        image_dir: the folder holding the images named by the json's ``file_name`` fields.
        transforms: called as ``transforms(sample, rng)`` on every sample; see :mod:`segmentoly.data.transforms`.
        training: skip images without any (non-crowd, non-degenerate) instance, as Detectron does for
            training; evaluation keeps every image.

    Indexing with an ``int`` gives the sample without a random generator, so random transforms refuse it;
    indexing with a :class:`SampleKey` ``(index, seed)``, as the training batch sampler yields, seeds them.

    Raises:
        DatasetError: if the file is missing, is not JSON, or is not in the COCO instances format, or an
            annotation names an unknown image or category.
    """

    def __init__(
        self,
        annotation_file: str | Path,
        image_dir: str | Path,
        *,
        transforms: Transform | None = None,
        training: bool = False,
    ) -> None:
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        self.transforms = transforms
        self.training = training
        self.skipped: Counter[str] = Counter()

        data = _read_json(self.annotation_file)
        categories = self._parse_categories(data["categories"])
        category_ids = sorted(categories)
        self.class_names: tuple[str, ...] = ("background", *(categories[i] for i in category_ids))
        self.label_to_category_id: list[int] = [0, *category_ids]  # entry 0 (the background) is unused
        self.category_id_to_label: dict[int, int] = {cat: label for label, cat in enumerate(category_ids, start=1)}

        images = self._parse_images(data["images"])
        instances, crowd = self._parse_annotations(data["annotations"], images)

        self._records: list[_ImageRecord] = []
        self.skipped_images = 0
        for image_id in sorted(images):
            own = instances.get(image_id, [])
            if training and not own:
                self.skipped_images += 1
                continue
            self._records.append(
                _ImageRecord(
                    info=images[image_id],
                    boxes=np.array([box for box, _, _ in own], dtype=np.float32).reshape(-1, 4),
                    labels=np.array([label for _, label, _ in own], dtype=np.int64),
                    segmentations=tuple(segmentation for _, _, segmentation in own),
                    crowd_boxes=np.array(crowd.get(image_id, []), dtype=np.float32).reshape(-1, 4),
                )
            )
        self.num_instances = sum(len(r.labels) for r in self._records)
        self.num_crowd = sum(len(r.crowd_boxes) for r in self._records)

        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items())) or "none"
        log.info(
            "%s: %d images (%d without instances skipped for training), %d instances, %d crowd regions, "
            "%d categories; annotations skipped: %s",
            self.annotation_file,
            len(self._records),
            self.skipped_images,
            self.num_instances,
            self.num_crowd,
            len(category_ids),
            skipped,
        )

    # ---- the dataset interface

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, key: int | SampleKey | tuple[int, int]) -> Sample:
        if isinstance(key, tuple):
            index, seed = key
            return self.get(operator.index(index), np.random.default_rng(seed))
        return self.get(operator.index(key))

    def get(self, index: int, rng: np.random.Generator | None = None) -> Sample:
        """The sample at ``index``, its random transforms drawing from ``rng``."""
        record = self._record(index)
        info = record.info
        image = self.read_image(index)
        target = Target(
            boxes=torch.from_numpy(record.boxes.copy()),
            labels=torch.from_numpy(record.labels.copy()),
            masks=torch.from_numpy(self._decode_masks(record)),
            crowd_boxes=torch.from_numpy(record.crowd_boxes.copy()),
        )
        sample = Sample(
            image=torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)),
            target=target,
            image_id=info.id,
            original_size=(info.height, info.width),
            scale=(1.0, 1.0),
        )
        if self.transforms is not None:
            sample = self.transforms(sample, rng)
        return sample

    @property
    def num_classes(self) -> int:
        """C, the number of object categories (labels run 1..C)."""
        return len(self.class_names) - 1

    def image_info(self, index: int) -> ImageInfo:
        """The id, file name and size of an image, without reading it."""
        return self._record(index).info

    def image_ids(self) -> list[int]:
        """The image id of every sample, in sample order."""
        return [r.info.id for r in self._records]

    def aspect_ratios(self) -> np.ndarray:
        """Width over height of every image, from the json (for grouping batches), ``[len]`` float64."""
        return np.array([r.info.width / r.info.height for r in self._records], dtype=np.float64)

    def read_image(self, index: int) -> np.ndarray:
        """The image at ``index`` as ``[H, W, 3]`` uint8 BGR, checked against the size the json gives."""
        info = self._record(index).info
        path = self.image_dir / info.file_name
        where = f"image id {info.id} of {self.annotation_file}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"{path}: image file not found ({where})") from None
        except OSError as error:
            raise DatasetError(f"{path}: cannot read the image file ({where}): {error}") from None
        if _is_truncated_jpeg(data):
            # libjpeg decodes a truncated JPEG with only a warning on stderr, filling the missing part with grey;
            # training on that silently would be worse than stopping.
            raise DatasetError(f"{path}: truncated or corrupt JPEG file, no end-of-image marker ({where})")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"{path}: corrupt or unsupported image file, cannot decode it ({where})")
        if image.shape[:2] != (info.height, info.width):
            raise DatasetError(
                f"{path}: the image is {image.shape[0]}x{image.shape[1]} (HxW) but the json says "
                f"{info.height}x{info.width} ({where})"
            )
        return image

    # ---- internals

    def _record(self, index: int) -> _ImageRecord:
        if not 0 <= index < len(self._records):
            raise IndexError(f"sample index {index} out of range for a dataset of {len(self._records)} images")
        return self._records[index]

    def _decode_masks(self, record: _ImageRecord) -> np.ndarray:
        height, width = record.info.height, record.info.width
        if not record.segmentations:
            return np.zeros((0, height, width), dtype=np.uint8)
        rles = [_to_rle(segmentation, height, width) for segmentation in record.segmentations]
        return np.ascontiguousarray(_decode(rles).transpose(2, 0, 1))

    def _error(self, message: str) -> DatasetError:
        return DatasetError(f"{self.annotation_file}: {message}")

    def _parse_categories(self, records: list[Any]) -> dict[int, str]:
        categories: dict[int, str] = {}
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                raise self._error(f"categories[{position}] is not an object")
            category_id = _as_int(record.get("id"))
            name = record.get("name")
            if category_id is None:
                raise self._error(f"categories[{position}] has no integer id")
            if not isinstance(name, str):
                raise self._error(f"category {category_id} has no name")
            if category_id in categories:
                raise self._error(f"category id {category_id} appears twice")
            categories[category_id] = name
        if not categories:
            raise self._error("no categories: a COCO instances file lists the categories it annotates")
        return categories

    def _parse_images(self, records: list[Any]) -> dict[int, ImageInfo]:
        images: dict[int, ImageInfo] = {}
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                raise self._error(f"images[{position}] is not an object")
            image_id = _as_int(record.get("id"))
            if image_id is None:
                raise self._error(f"images[{position}] has no integer id")
            file_name = record.get("file_name")
            height, width = _as_int(record.get("height")), _as_int(record.get("width"))
            if not isinstance(file_name, str) or not file_name:
                raise self._error(f"image id {image_id} has no file_name")
            if height is None or width is None or height <= 0 or width <= 0:
                raise self._error(
                    f"image id {image_id} needs a positive integer height and width, got "
                    f"{record.get('height')!r} x {record.get('width')!r}"
                )
            if image_id in images:
                raise self._error(f"image id {image_id} appears twice")
            images[image_id] = ImageInfo(image_id, file_name, height, width)
        return images

    def _parse_annotations(
        self, records: list[Any], images: dict[int, ImageInfo]
    ) -> tuple[dict[int, list[tuple[list[float], int, Any]]], dict[int, list[list[float]]]]:
        """Instances ``(box, label, segmentation)`` and crowd boxes by image id; counts what it skips."""
        instances: dict[int, list[tuple[list[float], int, Any]]] = {}
        crowd: dict[int, list[list[float]]] = {}
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                raise self._error(f"annotations[{position}] is not an object")
            annotation_id = _as_int(record.get("id"))
            name = f"annotation {annotation_id}" if annotation_id is not None else f"annotations[{position}]"

            image_id = _as_int(record.get("image_id"))
            if image_id not in images:
                raise self._error(f"{name} refers to image id {record.get('image_id')!r}, which is not in images")
            info = images[image_id]
            category_id = _as_int(record.get("category_id"))
            if category_id not in self.category_id_to_label:
                raise self._error(
                    f"{name} (image id {image_id}) has category_id {record.get('category_id')!r}, "
                    "which is not in categories"
                )
            bbox = record.get("bbox")
            if (
                not isinstance(bbox, list)
                or len(bbox) != 4
                or not all(_is_number(v) and math.isfinite(v) for v in bbox)
            ):
                raise self._error(f"{name} (image id {image_id}) needs a bbox of 4 numbers [x, y, w, h], got {bbox!r}")
            iscrowd = record.get("iscrowd", 0)
            if iscrowd not in (0, 1):  # True and False compare equal to 1 and 0
                raise self._error(f"{name} (image id {image_id}) has iscrowd {iscrowd!r}, expected 0 or 1")

            box = self._box(bbox, info)
            if box is None:
                continue
            if iscrowd:
                # Only the region matters for a crowd: its box, whatever the segmentation says.
                crowd.setdefault(image_id, []).append(box)
                continue
            segmentation = self._segmentation(record.get("segmentation"), info, f"{name} (image id {image_id})")
            if segmentation is None:
                continue
            instances.setdefault(image_id, []).append((box, self.category_id_to_label[category_id], segmentation))
        return instances, crowd

    def _box(self, bbox: list[float], info: ImageInfo) -> list[float] | None:
        """Detectron's ``xywh_to_xyxy`` then ``clip_xyxy_to_image``; None (counted) for a degenerate box."""
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            self.skipped[ZERO_SIZE_BOX] += 1
            return None
        if x >= info.width or y >= info.height or x + w <= 0 or y + h <= 0:
            self.skipped[BOX_OUTSIDE_IMAGE] += 1
            return None
        x1 = x + max(w, 1.0) - 1.0
        y1 = y + max(h, 1.0) - 1.0
        max_x, max_y = info.width - 1.0, info.height - 1.0
        return [min(max(x, 0.0), max_x), min(max(y, 0.0), max_y), min(max(x1, 0.0), max_x), min(max(y1, 0.0), max_y)]

    def _segmentation(self, segmentation: Any, info: ImageInfo, name: str) -> Any:
        """The segmentation checked (polygon parts under 3 points dropped), or None (counted) if nothing is left."""
        if segmentation is None or (isinstance(segmentation, (list, dict)) and not segmentation):
            self.skipped[EMPTY_SEGMENTATION] += 1
            return None
        if isinstance(segmentation, list):
            polygons = []
            for part in segmentation:
                coordinates = _coordinates(part)
                if coordinates is None:
                    raise self._error(f"{name}: a polygon segmentation must be a list of lists of numbers")
                if len(coordinates) % 2:
                    raise self._error(f"{name}: a polygon has an odd number of coordinates ({len(coordinates)})")
                if len(coordinates) >= 6:
                    polygons.append(coordinates)
            if not polygons:
                self.skipped[SHORT_POLYGON] += 1
                return None
            return polygons
        if isinstance(segmentation, dict):
            counts, size = segmentation.get("counts"), segmentation.get("size")
            if not isinstance(counts, (list, str)) or not isinstance(size, list):
                raise self._error(f"{name}: an RLE segmentation needs 'counts' (list or string) and 'size'")
            if [_as_int(v) for v in size] != [info.height, info.width]:
                raise self._error(f"{name}: RLE size {size} differs from the image size [{info.height}, {info.width}]")
            if not counts or (isinstance(counts, list) and not any(counts[1::2])):
                self.skipped[EMPTY_SEGMENTATION] += 1
                return None
            return segmentation
        raise self._error(f"{name}: segmentation must be a list of polygons or an RLE object")


def decode_segmentation(segmentation: list[list[float]] | dict[str, Any], height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as a ``[height, width]`` uint8 0/1 mask."""
    return _decode([_to_rle(segmentation, height, width)])[:, :, 0]


def _decode(rles: list[dict[str, Any]]) -> np.ndarray:
    """``pycocotools.mask.decode`` of a list of RLEs, ``[H, W, N]`` uint8 (Fortran order)."""
    with warnings.catch_warnings():
        # pycocotools' Cython arrays predate numpy 2's ``copy`` keyword, and numpy says so on every decode.
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning)
        return mask_util.decode(rles)


def _to_rle(segmentation: list[list[float]] | dict[str, Any], height: int, width: int) -> dict[str, Any]:
    if isinstance(segmentation, list):
        return mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):
        return mask_util.frPyObjects(segmentation, height, width)
    return {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def _read_json(path: Path) -> dict[str, Any]:
    """The json of a COCO instances file, checked to have its three lists."""
    if not path.is_file():
        raise DatasetError(f"{path}: annotation file not found")
    try:
        with path.open("rb") as stream:
            data = json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not a valid JSON file: {error}") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the annotation file: {error}") from None
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: not a COCO instances file: the top level is a {type(data).__name__}, not an object"
        )
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise DatasetError(f"{path}: not a COCO instances file: no {', '.join(repr(k) for k in missing)}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data[key], list):
            raise DatasetError(
                f"{path}: not a COCO instances file: {key!r} is a {type(data[key]).__name__}, not a list"
            )
    return data


def _coordinates(part: Any) -> np.ndarray | None:
    """A polygon's coordinates as a float64 array, or None if they are not a flat list of finite numbers.

    Kept as arrays rather than lists of Python floats: for COCO train that is a fraction of the memory, and
    far fewer objects whose reference counts would make forked data-loader workers copy the pages.
    """
    if not isinstance(part, list):
        return None
    try:
        coordinates = np.asarray(part, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return coordinates if coordinates.ndim == 1 and np.isfinite(coordinates).all() else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    """An integer json value (``3`` or ``3.0``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _is_truncated_jpeg(data: bytes) -> bool:
    """Whether JPEG data lacks the end-of-image marker after its last scan.

    Inside entropy-coded scan data a 0xFF byte is always followed by 0x00 or a restart marker, so the last
    start-of-scan (FFDA) and end-of-image (FFD9) markers are real ones. Looking for FFD9 *after* the last scan,
    rather than at the very end, accepts files with trailing bytes and rejects truncated files whose EXIF
    thumbnail carries an FFD9 of its own.
    """
    if not data.startswith(b"\xff\xd8"):
        return False
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")
