"""Curation stages as datatrove pipelines: read records, score, decide, write kept records and drops.

Each curation stage is `[RecordReader, *its steps, records_writer]` run by a datatrove executor chosen in
params.yaml (`executor.kind`: local by default, slurm or ray when a corpus outgrows one machine), so the same blocks
scale out without a code change. Records travel as datatrove `Document`s: `text` is what the filters judge (the CPT
text, or a conversation's turns joined), and `metadata` carries the other record columns plus the record's own
metadata, parsed, into which steps write their scores under the stage name (`metadata.quality.n_words`, ...).

A stage's decision is a `Decide` filter around a pure function that returns None (keep) or a `Drop` (reason, detail,
the score that decided and the threshold). Dropped documents go through datatrove's exclusion writer into Parquet
with the whole record, so any drop can be inspected and undone.

Executors write one file per task in stream order. `finish_stage` then rewrites kept records and drops sorted by id
into the usual shards: the outputs no longer depend on how many tasks ran, and a rerun is byte-identical.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import ParquetWriter

from curation.config import params
from curation.io import RECORDS_GLOB, IOParams, StagePaths, write_stage
from curation.schema import (
    ANSWER,
    CHOSEN,
    DROP_SCHEMA,
    ID,
    KIND,
    MESSAGES,
    METADATA,
    RAW_EXCERPT,
    RECORD_SCHEMA,
    REJECTED,
    SPLIT,
    TEXT,
    Kind,
    Split,
    dump_metadata,
    reason,
)


COLUMNS = [c for c in RECORD_SCHEMA.names if c not in (ID, TEXT, METADATA)]
SCRATCH = ".parts"  # per-task files inside the stage folder, removed by finish_stage


@params
class ExecutorParams:
    kind: Literal["local", "slurm", "ray"]
    tasks: int
    workers: int
    options: dict[str, Any]


@dataclass(frozen=True)
class Drop:
    """Why a record is dropped: the failed condition, a detail for people, and what decided it."""

    failure: str
    detail: str
    score: float | None = None
    threshold: float | None = None


def judged_text(record: Mapping[str, Any]) -> str:
    """The text a filter judges: CPT text, or every turn and answer of a conversation, one per paragraph."""
    if record[KIND] == Kind.CPT:
        return record[TEXT] or ""
    parts = [m["content"] for m in record[MESSAGES] or []]
    parts += [record[c] for c in (ANSWER, CHOSEN, REJECTED) if record.get(c)]
    return "\n\n".join(parts)


def record_to_document(self: Any, data: dict, path: str, id_in_file: int | str) -> dict:
    """datatrove reader adapter: a record row -> Document fields."""
    meta = {c: data[c] for c in COLUMNS}
    meta[METADATA] = json.loads(data[METADATA])
    return {"text": judged_text(data), "id": data[ID], "metadata": meta}


def document_to_record(self: Any, doc: Document) -> dict:
    """datatrove writer adapter: Document -> a record row. A CPT record takes the (possibly edited) doc text."""
    meta = doc.metadata
    row = {c: meta[c] for c in COLUMNS}
    row.update({ID: doc.id, TEXT: doc.text if meta[KIND] == Kind.CPT else None})
    row[METADATA] = dump_metadata(meta[METADATA])
    return row


def document_to_drop(self: Any, doc: Document) -> dict:
    """datatrove exclusion-writer adapter: Document -> a drops row, the whole record plus why."""
    drop: Drop = doc.metadata["drop"]
    row = document_to_record(self, doc)
    row.update(
        reason=doc.metadata["filter_reason"],
        detail=drop.detail,
        score=drop.score,
        threshold=drop.threshold,
        file=None,
        line=None,
        raw=doc.text[:RAW_EXCERPT],
    )
    return row


def reader(inputs: Sequence[Path]) -> list[ParquetReader]:
    """One reader per input stage folder; records keep every column."""
    return [ParquetReader(str(folder), glob_pattern=RECORDS_GLOB, adapter=record_to_document) for folder in inputs]


def records_writer(folder: Path, io: IOParams) -> ParquetWriter:
    return ParquetWriter(
        str(folder / SCRATCH),
        output_filename="records-${rank}.parquet",
        adapter=document_to_record,
        schema=RECORD_SCHEMA,
        compression=io.compression,
    )


def drops_writer(folder: Path, name: str, io: IOParams) -> ParquetWriter:
    return ParquetWriter(
        str(folder / SCRATCH),
        output_filename=f"drops-{name}-${{rank}}.parquet",
        adapter=document_to_drop,
        schema=DROP_SCHEMA,
        compression=io.compression,
    )


class Decide(BaseFilter):
    """Drops a document when `rule` returns a Drop; the reason code is `<stage>.<failure>`.

    Evaluation items are scored like everything else but never dropped: a benchmark is what it is, and the
    decontamination stage needs every item to compare training data against.
    """

    name = "decide"

    def __init__(self, stage: str, rule: Callable[[Document], Drop | None], folder: Path, io: IOParams) -> None:
        super().__init__(exclusion_writer=drops_writer(folder, stage, io))
        self.stage, self.rule = stage, rule
        self.name = f"{stage}: decide"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata[SPLIT] == Split.EVAL:
            return True
        drop = self.rule(doc)
        if drop is None:
            return True
        doc.metadata["drop"] = drop
        return False, reason(self.stage, drop.failure)


class DocumentStep(PipelineStep):
    """A step that scores or edits one document at a time, in place: subclasses implement `process`."""

    type = "📊 - SCORE"

    def process(self, doc: Document) -> None:
        raise NotImplementedError

    def run(self, data, rank: int = 0, world_size: int = 1):  # type: ignore[no-untyped-def]
        for doc in data:
            with self.track_time():
                self.process(doc)
            self.stat_update("processed")
            yield doc


class Annotate(DocumentStep):
    """Writes `score(doc)` into the record metadata under the stage name (score first, decide second)."""

    def __init__(self, stage: str, score: Callable[[Document], dict[str, Any]]) -> None:
        super().__init__()
        self.stage, self.score = stage, score
        self.name = f"{stage}: score"

    def process(self, doc: Document) -> None:
        doc.metadata[METADATA][self.stage] = self.score(doc)


def build_executor(pipeline: list[PipelineStep], p: ExecutorParams, logging_dir: Path) -> Any:
    """The datatrove executor named in params; slurm/ray `options` go straight to their constructors."""
    common = dict(pipeline=pipeline, tasks=p.tasks, logging_dir=str(logging_dir), **p.options)
    if p.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(workers=p.workers, skip_completed=False, **common)
    if p.kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(workers=p.workers, **common)
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(workers=p.workers, **common)


def count_rows(folders: Sequence[Path]) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for folder in folders for f in Path(folder).glob(RECORDS_GLOB))


def finish_stage(
    stage: str,
    paths: StagePaths,
    io: IOParams,
    started: float,
    extra_metrics: Callable[[pa.Table, pa.Table], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Sort and shard the per-task files, check in = kept + dropped, then write the stage like any other."""
    scratch = paths.output / SCRATCH
    kept = _concat(sorted(scratch.glob("*records-*.parquet")), RECORD_SCHEMA)
    drops = _concat(sorted(scratch.glob("*drops-*.parquet")), DROP_SCHEMA)
    n_in = count_rows(paths.inputs)
    if n_in != kept.num_rows + drops.num_rows:
        raise RuntimeError(
            f"{stage}: accounting broken: {n_in} in != {kept.num_rows} kept + {drops.num_rows} dropped; "
            f"see the datatrove logs in {scratch / 'logs'}"
        )
    shutil.rmtree(scratch)  # the datatrove logs hold timings; kept only when a run fails, so outputs are reproducible
    dropped = dict(Counter(drops.column("reason").to_pylist()))
    metrics: dict[str, Any] = {"in": n_in, "kept": kept.num_rows, "dropped": dropped, **words(kept)}
    if extra_metrics is not None:
        metrics.update(extra_metrics(kept, drops))
    write_stage(stage, kept, drops, metrics, paths, io, started)
    return metrics


def words(kept: pa.Table) -> dict[str, int]:
    """Whitespace words of kept CPT text: the size measure every stage reports before a tokenizer exists."""
    import pyarrow.compute as pc

    texts = kept.column(TEXT).drop_null()
    n = pc.sum(pc.list_value_length(pc.utf8_split_whitespace(texts))).as_py() if len(texts) else 0
    return {"words": int(n or 0)}


def _concat(files: Sequence[Path], schema: pa.Schema) -> pa.Table:
    if not files:
        return schema.empty_table()
    return pa.concat_tables(pq.read_table(f, schema=schema) for f in files)


def run_stage(
    stage: str,
    steps: Sequence[PipelineStep],
    paths: StagePaths,
    io: IOParams,
    executor: ExecutorParams,
    extra_metrics: Callable[[pa.Table, pa.Table], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run `[read, *steps, write]` with the configured executor, then finish the stage."""
    started = time.perf_counter()
    if paths.output.exists():
        shutil.rmtree(paths.output)
    pipeline = [*reader(paths.inputs), *steps, records_writer(paths.output, io)]
    build_executor(pipeline, executor, paths.output / SCRATCH / "logs").run()
    return finish_stage(stage, paths, io, started, extra_metrics)
