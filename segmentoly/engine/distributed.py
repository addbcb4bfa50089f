"""One process or many through ``torchrun``: the process group, ranks, and small collective helpers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """Where this process stands among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str | None = None) -> Context:
    """Join the process group ``torchrun`` describes in the environment (NCCL on CUDA, Gloo on the CPU), or
    run alone. Each process uses the GPU of its local rank when CUDA is available."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://")
    return Context(rank, world_size, local_rank, target)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def all_gather_objects(obj: Any, context: Context) -> list[Any]:
    """Every process's ``obj``, in rank order."""
    if not context.distributed:
        return [obj]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, context: Context) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not context.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def any_true(flag: bool, context: Context) -> bool:
    """Whether any process has ``flag`` set (every process must call it)."""
    if not context.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def average_scalars(values: dict[str, float], context: Context) -> dict[str, float]:
    """The mean of each scalar over the processes (for logging)."""
    if not context.distributed or not values:
        return values
    names = sorted(values)
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return {n: v / context.world_size for n, v in zip(names, tensor.tolist())}
