"""tools/convert_to_onnx.py and `segmentoly export`, run as a user runs them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
import torch

from segmentoly.rcnn.model_zoo import ARCHITECTURES
from segmentoly.weights.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = ARCHITECTURES["light_fpn"](4)
    path = tmp_path_factory.mktemp("ckpt") / "light.pth"
    return save_checkpoint(
        path, model, class_names=["background", "a", "b", "c"], preprocessing={"resize": ["fit_window", 256, 256]}
    )


def test_convert_to_onnx_writes_onnx_and_fp32_ir_and_checks_them(checkpoint, tmp_path):
    output = tmp_path / "out" / "light.onnx"
    result = run(
        str(ROOT / "tools" / "convert_to_onnx.py"),
        "--model",
        "segmentoly.rcnn.model_zoo.light.LightFPNMaskRCNN",
        "--ckpt",
        str(checkpoint),
        "--output_file",
        str(output),
        "--check",
        "--show_flops",
    )
    assert result.returncode == 0, result.stderr
    assert "GFLOPs at 800x1344:" in result.stdout
    worst = float(result.stdout.split("differ by at most ")[1].split()[0])
    assert worst < 1e-3
    graph = onnx.load(str(output)).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param
    model = ov.Core().read_model(str(output.with_suffix(".xml")))
    weights = [op for op in model.get_ops() if op.get_type_name() == "Constant" and op.get_output_size() == 1]
    assert any(
        w.get_output_element_type(0) == ov.Type.f32 and np.prod(list(w.get_output_shape(0))) > 1000 for w in weights
    )
    assert not any(w.get_output_element_type(0) == ov.Type.f16 for w in weights)


def test_fixed_size_and_fp16(checkpoint, tmp_path):
    output = tmp_path / "fixed.onnx"
    result = run(
        "-m",
        "segmentoly.cli",
        "export",
        "--model",
        "light_fpn",
        "--ckpt",
        str(checkpoint),
        "--input_size",
        "224",
        "288",
        "--output_file",
        str(output),
        "--fp16",
    )
    assert result.returncode == 0, result.stderr
    model = ov.Core().read_model(str(output.with_suffix(".xml")))
    assert list(model.inputs[0].get_shape()) == [1, 3, 224, 288]
    assert any(
        op.get_output_element_type(0) == ov.Type.f16 for op in model.get_ops() if op.get_type_name() == "Constant"
    )
    compiled = ov.Core().compile_model(model, "CPU")
    outputs = compiled(np.zeros((1, 3, 224, 288), np.float32))
    assert outputs["masks"].shape == (100, 28, 28)


def test_bad_arguments_get_one_clear_line(checkpoint, tmp_path):
    cases = [
        (["--model", "resnet51_fpn", "-nc", "3"], "unknown architecture"),
        (["--model", "light_fpn", "--ckpt", str(tmp_path / "none.pth")], "checkpoint file not found"),
        (["--model", "resnet50_fpn", "--ckpt", str(checkpoint)], "holds weights of architecture 'light_fpn'"),
        (["--model", "light_fpn", "--ckpt", str(checkpoint), "-nc", "81"], "the model has 4 classes"),
        (["--model", "light_fpn", "-nc", "3", "--input_size", "100", "100"], "not a multiple of the model's size"),
        (["--model", "light_fpn"], "give --dataset or -nc"),
    ]
    for arguments, message in cases:
        result = run("-m", "segmentoly.cli", "export", *arguments, "--output_file", str(tmp_path / "x.onnx"))
        assert result.returncode == 2, (arguments, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
