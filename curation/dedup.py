"""Stage `dedup`: exact duplicates by content hash, then near duplicates by MinHash LSH; one record kept per cluster.

Deduplication is global: whether a record goes depends on every other record, so it cannot be a per-document filter.
The stage follows datatrove's multi-stage MinHash design in spirit, in three passes:

1. *Plan* (one process, before the pipeline): a plain pyarrow pass over the input records hashes every judged text
   (xxh3-128, exact) and computes one MinHash signature per distinct text (word 5-gram shingles, each hashed once with
   xxh64, then `bands x rows` permutations applied to the whole shingle array at once in numpy). Band collisions give
   candidate pairs; each is verified by its estimated Jaccard, and a union-find merges the verified pairs into
   clusters. The result is a plain dict {id -> metadata.dedup}, small enough to pickle to workers.
2. *Annotate* (the usual `run_stage` pipeline): every record gets its `metadata.dedup` (cluster, size, hashes).
3. *Decide*: a record that is not its cluster's representative is dropped as `dedup.exact_duplicate` (same text) or
   `dedup.near_duplicate` (estimated Jaccard with the kept record as score).

The non-obvious decision is the cost of being global: the plan reads the inputs once more than a filter stage would,
and holds one 112 x 64-bit signature per distinct text in memory (900 bytes; about 9 GB for 10 M documents). Past that
size, run datatrove's own `MinhashDedupSignature/Buckets/Cluster/Filter` steps, which sort signatures on disk.

Which record a cluster keeps is a stated, deterministic rule: the one from the highest-priority source in
`source_priority` (a filing over its re-post on the web; unlisted sources come after listed ones), then the smallest
id. Evaluation items are left out of clustering altogether (decontamination handles train/eval overlap), so a
benchmark item is never chosen over a training record. Conversations get exact dedup only unless `near_kinds` lists
their kind: instruction templates share long word runs, so their 5-gram Jaccard overstates how alike they are.

Digits are kept in shingles, unlike datatrove's default `TextNormConfig.norm_numbers`: two filings that differ only
in their figures are different documents. With `numbers: distinct` this is made exact: two records whose token
sequences differ but become identical once every number is masked are never put in one cluster, not even through a
chain of near duplicates (a "cannot-link" union-find), because a long filing with one changed figure still has a
5-gram Jaccard above any sensible threshold.
"""

from __future__ import annotations

import functools
import logging
import re
import string
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from datatrove.data import Document

from curation.config import load_params, params
from curation.io import RECORDS_GLOB, IOParams, stage_paths
from curation.pipeline import Annotate, Decide, Drop, ExecutorParams, count_rows, judged_text, run_stage
from curation.progress import setup_logging, track
from curation.schema import ANSWER, CHOSEN, ID, KIND, MESSAGES, METADATA, REJECTED, SOURCE, SPLIT, TEXT, Split
from curation.truth import metadata_rows


STAGE = "dedup"
log = logging.getLogger(__name__)

# Stripped from both ends of a whitespace token; inside a token they stay ("1,234.5", "u.s", "year-over-year").
PUNCTUATION = string.punctuation + "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2010\u2011\u2012\u2013\u2014"
PUNCTUATION += "\u2015\u2026\u00ab\u00bb\u2039\u203a\u00a1\u00bf\u00b7\u2022\u00a7\u00b6\u2020\u2021\u00b0\u2032\u2033"
PUNCTUATION += "\u20ac\u00a3\u00a5\u00a2\u00a9\u00ae\u2122"
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")  # datatrove's NUMBERS_PATTERN, for `numbers: normalize`
DIGITS = b"0123456789"  # deleted for the `numbers: distinct` guard: "rose 5.2% to $1,234" -> "rose .% to $,"
BUCKET_PAIRS = 16  # in a band bucket, each member is paired with the next 15 (all pairs in small buckets)
_U64 = np.uint64
_FMIX = (_U64(33), _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53))  # MurmurHash3 fmix64


@params
class DedupParams:
    ngram: int
    bands: int
    rows: int
    seed: int
    threshold: float
    numbers: Literal["distinct", "keep", "normalize"]
    near_kinds: list[str]
    source_priority: list[str]


