"""Named COCO splits of the original tool, and the 80 COCO categories.

A split name stands for an annotation file and an image folder under a data root laid out as the README asks::

    data/coco/annotations/instances_train2017.json
    data/coco/images/train2017/

Any other COCO-format data set is given as a path to its json and its image folder.
"""

from __future__ import annotations

from pathlib import Path

# name -> (annotation file under <root>/annotations, image folder under <root>/images)
DATASET_SPLITS: dict[str, tuple[str, str]] = {
    "coco_2017_train": ("instances_train2017.json", "train2017"),
    "coco_2017_val": ("instances_val2017.json", "val2017"),
    "coco_2014_train": ("instances_train2014.json", "train2014"),
    "coco_2014_val": ("instances_val2014.json", "val2014"),
    # Detectron's minival / valminusminival split val2014, so their images live in the val2014 folder.
    "coco_2014_minival": ("instances_minival2014.json", "val2014"),
    "coco_2014_valminusminival": ("instances_valminusminival2014.json", "val2014"),
}

# (category id, name) of the 80 COCO categories; ids are not contiguous (12, 26, 29, ... are unused).
COCO_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"),
    (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"),
    (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"),
    (28, "umbrella"), (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"),
    (36, "snowboard"), (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"),
    (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"), (54, "sandwich"),
    (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"),
    (62, "chair"), (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"),
    (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"), (77, "cell phone"),
    (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"), (82, "refrigerator"), (84, "book"),
    (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
)  # fmt: skip

# Class names by contiguous label, as a model trained on any COCO split sees them (label 0 is the background).
# This lets a demo name its detections with ``--dataset coco_2017_val`` without the data set on disk.
COCO_CLASS_NAMES: tuple[str, ...] = ("background", *(name for _, name in COCO_CATEGORIES))


def dataset_paths(
    name_or_json: str | Path, image_dir: str | Path | None = None, data_root: str | Path = "data/coco"
) -> tuple[Path, Path]:
    """The annotation file and image folder of a named split or of a json path.

    Args:
        name_or_json: a split name (see :data:`DATASET_SPLITS`) or the path to a COCO instances json.
        image_dir: the image folder; required with a json path, and overrides the split's folder with a name.
        data_root: where the named splits live.

    Raises:
        ValueError: for a name that is neither a known split nor a ``.json`` path, or a json path without
            ``image_dir``. Whether the files exist is checked when the dataset loads them.
    """
    text = str(name_or_json)
    if text in DATASET_SPLITS:
        annotation_name, image_folder = DATASET_SPLITS[text]
        root = Path(data_root)
        return root / "annotations" / annotation_name, Path(image_dir) if image_dir else root / "images" / image_folder
    path = Path(text)
    if path.suffix.lower() != ".json" and not path.is_file():
        known = ", ".join(DATASET_SPLITS)
        raise ValueError(f"unknown dataset {text!r}: expected one of {known}, or the path to a COCO json file")
    if image_dir is None:
        raise ValueError(f"dataset {text!r} is an annotation file: give the folder with its images as well")
    return path, Path(image_dir)
