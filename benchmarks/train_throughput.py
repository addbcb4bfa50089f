"""Training throughput: images per second of full training steps (forward, losses, backward, SGD update).

Runs each architecture on synthetic images of the given size with a handful of instances (boxes and masks),
so the number measures the model and the recipe's target computation, not data loading. On CUDA it also runs
with mixed precision. The published reference for ResNet-50-FPN Mask R-CNN is maskrcnn-benchmark's: 16 images
in 0.4536 s on 8 V100 GPUs, about 4.4 images/s per GPU.

    python benchmarks/train_throughput.py [--device cuda] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from segmentoly.data.structures import Target
from segmentoly.engine.config import SolverConfig
from segmentoly.engine.schedule import make_optimizer
from segmentoly.rcnn.model_zoo import resolve_architecture

MASKRCNN_BENCHMARK_PER_GPU = 16 / 0.4536 / 8  # images/s per V100, R-50-FPN, from its MODEL_ZOO.md


def synthetic_batch(batch: int, height: int, width: int, instances: int, num_classes: int, device):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, height, width, generator=generator) * 255
    targets = []
    for _ in range(batch):
        size = torch.rand(instances, 2, generator=generator) * 0.3 * min(height, width) + 16
        x0 = torch.rand(instances, generator=generator) * (width - size[:, 0])
        y0 = torch.rand(instances, generator=generator) * (height - size[:, 1])
        boxes = torch.stack([x0, y0, x0 + size[:, 0], y0 + size[:, 1]], 1).floor()
        masks = torch.zeros(instances, height, width, dtype=torch.uint8)
        for i, (a, b, c, d) in enumerate(boxes.long().tolist()):
            masks[i, b : d + 1, a : c + 1] = 1
        labels = torch.randint(1, num_classes, (instances,), generator=generator)
        targets.append(Target(boxes, labels, masks, torch.zeros(0, 4)).to(device))
    return images.to(device), targets, [(height, width)] * batch


def throughput(name: str, height: int, width: int, batch: int, steps: int, device: str, amp: bool) -> float:
    torch.manual_seed(0)
    model = resolve_architecture(name)(81).to(device).train()
    optimizer = make_optimizer(model, SolverConfig())
    images, targets, sizes = synthetic_batch(batch, height, width, 6, 81, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step() -> None:
        with torch.autocast("cuda", enabled=amp):
            losses = model(images, targets, sizes)
        scaler.scale(sum(losses.values())).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    configs = [("resnet50_fpn", 800, 1344, 2 if cuda else 1), ("light_fpn", 128, 160, 8)]
    rows = []
    for name, height, width, batch in configs:
        for amp in [False, True] if cuda else [False]:
            ips = throughput(name, height, width, batch, args.steps, args.device, amp)
            rows.append(
                {
                    "model": name,
                    "size": f"{height}x{width}",
                    "batch": batch,
                    "device": args.device,
                    "amp": amp,
                    "images_per_second": ips,
                }
            )
            print(
                f"{name:14s} {height}x{width} batch {batch} {args.device}{' amp' if amp else ''}: {ips:.2f} images/s",
                flush=True,
            )
    print(f"maskrcnn-benchmark R-50-FPN (published, V100): {MASKRCNN_BENCHMARK_PER_GPU:.1f} images/s per GPU")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "rows": rows},
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
