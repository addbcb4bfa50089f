"""The registry of pretrained models: the bundled entries, user files and their mistakes, output paths."""

from pathlib import Path

import pytest
import yaml

from segmentoly.rcnn.model_zoo import resolve_architecture
from segmentoly.weights.prepare import output_paths
from segmentoly.weights.registry import DEFAULT_REGISTRY, RegistryError, load_registry, select

# Published COCO minival box / mask AP (Detectron MODEL_ZOO.md, its GN README, maskrcnn-benchmark MODEL_ZOO.md).
PUBLISHED = {
    "coco/detectron/mask_rcnn_resnet50_c4_2x": ("resnet50_c4", 37.8, 32.8),
    "coco/detectron/mask_rcnn_resnet50_fpn_2x": ("resnet50_fpn", 38.6, 34.5),
    "coco/detectron/mask_rcnn_resnet101_fpn_2x": ("resnet101_fpn", 40.9, 36.4),
    "coco/detectron/mask_rcnn_resnext101_64x4d_fpn_1x": ("resnext101_64x4d_fpn", 42.4, 37.5),
    "coco/detectron/mask_rcnn_resnext101_32x8d_fpn_1x": ("resnext101_32x8d_fpn", 42.1, 37.3),
    "coco/detectron/mask_rcnn_resnext152_32x8d_fpn_in5k_1.44x": ("resnext152_32x8d_fpn", 45.2, 39.7),
    "coco/maskrcnn_benchmark/mask_rcnn_resnet50_c4_1x": ("resnet50_c4", 35.6, 31.5),
    "coco/maskrcnn_benchmark/mask_rcnn_resnet50_fpn_1x": ("resnet50_fpn", 37.8, 34.2),
    "coco/maskrcnn_benchmark/mask_rcnn_resnet101_fpn_1x": ("resnet101_fpn", 40.1, 36.1),
    "coco/maskrcnn_benchmark/mask_rcnn_resnext101_32x8d_fpn_1x": ("resnext101_32x8d_fpn", 42.2, 37.8),
    "imagenet/detectron/resnet50": ("resnet50_fpn", None, None),
    "imagenet/detectron/resnet101": ("resnet101_fpn", None, None),
    "imagenet/detectron/resnext101_32x8d": ("resnext101_32x8d_fpn", None, None),
    "imagenet/detectron/resnext152_32x8d_in5k": ("resnext152_32x8d_fpn", None, None),
    "imagenet/detectron/resnet50_gn": ("resnet50_fpn_gn", None, None),
    "imagenet/detectron/resnet101_gn": ("resnet101_fpn_gn", None, None),
}


def test_bundled_registry_has_the_original_tools_models():
    models = load_registry()
    defaults = {m.key: m for m in select(models, None)}
    assert set(defaults) == set(PUBLISHED)
    for key, (architecture, box_ap, mask_ap) in PUBLISHED.items():
        model = defaults[key]
        assert (model.architecture, model.box_ap, model.mask_ap) == (architecture, box_ap, mask_ap), key
        assert model.kind == ("backbone" if key.startswith("imagenet/") else "mask_rcnn")
        assert model.url.startswith("https://") and model.reference
        assert model.resize == ("fit_max", 800, 1333) and model.channel_order == "bgr"
        assert model.pixel_mean == (102.9801, 115.9465, 122.7717)
        resolve_architecture(model.architecture)
    assert len({m.url for m in models.values()}) == len(models)
    urls = {m.key: m.url for m in models.values()}
    assert urls["imagenet/detectron/resnet50_gn"].endswith("/ImageNetPretrained/47261647/R-50-GN.pkl")
    assert "e2e_mask_rcnn_R-50-FPN_2x.yaml.01_49_07.By8nQcCH" in urls["coco/detectron/mask_rcnn_resnet50_fpn_2x"]
    assert urls["coco/maskrcnn_benchmark/mask_rcnn_resnet50_fpn_1x"] == (
        "https://download.pytorch.org/models/maskrcnn/e2e_mask_rcnn_R_50_FPN_1x.pth"
    )
    # Only what was actually published is checked; the rest is unknown, not guessed.
    assert {m.name for m in models.values() if m.md5 or m.sha256 or m.size} == {"resnext101_64x4d"}


def test_selection_by_name():
    models = load_registry()
    (model,) = select(models, ["mask_rcnn_resnet50_fpn_2x"])
    assert model.key == "coco/detectron/mask_rcnn_resnet50_fpn_2x"
    (model,) = select(models, ["maskrcnn_benchmark/mask_rcnn_resnext101_32x8d_fpn_1x"])
    assert model.source == "maskrcnn_benchmark"
    with pytest.raises(RegistryError, match="ambiguous: say which of coco/detectron/mask_rcnn_resnext101_32x8d"):
        select(models, ["mask_rcnn_resnext101_32x8d_fpn_1x"])
    with pytest.raises(RegistryError, match="unknown model 'mask_rcnn_resnet18'; known models: mask_rcnn_resnet50_c4"):
        select(models, ["mask_rcnn_resnet18"])
    assert len(select(models, None, everything=True)) == len(models) > len(select(models, None))


