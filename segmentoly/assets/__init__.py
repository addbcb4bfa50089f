"""Files that ship with the package: the bundled demo model, and the sample images made for it.

The bundled model is the small architecture trained with ``configs/shapes_light_fpn.yaml`` on synthetic
shapes (``make bundled-model`` reproduces it). Its sample images are drawn by the same generator, at twice the
training size, deterministically, so they need not ship.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

BUNDLED_CHECKPOINT = Path(__file__).with_name("shapes_light_fpn.pth")

#: How the bundled model's data is drawn: the generator options of `make bundled-model` (keep them equal).
SHAPES = dict(
    classes=("circle", "rectangle", "triangle"), image_size=(112, 160), max_objects=6, object_size=(16.0, 0.6)
)
#: The splits of `make bundled-model`; the validation split is the model's held-out test set.
TRAIN_SPLIT = dict(split_name="train", num_images=2000, seed=1)
VAL_SPLIT = dict(split_name="val", num_images=200, seed=2)
SAMPLE_SEED = 2024


def sample_options() -> dict:
    """Generator options of the samples: the training data's, at twice the size (objects too). The model's
    resize (fit_max 112 160) brings them back to its scale, and the annotated output is drawn at full size."""
    low, high = SHAPES["image_size"]
    smallest, largest = SHAPES["object_size"]
    return dict(SHAPES, image_size=(2 * low, 2 * high), object_size=(2 * smallest, largest))


def write_samples(folder: str | Path, count: int = 6) -> list[Path]:
    """Write ``count`` sample images for the bundled model into ``folder``; the same files every time."""
    from segmentoly.data.synthetic import generate

    folder = Path(folder)
    _, images = generate(
        folder / ".generated", count, seed=SAMPLE_SEED, split_name="samples", image_format="jpg", **sample_options()
    )
    written = []
    for index, path in enumerate(sorted(images.iterdir()), 1):
        target = folder / f"shapes_{index:02d}.jpg"
        shutil.copyfile(path, target)
        written.append(target)
    shutil.rmtree(folder / ".generated")
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "samples":
        print("usage: python -m segmentoly.assets samples FOLDER", file=sys.stderr)
        return 2
    paths = write_samples(args[1])
    print(f"wrote {len(paths)} sample images to {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
