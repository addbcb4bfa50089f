"""``segmentoly demo`` / ``tools/demo.py``: instance segmentation of images, a folder, a video or a webcam.

Masks, class names (and with the flags scores, boxes and frames per second) are drawn on every frame; in a
video an instance keeps its colour from frame to frame (an IoU tracker). With a display the result shows in a
window (Esc quits); with ``--output``, or without a display, annotated images or an annotated video are
written instead. Files that cannot be read are reported and skipped.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

from segmentoly.commands.common import run_command
from segmentoly.commands.predictor_options import add_predictor_arguments, predictor_from_arguments, print_flops

logger = logging.getLogger("segmentoly.demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="an image file or a folder of images")
    source.add_argument("--video", help="a video file or the number of a camera (0 is the first)")
    parser.add_argument("--output", help="write annotated images to this folder (or the video to this file)")
    parser.add_argument("-pt", "--prob_threshold", type=float, default=0.5, help="show detections above this score")
    parser.add_argument("--show_scores", action="store_true", help="draw scores next to class names")
    parser.add_argument("--show_boxes", action="store_true", help="draw boxes")
    parser.add_argument("--show_fps", action="store_true", help="draw the frame rate")
    parser.add_argument("--delay", type=int, default=1, help="window: milliseconds per frame, 0 waits for a key")
    add_predictor_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segmentoly demo", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def annotate(frames, predictor, *, track: bool, show_boxes=False, show_scores=False, show_fps=False):
    """Detect, track (in videos) and draw: ``(name, annotated frame, detections, track ids)`` per frame."""
    from segmentoly.inference.tracking import IoUTracker
    from segmentoly.inference.visualize import draw_detections, draw_fps

    tracker = IoUTracker() if track else None
    frame_times: list[float] = []
    for name, frame in frames:
        start = time.perf_counter()
        detections = predictor(frame)
        ids = tracker.update(detections) if tracker is not None else None
        frame_times = (frame_times + [time.perf_counter() - start])[-30:]
        annotated = draw_detections(frame, detections, show_boxes=show_boxes, show_scores=show_scores, instance_ids=ids)
        if show_fps:
            draw_fps(annotated, len(frame_times) / sum(frame_times))
        yield name, annotated, detections, ids


def run(args: argparse.Namespace) -> int:
    from segmentoly.inference.sinks import make_sink
    from segmentoly.inference.sources import VideoSource, open_source

    # Open the source first: a missing file or camera is reported before a model is loaded.
    with open_source(images=args.images, video=args.video) as source:
        predictor = predictor_from_arguments(args, score_threshold=args.prob_threshold)
        with make_sink(args.output, source, delay_ms=args.delay) as sink:
            frames = annotate(
                source,
                predictor,
                track=isinstance(source, VideoSource),
                show_boxes=args.show_boxes,
                show_scores=args.show_scores,
                show_fps=args.show_fps,
            )
            for index, (name, annotated, _, _) in enumerate(frames):
                if index == 0 and args.backend == "pytorch" and args.show_flops:
                    print_flops(predictor, *predictor.input_shape(*annotated.shape[:2]))
                if sink.write(name, annotated):
                    break
            print(sink.summary())
        if source.skipped:
            print(f"skipped {len(source.skipped)} file(s):")
            for path, reason in source.skipped:
                print(f"  {path}: {reason}")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return run_command(main, argv)
