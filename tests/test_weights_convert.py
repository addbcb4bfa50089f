"""Detectron and maskrcnn-benchmark weights converted to every registry architecture.

The synthetic source files are laid out by generators that follow the source projects' own builders, not this
project's model (which would make the test circular):

- Detectron: ``detectron/modeling/ResNet.py`` (``add_ResNet_convX_body``, ``add_stage``, ``add_residual_block``,
  ``bottleneck_transformation`` / ``bottleneck_gn_transformation``, ``basic_bn_stem`` / ``basic_gn_stem``,
  ``add_ResNet_roi_conv5_head``), ``FPN.py`` (``add_fpn``, ``fpn_level_info_ResNet*_conv5``,
  ``add_fpn_rpn_outputs``), ``rpn_heads.py`` (``add_single_scale_rpn_outputs``), ``fast_rcnn_heads.py`` and
  ``mask_rcnn_heads.py``; Caffe2 stores convolution weights as (out, in / groups, kh, kw), transposed
  convolutions as (in, out, kh, kw) and fully connected ones as (out, in). Trainable parameters come with
  ``_momentum`` blobs; files also keep the ImageNet classifier (``fc1000_*`` / ``pred_*``) and zero convolution
  biases that the network does not use.
- maskrcnn-benchmark: ``modeling/backbone/resnet.py`` (``StemWithFixedBatchNorm``, ``_make_stage``,
  ``BottleneckWithFixedBatchNorm``, ``ResNetHead``), ``backbone/fpn.py``, ``rpn/rpn.py`` + ``anchor_generator.py``,
  ``roi_heads/box_head`` (``FPN2MLPFeatureExtractor``, ``ResNet50Conv5ROIFeatureExtractor``, ``FPNPredictor``,
  ``FastRCNNPredictor``), ``roi_heads/mask_head`` (``MaskRCNNFPNFeatureExtractor``, ``MaskRCNNC4Predictor``)
  and ``roi_heads.py`` (the C4 mask head shares the box head's feature extractor), saved from a
  DistributedDataParallel model (``module.`` prefixes) inside ``{"model": ..., "optimizer": ..., "iteration": ...}``.

Every source tensor gets a distinctive value (1000 x its index, plus a row or channel number for a few), so the
tests can tell where each one landed.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict

import numpy as np
import pytest
import torch

from segmentoly.rcnn.backbones.resnet import ResNet
from segmentoly.rcnn.layers import FrozenBatchNorm2d
from segmentoly.rcnn.model_zoo import ARCHITECTURES
from segmentoly.weights.backbone import load_backbone, read_backbone
from segmentoly.weights.checkpoint import CheckpointError, build_model, read_checkpoint
from segmentoly.weights.convert import convert, convert_entry, convert_weights
from segmentoly.weights.detectron import read_blobs
from segmentoly.weights.mapping import ConversionError
from segmentoly.weights.registry import load_registry

# ------------------------------------------------------------------------------------------------------------
# Detectron's blob layout
# ------------------------------------------------------------------------------------------------------------

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class Blobs:
    """Blob name -> shape, in creation order, remembering which ones Detectron trains (they get momentum)."""

    def __init__(self) -> None:
        self.shapes: dict[str, tuple[int, ...]] = OrderedDict()
        self.trainable: list[str] = []

    def add(self, name: str, shape: tuple[int, ...], trainable: bool = True) -> None:
        assert name not in self.shapes, name
        self.shapes[name] = tuple(shape)
        if trainable:
            self.trainable.append(name)

    def conv(self, prefix, dim_in, dim_out, kernel, *, group=1, bias=True, trainable=True):
        self.add(f"{prefix}_w", (dim_out, dim_in // group, kernel, kernel), trainable)
        if bias:
            self.add(f"{prefix}_b", (dim_out,), trainable)

    def affine(self, prefix, dim):  # AffineChannel: frozen BatchNorm, never trained
        self.add(f"{prefix}_s", (dim,), False)
        self.add(f"{prefix}_b", (dim,), False)

    def conv_norm(self, prefix, dim_in, dim_out, kernel, *, norm, group=1, trainable=True, suffix="_bn"):
        """ConvAffine (conv without bias + AffineChannel '<prefix>_bn') or ConvGN (+ GroupNorm '<prefix>_gn')."""
        self.conv(prefix, dim_in, dim_out, kernel, group=group, bias=False, trainable=trainable)
        if norm == "bn":
            self.affine(prefix + suffix, dim_out)
        else:
            self.add(f"{prefix}_gn_s", (dim_out,), trainable)
            self.add(f"{prefix}_gn_b", (dim_out,), trainable)


def detectron_stage(blobs, prefix, n, dim_in, dim_out, dim_inner, *, groups, norm, trainable=True):
    """ResNet.add_stage: n residual blocks '<prefix>_<i>' (bottleneck transformation + shortcut)."""
    for i in range(n):
        name = f"{prefix}_{i}"
        blobs.conv_norm(f"{name}_branch2a", dim_in, dim_inner, 1, norm=norm, trainable=trainable)
        blobs.conv_norm(f"{name}_branch2b", dim_inner, dim_inner, 3, norm=norm, group=groups, trainable=trainable)
        blobs.conv_norm(f"{name}_branch2c", dim_inner, dim_out, 1, norm=norm, trainable=trainable)
        if dim_in != dim_out:  # add_shortcut / basic_gn_shortcut
            blobs.conv_norm(f"{name}_branch1", dim_in, dim_out, 1, norm=norm, trainable=trainable)
        dim_in = dim_out
    return dim_in


def detectron_body(blobs, blocks, *, groups=1, width=64, norm="bn", stem=64, dims=(256, 512, 1024, 2048)):
    """add_ResNet_convX_body (freeze_at 2: the stem and res2 get no gradient, hence no momentum)."""
    if norm == "bn":  # basic_bn_stem
        blobs.conv("conv1", 3, stem, 7, bias=False, trainable=False)
        blobs.affine("res_conv1_bn", stem)
    else:  # basic_gn_stem
        blobs.conv_norm("conv1", 3, stem, 7, norm="gn", trainable=False)
    dim_in, inner = stem, groups * width
    for index, n in enumerate(blocks):
        dim_in = detectron_stage(
            blobs, f"res{index + 2}", n, dim_in, dims[index], inner * 2**index, groups=groups, norm=norm,
            trainable=index > 0,
        )  # fmt: skip
    return dim_in


def detectron_fpn(blobs, blocks, *, dims=(256, 512, 1024, 2048), fpn_dim=256, norm="none"):
    """FPN.add_fpn with fpn_level_info_ResNet{50,101,152}_conv5: blobs named after each stage's last block."""
    level_blobs = [f"res{5 - i}_{blocks[3 - i] - 1}_sum" for i in range(4)]
    level_dims = list(reversed(dims))

    def conv(name, dim_in, kernel):
        if norm == "gn":
            blobs.conv_norm(name, dim_in, fpn_dim, kernel, norm="gn")
        else:
            blobs.conv(name, dim_in, fpn_dim, kernel)

    conv(f"fpn_inner_{level_blobs[0]}", level_dims[0], 1)
    for i in range(1, 4):  # add_topdown_lateral_module: '<fpn_bottom>_lateral'
        conv(f"fpn_inner_{level_blobs[i]}_lateral", level_dims[i], 1)
    for i in range(4):  # post-hoc 3x3 convolutions
        conv(f"fpn_{level_blobs[i]}", fpn_dim, 3)


