"""Edge runtime: what ``scae inspect`` runs on the inspection PC, without TensorFlow.

``inspection`` turns files and folders into one record each (result or error). The bundle
itself (``scae_tf.artifacts.open_bundle``: manifest, format version and every file's sha256
checked before anything is loaded) and its TFLite back-end (``scae_tf.backends.litert``) are
re-exported here for edge code.
"""

from scae_tf.artifacts.bundle import Bundle, open_bundle
from scae_tf.backends.litert import LiteBackend

__all__ = ["Bundle", "LiteBackend", "open_bundle"]
