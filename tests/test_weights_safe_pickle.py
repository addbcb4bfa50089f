"""Detectron's pickles are read without running code: only numpy arrays and plain containers are built."""

import os
import pickle
import pickletools

import numpy as np
import pytest

from segmentoly.weights.checkpoint import CheckpointError
from segmentoly.weights.detectron import read_blobs
from segmentoly.weights.safe_pickle import UnsafePickleError, load_pickle, loads_pickle


def exploit(function, *args):
    class Exploit:
        def __reduce__(self):
            return (function, args)

    return Exploit()


def weight_file_with(payload):
    """A Detectron-looking file ({"blobs": ..., "cfg": ...}) with the payload among real arrays."""
    return {"blobs": {"conv1_w": np.ones((2, 3), np.float32), "evil": payload}, "cfg": "MODEL: {}"}


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_os_system_is_refused_before_it_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "model_final.pkl"
    path.write_bytes(pickle.dumps(weight_file_with(exploit(os.system, f"touch {marker}")), protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"model_final\.pkl: refused to load '(posix|os|nt)\.system'"):
        read_blobs(path)
    assert not marker.exists()


def test_builtins_that_write_or_evaluate_are_refused(tmp_path):
    marker = tmp_path / "written"
    for payload, name in (
        (exploit(open, str(marker), "w"), r"(io|__builtin__|builtins)\.open"),
        (exploit(eval, f"open({str(marker)!r}, 'w')"), r"(__builtin__|builtins)\.eval"),
        (exploit(exec, f"open({str(marker)!r}, 'w')"), r"(__builtin__|builtins)\.exec"),
        (exploit(np.save, str(marker), np.zeros(1)), r"numpy[\w.]*\.save"),
    ):
        with pytest.raises(UnsafePickleError, match=f"refused to load '{name}'"):
            loads_pickle(pickle.dumps(weight_file_with(payload), protocol=2), source="evil.pkl")
        assert not marker.exists() and not (tmp_path / "written.npy").exists()
    # Python 2's name for the builtins, in a hand-written protocol 0 pickle.
    source = f"c__builtin__\neval\n(S'open({str(marker)!r}, \"w\")'\ntR.".encode()
    with pytest.raises(UnsafePickleError, match="refused to load '__builtin__.eval'"):
        loads_pickle(source)
    assert not marker.exists()


def test_only_latin1_encoding_is_allowed_through_codecs():
    # Python 3 pickles bytes with protocol 2 as _codecs.encode(text, "latin1"): other codecs are refused.
    data = pickle.dumps(b"\x00\xff", protocol=2)
    assert loads_pickle(data) == b"\x00\xff"
    tampered = data.replace(b"latin1", b"base64")  # same length: the pickle stays well formed
    assert b"base64" in tampered
    with pytest.raises(CheckpointError, match="encoding 'base64' is not allowed"):
        loads_pickle(tampered)


def test_arrays_containers_and_scalars_load(tmp_path):
    data = {
        "blobs": {
            "a_w": np.arange(6, dtype=np.float32).reshape(2, 3),
            "b": np.arange(3, dtype=np.int64),
            "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
            "scalar": np.float32(2.5),
        },
        "cfg": "TRAIN:\n  WEIGHTS: x\n",
        "list": [1, 2.0, "three", None, (4, 5)],
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    loaded = load_pickle(path)
    assert loaded["cfg"] == data["cfg"] and loaded["list"] == data["list"]
    for name, value in data["blobs"].items():
        assert np.array_equal(loaded["blobs"][name], value) and loaded["blobs"][name].dtype == value.dtype
    # The opcodes really name the numpy reconstruction functions the allow-list has.
    globals_used = {arg for op, arg, _ in pickletools.genops(path.read_bytes()) if op.name == "GLOBAL"}
    assert {"numpy ndarray", "numpy dtype", "_codecs encode"} <= globals_used


def test_damaged_files_are_reported(tmp_path):
    path = tmp_path / "truncated.pkl"
    data = pickle.dumps({"blobs": {"w": np.ones(1000, np.float32)}}, protocol=2)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pkl: not a readable pickle"):
        read_blobs(path)
    with pytest.raises(CheckpointError, match="file not found"):
        read_blobs(tmp_path / "missing.pkl")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(CheckpointError, match="not a Detectron weight file"):
        read_blobs(tmp_path / "list.pkl")