# ----------------------------------------------------------------------------------------------- signatures


def tokenize(text: str, numbers: str = "keep") -> list[str]:
    """Lowercased whitespace tokens with leading/trailing punctuation stripped; digits kept unless `normalize`."""
    text = text.lower()
    if numbers == "normalize":  # datatrove's TextNormConfig.norm_numbers: every number becomes "0"
        text = NUMBER.sub("0", text)
    return [t for t in [w if w.isalnum() else w.strip(PUNCTUATION) for w in text.split()] if t]


def shingle_hashes(tokens: Sequence[str], n: int) -> np.ndarray:
    """xxh64 of every word n-gram joined by one space (UTF-8); fewer than n tokens make one shingle."""
    if not tokens:
        return np.empty(0, dtype=_U64)
    joined = " ".join(tokens).encode("utf-8", "surrogatepass")
    sizes = [len(t) for t in tokens] if joined.isascii() else [len(t.encode("utf-8", "surrogatepass")) for t in tokens]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size + 1)  # start of token i; the n-gram i spans starts[i] .. starts[i + n] - 1
    m = max(1, len(tokens) - n + 1)
    ends = [e - 1 for e in starts[n : n + m]] if len(tokens) >= n else [len(joined)]
    return np.fromiter(
        map(xxhash.xxh64_intdigest, map(joined.__getitem__, map(slice, starts[:m], ends))), dtype=_U64, count=m
    )


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of datasketch 2.x's 'affine64' scheme, drawn exactly as datasketch draws them (a odd)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 63, num_perm, dtype=_U64) * _U64(2) + _U64(1)
    b = gen.randint(0, 1 << 64, num_perm, dtype=_U64)
    return a, b


class MinHasher:
    """Signatures of texts: fmix64 pre-mix, then h -> a*h + b mod 2^64 (a bijection) and a column-wise min.

    The same values as datasketch 2.x `MinHash(num_perm, seed, scheme='affine64', hashfunc=xxhash.xxh64_intdigest)`
    updated with the shingles' UTF-8 bytes, computed for all shingles and permutations in three numpy passes.
    """

    def __init__(self, p: DedupParams) -> None:
        self.p = p
        self.num_perm = p.bands * p.rows
        self.a, self.b = permutations(self.num_perm, p.seed)
        self._buffer = np.empty((0, self.num_perm), dtype=_U64)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """The MinHash signature of an array of 64-bit shingle hashes (non-empty)."""
        s1, m1, m2 = _FMIX
        x = hashes ^ (hashes >> s1)
        x *= m1
        x ^= x >> s1
        x *= m2
        x ^= x >> s1
        if len(x) > len(self._buffer):
            self._buffer = np.empty((max(len(x), 2 * len(self._buffer)), self.num_perm), dtype=_U64)
        phv = self._buffer[: len(x)]
        np.multiply.outer(x, self.a, out=phv)  # wraps mod 2^64, as intended
        phv += self.b
        return phv.min(axis=0)

    def __call__(self, text: str) -> tuple[np.ndarray | None, int, int]:
        """(signature or None when there is no token, token-sequence hash, the same with every digit deleted)."""
        tokens = tokenize(text, self.p.numbers)
        if not tokens:
            return None, 0, 0
        joined = " ".join(tokens).encode("utf-8", "surrogatepass")
        token_hash = xxhash.xxh3_64_intdigest(joined)
        masked_hash = xxhash.xxh3_64_intdigest(joined.translate(None, DIGITS)) if self.p.numbers == "distinct" else 0
        return self.signature(shingle_hashes(tokens, self.p.ngram)), token_hash, masked_hash


