"""Stage `decontam`: remove training text that overlaps an evaluation item, and report the overlap per benchmark.

The evaluation items are the `split == eval` records of the same input (plus any sources or external files declared
in params). Their words, normalized (lowercase, no punctuation, digits kept: in finance "rose 5.2%" and "rose 7.9%"
are different facts), are cut into n-grams and hashed (xxhash64, as datatrove's `NGramsDecont`) into one index
built once in main(). Training data is checked against it in two ways:

- What is indexed is the item's *query*: the prompt, plus its first `ngram - 1` answer words so that n-grams
  across the prompt/answer boundary are found (lm-evaluation-harness decontaminates on
  `doc_to_decontamination_query`, the question, for the same reason): an answer on its own (a glossary
  definition, a company fact) is knowledge the benchmark tests, which CPT is meant to teach; the item is
  contaminated when its question appears.
- Documents (CPT): every word n-gram is looked up (GPT-3's 13-gram method). A hit is cut out together with
  `window_chars` characters on each side, widened to whole words; the document is an *edit*, logged in
  `metadata.decontam`. It is dropped (`decontam.contaminated`) when it has more than `max_hits` separate hits or
  too little is left.
- Conversations (IT, preference): a conversation cannot be cut, so any hit drops it
  (`decontam.contaminated_instruction`). Answers are often one word ("negative"), so a 13-gram over the whole item
  would miss a leaked sentiment question. Prompts are therefore matched with n = their own length when shorter than
  `ngram` (down to `min_ngram`; shorter prompts only match exactly), and the conversation is matched against the
  query n-grams, which include datatrove's boundary n-grams (last prompt words + first answer words).

The non-obvious decision: an n-gram shared by more than `max_items_per_ngram` distinct eval items is instruction
template ("analyze the sentiment of this statement extracted from a financial news article"), not content, and is
left out of the index; otherwise every training conversation that reuses a benchmark's template would be dropped.
The cost: a benchmark with fewer items than that which shares a template keeps it in the index (lower the value for
tiny benchmarks), and content repeated across more distinct items than that (one sentence under many templates)
is no longer found.

datatrove's indexer and filter are not reused as steps: `simplify_text` maps every number to 0 (against FinQA it
flags 18 of 20 real 10-K MD&A sections, digits kept flag 6), its spaCy tokenizer loses the character offsets the
window cut needs, and with xxhash 4 its hash wrapper raises on `str` (huggingface/datatrove#508). Its hash is kept
(xxhash64 of the UTF-8 n-gram, words joined by spaces), as is its boundary n-gram idea.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import xxhash
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from curation.config import ConfigError, load_params, params
from curation.io import RECORDS_GLOB, IOParams, stage_paths, write_metrics
from curation.pipeline import Decide, DocumentStep, Drop, ExecutorParams, run_stage
from curation.progress import setup_logging
from curation.schema import (
    ANSWER,
    CHOSEN,
    ID,
    KIND,
    MESSAGES,
    METADATA,
    RECORD_SCHEMA,
    SOURCE,
    SPLIT,
    TEXT,
    Kind,
    Split,
)
from curation.truth import metadata_rows


STAGE = "decontam"
REPORT_FILE = "contamination.json"
CUT_TEXT = "decontam_text"  # transient Document key: the CPT text with hits cut out, applied after the decision


@params
class ExternalEvalSet:
    benchmark: str
    path: str
    text_field: str


@params
class DecontamParams:
    ngram: int
    min_ngram: int
    max_items_per_ngram: int
    window_chars: int
    max_hits: int
    min_remaining_chars: int
    extra_eval_sources: list[str]
    external: list[ExternalEvalSet]


# --- normalization: one function for both sides ------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits: punctuation, "_" and whitespace separate words


def _fold(word: str) -> str:
    word = word.lower()
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Normalized words: lowercase, diacritics and punctuation gone, digits kept ("19.45 %" -> ["19", "45"])."""
    return [_fold(m.group()) for m in _WORD.finditer(text)]


def word_spans(text: str) -> tuple[list[str], list[int], list[int]]:
    """`words(text)` with each word's start and end character offsets in `text`."""
    tokens, starts, ends = [], [], []
    for m in _WORD.finditer(text):
        tokens.append(_fold(m.group()))
        starts.append(m.start())
        ends.append(m.end())
    return tokens, starts, ends


