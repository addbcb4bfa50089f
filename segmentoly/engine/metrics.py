"""Training progress: smoothed scalars on the console and in TensorBoard."""

from __future__ import annotations

import datetime
import logging
import statistics
import time
from collections import defaultdict, deque
from pathlib import Path

logger = logging.getLogger("segmentoly.train")


class MetricLogger:
    """Keeps recent values of each scalar and writes a line every ``interval`` iterations.

    The console shows medians over the last ``window`` iterations (robust to the odd spike, like Detectron's
    log); TensorBoard gets the same smoothed values. Only the main process writes.
    """

    def __init__(
        self,
        output_dir: str | Path,
        *,
        interval: int,
        max_iter: int,
        images_per_iter: int,
        enabled: bool = True,
        window: int = 20,
    ) -> None:
        self.interval = max(1, interval)
        self.max_iter = max_iter
        self.images_per_iter = images_per_iter
        self.enabled = enabled
        self.values: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))
        self._last_time = time.perf_counter()
        self._last_iter: int | None = None

    def update(self, iteration: int, **scalars: float) -> None:
        for name, value in scalars.items():
            self.values[name].append(float(value))
        if (iteration + 1) % self.interval == 0 or iteration + 1 == self.max_iter:
            self.flush(iteration)

    def flush(self, iteration: int) -> None:
        now = time.perf_counter()
        done = iteration + 1 - (self._last_iter if self._last_iter is not None else iteration + 1 - self.interval)
        seconds_per_iter = (now - self._last_time) / max(done, 1)
        self._last_time, self._last_iter = now, iteration + 1
        smoothed = {name: statistics.median(values) for name, values in self.values.items() if values}
        images_per_second = self.images_per_iter / seconds_per_iter if seconds_per_iter > 0 else 0.0
        eta = datetime.timedelta(seconds=int(seconds_per_iter * (self.max_iter - iteration - 1)))
        if not self.enabled:
            return
        losses = "  ".join(f"{n} {v:.4f}" for n, v in smoothed.items() if n.startswith("loss"))
        lr = smoothed.get("lr", 0.0)
        logger.info(
            "iter %d/%d  %s  lr %.6f  %.1f images/s  eta %s",
            iteration + 1,
            self.max_iter,
            losses,
            lr,
            images_per_second,
            eta,
        )
        for name, value in smoothed.items():
            self.writer.add_scalar(f"train/{name}", value, iteration + 1)
        self.writer.add_scalar("train/images_per_second", images_per_second, iteration + 1)
        self.writer.flush()

    def add_metrics(self, iteration: int, metrics: dict, prefix: str = "val") -> None:
        if self.writer is not None:
            for group in ("boxes", "masks"):
                for name, value in metrics.get(group, {}).items():
                    self.writer.add_scalar(f"{prefix}/{group}/{name}", value, iteration)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