def detectron_mask_rcnn(
    depth=50,
    *,
    groups=1,
    width=64,
    c4=False,
    gn=False,
    num_classes=81,
    stem=64,
    dims=(256, 512, 1024, 2048),
    blocks=None,
    fpn_dim=256,
    mlp_dim=1024,
    mask_dim=256,
    imagenet_leftovers=True,
):
    """The blobs of a Detectron e2e Mask R-CNN (generalized_rcnn) as its weight file holds them."""
    blocks = tuple(blocks or BLOCKS[depth])
    blobs = Blobs()
    norm = "gn" if gn else "bn"
    if c4:
        dim = detectron_body(blobs, blocks[:3], groups=groups, width=width, stem=stem, dims=dims)
        # rpn_heads.add_single_scale_rpn_outputs: 15 anchors (5 sizes x 3 ratios) on res4
        blobs.conv("conv_rpn", dim, dim, 3)
        blobs.conv("rpn_cls_logits", dim, 15, 1)
        blobs.conv("rpn_bbox_pred", dim, 60, 1)
        # ResNet.add_ResNet_roi_conv5_head: stage res5 (3 blocks) on the 14x14 pooled ROIs
        head_dim = detectron_stage(blobs, "res5", 3, dim, dims[3], groups * width * 8, groups=groups, norm="bn")
    else:
        detectron_body(blobs, blocks, groups=groups, width=width, norm=norm, stem=stem, dims=dims)
        detectron_fpn(blobs, blocks, dims=dims, fpn_dim=fpn_dim, norm="gn" if gn else "none")
        blobs.conv("conv_rpn_fpn2", fpn_dim, fpn_dim, 3)  # shared by P2..P6, created at the lowest level
        blobs.conv("rpn_cls_logits_fpn2", fpn_dim, 3, 1)
        blobs.conv("rpn_bbox_pred_fpn2", fpn_dim, 12, 1)
        if gn:  # fast_rcnn_heads.add_roi_Xconv1fc_gn_head
            for i in range(4):
                blobs.conv_norm(f"head_conv{i + 1}", fpn_dim, fpn_dim, 3, norm="gn")
            blobs.add("fc6_w", (mlp_dim, fpn_dim * 7 * 7))
            blobs.add("fc6_b", (mlp_dim,))
        else:  # fast_rcnn_heads.add_roi_2mlp_head
            blobs.add("fc6_w", (mlp_dim, fpn_dim * 7 * 7))
            blobs.add("fc6_b", (mlp_dim,))
            blobs.add("fc7_w", (mlp_dim, mlp_dim))
            blobs.add("fc7_b", (mlp_dim,))
        head_dim = mlp_dim
    # fast_rcnn_heads.add_fast_rcnn_outputs
    blobs.add("cls_score_w", (num_classes, head_dim))
    blobs.add("cls_score_b", (num_classes,))
    blobs.add("bbox_pred_w", (4 * num_classes, head_dim))
    blobs.add("bbox_pred_b", (4 * num_classes,))
    if c4:  # mask_rcnn_heads.mask_rcnn_fcn_head_v0upshare: ConvTranspose (dim_in, dim_out, 2, 2) on res5
        blobs.add("conv5_mask_w", (dims[3], mask_dim, 2, 2))
    else:  # mask_rcnn_fcn_head_v1up4convs(_gn)
        for i in range(4):
            if gn:  # the GN variant's names have no brackets
                blobs.conv_norm(f"_mask_fcn{i + 1}", fpn_dim if i == 0 else mask_dim, mask_dim, 3, norm="gn")
            else:
                blobs.conv(f"_[mask]_fcn{i + 1}", fpn_dim if i == 0 else mask_dim, mask_dim, 3)
        blobs.add("conv5_mask_w", (mask_dim, mask_dim, 2, 2))
    blobs.add("conv5_mask_b", (mask_dim,))
    blobs.add("mask_fcn_logits_w", (num_classes, mask_dim, 1, 1))
    blobs.add("mask_fcn_logits_b", (num_classes,))
    if imagenet_leftovers:
        add_imagenet_leftovers(blobs, blocks if not c4 else (*blocks[:3], 3), msra=groups == 1 and not gn)
    return blobs


