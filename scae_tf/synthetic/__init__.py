"""Synthetic part categories (MVTec layout) with subtle defects and exact masks: ``scae synth``.

Why: the demo, the tests and CI need datasets that can be shipped (MVTec's licence forbids
copying them), that are cheap to regenerate and whose ground truth is exact; and the method must
work on more than one kind of part. Seven kinds (:data:`PART_KINDS`):

* ``screw`` (:mod:`.screw`): elongated, dark on light, with a head and threads; gray.
* ``round`` (:mod:`.round_part`): a compact fixtured washer/cap seen from above, light on dark
  (gray) or a coloured cap on a light tray (``color=True``).
* ``capsule`` (:mod:`.capsule`): long with two alike ends (no head to orient by) and a print that reads
  one way, fixtured; gray or colour.
* ``roller`` (:mod:`.roller`): a knurled wheel seen from its rolling face, fixtured but turned about its
  axle between shots, so its tread stands at another height in every image; gray or colour.
* ``tuber`` (:mod:`.tuber`): a natural product (a potato, a bun) whose outline, size and skin differ
  from one good one to the next, at any angle; gray or colour.
* ``surface`` (:mod:`.surface`): brushed metal filling the frame, a stochastic texture (anodised in colour).
* ``fabric`` (:mod:`.fabric`): woven cloth filling the frame, a regular texture (dyed in colour).

The round part and the capsule also come ``loose`` (anywhere in the frame at any angle, as on a belt):
the case a part's turn must be undone from its appearance (``scae_tf/rotation.py``).

Every image is rendered twice from its own RNG (seeded from ``(seed, split, type, index, part)``,
so the same seed gives byte-identical files in any process and changing one count leaves all
other images unchanged): without and with its defect, same part and same noise. The defect mask
is exactly the set of pixels of the saved image that the defect changed by more than
:data:`MASK_THRESHOLD`. Defects are subtle but real: ~0.1-1 % of the image, at most
:data:`MAX_DEFECT_CONTRAST` of the local intensity, and standing out of the part's own texture:
:func:`signal_to_clutter` (the defect's mean change over the mean error of inpainting its pixels
on the clean part) is drawn in :data:`~scae_tf.synthetic.common.TARGET_SIGNAL_TO_CLUTTER`
(1.5-2.2) for every painted defect, unless the contrast cap stops it first (the weave's yarn
pull: ~0.9; the screw's flattened thread: ~0.5).
The defects of every kind but the screw are the reusable painters of :data:`DEFECT_PAINTERS`
(:mod:`.defects`: ``name -> painter(image, rng, region_mask) -> (image, mask)``).

No TensorFlow here.
"""

from scae_tf.synthetic.common import (
    GENERATOR_VERSION,
    GOOD,
    MASK_THRESHOLD,
    MAX_DEFECT_CONTRAST,
    SyntheticSample,
    defect_visibility,
    relative_change,
    sample_rng,
    signal_to_clutter,
)
from scae_tf.synthetic.dataset import (
    DEFAULT_COUNTS,
    PART_KINDS,
    PartKind,
    contact_sheet,
    generate_dataset,
    render_sample,
    write_contact_sheet,
)
from scae_tf.synthetic.defects import DEFECT_PAINTERS, GEOMETRIC_DEFECTS
from scae_tf.synthetic.screw import DEFECT_TYPES  # the screw's (the default part kind)

__all__ = [
    "DEFAULT_COUNTS",
    "DEFECT_PAINTERS",
    "DEFECT_TYPES",
    "GENERATOR_VERSION",
    "GEOMETRIC_DEFECTS",
    "GOOD",
    "MASK_THRESHOLD",
    "MAX_DEFECT_CONTRAST",
    "PART_KINDS",
    "PartKind",
    "SyntheticSample",
    "contact_sheet",
    "defect_visibility",
    "generate_dataset",
    "relative_change",
    "render_sample",
    "sample_rng",
    "signal_to_clutter",
    "write_contact_sheet",
]
