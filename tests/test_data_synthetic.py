"""The synthetic data set: deterministic files, valid COCO, annotations that agree with the pixels."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from segmentoly.data import CocoDataset
from segmentoly.data.synthetic import (
    SHAPE_CLASSES,
    Shape,
    generate,
    mask_to_polygons,
    render_scene,
    video_frames,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

NUM_IMAGES = 16


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    annotation_file, image_dir = generate(root, NUM_IMAGES, seed=3)
    return root, annotation_file, image_dir, json.loads(annotation_file.read_text())


def test_same_seed_same_bytes(synthetic, tmp_path):
    root, annotation_file, image_dir, _ = synthetic
    again_file, again_dir = generate(tmp_path / "again", NUM_IMAGES, seed=3)
    assert again_file.relative_to(tmp_path / "again") == annotation_file.relative_to(root)
    assert again_file.read_bytes() == annotation_file.read_bytes()
    names = sorted(p.name for p in image_dir.iterdir())
    assert names == sorted(p.name for p in again_dir.iterdir()) and len(names) == NUM_IMAGES
    for name in names:
        assert (image_dir / name).read_bytes() == (again_dir / name).read_bytes()
    # Image i does not depend on how many images are made; another seed or split makes other images.
    prefix_file, prefix_dir = generate(tmp_path / "prefix", 3, seed=3)
    assert (prefix_dir / names[2]).read_bytes() == (image_dir / names[2]).read_bytes()
    _, other_dir = generate(tmp_path / "other", 1, seed=4)
    _, val_dir = generate(tmp_path / "other", 1, seed=3, split_name="val")
    assert (other_dir / names[0]).read_bytes() != (image_dir / names[0]).read_bytes()
    assert (val_dir / names[0]).read_bytes() != (image_dir / names[0]).read_bytes()


def test_pycocotools_loads_it_and_the_classes_are_named(synthetic):
    _, annotation_file, _, data = synthetic
    coco = COCO(str(annotation_file))
    assert len(coco.getImgIds()) == NUM_IMAGES
    assert [coco.cats[i]["name"] for i in sorted(coco.cats)] == list(SHAPE_CLASSES)
    counts = [len(coco.getAnnIds(imgIds=[i])) for i in coco.getImgIds()]
    assert min(counts) >= 1 and max(counts) <= 8 and sum(counts) == len(data["annotations"])
    assert len({a["category_id"] for a in data["annotations"]}) == len(SHAPE_CLASSES)
    sizes = [(image["height"], image["width"]) for image in data["images"]]
    assert all(192 <= side <= 320 for size in sizes for side in size)
    assert any(h > w for h, w in sizes) and any(w > h for h, w in sizes)


def test_annotations_agree_with_themselves_and_with_the_pixels(synthetic):
    _, annotation_file, image_dir, data = synthetic
    coco = COCO(str(annotation_file))
    areas = []
    for annotation in data["annotations"]:
        assert annotation["iscrowd"] == 0
        assert all(len(polygon) >= 6 and len(polygon) % 2 == 0 for polygon in annotation["segmentation"])
        mask = coco.annToMask(annotation)
        x, y, w, h = annotation["bbox"]
        ys, xs = np.nonzero(mask)
        # The mask lies inside its bbox, and touches all four sides (w and h count pixels).
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x, y, x + w - 1, y + h - 1)
        assert mask.sum() == pytest.approx(annotation["area"], rel=0.01)
        areas.append(annotation["area"])
    assert min(areas) < 200 and max(areas) > 3000  # from a dozen pixels across to half the image

    # The masks are the visible regions of distinct shapes: the instances of an image do not overlap.
    for image in data["images"]:
        masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))]
        assert np.sum(masks, axis=0).max() <= 1
        picture = cv2.imread(str(image_dir / image["file_name"]))
        assert picture.shape == (image["height"], image["width"], 3)


def test_polygons_trace_pixel_edges_exactly():
    mask = np.zeros((40, 50), bool)
    mask[5:12, 7:30] = True
    mask[20:35, 3:12] = True
    mask |= Shape("star", (35.0, 25.0), 9.0, angle=10.0).mask(40, 50)
    mask |= Shape("ellipse", (20.0, 30.0), 5.0, angle=30.0, aspect=0.4).mask(40, 50)
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 4
    decoded = mask_util.decode(mask_util.merge(mask_util.frPyObjects(polygons, 40, 50))).astype(bool)
    np.testing.assert_array_equal(decoded, mask)
    # Polygons through the centres of the boundary pixels, as findContours gives them, lose half of each.
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    naive = [contour.reshape(-1).astype(float).tolist() for contour in contours]
    assert mask_util.decode(mask_util.merge(mask_util.frPyObjects(naive, 40, 50))).sum() < 0.85 * mask.sum()
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []


def test_dataset_reads_synthetic_data(synthetic):
    _, annotation_file, image_dir, data = synthetic
    dataset = CocoDataset(annotation_file, image_dir, training=True)
    assert len(dataset) == NUM_IMAGES and not dataset.skipped
    assert dataset.class_names == ("background", *SHAPE_CLASSES)
    sample = dataset[0]
    assert len(sample.target) == sum(a["image_id"] == sample.image_id for a in data["annotations"])


def test_render_scene_occludes_and_moves():
    background = np.full((60, 80, 3), 30, np.uint8)
    below = Shape("rectangle", (30.0, 30.0), 15.0, aspect=1.0, color=(0, 0, 255))
    above = Shape("circle", (40.0, 30.0), 10.0, color=(255, 0, 0))
    image, visible = render_scene(background, [below, above])
    assert visible.shape == (2, 60, 80)
    assert not (visible[0] & visible[1]).any()
    assert (image[visible[1]] == (255, 0, 0)).all() and (image[visible[0]] == (0, 0, 255)).all()
    assert visible[1].sum() == above.mask(60, 80).sum()  # on top: fully visible
    _, moved = render_scene(background, [below, above.moved(dx=5)])
    np.testing.assert_array_equal(moved[1][:, 5:], visible[1][:, :-5])

    frames = list(video_frames(4, seed=1, height=64, width=96, num_objects=3))
    assert len(frames) == 4
    (first, shapes0, _), (second, shapes1, masks1) = frames[0], frames[1]
    assert first.shape == (64, 96, 3) and masks1.shape[0] == len(shapes1) == len(shapes0)
    assert not np.array_equal(first, second)
    assert [s.kind for s in shapes0] == [s.kind for s in shapes1]
    assert all(np.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1]) < 5 for a, b in zip(shapes0, shapes1))


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_images"):
        generate(tmp_path, 0)
    with pytest.raises(ValueError, match="image_format"):
        generate(tmp_path, 1, image_format="gif")
    with pytest.raises(ValueError, match="image_size"):
        generate(tmp_path, 1, image_size=(300, 200))
    with pytest.raises(ValueError, match="unknown shape kind 'hexagon'"):
        Shape("hexagon", (1.0, 1.0), 3.0)


def test_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "segmentoly.data.synthetic", str(tmp_path), "--num-images", "2", "--seed", "5"]
        + ["--split-name", "val", "--format", "jpg", "--image-size", "64", "96"],
        capture_output=True,
        text=True,
        check=True,
    )
    annotation_file = tmp_path / "annotations" / "instances_val.json"
    assert str(annotation_file) in result.stdout
    data = json.loads(annotation_file.read_text())
    assert [image["file_name"] for image in data["images"]] == ["000000000001.jpg", "000000000002.jpg"]
    assert all((tmp_path / "val" / image["file_name"]).is_file() for image in data["images"])
