"""collate's padding, and the samplers: deterministic, resumable, sharded, grouped by orientation."""

import itertools

import numpy as np
import pytest
import torch

from segmentoly.data import (
    Batch,
    CocoDataset,
    Compose,
    EvaluationSampler,
    RandomHorizontalFlip,
    RandomResize,
    Sample,
    SampleKey,
    Target,
    TrainingBatchSampler,
    collate,
)
from segmentoly.data.synthetic import generate


def make_sample(height: int, width: int, image_id: int, value: float) -> Sample:
    target = Target.empty(height, width)
    return Sample(torch.full((3, height, width), value), target, image_id, (2 * height, 2 * width), (0.5, 0.5))


def test_collate_pads_to_the_divisor_at_bottom_right():
    samples = [make_sample(50, 70, 1, 1.0), make_sample(65, 33, 2, 2.0)]
    batch = collate(samples, size_divisor=32)
    assert isinstance(batch, Batch) and len(batch) == 2
    assert batch.images.shape == (2, 3, 96, 96)  # max 65 x 70, rounded up to 32
    assert batch.image_sizes == [(50, 70), (65, 33)]
    assert batch.original_sizes == [(100, 140), (130, 66)]
    assert batch.scales == [(0.5, 0.5), (0.5, 0.5)]
    assert batch.image_ids == [1, 2]
    assert torch.equal(batch.images[0, :, :50, :70], samples[0].image)
    assert torch.equal(batch.images[1, :, :65, :33], samples[1].image)
    assert batch.images[0, :, 50:].abs().sum() == 0 and batch.images[0, :, :, 70:].abs().sum() == 0
    assert batch.images[1, :, 65:].abs().sum() == 0 and batch.images[1, :, :, 33:].abs().sum() == 0
    assert batch.targets[1].masks.shape == (0, 65, 33)  # targets are not padded

    assert collate([make_sample(64, 96, 3, 0.0)]).images.shape == (1, 3, 64, 96)  # already a multiple
    mean = (102.98, 115.95, 122.77)
    with_mean = collate(samples, pad_value=mean)
    assert torch.equal(with_mean.images[1, :, :65, :33], samples[1].image)
    for channel, value in enumerate(mean):
        assert (with_mean.images[0, channel, 50:] == torch.tensor(value)).all()
        assert (with_mean.images[0, channel, :, 70:] == torch.tensor(value)).all()
    assert collate(samples, size_divisor=1).images.shape == (2, 3, 65, 70)
    with pytest.raises(ValueError, match="size_divisor must be a positive integer"):
        collate(samples, size_divisor=0)
    with pytest.raises(ValueError, match="no samples"):
        collate([])
    with pytest.raises(ValueError, match="pad_value must be one number or three"):
        collate(samples, pad_value=(1.0, 2.0))


def test_batch_and_target_to_device():
    batch = collate([make_sample(10, 12, 1, 1.0)]).to("cpu")
    assert batch.images.device.type == "cpu" and batch.targets[0].masks.device.type == "cpu"
    moved = batch.to(torch.device("cpu"), non_blocking=True)
    assert moved.image_ids == batch.image_ids and moved.images.dtype == torch.float32
    if torch.cuda.is_available():
        on_gpu = batch.to("cuda")
        assert on_gpu.images.is_cuda and on_gpu.targets[0].boxes.is_cuda


# 23 landscape (two of them square, which counts as landscape) and 14 portrait images, interleaved.
RATIOS = np.random.default_rng(0).permutation([1.5] * 21 + [1.0] * 2 + [0.75] * 14)


def stream(sampler: TrainingBatchSampler, count: int) -> list[list[SampleKey]]:
    return list(itertools.islice(iter(sampler), count))


def test_sampler_is_a_function_of_seed_and_iteration():
    first = stream(TrainingBatchSampler(RATIOS, 4, seed=7), 30)
    assert first == stream(TrainingBatchSampler(RATIOS, 4, seed=7), 30)
    assert first != stream(TrainingBatchSampler(RATIOS, 4, seed=8), 30)
    for k in (1, 5, 9, 13, 27):  # inside the first epoch, on its boundary and in later epochs
        resumed = stream(TrainingBatchSampler(RATIOS, 4, seed=7, start_iteration=k), 30 - k)
        assert resumed == first[k:]
    # Random access agrees with iteration, so a fresh sampler needs no replay to get batch k.
    assert TrainingBatchSampler(RATIOS, 4, seed=7).batch(17) == first[17]


def test_sampler_groups_by_orientation_and_covers_each_epoch():
    sampler = TrainingBatchSampler(RATIOS, 4, seed=1)
    # floor(23 / 4) landscape batches and floor(14 / 4) portrait ones per epoch.
    assert sampler.batches_per_epoch == 5 + 3
    batches = stream(sampler, 3 * sampler.batches_per_epoch)
    for batch in batches:
        assert len(batch) == 4
        orientations = {bool(RATIOS[key.index] >= 1) for key in batch}
        assert len(orientations) == 1
    epochs = [batches[i : i + 8] for i in range(0, 24, 8)]
    for epoch in epochs:
        indices = [key.index for batch in epoch for key in batch]
        assert len(set(indices)) == len(indices) == 32  # no image twice in an epoch
    assert epochs[0] != epochs[1]  # each epoch is shuffled anew
    seeds = [key.seed for batch in batches for key in batch]
    assert len(set(seeds)) == len(seeds)  # each draw of an image gets its own augmentation


