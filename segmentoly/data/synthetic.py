"""Synthetic instance segmentation data: coloured shapes on textured backgrounds, written as a COCO data set.

Made to be learnable by a small model in minutes of CPU training, yet not trivial: five shape classes, solid
or striped fills of random colours, noisy, gradient or striped backgrounds, sizes from 12 pixels to half the
image, overlaps that occlude. Every instance is annotated by its *visible* region and drawn shapes are always
annotated: a placement that would leave any instance less than ``min_visibility`` visible, give a visible
region a hole (which COCO polygons cannot express) or a region its polygons do not reproduce, is tried again
elsewhere, so the json never disagrees with the pixels.

Polygons are traced with ``cv2.findContours``, whose points are the centres of the boundary pixels, and then
moved out by half a pixel along the bisector of their edges, so that they run along pixel *edges*: pycocotools
rasterises a polygon by pixel area (the square ``[0, 10]^2`` is exactly 10 x 10 pixels), and so decodes these
polygons back to the very mask (centre-point polygons lose half of every boundary pixel, IoU about 0.86).

Everything is drawn from ``numpy.random.Generator`` objects seeded by ``(seed, split, image index)``: the same
seed gives byte-identical files, and image ``i`` does not depend on how many images are generated.
:func:`render_scene` draws any list of :class:`Shape` on a background, so moving the shapes a little from frame
to frame makes a video (:func:`video_frames`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from segmentoly.data.coco import decode_segmentation

__all__ = [
    "SHAPE_CLASSES",
    "Shape",
    "generate",
    "main",
    "mask_to_polygons",
    "random_background",
    "random_scene",
    "render_scene",
    "video_frames",
]

SHAPE_CLASSES: tuple[str, ...] = ("circle", "ellipse", "rectangle", "triangle", "star")

# cv2 drawing with 4 fractional bits gives sub-pixel vertex placement.
_SHIFT = 4
_POINTS_ON_CURVES = 48
# A placement is redone when an instance's polygons decode to a mask with a lower IoU than this.
_MIN_POLYGON_IOU = 0.9
# Least BGR distance between a shape's colour and what it is drawn on, so that every edge is visible.
_MIN_CONTRAST = 60.0


@dataclass(frozen=True)
class Shape:
    """One shape to draw.

    Attributes:
        kind: one of :data:`SHAPE_CLASSES`.
        center: ``(x, y)`` in pixels (continuous coordinates: pixel ``i`` covers ``[i, i + 1)``).
        radius: half the longest extent, in pixels.
        angle: rotation in degrees (clockwise on screen, where y points down).
        aspect: the short over the long axis for an ellipse or rectangle, the squash of a triangle (0..1];
            circles and stars ignore it.
        color: BGR fill colour.
        stripes: contrast of a striped fill, 0 for a solid one.
        stripe_period: period of the stripes in pixels; they turn with the shape and move with it.
    """

    kind: str
    center: tuple[float, float]
    radius: float
    angle: float = 0.0
    aspect: float = 1.0
    color: tuple[int, int, int] = (255, 255, 255)
    stripes: float = 0.0
    stripe_period: float = 6.0

    def __post_init__(self) -> None:
        if self.kind not in SHAPE_CLASSES:
            raise ValueError(f"unknown shape kind {self.kind!r}: expected one of {', '.join(SHAPE_CLASSES)}")
        if not self.radius > 0 or not 0 < self.aspect <= 1:
            raise ValueError(f"shape needs radius > 0 and aspect in (0, 1], got {self.radius} and {self.aspect}")

    @property
    def label(self) -> int:
        """The contiguous class label, 1 for the first of :data:`SHAPE_CLASSES`."""
        return SHAPE_CLASSES.index(self.kind) + 1

    def polygon(self) -> np.ndarray:
        """The outline, ``[K, 2]`` float64 ``(x, y)`` vertices."""
        if self.kind in ("circle", "ellipse"):
            t = np.linspace(0.0, 2 * math.pi, _POINTS_ON_CURVES, endpoint=False)
            minor = 1.0 if self.kind == "circle" else self.aspect
            local = np.stack([np.cos(t), minor * np.sin(t)], axis=1)
        elif self.kind == "rectangle":
            local = np.array([[-1.0, -self.aspect], [1.0, -self.aspect], [1.0, self.aspect], [-1.0, self.aspect]])
        elif self.kind == "triangle":
            t = np.radians([90.0, 210.0, 330.0])
            local = np.stack([np.cos(t), self.aspect * np.sin(t)], axis=1)
        else:  # star: five points, inner radius 0.45
            t = np.radians(90.0 + 36.0 * np.arange(10))
            r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
            local = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
        theta = math.radians(self.angle)
        rotation = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
        return local * self.radius @ rotation + np.asarray(self.center, dtype=np.float64)

    def area(self) -> float:
        """The area inside the outline, in square pixels."""
        x, y = self.polygon().T
        return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))

    def mask(self, height: int, width: int) -> np.ndarray:
        """The pixels ``cv2.fillPoly`` fills for the outline, ``[height, width]`` bool."""
        canvas = np.zeros((height, width), dtype=np.uint8)
        # cv2 puts integer vertex coordinates on pixel centres, so shift continuous coordinates by half a pixel.
        points = np.round((self.polygon() - 0.5) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        return canvas.astype(bool)

    def moved(self, dx: float = 0.0, dy: float = 0.0, rotate: float = 0.0) -> Shape:
        """The shape shifted by ``(dx, dy)`` pixels and turned by ``rotate`` degrees."""
        return replace(self, center=(self.center[0] + dx, self.center[1] + dy), angle=self.angle + rotate)


def _fill(shape: Shape, height: int, width: int) -> np.ndarray:
    """The shape's fill over the whole canvas, ``[height, width, 3]`` float32."""
    fill = np.empty((height, width, 3), dtype=np.float32)
    fill[:] = shape.color
    if shape.stripes > 0:
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        theta = math.radians(shape.angle)
        # The coordinate along the shape's own x axis, so that the stripes turn with it.
        along = (xs + 0.5 - shape.center[0]) * math.cos(theta) + (ys + 0.5 - shape.center[1]) * math.sin(theta)
        fill += (shape.stripes * np.sin(2 * math.pi * along / shape.stripe_period))[:, :, None]
    return fill