def add_imagenet_leftovers(blobs, blocks, *, msra):
    """What Detectron keeps of the ImageNet model it started from: the classifier (MSRA: fc1000, Caffe2 and GN
    models: pred) and, for the MSRA ResNets, zero convolution biases that its convolutions do not use."""
    prefix = "fc1000" if msra else "pred"
    blobs.add(f"{prefix}_w", (1000, 2048), False)
    blobs.add(f"{prefix}_b", (1000,), False)
    if msra:
        blobs.add("conv1_b", (64,), False)
        for index, n in enumerate(blocks):
            for i in range(n):
                for branch in ("2a", "2b", "2c") + (("1",) if i == 0 else ()):
                    name = f"res{index + 2}_{i}_branch{branch}_b"
                    if name not in blobs.shapes:
                        blobs.add(name, (1,), False)


def detectron_imagenet(depth, *, groups=1, width=64, gn=False, classes=1000):
    """An ImageNet backbone in Detectron's format: the 4-stage body and the classifier."""
    blobs = Blobs()
    detectron_body(blobs, BLOCKS[depth], groups=groups, width=width, norm="gn" if gn else "bn")
    msra = groups == 1 and not gn
    prefix = "fc1000" if msra else "pred"
    blobs.add(f"{prefix}_w", (classes, 2048), False)
    blobs.add(f"{prefix}_b", (classes,), False)
    return blobs


def with_momentum(blobs: Blobs) -> None:
    for name in list(blobs.trainable):
        blobs.add(name + "_momentum", blobs.shapes[name], False)


# ------------------------------------------------------------------------------------------------------------
# maskrcnn-benchmark's state-dict layout
# ------------------------------------------------------------------------------------------------------------


