"""CocoDataset on coco_tiny and on small hand-made files with every kind of bad input."""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from segmentoly.data import (
    COCO_CLASS_NAMES,
    CocoDataset,
    DatasetError,
    SampleKey,
    dataset_paths,
    decode_segmentation,
)
from segmentoly.data.coco import BOX_OUTSIDE_IMAGE, EMPTY_SEGMENTATION, SHORT_POLYGON, ZERO_SIZE_BOX

from helpers import coco_tiny_root

# pycocotools' Cython arrays predate numpy 2's copy keyword; the library hides this, the direct calls here do not.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")


@pytest.fixture(scope="module")
def tiny_val():
    root = coco_tiny_root()
    annotation_file = root / "annotations" / "instances_val2017.json"
    return CocoDataset(annotation_file, root / "val2017"), json.loads(annotation_file.read_text())


# ---- coco_tiny


def test_coco_tiny_counts_and_category_round_trip(tiny_val):
    dataset, data = tiny_val
    assert len(dataset) == len(data["images"]) == 80
    crowd = sum(a["iscrowd"] for a in data["annotations"])
    assert dataset.num_crowd == crowd > 0
    assert dataset.num_instances + dataset.num_crowd + sum(dataset.skipped.values()) == len(data["annotations"])

    category_ids = sorted(c["id"] for c in data["categories"])
    assert dataset.num_classes == len(category_ids) == 80
    assert dataset.class_names[0] == "background"
    names = {c["id"]: c["name"] for c in data["categories"]}
    for label in range(1, dataset.num_classes + 1):
        category_id = dataset.label_to_category_id[label]
        assert dataset.category_id_to_label[category_id] == label
        assert dataset.class_names[label] == names[category_id]
    # Labels follow ascending category ids, so COCO's gaps (12, 26, ...) close up: label 12 is category 13.
    assert dataset.label_to_category_id[11:13] == [11, 13]
    # The built-in COCO names agree with the real file, so a demo needs no data set on disk.
    assert COCO_CLASS_NAMES == dataset.class_names


def test_coco_tiny_sample_matches_json(tiny_val):
    dataset, data = tiny_val
    crowd_images = sorted({a["image_id"] for a in data["annotations"] if a["iscrowd"]})
    index = dataset.image_ids().index(crowd_images[0])
    sample = dataset[index]
    info = dataset.image_info(index)
    own = [a for a in data["annotations"] if a["image_id"] == info.id]

    assert sample.image_id == info.id
    assert sample.original_size == (info.height, info.width) == sample.size
    assert sample.scale == (1.0, 1.0)
    assert sample.image.dtype == torch.float32 and sample.image.shape == (3, info.height, info.width)
    image = cv2.imread(str(dataset.image_dir / info.file_name), cv2.IMREAD_COLOR)
    assert torch.equal(sample.image, torch.from_numpy(image).permute(2, 0, 1).float())

    target = sample.target
    instances = [a for a in own if not a["iscrowd"]]
    crowds = [a for a in own if a["iscrowd"]]
    assert len(target) == len(instances)
    assert target.masks.shape == (len(instances), info.height, info.width) and target.masks.dtype == torch.uint8
    expected_labels = [dataset.category_id_to_label[a["category_id"]] for a in instances]
    assert target.labels.tolist() == expected_labels

    def xyxy(bbox):
        x, y, w, h = bbox
        box = [x, y, x + max(w, 1) - 1, y + max(h, 1) - 1]
        return np.clip(box, 0, [info.width - 1, info.height - 1] * 2)

    np.testing.assert_allclose(target.boxes.numpy(), np.array([xyxy(a["bbox"]) for a in instances]), atol=1e-4)
    np.testing.assert_allclose(target.crowd_boxes.numpy(), np.array([xyxy(a["bbox"]) for a in crowds]), atol=1e-4)
    for mask, annotation in zip(target.masks.numpy(), instances):
        # pycocotools' own rasterisation of the polygons, and the area COCO states for them.
        rle = mask_util.merge(mask_util.frPyObjects(annotation["segmentation"], info.height, info.width))
        np.testing.assert_array_equal(mask, mask_util.decode(rle))
        assert abs(int(mask.sum()) - annotation["area"]) <= 0.05 * annotation["area"] + 10


