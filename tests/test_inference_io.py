"""Frame sources and sinks on real files: folders with bad entries, odd image formats, videos, cameras."""

import cv2
import numpy as np
import pytest

from segmentoly.inference import sinks
from segmentoly.inference.sinks import (
    ImageFolderSink,
    SinkError,
    VideoSink,
    WindowSink,
    display_available,
    make_sink,
)
from segmentoly.inference.sources import ImageSource, SourceError, VideoSource, open_source


def write_video(path, frames=12, size=(96, 64), fps=10.0):
    """A short mp4 of a square moving across a gradient."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for t in range(frames):
        image = np.tile(np.linspace(0, 200, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
        cv2.rectangle(image, (5 + 4 * t, 10), (25 + 4 * t, 30), (0, 0, 255), -1)
        writer.write(image)
    writer.release()
    return path


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "b.png"), np.full((30, 40, 3), 200, np.uint8))
    cv2.imwrite(str(folder / "a.jpg"), np.full((20, 10, 3), 50, np.uint8))
    (folder / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_a_folder_yields_its_images_in_name_order_and_reports_the_rest(image_folder):
    source = open_source(images=str(image_folder))
    frames = list(source)
    assert [name for name, _ in frames] == ["a.jpg", "b.png"]
    assert [frame.shape for _, frame in frames] == [(20, 10, 3), (30, 40, 3)]
    assert all(frame.dtype == np.uint8 for _, frame in frames)
    skipped = dict(source.skipped)
    assert set(skipped) == {str(image_folder / "c_corrupt.jpg"), str(image_folder / "notes.txt")}
    assert "cannot decode" in skipped[str(image_folder / "c_corrupt.jpg")]
    assert "not an image" in skipped[str(image_folder / "notes.txt")]
    # A second pass reports the corrupt file once, not twice.
    list(source)
    assert len(source.skipped) == 2


def test_grayscale_16_bit_and_bgra_images_come_out_as_bgr_uint8(tmp_path):
    gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    bgra = np.zeros((12, 16, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128
    cv2.imwrite(str(tmp_path / "bgra.png"), bgra)
    deep = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)

    frames = dict(ImageSource(tmp_path))
    for frame in frames.values():
        assert frame.dtype == np.uint8 and frame.shape == (12, 16, 3)
    np.testing.assert_array_equal(frames["gray.png"], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(frames["bgra.png"], bgra[..., :3])
    np.testing.assert_allclose(frames["deep.png"][..., 0], deep / 256.0, atol=1)


def test_a_single_image_file(tmp_path):
    path = tmp_path / "one.bmp"
    cv2.imwrite(str(path), np.full((8, 9, 3), 7, np.uint8))
    names = [name for name, _ in open_source(images=path)]
    assert names == ["one.bmp"]
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(SourceError, match="cannot decode image file.*broken.png"):
        list(ImageSource(corrupt))  # named explicitly, so it is an error, not a skip


def test_missing_paths_and_empty_folders_raise_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="image path not found: .*nowhere"):
        open_source(images=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("")
    with pytest.raises(SourceError, match="no image files in folder .*empty"):
        open_source(images=tmp_path / "empty")
    with pytest.raises(SourceError, match="exactly one"):
        open_source()
    with pytest.raises(SourceError, match="exactly one"):
        open_source(images="a", video="0")


def test_a_video_file_is_read_with_its_frame_count_size_and_rate(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=12, size=(96, 64), fps=10.0)
    with open_source(video=str(path)) as source:
        assert isinstance(source, VideoSource)
        assert source.frame_count == 12 and source.frame_size == (96, 64) and source.fps == pytest.approx(10.0)
        frames = list(source)
    assert len(frames) == 12
    assert frames[0][0] == "clip_000000" and frames[-1][0] == "clip_000011"
    assert all(frame.shape == (64, 96, 3) and frame.dtype == np.uint8 for _, frame in frames)
    # The red square moves right; the decoded frames show it (lossy, so compare roughly).
    assert frames[0][1][20, 15, 2] > 150 and frames[-1][1][20, 15, 2] < 150
    # A file can be read again.
    assert len(list(source)) == 12


def test_missing_files_unreadable_videos_and_absent_cameras_raise_source_errors(tmp_path):
    with pytest.raises(SourceError, match="video file not found: .*missing.mp4"):
        open_source(video=str(tmp_path / "missing.mp4"))
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(SourceError, match="cannot open video .*fake.mp4"):
        VideoSource(fake)
    with pytest.raises(SourceError, match="cannot open camera 99"):
        open_source(video="99")


def test_video_sink_writes_a_video_that_reads_back(tmp_path):
    source = VideoSource(write_video(tmp_path / "in.mp4", frames=12, size=(96, 64)))
    with VideoSink(tmp_path / "out" / "annotated.mp4", source.fps, source.frame_size) as sink:
        for name, frame in source:
            assert sink.write(name, 255 - frame) is False
    assert sink.location == tmp_path / "out" / "annotated.mp4" and sink.frames_written == 12
    assert "wrote 12 frames to" in sink.summary()
    back = VideoSource(sink.location)
    assert back.frame_count == 12 and back.frame_size == (96, 64) and len(list(back)) == 12


def test_video_sink_rejects_frames_of_another_size_and_unknown_extensions(tmp_path):
    with VideoSink(tmp_path / "v.avi", None, (32, 24)) as sink:
        assert sink.fps == sinks.DEFAULT_VIDEO_FPS
        with pytest.raises(ValueError, match="expected a 32x24 BGR uint8 frame"):
            sink.write("x", np.zeros((24, 33, 3), np.uint8))
    with pytest.raises(SinkError, match="extension must be one of"):
        VideoSink(tmp_path / "v.mkv", 10, (32, 24))


def test_video_sink_falls_back_to_avi_when_mp4_cannot_be_written(tmp_path, monkeypatch):
    real_writer = cv2.VideoWriter

    def no_mp4(path, fourcc, fps, size):
        if path.endswith(".mp4"):
            return real_writer()  # an unopened writer, as a build without FFmpeg gives
        return real_writer(path, fourcc, fps, size)

    monkeypatch.setattr(cv2, "VideoWriter", no_mp4)
    with VideoSink(tmp_path / "clip.mp4", 10, (32, 24)) as sink:
        sink.write("f", np.zeros((24, 32, 3), np.uint8))
    assert sink.location == tmp_path / "clip.avi" and sink.location.stat().st_size > 0
    monkeypatch.setattr(cv2, "VideoWriter", lambda *args: real_writer())
    with pytest.raises(SinkError, match="cannot write video .*clip.mp4 or .*clip.avi"):
        VideoSink(tmp_path / "clip.mp4", 10, (32, 24))


def test_image_folder_sink_keeps_names_and_writes_video_frames_as_png(tmp_path, image_folder):
    with ImageFolderSink(tmp_path / "out" / "nested") as sink:
        for name, frame in ImageSource(image_folder):
            sink.write(name, frame)
        sink.write("clip_000003", np.zeros((5, 6, 3), np.uint8))
        sink.write("../escape.png", np.zeros((5, 6, 3), np.uint8))
    written = sorted(path.name for path in sink.location.iterdir())
    assert written == ["a.jpg", "b.png", "clip_000003.png", "escape.png"]
    assert cv2.imread(str(sink.location / "b.png")).shape == (30, 40, 3)
    assert sink.summary() == f"wrote 4 images to {tmp_path / 'out' / 'nested'}"
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SinkError, match="is a file, not a folder"):
        ImageFolderSink(tmp_path / "a_file")


def test_display_is_not_available_on_a_headless_machine(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    display_available.cache_clear()
    try:
        assert display_available() is False
        # Even an OpenCV that claims a GUI, on a display that cannot be opened, just answers False.
        monkeypatch.setenv("DISPLAY", ":12345")
        monkeypatch.setattr(sinks, "_opencv_has_gui", lambda: True)
        display_available.cache_clear()
        assert display_available() is False
    finally:
        display_available.cache_clear()


def test_window_sink_stops_on_escape_and_explains_a_missing_gui(monkeypatch):
    keys = iter([ord("a"), 27])
    calls = []
    monkeypatch.setattr(cv2, "imshow", lambda title, frame: calls.append(title))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys, -1))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: None)
    with WindowSink(delay_ms=0) as window:
        assert window.write("a", np.zeros((4, 4, 3), np.uint8)) is False
        assert window.write("b", np.zeros((4, 4, 3), np.uint8)) is True
    assert window.stop_requested and calls == ["segmentoly", "segmentoly"]
    monkeypatch.undo()
    if not display_available():
        with pytest.raises(SinkError, match="cannot show a window"):
            WindowSink().write("a", np.zeros((4, 4, 3), np.uint8))


def test_make_sink_defaults_and_explicit_outputs(tmp_path, image_folder, monkeypatch):
    monkeypatch.setattr(sinks, "display_available", lambda: False)
    video = VideoSource(write_video(tmp_path / "street.mp4", frames=3))
    defaults = tmp_path / "outputs" / "demo"
    with make_sink(None, video, default_dir=defaults) as sink:
        assert isinstance(sink, VideoSink) and sink.location == defaults / "street_annotated.mp4"
    with make_sink(None, ImageSource(image_folder), default_dir=defaults) as sink:
        assert isinstance(sink, ImageFolderSink) and sink.location == defaults / "photos"
    with make_sink(tmp_path / "mine.avi", video) as sink:
        assert isinstance(sink, VideoSink) and sink.location == tmp_path / "mine.avi"
    with make_sink(tmp_path / "annotated", ImageSource(image_folder)) as sink:
        assert isinstance(sink, ImageFolderSink) and sink.location == tmp_path / "annotated"

    with pytest.raises(SinkError, match="must be a video file ending in .mp4 or .avi"):
        make_sink(tmp_path / "frames", video)
    with pytest.raises(SinkError, match="must be a folder"):
        make_sink(tmp_path / "x.png", ImageSource(image_folder))
    with pytest.raises(SinkError, match="would be overwritten"):
        make_sink(image_folder, ImageSource(image_folder))
    with pytest.raises(SinkError, match="is the input video"):
        make_sink(tmp_path / "street.mp4", video)

    monkeypatch.setattr(sinks, "display_available", lambda: True)
    assert isinstance(make_sink(None, video, delay_ms=0), WindowSink)