def estimated_jaccard(sigs: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Share of equal signature values for each pair (i[k], j[k]): the MinHash estimate of their Jaccard."""
    out = np.empty(len(i), dtype=np.float64)
    for s in range(0, len(i), chunk):
        out[s : s + chunk] = (sigs[i[s : s + chunk]] == sigs[j[s : s + chunk]]).mean(axis=1)
    return out


def exact_hash(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


def hash_scheme(p: DedupParams) -> dict[str, Any]:
    """Everything needed to reproduce or compare a signature (datasketch 2.x changed its default scheme)."""
    digits = {
        "keep": "digits kept",
        "distinct": "digits kept; texts whose tokens are equal once ASCII digits are deleted are never clustered",
        "normalize": "every number replaced by 0 (datatrove norm_numbers)",
    }[p.numbers]
    n = p.bands * p.rows
    return {
        "exact": "xxh3_128 of the judged text (UTF-8), no normalization",
        "tokenizer": f"lowercase; whitespace split; leading/trailing punctuation stripped, inner kept; {digits}",
        "shingles": f"word {p.ngram}-grams joined by one space, UTF-8, xxh64 seed 0; a shorter text is one shingle",
        "permutations": "datasketch>=2 affine64: fmix64 pre-mix, a*h+b mod 2^64, a odd, (a, b) from RandomState(seed)",
        "datasketch_equivalent": f"MinHash(num_perm={n}, seed={p.seed}, scheme='affine64', hashfunc=xxh64_intdigest)",
        "num_perm": n,
        "bands": p.bands,
        "rows": p.rows,
        "seed": p.seed,
        "hash_bits": 64,
        "numpy": np.__version__,
        "xxhash": xxhash.VERSION,
    }


# ------------------------------------------------------------------------------------------------------- LSH


def candidate_pairs(sigs: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) that share all `rows` values of at least one band, deduplicated and sorted."""
    n = len(sigs)
    found = []
    for band in range(bands):
        _, group = np.unique(sigs[:, band * rows : (band + 1) * rows], axis=0, return_inverse=True)
        order = np.argsort(group.ravel(), kind="stable")  # members of a bucket are adjacent, in index order
        grouped = group.ravel()[order]
        for d in range(1, BUCKET_PAIRS):
            same = grouped[d:] == grouped[:-d]
            if not same.any():
                break
            found.append(order[:-d][same].astype(np.int64) * n + order[d:][same])
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    keys = np.unique(np.concatenate(found))
    return keys // n, keys % n


class Clusters:
    """Union-find whose root is remembered as the smallest index (the record the cluster keeps).

    With `figures` (index -> (masked hash, token hash)), a union is refused when it would put two records whose
    texts differ only in their numbers into one cluster.
    """

    def __init__(self, n: int, figures: Sequence[tuple[int, int]] | None = None) -> None:
        self.parent = list(range(n))
        self.best = list(range(n))
        self.size = [1] * n
        self.figures = None if figures is None else [{m: t} for m, t in figures]
        self.refused = 0

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> bool:
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return True
        if self.size[ri] < self.size[rj]:
            ri, rj = rj, ri
        if self.figures is not None:
            big, small = self.figures[ri], self.figures[rj]
            if any(big.get(masked, token) != token for masked, token in small.items()):
                self.refused += 1
                return False
            big.update(small)
            self.figures[rj] = {}
        self.parent[rj] = ri
        self.size[ri] += self.size[rj]
        self.best[ri] = min(self.best[ri], self.best[rj])
        return True

    def representative(self, i: int) -> int:
        return self.best[self.find(i)]


# ------------------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Row:
    """What the plan needs of a record."""

    id: str
    source: str
    kind: str
    split: str
    text: str


@dataclass
class Plan:
    """The stage's global decision: `table` maps every id to its `metadata.dedup`; `summary` goes to the metrics."""

    table: dict[str, dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


def plan(rows: Iterable[Row], p: DedupParams) -> Plan:
    """Exact groups, then MinHash LSH clusters of their representatives, then one kept record per cluster."""
    started = time.perf_counter()
    rank = {source: i for i, source in enumerate(p.source_priority)}
    minhasher = MinHasher(p)
    table: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)  # exact hash -> [(source rank, id)]
    hashed: dict[str, tuple[np.ndarray, int, int]] = {}  # exact hash -> (signature, token hash, masked hash)
    n_eval = n_hashed = 0
    for row in rows:
        if row.id in table:
            raise ValueError(f"dedup: record id {row.id} appears twice in the inputs; ids must be unique (see ingest)")
        h = exact_hash(row.text)
        if row.split == Split.EVAL:
            table[row.id] = entry(row.id, 1, h, None, None, clustered=False)
            n_eval += 1
            continue
        table[row.id] = {}  # filled below
        groups[h].append((rank.get(row.source, len(rank)), row.id))
        if row.kind in p.near_kinds and h not in hashed:
            sig, token_hash, masked_hash = minhasher(row.text)
            if sig is not None:
                hashed[h] = (sig, token_hash, masked_hash)
                n_hashed += 1
    seconds = time.perf_counter() - started
    log.info("dedup: %d signatures in %.1f s (%.0f docs/s)", n_hashed, seconds, n_hashed / max(seconds, 1e-9))

    # Exact groups, each ordered by the keep rule; near-dup candidates are the groups with a signature.
    members = {h: [i for _, i in sorted(g)] for h, g in groups.items()}
    reps = sorted(((min(g), h) for h, g in groups.items() if h in hashed))  # index order = keep order
    near_hashes = [h for _, h in reps]
    sigs = np.stack([hashed[h][0] for h in near_hashes]) if near_hashes else np.empty((0, minhasher.num_perm), _U64)
    i, j = candidate_pairs(sigs, p.bands, p.rows)
    est = estimated_jaccard(sigs, i, j)
    keep = est >= p.threshold
    i, j, est = i[keep], j[keep], est[keep]
    order = np.lexsort((j, i, -est))  # most similar pairs first, so a refused union loses the weakest link
    figures = [(hashed[h][2], hashed[h][1]) for h in near_hashes] if p.numbers == "distinct" else None
    clusters = Clusters(len(near_hashes), figures)
    for k in order.tolist():
        clusters.union(int(i[k]), int(j[k]))

    # Cluster of each exact group: its near-dup representative's, or the group itself.
    index = {h: k for k, h in enumerate(near_hashes)}
    cluster_of = {h: members[near_hashes[clusters.representative(k)]][0] for h, k in index.items()}
    sizes: Counter[str] = Counter()
    for h, ids in members.items():
        cluster_of.setdefault(h, ids[0])
        sizes[cluster_of[h]] += len(ids)
    kept_hash = {members[h][0]: h for h in members}
    for h, ids in members.items():
        cluster = cluster_of[h]
        jaccard = None
        if h in index:
            other = index[kept_hash[cluster]]
            jaccard = round(float((sigs[index[h]] == sigs[other]).mean()), 4)
        for rank_in_group, record in enumerate(ids):
            exact_of = None if rank_in_group == 0 else ids[0]
            table[record] = entry(cluster, sizes[cluster], h, exact_of, jaccard, clustered=True)

    multi = [n for n in sizes.values() if n > 1]
    plan_summary = {
        "eval_excluded": n_eval,
        "exact_groups_with_copies": sum(1 for ids in members.values() if len(ids) > 1),
        "near_hashed": n_hashed,
        "candidate_pairs": int(keep.size),
        "pairs_at_threshold": int(keep.sum()),
        "figure_unions_refused": clusters.refused,
        "clusters_with_duplicates": len(multi),
        "largest_cluster": max(multi, default=1),
        "hash_scheme": hash_scheme(p),
    }
    return Plan(table, plan_summary)


def entry(
    cluster: str, size: int, h: str, exact_of: str | None, jaccard: float | None, *, clustered: bool
) -> dict[str, Any]:
    """One record's `metadata.dedup`: the cluster is named after the id it keeps."""
    return {
        "cluster": cluster,
        "cluster_size": size,
        "exact_hash": h,
        "exact_of": exact_of,
        "jaccard": jaccard,
        "clustered": clustered,
    }


PLAN_COLUMNS = [ID, KIND, SOURCE, SPLIT, TEXT, MESSAGES, ANSWER, CHOSEN, REJECTED]


def read_rows(inputs: Sequence[Path], batch_size: int = 4096) -> Iterator[Row]:
    """The plan's pass over the input records: id, source, kind, split and the judged text, batch by batch."""
    files = sorted(f for folder in inputs for f in Path(folder).glob(RECORDS_GLOB))
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=PLAN_COLUMNS):
            for record in batch.to_pylist():
                yield Row(record[ID], record[SOURCE], record[KIND], record[SPLIT], judged_text(record))


