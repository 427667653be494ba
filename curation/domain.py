"""Stage `domain`: a fastText finance-vs-general classifier, trained here on the seed sources, scores every record.

The seed sources are labelled by declaration in params.yaml (filings, news, ... are finance; general is general).
`main()` trains on them before the pipeline runs, minus a held-out share picked by a hash of the id, on which it
reports precision, recall and F1; the model that scores is the one that was measured, so the held-out share is never
trained on. The model is saved as `model.bin` (fastText's own format, not a pickle) in the stage folder for reuse.
Every record then gets `metadata.domain.score` = P(finance), written by a datatrove step that loads the model from
its file on first use (steps are copied to worker processes, a fastText object cannot be). Only the train records
of `apply_to_sources` (the mixed crawl) can be dropped, as `domain.not_finance`: seeds are labelled already, an
instruction source declares its capability, evaluation items are never dropped.

The non-obvious decision: the cut can be a fixed probability (`mode: threshold`) or "keep the top p%" of the judged
records (`mode: percentile`). A percentile needs every score before the first decision, so `main()` scores the
judged records once before the pipeline (about 9k records/s on one core) and hands the pipeline the resulting
threshold, which the metrics report. The cost is scoring those records twice; the gain is a pipeline that streams.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json
import logging
import math
import random
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from datatrove.data import Document

from curation.config import ConfigError, load_params, params
from curation.io import IOParams, read_records, stage_paths
from curation.pipeline import Annotate, Decide, Drop, ExecutorParams, judged_text, run_stage
from curation.progress import setup_logging
from curation.schema import ANSWER, CHOSEN, ID, KIND, MESSAGES, METADATA, REJECTED, SOURCE, SPLIT, TEXT, Split


STAGE = "domain"
MODEL_FILE = "model.bin"
FINANCE, GENERAL = "__label__finance", "__label__general"
TOKEN = re.compile(r"\w+|[^\w\s]")
M_MMAP_THRESHOLD = -3  # glibc mallopt parameter (malloc.h)
log = logging.getLogger(__name__)


@params
class FastTextParams:
    """fastText's own argument names, passed as they are to `fasttext.train_supervised`."""

    epoch: int
    lr: float
    dim: int
    minCount: int
    wordNgrams: int
    bucket: int
    thread: int
    seed: int


@params
class DomainParams:
    finance_sources: list[str]
    general_sources: list[str]
    apply_to_sources: list[str]
    holdout_fraction: float
    max_words: int
    balance_classes: bool
    fasttext: FastTextParams
    mode: Literal["threshold", "percentile"]
    threshold: float
    percentile: float


def normalize(text: str, max_words: int) -> str:
    """The one text form the classifier sees, in training and scoring: lowercase, digits folded to 0, words and
    punctuation as space-separated tokens (no newlines: fastText reads one example per line), at most `max_words`.

    Folding digits keeps the shape of a figure ("$0.0 billion") and drops its value, which says nothing about domain.
    """
    return " ".join(TOKEN.findall(re.sub(r"\d", "0", text.lower()))[:max_words])


def in_holdout(record_id: str, fraction: float) -> bool:
    """Deterministic held-out membership from a hash of the id, independent of order and shard layout."""
    return xxhash.xxh3_64_intdigest(record_id.encode()) < fraction * 2**64


