"""The training loop: one process or many (``torchrun``), gradient accumulation, mixed precision on CUDA,
checkpoints with exact resume, evaluation, and progress on the console and in TensorBoard."""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from segmentoly.config import merge, save_yaml, to_dict
from segmentoly.data.batching import AccumulationBatchSampler, collate
from segmentoly.data.coco import CocoDataset
from segmentoly.data.splits import DATASET_SPLITS, dataset_paths
from segmentoly.data.transforms import Compose, RandomHorizontalFlip, RandomResize, parse_resize
from segmentoly.engine import distributed
from segmentoly.engine.checkpointer import (
    latest_checkpoint,
    read_training_checkpoint,
    restore_rng_state,
    rng_state,
    save_training_checkpoint,
)
from segmentoly.engine.config import TrainConfig
from segmentoly.engine.metrics import MetricLogger
from segmentoly.engine.schedule import learning_rate, make_optimizer
from segmentoly.rcnn.model_zoo import ZooModel, resolve_architecture
from segmentoly.weights.checkpoint import CheckpointError, read_checkpoint

logger = logging.getLogger("segmentoly.train")

#: Layers whose shape depends on the class count: left at their initialisation when fine-tuning to another one.
CLASS_SPECIFIC = ("box_predictor.cls_score.", "box_predictor.bbox_pred.", "mask_predictor.logits.")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint written before it is intact."""


def sampling_generator(seed: int, step: int, slot: int) -> torch.Generator:
    """The generator of the anchor and ROI sampling of one micro-batch, from the run's seed, the step and the
    micro-batch's place in the global batch: the same whether that place is another process or another
    accumulation step of this one, and the same after a resume."""
    state = np.random.SeedSequence([seed, step, slot]).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def accumulation_steps(config: TrainConfig, world_size: int) -> int:
    solver = config.solver
    per_step = solver.batch_size_per_gpu * world_size
    if solver.batch_size % per_step:
        raise ValueError(
            f"--bs {solver.batch_size} must be a multiple of --bs_per_gpu {solver.batch_size_per_gpu} times the "
            f"number of processes ({world_size})"
        )
    return solver.batch_size // per_step


def build_model(config: TrainConfig, num_classes: int) -> ZooModel:
    cls = resolve_architecture(config.model)
    model_config = cls.default_config(num_classes)
    if config.model_overrides:
        model_config = merge(model_config, config.model_overrides)
    if config.mean_pixel is not None:
        model_config.pixel_mean = tuple(config.mean_pixel)
    return cls(num_classes, config=model_config)


def load_finetuning_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Start from a checkpoint's weights. With another class count the class-specific layers keep their
    initialisation (and are named in the log); every other weight must fit."""
    weights = read_checkpoint(path)["model"]
    own = model.state_dict()
    skipped = [n for n in weights if n.startswith(CLASS_SPECIFIC) and n in own and weights[n].shape != own[n].shape]
    kept = {n: v for n, v in weights.items() if n not in skipped}
    missing = sorted(set(own) - set(kept) - set(skipped))
    unexpected = sorted(set(kept) - set(own))
    mismatched = sorted(n for n in set(kept) & set(own) if kept[n].shape != own[n].shape)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path}: does not fit {type(model).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"other shapes {mismatched[:5]}"
        )
    model.load_state_dict({**own, **kept})
    if skipped:
        logger.info("fine-tuning from %s: another class count, so %s start from scratch", path, ", ".join(skipped))


def make_datasets(config: TrainConfig) -> tuple[CocoDataset, CocoDataset | None]:
    data = config.data
    transforms = Compose([RandomResize(tuple(data.scales), data.max_size), RandomHorizontalFlip(data.flip)])
    annotations, images = dataset_paths(data.train, data.train_images, data_root=data.data_root)
    if not Path(annotations).is_file() and data.train in DATASET_SPLITS:
        raise FileNotFoundError(
            f"{annotations}: not found; download COCO into {data.data_root} as the README shows, or train on "
            "your own data with --dataset JSON --images FOLDER"
        )
    train_set = CocoDataset(annotations, images, transforms=transforms, training=True)
    val_set = None
    if data.val:
        annotations, images = dataset_paths(data.val, data.val_images, data_root=data.data_root)
        val_set = CocoDataset(annotations, images)
    return train_set, val_set


