"""``scae serve``: the inspection PC's service (HTTP, watched inbox, MQTT), on the edge install.

``service`` is the core (verified bundle, bounded queue, inference workers, reload), ``http`` the
HTTP front end, ``inbox`` the watched folder with its exactly-once journal, ``mqtt`` the publisher
with its on-disk outbox, ``metrics`` the Prometheus counters. Nothing here imports TensorFlow.
"""

from scae_tf.serve.service import InspectionService, LoadedBundle, Outcome, QueueFull, TooLarge, load_bundle

__all__ = ["InspectionService", "LoadedBundle", "Outcome", "QueueFull", "TooLarge", "load_bundle"]