def render_scene(
    background: np.ndarray, shapes: Sequence[Shape], rng: np.random.Generator | None = None, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the shapes in order (later ones on top) over a copy of ``background``.

    Args:
        background: ``[H, W, 3]`` uint8 BGR.
        shapes: what to draw, bottom first.
        rng: draws the pixel noise, needed when ``noise > 0``.
        noise: standard deviation of Gaussian pixel noise added to the whole image.

    Returns:
        The ``[H, W, 3]`` uint8 image and the ``[N, H, W]`` bool *visible* mask of each shape.
    """
    height, width = background.shape[:2]
    canvas = background.astype(np.float32)
    full = np.zeros((len(shapes), height, width), dtype=bool)
    for i, shape in enumerate(shapes):
        full[i] = shape.mask(height, width)
        canvas[full[i]] = _fill(shape, height, width)[full[i]]
    if noise > 0:
        if rng is None:
            raise ValueError("render_scene: pixel noise needs a random generator")
        canvas += rng.normal(0.0, noise, canvas.shape).astype(np.float32)
    visible = full.copy()
    covered = np.zeros((height, width), dtype=bool)
    for i in range(len(shapes) - 1, -1, -1):
        visible[i] &= ~covered
        covered |= full[i]
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), visible


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured ``[height, width, 3]`` uint8 background: blotchy noise, a gradient or stripes."""
    kind = rng.integers(3)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:  # blotches: coarse random colours, smoothly upsampled
        cells = rng.uniform(0, 255, (int(rng.integers(2, 7)), int(rng.integers(2, 7)), 3)).astype(np.float32)
        image = cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC)
    elif kind == 1:  # linear gradient between two colours
        a, b = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        theta = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(theta) + ys * math.sin(theta)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        image = a + (b - a) * t[:, :, None]
    else:  # soft stripes of two colours
        a, b = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        theta = rng.uniform(0, math.pi)
        period = rng.uniform(8, 40)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (xs * math.cos(theta) + ys * math.sin(theta)) / period)
        image = a + (b - a) * t[:, :, None]
    image = image + rng.normal(0.0, rng.uniform(2, 10), (height, width, 3)).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _random_shape(
    rng: np.random.Generator,
    height: int,
    width: int,
    min_radius: float,
    max_radius: float,
    classes: Sequence[str] = SHAPE_CLASSES,
) -> Shape:
    kind = classes[int(rng.integers(len(classes)))]
    # Log-uniform sizes: as many objects between 12 and 24 pixels across as between 48 and 96.
    radius = float(np.exp(rng.uniform(math.log(min_radius), math.log(max(max_radius, min_radius)))))
    # A shape may reach over the border by up to half its radius.
    x = rng.uniform(0.5 * radius, width - 0.5 * radius)
    y = rng.uniform(0.5 * radius, height - 0.5 * radius)
    # Ellipses stay clearly oval so that they cannot pass for circles; rectangles include squares.
    aspect_range = {"ellipse": (0.35, 0.65), "rectangle": (0.45, 1.0), "triangle": (0.7, 1.0)}.get(kind)
    aspect = rng.uniform(*aspect_range) if aspect_range else 1.0
    striped = rng.random() < 0.35
    return Shape(
        kind=kind,
        center=(float(x), float(y)),
        radius=radius,
        angle=float(rng.uniform(0, 360)),
        aspect=float(aspect),
        color=tuple(int(c) for c in rng.integers(0, 256, 3)),
        stripes=float(rng.uniform(10, 30)) if striped else 0.0,
        stripe_period=float(rng.uniform(4, 10)),
    )