def normalize(text: str) -> str:
    return " ".join(words(text))


def ngram_hash(tokens: Sequence[str]) -> int:
    """datatrove's n-gram hash: xxhash64 of the words joined by single spaces (UTF-8)."""
    return xxhash.xxh64_intdigest(" ".join(tokens).encode("utf-8"))


def ngram_hashes(tokens: Sequence[str], n: int) -> list[int]:
    """Hashes of every n-gram in order (position i = tokens[i:i+n]); empty when there are fewer than n words."""
    return [ngram_hash(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def ngram_size(n_words: int, p: DecontamParams) -> int | None:
    """`ngram`, or the whole text when shorter, down to `min_ngram` words; None when too short for n-grams."""
    return min(p.ngram, n_words) if n_words >= p.min_ngram else None


# --- the eval index ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalItem:
    benchmark: str  # the eval record's metadata.task, else its source
    eval_id: str
    prompt: str  # the user turns
    answer: str


# An eval record's `metadata.query`, when present, is what it is matched by instead of its prompt: the item's own
# content without the instruction template around it (lm-eval's `doc_to_decontamination_query`), so that two items
# of one task do not look alike through their shared instructions.
QUERY = "query"
Match = tuple[int, int, tuple[int, ...]]  # start word, end word (exclusive), eval item numbers


@dataclass
class NgramTable:
    """Hashed n-grams of one or more sizes -> eval item numbers (plain dicts and sets: picklable).

    `prefixes` holds the hash of every indexed n-gram's first `k` words (k = min_ngram, the smallest size), so a
    text is hashed once at size k and at the larger sizes only where an indexed n-gram can start.
    """

    k: int
    items: dict[int, tuple[int, ...]]
    sizes: tuple[int, ...]
    prefixes: set[int]

    def find(self, tokens: Sequence[str]) -> list[Match]:
        """(start, end, items) of every n-gram of `tokens` in the table."""
        found = []
        for i, prefix in enumerate(ngram_hashes(tokens, self.k)):
            if prefix not in self.prefixes:
                continue
            for n in self.sizes:
                if i + n <= len(tokens):
                    hit = self.items.get(prefix if n == self.k else ngram_hash(tokens[i : i + n]))
                    if hit:
                        found.append((i, i + n, hit))
        return found


class _TableBuilder:
    def __init__(self, k: int) -> None:
        self.k = k
        self.items: dict[int, set[int]] = defaultdict(set)
        self.prefix_of: dict[int, int] = {}
        self.sizes: set[int] = set()

    def add(self, tokens: Sequence[str], n: int, item: int) -> None:
        self.sizes.add(n)
        for i, h in enumerate(ngram_hashes(tokens, n)):
            self.items[h].add(item)
            self.prefix_of[h] = ngram_hash(tokens[i : i + self.k])

    def freeze(self, content: Sequence[int], max_items: int) -> tuple[NgramTable, int]:
        """The table without template n-grams (in more than `max_items` distinct items), and how many those were."""
        kept = {h: tuple(sorted(found)) for h, found in self.items.items() if distinct(found, content) <= max_items}
        table = NgramTable(self.k, kept, tuple(sorted(self.sizes)), {self.prefix_of[h] for h in kept})
        return table, len(self.items) - len(kept)


def distinct(found: Iterable[int], content: Sequence[int]) -> int:
    """How many different items (by content: identical items count once) are among `found`."""
    return len({content[i] for i in found})


@dataclass
class EvalIndex:
    """Every eval item's hashed n-grams -> the items (numbers into `refs`) that contain them."""

    refs: list[tuple[str, str]]  # item number -> (benchmark, eval id)
    text: NgramTable  # n-grams of prompt + answer: documents and whole conversations
    prompt: NgramTable  # n-grams of the prompt: training prompts
    exact_prompt: dict[int, tuple[int, ...]]  # whole prompts shorter than min_ngram: equal training prompts only
    items: dict[str, int] = field(default_factory=dict)  # per benchmark
    not_indexed: dict[str, int] = field(default_factory=dict)  # per benchmark: items with no prompt+answer n-gram
    template_ngrams: int = 0  # left out: in more than max_items_per_ngram distinct items


def build_index(items: Sequence[EvalItem], p: DecontamParams) -> EvalIndex:
    """Index every item's prompt+answer n-grams, prompt n-grams and short exact prompts, minus template n-grams."""
    if not 1 <= p.min_ngram <= p.ngram:
        raise ConfigError(f"decontam: min_ngram ({p.min_ngram}) must be between 1 and ngram ({p.ngram})")
    builders = {"text": _TableBuilder(p.min_ngram), "prompt": _TableBuilder(p.min_ngram)}
    exact: dict[int, set[int]] = defaultdict(set)
    content: list[int] = []  # identical items count once against max_items_per_ngram
    for i, item in enumerate(items):
        prompt, answer = words(item.prompt), words(item.answer)
        content.append(ngram_hash([*prompt, "\x00", *answer]))
        # the query plus the first answer words (lm-eval's `doc_to_decontamination_query`, datatrove's boundary
        # n-grams): an answer on its own is knowledge the item tests (a definition, a fact), not the item
        for name, tokens in (("text", prompt + answer[: p.ngram - 1]), ("prompt", prompt)):
            n = ngram_size(len(tokens), p)
            if n is not None:
                builders[name].add(tokens, n, i)
        if prompt and len(prompt) < p.min_ngram:
            exact[ngram_hash(prompt)].add(i)
    (text, text_template), (prompt, prompt_template) = (
        b.freeze(content, p.max_items_per_ngram) for b in builders.values()
    )
    exact_kept = {h: tuple(sorted(f)) for h, f in exact.items() if distinct(f, content) <= p.max_items_per_ngram}
    indexed = {i for found in text.items.values() for i in found}
    return EvalIndex(
        refs=[(item.benchmark, item.eval_id) for item in items],
        text=text,
        prompt=prompt,
        exact_prompt=exact_kept,
        items=dict(Counter(item.benchmark for item in items)),
        not_indexed=dict(Counter(item.benchmark for i, item in enumerate(items) if i not in indexed)),
        template_ngrams=text_template + prompt_template + len(exact) - len(exact_kept),
    )


# --- checking training data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """What one training record shares with the eval items."""

    hits: int  # documents: separate runs of matching n-grams; conversations: matching n-grams
    items: frozenset[int]
    checks: tuple[str, ...] = ()  # which checks matched: document | prompt | conversation
    text: str | None = None  # documents: the text with the hits cut out


def merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of half-open intervals; touching intervals merge."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def cut_spans(
    runs: Sequence[tuple[int, int]], starts: Sequence[int], ends: Sequence[int], length: int, window: int
) -> list[tuple[int, int]]:
    """Character spans to remove: each run of hit words plus `window` characters each side, widened to whole words."""
    cuts = []
    for first, last in runs:  # word indexes, half-open
        lo, hi = starts[first] - window, ends[last - 1] + window
        w_lo = bisect.bisect_right(ends, lo)  # the first word that ends after lo
        w_hi = bisect.bisect_left(starts, hi) - 1  # the last word that starts before hi
        cut_lo = 0 if w_lo == 0 else starts[w_lo]
        cut_hi = length if w_hi == len(starts) - 1 else ends[w_hi]
        cuts.append((cut_lo, cut_hi))
    return merge(cuts)


def apply_cuts(text: str, cuts: Sequence[tuple[int, int]]) -> str:
    """The text without the cut spans; the pieces left become paragraphs."""
    pieces, previous = [], 0
    for start, end in cuts:
        pieces.append(text[previous:start])
        previous = end
    pieces.append(text[previous:])
    return "\n\n".join(piece.strip() for piece in pieces if piece.strip())


def scan_document(text: str, index: EvalIndex, p: DecontamParams) -> Scan:
    """Find eval n-grams in a document and cut each hit with its window out of the text."""
    tokens, starts, ends = word_spans(text)
    found = index.text.find(tokens)
    if not found:
        return Scan(0, frozenset(), (), text)
    runs = merge((start, end) for start, end, _ in found)
    cuts = cut_spans(runs, starts, ends, len(text), p.window_chars)
    items = frozenset(i for *_, hit in found for i in hit)
    return Scan(len(runs), items, ("document",), apply_cuts(text, cuts))


def scan_conversation(prompt: str, conversation: str, index: EvalIndex) -> Scan:
    """Match a conversation's prompt against eval prompts and its whole text against eval prompt+answer n-grams."""
    prompt_words = words(prompt)
    by_check: dict[str, list[Match]] = {
        "prompt": index.prompt.find(prompt_words),
        "conversation": index.text.find(words(conversation)),
    }
    if 0 < len(prompt_words) < index.prompt.k:
        exact = index.exact_prompt.get(ngram_hash(prompt_words))
        if exact:
            by_check["prompt"].append((0, len(prompt_words), exact))
    hits = sum(len(found) for found in by_check.values())
    items = frozenset(i for found in by_check.values() for *_, hit in found for i in hit)
    return Scan(hits, items, tuple(check for check, found in by_check.items() if found))


def user_turns(messages: Sequence[Mapping[str, str]] | None) -> str:
    return "\n\n".join(m["content"] for m in messages or [] if m["role"] == "user")


def decontam_metadata(scan: Scan, index: EvalIndex, removed_chars: int) -> dict[str, Any]:
    refs = [index.refs[i] for i in sorted(scan.items)]
    return {
        "hits": scan.hits,
        "benchmarks": sorted({b for b, _ in refs}),
        "eval_ids": sorted({e for _, e in refs}),
        "removed_chars": removed_chars,
        "checks": list(scan.checks),
    }


class DecontamScore(DocumentStep):
    """Scores every training record against the eval index into `metadata.decontam` (eval items are skipped)."""

    name = "decontam: score"

    def __init__(self, index: EvalIndex, p: DecontamParams) -> None:
        super().__init__()
        self.index, self.p = index, p

    def process(self, doc: Document) -> None:
        meta = doc.metadata
        if meta[SPLIT] == Split.EVAL or meta[SOURCE] in self.p.extra_eval_sources:
            return
        if meta[KIND] == Kind.CPT:
            scan = scan_document(doc.text, self.index, self.p)
            removed = len(doc.text) - len(scan.text or "")
            if scan.hits:
                meta[CUT_TEXT] = scan.text
        else:
            scan = scan_conversation(user_turns(meta[MESSAGES]), doc.text, self.index)
            removed = 0
        meta[METADATA][STAGE] = decontam_metadata(scan, self.index, removed)


def describe(found: Mapping[str, Any], limit: int = 5) -> str:
    ids = found["eval_ids"]
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return f"benchmarks {', '.join(found['benchmarks'])}; eval ids {', '.join(ids[:limit])}{more}"


def decide(doc: Document, p: DecontamParams) -> Drop | None:
    found = doc.metadata[METADATA].get(STAGE)
    if not found or not found["hits"]:
        return None
    if doc.metadata[KIND] != Kind.CPT:
        checks = " and ".join(found["checks"])
        return Drop(
            "contaminated_instruction", f"{checks} n-grams match eval items: {describe(found)}", found["hits"], 0
        )
    if found["hits"] > p.max_hits:
        detail = f"{found['hits']} separate hits > max_hits {p.max_hits}: {describe(found)}"
        return Drop("contaminated", detail, found["hits"], p.max_hits)
    left = len(doc.text) - found["removed_chars"]
    if left < p.min_remaining_chars:
        detail = (
            f"{left} characters left after cutting {found['hits']} hit(s) < {p.min_remaining_chars}: {describe(found)}"
        )
        return Drop("contaminated", detail, left, p.min_remaining_chars)
    return None


class ApplyCuts(PipelineStep):
    """Cuts the hits out of the kept documents (after the decision, so a dropped record keeps its whole text)."""

    name = "decontam: cut"

    def run(self, data, rank: int = 0, world_size: int = 1):  # type: ignore[no-untyped-def]
        for doc in data:
            if CUT_TEXT in doc.metadata:
                doc.text = doc.metadata.pop(CUT_TEXT)
                self.stat_update("edited")
            yield doc


# --- eval items --------------------------------------------------------------------------------------------------


def eval_item(record: Mapping[str, Any]) -> EvalItem:
    """An eval record (or a record of an extra eval source) as its query (`metadata.query`, else the user turns) and
    answer."""
    meta = json.loads(record[METADATA]) if isinstance(record[METADATA], str) else record[METADATA]
    benchmark = str(meta.get("task") or record[SOURCE])
    if record[KIND] == Kind.CPT:
        return EvalItem(benchmark, record[ID], record[TEXT] or "", "")
    messages = record[MESSAGES] or []
    if record[KIND] == Kind.EVAL:
        answer = record[ANSWER] or ""
    elif record[KIND] == Kind.PREF:
        answer = record[CHOSEN] or ""
    else:
        answer = "\n\n".join(m["content"] for m in messages if m["role"] == "assistant")
    query = meta.get(QUERY)
    return EvalItem(benchmark, record[ID], query if isinstance(query, str) else user_turns(messages), answer)


def read_eval_items(inputs: Sequence[Path], p: DecontamParams) -> list[EvalItem]:
    """The eval records of the input (and of `extra_eval_sources`), in id order."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    files = sorted(str(f) for folder in inputs for f in Path(folder).glob(RECORDS_GLOB))
    if not files:
        raise FileNotFoundError(f"no {RECORDS_GLOB} under {', '.join(map(str, inputs))}; run the stage before it")
    wanted = (pc.field(SPLIT) == Split.EVAL.value) | pc.field(SOURCE).isin(pa.array(p.extra_eval_sources, pa.string()))
    columns = [ID, KIND, SOURCE, TEXT, MESSAGES, ANSWER, CHOSEN, METADATA]
    table = ds.dataset(files, format="parquet", schema=RECORD_SCHEMA).to_table(filter=wanted, columns=columns)
    return [eval_item(r) for r in table.sort_by(ID).to_pylist()]


def read_external(s: ExternalEvalSet) -> list[EvalItem]:
    """An external eval set (.parquet or .jsonl) whose `text_field` holds each item's text; ids are `benchmark:row`."""
    import pyarrow.parquet as pq

    path = Path(s.path)
    fix = f"set decontam.external[{s.benchmark}].text_field or fix the file"
    if path.suffix == ".parquet":
        names = pq.read_schema(path).names
        if s.text_field not in names:
            raise ConfigError(f"{path}: no column {s.text_field!r} (columns: {', '.join(names)}); {fix}")
        texts = pq.read_table(path, columns=[s.text_field]).column(0).to_pylist()
    elif path.suffix == ".jsonl":
        texts = []
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict) or s.text_field not in row:
                    raise ConfigError(f"{path} line {line_no}: no {s.text_field!r} field; {fix}")
                texts.append(row[s.text_field])
    else:
        raise ConfigError(f"{path}: external eval sets must be .parquet or .jsonl files")
    return [EvalItem(s.benchmark, f"{s.benchmark}:{row}", str(text or ""), "") for row, text in enumerate(texts)]