def test_coco_tiny_crowd_rle_decodes(tiny_val):
    dataset, data = tiny_val
    images = {i["id"]: i for i in data["images"]}
    crowd = next(a for a in data["annotations"] if a["iscrowd"])
    assert isinstance(crowd["segmentation"]["counts"], list)  # uncompressed RLE
    image = images[crowd["image_id"]]
    mask = decode_segmentation(crowd["segmentation"], image["height"], image["width"])
    assert mask.shape == (image["height"], image["width"])
    rle = mask_util.frPyObjects(crowd["segmentation"], image["height"], image["width"])
    assert mask.sum() == mask_util.area(rle) > 0
    # COCO's crowd bboxes and areas were computed elsewhere and are a little off the RLE; the box is within a pixel.
    ys, xs = np.nonzero(mask)
    x, y, w, h = crowd["bbox"]
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max(), ys.max()], [x, y, x + w, y + h], atol=1)


def test_image_info_and_aspect_ratios_need_no_pixels(tiny_val, monkeypatch):
    dataset, data = tiny_val
    monkeypatch.setattr(cv2, "imread", lambda *args: pytest.fail("read pixels"))
    by_id = {i["id"]: i for i in data["images"]}
    ratios = dataset.aspect_ratios()
    assert ratios.shape == (80,)
    for index, image_id in enumerate(dataset.image_ids()):
        info = dataset.image_info(index)
        assert (info.id, info.file_name, info.height, info.width) == (
            image_id,
            by_id[image_id]["file_name"],
            by_id[image_id]["height"],
            by_id[image_id]["width"],
        )
        assert ratios[index] == pytest.approx(info.width / info.height)
    assert dataset.image_ids() == sorted(by_id)


def test_dataset_paths_names_and_json():
    assert dataset_paths("coco_2017_val") == (
        Path("data/coco/annotations/instances_val2017.json"),
        Path("data/coco/images/val2017"),
    )
    assert dataset_paths("coco_2014_minival", data_root="/d") == (
        Path("/d/annotations/instances_minival2014.json"),
        Path("/d/images/val2014"),
    )
    assert dataset_paths("coco_2014_valminusminival")[1] == Path("data/coco/images/val2014")
    assert dataset_paths("my/set.json", "my/images") == (Path("my/set.json"), Path("my/images"))
    with pytest.raises(ValueError, match="give the folder with its images"):
        dataset_paths("my/set.json")
    with pytest.raises(ValueError, match="unknown dataset 'coco_2019_val'.*coco_2017_train.*coco_2014_valminusminival"):
        dataset_paths("coco_2019_val")


# ---- hand-made files


def write_dataset(tmp_path: Path, annotations, images=None, categories=None, sizes=None) -> Path:
    """A json in ``tmp_path`` with images written as PNGs (a random pattern, sizes by image id)."""
    sizes = sizes or {1: (40, 60), 2: (50, 30)}
    if images is None:
        images = [{"id": i, "file_name": f"{i}.png", "height": h, "width": w} for i, (h, w) in sizes.items()]
    rng = np.random.default_rng(0)
    for image in images:
        path = tmp_path / image["file_name"]
        if not path.exists():
            cv2.imwrite(str(path), rng.integers(0, 255, (image["height"], image["width"], 3), dtype=np.uint8))
    categories = categories or [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]
    annotation_file = tmp_path / "instances.json"
    annotation_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return annotation_file


def square(annotation_id, image_id=1, category_id=7, x=5, y=6, w=10, h=8, **extra):
    polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
    record = {"id": annotation_id, "image_id": image_id, "category_id": category_id, "bbox": [x, y, w, h]}
    return record | {"segmentation": [polygon], "iscrowd": 0} | extra


