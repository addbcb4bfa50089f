"""A module calling all five detection ops exports to ONNX as OpenVINO nodes and OpenVINO runs it."""

import math

import numpy as np
import onnx
import openvino as ov
import pytest
import torch
from torch import nn

from segmentoly import ops

from helpers import assert_close, cell_anchors

PROPOSAL_ATTRS = dict(min_size=0.0, nms_threshold=0.7, pre_nms_count=300, post_nms_count=100)
POOL_ATTRS = dict(output_size=4, sampling_ratio=2, pyramid_scales=[4, 8])
DETECTION_ATTRS = dict(
    score_threshold=0.05,
    nms_threshold=0.5,
    max_delta_log_wh=math.log(1000 / 16),
    num_classes=3,
    post_nms_count=20,
    max_detections_per_image=30,
    deltas_weights=[10.0, 10.0, 5.0, 5.0],
)


def distinct_objectness(feature: torch.Tensor, anchors_per_cell: int, first: int) -> torch.Tensor:
    """Objectness ``[A, H, W]`` with values at least 1e-4 apart, computed exactly in integers.

    Scores from a convolution and a sigmoid differ between PyTorch and OpenVINO by a few ulp, which reorders
    nearly equal scores and with them the proposals: a valid difference, but not one this test is about.
    Levels pass disjoint ``first`` ranges so that no two anchors of the image share a score.
    """
    count = anchors_per_cell * feature.shape[2] * feature.shape[3]
    index = torch.arange(count, device=feature.device) + first
    # Injective below 10007 (a prime); every intermediate stays under 2**24, exact even where OpenVINO runs
    # integer arithmetic in float32.
    ranks = (index * 37) % 10007
    return ((ranks + 1).to(feature.dtype) / 10008.0).reshape(anchors_per_cell, feature.shape[2], feature.shape[3])


class TinyDetector(nn.Module):
    """Two feature levels, an RPN on each, and a box head: the data flow of an FPN detector."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.rpn_deltas = nn.Conv2d(8, 12, 1)
        self.head = nn.Linear(8 * 4 * 4, 3 + 12)
        with torch.no_grad():
            self.rpn_deltas.weight.mul_(0.1)
            # Moderate class scores: confident enough for detections to come out, far from saturating at 1.0
            # (where scores would tie and the order of detections would be unspecified).
            self.head.weight.mul_(0.05)
            self.head.bias[1:3] += 1.0
        self.register_buffer("priors4", torch.from_numpy(cell_anchors((16,))))
        self.register_buffer("priors8", torch.from_numpy(cell_anchors((48,))))

    def forward(self, image: torch.Tensor):
        height, width = image.shape[2], image.shape[3]
        im_info = torch.stack([image.new_ones(()) * height, image.new_ones(()) * width, image.new_ones(())])
        features = [self.stem(image / 255.0)]
        features.append(self.down(features[0]))
        all_rois, all_scores = [], []
        for feature, priors, first in zip(features, (self.priors4, self.priors8), (0, 5000)):
            anchors = ops.prior_grid_generator(priors, feature, image)
            rois, scores = ops.generate_proposals_single_image(
                im_info,
                anchors,
                self.rpn_deltas(feature)[0],
                distinct_objectness(feature, 3, first),
                **PROPOSAL_ATTRS,
            )
            all_rois.append(rois)
            all_scores.append(scores)
        rois = ops.topk_rois(torch.cat(all_rois), torch.cat(all_scores), max_rois=60)
        pooled = ops.roi_feature_extractor(rois, features, **POOL_ATTRS)
        head = self.head(pooled.flatten(1))
        class_scores = torch.softmax(head[:, :3], dim=1)
        boxes, classes, scores = ops.detection_output(rois, head[:, 3:], class_scores, im_info[None], **DETECTION_ATTRS)
        return boxes, classes, scores, pooled


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = TinyDetector().eval()
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    h32, w32 = torch.export.Dim("h32", min=2, max=64), torch.export.Dim("w32", min=2, max=64)
    torch.onnx.export(
        model,
        (torch.rand(1, 3, 128, 160) * 255,),
        str(path),
        dynamo=True,
        input_names=["image"],
        output_names=["boxes", "classes", "scores", "pooled"],
        dynamic_shapes={"image": {2: 32 * h32, 3: 32 * w32}},
    )
    return model, path


def test_graph_holds_one_openvino_node_per_op_call(exported):
    _, path = exported
    graph = onnx.load(str(path)).graph
    custom = [n for n in graph.node if n.domain == "org.openvinotoolkit"]
    counts = {}
    for node in custom:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    assert counts == {
        "ExperimentalDetectronPriorGridGenerator": 2,
        "ExperimentalDetectronGenerateProposalsSingleImage": 2,
        "ExperimentalDetectronTopKROIs": 1,
        "ExperimentalDetectronROIFeatureExtractor": 1,
        "ExperimentalDetectronDetectionOutput": 1,
    }
    attrs = {node.op_type: {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute} for node in custom}
    assert attrs["ExperimentalDetectronGenerateProposalsSingleImage"] == pytest.approx(PROPOSAL_ATTRS)
    assert attrs["ExperimentalDetectronROIFeatureExtractor"] == POOL_ATTRS | {"aligned": 0}
    detection = attrs["ExperimentalDetectronDetectionOutput"]
    assert detection.pop("class_agnostic_box_regression") == 0
    assert detection.pop("deltas_weights") == DETECTION_ATTRS["deltas_weights"]
    assert detection == pytest.approx({k: v for k, v in DETECTION_ATTRS.items() if k != "deltas_weights"})
    assert attrs["ExperimentalDetectronTopKROIs"] == {"max_rois": 60}
    # Spatial dims stay symbolic: one file for every input size.
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param


@pytest.mark.parametrize("size", [(128, 160), (224, 96)])
def test_openvino_runs_it_like_eager_pytorch(exported, size):
    model, path = exported
    rng = np.random.default_rng(sum(size))
    image = (rng.uniform(0, 255, (1, 3, *size))).astype(np.float32)
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(image)
    with torch.no_grad():
        boxes, classes, scores, pooled = model(torch.from_numpy(image))
    assert int((classes > 0).sum()) >= 5
    np.testing.assert_array_equal(result["classes"], classes.numpy())
    assert_close(result["scores"], scores.numpy())
    assert_close(result["boxes"], boxes.numpy(), atol=1e-3)
    assert_close(result["pooled"], pooled.numpy(), atol=1e-3)
