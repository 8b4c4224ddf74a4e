"""Latency vocabulary of the product: the stages every inspection is timed in, and the target.

``InspectionResult.timings`` reports seconds per stage; ``scae bench`` and ``scae demo`` compare
the per-image total with ``TARGET_SECONDS``, the reference work's time per inference.
"""

STAGES = ("decode", "segment", "pose", "reconstruct", "postprocess", "total")
TARGET_SECONDS = 0.6
