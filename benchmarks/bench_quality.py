"""Quality stage on real financial text: keep rate and speed of curation.quality vs datatrove's published filters.

Corpora (shared/data/cpt): the 102 SEC 10-K MD&A sections whole and cut into 300-800 word chunks, Reuters-21578
bodies of at least `min_words` words, and FOMC minutes plus press conferences; whitespace normalized as the clean
stage does. Contenders:

- `curation.quality`: `QualityScorer` (every statistic) + `QualityRules` (the decision) with params.yaml values.
- datatrove, as FineWeb runs it: GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter(
  filter_no_terminal_punct=False) -> FineWebQualityFilter, all with their published defaults (spaCy words, NLTK-free
  sentence splitting through spaCy). It runs on at most `--docs` documents per corpus, since it is slow.
- Gopher's n-gram statistics alone: `curation.quality.ngram_repetition` vs datatrove's `find_top_duplicate` +
  `find_all_duplicate`, on the words of the whole 10-K sections (they agree exactly; see the tests).

Run manually from the project root: `python -m benchmarks.bench_quality [--docs 400] [--output PATH]`. Prints a
table and writes a JSON result with machine info. Other processes may share the machine: CPU seconds are reported
next to wall seconds.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from curation.config import load_params
from curation.quality import (
    DUP_NGRAMS,
    PUNCTUATION,
    TOP_NGRAMS,
    QualityParams,
    QualityRules,
    QualityScorer,
    ngram_repetition,
)
from tests.realdata import fomc_cleaned, line_chunks, mdna_cleaned, reuters_cleaned


ROOT = Path(__file__).resolve().parents[1]


def corpora(min_words: int) -> dict[str, list[str]]:
    filings, fomc = mdna_cleaned(), fomc_cleaned()
    return {
        "10-K MD&A, whole": filings,
        "10-K MD&A, chunks": [c for f in filings for c in line_chunks(f)],
        "Reuters stories": [b for b in reuters_cleaned() if len(b.split()) >= min_words],
        "FOMC minutes + press": fomc,
        "FOMC, chunks": [c for m in fomc for c in line_chunks(m)],
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ours(p: QualityParams, texts: Sequence[str]) -> Counter[str]:
    scorer, rules = QualityScorer(p), QualityRules(p)
    reasons: Counter[str] = Counter()
    for text in texts:
        drop = rules(scorer(text), "cpt", "en")
        reasons[drop.failure if drop else "kept"] += 1
    return reasons


def datatrove_chain(texts: Sequence[str]) -> Counter[str]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    chain = [
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
    ]
    reasons: Counter[str] = Counter()
    for i, text in enumerate(texts):
        doc, verdict = Document(text=text, id=str(i)), "kept"
        for step in chain:
            result = step.filter(doc)
            if result is not True:
                verdict = result[1] if isinstance(result, tuple) else step.name
                break
        reasons[verdict] += 1
    return reasons


def ngram_speed(texts: Sequence[str]) -> dict[str, float]:
    from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate, find_top_duplicate, get_n_grams

    docs = [[w for w in (t.strip(PUNCTUATION) for t in text.split()) if w] for text in texts]

    def theirs() -> None:
        for words in docs:
            [find_top_duplicate(get_n_grams(words, n)) for n in TOP_NGRAMS if len(words) >= n]
            [find_all_duplicate(words, n) for n in DUP_NGRAMS]

    _, _, cpu_ours = timed(lambda: [ngram_repetition(words) for words in docs])
    _, _, cpu_theirs = timed(theirs)
    n_words = sum(map(len, docs))
    return {
        "words": n_words,
        "ours_words_per_cpu_s": n_words / cpu_ours,
        "datatrove_words_per_cpu_s": n_words / cpu_theirs,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--docs", type=int, default=400, help="documents per corpus for datatrove (default: %(default)s)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/quality.json")
    args = parser.parse_args(argv)
    p = load_params("quality", QualityParams, ROOT / "params.yaml")
    table = Table(title="quality: keep rate and speed on real financial text")
    for column in ("corpus", "docs", "words", "ours kept", "ours docs/cpu-s", "datatrove docs", "datatrove kept",
                   "datatrove docs/cpu-s", "datatrove top drop reasons"):  # fmt: skip
        table.add_column(column)
    results: dict[str, Any] = {}
    for name, texts in corpora(p.min_words).items():
        words = sum(len(t.split()) for t in texts)
        mine, wall, cpu = timed(lambda texts=texts: ours(p, texts))
        sample = texts[:: max(1, len(texts) // args.docs)][: args.docs]
        theirs, their_wall, their_cpu = timed(lambda sample=sample: datatrove_chain(sample))
        drops = [(r, n) for r, n in theirs.most_common() if r != "kept"][:3]
        results[name] = {
            "docs": len(texts),
            "words": words,
            "ours": {
                "kept_rate": mine["kept"] / len(texts),
                "drops": dict(mine),
                "wall_s": wall,
                "cpu_s": cpu,
                "docs_per_cpu_s": len(texts) / cpu,
                "words_per_cpu_s": words / cpu,
            },
            "datatrove": {
                "docs": len(sample),
                "kept_rate": theirs["kept"] / len(sample),
                "drops": dict(theirs),
                "wall_s": their_wall,
                "cpu_s": their_cpu,
                "docs_per_cpu_s": len(sample) / their_cpu,
            },
        }
        table.add_row(
            name, f"{len(texts):,}", f"{words:,}", f"{mine['kept'] / len(texts):.1%}", f"{len(texts) / cpu:,.0f}",
            f"{len(sample):,}", f"{theirs['kept'] / len(sample):.1%}", f"{len(sample) / their_cpu:,.1f}",
            ", ".join(f"{r} {n}" for r, n in drops),
        )  # fmt: skip
    results["ngram_statistics_10k_whole"] = ngram_speed(mdna_cleaned())
    console = Console(width=200)
    console.print(table)
    ng = results["ngram_statistics_10k_whole"]
    console.print(
        f"Gopher n-gram statistics on {ng['words']:,} words: ours {ng['ours_words_per_cpu_s']:,.0f} words/cpu-s, "
        f"datatrove helpers {ng['datatrove_words_per_cpu_s']:,.0f} words/cpu-s"
    )
    write_result("quality", {"title": "quality filters on real financial text", "results": results}, args.output)


if __name__ == "__main__":
    main()