def _zero_fresh_allocations() -> None:
    """Make fastText training reproducible within one process (glibc only; elsewhere, only per process).

    With thread=1, fastText 0.9.2 initializes only the first tenth of its input matrix and leaves the rest as the
    allocator hands it over: zero when fresh from the OS, leftovers of earlier allocations (even NaN) otherwise, so
    a second training in one process gave other scores or "Encountered NaN". A fixed mmap threshold makes glibc serve
    every large block with fresh, zeroed pages. Remove once fastText initializes the whole matrix.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        log.warning("domain: not glibc; fastText trainings after the first in a process may not be reproducible")
        return
    libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)


def train_classifier(texts: Sequence[str], is_finance: Sequence[bool], p: DomainParams) -> Any:
    """A fastText model of P(finance); the training file lives in a temporary directory outside the project."""
    import fasttext

    n_finance = sum(is_finance)
    n_general = len(is_finance) - n_finance
    if not n_finance or not n_general:
        raise ConfigError(
            f"domain: training needs both classes, got {n_finance} finance and {n_general} general seed records; "
            "check domain.finance_sources / general_sources against the source names in the input"
        )
    labelled = zip(texts, is_finance, strict=True)
    lines = [f"{FINANCE if y else GENERAL} {normalize(t, p.max_words)}" for t, y in labelled]
    if p.balance_classes:  # repeat the smaller class so that the prior does not favour the bigger one
        minority = [line for line, y in zip(lines, is_finance, strict=True) if y == (n_finance < n_general)]
        lines += minority * (round(max(n_finance, n_general) / min(n_finance, n_general)) - 1)
    random.Random(p.fasttext.seed).shuffle(lines)  # SGD sees the classes interleaved, in the same order every run
    _zero_fresh_allocations()
    with tempfile.TemporaryDirectory(prefix="findap-domain-") as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            return fasttext.train_supervised(str(path), verbose=0, **dataclasses.asdict(p.fasttext))
        except RuntimeError as err:  # fastText's only signal of divergence
            raise RuntimeError(f"domain: fastText training failed ({err}); lower domain.fasttext.lr") from None


def score_texts(model: Any, texts: Sequence[str], max_words: int) -> list[float]:
    """P(finance) of each text, rounded to 6 digits so that a stored score and its comparison agree exactly."""
    labels, probs = model.predict([normalize(t, max_words) for t in texts], k=-1)
    by_label = (dict(zip(ls, ps, strict=True)) for ls, ps in zip(labels, probs, strict=True))
    return [round(float(d.get(FINANCE, 0.0)), 6) for d in by_label]


def selection_threshold(scores: Sequence[float], p: DomainParams) -> float:
    """The score a judged record needs to be kept: `threshold`, or the cut that keeps the top `percentile`%."""
    if p.mode == "threshold":
        return p.threshold
    if not 0 < p.percentile <= 100:
        raise ConfigError(f"domain.percentile must be in (0, 100], got {p.percentile}")
    if not scores:
        return p.threshold
    k = math.ceil(len(scores) * p.percentile / 100)
    return sorted(scores, reverse=True)[k - 1]  # ties at the cut are all kept


def binary_scores(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, Any]:
    """Precision, recall and F1 of `predicted` (finance) against `truth`."""
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "finance": tp + fn, "general": len(truth) - tp - fn}


class DomainScore:
    """`doc -> {"score": P(finance)}` for Annotate; holds the model's path and loads it once per process."""

    def __init__(self, model_path: Path, max_words: int) -> None:
        self.model_path, self.max_words = str(model_path), max_words
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def __call__(self, doc: Document) -> dict[str, float]:
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.model_path)
        return {"score": score_texts(self._model, [doc.text], self.max_words)[0]}


def decide(doc: Document, apply_to: frozenset[str], threshold: float) -> Drop | None:
    """Drop a record of a judged source whose P(finance) is below the threshold; other sources are never judged."""
    if doc.metadata[SOURCE] not in apply_to:
        return None
    score = doc.metadata[METADATA][STAGE]["score"]
    if score < threshold:
        return Drop("not_finance", f"P(finance) {score:.3f} < {threshold:.3f}", score, threshold)
    return None