def mrcnn_bottleneck_stage(keys, prefix, count, in_channels, inner, out_channels, groups, running_stats=True):
    """_make_stage of BottleneckWithFixedBatchNorm: conv1/bn1, conv2/bn2 (grouped), conv3/bn3, downsample."""

    def frozen_bn(name, n):
        for field in ("weight", "bias") + (("running_mean", "running_var") if running_stats else ()):
            keys[f"{name}.{field}"] = (n,)

    for i in range(count):
        name = f"{prefix}.{i}"
        if in_channels != out_channels:
            keys[f"{name}.downsample.0.weight"] = (out_channels, in_channels, 1, 1)
            frozen_bn(f"{name}.downsample.1", out_channels)
        keys[f"{name}.conv1.weight"] = (inner, in_channels, 1, 1)
        frozen_bn(f"{name}.bn1", inner)
        keys[f"{name}.conv2.weight"] = (inner, inner // groups, 3, 3)
        frozen_bn(f"{name}.bn2", inner)
        keys[f"{name}.conv3.weight"] = (out_channels, inner, 1, 1)
        frozen_bn(f"{name}.bn3", out_channels)
        in_channels = out_channels


def mrcnn_mask_rcnn(depth=50, *, groups=1, width=64, c4=False, num_classes=81, running_stats=True):
    """Keys and shapes of a maskrcnn-benchmark GeneralizedRCNN state dict (without the DDP prefix)."""
    keys: dict[str, tuple[int, ...]] = OrderedDict()
    blocks = BLOCKS[depth]
    keys["backbone.body.stem.conv1.weight"] = (64, 3, 7, 7)
    for field in ("weight", "bias") + (("running_mean", "running_var") if running_stats else ()):
        keys[f"backbone.body.stem.bn1.{field}"] = (64,)
    stages = 3 if c4 else 4
    in_channels = 64
    for index in range(stages):
        out_channels, inner = 256 * 2**index, groups * width * 2**index
        mrcnn_bottleneck_stage(
            keys, f"backbone.body.layer{index + 1}", blocks[index], in_channels, inner, out_channels, groups,
            running_stats,
        )  # fmt: skip
        in_channels = out_channels
    if not c4:
        for idx, channels in enumerate((256, 512, 1024, 2048), 1):
            keys[f"backbone.fpn.fpn_inner{idx}.weight"] = (256, channels, 1, 1)
            keys[f"backbone.fpn.fpn_inner{idx}.bias"] = (256,)
            keys[f"backbone.fpn.fpn_layer{idx}.weight"] = (256, 256, 3, 3)
            keys[f"backbone.fpn.fpn_layer{idx}.bias"] = (256,)
    channels, anchors = (1024, 15) if c4 else (256, 3)
    keys["rpn.head.conv.weight"] = (channels, channels, 3, 3)
    keys["rpn.head.conv.bias"] = (channels,)
    keys["rpn.head.cls_logits.weight"] = (anchors, channels, 1, 1)
    keys["rpn.head.cls_logits.bias"] = (anchors,)
    keys["rpn.head.bbox_pred.weight"] = (4 * anchors, channels, 1, 1)
    keys["rpn.head.bbox_pred.bias"] = (4 * anchors,)
    for level in range(1 if c4 else 5):  # AnchorGenerator's cell_anchors BufferList
        keys[f"rpn.anchor_generator.cell_anchors.{level}"] = (anchors, 4)
    if c4:
        for head in ("box", "mask"):  # SHARE_BOX_FEATURE_EXTRACTOR: the same ResNetHead under both names
            mrcnn_bottleneck_stage(
                keys, f"roi_heads.{head}.feature_extractor.head.layer4", 3, 1024, groups * width * 8, 2048, groups,
                running_stats,
            )  # fmt: skip
        representation = 2048
    else:
        keys["roi_heads.box.feature_extractor.fc6.weight"] = (1024, 256 * 7 * 7)
        keys["roi_heads.box.feature_extractor.fc6.bias"] = (1024,)
        keys["roi_heads.box.feature_extractor.fc7.weight"] = (1024, 1024)
        keys["roi_heads.box.feature_extractor.fc7.bias"] = (1024,)
        representation = 1024
    keys["roi_heads.box.predictor.cls_score.weight"] = (num_classes, representation)
    keys["roi_heads.box.predictor.cls_score.bias"] = (num_classes,)
    keys["roi_heads.box.predictor.bbox_pred.weight"] = (4 * num_classes, representation)
    keys["roi_heads.box.predictor.bbox_pred.bias"] = (4 * num_classes,)
    if not c4:
        for i in range(1, 5):
            keys[f"roi_heads.mask.feature_extractor.mask_fcn{i}.weight"] = (256, 256, 3, 3)
            keys[f"roi_heads.mask.feature_extractor.mask_fcn{i}.bias"] = (256,)
    keys["roi_heads.mask.predictor.conv5_mask.weight"] = (2048 if c4 else 256, 256, 2, 2)
    keys["roi_heads.mask.predictor.conv5_mask.bias"] = (256,)
    keys["roi_heads.mask.predictor.mask_fcn_logits.weight"] = (num_classes, 256, 1, 1)
    keys["roi_heads.mask.predictor.mask_fcn_logits.bias"] = (num_classes,)
    return keys


# ------------------------------------------------------------------------------------------------------------
# Distinctive values
# ------------------------------------------------------------------------------------------------------------

#: (name, axis): blobs whose values also count along an axis: the first convolution's input channels, the
#: classifier's rows, the FrozenBN scale's channels.
PATTERNED = {
    "conv1_w": 1,
    "cls_score_w": 0,
    "cls_score_b": 0,
    "bbox_pred_w": 0,
    "res_conv1_bn_s": 0,
    "backbone.body.stem.conv1.weight": 1,
    "roi_heads.box.predictor.cls_score.weight": 0,
}
STEP = 1000.0


def distinctive(shapes, *, skip=("_momentum",), as_torch=False):
    """Source tensors filled with STEP * (index + 1), plus the position along PATTERNED axes. Uniform ones are
    zero-stride views (no memory, like skipped names such as momentum, which are zero)."""
    values, ids = {}, {}
    for index, (name, shape) in enumerate(shapes.items()):
        if any(name.endswith(s) for s in skip):
            value = np.broadcast_to(np.float32(0), shape)
        else:
            base = np.float32(STEP * (index + 1))
            ids[index + 1] = name
            if name in PATTERNED:
                axis = PATTERNED[name]
                ramp = np.arange(shape[axis], dtype=np.float32)
                value = np.array(
                    np.broadcast_to(base + ramp.reshape([-1 if a == axis else 1 for a in range(len(shape))]), shape)
                )
            else:
                value = np.broadcast_to(base, shape)
        values[name] = torch.from_numpy(np.array(value, copy=False)).expand(shape) if as_torch else value
    return values, ids


def source_of(tensor: torch.Tensor, ids) -> str:
    """The one source tensor whose values a converted tensor holds (all its values within one STEP band)."""
    if tensor.is_contiguous() and tensor.numel() < 1 << 20:
        low, high = torch.aminmax(tensor)
    else:  # a zero-stride view holds one value; a large tensor is checked at both ends
        low, high = tensor.reshape(-1)[0], tensor.reshape(-1)[-1]
    low, high = int(low // STEP), int(high // STEP)
    assert low == high and low in ids, (low, high)
    return ids[low]


def assert_one_to_one(state, ids, *, constants=("running_mean", "running_var"), aliases=()):
    """Every converted tensor comes from exactly one source tensor, and every source tensor that carries
    weights (ids) lands in exactly one place, except the known duplicates (aliases)."""
    landed = {}
    for name, tensor in state.items():
        if name.rsplit(".", 1)[-1] in constants:
            continue
        landed[name] = source_of(tensor, ids)
    used = sorted(landed.values())
    assert len(used) == len(set(used)), "a source tensor landed twice"
    expected = sorted(n for n in ids.values() if n not in aliases and not IGNORED_SOURCE(n))
    assert used == expected
    return landed


def IGNORED_SOURCE(name: str) -> bool:  # noqa: N802 - reads as a constant predicate
    return (
        name.startswith(("fc1000_", "pred_", "rpn.anchor_generator."))
        or name == "conv1_b"
        or (name.startswith("res") and name.endswith("_b") and "_bn_" not in name and "_gn_" not in name)
    )


REGISTRY = load_registry()


def entry(name):
    matches = [m for m in REGISTRY.values() if m.key.endswith("/" + name)]
    assert len(matches) == 1, name
    return matches[0]


# ------------------------------------------------------------------------------------------------------------
# Every registry Mask R-CNN, Detectron
# ------------------------------------------------------------------------------------------------------------

DETECTRON_CASES = {
    "mask_rcnn_resnet50_c4_2x": dict(depth=50, c4=True),
    "mask_rcnn_resnet50_fpn_2x": dict(depth=50),
    "mask_rcnn_resnet101_fpn_2x": dict(depth=101),
    "mask_rcnn_resnext101_64x4d_fpn_1x": dict(depth=101, groups=64, width=4),
    "detectron/mask_rcnn_resnext101_32x8d_fpn_1x": dict(depth=101, groups=32, width=8),
    "mask_rcnn_resnext152_32x8d_fpn_in5k_1.44x": dict(depth=152, groups=32, width=8),
    "mask_rcnn_resnet50_fpn_gn_2x": dict(depth=50, gn=True),
    "mask_rcnn_resnet101_fpn_gn_2x": dict(depth=101, gn=True),
}


@pytest.mark.parametrize("name", sorted(DETECTRON_CASES))
def test_detectron_models_convert_to_their_architecture(name):
    blobs = detectron_mask_rcnn(**DETECTRON_CASES[name])
    with_momentum(blobs)
    values, ids = distinctive(blobs.shapes)
    conversion = convert_weights(entry(name), values, where=name)
    # Strictly loaded into the zoo architecture (built on the meta device: no copies): no tensor is missing,
    # unexpected or of another shape.
    model, state = conversion.model(), conversion.state
    assert type(model) is ARCHITECTURES[entry(name).architecture]
    landed = assert_one_to_one(state, ids)
    depth = DETECTRON_CASES[name]["depth"]
    c4 = DETECTRON_CASES[name].get("c4", False)
    gn = DETECTRON_CASES[name].get("gn", False)

    # Blocks, the FPN's per-stage names and the heads land where they belong.
    assert landed["backbone.res4.5.conv2.weight"] == "res4_5_branch2b_w"
    assert landed["backbone.res3.0.shortcut.conv.weight"] == "res3_0_branch1_w"
    assert landed["rpn.head.deltas.weight"] == ("rpn_bbox_pred_w" if c4 else "rpn_bbox_pred_fpn2_w")
    if c4:
        assert not any(k.startswith("backbone.res5") for k in state)
        assert landed["box_head.res5.1.conv1.weight"] == "res5_1_branch2a_w"
        assert landed["box_head.res5.0.shortcut.norm.weight"] == "res5_0_branch1_bn_s"
        assert landed["mask_head.deconv.weight"] == "conv5_mask_w"
    else:
        last = {50: "res4_5", 101: "res4_22", 152: "res4_35"}[depth]
        assert landed["fpn.lateral.3.conv.weight"] == "fpn_inner_res5_2_sum_w"
        assert landed["fpn.lateral.2.conv.weight"] == f"fpn_inner_{last}_sum_lateral_w"
        assert landed["fpn.lateral.1.conv.weight"] == f"fpn_inner_res3_{BLOCKS[depth][1] - 1}_sum_lateral_w"
        assert landed["fpn.output.0.conv.weight"] == "fpn_res2_2_sum_w"
        assert landed["mask_head.fcn3.conv.weight"] == ("_mask_fcn3_w" if gn else "_[mask]_fcn3_w")
        assert landed["box_head.fc6.weight"] == "fc6_w"
    # The classifier keeps Detectron's class order: row 0 is the background.
    rows = state["box_predictor.cls_score.weight"][:, 0] - STEP * [k for k, v in ids.items() if v == "cls_score_w"][0]
    assert torch.equal(rows, torch.arange(81, dtype=torch.float32))
    # Detectron's input is BGR like ours: the first convolution's input channels keep their order.
    stem = state["backbone.stem.conv.weight"]
    assert torch.equal(stem[0, :, 0, 0] % STEP, torch.tensor([0.0, 1.0, 2.0]))
    norm = model.backbone.stem.norm
    if DETECTRON_CASES[name].get("gn"):
        assert isinstance(norm, torch.nn.GroupNorm) and landed["backbone.stem.norm.weight"] == "conv1_gn_s"
        assert landed["fpn.output.2.norm.bias"].endswith("_sum_gn_b")
        assert landed["box_head.conv4.norm.weight"] == "head_conv4_gn_s"
        assert landed["mask_head.fcn2.norm.bias"] == "_mask_fcn2_gn_b"
    else:
        # AffineChannel scale/bias become FrozenBatchNorm2d weight/bias with mean 0 and variance 1, and the
        # layer computes exactly x * scale + bias.
        assert isinstance(norm, FrozenBatchNorm2d) and landed["backbone.stem.norm.weight"] == "res_conv1_bn_s"
        assert torch.all(norm.running_mean == 0) and torch.all(norm.running_var == 1)
        x = torch.randn(1, 64, 3, 3)
        scale = torch.from_numpy(values["res_conv1_bn_s"]).reshape(1, -1, 1, 1)
        bias = torch.from_numpy(values["res_conv1_bn_b"]).reshape(1, -1, 1, 1)
        torch.testing.assert_close(norm(x), x * scale + bias)


def test_rgb_trained_weights_get_their_first_convolution_flipped():
    from dataclasses import replace

    blobs = detectron_mask_rcnn(50)
    values, _ = distinctive(blobs.shapes)
    rgb = replace(entry("mask_rcnn_resnet50_fpn_2x"), channel_order="rgb")
    state = convert_weights(rgb, values, where="rgb").state
    assert torch.equal(state["backbone.stem.conv.weight"][0, :, 0, 0] % STEP, torch.tensor([2.0, 1.0, 0.0]))


# ------------------------------------------------------------------------------------------------------------
# Every registry Mask R-CNN, maskrcnn-benchmark
# ------------------------------------------------------------------------------------------------------------

MRCNN_CASES = {
    "mask_rcnn_resnet50_c4_1x": dict(depth=50, c4=True),
    "mask_rcnn_resnet50_fpn_1x": dict(depth=50),
    "mask_rcnn_resnet101_fpn_1x": dict(depth=101),
    "maskrcnn_benchmark/mask_rcnn_resnext101_32x8d_fpn_1x": dict(depth=101, groups=32, width=8),
}


def mrcnn_file(path, keys, values):
    """A checkpoint as maskrcnn-benchmark's Checkpointer saves it from a DDP-wrapped model."""
    torch.save(
        {
            "model": OrderedDict((f"module.{k}", values[k]) for k in keys),
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.02, "momentum": 0.9, "params": [0, 1]}]},
            "scheduler": {"milestones": [60000, 80000], "last_epoch": 90000},
            "iteration": 90000,
        },
        path,
    )


