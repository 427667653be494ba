"""MinHash signature throughput, docs/s on one core: curation.dedup vs datatrove's MinhashDedupSignature vs datasketch.

Run by hand (not collected by pytest): `python -m benchmarks.bench_dedup [--docs 20000]`. The documents are sliding
500-word windows over real text in shared/data (10-K MD&A sections and Reuters-21578 bodies). Every contender uses
the same setup: word 5-grams, 14 bands x 8 rows = 112 permutations, 64-bit hashes where the library offers them.

- `curation.dedup`: what the stage's plan does per document (tokenize, xxh64 per shingle, numpy permutations, and the
  two token hashes of the `numbers: distinct` guard).
- datatrove `MinhashDedupSignature`: its own per-document work (`get_shingles`: simplify_text + spaCy word
  tokenizer + xxh64; `get_signature`: (a*x+b) mod 2^61-1 in numpy), and its whole `run()` (which also writes 14
  bucket files and sorts them). xxhash 4 refuses `str`, which datatrove 0.10.1 passes, so its hash function is wrapped
  to encode first, as xxhash 3 did internally.
- datasketch `MinHash(num_perm=112)` with `update_batch` over the encoded shingles: its default (affine32 over
  sha1_hash32) and the affine64 + xxh64 scheme the stage reproduces; both include our tokenizer.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xxhash
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_result
from curation.config import load_params
from curation.dedup import DedupParams, MinHasher, tokenize
from tests.realdata import DATA, mdna_sections, reuters_bodies


ROOT = Path(__file__).resolve().parents[1]
WINDOW = 500


def documents(n: int, stride: int = 150) -> list[str]:
    """Sliding WINDOW-word windows over MD&A sections and Reuters bodies, alternating, until there are n."""
    words = [" ".join(mdna_sections()).split(), " ".join(reuters_bodies()).replace("&lt;", "<").split()]
    windows = [[" ".join(w[i : i + WINDOW]) for i in range(0, len(w) - WINDOW, stride)] for w in words]
    docs = [d for pair in zip(*windows, strict=False) for d in pair]
    if len(docs) < n:
        raise SystemExit(f"only {len(docs)} windows of {WINDOW} words in {DATA}; lower --docs or the stride")
    return docs[:n]


def timed(fn: Callable[[list[str]], object], docs: list[str]) -> tuple[float, float]:
    """(docs per CPU second of this process, docs per wall second): CPU time is what a core delivers even when
    other processes share the machine; wall time is what you wait."""
    fn(docs[:100])  # warm-up: spaCy's first call, numpy buffers
    cpu, wall = time.process_time(), time.perf_counter()
    fn(docs)
    return len(docs) / (time.process_time() - cpu), len(docs) / (time.perf_counter() - wall)


def ours(p: DedupParams) -> Callable[[list[str]], object]:
    hasher = MinHasher(p)
    return lambda docs: [hasher(d) for d in docs]


def shingles(text: str) -> list[bytes]:
    t = tokenize(text)
    return [" ".join(t[i : i + 5]).encode() for i in range(len(t) - 4)]


def datasketch_loop(**kwargs: object) -> Callable[[list[str]], object]:
    from datasketch import MinHash

    def run(docs: list[str]) -> list[np.ndarray]:
        out = []
        for d in docs:
            m = MinHash(num_perm=112, **kwargs)
            m.update_batch(shingles(d))
            out.append(m.hashvalues)
        return out

    return run


def datatrove_step(folder: str) -> object:
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    hashing = HashConfig(precision=64, hash_fc="xxhash")
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1, hash_config=hashing)
    step = MinhashDedupSignature(output_folder=folder, config=config, language="en")
    step._hash_func = lambda s: xxhash.xxh64_intdigest(s.encode())  # xxhash>=4 wants bytes; datatrove passes str
    return step


def datatrove_compute(folder: str) -> Callable[[list[str]], object]:
    step = datatrove_step(folder)
    return lambda docs: [step.get_signature(step.get_shingles(d)) for d in docs]


def datatrove_run(folder: str) -> Callable[[list[str]], object]:
    from datatrove.data import Document

    step = datatrove_step(folder)
    return lambda docs: step.run((Document(text=d, id=str(i)) for i, d in enumerate(docs)), rank=0, world_size=1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000, help="documents of 500 words (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/dedup.json")
    args = parser.parse_args(argv)
    p = load_params("dedup", DedupParams, ROOT / "params.yaml")
    docs = documents(args.docs)
    words = sum(len(d.split()) for d in docs) / len(docs)

    # sanity: the stage's signatures are datasketch's affine64 + xxh64 values, bit for bit
    reference = datasketch_loop(seed=p.seed, scheme="affine64", hashfunc=xxhash.xxh64_intdigest)(docs[:50])
    hasher = MinHasher(p)
    assert all(np.array_equal(hasher(d)[0], r) for d, r in zip(docs[:50], reference, strict=True))

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        contenders = {
            "curation.dedup (numpy, xxh64, affine64)": ours(p),
            "datatrove MinhashDedupSignature: shingles + signature": datatrove_compute(tmp + "/a"),
            "datatrove MinhashDedupSignature.run (+ write, sort)": datatrove_run(tmp + "/b"),
            "datasketch MinHash(112) default (sha1_hash32, affine32)": datasketch_loop(),
            "datasketch MinHash(112) affine64 + xxh64": datasketch_loop(
                scheme="affine64", hashfunc=xxhash.xxh64_intdigest
            ),
        }
        results = {name: timed(fn, docs) for name, fn in contenders.items()}

    ours_rate = results["curation.dedup (numpy, xxh64, affine64)"][0]
    table = Table(title=f"MinHash signatures, {len(docs):,} docs of {words:.0f} words, one process")
    for column in ("implementation", "docs/CPU-s", "docs/wall-s", "x datatrove run", "ours / it"):
        table.add_column(column, justify="left" if column == "implementation" else "right")
    base = results["datatrove MinhashDedupSignature.run (+ write, sort)"][0]
    for name, (rate, wall) in results.items():
        table.add_row(name, f"{rate:,.0f}", f"{wall:,.0f}", f"{rate / base:.2f}", f"{ours_rate / rate:.2f}")
    Console(width=140).print(table)

    result = {
        "title": "minhash signature throughput (docs/s, single process)",
        "documents": len(docs),
        "words_per_doc": round(words, 1),
        "source": "sliding 500-word windows (stride 150) over shared/data cpt/sec_10k_mdna and cpt/reuters21578",
        "config": {"ngram": 5, "bands": 14, "rows": 8, "num_perm": 112, "hash_bits": 64, "numbers": p.numbers},
        "docs_per_cpu_s": {name: round(rate, 1) for name, (rate, _) in results.items()},
        "docs_per_wall_s": {name: round(wall, 1) for name, (_, wall) in results.items()},
        "target_docs_per_s_per_core": 1500,
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
    }
    write_result("dedup", result, args.output)
    Console().print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