def test_labels_boxes_masks_of_a_hand_made_file(tmp_path):
    rle = mask_util.encode(np.asfortranarray(np.pad(np.ones((4, 6), np.uint8), ((10, 36), (20, 34)))))
    compressed = {"size": [50, 60], "counts": rle["counts"].decode("ascii")}
    file = write_dataset(
        tmp_path,
        [
            square(1),
            square(2, category_id=3, x=0.5, y=1.5, w=0.5, h=3),  # width under a pixel: x1 = x0
            square(3, x=50, y=30, w=20, h=20),  # over the border: clipped
            {"id": 4, "image_id": 1, "category_id": 3, "bbox": [20, 10, 6, 4], "segmentation": compressed},
        ],
        sizes={1: (50, 60)},
    )
    dataset = CocoDataset(file, tmp_path)
    assert dataset.class_names == ("background", "dog", "cat")  # categories by id: 3 then 7
    target = dataset[0].target
    assert target.labels.tolist() == [2, 1, 2, 1]
    expected = [[5, 6, 14, 13], [0.5, 1.5, 0.5, 3.5], [50, 30, 59, 49], [20, 10, 25, 13]]
    np.testing.assert_allclose(target.boxes.numpy(), expected)
    masks = target.masks.numpy()
    assert masks[0].sum() == 80 and masks[0][6:14, 5:15].all()  # the polygon covers its 10 x 8 pixels
    assert masks[3].sum() == 24 and masks[3][10:14, 20:26].all()  # compressed RLE
    assert not dataset.skipped


def test_degenerate_annotations_are_skipped_and_counted(tmp_path, caplog):
    file = write_dataset(
        tmp_path,
        [
            square(1),
            square(2, w=0),
            square(3, h=-4),
            square(4, segmentation=[[1, 2, 3, 4]]),  # two points
            square(5, segmentation=[[1, 2, 3, 4], [5, 6, 15, 6, 15, 14]]),  # one good part is kept
            square(6, segmentation=[]),
            square(7, x=70, y=10),  # right of a 60-wide image
            square(8, image_id=2, w=0, iscrowd=1),
            square(9, image_id=2, iscrowd=1, segmentation={"size": [50, 30], "counts": [3, 4, 1493]}),
        ],
    )
    with caplog.at_level(logging.INFO, logger="segmentoly.data.coco"):
        dataset = CocoDataset(file, tmp_path)
    assert dict(dataset.skipped) == {ZERO_SIZE_BOX: 3, SHORT_POLYGON: 1, EMPTY_SEGMENTATION: 1, BOX_OUTSIDE_IMAGE: 1}
    assert len(dataset[0].target) == 2
    assert dataset[0].target.masks[1].sum() > 0
    assert len(dataset[1].target) == 0 and dataset[1].target.crowd_boxes.shape == (1, 4)
    summary = [r.getMessage() for r in caplog.records if r.name == "segmentoly.data.coco"]
    assert len(summary) == 1
    assert str(file) in summary[0] and "3 box of zero or negative size" in summary[0]

    training = CocoDataset(file, tmp_path, training=True)  # image 2 has only a crowd region
    assert len(training) == 1 and training.image_info(0).id == 1 and training.skipped_images == 1


def test_an_image_without_annotations_is_kept_for_evaluation(tmp_path):
    file = write_dataset(tmp_path, [square(1)])
    dataset = CocoDataset(file, tmp_path)
    assert len(dataset) == 2
    empty = dataset[1]
    assert empty.target.boxes.shape == (0, 4) and empty.target.masks.shape == (0, 50, 30)
    assert len(CocoDataset(file, tmp_path, training=True)) == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "annotation file not found"),
        ("{not json", "not a valid JSON file"),
        ("[1, 2]", "not a COCO instances file: the top level is a list"),
        ('{"images": [], "categories": []}', "not a COCO instances file: no 'annotations'"),
        ('{"images": {}, "annotations": [], "categories": []}', "'images' is a dict, not a list"),
        ('{"images": [], "annotations": [], "categories": []}', "no categories"),
        ('{"images": [{"id": 1}], "annotations": [], "categories": [{"id": 1, "name": "a"}]}', "image id 1 has no"),
    ],
)
def test_not_a_coco_file(tmp_path, content, message):
    file = tmp_path / "bad.json"
    if content is not None:
        file.write_text(content)
    with pytest.raises(DatasetError, match=message) as error:
        CocoDataset(file, tmp_path)
    assert str(file) in str(error.value)