@pytest.mark.parametrize("name", sorted(MRCNN_CASES))
def test_maskrcnn_benchmark_models_convert_to_their_architecture(name, tmp_path):
    case = MRCNN_CASES[name]
    keys = mrcnn_mask_rcnn(**case)
    values, ids = distinctive(keys, as_torch=True)
    c4 = case.get("c4", False)
    if c4:  # one module under two names: the same tensors
        for key in keys:
            if key.startswith("roi_heads.mask.feature_extractor."):
                values[key] = values[
                    "roi_heads.box.feature_extractor." + key[len("roi_heads.mask.feature_extractor.") :]
                ]
    if case["depth"] == 50:  # through the file, as the tool reads it
        path = tmp_path / "model.pth"
        mrcnn_file(path, keys, values)
        output = convert(path, tmp_path / "converted.pth", entry(name))
        checkpoint = read_checkpoint(output)
        assert checkpoint["architecture"] == entry(name).architecture
        assert checkpoint["class_names"][0] == "background" and len(checkpoint["class_names"]) == 81
        assert checkpoint["preprocessing"] == {"resize": ["fit_max", 800, 1333]}
        state = checkpoint["model"]
    else:
        conversion = convert_weights(entry(name), values, where=name)
        conversion.model()  # strict: nothing missing, unexpected or misshapen
        state = conversion.state
    aliases = {k for k in keys if k.startswith("roi_heads.mask.feature_extractor.head.")}
    landed = assert_one_to_one(state, ids, constants=(), aliases=aliases)
    assert landed["backbone.res4.5.conv2.weight"] == "backbone.body.layer3.5.conv2.weight"
    assert landed["rpn.head.objectness.weight"] == "rpn.head.cls_logits.weight"
    if c4:
        assert landed["box_head.res5.1.conv1.weight"] == "roi_heads.box.feature_extractor.head.layer4.1.conv1.weight"
        assert not any(k.startswith("backbone.res5") for k in state)
    else:
        assert landed["fpn.lateral.1.conv.weight"] == "backbone.fpn.fpn_inner2.weight"
        assert landed["fpn.output.3.conv.bias"] == "backbone.fpn.fpn_layer4.bias"
        assert landed["mask_head.fcn2.conv.weight"] == "roi_heads.mask.feature_extractor.mask_fcn2.weight"
    # maskrcnn-benchmark's FrozenBatchNorm2d statistics are carried over as they are.
    assert landed["backbone.stem.norm.running_var"] == "backbone.body.stem.bn1.running_var"
    assert torch.equal(state["backbone.stem.conv.weight"][0, :, 0, 0] % STEP, torch.tensor([0.0, 1.0, 2.0]))
    assert torch.equal(state["box_predictor.cls_score.weight"][:, 0] % STEP, torch.arange(81, dtype=torch.float32))