def evaluate_model(model: ZooModel, dataset: CocoDataset, config: TrainConfig, device: torch.device) -> dict:
    from segmentoly.engine.evaluation import evaluate
    from segmentoly.inference.backends import PyTorchBackend
    from segmentoly.inference.predictor import Predictor

    was_training = model.training
    predictor = Predictor(
        PyTorchBackend(model, device),
        class_names=dataset.class_names,
        pixel_mean=model.config.pixel_mean,
        size_divisor=model.config.size_divisor,
        resize=parse_resize(config.data.test_resize[0], config.data.test_resize[1:]),
    )
    try:
        return evaluate(predictor, dataset, progress=False, max_images=config.max_test_images)
    finally:
        model.train(was_training)


def train(config: TrainConfig, *, resume: bool = False, device: str | None = None) -> dict[str, Any]:
    """Run (or resume) a training; returns the final evaluation metrics (empty without a validation set)."""
    context = distributed.setup(device)
    try:
        return _train(config, context, resume)
    finally:
        distributed.teardown()


def _train(config: TrainConfig, context: distributed.Context, resume: bool) -> dict[str, Any]:
    solver = config.solver
    output_dir = Path(config.output_dir)
    if context.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(config, output_dir / "config.yaml")
    accumulation = accumulation_steps(config, context.world_size)
    torch.manual_seed(config.seed)

    train_set, val_set = make_datasets(config)
    model = build_model(config, train_set.num_classes + 1)
    class_names = list(train_set.class_names)
    preprocessing = {"resize": list(config.data.test_resize)}
    start_step = 0
    state = None
    if resume:
        path = latest_checkpoint(output_dir)
        if path is None:
            logger.info("--resume: no checkpoint in %s yet, starting from the beginning", output_dir)
        else:
            state = read_training_checkpoint(path)
            model.load_state_dict(state["model"])
            start_step = int(state["training"]["iteration"])
            logger.info("resuming from %s at iteration %d", path, start_step)
    if state is None:
        if config.load_ckpt:
            load_finetuning_weights(model, config.load_ckpt)
        if config.load_backbone:
            from segmentoly.weights.backbone import load_backbone

            if not Path(config.load_backbone).is_file():
                raise FileNotFoundError(
                    f"{config.load_backbone}: ImageNet backbone weights not found; `segmentoly download --models "
                    "resnet50` fetches and converts them (see the README), or pass --load_backbone none to train "
                    "from scratch"
                )
            load_backbone(model, config.load_backbone)
    model.to(context.device)
    optimizer = make_optimizer(model, solver)
    use_amp = solver.amp and context.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if state is not None:
        training = state["training"]
        optimizer.load_state_dict(training["optimizer"])
        if use_amp and training.get("scaler"):
            scaler.load_state_dict(training["scaler"])
        restore_rng_state(training["rng"][context.rank])
    network = model
    if context.distributed:
        network = DistributedDataParallel(
            model, device_ids=[context.local_rank] if context.device.type == "cuda" else None
        )

    sampler = AccumulationBatchSampler(
        train_set.aspect_ratios(),
        solver.batch_size_per_gpu,
        accumulation=accumulation,
        seed=config.seed,
        rank=context.rank,
        world_size=context.world_size,
        start_step=start_step,
        num_steps=solver.max_iter,
    )
    # The loader gets its own generator so that creating it does not draw from the global stream, which the
    # anchor and ROI sampling use: a resumed run must continue that stream exactly.
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_sampler=sampler,
        collate_fn=partial(collate, size_divisor=model.config.size_divisor, pad_value=model.config.pixel_mean),
        num_workers=config.data.num_workers,
        pin_memory=context.device.type == "cuda",
        generator=torch.Generator().manual_seed(config.seed),
        persistent_workers=config.data.num_workers > 0,
    )
    metrics = MetricLogger(
        output_dir,
        interval=config.display_interval,
        max_iter=solver.max_iter,
        images_per_iter=solver.batch_size,
        enabled=context.is_main,
    )
    if context.is_main:
        logger.info(
            "training %s on %s: %d images, %d classes, %d process(es) x %d image(s) x %d accumulation step(s) "
            "= %d images per step",
            config.model,
            config.data.train,
            len(train_set),
            train_set.num_classes,
            context.world_size,
            solver.batch_size_per_gpu,
            accumulation,
            solver.batch_size,
        )

    def save(name: str, step: int) -> None:
        training = {
            "iteration": step,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if use_amp else {},
            "config": to_dict(config),
            "rng": distributed.all_gather_objects(rng_state(), context),
        }
        if context.is_main:
            path = save_training_checkpoint(
                output_dir, name, model, class_names=class_names, preprocessing=preprocessing, training=training
            )
            logger.info("saved %s", path)
        distributed.barrier(context)

    model.train()
    batches = iter(loader)
    for step in range(start_step, solver.max_iter):
        lr = learning_rate(step, solver)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_losses: dict[str, float] = defaultdict(float)
        for micro in range(accumulation):
            batch = next(batches).to(context.device, non_blocking=True)
            last = micro == accumulation - 1
            sampling = sampling_generator(config.seed, step, micro * context.world_size + context.rank)
            sync = network.no_sync() if context.distributed and not last else contextlib.nullcontext()
            with sync:
                with torch.autocast("cuda", enabled=use_amp):
                    losses = network(batch.images, batch.targets, batch.image_sizes, sampling)
                loss = sum(losses.values()) / accumulation
                scaler.scale(loss).backward()
            for name, value in losses.items():
                step_losses[name] += float(value.detach()) / accumulation
        if distributed.any_true(not all(math.isfinite(v) for v in step_losses.values()), context):
            values = ", ".join(f"{n} {v:.4g}" for n, v in step_losses.items())
            raise TrainingDiverged(
                f"the loss is not finite at iteration {step + 1} ({values}); stopped without updating the weights. "
                f"The last good checkpoint is {latest_checkpoint(output_dir) or '(none yet)'}; try a lower --lr or "
                "a longer warm-up, and --resume from it"
            )
        if solver.clip_grad_norm > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), solver.clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

        averaged = distributed.average_scalars(dict(step_losses), context)
        metrics.update(step, lr=lr, loss=sum(averaged.values()), **averaged)
        done = step + 1
        if done == solver.max_iter:
            save("model_final.pth", done)
        elif config.checkpoint_interval > 0 and done % config.checkpoint_interval == 0:
            save(f"model_{done:07d}.pth", done)
        if (
            val_set is not None
            and config.test_interval > 0
            and done % config.test_interval == 0
            and done < solver.max_iter
        ):
            _evaluate_and_log(model, val_set, config, context, metrics, done)

    final: dict[str, Any] = {}
    if val_set is not None:
        final = _evaluate_and_log(model, val_set, config, context, metrics, solver.max_iter)
    metrics.close()
    return final


def _evaluate_and_log(
    model: ZooModel,
    dataset: CocoDataset,
    config: TrainConfig,
    context: distributed.Context,
    metrics: MetricLogger,
    step: int,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if context.is_main:
        result = evaluate_model(model, dataset, config, context.device)
        logger.info(
            "iter %d: box AP %.4f, mask AP %.4f on %s (%d images)",
            step,
            result["boxes"]["AP"],
            result["masks"]["AP"],
            config.data.val,
            result["images"],
        )
        metrics.add_metrics(step, result)
        path = Path(config.output_dir) / "metrics" / f"metrics_{step:07d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=2))
    distributed.barrier(context)
    return result
