"""``scae train``: segmenter, then CAE, on good images only, resumable, any tf.distribute strategy."""

from scae_tf.training.run import resolve_config, scale_sizes, train_run

__all__ = ["resolve_config", "scale_sizes", "train_run"]
