"""INT8 post-training quantisation: accuracy against FP32 on the bundled model, what stays in FP32, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest

from segmentoly.assets import BUNDLED_CHECKPOINT, SHAPES, TRAIN_SPLIT, VAL_SPLIT
from segmentoly.data.synthetic import generate
from segmentoly.export.quantize import precise_layers
from segmentoly.inference.predictor import exported_ir
from segmentoly.weights.checkpoint import build_model, read_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def run(tool, *args):
    return subprocess.run([sys.executable, *tool, *map(str, args)], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ))


@pytest.fixture(scope="module")
def bundled_ir(tmp_path_factory):
    state = read_checkpoint(BUNDLED_CHECKPOINT)
    model = build_model(state)
    return exported_ir(BUNDLED_CHECKPOINT, model, state["class_names"], state["preprocessing"],
                       cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    calibration = generate(folder, **dict(TRAIN_SPLIT, num_images=300), **SHAPES)
    held_out = generate(folder, **VAL_SPLIT, **SHAPES)
    return calibration, held_out


def test_precise_layers_are_the_box_regression_and_the_mask_logits(bundled_ir):
    model = ov.Core().read_model(str(bundled_ir))
    names = precise_layers(model)
    ops = {op.get_friendly_name(): op for op in model.get_ops()}
    kinds = [ops[n].get_type_name() for n in names]
    assert kinds == ["MatMul", "Convolution"]
    num_classes = 1 + len(SHAPES["classes"])
    regression, logits = (ops[n] for n in names)
    assert regression.get_output_partial_shape(0)[1].get_length() == 4 * num_classes
    assert logits.get_output_partial_shape(0)[1].get_length() == num_classes


def test_int8_ap_within_one_point_of_fp32(bundled_ir, splits, tmp_path):
    (calibration_json, calibration_images), (val_json, val_images) = splits
    int8 = tmp_path / "int8" / "shapes_int8.xml"
    result = run(["-m", "segmentoly.cli", "quantize"], "--model", bundled_ir, "--dataset", calibration_json,
                 "--images", calibration_images, "--output", int8)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int8.is_file() and int8.with_suffix(".bin").is_file()
    quantized = ov.Core().read_model(str(int8))
    assert sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops()) > 20
    metrics = {}
    for name, xml in (("fp32", bundled_ir), ("int8", int8)):
        out = tmp_path / name
        result = run([str(ROOT / "tools" / "test.py")], "--dataset", val_json, "--images", val_images, "--nw", 1,
                     "--output_dir", out, "--no_progress", "openvino", "--model", xml)
        assert result.returncode == 0, result.stderr[-2000:]
        metrics[name] = json.loads((out / "metrics.json").read_text())
    print({n: (m["boxes"]["AP"], m["masks"]["AP"]) for n, m in metrics.items()})
    for kind in ("boxes", "masks"):
        assert abs(metrics["int8"][kind]["AP"] - metrics["fp32"][kind]["AP"]) <= 0.01, kind


def test_export_tool_writes_an_int8_ir(splits, tmp_path):
    (calibration_json, calibration_images), _ = splits
    output = tmp_path / "shapes.onnx"
    result = run([str(ROOT / "tools" / "convert_to_onnx.py")], "--model", "light_fpn", "--ckpt", BUNDLED_CHECKPOINT,
                 "--output_file", output, "--int8", calibration_json, "--int8_images", calibration_images,
                 "--int8_subset_size", 20)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "shapes_int8.xml").is_file() and (tmp_path / "shapes.xml").is_file()


def test_bad_calibration_sets_are_reported(bundled_ir, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": i, "name": n} for i, n in enumerate(SHAPES["classes"], 1)]}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "height": 10, "width": 10}],
                                 "annotations": [], "categories": [{"id": 1, "name": "cat"}]}))
    cases = [
        ([empty, "--images", tmp_path], "the calibration set has no images"),
        ([other, "--images", tmp_path], "has 1 classes, but"),
        ([tmp_path / "none.json", "--images", tmp_path], "none.json"),
    ]
    for dataset, message in cases:
        result = run(["-m", "segmentoly.cli", "quantize"], "--model", bundled_ir, "--dataset", *dataset,
                     "--output", tmp_path / "q.xml")
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