def _edge_visible(color: tuple[int, int, int], canvas: np.ndarray, own: np.ndarray) -> bool:
    """Whether most of the ring of pixels just outside the shape differs clearly from its colour."""
    ring = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~own
    if not ring.any():  # the shape covers the whole image
        return True
    distance = np.linalg.norm(canvas[ring].astype(np.float32) - np.asarray(color, np.float32), axis=1)
    return float(np.mean(distance < _MIN_CONTRAST)) <= 0.25


def random_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    min_objects: int = 1,
    max_objects: int = 8,
    min_visibility: float = 0.3,
    object_size: tuple[float, float] = (12.0, 0.5),
    attempts: int = 25,
    classes: Sequence[str] = SHAPE_CLASSES,
) -> tuple[np.ndarray, list[Shape]]:
    """A background and up to ``max_objects`` shapes, each at least ``min_visibility`` visible, bottom first.

    Objects are placed one at a time; a placement that breaks a rule (an instance too hidden, a visible region
    with a hole or one its polygons cannot reproduce, an edge without contrast) is redrawn, at most
    ``attempts`` times, after which the scene keeps the objects it has. ``object_size`` bounds the extent of
    an object: at least that many pixels, at most that fraction of the image's shorter side.
    """
    background = random_background(rng, height, width)
    count = int(rng.integers(min_objects, max_objects + 1))
    min_radius, max_radius = object_size[0] / 2.0, object_size[1] * min(height, width) / 2.0
    shapes: list[Shape] = []
    canvas = background.astype(np.float32)  # what render_scene draws, without the noise
    visible = np.zeros((0, height, width), dtype=bool)
    for _ in range(count):
        for _ in range(attempts if shapes else 10 * attempts):
            shape = _random_shape(rng, height, width, min_radius, max_radius, classes)
            own = shape.mask(height, width)
            if not own.any() or not _edge_visible(shape.color, canvas, own):
                continue
            changed = (visible & own).any(axis=(1, 2))
            candidate = np.concatenate([visible & ~own, own[None]])
            checked = [*np.flatnonzero(changed), len(shapes)]
            if all(_valid_instance(([*shapes, shape])[i], candidate[i], min_visibility) for i in checked):
                shapes.append(shape)
                visible = candidate
                canvas[own] = _fill(shape, height, width)[own]
                break
        else:
            break
    return background, shapes


def _valid_instance(shape: Shape, visible: np.ndarray, min_visibility: float) -> bool:
    if visible.sum() < min_visibility * shape.area():
        return False
    return not _has_hole(visible) and _polygon_iou(visible) >= _MIN_POLYGON_IOU


def _has_hole(mask: np.ndarray) -> bool:
    _, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0, :, 3] >= 0).any())


