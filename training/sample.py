"""Stage `sample`: the policy writes several chain-of-thought answers to each preference prompt (FinDAP's on-policy
samples, which the judge grades and the pair builder turns into preference pairs).

The prompts are the mixture's `preference` side set (`mixture.preference`: reasoning instructions by default); each
record's last assistant turn is its gold worked answer and travels along as `reference`. The policy is the last
curriculum checkpoint. Sampling is batched through the FinEval runner (`evaluation.generate`), so what the policy
says here is what it would say in evaluation, and it is resumable: prompts go in chunks of `chunk_prompts`, each
chunk's samples are kept in `--checkpoints` under a fingerprint of the policy's bytes, the prompts and the
settings, and its seed comes from its own first prompt, so an interrupted run ends with the same samples as one
that was never stopped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from curation.config import load_params, params
from curation.io import IOParams, read_records, register_views, write_drops, write_metrics, write_table
from curation.progress import setup_logging
from curation.schema import CAPABILITY, ID, LANGUAGE, MESSAGE_TYPE, MESSAGES, METADATA, SOURCE, reason
from evaluation.generate import GenerateParams, checkpoint_digest, generate, load
from training.trainer import SAMPLES_FILE, clear, resumable, stage_args


log = logging.getLogger("sample")
STAGE = "sample"
PREFERENCE = "preference"  # metadata.mixture.role of the prompts (curation.mixture)
SAMPLE_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),  # the preference record's id
        (SOURCE, pa.string()),
        (CAPABILITY, pa.string()),
        (LANGUAGE, pa.string()),
        ("task", pa.string()),  # metadata.task of the record: which answer format the judge reads
        ("prompt", pa.list_(MESSAGE_TYPE)),  # the conversation up to the assistant turn the policy writes
        ("reference", pa.string()),  # the record's gold worked answer
        ("sample", pa.int32()),  # 0 .. num_samples - 1
        ("output", pa.string()),  # the policy's trajectory
        (METADATA, pa.string()),  # the record's metadata (the gold program, the answer key)
    ]
)


@params
class SampleParams:
    num_samples: int  # trajectories per prompt
    temperature: float  # > 0: sampled; 0 would give num_samples equal greedy answers
    max_new_tokens: int  # longest trajectory
    seed: int  # with each chunk's first prompt id, the seed of that chunk's sampling
    chunk_prompts: int  # prompts per resumable chunk
    generate: GenerateParams


def prompts(mixture: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The preference prompts, split into conversation + gold answer; and the records that cannot be prompts."""
    roles = [json.loads(m).get("mixture", {}).get("role") for m in mixture.column(METADATA).to_pylist()]
    rows = mixture.filter(pa.array([r == PREFERENCE for r in roles])).sort_by(ID).to_pylist()
    kept, dropped = [], []
    for row in rows:
        messages = row[MESSAGES] or []
        if len(messages) < 2 or messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
            detail = "a preference prompt needs a conversation that ends with the gold assistant answer"
            dropped.append({**row, "reason": reason(STAGE, "no_reference"), "detail": detail})
            continue
        kept.append({
            "prompt_id": row[ID], SOURCE: row[SOURCE], CAPABILITY: row[CAPABILITY], LANGUAGE: row[LANGUAGE],
            "task": json.loads(row[METADATA]).get("task"), "prompt": messages[:-1],
            "reference": messages[-1]["content"], METADATA: row[METADATA],
        })  # fmt: skip
    return kept, dropped


def chunk_key(policy_digest: str, chunk: Sequence[dict[str, Any]], p: SampleParams) -> str:
    """What a chunk's samples depend on: the policy's bytes, its prompts and every sampling setting."""
    settings = [policy_digest, p.num_samples, p.temperature, p.max_new_tokens, p.seed, p.generate.device,
                p.generate.dtype, [(r["prompt_id"], r["prompt"]) for r in chunk]]  # fmt: skip
    return xxhash.xxh3_128_hexdigest(json.dumps(settings, sort_keys=True))


def sample_chunk(model: Any, tokenizer: Any, chunk: Sequence[dict[str, Any]], p: SampleParams) -> pa.Table:
    """`num_samples` trajectories per prompt of the chunk, seeded by the chunk's first prompt."""
    seed = xxhash.xxh3_64_intdigest(f"{p.seed}\x00{chunk[0]['prompt_id']}") % 2**31
    outputs = generate(model, tokenizer, [r["prompt"] for r in chunk], p.max_new_tokens, p.generate.batch_size,
                       num_samples=p.num_samples, temperature=p.temperature, seed=seed)  # fmt: skip
    rows = [{**r, "sample": k, "output": text} for r, texts in zip(chunk, outputs, strict=True)
            for k, text in enumerate(texts)]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)


def run(mixture: pa.Table, policy: Path, checkpoints: Path, p: SampleParams) -> tuple[pa.Table, list, dict]:
    if p.num_samples < 2:
        raise ValueError(f"params.yaml sample.num_samples={p.num_samples}: a preference pair needs 2 or more")
    kept, dropped = prompts(mixture)
    model, tokenizer = load(policy, p.generate)
    digest = checkpoint_digest(policy)
    chunks = [kept[i : i + p.chunk_prompts] for i in range(0, len(kept), p.chunk_prompts)]
    started = time.perf_counter()
    table = resumable(
        chunks, lambda c: chunk_key(digest, c, p), lambda c: (sample_chunk(model, tokenizer, c, p), True),
        checkpoints, SAMPLE_SCHEMA, "sample",
    )  # fmt: skip
    seconds = time.perf_counter() - started
    tokens = sum(len(tokenizer(t, add_special_tokens=False).input_ids) for t in table.column("output").to_pylist())
    empty = int(pc.sum(pc.equal(pc.utf8_length(table.column("output")), 0)).as_py() or 0) if table.num_rows else 0
    metrics = {
        "in": len(kept) + len(dropped),
        "kept": len(kept),
        "dropped": {reason(STAGE, "no_reference"): len(dropped)} if dropped else {},
        "samples": table.num_rows,
        "empty_samples": empty,
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "by_task": {str(k): v for k, v in sorted(_count(table, "task").items(), key=lambda kv: str(kv[0]))},
    }
    return table, dropped, metrics


def _count(table: pa.Table, column: str) -> dict[Any, int]:
    counts = pc.value_counts(table.column(column)).to_pylist() if table.num_rows else []
    return {c["values"]: c["counts"] for c in counts}


def main(argv: Sequence[str] | None = None) -> None:
    paths, checkpoints = stage_args(argv, __doc__)
    p = load_params(STAGE, SampleParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    mixture_dir, policy = paths.inputs
    started = time.perf_counter()
    table, dropped, metrics = run(read_records([mixture_dir]), policy, checkpoints, p)
    write_table(table, paths.output / SAMPLES_FILE, io.compression)
    write_drops(dropped, paths.output, io)
    clear(checkpoints)  # every chunk is in the output now
    metrics["wall_s"] = round(time.perf_counter() - started, 1)
    write_metrics(metrics, paths.metrics)
    register_views(Path(io.catalog), STAGE, paths.output, {"samples": SAMPLES_FILE})
    log.info(
        "sample: %d prompts x %d -> %d trajectories, %d empty, %s tokens/s (%.0f s)", metrics["kept"],
        p.num_samples, metrics["samples"], metrics["empty_samples"], metrics["tokens_per_s"], metrics["wall_s"],
    )  # fmt: skip


if __name__ == "__main__":
    setup_logging()
    main()
