"""The learning-rate schedule and the optimiser's parameter groups."""

from __future__ import annotations

import bisect

import torch
from torch import nn

from segmentoly.engine.config import SolverConfig


def learning_rate(iteration: int, solver: SolverConfig) -> float:
    """The learning rate of an iteration: warm-up, then ``gamma`` at each of ``steps``.

    A pure function of the iteration, so a resumed run needs no scheduler state. Linear warm-up rises from
    ``warmup_factor * base_lr`` at iteration 0 to ``base_lr`` at ``warmup_iters`` (Detectron's
    ``WarmupMultiStepLR``); constant warm-up stays at ``warmup_factor * base_lr``.
    """
    decay = solver.gamma ** bisect.bisect_right(list(solver.steps), iteration)
    if iteration >= solver.warmup_iters:
        return solver.base_lr * decay
    if solver.warmup_method == "constant":
        factor = solver.warmup_factor
    elif solver.warmup_method == "linear":
        alpha = iteration / solver.warmup_iters
        factor = solver.warmup_factor * (1 - alpha) + alpha
    else:
        raise ValueError(f"warmup_method: expected 'linear' or 'constant', got {solver.warmup_method!r}")
    return solver.base_lr * decay * factor


def make_optimizer(model: nn.Module, solver: SolverConfig) -> torch.optim.SGD:
    """SGD over the trainable parameters; no weight decay on biases and normalisation parameters."""
    decay, no_decay = [], []
    for module in model.modules():
        is_norm = isinstance(module, (nn.GroupNorm, nn.BatchNorm2d, nn.LayerNorm))
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            (no_decay if is_norm or name == "bias" else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": solver.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=solver.base_lr, momentum=solver.momentum)
