"""Batches: padding images into one tensor, and the samplers that choose which images go together.

The training sampler is a pure function of ``(seed, iteration)``: batch ``k`` is computed from them alone, not
from the batches before it, so a run resumed at iteration ``k`` (``start_iteration=k``) gets exactly the batches,
and through :class:`~segmentoly.data.structures.SampleKey` exactly the augmentations, that the interrupted run
would have got. Use it as ``DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from segmentoly.data.structures import Batch, Sample, SampleKey
from segmentoly.data.transforms import padded_size

__all__ = ["AccumulationBatchSampler", "EvaluationSampler", "TrainingBatchSampler", "collate"]

# Domain tags in the seed sequences, so that the epoch shuffles and the per-sample seeds never share a stream
# (numpy's SeedSequence treats [a, b] and [a, b, 0] alike, so lengths alone do not separate them).
_EPOCH_STREAM = 1
_SAMPLE_STREAM = 2


def collate(samples: Sequence[Sample], size_divisor: int = 32, pad_value: float | Sequence[float] = 0.0) -> Batch:
    """Stack samples into a :class:`Batch`, padding the images at the bottom and right.

    The padded height and width are the largest in the batch rounded up to a multiple of ``size_divisor`` (FPN
    models need every level's feature map to halve exactly). Targets are not padded.

    ``pad_value`` (one value or one per BGR channel) fills the padding. It is 0 by default; pass the model's
    pixel mean to make the padding exactly zero after the model subtracts the mean, as in Detectron's blobs and
    in the inference preprocessing (``functools.partial(collate, pad_value=mean)`` as a DataLoader's
    ``collate_fn``).
    """
    if isinstance(size_divisor, bool) or not isinstance(size_divisor, int) or size_divisor < 1:
        raise ValueError(f"collate: size_divisor must be a positive integer, got {size_divisor!r}")
    if len(samples) == 0:
        raise ValueError("collate: no samples to batch")
    for position, sample in enumerate(samples):
        image = sample.image
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"collate: samples[{position}].image must be [3, H, W], got {tuple(image.shape)}")
    sizes = [sample.size for sample in samples]
    padded_height, padded_width = padded_size(max(h for h, _ in sizes), max(w for _, w in sizes), size_divisor)
    first = samples[0].image
    fill = torch.as_tensor(pad_value, dtype=first.dtype, device=first.device).reshape(-1)
    if fill.numel() not in (1, 3):
        raise ValueError(f"collate: pad_value must be one number or three (B, G, R), got {pad_value!r}")
    images = fill.reshape(1, -1, 1, 1).expand(len(samples), 3, padded_height, padded_width).clone()
    for slot, (sample, (height, width)) in enumerate(zip(samples, sizes)):
        images[slot, :, :height, :width] = sample.image
    return Batch(
        images=images,
        image_sizes=sizes,
        targets=[sample.target for sample in samples],
        image_ids=[sample.image_id for sample in samples],
        original_sizes=[tuple(sample.original_size) for sample in samples],
        scales=[tuple(sample.scale) for sample in samples],
    )


def _check_rank(rank: int, world_size: int) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}), got {rank!r}")


class TrainingBatchSampler(torch.utils.data.Sampler):
    """Endless batches of :class:`SampleKey` for one rank, grouped by orientation, deterministic per iteration.

    Each epoch is a permutation of the dataset drawn from ``(seed, epoch)``. With ``group_by_aspect`` the
    permuted indices are split into landscape (``w >= h``) and portrait images, as maskrcnn-benchmark's
    GroupedBatchSampler does, so that the images of a batch pad to little more than their own size. Each group
    is cut into *global* batches of ``batch_size * world_size`` images (an incomplete last one is left out this
    epoch; the next epoch's shuffle leaves out others) and the global batches are shuffled. Rank ``r`` takes
    slots ``r * batch_size ... (r + 1) * batch_size - 1`` of every global batch: the ranks see disjoint images,
    the same number of batches, and in each iteration images of one orientation.

    Every key carries a seed drawn from ``(seed, iteration, global slot)`` for the random transforms.

    Args:
        aspect_ratios: width / height of each dataset image (``CocoDataset.aspect_ratios()``).
        batch_size: images per batch on this rank.
        seed: the seed of the whole stream.
        rank, world_size: this process's place among the distributed processes.
        start_iteration: the first batch to yield; a run resumed after ``k`` batches passes ``k``.
        num_iterations: stop before this iteration (never, by default).
        group_by_aspect: batch landscape and portrait images separately.
        shuffle: shuffle each epoch (off, the epochs repeat the dataset in order, for debugging).

    Iterations count batches drawn from this sampler, so with gradient accumulation over ``n`` batches per
    optimiser step a resumed run passes ``n`` times the steps done.
    """

    def __init__(
        self,
        aspect_ratios: Sequence[float] | np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_iteration: int = 0,
        num_iterations: int | None = None,
        group_by_aspect: bool = True,
        shuffle: bool = True,
    ) -> None:
        _check_rank(rank, world_size)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if isinstance(start_iteration, bool) or not isinstance(start_iteration, int) or start_iteration < 0:
            raise ValueError(f"start_iteration must be a non-negative integer, got {start_iteration!r}")
        ratios = np.asarray(aspect_ratios, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(ratios) & (ratios > 0)):
            raise ValueError("aspect_ratios must be positive finite numbers (width / height)")
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_iteration = start_iteration
        self.num_iterations = num_iterations
        self.shuffle = shuffle
        self._landscape = ratios >= 1.0 if group_by_aspect else np.ones(len(ratios), dtype=bool)

        global_batch = batch_size * world_size
        groups = [int(self._landscape.sum()), int((~self._landscape).sum())]
        self.batches_per_epoch = sum(count // global_batch for count in groups)
        if self.batches_per_epoch == 0:
            detail = f" (landscape {groups[0]}, portrait {groups[1]})" if group_by_aspect else ""
            raise ValueError(
                f"{len(ratios)} images{detail} cannot fill one batch of {batch_size} images on each of "
                f"{world_size} ranks" + (": try group_by_aspect=False" if group_by_aspect else "")
            )
        self._epoch_cache: tuple[int, np.ndarray] | None = None

    def _epoch_batches(self, epoch: int) -> np.ndarray:
        """The global batches of an epoch, ``[batches_per_epoch, batch_size * world_size]`` dataset indices."""
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        count = len(self._landscape)
        global_batch = self.batch_size * self.world_size
        rng = np.random.default_rng([self.seed, _EPOCH_STREAM, epoch])
        order = rng.permutation(count) if self.shuffle else np.arange(count)
        batches = []
        for orientation in (True, False):
            members = order[self._landscape[order] == orientation]
            usable = len(members) // global_batch * global_batch
            batches.append(members[:usable].reshape(-1, global_batch))
        stacked = np.concatenate(batches)
        if self.shuffle:
            stacked = stacked[rng.permutation(len(stacked))]
        self._epoch_cache = (epoch, stacked)
        return stacked

    def batch(self, iteration: int) -> list[SampleKey]:
        """This rank's batch at ``iteration``, computed from the seed and the iteration alone."""
        epoch, position = divmod(iteration, self.batches_per_epoch)
        first_slot = self.rank * self.batch_size
        indices = self._epoch_batches(epoch)[position, first_slot : first_slot + self.batch_size]
        return [
            SampleKey(int(index), _sample_seed(self.seed, iteration, first_slot + j)) for j, index in enumerate(indices)
        ]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        stop = self.num_iterations
        iterations = itertools.count(self.start_iteration) if stop is None else range(self.start_iteration, stop)
        for iteration in iterations:
            yield self.batch(iteration)

    def __len__(self) -> int:
        if self.num_iterations is None:
            raise TypeError("the training batch sampler is endless unless num_iterations is given")
        return max(0, self.num_iterations - self.start_iteration)


def _sample_seed(seed: int, iteration: int, slot: int) -> int:
    return int(np.random.SeedSequence([seed, _SAMPLE_STREAM, iteration, slot]).generate_state(1, np.uint64)[0])


class EvaluationSampler(torch.utils.data.Sampler):
    """Dataset indices in order, optionally this rank's contiguous share of them.

    The shares of the ranks differ in size by at most one and together hold every index exactly once, so
    results gathered from all ranks cover the dataset without duplicates.
    """

    def __init__(self, size: int, *, rank: int = 0, world_size: int = 1) -> None:
        _check_rank(rank, world_size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be a non-negative integer, got {size!r}")
        self.start = size * rank // world_size
        self.stop = size * (rank + 1) // world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


class AccumulationBatchSampler(torch.utils.data.Sampler):
    """The micro-batches of one process for training with gradient accumulation, step after step.

    An optimiser step uses ``batch_size * world_size * accumulation`` images: micro-batch ``j`` of process
    ``rank`` is the batch a :class:`TrainingBatchSampler` of rank ``j * world_size + rank`` among
    ``world_size * accumulation`` yields for that step. One process accumulating ``n`` micro-batches therefore
    sees exactly the images (and augmentations) of ``n`` processes without accumulation, so the effective batch
    alone decides the result, whatever the split.
    """

    def __init__(
        self,
        aspect_ratios: Sequence[float] | np.ndarray,
        batch_size: int,
        *,
        accumulation: int = 1,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        num_steps: int | None = None,
        group_by_aspect: bool = True,
    ) -> None:
        _check_rank(rank, world_size)
        if isinstance(accumulation, bool) or not isinstance(accumulation, int) or accumulation < 1:
            raise ValueError(f"accumulation must be a positive integer, got {accumulation!r}")
        self.samplers = [
            TrainingBatchSampler(
                aspect_ratios,
                batch_size,
                seed=seed,
                rank=micro * world_size + rank,
                world_size=world_size * accumulation,
                group_by_aspect=group_by_aspect,
            )
            for micro in range(accumulation)
        ]
        self.start_step = start_step
        self.num_steps = num_steps

    def __iter__(self) -> Iterator[list[SampleKey]]:
        steps = itertools.count(self.start_step) if self.num_steps is None else range(self.start_step, self.num_steps)
        for step in steps:
            for sampler in self.samplers:
                yield sampler.batch(step)

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError("an endless sampler has no length")
        return max(0, self.num_steps - self.start_step) * len(self.samplers)