def truth_metrics(kept: pa.Table, drops: pa.Table, apply_to: frozenset[str], known: dict[str, Any]) -> dict[str, Any]:
    """The metrics computed before the run, plus: kept-as-finance against FinTrain-mini's `is_finance`, on the
    records the rule judged (train records of `apply_to_sources`)."""
    predicted, truth = [], []
    for table, kept_it in ((kept, True), (drops, False)):
        for source, split, meta in zip(*(table.column(c).to_pylist() for c in (SOURCE, SPLIT, METADATA)), strict=True):
            label = json.loads(meta).get("is_finance")
            if source in apply_to and split == Split.TRAIN and isinstance(label, bool):
                predicted.append(kept_it)
                truth.append(label)
    return {**known, **({"truth": binary_scores(predicted, truth)} if truth else {})}


def seed_and_judged(inputs: Sequence[Path], p: DomainParams) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train records of the seed sources, and of the sources the rule judges, each sorted by id."""
    table = read_records(inputs, columns=[ID, KIND, SOURCE, SPLIT, TEXT, MESSAGES, ANSWER, CHOSEN, REJECTED])
    train = pc.equal(table[SPLIT], Split.TRAIN.value)

    def rows(sources: set[str]) -> list[dict[str, Any]]:
        of_sources = pc.is_in(table[SOURCE], pa.array(sorted(sources), pa.string()))
        return table.filter(pc.and_(train, of_sources)).sort_by(ID).to_pylist()

    return rows(set(p.finance_sources) | set(p.general_sources)), rows(set(p.apply_to_sources))


def prepare(inputs: Sequence[Path], model_path: Path, p: DomainParams) -> tuple[float, dict[str, Any]]:
    """Train on the seeds, measure on the held-out seeds, save the model, and fix the threshold."""
    overlap = set(p.finance_sources) & set(p.general_sources)
    if overlap:
        raise ConfigError(f"domain: sources {sorted(overlap)} are in both finance_sources and general_sources")
    seeds, judged = seed_and_judged(inputs, p)
    held = [in_holdout(r[ID], p.holdout_fraction) for r in seeds]
    train = [r for r, h in zip(seeds, held, strict=True) if not h]
    test = [r for r, h in zip(seeds, held, strict=True) if h]
    finance = set(p.finance_sources)
    model = train_classifier([judged_text(r) for r in train], [r[SOURCE] in finance for r in train], p)
    model.save_model(str(model_path))
    n_finance = sum(r[SOURCE] in finance for r in train)
    metrics: dict[str, Any] = {"training": {"finance": n_finance, "general": len(train) - n_finance}}
    if test:
        scores = score_texts(model, [judged_text(r) for r in test], p.max_words)
        holdout = binary_scores([s >= 0.5 for s in scores], [r[SOURCE] in finance for r in test])
        metrics["holdout"] = {**holdout, "threshold": 0.5}
    scores = score_texts(model, [judged_text(r) for r in judged], p.max_words) if p.mode == "percentile" else []
    threshold = selection_threshold(scores, p)
    percentile = p.percentile if p.mode == "percentile" else None
    metrics["selection"] = {"mode": p.mode, "threshold": threshold, "percentile": percentile, "judged": len(judged)}
    return threshold, metrics


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, DomainParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    executor = load_params("executor", ExecutorParams, paths.params)
    apply_to = frozenset(p.apply_to_sources)
    # beside the output, so that slurm/ray workers see it too; run_stage empties the output folder when it starts
    paths.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{paths.output.name}-", dir=paths.output.parent) as tmp:
        model_path = Path(tmp) / MODEL_FILE
        threshold, known = prepare(paths.inputs, model_path, p)
        steps = [
            Annotate(STAGE, DomainScore(model_path, p.max_words)),
            Decide(STAGE, functools.partial(decide, apply_to=apply_to, threshold=threshold), paths.output, io),
        ]
        metrics = functools.partial(truth_metrics, apply_to=apply_to, known=known)
        run_stage(STAGE, steps, paths, io, executor, metrics)
        shutil.move(model_path, paths.output / MODEL_FILE)


if __name__ == "__main__":
    setup_logging()
    main()
