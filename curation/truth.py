"""Curation quality against ground truth: where records carry FinTrain-mini labels, stages report how well they did.

A stage's drops are its predictions ("this record is spam", "this is a duplicate"); the generator's labels in
`metadata` are the truth. Records without the label (real data) are skipped, so the same code runs everywhere and
reports nothing where there is nothing to measure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from curation.schema import METADATA


Row = dict[str, Any]


def metadata_rows(table: pa.Table) -> list[Row]:
    return [json.loads(m) if m else {} for m in table.column(METADATA).to_pylist()]


def detection(kept: Sequence[Row], dropped: Sequence[Row], is_target: Callable[[Row], bool | None]) -> dict[str, Any]:
    """Precision, recall and F1 of "dropped" as a detector of `is_target` (None = unlabeled, skipped)."""
    tp = sum(1 for r in dropped if is_target(r) is True)
    fp = sum(1 for r in dropped if is_target(r) is False)
    fn = sum(1 for r in kept if is_target(r) is True)
    labeled = tp + fp + fn + sum(1 for r in kept if is_target(r) is False)
    if not labeled:
        return {}
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "targets": tp + fn, "dropped_labeled": tp + fp}


def truth_rate(rows: Sequence[Row], label: str, predicate: Callable[[Row], bool]) -> float | None:
    """Among rows whose `label` is true, the share for which `predicate` holds (None when there are none)."""
    hits = [predicate(r) for r in rows if r.get(label) is True]
    return sum(hits) / len(hits) if hits else None
