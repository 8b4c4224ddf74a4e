"""Which TFLite interpreter to use: LiteRT first, TensorFlow only as a last resort.

Inspection PCs install ``ai-edge-litert`` (the ``edge`` extra). ``tflite-runtime`` is the
older standalone package; ``tf.lite`` is accepted so a training workstation can run a bundle
too, but TensorFlow is only imported when neither runtime is installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from scae_tf.errors import ScaeError

# (module, attribute path) in order of preference.
CANDIDATES = (
    ("ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow", "lite.Interpreter"),
)


def interpreter_class() -> tuple[Any, str]:
    """Return (Interpreter class, name of the package that provided it)."""
    for module_name, attribute in CANDIDATES:
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for part in attribute.split("."):
            found = getattr(found, part)
        return found, module_name.split(".")[0]
    raise ScaeError("no TFLite interpreter installed; install the edge extra: pip install 'scae-tf[edge]' (ai-edge-litert)")
