"""Data: dataset listing (MVTec AD and plain folders), no TensorFlow."""

from scae_tf.data.layout import Sample, list_dataset, list_folder, list_mvtec

__all__ = ["Sample", "list_dataset", "list_folder", "list_mvtec"]
