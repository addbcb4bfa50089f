"""COCO-protocol evaluation: detections of a Predictor on a dataset, scored by pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from segmentoly.data.coco import CocoDataset
from segmentoly.inference.predictor import Predictor

logger = logging.getLogger(__name__)

#: The twelve numbers of pycocotools' summary, in its order.
METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = {"bbox": "boxes", "segm": "masks"}


class _Images(torch.utils.data.Dataset):
    """The images of a dataset with their indices, read (in loader workers) without any transform."""

    def __init__(self, dataset: CocoDataset, order: list[int]) -> None:
        self.dataset = dataset
        self.order = order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int) -> tuple[int, Any]:
        index = self.order[position]
        return index, self.dataset.read_image(index)


def detect_dataset(
    predictor: Predictor,
    dataset: CocoDataset,
    *,
    progress: bool = True,
    max_images: int | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
) -> list[dict[str, Any]]:
    """COCO results-format records of every image (boxes as xywh, masks as RLE).

    Images are read by ``num_workers`` loader processes while the model runs, ``batch_size`` at a time; with
    batches, images are visited in order of their network input size, so that a batch holds images of one size.
    """
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    order = list(range(count))
    if batch_size > 1:
        infos = [dataset.image_info(i) for i in order]
        order.sort(key=lambda i: predictor.input_shape(infos[i].height, infos[i].width))
    loader = torch.utils.data.DataLoader(
        _Images(dataset, order), batch_size=batch_size, num_workers=num_workers, collate_fn=list
    )
    records: list[dict[str, Any]] = []
    with tqdm(total=count, desc="evaluating", unit="image", disable=not progress) as bar:
        for batch in loader:
            indices, images = zip(*batch)
            for index, detections in zip(indices, predictor.predict_batch(images)):
                records += detections.to_coco(dataset.image_info(index).id, dataset.label_to_category_id)
            bar.update(len(batch))
    return records


def coco_metrics(annotation_file: str | Path, records: list[dict[str, Any]], image_ids: list[int]) -> dict:
    """pycocotools' box and mask metrics of ``records``, restricted to ``image_ids``.

    Returns ``{"boxes": {"AP": ..., ...}, "masks": {...}, "summary": {"bbox": text, "segm": text}}`` with AP
    values in [0, 1] (-1 where pycocotools has no ground truth to score, as it prints).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(annotation_file))
    metrics: dict[str, Any] = {"summary": {}}
    for iou_type, key in IOU_TYPES.items():
        if not records:
            metrics[key] = dict.fromkeys(METRIC_NAMES, 0.0)
            metrics["summary"][iou_type] = "no detections"
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            detections = ground_truth.loadRes([dict(r) for r in records])
        evaluator = COCOeval(ground_truth, detections, iou_type)
        evaluator.params.imgIds = sorted(image_ids)
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        metrics[key] = {name: float(value) for name, value in zip(METRIC_NAMES, evaluator.stats)}
        metrics["summary"][iou_type] = text.getvalue().strip()
    return metrics


def evaluate(
    predictor: Predictor,
    dataset: CocoDataset,
    *,
    output_dir: str | Path | None = None,
    progress: bool = True,
    max_images: int | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``predictor`` on every image of ``dataset`` and score it with the COCO protocol.

    With ``output_dir``, writes the detections (``detections.json``, COCO results format) and the metrics
    (``metrics.json``: the dataset, ``info``, the counts and the box and mask metrics) there.
    """
    records = detect_dataset(
        predictor, dataset, progress=progress, max_images=max_images, batch_size=batch_size, num_workers=num_workers
    )
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    image_ids = [dataset.image_info(i).id for i in range(count)]
    metrics = coco_metrics(dataset.annotation_file, records, image_ids)
    metrics["images"] = count
    metrics["detections"] = len(records)
    if output_dir is not None:
        output = Path(output_dir)
        output.mkdir(parents=True, exist_ok=True)
        (output / "detections.json").write_text(json.dumps(records))
        summary = {"dataset": str(dataset.annotation_file), **(info or {})}
        summary.update((key, metrics[key]) for key in ("images", "detections", "boxes", "masks"))
        (output / "metrics.json").write_text(json.dumps(summary, indent=2))
    return metrics