def test_sampler_ranks_are_disjoint_and_equally_long():
    world_size, batch_size = 3, 2
    samplers = [TrainingBatchSampler(RATIOS, batch_size, seed=3, rank=rank, world_size=world_size) for rank in range(3)]
    per_epoch = samplers[0].batches_per_epoch
    assert per_epoch == 23 // 6 + 14 // 6 and all(s.batches_per_epoch == per_epoch for s in samplers)
    streams = [stream(sampler, 2 * per_epoch) for sampler in samplers]
    for iteration in range(2 * per_epoch):
        keys = [key for rank_stream in streams for key in rank_stream[iteration]]
        # All ranks train on images of one orientation in a step, each on its own images.
        assert len({bool(RATIOS[key.index] >= 1) for key in keys}) == 1
        assert len({key.index for key in keys}) == world_size * batch_size
    for epoch in range(2):
        span = slice(epoch * per_epoch, (epoch + 1) * per_epoch)
        shards = [{key.index for batch in rank_stream[span] for key in batch} for rank_stream in streams]
        assert not (shards[0] & shards[1]) and not (shards[0] & shards[2]) and not (shards[1] & shards[2])
    resumed = TrainingBatchSampler(RATIOS, batch_size, seed=3, rank=2, world_size=3, start_iteration=4)
    assert stream(resumed, 3) == streams[2][4:7]


def test_sampler_options_and_errors():
    finite = TrainingBatchSampler(RATIOS, 4, start_iteration=3, num_iterations=10)
    assert len(finite) == 7 and len(list(finite)) == 7
    with pytest.raises(TypeError, match="endless"):
        len(TrainingBatchSampler(RATIOS, 4))
    mixed = TrainingBatchSampler(RATIOS, 4, group_by_aspect=False)
    assert mixed.batches_per_epoch == 37 // 4
    ordered = TrainingBatchSampler(RATIOS, 2, shuffle=False, group_by_aspect=False)
    assert [k.index for k in ordered.batch(0) + ordered.batch(1)] == [0, 1, 2, 3]
    with pytest.raises(
        ValueError, match=r"37 images \(landscape 23, portrait 14\) cannot fill one batch of 8 .* 3 ranks"
    ):
        TrainingBatchSampler(RATIOS, 8, world_size=3)
    with pytest.raises(ValueError, match=r"rank must be an integer in \[0, 2\)"):
        TrainingBatchSampler(RATIOS, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="aspect_ratios"):
        TrainingBatchSampler([1.0, 0.0], 1)


def test_sampler_with_a_data_loader_feeds_seeded_samples():
    class Echo(torch.utils.data.Dataset):
        def __len__(self):
            return len(RATIOS)

        def __getitem__(self, key):
            index, seed = key
            return make_sample(8, 8 if RATIOS[index] >= 1 else 4, index, float(seed % 1000))

    sampler = TrainingBatchSampler(RATIOS, 2, seed=5, num_iterations=4)
    loader = torch.utils.data.DataLoader(Echo(), batch_sampler=sampler, collate_fn=collate)
    batches = list(loader)
    assert len(batches) == 4
    for batch, keys in zip(batches, stream(TrainingBatchSampler(RATIOS, 2, seed=5), 4)):
        assert batch.image_ids == [key.index for key in keys]
        assert [float(image[0, 0, 0]) for image in batch.images] == [float(key.seed % 1000) for key in keys]


def test_evaluation_sampler_shards_in_order():
    assert list(EvaluationSampler(5)) == [0, 1, 2, 3, 4]
    shards = [list(EvaluationSampler(10, rank=rank, world_size=3)) for rank in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert [len(EvaluationSampler(10, rank=rank, world_size=3)) for rank in range(3)] == [3, 3, 4]
    assert list(EvaluationSampler(2, rank=3, world_size=4)) == [1]
    assert list(EvaluationSampler(0)) == []


def test_resumed_loading_is_bit_exact_with_worker_processes(tmp_path):
    """The whole pipeline (sampler, seeded augmentation, collate) resumed at iteration 5 in two worker processes
    gives exactly the batches of an uninterrupted run in the main process."""
    annotation_file, image_dir = generate(tmp_path, 12, seed=2, image_size=(64, 96), max_objects=3)
    transforms = Compose([RandomResize((48, 64, 80), 120), RandomHorizontalFlip()])
    dataset = CocoDataset(annotation_file, image_dir, transforms=transforms, training=True)

    def load(start: int, workers: int) -> list[Batch]:
        sampler = TrainingBatchSampler(dataset.aspect_ratios(), 2, seed=9, start_iteration=start, num_iterations=9)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
        return list(loader)

    uninterrupted, resumed = load(0, 0), load(5, 2)
    assert len(resumed) == 4
    assert len({tuple(b.image_sizes) for b in uninterrupted}) > 1  # the augmentation does vary
    for expected, actual in zip(uninterrupted[5:], resumed):
        assert actual.image_ids == expected.image_ids and actual.scales == expected.scales
        assert torch.equal(actual.images, expected.images)
        for a, b in zip(actual.targets, expected.targets):
            assert torch.equal(a.boxes, b.boxes) and torch.equal(a.masks, b.masks) and torch.equal(a.labels, b.labels)
