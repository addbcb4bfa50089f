"""Preparing a registry model for use: download, convert, export to ONNX, convert to OpenVINO IR.

Outputs follow the original tool's layout (the seed README's commands use it)::

    <output_dir>/raw/<dataset>/<source>/<name>.pkl|.pth      as published
    <output_dir>/converted/<dataset>/<source>/<name>.pth     segmentoly checkpoint (or backbone file)
    <output_dir>/onnx/<dataset>/<source>/<name>.onnx         Mask R-CNN models only
    <output_dir>/ir/<dataset>/<source>/<name>.xml + .bin     Mask R-CNN models only

e.g. ``data/pretrained_models/converted/coco/detectron/mask_rcnn_resnet50_fpn_2x.pth``. A step whose output
exists and is newer than its input is not redone (``force`` redoes it), so running the tool again after a
failure only does what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from segmentoly.weights.download import DownloadResult, download
from segmentoly.weights.registry import PretrainedModel

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = Path("data/pretrained_models")
STEPS = ("download", "convert", "onnx", "ir")


@dataclass(frozen=True)
class OutputPaths:
    raw: Path
    converted: Path
    onnx: Path | None  # None for backbones
    xml: Path | None

    @property
    def bin(self) -> Path | None:
        return self.xml.with_name(self.xml.name[: -len(".xml")] + ".bin") if self.xml else None


def output_paths(entry: PretrainedModel, output_dir: str | Path = DEFAULT_OUTPUT_DIR) -> OutputPaths:
    """Where each stage of ``entry`` is written (names are built by appending: model names may hold dots)."""
    output_dir = Path(output_dir)
    place = Path(entry.dataset, entry.source)
    exported = entry.kind == "mask_rcnn"
    return OutputPaths(
        raw=output_dir / "raw" / place / entry.file_name,
        converted=output_dir / "converted" / place / f"{entry.name}.pth",
        onnx=output_dir / "onnx" / place / f"{entry.name}.onnx" if exported else None,
        xml=output_dir / "ir" / place / f"{entry.name}.xml" if exported else None,
    )


@dataclass
class Outcome:
    """What happened to one model: a word per step, and the error that stopped it, if any."""

    entry: PretrainedModel
    paths: OutputPaths
    steps: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _up_to_date(outputs: list[Path], inputs: list[Path]) -> bool:
    if not all(p.is_file() for p in outputs):
        return False
    newest_input = max(p.stat().st_mtime for p in inputs)
    return min(p.stat().st_mtime for p in outputs) >= newest_input


def prepare(
    entry: PretrainedModel,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    *,
    raw_path: str | Path | None = None,
    converted_path: str | Path | None = None,
    onnx: bool = True,
    ir: bool = True,
    fp16: bool = False,
    force: bool = False,
    progress: bool = True,
    report: Callable[[str], None] = lambda message: None,
) -> Outcome:
    """Run the steps for one model; a failure is recorded in the outcome (with the step it happened in),
    not raised, so that a caller can go on with other models.

    ``raw_path`` converts a file the user already has instead of downloading, ``converted_path`` writes the
    converted file elsewhere than under ``output_dir``. ``onnx=False`` skips both
    export steps; ``ir=False`` only the IR. ``fp16`` compresses the IR's weights (and always rewrites it).
    """
    paths = output_paths(entry, output_dir)
    if converted_path is not None:
        paths = replace(paths, converted=Path(converted_path))
    outcome = Outcome(entry, paths)
    step = "download"
    try:
        if raw_path is not None:
            raw = Path(raw_path)
            if not raw.is_file():
                raise FileNotFoundError(f"{raw}: file not found")
            outcome.steps[step] = "local file"
        else:
            raw = paths.raw
            report(f"downloading {entry.url}")
            result: DownloadResult = download(
                entry.url,
                raw,
                expected_size=entry.size,
                md5=entry.md5,
                sha256=entry.sha256,
                progress=progress,
                description=entry.name,
            )
            outcome.steps[step] = result.describe()

        step = "convert"
        if force or not _up_to_date([paths.converted], [raw]):
            from segmentoly.weights.convert import convert_entry

            report(f"converting {raw} -> {paths.converted}")
            convert_entry(entry, raw, paths.converted)
            outcome.steps[step] = "converted"
        else:
            outcome.steps[step] = "up to date"

        if entry.kind != "mask_rcnn":
            return outcome
        step = "onnx"
        if not onnx:
            outcome.steps["onnx"] = outcome.steps["ir"] = "skipped"
            return outcome
        if force or not _up_to_date([paths.onnx], [paths.converted]):
            report(f"exporting {paths.onnx}")
            _export_onnx(paths.converted, paths.onnx)
            outcome.steps[step] = "exported"
        else:
            outcome.steps[step] = "up to date"

        step = "ir"
        if not ir:
            outcome.steps[step] = "skipped"
        elif fp16 or force or not _up_to_date([paths.xml, paths.bin], [paths.onnx]):
            from segmentoly.export import convert_to_ir

            report(f"converting to OpenVINO IR {paths.xml}")
            convert_to_ir(paths.onnx, paths.xml, compress_to_fp16=fp16)
            outcome.steps[step] = "FP16" if fp16 else "FP32"
        else:
            outcome.steps[step] = "up to date"
    except KeyboardInterrupt:
        raise
    except Exception as error:  # one model's failure must not stop the others; the message says what and why
        logger.debug("%s failed", entry.key, exc_info=True)
        outcome.steps[step] = "FAILED"
        outcome.error = f"{step}: {error}"
    return outcome


def _export_onnx(checkpoint: Path, onnx_path: Path) -> None:
    from segmentoly.export import export_onnx, model_metadata
    from segmentoly.weights.checkpoint import build_model, read_checkpoint

    state = read_checkpoint(checkpoint)
    model = build_model(state, source=str(checkpoint)).eval()
    metadata = model_metadata(model, list(state.get("class_names") or []), state.get("preprocessing") or {})
    temporary = onnx_path.with_name(f".{onnx_path.name}.tmp.onnx")
    try:
        export_onnx(model, temporary, metadata=metadata)
        temporary.replace(onnx_path)
    finally:
        temporary.unlink(missing_ok=True)


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain-text table: one row per model, one column per step, and the error of each failed model."""
    header = ["model", *STEPS, "result"]
    rows = [[o.entry.key, *(o.steps.get(s, "-") for s in STEPS), "ok" if o.ok else "FAILED"] for o in outcomes]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [f"{o.entry.key}: {o.error}" for o in outcomes if not o.ok]
    if failures:
        lines += ["", "failures:", *(f"  {line}" for line in failures)]
    return "\n".join(lines)
