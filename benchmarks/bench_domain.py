"""The `domain` stage end to end on real text laid out like FinTrain-mini: quality against truth, and speed.

Seeds: `filings` = 10-K MD&A, FOMC and business-textbook chunks, `general` = GUM dev documents (the training split
of tests/curation/test_domain.py). The mixed crawl `web` = Reuters-21578 financial stories, OpenStax finance
textbook chunks (is_finance true) and GUM test documents (false): sources the classifier never saw. The stage runs
as DVC would run it, in threshold mode and in percentile mode (keeping the true finance share), and reports its
held-out seed P/R/F1, its P/R/F1 against truth on `web`, wall time, and scoring speed of the trained model
(whole scoring path, and fastText's predict alone).

    python -m benchmarks.bench_domain [--output benchmarks/results/domain.json]   (from the project root)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result
from curation import domain
from curation.config import load_params
from curation.domain import DomainParams, normalize, score_texts, train_classifier
from tests.curation.stage_helpers import make_record, project, run_main, write_input
from tests.curation.test_domain import real_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/domain.json"))
    args = parser.parse_args()
    p = load_params("domain", DomainParams)
    train, train_labels, test, test_labels = real_split()
    seeds = zip(train, train_labels, strict=True)
    records = [make_record(t, source="filings" if y else "general") for t, y in seeds]
    crawl = zip(test, test_labels, strict=True)
    records += [make_record(t, source="web", metadata={"is_finance": y}) for t, y in crawl]

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = write_input(root / "in", records)
        finance_share = 100 * sum(test_labels) / len(test_labels)
        for name, changes in {
            "threshold 0.5": {},
            f"percentile {finance_share:.0f}": {"mode": "percentile", "percentile": round(finance_share)},
        }.items():
            params = project(root, domain=changes)
            started = time.perf_counter()
            metrics = run_main(domain.main, root, params, [inputs], name.replace(" ", "_"))
            seconds = time.perf_counter() - started
            results.append({"run": name, "seconds": seconds, "records/s": metrics["in"] / seconds, **metrics})

    started = time.perf_counter()
    model = train_classifier(train, train_labels, p)
    train_seconds = time.perf_counter() - started
    texts = test * 20
    started = time.perf_counter()
    score_texts(model, texts, p.max_words)
    scoring = len(texts) / (time.perf_counter() - started)
    normalized = [normalize(t, p.max_words) for t in texts]
    started = time.perf_counter()
    model.predict(normalized, k=-1)
    predict_only = len(texts) / (time.perf_counter() - started)  # fastText alone, on text already normalized

    print(f"{len(train):,} seed records, {len(test):,} web records ({sum(test_labels):,} finance)")
    for r in results:
        h, t, s = r["holdout"], r["truth"], r["selection"]
        print(
            f"{r['run']:<15} cut {s['threshold']:.3f}  holdout P/R/F1 {h['precision']:.3f}/{h['recall']:.3f}/"
            f"{h['f1']:.3f}  web vs truth P/R/F1 {t['precision']:.3f}/{t['recall']:.3f}/{t['f1']:.3f}  "
            f"stage {r['seconds']:.1f} s ({r['records/s']:,.0f} records/s)"
        )
    words = sum(len(t.split()) for t in normalized) / len(normalized)
    print(f"training {train_seconds:.2f} s on {len(train):,} texts; scoring {scoring:,.0f} texts/s of {words:.0f} "
          f"words (fastText predict alone {predict_only:,.0f}/s; the rest is normalize)")  # fmt: skip
    report = {"runs": results, "train_seconds": train_seconds, "scoring_texts_per_s": scoring,
              "predict_only_texts_per_s": predict_only, "words_per_text": words}  # fmt: skip
    write_result("domain", report, args.output)


if __name__ == "__main__":
    main()
