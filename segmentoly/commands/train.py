"""``segmentoly train`` / ``tools/train.py``: train a Mask R-CNN, by default Detectron's R-50-FPN on COCO 2017.

With no arguments this starts the reference recipe (DESIGN.md section 5) on ``data/coco``. Every value can
come from a YAML config (``--load_cfg``) and be overridden by flags; ``--save_cfg`` writes the effective config.
For several GPUs or nodes, start it with ``torchrun --nproc_per_node N tools/train.py ...``: ``--bs`` stays the
effective batch, reached by gradient accumulation when ``--bs_per_gpu`` times the processes is smaller.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from segmentoly.commands.common import run_command
from segmentoly.config import apply_overrides, load_yaml, save_yaml
from segmentoly.engine.config import TrainConfig

#: flag -> (config path, type); a flag left out keeps the config's (or the YAML's) value.
FLAGS: dict[str, tuple[str, type]] = {
    "model": ("model", str),
    "dataset": ("data.train", str),
    "images": ("data.train_images", str),
    "val_dataset": ("data.val", str),
    "val_images": ("data.val_images", str),
    "data_root": ("data.data_root", str),
    "bs": ("solver.batch_size", int),
    "bs_per_gpu": ("solver.batch_size_per_gpu", int),
    "nw": ("data.num_workers", int),
    "lr": ("solver.base_lr", float),
    "weight_decay": ("solver.weight_decay", float),
    "momentum": ("solver.momentum", float),
    "warmup_iters": ("solver.warmup_iters", int),
    "warmup_factor": ("solver.warmup_factor", float),
    "warmup_method": ("solver.warmup_method", str),
    "max_iter": ("solver.max_iter", int),
    "gamma": ("solver.gamma", float),
    "max_image_size": ("data.max_size", int),
    "load_ckpt": ("load_ckpt", str),
    "load_backbone": ("load_backbone", str),
    "output_dir": ("output_dir", str),
    "checkpoint_interval": ("checkpoint_interval", int),
    "test_interval": ("test_interval", int),
    "display_interval": ("display_interval", int),
    "seed": ("seed", int),
    "max_test_images": ("max_test_images", int),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load_cfg", type=Path, help="YAML config to start from (flags override it)")
    parser.add_argument("--save_cfg", type=Path, help="write the effective config to this YAML file and exit")
    parser.add_argument("--model", help="architecture: zoo name or class path (default resnet50_fpn)")
    parser.add_argument("--dataset", help="training data: a split name (coco_2017_train) or a COCO json")
    parser.add_argument("--images", help="image folder of a --dataset json")
    parser.add_argument("--val_dataset", help="validation data (split name or COCO json); 'none' for none")
    parser.add_argument("--val_images", help="image folder of a --val_dataset json")
    parser.add_argument("--data_root", help="folder of the named COCO splits (default data/coco)")
    parser.add_argument("--bs", type=int, help="effective batch size: images per optimiser step (default 16)")
    parser.add_argument("--bs_per_gpu", type=int, help="images per forward pass of one process (default 2)")
    parser.add_argument("--nw", type=int, help="data loading worker processes per training process (default 4)")
    parser.add_argument("--lr", type=float, help="base learning rate (default 0.02)")
    parser.add_argument("--weight_decay", type=float, help="weight decay (default 1e-4)")
    parser.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    parser.add_argument("--warmup_iters", type=int, help="warm-up iterations (default 1000)")
    parser.add_argument("--warmup_factor", type=float, help="learning rate factor at the start (default 1/3)")
    parser.add_argument("--warmup_method", choices=("linear", "constant"), help="warm-up shape (default linear)")
    parser.add_argument("--max_iter", type=int, help="optimiser steps (default 90000)")
    parser.add_argument("--drop_lr", type=int, nargs="+", metavar="ITER", help="steps of the learning rate decay")
    parser.add_argument("--gamma", type=float, help="learning rate factor at each --drop_lr step (default 0.1)")
    parser.add_argument("--scales", type=int, nargs="+", help="training shorter sides, one drawn per image")
    parser.add_argument("--max_image_size", type=int, help="longest side of training images (default 1333)")
    parser.add_argument("--mean_pixel", type=float, nargs=3, metavar=("B", "G", "R"), help="BGR mean to subtract")
    parser.add_argument("--load_ckpt", help="start from this segmentoly checkpoint (fine-tuning)")
    parser.add_argument("--load_backbone", help="start the backbone from these ImageNet weights")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output_dir")
    parser.add_argument("--output_dir", help="checkpoints, TensorBoard logs and metrics go here")
    parser.add_argument("--checkpoint_interval", type=int, help="save a checkpoint every N steps")
    parser.add_argument("--test_interval", type=int, help="evaluate on the validation data every N steps")
    parser.add_argument("--display_interval", type=int, help="print progress every N steps")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--max_test_images", type=int, help="evaluate on at most this many validation images")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="any other config value, e.g. solver.clip_grad_norm=10 model_overrides.rpn.min_size=2",
    )


def config_from_arguments(args: argparse.Namespace) -> TrainConfig:
    config = load_yaml(TrainConfig, args.load_cfg) if args.load_cfg else TrainConfig()
    overrides = []
    for flag, (key, _) in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={'null' if str(value).lower() == 'none' else value}")
    if args.drop_lr:
        overrides.append(f"solver.steps={list(args.drop_lr)}")
    if args.scales:
        overrides.append(f"data.scales={list(args.scales)}")
    if args.mean_pixel:
        overrides.append(f"mean_pixel={list(args.mean_pixel)}")
    return apply_overrides(config, [*overrides, *args.set])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="segmentoly train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    config = config_from_arguments(args)
    if args.save_cfg:
        save_yaml(config, args.save_cfg)
        print(f"wrote {args.save_cfg}")
        return 0
    from segmentoly.engine.trainer import train

    train(config, resume=args.resume, device=args.device)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return run_command(main, argv)
