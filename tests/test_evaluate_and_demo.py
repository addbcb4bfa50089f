"""tools/test.py and tools/demo.py run as a user runs them, on synthetic data and on real COCO images."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segmentoly import Predictor
from segmentoly.assets import BUNDLED_CHECKPOINT, SHAPES, VAL_SPLIT, sample_options, write_samples
from segmentoly.commands.demo import annotate
from segmentoly.data.synthetic import generate, video_frames
from segmentoly.rcnn.model_zoo import ARCHITECTURES
from segmentoly.weights.checkpoint import save_checkpoint

from helpers import COCO_TINY

ROOT = Path(__file__).resolve().parents[1]


def run(tool, *args, cache):
    env = dict(os.environ, SEGMENTOLY_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool), *map(str, args)], capture_output=True, text=True, env=env,
        timeout=900,
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """The bundled model's held-out split, as `make bundled-model` generates it."""
    folder = tmp_path_factory.mktemp("shapes")
    return generate(folder, **VAL_SPLIT, **SHAPES)


def test_bundled_model_ap_on_its_held_out_split_with_both_backends(held_out, cache, tmp_path):
    annotations, images = held_out
    metrics = {}
    for backend in ("pytorch", "openvino"):
        result = run("test.py", "--dataset", annotations, "--images", images, "--ckpt", "bundled", "--nw", 1,
                     "--output_dir", tmp_path / backend, backend, cache=cache)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "masks" in result.stdout and "AP50" in result.stdout
        metrics[backend] = json.loads((tmp_path / backend / "metrics.json").read_text())
        detections = json.loads((tmp_path / backend / "detections.json").read_text())
        assert detections and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(detections[0])
    print({b: (m["boxes"]["AP"], m["masks"]["AP"]) for b, m in metrics.items()})
    assert metrics["pytorch"]["masks"]["AP"] >= 0.7
    for kind in ("boxes", "masks"):
        for name in ("AP", "AP50", "AP75"):
            assert abs(metrics["pytorch"][kind][name] - metrics["openvino"][kind][name]) <= 0.002, (kind, name)


@pytest.fixture(scope="module")
def coco_model(tmp_path_factory):
    """A small model with COCO's 81 classes; random weights, scaled to give detections and masks."""
    if not COCO_TINY.is_dir():
        pytest.skip(f"the shared COCO sample is not at {COCO_TINY}")
    torch.manual_seed(0)
    model = ARCHITECTURES["light_fpn"](81)
    with torch.no_grad():
        model.box_predictor.cls_score.weight.mul_(20.0)
        model.mask_predictor.logits.weight.mul_(1000.0)
    from segmentoly.data.splits import COCO_CLASS_NAMES

    folder = tmp_path_factory.mktemp("coco_model")
    return save_checkpoint(folder / "light_coco.pth", model, class_names=COCO_CLASS_NAMES,
                           preprocessing={"resize": ["fit_max", 320, 512]})


def test_coco_tiny_with_both_backends(coco_model, cache, tmp_path):
    annotations = COCO_TINY / "annotations" / "instances_val2017.json"
    metrics = {}
    for backend in ("pytorch", "openvino"):
        result = run("test.py", "--dataset", annotations, "--images", COCO_TINY / "val2017", "--ckpt", coco_model,
                     "--fit_max", 320, 512, "--nw", 2, "--output_dir", tmp_path / backend, backend,
                     *(["--batch_size", 2] if backend == "pytorch" else []), cache=cache)
        assert result.returncode == 0, result.stderr[-2000:]
        metrics[backend] = json.loads((tmp_path / backend / "metrics.json").read_text())
        assert metrics[backend]["images"] == 80 and metrics[backend]["detections"] > 1000
    for kind in ("boxes", "masks"):
        assert abs(metrics["pytorch"][kind]["AP50"] - metrics["openvino"][kind]["AP50"]) <= 0.002
    demo = run("demo.py", "--images", COCO_TINY / "val2017", "--ckpt", coco_model, "--dataset", "coco_2017_val",
               "--output", tmp_path / "annotated", "--show_boxes", "--show_scores", "-pt", 0.3, "openvino",
               cache=cache)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert len(list((tmp_path / "annotated").iterdir())) == 80
    assert "wrote 80 images" in demo.stdout