def test_unknown_category_and_unknown_image_name_the_annotation(tmp_path):
    file = write_dataset(tmp_path, [square(1), square(42, category_id=99)])
    with pytest.raises(DatasetError, match=r"annotation 42 \(image id 1\) has category_id 99, which is not in"):
        CocoDataset(file, tmp_path)
    file = write_dataset(tmp_path, [square(43, image_id=5)])
    with pytest.raises(DatasetError, match="annotation 43 refers to image id 5, which is not in images") as error:
        CocoDataset(file, tmp_path)
    assert str(file) in str(error.value)


@pytest.mark.parametrize(
    "annotation, message",
    [
        (square(8, bbox=[1, 2, 3]), "annotation 8 .* needs a bbox of 4 numbers"),
        (square(8, segmentation=[[1, 2, 3, 4, 5, 6, 7]]), "annotation 8 .* odd number of coordinates"),
        (square(8, segmentation={"size": [10, 10], "counts": [100]}), r"annotation 8 .* RLE size \[10, 10\] differs"),
        (square(8, iscrowd=2), "annotation 8 .* iscrowd 2"),
    ],
)
def test_malformed_annotations(tmp_path, annotation, message):
    with pytest.raises(DatasetError, match=message):
        CocoDataset(write_dataset(tmp_path, [annotation]), tmp_path)


def test_missing_and_corrupt_images_name_file_and_id(tmp_path):
    images = [
        {"id": 11, "file_name": "gone.jpg", "height": 40, "width": 60},
        {"id": 12, "file_name": "cut.jpg", "height": 40, "width": 60},
        {"id": 13, "file_name": "cut.png", "height": 40, "width": 60},
        {"id": 14, "file_name": "text.png", "height": 40, "width": 60},
        {"id": 15, "file_name": "small.png", "height": 40, "width": 60},
    ]
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    png = cv2.imencode(".png", image)[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # libjpeg would decode this with a warning
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    (tmp_path / "text.png").write_text("not an image")
    cv2.imwrite(str(tmp_path / "small.png"), image[:30])
    dataset = CocoDataset(write_dataset(tmp_path, [], images=images), tmp_path)
    (tmp_path / "gone.jpg").unlink()
    expected = [
        ("gone.jpg", 11, "image file not found"),
        ("cut.jpg", 12, "truncated or corrupt JPEG"),
        ("cut.png", 13, "corrupt or unsupported image file"),
        ("text.png", 14, "corrupt or unsupported image file"),
        ("small.png", 15, "the image is 30x60 .* but the json says 40x60"),
    ]
    for index, (name, image_id, problem) in enumerate(expected):
        with pytest.raises(DatasetError, match=problem) as error:
            dataset[index]
        assert str(tmp_path / name) in str(error.value) and f"image id {image_id}" in str(error.value)


def test_grayscale_image_reads_as_three_channels_and_full_jpeg_passes(tmp_path):
    gray = np.arange(40 * 60, dtype=np.uint32).reshape(40, 60).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "1.png"), gray)
    color = np.random.default_rng(1).integers(0, 255, (50, 30, 3), dtype=np.uint8)
    # A complete JPEG with bytes after its end marker is not "truncated".
    (tmp_path / "2.jpg").write_bytes(cv2.imencode(".jpg", color)[1].tobytes() + b"\0\0trailing")
    images = [
        {"id": 1, "file_name": "1.png", "height": 40, "width": 60},
        {"id": 2, "file_name": "2.jpg", "height": 50, "width": 30},
    ]
    dataset = CocoDataset(write_dataset(tmp_path, [], images=images), tmp_path)
    sample = dataset[0]
    assert sample.image.shape == (3, 40, 60)
    for channel in range(3):
        assert torch.equal(sample.image[channel], torch.from_numpy(gray).float())
    assert dataset[1].image.shape == (3, 50, 30)


def test_indexing(tmp_path):
    dataset = CocoDataset(write_dataset(tmp_path, [square(1)]), tmp_path)
    assert dataset[np.int64(1)].image_id == 2
    assert dataset[SampleKey(0, 123)].image_id == 1
    with pytest.raises(IndexError):
        dataset[2]
    assert [s.image_id for s in dataset] == [1, 2]