def test_maskrcnn_benchmark_checkpoints_without_batchnorm_statistics_get_mean_0_and_variance_1():
    keys = mrcnn_mask_rcnn(50, running_stats=False)
    values, _ = distinctive(keys, as_torch=True)
    model = convert_weights(entry("mask_rcnn_resnet50_fpn_1x"), values, where="old").model()
    norm = model.backbone.res3[1].norm2
    assert torch.all(norm.running_var == 1) and torch.all(norm.running_mean == 0)
    assert torch.equal(norm.weight, values["backbone.body.layer2.1.bn2.weight"])


def test_c4_mask_head_with_a_res5_of_its_own_is_refused():
    keys = mrcnn_mask_rcnn(50, c4=True)
    values, _ = distinctive(keys, as_torch=True)  # the mask head's copy differs from the box head's
    with pytest.raises(ConversionError, match="res5 of its own"):
        convert_weights(entry("mask_rcnn_resnet50_c4_1x"), values, where="c4")


# ------------------------------------------------------------------------------------------------------------
# ImageNet backbones
# ------------------------------------------------------------------------------------------------------------

BACKBONE_CASES = {
    "resnet50": dict(depth=50),
    "resnet101": dict(depth=101),
    "resnext101_32x8d": dict(depth=101, groups=32, width=8),
    "resnext152_32x8d_in5k": dict(depth=152, groups=32, width=8, classes=5000),
    "resnet50_gn": dict(depth=50, gn=True),
    "resnet101_gn": dict(depth=101, gn=True),
}


