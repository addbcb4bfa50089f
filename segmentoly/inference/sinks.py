"""Where annotated frames go: a window, a folder of images or a video file.

Every sink takes frames with :meth:`FrameSink.write`, which answers whether the user asked to stop, and is a
context manager that closes its window or file. :func:`make_sink` picks one the way the demo's command line
does: a window when there is a screen to show it on, files otherwise, so the demo also works over SSH and in
containers. Sinks that write files show a progress bar and report where the files went
(:attr:`FrameSink.location`).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segmentoly.inference.sources import IMAGE_EXTENSIONS, FrameSource, ImageSource, VideoSource

DEFAULT_OUTPUT_DIR = Path("outputs/demo")
"""Where :func:`make_sink` writes when no output is given and no window can be shown."""

DEFAULT_VIDEO_FPS = 25.0
"""Frame rate of a written video whose source does not report one (some cameras, image sequences)."""

ESCAPE_KEY = 27

# Video container -> the codec OpenCV's stock builds (FFmpeg, or their built-in MJPEG writer) can write.
_VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


class SinkError(OSError):
    """Annotated frames cannot be shown or written; the message says where and why."""


class FrameSink:
    """Base of the sinks.

    Attributes:
        location: the file or folder written to (``None`` for a window), final once the sink is open.
        frames_written: frames taken so far.
        stop_requested: the user asked to stop (a window's Esc key); files never ask.
    """

    location: Path | None = None

    def __init__(self) -> None:
        self.frames_written = 0
        self.stop_requested = False

    def write(self, name: str, frame: np.ndarray) -> bool:
        """Take one BGR ``uint8`` frame named ``name`` (see the sources); returns ``True`` to ask the caller
        to stop."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line for the end of a run, e.g. ``"wrote 12 frames to outputs/demo/clip_annotated.mp4"``."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file or close the window. Safe to call more than once."""

    def __enter__(self) -> FrameSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@functools.lru_cache(maxsize=1)
def display_available() -> bool:
    """Whether an OpenCV window can be opened here; checked once per process and never raises.

    False for builds without a GUI backend (``opencv-python-headless``) and, on Linux and the other Unixes, when
    neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set. Otherwise a window is opened for real, in a child
    process: some GUI backends abort the whole process when the display turns out to be unusable, which an
    exception handler could not catch.
    """
    try:
        if not _opencv_has_gui():
            return False
        if sys.platform not in ("win32", "darwin") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            return False
        probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=20, check=False)
        return result.returncode == 0
    except Exception:  # the contract is a yes/no answer, whatever goes wrong while asking
        return False


def _opencv_has_gui() -> bool:
    """False when OpenCV's build information says ``GUI: NONE``; True when it names a backend or is unclear."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            return value.strip().upper() not in ("NONE", "NO", "")
    return True


class WindowSink(FrameSink):
    """Shows frames in an OpenCV window.

    ``delay_ms`` is how long each frame stays before the next is shown, as in ``cv2.waitKey``: ``0`` waits
    for a key press on every frame (stepping through images), ``1`` plays as fast as frames come. Esc, or
    closing the window, asks to stop.
    """

    def __init__(self, delay_ms: int = 1, title: str = "segmentoly") -> None:
        super().__init__()
        if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0:
            raise ValueError(f"delay_ms: expected a non-negative integer, got {delay_ms!r}")
        self.delay_ms = delay_ms
        self.title = title
        self._shown = False

    def write(self, name: str, frame: np.ndarray) -> bool:
        try:
            cv2.imshow(self.title, frame)
            self._shown = True
            key = cv2.waitKey(self.delay_ms)
            closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error as error:
            raise SinkError(
                "cannot show a window: this OpenCV has no GUI support or there is no display "
                f"({str(error).strip().splitlines()[-1]}); write to files instead (an output path)"
            ) from None
        self.frames_written += 1
        if (key & 0xFF) == ESCAPE_KEY or closed:
            self.stop_requested = True
        return self.stop_requested

    def summary(self) -> str:
        return f"showed {self.frames_written} frames"

    def close(self) -> None:
        if self._shown:
            self._shown = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)  # lets the GUI event loop actually remove the window
            except cv2.error:
                pass