def test_demo_on_the_bundled_samples_puts_masks_on_the_objects(cache, tmp_path):
    samples = write_samples(tmp_path / "samples")
    again = write_samples(tmp_path / "again")
    assert [p.read_bytes() for p in samples] == [p.read_bytes() for p in again]  # deterministic
    result = run("demo.py", "--images", tmp_path / "samples", "--ckpt", "bundled", "--output", tmp_path / "out",
                 "--show_scores", "openvino", cache=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.stem for p in outputs] == [p.stem for p in samples]
    artefacts = Path(os.environ.get("SEGMENTOLY_ARTEFACTS", tmp_path))
    artefacts.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(artefacts / "demo_bundled_sample.png"), cv2.imread(str(outputs[0])))

    # The same samples with their ground truth: the detected masks cover the objects.
    annotations, images = generate(tmp_path / "truth", len(samples), seed=2024, split_name="samples",
                                   image_format="jpg", **sample_options())
    from segmentoly.data.coco import CocoDataset

    truth = CocoDataset(annotations, images)
    predictor = Predictor.from_checkpoint(BUNDLED_CHECKPOINT, score_threshold=0.5)
    ious = []
    for index in range(len(truth)):
        masks = truth[index].target.masks.numpy().astype(bool)
        detected = predictor(truth.read_image(index)).masks
        for mask in masks:
            overlaps = [(mask & d).sum() / (mask | d).sum() for d in detected] or [0.0]
            ious.append(max(overlaps))
    assert np.median(ious) >= 0.8 and np.mean(np.array(ious) >= 0.5) >= 0.8, ious


def test_video_in_annotated_video_out_with_stable_ids(cache, tmp_path):
    options = dict(object_size=(32.0, 0.6), classes=SHAPES["classes"], num_objects=3)
    frames = list(video_frames(24, seed=3, **options))
    path = tmp_path / "shapes.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (320, 240))
    for image, _, _ in frames:
        writer.write(image)
    writer.release()
    result = run("demo.py", "--video", path, "--ckpt", "bundled", "--output", tmp_path / "annotated.mp4",
                 "--show_fps", "--show_boxes", "openvino", cache=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    reader = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    count = int(reader.get(cv2.CAP_PROP_FRAME_COUNT))
    size = (int(reader.get(cv2.CAP_PROP_FRAME_WIDTH)), int(reader.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    reader.release()
    assert count == 24 and size == (320, 240)

    # The demo's own loop: each object keeps one track id through the clip.
    predictor = Predictor.from_checkpoint(BUNDLED_CHECKPOINT, score_threshold=0.5)
    named = ((f"frame{i}", image) for i, (image, _, _) in enumerate(frames))
    # An object counts in the frames where at least half of it is in view (the shapes pass over one another).
    full_area = [max(int(visible[obj].sum()) for _, _, visible in frames) for obj in range(3)]
    ids_of_object = [[] for _ in range(3)]
    for (_, _, detections, ids), (_, _, visible) in zip(annotate(named, predictor, track=True), frames):
        for obj, mask in enumerate(visible):
            if mask.sum() < full_area[obj] / 2:
                continue
            overlaps = [(mask & d).sum() / max((mask | d).sum(), 1) for d in detections.masks]
            found = bool(overlaps) and max(overlaps) >= 0.5
            ids_of_object[obj].append(int(ids[int(np.argmax(overlaps))]) if found else None)
    for ids in ids_of_object:
        assert len(ids) >= 12 and None not in ids and len(set(ids)) == 1, ids_of_object
    assert len({ids[0] for ids in ids_of_object}) == 3


def test_bad_input_gets_one_clear_line(cache, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_samples(folder, count=2)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    result = run("demo.py", "--images", folder, "--ckpt", "bundled", "--output", tmp_path / "out", "pytorch",
                 cache=cache)
    assert result.returncode == 0, result.stderr
    assert "wrote 2 images" in result.stdout and "skipped 2 file(s):" in result.stdout
    assert "notes.txt: not an image file" in result.stdout and "broken.jpg: cannot decode image file" in result.stdout
    cases = [
        (["--video", "99", "--ckpt", "bundled", "pytorch"], "cannot open camera 99"),
        (["--images", folder, "--ckpt", "bundled", "pytorch", "--model", "resnet50_fpn"],
         "holds weights of architecture 'light_fpn', but --model asks for 'resnet50_fpn'"),
        (["--images", tmp_path / "nowhere", "--ckpt", "bundled", "pytorch"], "nowhere"),
        (["--images", folder, "--ckpt", tmp_path / "missing.pth", "pytorch"], "checkpoint file not found"),
        (["--images", folder, "openvino", "--model", folder / "notes.txt"], "notes.txt"),
    ]
    for arguments, message in cases:
        result = run("demo.py", *arguments, cache=cache)
        assert result.returncode == 2, (arguments, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    wrong = run("test.py", "--dataset", tmp_path / "nowhere.json", "--images", folder, "--ckpt", "bundled", "pytorch",
                cache=cache)
    assert wrong.returncode == 2 and "nowhere.json" in wrong.stderr and "Traceback" not in wrong.stderr