@pytest.mark.parametrize("name", sorted(BACKBONE_CASES))
def test_imagenet_backbones_convert_to_backbone_weights(name):
    case = dict(BACKBONE_CASES[name])
    blobs = detectron_imagenet(**case)
    values, ids = distinctive(blobs.shapes)
    conversion = convert_weights(entry(name), values, where=name)
    config, state = conversion.config, conversion.state
    assert conversion.kind == "backbone" and config.num_stages == 4
    assert config.stride_in_1x1 == (name in ("resnet50", "resnet101"))  # MSRA: stride in the 1x1 convolution
    assert config.norm == ("gn" if case.get("gn") else "frozen_bn")
    with torch.device("meta"):
        expected = ResNet(config).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    landed = assert_one_to_one(state, ids)
    assert landed["res4.5.conv2.weight"] == "res4_5_branch2b_w"
    assert landed["res5.2.norm3.bias"] == ("res5_2_branch2c_gn_b" if case.get("gn") else "res5_2_branch2c_bn_b")


@pytest.fixture(scope="module")
def resnet50_backbone_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backbone")
    blobs = detectron_imagenet(50)
    values, ids = distinctive(blobs.shapes)
    raw = folder / "R-50.pkl"
    write_python2_pickle(raw, {"blobs": values})
    return convert_entry(entry("resnet50"), raw, folder / "resnet50.pth"), values


def test_backbone_file_loads_into_fpn_and_c4_models(resnet50_backbone_file):
    path, values = resnet50_backbone_file
    state = read_backbone(path)
    assert state["source"]["url"].endswith("MSRA/R-50.pkl") and state["backbone"].blocks == (3, 4, 6, 3)
    fpn = ARCHITECTURES["resnet50_fpn"](81)
    load_backbone(fpn, path)
    assert np.array_equal(fpn.backbone.res4[5].conv2.weight.detach().numpy(), values["res4_5_branch2b_w"])
    assert np.array_equal(fpn.backbone.res5[2].conv3.weight.detach().numpy(), values["res5_2_branch2c_w"])
    c4 = ARCHITECTURES["resnet50_c4"](81)
    load_backbone(c4, path)  # res5 goes to the box head, which runs it on the ROIs
    assert np.array_equal(c4.box_head.res5[2].conv3.weight.detach().numpy(), values["res5_2_branch2c_w"])
    assert np.array_equal(c4.backbone.stem.norm.weight.numpy(), values["res_conv1_bn_s"])


def test_backbone_file_refuses_another_network(resnet50_backbone_file, tmp_path):
    path, _ = resnet50_backbone_file
    with pytest.raises(CheckpointError, match=r"not the model's: blocks: the file has \(3, 4, 6, 3\)"):
        load_backbone(ARCHITECTURES["resnet101_fpn"](81), path)
    with pytest.raises(CheckpointError, match="stride_in_1x1.*norm: the file has 'frozen_bn', the model 'gn'"):
        load_backbone(ARCHITECTURES["resnet50_fpn_gn"](81), path)
    # A backbone file missing a tensor, or with one too many, is refused with the names.
    state = torch.load(path, weights_only=True)
    del state["model"]["res3.1.conv2.weight"]
    state["model"]["fc.weight"] = torch.zeros(1000, 2048)
    damaged = tmp_path / "damaged.pth"
    torch.save(state, damaged)
    with pytest.raises(CheckpointError, match=r"missing: res3\.1\.conv2\.weight; unexpected: fc\.weight"):
        load_backbone(ARCHITECTURES["resnet50_fpn"](81), damaged)
    # Other kinds of file.
    torch.save({"format": "segmentoly-checkpoint", "model": {}}, tmp_path / "ckpt.pth")
    with pytest.raises(CheckpointError, match="a segmentoly checkpoint .* not a backbone file"):
        read_backbone(tmp_path / "ckpt.pth")
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a segmentoly backbone file"):
        read_backbone(tmp_path / "other.pth")