def _progress_bar(total: int | None, location: Path, enabled: bool) -> tqdm:
    # disable=None turns the bar off when stderr is not a terminal (logs, CI), where it would only add noise.
    return tqdm(total=total, desc=f"writing {location}", unit="frame", disable=None if enabled else True)


class ImageFolderSink(FrameSink):
    """Writes each frame as an image file in ``output_dir`` (created as needed), keeping the frame's name.

    A name that already ends in an image extension (``"cat.jpg"``, as image sources name frames) is kept as
    it is, so outputs match inputs one to one; any other name (video frames) gets ``.png``. Existing files of
    the same name are replaced.

    Args:
        total: frames expected, for the progress bar.
        progress: show a progress bar (on a terminal only).
    """

    def __init__(self, output_dir: str | Path, *, total: int | None = None, progress: bool = True) -> None:
        super().__init__()
        self.location = Path(output_dir)
        if self.location.exists() and not self.location.is_dir():
            raise SinkError(f"cannot write images to {self.location}: it is a file, not a folder")
        try:
            self.location.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot create output folder {self.location}: {error.strerror or error}") from None
        self._progress = _progress_bar(total, self.location, progress)

    def write(self, name: str, frame: np.ndarray) -> bool:
        file_name = Path(name).name  # never let a name escape the folder
        if Path(file_name).suffix.lower() not in IMAGE_EXTENSIONS:
            file_name += ".png"
        path = self.location / file_name
        ok, data = cv2.imencode(path.suffix, frame)
        if not ok:
            raise SinkError(f"cannot encode frame {name!r} as {path.suffix}")
        try:
            # Through numpy, as reading does: cv2.imwrite fails silently on non-ASCII paths on Windows.
            data.tofile(path)
        except OSError as error:
            raise SinkError(f"cannot write {path}: {error.strerror or error}") from None
        self.frames_written += 1
        self._progress.update(1)
        return False

    def summary(self) -> str:
        return f"wrote {self.frames_written} images to {self.location}"

    def close(self) -> None:
        self._progress.close()


