"""Reading Detectron's pickled weight files without running code from them.

A pickle is a program: unpickling calls whatever functions the file names, so a downloaded ``.pkl`` could run
``os.system``. Detectron's files (``{"blobs": {name: ndarray}, "cfg": yaml}``, mostly written by Python 2 with
protocol 2) need only numpy's array and dtype reconstruction and plain containers. :class:`SafeUnpickler`
resolves exactly those names and refuses any other before anything is called.
"""

from __future__ import annotations

import codecs
import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from segmentoly.weights.checkpoint import CheckpointError


class UnsafePickleError(CheckpointError):
    """A pickle that asks for a function or class outside the allowed set."""


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles ``bytes`` with protocol 2, restricted to latin-1: the other
    codecs (zlib, base64, ...) are not needed to carry array data."""
    if codecs.lookup(encoding).name != "iso8859-1" or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    if not isinstance(text, str):
        raise pickle.UnpicklingError("_codecs.encode expects a string")
    return text.encode("latin1")


# numpy's own reconstruction functions, whatever module they live in for the installed version
# (numpy.core.multiarray before 2.0, numpy._core.multiarray since).
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]

#: (module, name) a weight file may name, and what it resolves to.
ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED[(_module, "_reconstruct")] = _RECONSTRUCT
    ALLOWED[(_module, "scalar")] = _SCALAR


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays, numpy scalars and plain containers, and nothing else."""

    def __init__(self, file: io.BufferedIOBase, *, source: str = "pickle") -> None:
        # Python 2 ``str`` objects (array data, names) become ``str`` through latin-1, which numpy expects.
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refused to load '{module}.{name}': a weight file holds only numpy arrays and "
                "plain containers, so this file is not one (damaged, or crafted to run code)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refused a persistent reference: not a weight file")


def load_pickle(path: str | Path) -> Any:
    """The object in a pickle file, built by :class:`SafeUnpickler`; any failure is a :class:`CheckpointError`."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            return SafeUnpickler(stream, source=str(path)).load()
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read it: {error.strerror or error}") from error
    except Exception as error:  # unpickling reports damage through many exception types
        raise CheckpointError(f"{path}: not a readable pickle (truncated or damaged?): {error}") from error


def loads_pickle(data: bytes, *, source: str = "pickle") -> Any:
    """:func:`load_pickle` for bytes in memory."""
    try:
        return SafeUnpickler(io.BytesIO(data), source=source).load()
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f"{source}: not a readable pickle (truncated or damaged?): {error}") from error