def _polygon_iou(mask: np.ndarray) -> float:
    polygons = mask_to_polygons(mask)
    if not polygons:
        return 0.0
    decoded = decode_segmentation(polygons, *mask.shape).astype(bool)
    return float((decoded & mask).sum() / max((decoded | mask).sum(), 1))


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` of the outer boundaries of a ``[H, W]`` mask.

    The contour through boundary pixel centres is moved out by half a pixel along each vertex's edge bisector
    (a miter offset, limited at sharp corners), which puts it on the pixel edges; parts of fewer than three
    points (single pixels, one-pixel lines) are dropped.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        points = contour.reshape(-1, 2).astype(np.float64)
        if len(points) < 3:
            continue
        edges = np.roll(points, -1, axis=0) - points
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
        bisectors = normals + np.roll(normals, 1, axis=0)
        # Scale so that both adjacent edges move by exactly half a pixel; cap the miter at sharp corners.
        cosine = np.sum(normals * bisectors, axis=1, keepdims=True)
        offset = points + 0.5 - 0.5 * bisectors / np.maximum(cosine, 0.3)
        polygons.append([round(float(v), 2) for v in offset.reshape(-1)])
    return polygons


def _annotation(mask: np.ndarray, label: int, image_id: int, annotation_id: int) -> dict | None:
    polygons = mask_to_polygons(mask)
    if not polygons:
        return None
    # bbox and area describe the mask the polygons decode to: the json is consistent with itself.
    decoded = decode_segmentation(polygons, *mask.shape)
    ys, xs = np.nonzero(decoded)
    if len(xs) == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": label,
        "segmentation": polygons,
        "area": float(decoded.sum()),
        "bbox": [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)],
        "iscrowd": 0,
    }


def _side_range(image_size: int | tuple[int, int]) -> tuple[int, int]:
    low, high = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if not 32 <= low <= high:
        raise ValueError(f"image_size must be a side of at least 32 or a (min, max) range of them, got {image_size}")
    return int(low), int(high)


def generate(
    output_dir: str | Path,
    num_images: int,
    *,
    seed: int = 0,
    image_size: int | tuple[int, int] = (192, 320),
    min_objects: int = 1,
    max_objects: int = 8,
    min_visibility: float = 0.3,
    object_size: tuple[float, float] = (12.0, 0.5),
    noise: float = 3.0,
    split_name: str = "train",
    image_format: str = "png",
    classes: Sequence[str] = SHAPE_CLASSES,
) -> tuple[Path, Path]:
    """Write a synthetic COCO instances data set; returns ``(annotation_file, image_dir)``.

    The layout is ``output_dir/annotations/instances_<split_name>.json`` with the images in
    ``output_dir/<split_name>/``.

    Args:
        output_dir: where to write (created if needed; existing files of the same names are replaced).
        num_images: how many images.
        seed: the seed of everything; the split name is mixed in, so train and val splits made with the same
            seed differ.
        image_size: each side is drawn from this ``(min, max)`` range (a mix of landscape and portrait
            images), or an int for square images of that side.
        min_objects, max_objects: objects per image (fewer when no valid placement is found).
        min_visibility: the least visible fraction of an annotated object.
        object_size: ``(min_pixels, max_fraction)``: objects are at least ``min_pixels`` across and at most
            ``max_fraction`` of the image's shorter side, sizes log-uniform in between.
        noise: standard deviation of the pixel noise over the whole image.
        split_name: names the json and the image folder.
        image_format: ``png`` (lossless) or ``jpg`` (quality 95).
        classes: the shape kinds to draw (a subset of :data:`SHAPE_CLASSES`, in label order); fewer, more
            distinct classes make an easier task.
    """
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer, got {num_images!r}")
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects} and {max_objects}")
    if not 0 < min_visibility <= 1:
        raise ValueError(f"min_visibility must be in (0, 1], got {min_visibility}")
    if not (4 <= object_size[0] and 0 < object_size[1] <= 1):
        raise ValueError(f"object_size must be (min_pixels >= 4, max_fraction in (0, 1]), got {object_size}")
    extension = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg"}.get(image_format.lower())
    if extension is None:
        raise ValueError(f"image_format must be png or jpg, got {image_format!r}")
    if not split_name or "/" in split_name or "\\" in split_name:
        raise ValueError(f"split_name must be a plain folder name, got {split_name!r}")
    low, high = _side_range(image_size)
    classes = tuple(classes)
    unknown = [kind for kind in classes if kind not in SHAPE_CLASSES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct kinds of {', '.join(SHAPE_CLASSES)}, got {list(classes)}")

    output_dir = Path(output_dir)
    image_dir = output_dir / split_name
    annotation_file = output_dir / "annotations" / f"instances_{split_name}.json"
    image_dir.mkdir(parents=True, exist_ok=True)
    annotation_file.parent.mkdir(parents=True, exist_ok=True)
    write_options = [cv2.IMWRITE_JPEG_QUALITY, 95] if extension == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]

    split_key = zlib.crc32(split_name.encode("utf-8"))
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.default_rng([seed, split_key, index])
        height, width = int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1))
        background, shapes = random_scene(
            rng,
            height,
            width,
            min_objects=min_objects,
            max_objects=max_objects,
            min_visibility=min_visibility,
            object_size=object_size,
            classes=classes,
        )
        image, visible = render_scene(background, shapes, rng, noise=noise)
        image_id = index + 1
        file_name = f"{image_id:012d}{extension}"
        if not cv2.imwrite(str(image_dir / file_name), image, write_options):
            raise OSError(f"cannot write {image_dir / file_name}")
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for shape, mask in zip(shapes, visible):
            record = _annotation(mask, classes.index(shape.kind) + 1, image_id, len(annotations) + 1)
            if record is not None:
                annotations.append(record)

    data = {
        "info": {
            "description": "segmentoly synthetic shapes",
            "seed": seed,
            "split": split_name,
            "image_size": [low, high],
            "objects": [min_objects, max_objects],
            "min_visibility": min_visibility,
            "object_size": list(object_size),
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": label, "name": name, "supercategory": "shape"} for label, name in enumerate(classes, 1)],
    }
    annotation_file.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    return annotation_file, image_dir


def video_frames(
    num_frames: int,
    *,
    seed: int = 0,
    height: int = 240,
    width: int = 320,
    num_objects: int = 4,
    noise: float = 2.0,
    object_size: tuple[float, float] = (12.0, 0.5),
    classes: Sequence[str] = SHAPE_CLASSES,
) -> Iterator[tuple[np.ndarray, list[Shape], np.ndarray]]:
    """Frames of shapes drifting and turning over a fixed background, bouncing off the borders.

    Yields ``(image, shapes, visible_masks)`` per frame, as :func:`render_scene` gives them; a shape keeps its
    place in the list, so its index identifies it across frames (for testing trackers).
    """
    rng = np.random.default_rng([seed, 0x51DE0])
    background, shapes = random_scene(
        rng, height, width, min_objects=num_objects, max_objects=num_objects, object_size=object_size, classes=classes
    )
    velocities = rng.uniform(-3.0, 3.0, (len(shapes), 3))  # dx, dy in pixels, turn in degrees per frame
    for _ in range(num_frames):
        image, visible = render_scene(background, shapes, rng, noise=noise)
        yield image, list(shapes), visible
        for i, shape in enumerate(shapes):
            x, y = shape.center
            if not 0 <= x + velocities[i, 0] < width:
                velocities[i, 0] *= -1
            if not 0 <= y + velocities[i, 1] < height:
                velocities[i, 1] *= -1
            shapes[i] = shape.moved(*velocities[i])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segmentoly.data.synthetic",
        description="Write a synthetic COCO-format instance segmentation data set of coloured shapes.",
    )
    parser.add_argument("output_dir", type=Path, help="folder to write annotations/ and the image folder into")
    parser.add_argument("--num-images", type=int, default=100, help="number of images (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--split-name", default="train", help="names the json and the image folder (default train)")
    parser.add_argument(
        "--image-size", type=int, nargs=2, default=(192, 320), metavar=("MIN", "MAX"), help="side range in pixels"
    )
    parser.add_argument("--min-objects", type=int, default=1, help="fewest objects per image (default 1)")
    parser.add_argument("--max-objects", type=int, default=8, help="most objects per image (default 8)")
    parser.add_argument(
        "--object-size",
        type=float,
        nargs=2,
        default=(12.0, 0.5),
        metavar=("MIN_PIXELS", "MAX_FRACTION"),
        help="objects span at least MIN_PIXELS and at most MAX_FRACTION of the shorter side (default 12 0.5)",
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        default=list(SHAPE_CLASSES),
        choices=SHAPE_CLASSES,
        metavar="KIND",
        help=f"shape kinds to draw, in label order (default all: {' '.join(SHAPE_CLASSES)})",
    )
    parser.add_argument("--format", choices=("png", "jpg"), default="png", help="image format (default png)")
    args = parser.parse_args(argv)
    try:
        annotation_file, image_dir = generate(
            args.output_dir,
            args.num_images,
            seed=args.seed,
            image_size=tuple(args.image_size),
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            object_size=tuple(args.object_size),
            split_name=args.split_name,
            image_format=args.format,
            classes=args.classes,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"annotations: {annotation_file}\nimages:      {image_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
