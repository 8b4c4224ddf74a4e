"""Edge runtime of ``scae inspect``: files and folders in, one record per image out (``inspection``).

Runs without TensorFlow. The verified bundle is ``scae_tf.artifacts.open_bundle``; its TFLite
back-end is ``scae_tf.backends.litert``.
"""
