"""Training: the schedule, exact resume, torchrun equivalence, divergence handling, logs."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segmentoly.config import apply_overrides
from segmentoly.data.synthetic import generate
from segmentoly.engine.checkpointer import latest_checkpoint
from segmentoly.engine.config import SolverConfig, TrainConfig
from segmentoly.engine.schedule import learning_rate, make_optimizer
from segmentoly.engine.trainer import TrainingDiverged, train
from segmentoly.rcnn.model_zoo import ARCHITECTURES
from segmentoly.weights.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    train_json, train_images = generate(
        folder / "train", 24, seed=5, image_size=(64, 96), max_objects=3, object_size=(16, 0.6)
    )
    return train_json, train_images


def tiny_config(data, output_dir, **solver):
    train_json, train_images = data
    config = TrainConfig(
        model="light_fpn", output_dir=str(output_dir), display_interval=1, checkpoint_interval=0, load_backbone=None
    )
    return apply_overrides(
        config,
        [
            f"data.train={train_json}",
            f"data.train_images={train_images}",
            "data.val=null",
            "data.num_workers=0",
            "data.scales=[64, 96]",
            "data.max_size=96",
            "solver.base_lr=0.01",
            "solver.warmup_iters=2",
            "solver.steps=[4]",
            "model_overrides.box_head.batch_size_per_image=32",
            *(f"solver.{key}={value}" for key, value in solver.items()),
        ],
    )


def weights(path):
    return read_checkpoint(path)["model"]


def test_learning_rate_schedule_hand_computed():
    solver = SolverConfig(base_lr=0.02, warmup_iters=100, warmup_factor=1 / 3, steps=(300, 400), gamma=0.1)
    assert learning_rate(0, solver) == pytest.approx(0.02 / 3)
    assert learning_rate(50, solver) == pytest.approx(0.02 * (1 / 3 * 0.5 + 0.5))
    assert learning_rate(100, solver) == pytest.approx(0.02)
    assert learning_rate(299, solver) == pytest.approx(0.02)
    assert learning_rate(300, solver) == pytest.approx(0.002)
    assert learning_rate(450, solver) == pytest.approx(0.0002)
    constant = SolverConfig(base_lr=0.02, warmup_iters=100, warmup_factor=0.1, warmup_method="constant")
    assert learning_rate(99, constant) == pytest.approx(0.002) and learning_rate(100, constant) == 0.02


def test_no_weight_decay_on_biases_and_norms():
    model = ARCHITECTURES["resnet50_fpn_gn"](3)
    decay, no_decay = make_optimizer(model, SolverConfig()).param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith(".weight") and ".norm" not in names[id(p)] for p in decay["params"])
    assert any(names[id(p)].endswith("norm.weight") for p in no_decay["params"])
    assert all(p.requires_grad for group in (decay, no_decay) for p in group["params"])


def test_resume_continues_exactly(tiny_data, tmp_path):
    # Six steps in one run, and three + resume + three, give bit-identical weights.
    straight = tiny_config(tiny_data, tmp_path / "straight", batch_size=2, batch_size_per_gpu=1, max_iter=6)
    train(straight, device="cpu")
    first_half = tiny_config(tiny_data, tmp_path / "resumed", batch_size=2, batch_size_per_gpu=1, max_iter=3)
    train(first_half, device="cpu")
    second_half = apply_overrides(first_half, ["solver.max_iter=6"])
    train(second_half, resume=True, device="cpu")
    expected = weights(tmp_path / "straight" / "model_final.pth")
    actual = weights(tmp_path / "resumed" / "model_final.pth")
    assert read_checkpoint(tmp_path / "resumed" / "model_final.pth")["training"]["iteration"] == 6
    for name, value in expected.items():
        assert torch.equal(actual[name], value), name


def test_torchrun_matches_one_process_with_the_same_effective_batch(tiny_data, tmp_path):
    # Two processes of one image each against one process accumulating two images: the same data, the same
    # gradient average, so the same weights up to float summation order.
    common = [
        "--model",
        "light_fpn",
        "--dataset",
        str(tiny_data[0]),
        "--images",
        str(tiny_data[1]),
        "--val_dataset",
        "none",
        "--nw",
        "0",
        "--bs",
        "2",
        "--bs_per_gpu",
        "1",
        "--max_iter",
        "4",
        "--warmup_iters",
        "2",
        "--drop_lr",
        "3",
        "--lr",
        "0.01",
        "--scales",
        "64",
        "96",
        "--max_image_size",
        "96",
        "--checkpoint_interval",
        "0",
        "--load_backbone",
        "none",
        "--set",
        "model_overrides.box_head.batch_size_per_image=32",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train.py"), *common, "--output_dir", str(tmp_path / "single")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    assert "1 process(es) x 1 image(s) x 2 accumulation step(s)" in single.stderr
    multi = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(ROOT / "tools" / "train.py"),
            *common,
            "--output_dir",
            str(tmp_path / "multi"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert multi.returncode == 0, multi.stderr[-3000:]
    assert "2 process(es) x 1 image(s) x 1 accumulation step(s)" in multi.stderr
    expected = weights(tmp_path / "single" / "model_final.pth")
    actual = weights(tmp_path / "multi" / "model_final.pth")
    moved = 0
    initial = ARCHITECTURES["light_fpn"](len(read_checkpoint(tmp_path / "single" / "model_final.pth")["class_names"]))
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=1e-4, atol=1e-5, msg=name)
        moved += int(not torch.equal(value, initial.state_dict()[name]) and value.is_floating_point())
    assert moved > 50  # the weights did change during training


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path, monkeypatch):
    import segmentoly.rcnn.training as training

    original = training.mask_rcnn_losses
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        losses = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:
            losses["loss_box"] = losses["loss_box"] * math.nan
        return losses

    monkeypatch.setattr(training, "mask_rcnn_losses", poisoned)
    config = tiny_config(tiny_data, tmp_path / "run", batch_size=1, batch_size_per_gpu=1, max_iter=6)
    config = apply_overrides(config, ["checkpoint_interval=2"])
    with pytest.raises(TrainingDiverged, match=r"loss is not finite at iteration 4 .*loss_box nan.*model_0000002\.pth"):
        train(config, device="cpu")
    assert latest_checkpoint(tmp_path / "run").name == "model_0000002.pth"
    state = read_checkpoint(tmp_path / "run" / "model_0000002.pth")
    assert state["training"]["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (tmp_path / "run" / "model_final.pth").exists()


def test_console_and_tensorboard_logs(tiny_data, tmp_path, caplog):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(tiny_data, tmp_path / "run", batch_size=1, batch_size_per_gpu=1, max_iter=2)
    with caplog.at_level("INFO", logger="segmentoly.train"):
        train(config, device="cpu")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("iter 2/2")]
    assert lines and all(k in lines[0] for k in ("loss_mask", "lr 0.", "images/s", "eta 0:00:00"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/loss_rpn_cls", "train/loss_mask", "train/lr", "train/images_per_second"} <= tags
    assert [e.step for e in events.Scalars("train/lr")] == [1, 2]
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_effective_batch_must_divide(tiny_data, tmp_path):
    config = tiny_config(tiny_data, tmp_path / "run", batch_size=3, batch_size_per_gpu=2, max_iter=1)
    with pytest.raises(ValueError, match="--bs 3 must be a multiple of --bs_per_gpu 2"):
        train(config, device="cpu")


def test_small_model_learns_from_scratch(tmp_path_factory):
    # The small architecture, from random weights, on a synthetic shape set: about four minutes on two CPU
    # cores, then the COCO mask AP of the held-out split (pycocotools) must reach 0.5.
    folder = tmp_path_factory.mktemp("shapes")
    options = dict(
        image_size=(96, 128), max_objects=6, object_size=(16, 0.6), classes=("circle", "rectangle", "triangle")
    )
    train_json, train_images = generate(folder / "train", 600, seed=1, split_name="train", **options)
    val_json, val_images = generate(folder / "val", 100, seed=2, split_name="val", **options)
    config = apply_overrides(
        TrainConfig(
            model="light_fpn", output_dir=str(folder / "run"), display_interval=100, checkpoint_interval=0,
            load_backbone=None,
        ),
        [
            f"data.train={train_json}",
            f"data.train_images={train_images}",
            f"data.val={val_json}",
            f"data.val_images={val_images}",
            "data.num_workers=1",
            "data.scales=[96]",
            "data.max_size=128",
            "data.test_resize=[fit_max, 96, 128]",
            "solver.batch_size=8",
            "solver.batch_size_per_gpu=8",
            "solver.base_lr=0.05",
            "solver.warmup_iters=100",
            "solver.max_iter=1000",
            "solver.steps=[800]",
        ],
    )
    metrics = train(config, device="cpu")
    print(f"box AP {metrics['boxes']['AP']:.3f}, mask AP {metrics['masks']['AP']:.3f}")
    assert metrics["images"] == 100
    assert metrics["masks"]["AP"] >= 0.5
    assert metrics["boxes"]["AP"] >= 0.5


def test_crowd_regions_are_ignored_for_matching():
    # A real COCO image with a crowd region: anchors and proposals mostly inside it are neither positive nor
    # negative, so they are never sampled.
    from segmentoly import ops
    from segmentoly.data.coco import CocoDataset
    from segmentoly.rcnn.anchors import grid_priors
    from segmentoly.rcnn.targets import CROWD_OVERLAP, anchor_targets, intersection_over_area, proposal_targets

    from helpers import COCO_TINY

    if not COCO_TINY.is_dir():
        pytest.skip(f"the shared COCO sample is not at {COCO_TINY}")
    dataset = CocoDataset(COCO_TINY / "annotations" / "instances_val2017.json", COCO_TINY / "val2017", training=True)
    index = next(i for i in range(len(dataset)) if dataset[i].target.crowd_boxes.shape[0])
    target = dataset[index].target
    height, width = dataset[index].size
    anchors = ops.prior_grid_generator(
        grid_priors(16, (32.0, 64.0, 128.0, 256.0, 512.0), (0.5, 1.0, 2.0)),
        torch.zeros(1, 1, -(-height // 16), -(-width // 16)), torch.zeros(1, 3, height, width),
        stride_x=16.0, stride_y=16.0,
    )
    crowded = intersection_over_area(anchors, target.crowd_boxes) > CROWD_OVERLAP
    best_iou = ops.box_iou(anchors, target.boxes, offset=1.0).max(dim=1).values
    ignorable = crowded & (best_iou < 0.3)
    assert ignorable.sum() > 10
    for seed in range(5):
        sampled = anchor_targets(anchors, target.boxes, target.crowd_boxes, (height, width), positive_iou=0.7,
                                 negative_iou=0.3, straddle_threshold=0.0, batch_size=4096, positive_fraction=0.5,
                                 generator=torch.Generator().manual_seed(seed))
        negatives = sampled.indices[sampled.num_positive:]
        assert not ignorable[negatives].any()
    proposals = anchors[crowded][:200]
    picked = proposal_targets(proposals, target.boxes, target.labels, target.crowd_boxes, foreground_iou=0.5,
                              background_iou_low=0.0, batch_size=512, positive_fraction=0.25,
                              regression_weights=(10.0, 10.0, 5.0, 5.0), generator=torch.Generator().manual_seed(0))
    chosen = intersection_over_area(picked.rois, target.crowd_boxes) > CROWD_OVERLAP
    background = picked.labels == 0
    assert not (chosen & background).any()