# ------------------------------------------------------------------------------------------------------------
# Detectron's files as Python 2 wrote them, and what does not fit
# ------------------------------------------------------------------------------------------------------------


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: byte strings (array data) as BINSTRING, not through _codecs.encode."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj):
        size = len(obj)
        if size < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([size]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", size) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def write_python2_pickle(path, obj):
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


TINY = dict(
    blocks=(1, 1, 1, 1), stem=8, width=4, dims=(16, 32, 64, 128), fpn_dim=16, mlp_dim=32, mask_dim=16, num_classes=3
)
#: The same network as the registry's `config` override of resnet50_fpn.
TINY_CONFIG = {
    "backbone": {
        "blocks": [1, 1, 1, 1],
        "stem_channels": 8,
        "stage_channels": [16, 32, 64, 128],
        "bottleneck_channels": [4, 8, 16, 32],
        "norm_groups": 4,
    },
    "fpn": {"channels": 16},
    "box_head": {"fc_channels": 32},
    "mask_head": {"conv_channels": 16},
}


def tiny_entry(**changes):
    from dataclasses import replace

    base = replace(entry("mask_rcnn_resnet50_fpn_2x"), name="tiny", config=TINY_CONFIG, class_names=("bg", "a", "b"))
    return replace(base, **changes)


@pytest.mark.parametrize("writer", ["python2", "python3"])
def test_detectron_pickles_of_python2_and_python3_read_the_same(tmp_path, writer):
    blobs = detectron_mask_rcnn(**TINY, imagenet_leftovers=False)
    with_momentum(blobs)
    values, ids = distinctive(blobs.shapes)
    values = {k: np.array(v) for k, v in values.items()}
    path = tmp_path / "model_final.pkl"
    data = {"blobs": values, "cfg": "MODEL:\n  TYPE: generalized_rcnn\n"}
    if writer == "python2":
        write_python2_pickle(path, data)
    else:
        path.write_bytes(pickle.dumps(data, protocol=2))
    read = read_blobs(path)
    assert set(read) == set(values) and all(np.array_equal(read[k], values[k]) for k in values)
    output = convert(path, tmp_path / "tiny.pth", tiny_entry())
    state = read_checkpoint(output)
    assert state["class_names"] == ["bg", "a", "b"] and state["source"]["format"] == "detectron_pkl"
    model = build_model(state, source=str(output))
    assert model.config.backbone.blocks == (1, 1, 1, 1) and model.config.fpn.channels == 16
    assert_one_to_one(model.state_dict(), ids)


def test_unmapped_and_missing_blobs_are_errors_that_name_them():
    blobs = detectron_mask_rcnn(**TINY)
    values, _ = distinctive(blobs.shapes)
    values["res3_0_branch2b_extra_w"] = np.zeros(3, np.float32)
    values["bbox_pred_std"] = np.zeros(3, np.float32)
    del values["res4_0_branch2b_w"]
    with pytest.raises(ConversionError) as error:
        convert_weights(tiny_entry(), values, where="file.pkl")
    message = str(error.value)
    assert "file.pkl" in message
    assert "missing from the file: res4_0_branch2b_w (for backbone.res4.0.conv2.weight)" in message
    assert "not mapped to any parameter: bbox_pred_std, res3_0_branch2b_extra_w" in message


def test_misshapen_blob_and_wrong_architecture_are_errors():
    values, _ = distinctive(detectron_mask_rcnn(**TINY).shapes)
    values["fc7_w"] = np.zeros((32, 33), np.float32)
    with pytest.raises(ConversionError, match=r"fc7_w \(32, 33\) \(for box_head.fc7.weight \(32, 32\)\)"):
        convert_weights(tiny_entry(), values, where="file.pkl")
    # R-50 weights given as R-101: the missing blocks are named.
    values, _ = distinctive(detectron_mask_rcnn(50).shapes)
    with pytest.raises(ConversionError, match=r"missing from the file: res4_6_branch2a_w"):
        convert_weights(entry("mask_rcnn_resnet101_fpn_2x"), values, where="r50.pkl")
    # A model whose classes the registry does not name.
    values, _ = distinctive(detectron_mask_rcnn(**{**TINY, "num_classes": 5}).shapes)
    from segmentoly.weights.convert import class_names

    conversion = convert_weights(tiny_entry(), values, where="five.pkl")
    with pytest.raises(ConversionError, match="classify 5 classes .* the registry names 3"):
        class_names(tiny_entry(), conversion.config.num_classes)


def test_convert_guesses_the_format_and_takes_an_architecture(tmp_path):
    blobs = detectron_imagenet(50)
    values, _ = distinctive(blobs.shapes)
    raw = tmp_path / "R-50.pkl"
    write_python2_pickle(raw, {"blobs": values})
    output = convert(raw, tmp_path / "r50.pth", "resnet50_fpn", kind="backbone")
    assert read_backbone(output)["backbone"].stride_in_1x1
    # A detection model given where a backbone is expected: the error says what it is.
    with pytest.raises(ConversionError, match="no cls_score_w blob"):
        convert(raw, tmp_path / "x.pth", "resnet50_fpn")
    with pytest.raises(ValueError, match="cannot tell its format"):
        convert(tmp_path / "weights.bin", tmp_path / "x.pth", "resnet50_fpn")
    # A converted file needs no conversion.
    with pytest.raises(CheckpointError, match=r"already a segmentoly file \(segmentoly-backbone\)"):
        convert(output, tmp_path / "y.pth", "resnet50_fpn")
