"""The named architectures: shapes against published sizes, forward passes, the model contract, lookup."""

import pytest
import torch

from segmentoly.rcnn.backbones import ResNet
from segmentoly.rcnn.layers import FrozenBatchNorm2d
from segmentoly.rcnn.model_zoo import ARCHITECTURES, resolve_architecture
from segmentoly.rcnn.model_zoo.resnet_fpn_mask_rcnn import ResNet50FPNMaskRCNN, resnet_backbone

# Parameter counts of torchvision's ImageNet classifiers (its model cards): the same networks with BatchNorm
# affine parameters and a 1000-class fc layer, which a detection backbone does not have.
PUBLISHED_CLASSIFIERS = {
    "resnet50": (dict(depth=50), 25_557_032),
    "resnet101": (dict(depth=101), 44_549_160),
    "resnet152": (dict(depth=152), 60_192_808),
    "resnext101_32x8d": (dict(depth=101, groups=32, width_per_group=8, stride_in_1x1=False), 88_791_336),
    "resnext101_64x4d": (dict(depth=101, groups=64, width_per_group=4, stride_in_1x1=False), 83_455_272),
}


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_CLASSIFIERS))
def test_backbones_match_published_classifier_sizes(name):
    kwargs, published = PUBLISHED_CLASSIFIERS[name]
    backbone = ResNet(resnet_backbone(**kwargs))
    affine = sum(2 * m.num_features for m in backbone.modules() if isinstance(m, FrozenBatchNorm2d))
    classifier = 2048 * 1000 + 1000
    assert parameter_count(backbone) + affine + classifier == published


def test_resnet50_fpn_has_the_published_size():
    # Mask R-CNN R-50-FPN for COCO (81 classes): 44.3 M parameters.
    count = parameter_count(ResNet50FPNMaskRCNN(81))
    assert abs(count - 44.3e6) / 44.3e6 < 0.01, count


def test_fpn_models_differ_from_r50_by_their_backbones():
    # FPN, RPN and heads are the same for every FPN model, so the totals differ by the backbones exactly.
    reference = parameter_count(ResNet50FPNMaskRCNN(81)) - parameter_count(ResNet(resnet_backbone(50)))
    for name, depth, groups, width, _ in [
        ("resnet101_fpn", 101, 1, 64, True),
        ("resnext101_32x8d_fpn", 101, 32, 8, False),
        ("resnext101_64x4d_fpn", 101, 64, 4, False),
        ("resnext152_32x8d_fpn", 152, 32, 8, False),
    ]:
        model = ARCHITECTURES[name](81)
        backbone = ResNet(resnet_backbone(depth, groups=groups, width_per_group=width))
        assert parameter_count(model) == reference + parameter_count(backbone), name


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_runs_and_follows_the_output_contract(name):
    torch.manual_seed(0)
    cls = ARCHITECTURES[name]
    config = cls.default_config(num_classes=5)
    # Fewer ROIs keep the heavy heads (C4's res5 on every ROI) quick; the graph is the same.
    config.rpn.proposals_test = config.rpn.post_nms_count_test = 50
    config.box_head.detections_per_image = 20
    model = cls(5, config=config).eval()
    with torch.no_grad():
        boxes, scores, classes, masks = model(torch.rand(1, 3, 192, 256) * 255)
    size = model.mask_size
    assert boxes.shape == (20, 4) and scores.shape == (20,) and classes.shape == (20,)
    assert masks.shape == (20, size, size)
    assert classes.dtype == torch.int32 and ((classes >= 0) & (classes < 5)).all()
    assert ((masks >= 0) & (masks <= 1)).all()
    padding = classes == 0
    assert (scores[padding] == 0).all() and (boxes[padding] == 0).all()
    print(f"{name}: {parameter_count(model) / 1e6:.2f} M parameters (5 classes)")


def test_training_mode_freezes_the_stem_and_res2():
    model = ResNet50FPNMaskRCNN(81)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("backbone.stem", "backbone.res2.")) for n in frozen)
    assert any(n.startswith("backbone.res2.") for n in frozen)


def test_lookup_by_name_and_class_path():
    path = "segmentoly.rcnn.model_zoo.resnet_fpn_mask_rcnn.ResNet50FPNMaskRCNN"
    assert resolve_architecture(path) is ResNet50FPNMaskRCNN
    assert resolve_architecture("resnet50_fpn") is ResNet50FPNMaskRCNN
    with pytest.raises(ValueError, match="unknown architecture; known names: light_fpn"):
        resolve_architecture("resnet51_fpn")
    with pytest.raises(ValueError, match="cannot import it"):
        resolve_architecture("segmentoly.rcnn.model_zoo.nowhere.Model")
    with pytest.raises(ValueError, match="not a segmentoly model architecture"):
        resolve_architecture("torch.nn.Linear")


def test_image_contract_is_checked():
    model = ARCHITECTURES["light_fpn"](3).eval()
    with pytest.raises(ValueError, match=r"image: expected a \[1, 3, H, W\] tensor"):
        model(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.zeros(1, 3, 70, 64))
