"""Script layer over ``scae_tf.exporting`` (the implementation lives in the package).

    python -m export RUN_DIR --out BUNDLE [--precision fp32|fp16|int8]   # same as `scae export`

``from export import export_bundle`` still works; TensorFlow is imported on first use, so
``python -m export --help`` stays fast and quiet.
"""

__all__ = ["convert_model", "export_bundle"]


def __getattr__(name: str):
    if name in __all__:
        import scae_tf.exporting

        return getattr(scae_tf.exporting, name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