# --- report ------------------------------------------------------------------------------------------------------


def train_rows(table: pa.Table, p: DecontamParams) -> list[dict[str, Any]]:
    """Training rows with their source, kind and parsed metadata (eval items and extra eval sources left out)."""
    rows = []
    for source, split, kind, text, meta in zip(
        table.column(SOURCE).to_pylist(),
        table.column(SPLIT).to_pylist(),
        table.column(KIND).to_pylist(),
        table.column(TEXT).to_pylist(),
        metadata_rows(table),
        strict=True,
    ):
        if split != Split.EVAL and source not in p.extra_eval_sources:
            rows.append({SOURCE: source, KIND: kind, TEXT: text, METADATA: meta})
    return rows


def contamination(index: EvalIndex, kept: Sequence[dict], dropped: Sequence[dict]) -> dict[str, Any]:
    """Per benchmark: items, items found in training data, training records hit (dropped or edited) by source."""
    benchmark_of = {e: b for b, e in index.refs}
    report: dict[str, dict[str, Any]] = {}
    for b, n in sorted(index.items.items()):
        report[b] = dict.fromkeys(("items_hit", "training_records_hit", "records_dropped", "records_edited"), 0)
        report[b].update(items=n, items_not_indexed=index.not_indexed.get(b, 0), by_training_source=Counter())
    hit_items: dict[str, set[str]] = defaultdict(set)
    for rows, outcome in ((kept, "records_edited"), (dropped, "records_dropped")):
        for row in rows:
            found = row[METADATA].get(STAGE) or {}
            for eval_id in found.get("eval_ids", []):
                hit_items[benchmark_of[eval_id]].add(eval_id)
            for b in found.get("benchmarks", []):
                report[b]["training_records_hit"] += 1
                report[b][outcome] += 1
                report[b]["by_training_source"][row[SOURCE]] += 1
    for b, entry in report.items():
        entry["items_hit"] = len(hit_items[b])
        entry["by_training_source"] = dict(sorted(entry["by_training_source"].items()))
    return report


