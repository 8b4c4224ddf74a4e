"""scae-tf: segmentation-guided CAE-MSSIM anomaly detection for industrial parts.

Importing the package never imports TensorFlow: the edge runtime and the NumPy
post-processor must run on inspection PCs that only have a TFLite interpreter.
"""

__version__ = "0.1.0"
