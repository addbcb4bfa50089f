"""Downloads against a local HTTP server (resume, truncation, checksums, skipping), and the download tool's
per-model error handling."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import yaml
from test_weights_convert import (
    TINY,
    TINY_CONFIG,
    detectron_mask_rcnn,
    distinctive,
    with_momentum,
    write_python2_pickle,
)

from segmentoly.commands.download import main as download_main
from segmentoly.weights.checkpoint import read_checkpoint
from segmentoly.weights.download import DownloadError, download


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` unless told otherwise by ``server.modes[path]``:
    ``ignore_range`` (always the whole file, 200) or ``truncate`` (announce the whole file, send half)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_HEAD(self):
        self.respond(body=False)

    def do_GET(self):
        self.respond(body=True)

    def respond(self, body):
        server = self.server
        server.log.append((self.command, self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        mode = server.modes.get(self.path)
        start, status = 0, 200
        requested = self.headers.get("Range")
        if requested and mode != "ignore_range":
            start = int(requested.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if not body:
            return
        payload = data[start:]
        if mode == "truncate":
            payload = payload[: len(payload) // 2]
            self.close_connection = True
        self.wfile.write(payload)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.modes, httpd.log = {}, {}, []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


CONTENT = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))


def test_full_download(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    result = download(server.url + "/model.pkl", tmp_path / "raw" / "model.pkl", progress=False)
    assert (tmp_path / "raw" / "model.pkl").read_bytes() == CONTENT
    assert not (tmp_path / "raw" / "model.pkl.part").exists()
    assert (result.transferred, result.resumed_from, result.skipped) == (len(CONTENT), 0, False)
    assert server.log == [("GET", "/model.pkl", None)]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    half = len(CONTENT) // 2
    (tmp_path / "model.pkl.part").write_bytes(CONTENT[:half])
    result = download(server.url + "/model.pkl", tmp_path / "model.pkl", progress=False)
    assert (tmp_path / "model.pkl").read_bytes() == CONTENT
    assert server.log == [("GET", "/model.pkl", f"bytes={half}-")]
    assert (result.resumed_from, result.transferred) == (half, len(CONTENT) - half)
    assert "resumed at" in result.describe()


def test_server_that_ignores_range_makes_it_start_again(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    server.modes["/model.pkl"] = "ignore_range"
    (tmp_path / "model.pkl.part").write_bytes(CONTENT[:1000])
    result = download(server.url + "/model.pkl", tmp_path / "model.pkl", progress=False)
    assert (tmp_path / "model.pkl").read_bytes() == CONTENT
    assert (result.resumed_from, result.transferred) == (0, len(CONTENT))


def test_truncated_transfer_is_detected_kept_and_resumed(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    server.modes["/model.pkl"] = "truncate"
    target = tmp_path / "model.pkl"
    with pytest.raises(DownloadError, match=rf"incomplete download, {len(CONTENT) // 2} of {len(CONTENT)} bytes"):
        download(server.url + "/model.pkl", target, progress=False)
    assert not target.exists() and (tmp_path / "model.pkl.part").stat().st_size == len(CONTENT) // 2
    del server.modes["/model.pkl"]
    download(server.url + "/model.pkl", target, progress=False)
    assert target.read_bytes() == CONTENT
    assert server.log[-1] == ("GET", "/model.pkl", f"bytes={len(CONTENT) // 2}-")


def test_a_size_that_differs_from_the_registry_is_an_error(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    with pytest.raises(DownloadError, match=f"offers {len(CONTENT)} bytes, the registry expects {len(CONTENT) + 1}"):
        download(server.url + "/model.pkl", tmp_path / "model.pkl", expected_size=len(CONTENT) + 1, progress=False)
    assert not (tmp_path / "model.pkl").exists()


def test_checksums(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    md5 = hashlib.md5(CONTENT).hexdigest()
    with pytest.raises(DownloadError, match="md5 checksum mismatch"):
        download(server.url + "/model.pkl", tmp_path / "model.pkl", md5="0" * 32, progress=False)
    assert not (tmp_path / "model.pkl").exists() and not (tmp_path / "model.pkl.part").exists()
    sha256 = hashlib.sha256(CONTENT).hexdigest()
    download(server.url + "/model.pkl", tmp_path / "model.pkl", md5=md5, sha256=sha256, progress=False)
    assert (tmp_path / "model.pkl").read_bytes() == CONTENT


def test_complete_files_are_not_downloaded_again(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    target = tmp_path / "model.pkl"
    target.write_bytes(CONTENT)
    result = download(server.url + "/model.pkl", target, expected_size=len(CONTENT), progress=False)
    assert result.skipped and server.log == []
    result = download(server.url + "/model.pkl", target, progress=False)  # size from the server
    assert result.skipped and server.log == [("HEAD", "/model.pkl", None)]
    target.write_bytes(CONTENT[:10])  # a stale, short file is replaced
    result = download(server.url + "/model.pkl", target, progress=False)
    assert not result.skipped and target.read_bytes() == CONTENT


def test_part_file_that_is_already_complete_is_only_renamed(server, tmp_path):
    server.files["/model.pkl"] = CONTENT
    (tmp_path / "model.pkl.part").write_bytes(CONTENT)
    result = download(server.url + "/model.pkl", tmp_path / "model.pkl", progress=False)
    assert result.transferred == 0 and (tmp_path / "model.pkl").read_bytes() == CONTENT
    assert server.log == [("GET", "/model.pkl", f"bytes={len(CONTENT)}-")]


def test_http_errors_and_refused_connections(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing.pkl: HTTP 404"):
        download(server.url + "/missing.pkl", tmp_path / "missing.pkl", progress=False)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(DownloadError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/x.pkl", tmp_path / "x.pkl", progress=False)
    assert not any(tmp_path.iterdir())


def test_file_urls_download_and_resume(tmp_path):
    source = tmp_path / "published.pkl"
    source.write_bytes(CONTENT)
    (tmp_path / "copy.pkl.part").write_bytes(CONTENT[:777])
    result = download(source.as_uri(), tmp_path / "copy.pkl", progress=False)
    assert (tmp_path / "copy.pkl").read_bytes() == CONTENT and result.resumed_from == 777


# ------------------------------------------------------------------------------------------------------------
# The tool: each model on its own, a summary, and the exit status
# ------------------------------------------------------------------------------------------------------------


def tiny_detectron_file(seed=0):
    blobs = detectron_mask_rcnn(**TINY)
    with_momentum(blobs)
    values, _ = distinctive(blobs.shapes)
    return {k: np.array(v) + np.float32(seed) for k, v in values.items()}


def pickled(blobs):
    from io import BytesIO

    from test_weights_convert import Python2Pickler

    buffer = BytesIO()
    Python2Pickler(buffer, protocol=2).dump({"blobs": blobs, "cfg": "MODEL: {}"})
    return buffer.getvalue()


def tiny_registry(path, server, names):
    entry = {
        "kind": "mask_rcnn",
        "format": "detectron_pkl",
        "architecture": "resnet50_fpn",
        "class_names": ["background", "a", "b"],
        "config": TINY_CONFIG,
        "resize": ["fit_max", 320, 512],
    }
    path.write_text(yaml.safe_dump({"models": [{**entry, "name": n, "url": f"{server.url}/{n}.pkl"} for n in names]}))
    return path


def test_tool_reports_each_failure_and_goes_on(server, tmp_path, capsys):
    server.files["/good_a.pkl"] = pickled(tiny_detectron_file(0))
    server.files["/good_b.pkl"] = pickled(tiny_detectron_file(1))
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    server.files["/evil.pkl"] = pickle.dumps({"blobs": {"x": Exploit()}}, protocol=2)
    server.files["/short.pkl"] = pickled(tiny_detectron_file(2))
    server.modes["/short.pkl"] = "truncate"
    zoo = tiny_registry(tmp_path / "zoo.yaml", server, ["good_a", "missing", "evil", "short", "good_b"])
    out = tmp_path / "out"
    argv = ["--model_zoo", str(zoo), "--output_dir", str(out), "--no_onnx", "--no_progress"]
    assert download_main(argv) == 1
    stdout, stderr = capsys.readouterr()
    rows = {line.split()[0]: line for line in stdout.splitlines() if line.startswith("coco/")}
    assert rows["coco/detectron/good_a"].split()[-1] == "ok" and rows["coco/detectron/good_b"].split()[-1] == "ok"
    assert "missing failed: download:" in stderr and "HTTP 404" in stderr
    assert "evil failed: convert:" in stderr and "refused to load" in stderr
    assert "short failed: download:" in stderr and "incomplete download" in stderr
    assert "3 of 5 model(s) failed" in stderr
    converted = out / "converted" / "coco" / "detectron"
    assert sorted(p.name for p in converted.iterdir()) == ["good_a.pth", "good_b.pth"]
    assert read_checkpoint(converted / "good_a.pth")["class_names"] == ["background", "a", "b"]
    assert not (out / "onnx").exists() and not (out / "raw" / "coco" / "detectron" / "short.pkl").exists()
    assert not marker.exists()

    # Run again for what failed: finished steps are not redone, the truncated file resumes.
    del server.modes["/short.pkl"]
    server.log.clear()
    assert download_main([*argv, "--models", "good_a", "short"]) == 0
    stdout, _ = capsys.readouterr()
    assert "already complete" in stdout and "up to date" in stdout and "resumed at" in stdout
    assert ("GET", "/good_a.pkl", None) not in server.log
    assert (converted / "short.pth").is_file()


def test_tool_converts_a_file_the_user_has(server, tmp_path, capsys):
    raw = tmp_path / "model_final.pkl"
    write_python2_pickle(raw, {"blobs": tiny_detectron_file()})
    zoo = tiny_registry(tmp_path / "zoo.yaml", server, ["tiny"])
    output = tmp_path / "mine" / "tiny.pth"
    argv = ["--model_zoo", str(zoo), "--convert_file", str(raw), "--name", "tiny", "--output", str(output)]
    assert download_main([*argv, "--no_onnx"]) == 0
    assert read_checkpoint(output)["architecture"] == "resnet50_fpn" and server.log == []
    # Described by an architecture whose shapes it does not have: the mismatch is reported, status 1.
    argv = ["--convert_file", str(raw), "--architecture", "resnet101_fpn", "--output_dir", str(tmp_path / "o")]
    assert download_main([*argv, "--no_onnx"]) == 1
    err = capsys.readouterr().err
    assert "coco/detectron/model_final failed: convert:" in err
    assert "missing from the file: res2_1_branch2a_w (for backbone.res2.1.conv1.weight)" in err
    with pytest.raises(SystemExit):  # argparse: --name and --architecture are alternatives to --models
        download_main(["--convert_file", str(raw), "--kind", "detector"])
    with pytest.raises(ValueError, match="either --name .* or --architecture"):
        download_main(["--convert_file", str(raw)])
