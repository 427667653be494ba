"""Speed of the decontam stage's pure pieces on real data, and datatrove's n-gram filter for comparison.

Eval index: Financial PhraseBank (50Agree, 4,846 sentences) + FinQA test_500 (full context + question + answer).
Documents: the 102 SEC 10-K MD&A sections (1.6 M words). Conversations: PIXIU's FPB instructions (7,740).
datatrove's `NGramsDecontFilter` (spaCy word tokenizer + `simplify_text`, sha1 hashes because its xxhash path passes
`str`, which xxhash 4 rejects) runs on the same documents with an index of the same items built its way; it only
flags documents, it does not cut them.

Run manually from the project root: `python -m benchmarks.bench_decontam [--out PATH] [--datatrove-docs N]`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.common import write_result
from curation.config import load_params
from curation.decontam import DecontamParams, EvalItem, build_index, scan_conversation, scan_document, words
from curation.progress import console
from tests.realdata import DATA, mdna_sections, phrasebank, pixiu_conversations


def eval_items() -> list[EvalItem]:
    items = [EvalItem("fpb", f"fpb:{i}", sentence, label) for i, sentence, label in phrasebank()]
    for row in json.loads((DATA / "eval/finqa/test_500_simplified/test_500.json").read_text()):
        table = "\n".join(" | ".join(cells) for cells in row["table"])
        prompt = "\n".join([*row["pre_text"], table, *row["post_text"], row["question"]])
        items.append(EvalItem("finqa", row["id"], prompt, str(row["answer"])))
    return items


def timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def datatrove_filter(items: list[EvalItem], docs: list[str], n: int) -> tuple[int, float]:
    """datatrove's filter over `docs`, with an index of `items` built as its indexer does; (flagged, seconds)."""
    import numpy as np
    from datatrove.data import Document
    from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter
    from datatrove.utils.hashing import HashConfig, create_hash_func
    from datatrove.utils.text import ngrams, simplify_text
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    config = NGramsDecontConfig(n_grams=n, find_query_ngrams=True, hash_config=HashConfig(hash_fc="sha1"))
    tokenizer, hash_func = load_word_tokenizer("en"), create_hash_func(config.hash_config)
    hashes = set()
    for item in items:
        tokens = tokenizer.word_tokenize(simplify_text(f"{item.prompt} {item.answer}", config.norm_config))
        hashes.update(hash_func(" ".join(g)) for g in ngrams(tokens, n))
    with tempfile.TemporaryDirectory() as folder:
        np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(f"{folder}/all.index.hashes")
        step = NGramsDecontFilter(folder, config=config)
        step.load_index_hashes()
        flagged, seconds = timed(
            lambda: sum(step.filter(Document(text=d, id=str(i))) is not True for i, d in enumerate(docs))
        )
    return flagged, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decontam.json"))
    parser.add_argument(
        "--datatrove-docs", type=int, default=20, help="documents for datatrove's filter (spaCy is slow)"
    )
    args = parser.parse_args()
    p = load_params("decontam", DecontamParams)
    items = eval_items()
    index, index_s = timed(lambda: build_index(items, p))
    docs = mdna_sections()
    n_words = sum(len(words(d)) for d in docs)
    scans, doc_s = timed(lambda: [scan_document(d, index, p) for d in docs])
    turns = pixiu_conversations("FPB/valid.jsonl")
    convs, conv_s = timed(lambda: [scan_conversation(t[0], "\n\n".join(t), index) for t in turns])
    sub = docs[: args.datatrove_docs]
    sub_words = sum(len(words(d)) for d in sub)
    _, ours_sub_s = timed(lambda: [scan_document(d, index, p) for d in sub])
    dt_flagged, dt_s = datatrove_filter(items, sub, p.ngram)

    rows = [
        ("build index", f"{len(items):,} eval items", index_s, f"{len(index.text.items):,} text n-grams"),
        ("scan documents", f"{len(docs)} docs, {n_words:,} words", doc_s, f"{n_words / doc_s:,.0f} words/s"),
        ("scan conversations", f"{len(turns):,} PIXIU FPB", conv_s, f"{len(turns) / conv_s:,.0f} records/s"),
        (
            "ours, same docs",
            f"{len(sub)} docs, {sub_words:,} words",
            ours_sub_s,
            f"{sub_words / ours_sub_s:,.0f} words/s",
        ),
        ("datatrove filter", f"{len(sub)} docs, {sub_words:,} words", dt_s, f"{sub_words / dt_s:,.0f} words/s"),
    ]
    table = Table(title="decontam speed (one core)")
    for column in ("step", "input", "seconds", "rate"):
        table.add_column(column)
    for step, what, seconds, rate in rows:
        table.add_row(step, what, f"{seconds:.2f}", rate)
    console.print(table)
    hits = {
        "documents_with_hits": sum(bool(s.hits) for s in scans),
        "document_hits": sum(s.hits for s in scans),
        "document_chars_removed": sum(len(d) - len(s.text or "") for d, s in zip(docs, scans, strict=True)),
        "pixiu_fpb_records_hit": sum(bool(s.hits) for s in convs),
        "datatrove_docs_flagged": dt_flagged,
        "ours_docs_flagged_same_docs": sum(bool(s.hits) for s in scans[: len(sub)]),
    }
    console.print(hits)
    rows_out = [dict(zip(("step", "input", "seconds", "rate"), r, strict=True)) for r in rows]
    write_result("decontam", {"rows": rows_out, "hits": hits}, args.out)


if __name__ == "__main__":
    main()
