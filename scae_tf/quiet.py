"""Library chatter off by default, back with ``scae --verbose``.

TensorFlow, absl, matplotlib and OpenCV log through Python loggers, environment-controlled C++
loggers, and plain C ``fprintf(stderr)`` (the TFLite converter's "fully_quantize: 0 ...", LiteRT's
"Created TensorFlow Lite XNNPACK delegate", libpng's "libpng error: ..."). Those lines hide the
messages that matter, so :func:`configure` silences the first two kinds and has TensorFlow's own import hold
back its start-up banner (it must run before TensorFlow is imported; ``scae_tf.cli`` calls it right after
parsing the arguments) and
:func:`c_stderr_captured` holds back the third kind around the calls that print it, showing it
only in verbose mode or when the call fails.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scae_tf.errors import ScaeError

VERBOSE_ENV = "SCAE_VERBOSE"  # set by --verbose, so helpers and child processes see the choice too
LIBRARY_LOGGERS = ("tensorflow", "absl", "h5py", "matplotlib", "PIL", "keras")
OPENCV_ERROR, OPENCV_DEFAULT = 2, 3  # cv2.utils.logging.LOG_LEVEL_ERROR, LOG_LEVEL_WARNING
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "OPENCV_LOG_LEVEL": "ERROR"}  # 3 also hides the oneDNN banner (INFO)
_set_here: set[str] = set()  # which of them configure() set (a user's own value is never touched)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports TensorFlow inside :func:`c_stderr_captured`: on CPUs where oneDNN is on (AVX-512), TensorFlow
    prints its "oneDNN custom operations are on" banner through absl before ``TF_CPP_MIN_LOG_LEVEL`` is read."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        _uninstall_import_hook()  # one import only; the real finders locate the package
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_module_quietly(module: Any) -> None:
            with c_stderr_captured():
                exec_module(module)

        loader.exec_module = exec_module_quietly  # this spec's own loader object, used for this import only
        return spec


def _uninstall_import_hook() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _QuietTensorFlowImport)]


def verbose() -> bool:
    """Whether library messages should be shown (``scae --verbose``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def configure(verbose_mode: bool = False) -> None:
    """Silence (or, verbose, restore) library logging; call before TensorFlow is imported.

    Environment values the user set explicitly (``TF_CPP_MIN_LOG_LEVEL``, ``OPENCV_LOG_LEVEL``) win.
    """
    if verbose_mode:
        os.environ[VERBOSE_ENV] = "1"
        for name in LIBRARY_LOGGERS:  # their INFO and up, not matplotlib's DEBUG flood
            logging.getLogger(name).setLevel(logging.INFO)
        for name in _set_here:  # an earlier quiet configure() in this process
            os.environ.pop(name, None)
        if "OPENCV_LOG_LEVEL" in _set_here and "cv2" in sys.modules:
            _set_opencv_level(OPENCV_DEFAULT)
        _set_here.clear()
        _uninstall_import_hook()
        return
    os.environ.pop(VERBOSE_ENV, None)
    for name, value in _QUIET_ENV.items():
        if name not in os.environ:
            os.environ[name] = value
            _set_here.add(name)
    for name in LIBRARY_LOGGERS:  # e.g. "Assets written to ..." (tensorflow), "generated new fontManager"
        logging.getLogger(name).setLevel(logging.ERROR)
    if "OPENCV_LOG_LEVEL" in _set_here and "cv2" in sys.modules:  # imported already: the variable comes too late
        _set_opencv_level(OPENCV_ERROR)
    if "absl.logging" in sys.modules:
        sys.modules["absl.logging"].set_verbosity("error")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def _set_opencv_level(level: int) -> None:
    try:
        from cv2.utils import logging as cv2_logging

        cv2_logging.setLogLevel(level)
    except (ImportError, AttributeError):  # OpenCV without the logging utilities: keep its default
        pass


_capturing = False  # a block inside a block just runs: fd 2 is already held back
_sink: Any = None  # one temporary file per process, emptied before each block (creating one costs ~0.1 ms)
_sink_pid = 0


def _empty_sink() -> Any:
    global _sink, _sink_pid
    if _sink is None or _sink_pid != os.getpid():
        _sink, _sink_pid = tempfile.TemporaryFile(), os.getpid()  # noqa: SIM115 (lives as long as the process)
    _sink.seek(0)
    _sink.truncate()
    return _sink


@contextmanager
def c_stderr_captured() -> Iterator[None]:
    """Hold back what C code writes to stderr (file descriptor 2) inside the block.

    Shown afterwards only with ``--verbose`` (then nothing is held back) or when the block raises
    an unexpected exception; a :class:`ScaeError` already says what went wrong in our words.
    Python's own stderr writes (``logging``, ``print(file=sys.stderr)``) stay visible: they are
    pointed at the real stderr for the duration. Process-wide, so not for concurrent threads.
    """
    global _capturing
    if verbose() or _capturing:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreter): nothing to hide
        yield
        return
    python_stderr = sys.stderr
    real = open(saved, "w", encoding=getattr(python_stderr, "encoding", None) or "utf-8",  # noqa: SIM115
                errors="backslashreplace", buffering=1, closefd=False)
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and h.stream is python_stderr]
    sink = _empty_sink()
    os.dup2(sink.fileno(), 2)
    sys.stderr = real
    for handler in handlers:
        handler.setStream(real)
    _capturing = True
    failed = False
    try:
        yield
    except ScaeError:
        raise
    except BaseException:
        failed = True
        raise
    finally:
        _capturing = False
        real.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = python_stderr
        for handler in handlers:
            handler.setStream(python_stderr)
        real.close()
        if failed:
            sink.seek(0)
            held = sink.read().decode("utf-8", "backslashreplace")
            if held.strip():
                python_stderr.write(held if held.endswith("\n") else held + "\n")
                python_stderr.flush()
