"""Benchmark scripts over the library: latency, detection quality, the tuning proxy.

``python -m benchmarks.latency`` is ``scae bench`` (implementation: ``scae_tf.latency``);
``benchmarks.quality`` trains/exports/evaluates and tabulates detection quality per method and
precision; ``benchmarks.proxy_split`` builds the tuning proxy from held-out good images. The library
never imports this package.
"""
