"""Benchmarks: latency of the inspection path (``scae bench``) and detection quality.

``benchmarks.latency`` times the full path image file -> verdict on the edge runtime, side by
side with Keras and other TFLite precisions; ``benchmarks.quality`` trains/exports/evaluates and
tabulates detection quality per method and precision. Neither imports TensorFlow at module level.
"""
