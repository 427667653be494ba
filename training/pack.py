"""Stage `pack`: tokenize the mixture and pack it into fixed-length rows, one table per curriculum group.

CPT text is trained on fully (BOS + text + EOS); a conversation is rendered with the tokenizer's chat template and
every token outside an assistant turn is masked out of the loss (label -100), using the template's
`{% generation %}` markers, as trl's `assistant_only_loss` does. A CPT document longer than a row is split at token
boundaries into row-sized chunks (the split is kept in each chunk's name, `<id>#<k>`); a conversation cannot be cut
without losing its meaning, so one that does not fit a row is dropped as `pack.too_long`.

Packing is trl's best-fit-decreasing (`trl.pack_dataset(strategy="bfd")`) over all of a group's records of one phase
at once, which keeps document boundaries: each row stores `seq_lengths`, from which training derives per-document
position ids and the block-diagonal attention mask that stops one packed document from attending to another. Kinds
share rows only where training shares them: a group of `joint.groups` is packed once per phase of `joint.phases`
(its CPT rows apart from its IT rows for the sequential `[[cpt], [it]]`), every other group (the base model's) with
both kinds together; the `phase` column names each row's kinds, and training/joint.py trains a phase on its rows. A
per-token document index travels through the packer with the tokens, so every row names the records it holds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.config import load_params, params, parse_section, read_yaml
from curation.io import IOParams, read_records, register_views, stage_paths, write_drops, write_metrics
from curation.progress import setup_logging, summary, track
from curation.schema import CAPABILITY, DROP_SCHEMA, ID, KIND, MESSAGES, METADATA, TEXT, Kind, reason
from training.chat import IGNORE, TRAINED_KINDS, phase_label, tokenize_chat, tokenize_cpt


STAGE = "pack"
PACKED_SCHEMA = pa.schema(
    [
        ("input_ids", pa.list_(pa.int32())),
        ("labels", pa.list_(pa.int32())),
        ("seq_lengths", pa.list_(pa.int32())),
        ("documents", pa.list_(pa.string())),
        ("capabilities", pa.list_(pa.string())),
        ("phase", pa.string()),
    ]
)


@params
class PackParams:
    seq_len: int
    groups: list[str]


def tokenize(records: pa.Table, tokenizer: Any, seq_len: int) -> tuple[dict[str, list], list[tuple[int, str, str]]]:
    """Token sequences (with labels, names and capabilities) and the records that cannot be trained on."""
    seqs: dict[str, list] = {"input_ids": [], "labels": [], "name": [], "capability": []}
    drops = []
    rows = records.select([ID, KIND, CAPABILITY, TEXT, MESSAGES]).to_pylist()
    for i, row in enumerate(track(rows, "tokenize")):
        if row[KIND] == Kind.CPT:
            chunks = tokenize_cpt(tokenizer, row[TEXT], seq_len)
            for k, chunk in enumerate(chunks):
                seqs["input_ids"].append(chunk)
                seqs["labels"].append(chunk)
                seqs["name"].append(row[ID] if len(chunks) == 1 else f"{row[ID]}#{k}")
                seqs["capability"].append(row[CAPABILITY])
            continue
        ids, labels = tokenize_chat(tokenizer, row[MESSAGES])
        if len(ids) > seq_len:
            drops.append((i, "too_long", f"{len(ids):,} tokens do not fit a {seq_len:,}-token row"))
        elif all(label == IGNORE for label in labels):
            drops.append((i, "no_loss_tokens", "no assistant token to train on"))
        else:
            seqs["input_ids"].append(ids)
            seqs["labels"].append(labels)
            seqs["name"].append(row[ID])
            seqs["capability"].append(row[CAPABILITY])
    return seqs, drops


def pack(seqs: dict[str, list], seq_len: int, phase: str) -> pa.Table:
    """Best-fit-decreasing packing with trl; rows with tokens, labels, seq_lengths, names and their `phase` label."""
    from datasets import Dataset
    from trl import pack_dataset

    if not seqs["input_ids"]:  # a phase without records (the reasoning group has no CPT text)
        return PACKED_SCHEMA.empty_table()
    doc = [np.full(len(ids), i, dtype=np.int32) for i, ids in enumerate(seqs["input_ids"])]
    table = pa.table(
        {
            "input_ids": pa.array(seqs["input_ids"], pa.list_(pa.int32())),
            "labels": pa.array(seqs["labels"], pa.list_(pa.int32())),
            "doc": pa.array(doc, pa.list_(pa.int32())),
        }
    )
    batch = max(table.num_rows, 1)  # one batch: the best fit is searched over the whole group
    packed = pack_dataset(Dataset(table), seq_len, strategy="bfd", map_kwargs={"batch_size": batch})
    packed = packed.with_format("arrow")[:]
    names, capabilities = np.array(seqs["name"], dtype=object), np.array(seqs["capability"], dtype=object)
    documents, caps = [], []
    for doc_ids, lengths in zip(packed["doc"].to_pylist(), packed["seq_lengths"].to_pylist(), strict=True):
        starts = np.cumsum([0, *lengths[:-1]])
        first = np.asarray(doc_ids)[starts]
        documents.append(names[first].tolist())
        caps.append(capabilities[first].tolist())
    out = {
        "input_ids": packed["input_ids"],
        "labels": packed["labels"],
        "seq_lengths": pc.cast(packed["seq_lengths"], pa.list_(pa.int32())),
        "documents": pa.array(documents, pa.list_(pa.string())),
        "capabilities": pa.array(caps, pa.list_(pa.string())),
        "phase": pa.array([phase] * len(documents), pa.string()),
    }
    return pa.table(out, schema=PACKED_SCHEMA)


def pack_group(
    records: pa.Table, tokenizer: Any, seq_len: int, phases: Sequence[Sequence[str]]
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """The rows of one group, packed once per phase (the records of its kinds), and its drops (indices into
    `records`): what cannot be trained on, and the records of a kind no phase trains (`[[it]]` leaves CPT out)."""
    kinds = records.column(KIND).to_numpy(zero_copy_only=False)
    other = sorted(set(kinds) - set(TRAINED_KINDS))
    if other:
        raise ValueError(f"pack: a mixture group holds records of kind {other}; only cpt and it are trained on")
    trained = {str(k) for phase in phases for k in phase}
    drops = [(int(i), "kind_not_trained", f"joint.phases {[[str(k) for k in p] for p in phases]} train no "
              f"{kinds[i]} records") for i in np.flatnonzero(~np.isin(kinds, sorted(trained)))]  # fmt: skip
    tables = []
    for phase in phases:
        index = np.flatnonzero(np.isin(kinds, [str(k) for k in phase]))
        seqs, dropped = tokenize(records.take(index), tokenizer, seq_len)
        tables.append(pack(seqs, seq_len, phase_label(phase)))
        drops += [(int(index[i]), failure, detail) for i, failure, detail in dropped]
    return pa.concat_tables(tables), sorted(drops)


@params
class Curriculum:
    """The part of params.yaml `joint` that packing follows (read alone: the pack stage is not the joint stage)."""

    groups: list[str]
    phases: list[list[Kind]]


def curriculum(path: Path) -> Curriculum:
    joint = read_yaml(path).get("joint") or {}
    return parse_section({k: joint.get(k) for k in ("groups", "phases")}, Curriculum, f"{path}:joint")


def group_metrics(rows: pa.Table, seq_len: int) -> dict[str, Any]:
    """Rows, sequences (a split document counts once per chunk), tokens, and efficiency = tokens / (rows x seq_len)."""
    lengths = pc.list_value_length(rows.column("input_ids")).to_numpy()
    labels = pc.list_flatten(rows.column("labels")).to_numpy()
    tokens_by_cap: Counter[str] = Counter()
    for caps, lens in zip(
        rows.column("capabilities").to_pylist(), rows.column("seq_lengths").to_pylist(), strict=True
    ):
        for cap, n in zip(caps, lens, strict=True):
            tokens_by_cap[cap] += n
    tokens = int(lengths.sum())
    names = pc.list_flatten(rows.column("documents")).to_pylist()
    return {
        "rows": rows.num_rows,
        "sequences": len(names),
        "split_documents": len({n.split("#")[0] for n in names if "#" in n}),
        "tokens": tokens,
        "loss_tokens": int((labels != IGNORE).sum()),
        "efficiency": round(tokens / (rows.num_rows * seq_len), 4) if rows.num_rows else None,
        "tokens_by_capability": dict(sorted(tokens_by_cap.items())),
    }


def group_of(table: pa.Table) -> list[str]:
    return [json.loads(m)["mixture"]["group"] for m in table.column(METADATA).to_pylist()]


def main(argv: Sequence[str] | None = None) -> None:
    from transformers import AutoTokenizer

    paths = stage_paths(argv, __doc__)
    p = load_params(STAGE, PackParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    start = time.perf_counter()
    mixture_dir, tokenizer_dir = paths.inputs
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    records = read_records([mixture_dir])
    groups = np.array(group_of(records))
    paths.output.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {"in": 0, "kept": 0, "dropped": Counter(), "seq_len": p.seq_len, "groups": {}}
    drops = []
    joint = curriculum(paths.params)
    for group in p.groups:
        part = records.filter(pa.array(groups == group))
        phases = joint.phases if group in joint.groups else [TRAINED_KINDS]
        rows, dropped = pack_group(part, tokenizer, p.seq_len, phases)
        pq.write_table(rows, paths.output / f"rows-{group}.parquet", compression=io.compression)
        for i, failure, detail in dropped:
            drop = part.slice(i, 1).to_pylist()[0]
            drops.append({**drop, "reason": reason(STAGE, failure), "detail": detail})
        metrics["groups"][group] = group_metrics(rows, p.seq_len)
        metrics["in"] += part.num_rows
        metrics["kept"] += part.num_rows - len(dropped)
        metrics["dropped"].update(reason(STAGE, f) for _, f, _ in dropped)
    total = sum(g["tokens"] for g in metrics["groups"].values())
    rows_total = sum(g["rows"] for g in metrics["groups"].values())
    metrics["efficiency"] = round(total / (rows_total * p.seq_len), 4) if rows_total else None
    metrics["dropped"] = dict(metrics["dropped"])
    write_drops(pa.Table.from_pylist(drops, schema=DROP_SCHEMA), paths.output, io)
    write_metrics(metrics, paths.metrics)
    register_views(Path(io.catalog), STAGE, paths.output, extra={"pack_rows": "rows-*.parquet"})
    summary(STAGE, metrics["in"], metrics["kept"], metrics["dropped"], time.perf_counter() - start)


if __name__ == "__main__":
    setup_logging()
    main()