def truth_metrics(
    kept: Sequence[dict],
    dropped: Sequence[dict],
    eval_rows: Sequence[tuple[str, dict]],
    index: EvalIndex,
    p: DecontamParams,
) -> dict[str, Any]:
    """Against FinTrain-mini labels: leaked records dropped or cut clean of their eval item; clean records kept."""
    labeled = [(r, False) for r in kept if "world_id" in r[METADATA]]
    labeled += [(r, True) for r in dropped if "world_id" in r[METADATA]]
    if not labeled:
        return {}
    eval_id_of = {meta["world_id"]: record_id for record_id, meta in eval_rows if "world_id" in meta}
    number_of = {eval_id: i for i, (_, eval_id) in enumerate(index.refs)}
    leaked = removed = missing = clean = clean_dropped = clean_edited = 0
    for row, was_dropped in labeled:
        meta = row[METADATA]
        found = meta.get(STAGE) or {}
        if not meta.get("leaked_from"):
            clean += 1
            clean_dropped += was_dropped
            clean_edited += (not was_dropped) and found.get("hits", 0) > 0
            continue
        eval_id = eval_id_of.get(meta["leaked_from"])
        if eval_id is None:
            missing += 1  # its eval item is not in the input: nothing to find it with
            continue
        leaked += 1
        if was_dropped:
            removed += 1
        elif row[KIND] == Kind.CPT and eval_id in found.get("eval_ids", []):
            # the leak was found and cut: the kept text no longer matches that item
            removed += number_of[eval_id] not in scan_document(row[TEXT] or "", index, p).items
    return {
        "truth": {
            "leaked_removed": removed / leaked if leaked else None,
            "clean_removed": clean_dropped / clean if clean else None,
            "leaked": leaked,
            "leaked_eval_missing": missing,
            "clean": clean,
            "clean_dropped": clean_dropped,
            "clean_edited": clean_edited,
        }
    }


