"""Pure Keras model builders: the CAE-MSSIM and the U-Net segmenter."""

from scae_tf.models.cae import build_cae
from scae_tf.models.flops import count_flops, model_summary
from scae_tf.models.unet import build_unet

__all__ = ["build_cae", "build_unet", "count_flops", "model_summary"]
