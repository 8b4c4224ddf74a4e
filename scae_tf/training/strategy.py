"""``tf.distribute`` strategies by name: ``--strategy default|mirrored|multiworker``.

Models are built and compiled inside ``strategy.scope()`` and Keras' ``fit`` splits each
global batch over the replicas, so the same code trains on one CPU, several GPUs
(mirrored) or several hosts (multiworker, configured by the TF_CONFIG environment variable).
"""

from __future__ import annotations

import tensorflow as tf

from scae_tf.errors import ScaeError

STRATEGIES = ("default", "mirrored", "multiworker")


def get_strategy(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ScaeError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
