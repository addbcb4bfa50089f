"""Data: COCO-format datasets, transforms, batching and samplers, and synthetic data.

The flow is ``CocoDataset[key] -> Sample`` (image tensor and :class:`Target`, transformed) then
``collate(samples) -> Batch`` (images padded to a size divisor). For training::

    dataset = CocoDataset(annotations, images, training=True,
                          transforms=Compose([RandomResize((640, 800), 1333), RandomHorizontalFlip()]))
    sampler = TrainingBatchSampler(dataset.aspect_ratios(), batch_size=2, seed=seed, rank=rank,
                                   world_size=world_size, start_iteration=iteration)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=4)

The sampler's keys carry the seed of each sample's augmentation, so the stream is a function of ``(seed,
iteration)`` alone and a resumed run continues it exactly.
"""

from segmentoly.data.batching import EvaluationSampler, TrainingBatchSampler, collate
from segmentoly.data.coco import CocoDataset, DatasetError, ImageInfo, decode_segmentation
from segmentoly.data.splits import COCO_CATEGORIES, COCO_CLASS_NAMES, DATASET_SPLITS, dataset_paths
from segmentoly.data.structures import Batch, Sample, SampleKey, Target
from segmentoly.data.transforms import (
    Compose,
    FitMax,
    FitWindow,
    FixedSize,
    RandomHorizontalFlip,
    RandomResize,
    Resize,
    ResizeMode,
    parse_resize,
    resize_image,
)

__all__ = [
    "COCO_CATEGORIES",
    "COCO_CLASS_NAMES",
    "DATASET_SPLITS",
    "Batch",
    "CocoDataset",
    "Compose",
    "DatasetError",
    "EvaluationSampler",
    "FitMax",
    "FitWindow",
    "FixedSize",
    "ImageInfo",
    "RandomHorizontalFlip",
    "RandomResize",
    "Resize",
    "ResizeMode",
    "Sample",
    "SampleKey",
    "Target",
    "TrainingBatchSampler",
    "collate",
    "dataset_paths",
    "decode_segmentation",
    "parse_resize",
    "resize_image",
]
