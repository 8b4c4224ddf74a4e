"""Which test images the report shows: caught defects, missed defects and false alarms.

The verdict of each test image is known as soon as it is inspected, so the runner asks
:class:`ExampleKeeper` whether to keep its thumbnail; a few per outcome and defect type are kept
(memory stays bounded on large test sets), and :func:`pick` spreads the shown ones over the
defect types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scae_tf.data.layout import GOOD

if TYPE_CHECKING:
    from scae_tf.evaluation.records import Thumbnail

CAUGHT, MISSED, FALSE_ALARM, PASSED = "caught", "missed", "false_alarm", "passed"
SHOWN = (CAUGHT, MISSED, FALSE_ALARM)  # the report's example sections, in order


def outcome(defect_type: str, anomalous: bool) -> str:
    """caught (defective, flagged), missed (defective, passed), false_alarm (good, flagged) or passed (good)."""
    if defect_type == GOOD:
        return FALSE_ALARM if anomalous else PASSED
    return CAUGHT if anomalous else MISSED


class ExampleKeeper:
    """Says yes to the first ``per_type`` images of every (outcome, defect type)."""

    def __init__(self, per_type: int = 2):
        self.per_type = per_type
        self.kept: Counter[tuple[str, str]] = Counter()

    def wants(self, defect_type: str, anomalous: bool) -> bool:
        key = (outcome(defect_type, anomalous), defect_type)
        if self.kept[key] >= self.per_type:
            return False
        self.kept[key] += 1
        return True


def pick(thumbnails: Sequence[Thumbnail], wanted: str, count: int = 8) -> list[Thumbnail]:
    """Up to ``count`` thumbnails of outcome ``wanted``, round-robin over the defect types."""
    by_type: dict[str, list[Thumbnail]] = {}
    for thumbnail in thumbnails:
        if outcome(thumbnail.defect_type, thumbnail.anomalous) == wanted:
            by_type.setdefault(thumbnail.defect_type, []).append(thumbnail)
    chosen: list[Thumbnail] = []
    depth = 0
    while len(chosen) < count and any(depth < len(group) for group in by_type.values()):
        for defect_type in sorted(by_type):
            if depth < len(by_type[defect_type]) and len(chosen) < count:
                chosen.append(by_type[defect_type][depth])
        depth += 1
    return chosen
