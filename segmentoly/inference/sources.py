"""Where frames come from: an image file, a folder of images, a video file or a camera.

Every source is an iterable of ``(name, frame)`` pairs, ``frame`` being a BGR ``uint8`` ``[H, W, 3]`` array
whatever the file held (grayscale, 16-bit, with alpha), so that the model and the drawing code see one format.
Problems the user must fix before anything can run (a missing path, a camera that does not exist) raise
:class:`SourceError` when the source is opened, before any model is loaded; a bad file inside a folder is only
reported (:attr:`FrameSource.skipped`), so that one corrupt image does not end a run over thousands.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
"""File extensions (lower case) that an image folder is searched for."""


class SourceError(ValueError):
    """An input that cannot be read: the message names it and says why, ready to show to the user."""


class FrameSource:
    """Base of the sources: iterate for ``(name, frame)``; use as a context manager to release it.

    Attributes:
        description: what the source reads, for messages (``"folder photos/"``, ``"camera 0"``).
        fps: frames per second of a video, when the container says; ``None`` for images and unknown rates.
        frame_count: how many frames iteration will yield at most, when known (for progress bars).
        skipped: ``(path, reason)`` of every input that was passed over, for the caller to report at the end.
    """

    description: str = ""
    fps: float | None = None
    frame_count: int | None = None

    def __init__(self) -> None:
        self.skipped: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; iteration ends. Safe to call more than once."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def as_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """``image`` as a contiguous ``[H, W, 3]`` BGR ``uint8`` array (no copy when it already is one).

    Grayscale is replicated into three channels, alpha is dropped, 16-bit data keeps its top 8 bits, and
    floating-point data is read as 0..1 when it stays within that range, else as 0..255.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise ValueError(f"expected a grayscale, BGR or BGRA image, got an array of shape {image.shape}")
    image = _to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 2:  # grayscale + alpha
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        finite = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        return np.clip(np.rint(finite * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    raise ValueError(f"cannot convert an image of dtype {image.dtype} to uint8")


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file as BGR ``uint8``; raises :class:`SourceError` saying why when it cannot."""
    image, problem = _decode_image(Path(path))
    if image is None:
        raise SourceError(f"{problem}: {path}")
    return image


def _decode_image(path: Path) -> tuple[np.ndarray | None, str]:
    """The image, or ``None`` and what went wrong."""
    try:
        # Through numpy rather than cv2.imread, which cannot open non-ASCII paths on Windows and cannot say
        # whether a failure was an unreadable file or undecodable data.
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        return None, f"cannot read image file ({error.strerror or error})"
    if data.size == 0:
        return None, "cannot decode image file (the file is empty)"
    # IMREAD_COLOR already gives 3-channel 8-bit data (and applies EXIF orientation); as_bgr_uint8 is a guard.
    # OpenCV's own warnings about broken files are silenced: the skipped-file report says it better.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if image is None:
        return None, "cannot decode image file (corrupt, or not a format OpenCV reads)"
    return as_bgr_uint8(image), ""


class ImageSource(FrameSource):
    """One image file, or every image file directly inside a folder, in name order.

    Frames are named by their file name (``"cat.jpg"``). In a folder, files whose extension is not one of
    :data:`IMAGE_EXTENSIONS`, subfolders, and image files that fail to decode are skipped and listed in
    :attr:`skipped`; a single file named explicitly must decode.

    Raises:
        SourceError: the path does not exist, or the folder holds no file with an image extension.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"image path not found: {self.path}")
        self.is_folder = self.path.is_dir()
        if self.is_folder:
            self.description = f"folder {self.path}"
            self.files = []
            self._listing_skips: list[tuple[str, str]] = []
            for entry in sorted(self.path.iterdir(), key=lambda entry: entry.name):
                if entry.is_dir():
                    self._listing_skips.append((str(entry), "a folder (subfolders are not searched)"))
                elif entry.suffix.lower() in IMAGE_EXTENSIONS:
                    self.files.append(entry)
                else:
                    extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
                    self._listing_skips.append((str(entry), f"not an image file (extensions read: {extensions})"))
            if not self.files:
                raise SourceError(
                    f"no image files in folder {self.path} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}; "
                    f"found {len(self._listing_skips)} other entries)"
                )
            self.skipped = list(self._listing_skips)
        else:
            self.description = f"image {self.path}"
            self.files = [self.path]
            self._listing_skips = []
        self.frame_count = len(self.files)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        # Each pass reports afresh, so iterating twice does not list a corrupt file twice.
        self.skipped = list(self._listing_skips)
        for file in self.files:
            if not self.is_folder:
                yield file.name, read_image(file)
                continue
            frame, problem = _decode_image(file)
            if frame is None:
                self.skipped.append((str(file), problem))
                continue
            yield file.name, frame


def parse_camera_id(video: str | int) -> int | None:
    """The camera index ``video`` names (``0``, ``"1"``), or ``None`` when it is a file path or URL."""
    if isinstance(video, int) and not isinstance(video, bool):
        return video
    text = str(video).strip()
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing: the SourceError we raise says it better."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


class VideoSource(FrameSource):
    """Frames of a video file, a stream URL or a camera (``video`` is a number), read with OpenCV.

    The source is opened and its first frame read at construction, so that a wrong path, an unsupported file
    or an absent camera fails before any model is loaded. Frames are named ``"<stem>_000000"`` (or
    ``"camera0_000000"``). A file can be iterated again (it is reopened); a camera just keeps streaming.

    Attributes:
        camera: the camera index, or ``None`` for a file or URL.
        frame_size: ``(width, height)`` of the frames.

    Raises:
        SourceError: the file does not exist, cannot be opened or decoded, or the camera cannot be opened.
    """

    def __init__(self, video: str | int | Path) -> None:
        super().__init__()
        self.camera = parse_camera_id(video) if not isinstance(video, Path) else None
        if self.camera is not None:
            self.path = None
            self.description = f"camera {self.camera}"
            self.stem = f"camera{self.camera}"
        else:
            self.path = str(video)
            is_url = "://" in self.path
            if not is_url and not Path(self.path).is_file():
                what = "is a folder, not a video file" if Path(self.path).is_dir() else "not found"
                raise SourceError(f"video file {what}: {self.path}")
            self.description = f"video {self.path}"
            self.stem = Path(self.path).stem if not is_url else "stream"
        self._capture: cv2.VideoCapture | None = None
        self._first_frame: np.ndarray | None = None
        self._open()
        height, width = self._first_frame.shape[:2]
        self.frame_size = (int(width), int(height))
        self.fps = self._property(cv2.CAP_PROP_FPS, 0.0, 1000.0)
        count = self._property(cv2.CAP_PROP_FRAME_COUNT, 0.0, float("inf"))
        # Cameras report nonsense frame counts (0, -1 or 2**63); only a file's count is meaningful.
        self.frame_count = int(count) if count is not None and self.camera is None else None

    def _open(self) -> None:
        with _quiet_opencv():
            capture = cv2.VideoCapture(self.camera if self.camera is not None else self.path)
            opened = capture.isOpened()
            ok, frame = capture.read() if opened else (False, None)
        if not opened:
            capture.release()
            if self.camera is not None:
                raise SourceError(
                    f"cannot open camera {self.camera}: no such device, or it is in use by another program"
                )
            raise SourceError(f"cannot open video {self.path}: not a video, or a format or codec OpenCV cannot read")
        if not ok or frame is None:
            capture.release()
            raise SourceError(f"{self.description} opened but produced no frames")
        self._capture = capture
        self._first_frame = as_bgr_uint8(frame)

    def _property(self, prop: int, low: float, high: float) -> float | None:
        value = float(self._capture.get(prop)) if self._capture is not None else 0.0
        return value if math.isfinite(value) and low < value < high else None

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.camera is None and self._first_frame is None:
            # A file starts from its beginning on every pass, even after a pass that stopped early.
            self.close()
            self._open()
        if self._capture is None:
            return  # a closed camera
        index = 0
        if self._first_frame is not None:
            frame, self._first_frame = self._first_frame, None
            yield f"{self.stem}_{index:06d}", frame
            index += 1
        while self._capture is not None:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                break
            yield f"{self.stem}_{index:06d}", as_bgr_uint8(frame)
            index += 1
        if self.camera is None:
            self.close()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._first_frame = None


def open_source(images: str | Path | None = None, video: str | int | Path | None = None) -> FrameSource:
    """The source for the demo's ``--images`` or ``--video`` argument; exactly one must be given."""
    if (images is None) == (video is None):
        given = "both were given" if images is not None else "neither was given"
        raise SourceError(
            f"give exactly one input: --images (an image or a folder) or --video (a file or camera id); {given}"
        )
    if images is not None:
        return ImageSource(images)
    return VideoSource(video)