class VideoSink(FrameSink):
    """Writes frames into a video file: ``.mp4`` (MPEG-4 Part 2, ``mp4v``) or ``.avi`` (Motion JPEG).

    When OpenCV cannot open an mp4 writer (a build without FFmpeg) the video goes to the same path with
    ``.avi`` instead, which OpenCV can always write; :attr:`location` is the file actually written.

    Args:
        path: the video file; its folder is created as needed.
        fps: frame rate stored in the file; :data:`DEFAULT_VIDEO_FPS` when ``None`` or not positive.
        frame_size: ``(width, height)`` every frame must have; when ``None`` it is taken from the first frame
            (and a writer problem surfaces only then).
        total: frames expected, for the progress bar.
        progress: show a progress bar (on a terminal only).

    Raises:
        SinkError: the extension is not ``.mp4``/``.avi``, or no writer could be opened.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | None,
        frame_size: tuple[int, int] | None,
        *,
        total: int | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__()
        self.requested_path = Path(path)
        if self.requested_path.suffix.lower() not in _VIDEO_CODECS:
            raise SinkError(
                f"cannot write video {self.requested_path}: the extension must be one of {', '.join(_VIDEO_CODECS)}"
            )
        self.location = self.requested_path
        self.fps = float(fps) if fps is not None and fps > 0 else DEFAULT_VIDEO_FPS
        self.frame_size: tuple[int, int] | None = None
        self._writer: cv2.VideoWriter | None = None
        self._total = total
        self._show_progress = progress
        self._progress: tqdm | None = None
        if frame_size is not None:
            self._open(frame_size)

    def _open(self, frame_size: tuple[int, int]) -> None:
        width, height = (int(v) for v in frame_size)
        if width <= 0 or height <= 0:
            raise ValueError(f"frame_size: expected a positive (width, height), got {frame_size}")
        try:
            self.requested_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot create folder {self.requested_path.parent}: {error.strerror or error}") from None
        attempts = [self.requested_path]
        if self.requested_path.suffix.lower() != ".avi":
            attempts.append(self.requested_path.with_suffix(".avi"))
        for path in attempts:
            fourcc = cv2.VideoWriter_fourcc(*_VIDEO_CODECS[path.suffix.lower()])
            writer = cv2.VideoWriter(str(path), fourcc, self.fps, (width, height))
            if writer.isOpened():
                self._writer, self.location, self.frame_size = writer, path, (width, height)
                self._progress = _progress_bar(self._total, path, self._show_progress)
                return
            writer.release()
        tried = " or ".join(str(path) for path in attempts)
        raise SinkError(f"cannot write video {tried}: OpenCV could not open a video writer (is the folder writable?)")

    def write(self, name: str, frame: np.ndarray) -> bool:
        if self._writer is None:
            if self.frame_size is not None:
                raise SinkError(f"cannot write frame {name!r}: video {self.location} is already closed")
            self._open((frame.shape[1], frame.shape[0]))
        width, height = self.frame_size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            # OpenCV's writer silently drops frames of another size, leaving a short or empty video.
            raise ValueError(
                f"frame {name!r}: expected a {width}x{height} BGR uint8 frame for video {self.location}, "
                f"got a {frame.dtype} array of shape {frame.shape}"
            )
        self._writer.write(frame)
        self.frames_written += 1
        self._progress.update(1)
        return False

    def summary(self) -> str:
        return f"wrote {self.frames_written} frames to {self.location}"

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._progress is not None:
            self._progress.close()


def default_output(source: FrameSource, output_dir: Path = DEFAULT_OUTPUT_DIR) -> Path:
    """Where a source's annotated frames go when no output is given: ``<dir>/<video stem>_annotated.mp4``
    for a video or camera, ``<dir>/<folder name>/`` for an image folder, ``<dir>/`` for a single image."""
    if isinstance(source, VideoSource):
        return output_dir / f"{source.stem}_annotated.mp4"
    if isinstance(source, ImageSource) and source.is_folder:
        return output_dir / source.path.resolve().name
    return output_dir


def make_sink(
    output: str | Path | None,
    source: FrameSource,
    *,
    delay_ms: int = 1,
    default_dir: str | Path = DEFAULT_OUTPUT_DIR,
    progress: bool = True,
) -> FrameSink:
    """The sink for the demo's output option.

    With no ``output``: a window when one can be shown (:func:`display_available`), else files at
    :func:`default_output`. With an ``output``: for a video or camera source, a video file (``.mp4`` or
    ``.avi``); for image sources, a folder.

    Raises:
        SinkError: the output does not suit the source, or would overwrite the input.
    """
    if output is None:
        if display_available():
            return WindowSink(delay_ms)
        output = default_output(source, Path(default_dir))
    output = Path(output)
    total = source.frame_count
    if isinstance(source, VideoSource):
        if output.suffix.lower() not in _VIDEO_CODECS:
            raise SinkError(
                f"output for {source.description} must be a video file ending in "
                f"{' or '.join(_VIDEO_CODECS)}, got {output}"
            )
        if source.path is not None and output.resolve() == Path(source.path).resolve():
            raise SinkError(f"output {output} is the input video; choose another file name")
        return VideoSink(output, source.fps, source.frame_size, total=total, progress=progress)
    if output.suffix.lower() in IMAGE_EXTENSIONS or output.suffix.lower() in _VIDEO_CODECS:
        raise SinkError(f"output for {source.description} must be a folder, got what looks like a file: {output}")
    if isinstance(source, ImageSource):
        input_dir = source.path if source.is_folder else source.path.parent
        if output.resolve() == input_dir.resolve():
            raise SinkError(f"output folder {output} holds the input images, which would be overwritten")
    return ImageFolderSink(output, total=total, progress=progress)
