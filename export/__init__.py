"""Script layer over ``scae_tf.exporting`` (the implementation lives in the package).

    python -m export RUN_DIR --out BUNDLE [--precision fp32|fp16|int8]   # same as `scae export`
"""

from scae_tf.exporting import convert_model, export_bundle

__all__ = ["convert_model", "export_bundle"]