# --------------------------------------------------------------------------------------------- score, decide


def annotate(table: dict[str, dict[str, Any]], doc: Document) -> dict[str, Any]:
    try:
        return table[doc.id]
    except KeyError:
        raise KeyError(f"dedup: record {doc.id} was not in the plan; did the inputs change during the run?") from None


def decide(threshold: float, doc: Document) -> Drop | None:
    d = doc.metadata[METADATA][STAGE]
    if d["cluster"] == doc.id:
        return None
    if d["exact_of"] is not None:
        also = "" if d["exact_of"] == d["cluster"] else f", itself a near duplicate of kept {d['cluster']}"
        return Drop("exact_duplicate", f"same text as {d['exact_of']}{also}", 1.0, None)
    size = d["cluster_size"]
    return Drop(
        "near_duplicate",
        f"estimated Jaccard {d['jaccard']} with kept {d['cluster']} (cluster of {size})",
        d["jaccard"],
        threshold,
    )


# -------------------------------------------------------------------------------------------------- metrics


def truth_metrics(kept: pa.Table, drops: pa.Table, min_near_jaccard: float = 0.85) -> dict[str, Any]:
    """Against planted duplicates: recall (pair ended in one cluster), precision of drops, figure variants kept."""
    rows = [(m, False) for m in metadata_rows(kept)] + [(m, True) for m in metadata_rows(drops)]
    rows = [(m, dropped) for m, dropped in rows if "world_id" in m and m.get(STAGE, {}).get("clustered")]
    if not rows:
        return {}
    by_world = {m["world_id"]: (m, dropped) for m, dropped in rows}
    originals = {m["is_duplicate_of"] for m, _ in rows if m.get("is_duplicate_of")}

    def together(m: dict[str, Any], of: str) -> bool | None:
        other = by_world.get(of)
        return None if other is None else other[0][STAGE]["cluster"] == m[STAGE]["cluster"]

    def share(hits: list[bool | None]) -> float | None:
        known = [h for h in hits if h is not None]
        return sum(known) / len(known) if known else None

    exact = [together(m, m["is_duplicate_of"]) for m, _ in rows if m.get("duplicate_type") == "exact"]
    near = [
        together(m, m["is_duplicate_of"])
        for m, _ in rows
        if m.get("duplicate_type") == "near" and (m.get("near_dup_jaccard") or 0) >= min_near_jaccard
    ]
    dropped = [m for m, d in rows if d]
    correct = sum(1 for m in dropped if m.get("is_duplicate_of") or m["world_id"] in originals)
    variants = [
        (m, dropped, by_world.get(m["figure_variant_of"])) for m, dropped in rows if m.get("figure_variant_of")
    ]
    return {
        "truth": {
            "exact_recall": share(exact),
            "near_recall": share(near),
            "near_pairs": len([x for x in near if x is not None]),
            "precision": correct / len(dropped) if dropped else 1.0,
            "dropped_labeled": len(dropped),
            "figure_variants_kept": share([not d and (o is None or not o[1]) for _, d, o in variants]),
            "figure_variants": len(variants),
        }
    }


def metrics(summary: dict[str, Any], kept: pa.Table, drops: pa.Table) -> dict[str, Any]:
    return {STAGE: summary, **truth_metrics(kept, drops)}


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, DedupParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    executor = load_params("executor", ExecutorParams, paths.params)
    result = plan(track(read_rows(paths.inputs), "dedup: signatures", total=count_rows(paths.inputs)), p)
    steps = [
        Annotate(STAGE, functools.partial(annotate, result.table)),
        Decide(STAGE, functools.partial(decide, p.threshold), paths.output, io),
    ]
    extra = functools.partial(metrics, result.summary)
    run_stage(STAGE, steps, paths, io, executor, extra)


if __name__ == "__main__":
    setup_logging()
    main()