def report(kept: pa.Table, drops: pa.Table, index: EvalIndex, p: DecontamParams, output: Path) -> dict[str, Any]:
    """The stage's extra metrics: contamination per benchmark, index size, ground truth; also `contamination.json`."""
    kept_rows, dropped_rows = train_rows(kept, p), train_rows(drops, p)
    columns = (kept.column(ID).to_pylist(), kept.column(SPLIT).to_pylist(), metadata_rows(kept))
    eval_rows = [(record_id, meta) for record_id, split, meta in zip(*columns, strict=True) if split == Split.EVAL]
    hit = [r for r in kept_rows if (r[METADATA].get(STAGE) or {}).get("hits")]
    metrics: dict[str, Any] = {
        "contamination": contamination(index, kept_rows, dropped_rows),
        "edited": {"records": len(hit), "removed_chars": sum(r[METADATA][STAGE]["removed_chars"] for r in hit)},
        "index": {
            "eval_items": len(index.refs),
            "text_ngrams": len(index.text.items),
            "prompt_ngrams": len(index.prompt.items),
            "exact_prompts": len(index.exact_prompt),
            "template_ngrams_left_out": index.template_ngrams,
        },
        **truth_metrics(kept_rows, dropped_rows, eval_rows, index, p),
    }
    write_metrics(metrics, output / REPORT_FILE)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, DecontamParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    executor = load_params("executor", ExecutorParams, paths.params)
    items = read_eval_items(paths.inputs, p) + [item for s in p.external for item in read_external(s)]
    index = build_index(items, p)
    steps = [DecontamScore(index, p), Decide(STAGE, partial(decide, p=p), paths.output, io), ApplyCuts()]
    metrics = partial(report, index=index, p=p, output=paths.output)
    run_stage(STAGE, steps, paths, io, executor, metrics)


if __name__ == "__main__":
    setup_logging()
    main()
