"""Language identifiers for the `language` stage: accuracy on real text and documents per second.

Compares py3langid (restricted to params' candidate languages, and with all 97 of its languages) with lingua
(restricted, high- and low-accuracy mode) on the public sets under /work/shared/data: UD German/French/Spanish/
Chinese sentences, GUM English sentences, both also as 5-sentence documents, 200-word 10-K MD&A chunks, and short
English financial tweets (the hard case for a confidence floor). "kept" is the share the stage's rule keeps
(English with confidence >= min_score); for non-English sets it should be 0. Speed is single-process docs/s over
every text, and docs/s with 2 processes (the machine's cores).

    python -m benchmarks.bench_language [--data /work/shared/data] [--output benchmarks/results/language.json]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from benchmarks.common import write_result
from curation.config import load_params
from curation.language import Identifier, LanguageParams
from tests.realdata import DATA, mdna_sections, sentence_files, sentence_groups, word_chunks


Classify = Callable[[str], tuple[str, float]]


def load_sets(data: Path) -> dict[str, list[tuple[str, str]]]:
    sets: dict[str, list[tuple[str, str]]] = {"sentences non-en": [], "docs non-en": []}
    for name, s in sentence_files(data / "general" / "nonenglish_ud_text", strip=True).items():
        sets["sentences non-en"] += [(x, name[:2]) for x in s]
        sets["docs non-en"] += [(doc, name[:2]) for doc in sentence_groups(s, 5)]
    gum = [x for s in sentence_files(data / "general" / "nonfinance_english_gum", strip=True).values() for x in s]
    sets["sentences en (GUM)"] = [(x, "en") for x in gum]
    sets["docs en (GUM)"] = [(doc, "en") for doc in sentence_groups(gum, 5)]
    mdna = mdna_sections(data / "cpt" / "sec_10k_mdna")
    sets["10-K chunks en"] = [(c, "en") for text in mdna for c in word_chunks(text, 200, shortest=1)[:10]]
    with open(data / "instruct" / "twitter_financial_news_sentiment" / "sent_valid.csv", encoding="utf-8") as f:
        sets["tweets en (finance)"] = [(row["text"], "en") for row in csv.DictReader(f)]
    return sets


def py3langid(languages: list[str], max_chars: int) -> Classify:
    p = LanguageParams(languages=languages, keep=["en"], min_score=0.0, max_chars=max_chars)
    return Identifier(p)


def lingua(languages: list[str], max_chars: int, low_accuracy: bool) -> Classify:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, c.upper()) for c in languages))
    detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()

    def classify(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text[:max_chars])
        best = values[0] if values else None
        return (best.language.iso_code_639_1.name.lower(), best.value) if best and best.value > 0 else ("und", 0.0)

    return classify


_WORKER: Classify | None = None


def _init(factory: Callable[[], Classify]) -> None:
    global _WORKER
    _WORKER = factory()


def _run(texts: list[str]) -> int:
    assert _WORKER is not None
    return sum(1 for t in texts if _WORKER(t))


def docs_per_second_parallel(factory: Callable[[], Classify], texts: list[str], processes: int) -> float:
    chunks = [texts[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(processes, initializer=_init, initargs=(factory,)) as pool:
        list(pool.map(_run, [["warm up"]] * processes))
        started = time.perf_counter()
        sum(pool.map(_run, chunks))
        return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/language.json"))
    args = parser.parse_args()
    p = load_params("language", LanguageParams)
    sets = load_sets(args.data)
    texts = [t for items in sets.values() for t, _ in items]
    n = len(p.languages)
    factories: dict[str, Callable[[], Classify]] = {  # partials, not lambdas: they travel to worker processes
        f"py3langid {n} langs": partial(py3langid, p.languages, p.max_chars),
        "py3langid all langs": partial(py3langid, [], p.max_chars),
        f"lingua {n} langs": partial(lingua, p.languages, p.max_chars, low_accuracy=False),
        f"lingua {n} langs low-acc": partial(lingua, p.languages, p.max_chars, low_accuracy=True),
    }
    results = []
    for name, factory in factories.items():
        classify = factory()
        classify("warm up")
        row: dict[str, object] = {"identifier": name}
        started = time.perf_counter()
        for set_name, items in sets.items():
            verdicts = [(lang, *classify(text)) for text, lang in items]
            row[f"{set_name} acc"] = sum(t == d for t, d, _ in verdicts) / len(verdicts)
            row[f"{set_name} kept"] = sum(d == "en" and s >= p.min_score for _, d, s in verdicts) / len(verdicts)
        row["docs/s 1 proc"] = len(texts) / (time.perf_counter() - started)
        row["docs/s 2 procs"] = docs_per_second_parallel(factory, texts, 2)
        results.append(row)

    columns = list(results[0])
    print(f"{len(texts):,} texts; min_score {p.min_score}, max_chars {p.max_chars}")
    print(f"{'':<30}" + "  ".join(f"{r['identifier']:>22}" for r in results))
    for column in columns[1:]:
        cells = "  ".join(f"{r[column]:>22.3f}" if isinstance(r[column], float) else "" for r in results)
        print(f"{column:<30}{cells}")
    sizes = {k: len(v) for k, v in sets.items()}
    report = {"sets": sizes, "params": {"min_score": p.min_score, "max_chars": p.max_chars}, "results": results}
    write_result("language", report, args.output)


if __name__ == "__main__":
    main()
