"""NumPy patch post-processor (no TensorFlow): it runs on the inspection PC.

See :mod:`scae_tf.postprocess.processor` for the method and the documented choices.
"""

from scae_tf.postprocess.grid import PatchGrid, patch_grid, patch_means
from scae_tf.postprocess.level import ResidualLevel, part_level
from scae_tf.postprocess.neighbours import neighbour_deviation, neighbour_reference
from scae_tf.postprocess.outline import expected_region, outline_deviation, outline_sums
from scae_tf.postprocess.patches import FlaggedPatch, PatchTable
from scae_tf.postprocess.position_stats import PositionStats, PositionSums, stats_from_sums, with_std_floor
from scae_tf.postprocess.processor import (
    PatchAnalysis,
    PostProcessor,
    PostprocessResult,
    analysis_region,
    errors_and_region,
)
from scae_tf.postprocess.selection import select_top, top_count
from scae_tf.postprocess.threshold import gumbel_quantile, image_threshold
from scae_tf.postprocess.zones import FINEST, zone_count, zone_ids

__all__ = [
    "FINEST",
    "FlaggedPatch",
    "PatchAnalysis",
    "PatchGrid",
    "PatchTable",
    "PositionStats",
    "PositionSums",
    "PostProcessor",
    "PostprocessResult",
    "ResidualLevel",
    "analysis_region",
    "errors_and_region",
    "expected_region",
    "gumbel_quantile",
    "image_threshold",
    "neighbour_deviation",
    "neighbour_reference",
    "outline_deviation",
    "outline_sums",
    "part_level",
    "patch_grid",
    "patch_means",
    "select_top",
    "stats_from_sums",
    "top_count",
    "with_std_floor",
    "zone_count",
    "zone_ids",
]
