"""The whole pipeline as a user runs it: tools/download_pretrained_weights.py takes a Detectron R-50-FPN weight
file to a checkpoint, ONNX and OpenVINO IR, and the IR finds what the PyTorch checkpoint finds."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_weights_convert import detectron_mask_rcnn, write_python2_pickle

from segmentoly import Predictor
from segmentoly.data.splits import COCO_CLASS_NAMES
from segmentoly.weights.checkpoint import read_checkpoint

from helpers import assert_same_detections, landscape_and_portrait_images

ROOT = Path(__file__).resolve().parents[1]


def synthetic_weights(seed=0):
    """A Detectron R-50-FPN file's blobs with random values scaled so that the network detects things with
    well separated scores (ties would let the two backends pick different boxes): He initialisation, the stem
    scaled to the 0..255 input, residual branches damped (so 16 blocks do not blow up), background
    disfavoured, and sharp mask logits."""
    rng = np.random.default_rng(seed)
    blobs = detectron_mask_rcnn(50, imagenet_leftovers=True).shapes
    values = {}
    for name, shape in blobs.items():
        if name.endswith("_bn_s"):
            value = np.full(shape, 0.2 if "branch2c" in name else 1.0, np.float32)
        elif name.endswith("_w") and len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        else:
            value = np.zeros(shape, np.float32)
        values[name] = value
    values["res_conv1_bn_s"][:] = 0.02  # inputs are 0..255: bring features to about 1
    values["rpn_cls_logits_fpn2_w"] *= 0.1  # no saturated (tied) objectness
    values["rpn_bbox_pred_fpn2_w"] *= 0.1
    values["cls_score_w"] *= 0.1
    values["cls_score_b"][0] = -2.0
    values["bbox_pred_w"] *= 0.01
    values["mask_fcn_logits_w"] *= 30.0
    return values


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    raw = folder / "published" / "model_final.pkl"
    raw.parent.mkdir()
    write_python2_pickle(raw, {"blobs": synthetic_weights(), "cfg": "MODEL:\n  TYPE: generalized_rcnn\n"})
    zoo = folder / "zoo.yaml"
    entry = {
        "name": "mask_rcnn_resnet50_fpn_2x",
        "kind": "mask_rcnn",
        "format": "detectron_pkl",
        "url": raw.as_uri(),
        "architecture": "resnet50_fpn",
        "resize": ["fit_max", 320, 512],
        "size": raw.stat().st_size,
        # Fewer ROIs than Detectron's 1000 keep the test fast on a CPU; the weights are the same.
        "config": {"rpn": {"post_nms_count_test": 300, "proposals_test": 300}},
    }
    zoo.write_text(yaml.safe_dump({"models": [entry]}))
    output = folder / "data" / "pretrained_models"
    command = [sys.executable, str(ROOT / "tools" / "download_pretrained_weights.py")]
    result = subprocess.run(
        [*command, "--model_zoo", str(zoo), "--output_dir", str(output), "--no_progress"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return output, result.stdout


def test_tool_writes_the_seed_readmes_files(prepared):
    output, stdout = prepared
    place = Path("coco", "detectron", "mask_rcnn_resnet50_fpn_2x")
    for folder, suffix in (("raw", ".pkl"), ("converted", ".pth"), ("onnx", ".onnx"), ("ir", ".xml"), ("ir", ".bin")):
        path = output / folder / place.parent / (place.name + suffix)
        assert path.is_file() and path.stat().st_size > 0, path
    summary = next(line for line in stdout.splitlines() if line.startswith("coco/detectron/"))
    assert summary.split()[-1] == "ok" and "FP32" in summary
    state = read_checkpoint(output / "converted" / place.parent / (place.name + ".pth"))
    assert state["class_names"] == list(COCO_CLASS_NAMES) and state["architecture"] == "resnet50_fpn"
    assert state["source"]["format"] == "detectron_pkl"


def test_ir_detects_what_the_checkpoint_detects(prepared):
    output, _ = prepared
    checkpoint = output / "converted" / "coco" / "detectron" / "mask_rcnn_resnet50_fpn_2x.pth"
    xml = output / "ir" / "coco" / "detectron" / "mask_rcnn_resnet50_fpn_2x.xml"
    pytorch = Predictor.from_checkpoint(checkpoint)
    openvino = Predictor.from_openvino(xml)
    assert openvino.class_names == tuple(COCO_CLASS_NAMES) and openvino.resize.values == (320, 512)
    name, image = landscape_and_portrait_images()[0]
    expected, actual = pytorch(image), openvino(image)
    assert len(expected) >= 20, len(expected)
    assert_same_detections(expected, actual)


def test_seed_tools_run_on_the_ir(prepared, tmp_path):
    # tools/demo.py and tools/test.py with the original tool's OpenVINO flags, on the IR the downloader wrote.
    import json

    import cv2

    from segmentoly.data.splits import COCO_CATEGORIES

    output, _ = prepared
    ir = output / "ir" / "coco" / "detectron" / "mask_rcnn_resnet50_fpn_2x"
    images = tmp_path / "images"
    images.mkdir()
    records = []
    for index, (_, image) in enumerate(landscape_and_portrait_images(), 1):
        cv2.imwrite(str(images / f"{index}.jpg"), image)
        records.append({"id": index, "file_name": f"{index}.jpg", "height": image.shape[0], "width": image.shape[1]})
    annotations = [
        {"id": i, "image_id": r["id"], "category_id": 1, "bbox": [10, 20, 100, 80], "area": 8000, "iscrowd": 0,
         "segmentation": [[10, 20, 110, 20, 110, 100, 10, 100]]}
        for i, r in enumerate(records, 1)
    ]
    categories = [{"id": cid, "name": name} for cid, name in COCO_CATEGORIES]
    dataset = tmp_path / "instances.json"
    dataset.write_text(json.dumps({"images": records, "annotations": annotations, "categories": categories}))
    common = ["--ckpt", str(ir.with_suffix(".bin")), "--fit_window", "320", "512"]
    backend = ["openvino", "--model", str(ir.with_suffix(".xml"))]
    test = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "test.py"), "--dataset", str(dataset), "--images", str(images),
         "--output_dir", str(tmp_path / "metrics"), *common, *backend],
        capture_output=True, text=True, timeout=600,
    )
    assert test.returncode == 0, test.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics" / "metrics.json").read_text())
    assert metrics["images"] == 2 and metrics["detections"] >= 20
    demo = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "demo.py"), "--dataset", "coco_2017_val", "--images", str(images),
         "--output", str(tmp_path / "annotated"), "--show_fps", *common, *backend],
        capture_output=True, text=True, timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["1.jpg", "2.jpg"]
