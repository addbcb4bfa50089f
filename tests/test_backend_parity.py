"""The PyTorch and OpenVINO backends give the same detections, from one dynamic-size IR."""

import numpy as np
import pytest
import torch

from segmentoly import Predictor
from segmentoly.rcnn.model_zoo import ARCHITECTURES
from segmentoly.weights.checkpoint import save_checkpoint

from helpers import assert_same_detections, landscape_and_portrait_images

CLASS_NAMES = ["background", *(f"class_{i}" for i in range(1, 81))]

# Random weights give flat class and mask scores; scaling the predictors gives well separated scores (so that
# detections do not tie) and masks with real contrast. (architecture, class-score scale, min detections)
CASES = [
    ("light_fpn", 20.0, 50),
    ("resnet50_fpn", 1.0, 50),
    ("resnet50_fpn_gn", 30.0, 50),
    ("resnet50_c4", 20.0, 20),
    ("resnext101_32x8d_fpn", 1.0, 50),
]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def predictors(request, tmp_path_factory):
    name, class_scale, min_detections = request.param
    torch.manual_seed(0)
    cls = ARCHITECTURES[name]
    config = cls.default_config(81)
    if name == "resnet50_c4":  # res5 on every ROI is slow on a CPU; fewer ROIs, same graph
        config.rpn.proposals_test = config.rpn.post_nms_count_test = 150
    model = cls(81, config=config)
    with torch.no_grad():
        model.box_predictor.cls_score.weight.mul_(class_scale)
        model.mask_predictor.logits.weight.mul_(1000.0)
    folder = tmp_path_factory.mktemp(name)
    checkpoint = save_checkpoint(
        folder / "model.pth", model, class_names=CLASS_NAMES, preprocessing={"resize": ["fit_max", 320, 512]}
    )
    pytorch = Predictor.from_checkpoint(checkpoint)
    openvino = Predictor.from_checkpoint(checkpoint, backend="openvino", cache_dir=folder / "cache")
    return pytorch, openvino, min_detections


def test_backends_agree_on_landscape_and_portrait_images(predictors):
    pytorch, openvino, min_detections = predictors
    # One IR with a dynamic input size serves both orientations.
    assert openvino.backend.model.inputs[0].get_partial_shape().is_dynamic
    for name, image in landscape_and_portrait_images():
        expected = pytorch(image)
        actual = openvino(image)
        assert len(expected) >= min_detections, (name, len(expected))
        assert_same_detections(expected, actual)


def test_ir_is_self_contained(predictors, tmp_path):
    _, openvino, _ = predictors
    loaded = Predictor.from_openvino(openvino.backend.path)
    assert loaded.class_names == tuple(CLASS_NAMES)
    assert loaded.resize.values == (320, 512) and loaded.pixel_mean == openvino.pixel_mean
    name, image = landscape_and_portrait_images()[0]
    assert_same_detections(openvino(image), loaded(image))
    assert np.isfinite(loaded.last_timing["network"])