def test_output_paths_are_the_seed_readmes():
    models = load_registry()
    paths = output_paths(models["coco/detectron/mask_rcnn_resnet50_fpn_2x"], "data/pretrained_models")
    assert paths.raw == Path("data/pretrained_models/raw/coco/detectron/mask_rcnn_resnet50_fpn_2x.pkl")
    assert paths.converted == Path("data/pretrained_models/converted/coco/detectron/mask_rcnn_resnet50_fpn_2x.pth")
    assert paths.xml == Path("data/pretrained_models/ir/coco/detectron/mask_rcnn_resnet50_fpn_2x.xml")
    assert paths.bin == Path("data/pretrained_models/ir/coco/detectron/mask_rcnn_resnet50_fpn_2x.bin")
    dotted = output_paths(models["coco/detectron/mask_rcnn_resnext152_32x8d_fpn_in5k_1.44x"], "out")
    assert dotted.onnx.name == "mask_rcnn_resnext152_32x8d_fpn_in5k_1.44x.onnx"
    assert dotted.bin.name == "mask_rcnn_resnext152_32x8d_fpn_in5k_1.44x.bin"
    backbone = output_paths(models["imagenet/detectron/resnet50"], "out")
    assert backbone.raw == Path("out/raw/imagenet/detectron/resnet50.pkl") and backbone.onnx is None


GOOD = {
    "name": "mine",
    "kind": "mask_rcnn",
    "format": "detectron_pkl",
    "url": "file:///x.pkl",
    "architecture": "resnet50_fpn",
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": "blue"}, r"unknown key\(s\) \['colour'\]"),
        ({"url": None}, r"missing required key\(s\) \['url'\]"),
        ({"kind": "keypoints"}, r"kind: expected one of \['mask_rcnn', 'backbone'\]"),
        ({"architecture": "resnet18_fpn"}, "architecture: --model 'resnet18_fpn': unknown architecture"),
        ({"url": "ftp://host/x.pkl"}, "url: 'ftp://host/x.pkl' is not an http/https/file URL"),
        ({"md5": "abc"}, "md5: expected 32 hexadecimal digits"),
        ({"box_ap": "high"}, "box_ap: expected a number or null"),
        ({"resize": ["fit_max", 800]}, r"resize: expected \[MODE, A, B\]"),
        ({"name": "../escape"}, "name: '../escape' must be letters"),
        ({"pixel_mean": [1, 2]}, r"pixel_mean: expected three numbers"),
        ({"config": {"rpn": {"nms_treshold": 0.6}}}, r"config: rpn.nms_treshold: unknown key"),
    ],
)
def test_mistakes_name_the_file_and_the_entry(tmp_path, change, message):
    path = tmp_path / "zoo.yaml"
    bad = {**GOOD, "name": "second", **change}
    path.write_text(yaml.safe_dump({"models": [GOOD, {k: v for k, v in bad.items() if v is not None}]}))
    with pytest.raises(RegistryError, match=f"zoo.yaml: entry 2 .*{message}"):
        load_registry(path)


def test_file_level_mistakes(tmp_path):
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump({"models": [GOOD, GOOD]}))
    with pytest.raises(RegistryError, match=r"zoo.yaml: entry 2 \(mine\): 'coco/detectron/mine' is listed twice"):
        load_registry(path)
    path.write_text("models: [unclosed")
    with pytest.raises(RegistryError, match="zoo.yaml: not valid YAML"):
        load_registry(path)
    path.write_text(yaml.safe_dump([GOOD]))
    with pytest.raises(RegistryError, match="expected a mapping with a 'models' list"):
        load_registry(path)
    with pytest.raises(RegistryError, match="nothing.yaml: registry file not found"):
        load_registry(tmp_path / "nothing.yaml")
    # A user registry replaces the bundled one.
    path.write_text(yaml.safe_dump({"models": [GOOD]}))
    assert list(load_registry(path)) == ["coco/detectron/mine"] and DEFAULT_REGISTRY.is_file()


def test_list_prints_names_architectures_and_published_aps(capsys):
    from segmentoly.cli import main as segmentoly_main

    assert segmentoly_main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("mask_rcnn_resnet50_fpn_2x "))
    assert line.split()[1:] == ["mask_rcnn", "detectron", "resnet50_fpn", "38.6", "34.5"]
    assert "maskrcnn_benchmark/mask_rcnn_resnext101_32x8d_fpn_1x" in out
    assert "resnet50_gn " in out and "(not default)" in out
