"""Data: dataset listing (no TensorFlow) and tf.data pipelines (``scae_tf.data.pipeline``)."""

from scae_tf.data.layout import Sample, list_dataset, list_folder, list_mvtec

__all__ = ["Sample", "list_dataset", "list_folder", "list_mvtec"]
