"""Stage `clean`: repair Unicode (mojibake, odd forms), normalize whitespace, remove boilerplate lines.

Cleaning edits text, so every edit is recorded in `metadata.clean` (what was fixed, which lines went, characters
before and after); nothing is truncated. Boilerplate is matched per *line* against case-insensitive patterns from
params.yaml, so a filing sentence that merely mentions "rights" survives while a footer line "All rights reserved."
goes. A record that cleaning leaves empty is dropped as `clean.empty_after_cleaning`.

Conversations are cleaned turn by turn (and their answers), so the roles and turn boundaries never change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ftfy
import pyarrow as pa
from datatrove.data import Document

from curation.config import load_params, params
from curation.io import IOParams, stage_paths
from curation.pipeline import Decide, DocumentStep, Drop, ExecutorParams, judged_text, run_stage
from curation.progress import setup_logging
from curation.schema import ANSWER, CHOSEN, KIND, MESSAGES, METADATA, REJECTED, Kind
from curation.truth import metadata_rows, truth_rate


STAGE = "clean"


@params
class CleanParams:
    fix_unicode: bool
    normalization: str
    max_blank_lines: int
    boilerplate_patterns: list[str]


@dataclass(frozen=True)
class Cleaned:
    text: str
    fixed_unicode: bool
    removed_lines: list[str]


class Cleaner:
    """The pure text cleaner; compiled once from params."""

    def __init__(self, p: CleanParams) -> None:
        self.p = p
        self.boilerplate = re.compile("|".join(f"(?:{x})" for x in p.boilerplate_patterns), re.IGNORECASE)
        self.blank_run = re.compile(rf"\n{{{p.max_blank_lines + 2},}}")

    def __call__(self, text: str) -> Cleaned:
        fixed = ftfy.fix_text(text, normalization=None) if self.p.fix_unicode else text
        fixed = unicodedata.normalize(self.p.normalization, fixed)
        fixed_unicode = fixed != unicodedata.normalize(self.p.normalization, text)
        kept, removed = [], []
        for line in fixed.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            line = " ".join(line.split()) if line.strip() else ""  # collapse runs of spaces and tabs within a line
            if line and self.p.boilerplate_patterns and self.boilerplate.search(line):
                removed.append(line)
            else:
                kept.append(line)
        cleaned = self.blank_run.sub("\n" * (self.p.max_blank_lines + 1), "\n".join(kept)).strip()
        return Cleaned(cleaned, fixed_unicode, removed)


class CleanStep(DocumentStep):
    """Cleans a record's text or each of its turns and records what changed in `metadata.clean`."""

    name = "clean: edit"

    def __init__(self, p: CleanParams) -> None:
        super().__init__()
        self.cleaner = Cleaner(p)

    def process(self, doc: Document) -> None:
        meta = doc.metadata
        before = len(doc.text)
        results = []
        if meta[KIND] == Kind.CPT:
            result = self.cleaner(doc.text)
            doc.text = result.text
            results.append(result)
        else:
            for turn in meta[MESSAGES]:
                result = self.cleaner(turn["content"])
                turn["content"] = result.text
                results.append(result)
            for column in (ANSWER, CHOSEN, REJECTED):
                if meta.get(column):
                    result = self.cleaner(meta[column])
                    meta[column] = result.text
                    results.append(result)
            doc.text = judged_text(meta)
        meta[METADATA][STAGE] = {
            "fixed_unicode": any(r.fixed_unicode for r in results),
            "removed_lines": [line for r in results for line in r.removed_lines],
            "chars_before": before,
            "chars_after": len(doc.text),
            "empty_part": any(not r.text for r in results),
        }


def decide(doc: Document) -> Drop | None:
    if doc.metadata[METADATA][STAGE]["empty_part"]:
        return Drop("empty_after_cleaning", "the text, a turn or an answer is empty after cleaning")
    return None


def truth_metrics(kept: pa.Table, drops: pa.Table) -> dict[str, Any]:
    """Against FinTrain-mini ground truth: planted mojibake repaired, planted boilerplate removed, nothing else.

    Spam pages are left out of the boilerplate counts: their menus and cookie lines are not planted boilerplate
    but are rightly removed too. Planted lines are compared after Unicode repair, as the cleaner sees them.
    """
    rows = metadata_rows(kept)
    pages = [r for r in rows if "boilerplate_lines" in r and not r.get("is_spam")]
    if not pages:
        return {}
    planted = [{ftfy.fix_text(line) for line in r["boilerplate_lines"]} for r in pages]
    removed = [set(r[STAGE]["removed_lines"]) for r in pages]
    n_planted = sum(map(len, planted))
    hits = sum(len(p & r) for p, r in zip(planted, removed, strict=True))
    return {
        "truth": {
            "boilerplate_recall": hits / n_planted if n_planted else 1.0,
            "lines_removed_not_boilerplate": sum(len(r - p) for p, r in zip(planted, removed, strict=True)),
            "mojibake_fixed_rate": truth_rate(rows, "mojibake", lambda r: r[STAGE]["fixed_unicode"]),
        }
    }


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, CleanParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    executor = load_params("executor", ExecutorParams, paths.params)
    steps = [CleanStep(p), Decide(STAGE, decide, paths.output, io)]
    run_stage(STAGE, steps, paths, io, executor, truth_metrics)


if __name__ == "__main__":
    setup_logging()
    main()
