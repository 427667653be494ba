"""Stage `ingest`: every declared source (JSONL, Parquet, CSV, a folder of text files, a Hugging Face dataset) becomes
records of the unified schema; every row that cannot becomes a reject with its file, line and reason.

Readers never raise on a bad row: they yield it with what went wrong, and `to_record` turns a good row into a record
or a reason. So one broken line costs one reject, not the run, and the books always balance: rows read = records
written + rows rejected, checked before anything is written.

Source fields map onto record columns through `fields` (our column -> their field; unmapped columns use their own
name). Two extra targets cover the common instruction formats: `prompt` (+ `response` for IT data) build a one-turn
conversation, as in Alpaca-style `instruction`/`output` files. Where a column is not one field but a composition
(a FinQA prompt from its text and table, a label id turned into a word), `templates` gives it as a Jinja template
over the row (lm-eval's `doc_to_text`; `row` is the whole row, for field names that are not identifiers); a
template target `metadata.<key>` adds a metadata key, such as the `query` decontamination matches an eval item by.
Source fields that map to no column are kept in `metadata`, so nothing a source knows (generator ground truth,
upstream ids) is lost. `max_rows` reads only a source's first rows: the sampled sizes of a profile.

Structured files (JSON arrays, TSV, `sentence@label` lines) are read by DuckDB with SQL (`format: duckdb`); CoNLL
token files and Reuters-21578 SGML have readers of their own.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from curation.config import load_params, params
from curation.io import IOParams, stage_paths, write_stage
from curation.progress import setup_logging, track
from curation.schema import (
    ANSWER,
    CHOSEN,
    MESSAGES,
    METADATA,
    RAW_EXCERPT,
    RECORD_SCHEMA,
    REJECTED,
    ROLES,
    TEXT,
    Capability,
    Kind,
    Split,
    content_key,
    dump_metadata,
    reason,
    record_id,
)


log = logging.getLogger(__name__)
STAGE = "ingest"
Format = Literal["jsonl", "parquet", "csv", "text", "hf", "duckdb", "conll", "reuters"]
MAPPABLE = (TEXT, MESSAGES, ANSWER, CHOSEN, REJECTED, METADATA, "prompt", "response")


@params
class SourceParams:
    name: str
    path: str
    format: Format
    kind: Kind
    capability: Capability
    split: Split
    language: str
    license: str
    fields: dict[str, str]
    templates: dict[str, str]  # our column (or metadata.<key>) -> Jinja template over the row
    options: dict[str, str]
    max_rows: int | None  # read only the first rows (a profile's sampled size); null reads all


@params
class IngestParams:
    sources: list[SourceParams]


@dataclass(frozen=True)
class Row:
    """One input row as read: its parsed value, or why it could not be parsed, and where it came from."""

    file: str
    line: int | None
    value: dict[str, Any] | None
    raw: str
    failure: str | None = None
    detail: str = ""


class Rejected(Exception):
    """A row that cannot become a record; carries the reason code's failure part and a detail for the user."""

    def __init__(self, failure: str, detail: str) -> None:
        super().__init__(detail)
        self.failure, self.detail = failure, detail


# Readers: path -> rows. Each yields exactly one Row per input row, good or bad.


def read_jsonl(path: Path, options: dict[str, str]) -> Iterator[Row]:
    with path.open("rb") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue  # a blank line holds no row
            raw = line.decode("utf-8", "backslashreplace").rstrip("\n")[:RAW_EXCERPT]
            try:
                value = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as err:
                yield Row(str(path), line_no, None, raw, "undecodable_bytes", f"not UTF-8 at byte {err.start}")
                continue
            except json.JSONDecodeError as err:
                yield Row(str(path), line_no, None, raw, "malformed_json", f"{err.msg} at column {err.colno}")
                continue
            except RecursionError:
                yield Row(str(path), line_no, None, raw, "malformed_json", "nested too deeply to parse")
                continue
            if not isinstance(value, dict):
                yield Row(str(path), line_no, None, raw, "not_an_object", f"a JSON {type(value).__name__}")
                continue
            yield Row(str(path), line_no, value, raw)


def read_parquet(path: Path, options: dict[str, str]) -> Iterator[Row]:
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    for file in files:
        row_no = 0
        for batch in pq.ParquetFile(file).iter_batches():
            for value in batch.to_pylist():
                row_no += 1
                yield Row(str(file), row_no, value, _excerpt(value))


def read_csv(path: Path, options: dict[str, str]) -> Iterator[Row]:
    """CSV rows (options `delimiter`, `skipinitialspace`, `glob` for a folder); with option `join: <column>` a whole
    file is one row, that column's values joined by newlines (a transcript stored a sentence per row)."""
    for file in _files(path, options, "*.csv"):
        rows = _csv_rows(file, options)
        if "join" not in options:
            yield from rows
            continue
        good = [r for r in rows if r.value is not None]
        bad = next((r for r in rows if r.value is None), None)
        if bad is not None:  # one bad row spoils the joined document: reject the file, naming the row
            yield Row(str(file), bad.line, None, bad.raw, bad.failure, f"{bad.detail} (the file is one document)")
        elif good and options["join"] not in good[0].value:
            yield Row(str(file), None, None, good[0].raw, "missing_field", f"no column {options['join']!r} to join")
        else:
            text = "\n".join(r.value[options["join"]] for r in good)
            yield Row(str(file), None, {options["join"]: text, "file_name": file.name}, text[:RAW_EXCERPT])


def _csv_rows(file: Path, options: dict[str, str]) -> list[Row]:
    # surrogateescape keeps undecodable bytes visible as lone surrogates, so they are rejected per row, not per file
    out = []
    with file.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.DictReader(f, delimiter=options.get("delimiter", ","),
                                skipinitialspace=options.get("skipinitialspace", "false") == "true")  # fmt: skip
        for value in reader:
            raw = _excerpt(value)
            if None in value or None in value.values():
                out.append(Row(str(file), reader.line_num, None, raw, "malformed_csv", "wrong number of fields"))
            elif any(_has_surrogates(v) for v in value.values()):
                out.append(Row(str(file), reader.line_num, None, raw, "undecodable_bytes", "not UTF-8"))
            else:
                out.append(Row(str(file), reader.line_num, value, raw))
    return out


def read_duckdb(path: Path, options: dict[str, str]) -> Iterator[Row]:
    """Rows of any file DuckDB reads (JSON arrays, CSV/TSV, Parquet, text lines) through SQL: options `from` (a
    table expression where `{path}` is the file; default the file itself, read by its extension), `select`
    (default *) and `where`. A file DuckDB cannot read is one reject; the line is the row's number in the result."""
    import duckdb

    table = options.get("from", "'{path}'").replace("{path}", str(path).replace("'", "''"))
    sql = f"SELECT {options.get('select', '*')} FROM {table}" + (
        f" WHERE {options['where']}" if "where" in options else ""
    )
    try:
        result = duckdb.sql(sql).to_arrow_table().to_pylist()
    except duckdb.Error as err:
        yield Row(str(path), None, None, sql[:RAW_EXCERPT], "unreadable_file", f"{type(err).__name__}: {err}")
        return
    for row_no, value in enumerate(result, start=1):
        yield Row(str(path), row_no, value, _excerpt(value))


def read_conll(path: Path, options: dict[str, str]) -> Iterator[Row]:
    """CoNLL token files: a sentence per blank-line-separated block, `-DOCSTART-` lines skipped. Option `columns`
    names the whitespace-separated columns (default `token,tag`: the first and the last); a row holds `tokens`,
    `tags`, `text` (tokens joined by spaces) and `entities` ({type: [entity, ...]}, from IO or BIO tags)."""
    names = options.get("columns", "token,tag").split(",")
    for file in _files(path, options, "*.txt"):
        data = file.read_bytes()
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as err:
            raw = data[:RAW_EXCERPT].decode("utf-8", "backslashreplace")
            yield Row(str(file), None, None, raw, "undecodable_bytes", f"not UTF-8 at byte {err.start}")
            continue
        block: list[tuple[int, list[str]]] = []
        for line_no, line in enumerate([*lines, ""], start=1):
            if line.strip() and not line.startswith("-DOCSTART-"):
                block.append((line_no, line.split()))
                continue
            if block:
                yield _conll_sentence(str(file), block, names)
                block = []


def _conll_sentence(file: str, block: list[tuple[int, list[str]]], names: list[str]) -> Row:
    start, raw = block[0][0], "\n".join(" ".join(cols) for _, cols in block)[:RAW_EXCERPT]
    if any(len(cols) != len(names) and len(names) > 2 for _, cols in block):
        return Row(file, start, None, raw, "malformed_conll", f"a token line without the {len(names)} columns {names}")
    tokens = [cols[0] for _, cols in block]
    tags = [cols[-1] for _, cols in block]
    entities: dict[str, list[str]] = {}
    current: list[str] = []
    kind = None
    for token, tag in [*zip(tokens, tags, strict=True), ("", "O")]:
        prefix, _, label = tag.partition("-")
        if current and (tag == "O" or prefix == "B" or label != kind):
            entities.setdefault(kind or "", []).append(" ".join(current))
            current, kind = [], None
        if tag != "O":
            current.append(token)
            kind = label or prefix
    return Row(file, start, {"tokens": tokens, "tags": tags, "text": " ".join(tokens), "entities": entities}, raw)


_STORY = re.compile(rb"<REUTERS(?P<attrs>[^>]*)>(?P<story>.*?)</REUTERS>", re.DOTALL)
_TAG = r"<{0}[^>]*>(.*?)</{0}>"


def read_reuters(path: Path, options: dict[str, str]) -> Iterator[Row]:
    """Reuters-21578 SGML (`reut2-*.sgm`): one row per story, with `title`, `body` (entities unescaped, control
    characters removed), `topics`, `places`, `date` and the story's attributes (`lewissplit`, `newid`, ...). A story
    with bytes that are not UTF-8 is rejected alone."""
    for file in _files(path, options, "reut2-*.sgm"):
        data = file.read_bytes()
        for m in _STORY.finditer(data):
            line = data.count(b"\n", 0, m.start()) + 1
            try:
                story, attrs = m["story"].decode("utf-8"), m["attrs"].decode("utf-8")
            except UnicodeDecodeError as err:
                raw = m[0][:RAW_EXCERPT].decode("utf-8", "backslashreplace")
                yield Row(
                    str(file), line, None, raw, "undecodable_bytes", f"not UTF-8 at byte {err.start} of the story"
                )
                continue

            def tag(name: str, text: str) -> str | None:
                found = re.search(_TAG.format(name), text, re.DOTALL)
                return _unescape(found[1]) if found else None

            value: dict[str, Any] = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', attrs)}
            value |= {"title": tag("TITLE", story), "body": tag("BODY", story), "date": tag("DATE", story)}
            for name in ("TOPICS", "PLACES"):
                block = re.search(_TAG.format(name), story, re.DOTALL)
                value[name.lower()] = re.findall(r"<D>(.*?)</D>", block[1]) if block else []
            yield Row(str(file), line, value, story[:RAW_EXCERPT])


def _unescape(text: str) -> str:
    """SGML entities to characters, then the wire's control characters (`&#3;` ends a story) removed."""
    return "".join(ch for ch in html.unescape(text) if ch in "\n\t" or (ch >= " " and ch != "\x7f")).strip()


def _files(path: Path, options: dict[str, str], default_glob: str) -> list[Path]:
    """`path` itself, or the files under the folder `path` that match option `glob`, in name order."""
    pattern = options.get("glob", default_glob)
    return sorted(p for p in path.rglob(pattern) if p.is_file()) if path.is_dir() else [path]


def read_text(path: Path, options: dict[str, str]) -> Iterator[Row]:
    """A folder of text files, one document each (or one file); the line is None: the file is the row."""
    for file in _files(path, options, "*.txt"):
        data = file.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raw = data[:RAW_EXCERPT].decode("utf-8", "backslashreplace")
            yield Row(str(file), None, None, raw, "undecodable_bytes", f"not UTF-8 at byte {err.start}")
            continue
        yield Row(str(file), None, {TEXT: text, "file_name": file.name}, text[:RAW_EXCERPT])


def read_hf(path: Path | str, options: dict[str, str]) -> Iterator[Row]:
    """A Hugging Face dataset: a `save_to_disk` folder, or a dataset id / local data folder for `load_dataset`."""
    import datasets

    local = Path(path)
    if (local / "dataset_info.json").exists() or (local / "dataset_dict.json").exists():
        dataset = datasets.load_from_disk(str(local))
    else:
        dataset = datasets.load_dataset(str(path), options.get("name"), split=options.get("split", "train"))
    if isinstance(dataset, datasets.DatasetDict):
        dataset = dataset[options.get("split", "train")]
    for row_no, value in enumerate(dataset, start=1):
        yield Row(str(path), row_no, dict(value), _excerpt(value))


READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "csv": read_csv, "text": read_text, "hf": read_hf,
           "duckdb": read_duckdb, "conll": read_conll, "reuters": read_reuters}  # fmt: skip


def _excerpt(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:RAW_EXCERPT]


def _has_surrogates(value: Any) -> bool:
    return isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value)


# Row -> record


def _text(value: Any, column: str, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise Rejected("missing_field", f"no {column!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Rejected("wrong_type", f"{column!r} is a {type(value).__name__}, expected a string")
    if isinstance(value, str) and _has_surrogates(value):
        raise Rejected("undecodable_bytes", f"{column!r} is not valid UTF-8")
    return str(value)


def _messages(value: Any, final_role: str) -> list[dict[str, str]]:
    """Check a conversation: a list of {role, content} with known roles, a user turn, ending on `final_role`."""
    if value is None:
        raise Rejected("missing_field", "no 'messages'")
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise Rejected("bad_messages", "messages must be a non-empty list of {role, content}")
    turns = []
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str) or turn.get("role") not in ROLES:
            raise Rejected("bad_messages", f"turn {i} must be {{role: {'|'.join(ROLES)}, content: str}}")
        if not turn["content"].strip():
            raise Rejected("bad_messages", f"turn {i} ({turn['role']}) is empty")
        turns.append({"role": turn["role"], "content": turn["content"]})
    if not any(t["role"] == "user" for t in turns):
        raise Rejected("bad_messages", "no user turn")
    if turns[-1]["role"] != final_role:
        raise Rejected("bad_messages", f"the last turn is {turns[-1]['role']}, expected {final_role}")
    return turns


_JINJA = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)
META_PREFIX = "metadata."


def check_templates(source: SourceParams) -> None:
    """Every template of a source compiles and targets a column (or a metadata key): fail before reading anything."""
    for target, text in source.templates.items():
        if target not in MAPPABLE and not target.startswith(META_PREFIX):
            raise ValueError(f"ingest source {source.name!r}: templates.{target} targets no column; use one of "
                             f"{', '.join(MAPPABLE)} or metadata.<key>")  # fmt: skip
        try:
            _JINJA.from_string(text)
        except TemplateError as err:
            raise ValueError(f"ingest source {source.name!r}: templates.{target} does not compile: {err}") from None


def _render(source: SourceParams, value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for target, text in source.templates.items():
        try:
            out[target] = _JINJA.from_string(text).render(row=value, **value)  # `row['a b']`: names with spaces
        except (TemplateError, TypeError, ValueError, KeyError, IndexError) as err:
            raise Rejected("template_error", f"templates.{target}: {type(err).__name__}: {err}") from None
    return out


def to_record(value: dict[str, Any], source: SourceParams) -> dict[str, Any]:
    """Map one parsed source row to a record (without id); raise Rejected if it cannot be one."""
    rendered = _render(source, value)
    field = {col: source.fields.get(col, col) for col in MAPPABLE}
    used = {field[col] for col in MAPPABLE if field[col] in value and col not in rendered}
    got = {col: rendered[col] if col in rendered else value.get(field[col]) for col in MAPPABLE}
    field |= {col: f"templates.{col}" for col in rendered}
    if got["prompt"] is not None and got[MESSAGES] is None:
        prompt = _text(got["prompt"], field["prompt"])
        got[MESSAGES] = [{"role": "user", "content": prompt}]
        if source.kind == Kind.IT:
            response = _text(got["response"], field["response"])
            got[MESSAGES].append({"role": "assistant", "content": response})
    record: dict[str, Any] = dict.fromkeys(RECORD_SCHEMA.names)
    if source.kind == Kind.CPT:
        record[TEXT] = _text(got[TEXT], field[TEXT])
        if not record[TEXT].strip():
            raise Rejected("empty_text", f"{field[TEXT]!r} is empty or whitespace")
    elif source.kind == Kind.IT:
        record[MESSAGES] = _messages(got[MESSAGES], final_role="assistant")
    else:
        record[MESSAGES] = _messages(got[MESSAGES], final_role="user")
        if source.kind == Kind.EVAL:
            record[ANSWER] = _text(got[ANSWER], field[ANSWER])
            if not record[ANSWER].strip():
                raise Rejected("empty_answer", f"{field[ANSWER]!r} is empty or whitespace: nothing to score against")
        else:
            record[CHOSEN] = _text(got[CHOSEN], field[CHOSEN])
            record[REJECTED] = _text(got[REJECTED], field[REJECTED])
    metadata = got[METADATA] if isinstance(got[METADATA], dict) else {}
    if got[METADATA] is not None and not isinstance(got[METADATA], dict):
        raise Rejected("wrong_type", f"{field[METADATA]!r} is a {type(got[METADATA]).__name__}, expected an object")
    extra = {k: v for k, v in value.items() if k not in used}
    added = {k.removeprefix(META_PREFIX): v for k, v in rendered.items() if k.startswith(META_PREFIX)}
    record[METADATA] = dump_metadata({**extra, **metadata, **added})
    record.update(
        kind=str(source.kind),
        source=source.name,
        capability=str(source.capability),
        language=source.language,
        split=str(source.split),
    )
    return record


def ingest_source(source: SourceParams, rows: Iterator[Row]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records and rejects for one source; ids are content-derived, repeats get an occurrence suffix."""
    records, rejects = [], []
    seen: Counter[str] = Counter()
    for row in track(rows, f"ingest {source.name}"):
        try:
            if row.failure is not None:
                raise Rejected(row.failure, row.detail)
            assert row.value is not None
            record = to_record(row.value, source)
        except Rejected as err:
            where = f"{row.file}" + (f" line {row.line}" if row.line is not None else "")
            rejects.append(
                {
                    "source": source.name,
                    "kind": str(source.kind),
                    "capability": str(source.capability),
                    "language": source.language,
                    "split": str(source.split),
                    "file": row.file,
                    "line": row.line,
                    "reason": reason(STAGE, err.failure),
                    "detail": f"{where}: {err.detail}",
                    "raw": row.raw,
                }
            )
            continue
        key = content_key(record["kind"], record[TEXT], record[MESSAGES], record[ANSWER])
        record["id"] = record_id(source.name, key, seen[key])
        seen[key] += 1
        records.append(record)
    return records, rejects


def run(sources: Sequence[SourceParams]) -> tuple[pa.Table, list[dict[str, Any]], dict[str, Any]]:
    """Ingest every source; returns records, rejects and metrics, after checking rows = records + rejects."""
    names = [s.name for s in sources]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"ingest.sources: names must be unique, repeated: {', '.join(dupes)}")
    records, rejects, per_source = [], [], {}
    for source in sources:
        path = Path(source.path)
        if source.format != "hf" and not path.exists():
            raise FileNotFoundError(
                f"ingest source {source.name!r}: {path} does not exist; fix its path in params.yaml"
            )
        check_templates(source)
        rows = READERS[source.format](path, source.options)
        kept, dropped = ingest_source(source, itertools.islice(rows, source.max_rows))
        records += kept
        rejects += dropped
        per_source[source.name] = {
            "max_rows": source.max_rows,
            "in": len(kept) + len(dropped),
            "kept": len(kept),
            "dropped": dict(Counter(r["reason"] for r in dropped)),
        }
    dropped_total = Counter(r["reason"] for r in rejects)
    n_in = sum(s["in"] for s in per_source.values())
    if n_in != len(records) + sum(dropped_total.values()):
        raise RuntimeError(
            f"ingest: accounting broken: {n_in} rows read != {len(records)} kept + {len(rejects)} rejected"
        )
    metrics = {
        "in": n_in,
        "kept": len(records),
        "dropped": dict(dropped_total),
        "words": sum(len((r[TEXT] or "").split()) for r in records),
        "sources": per_source,
    }
    return pa.Table.from_pylist(records, schema=RECORD_SCHEMA), rejects, metrics


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__)
    ingest = load_params(STAGE, IngestParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    start = time.perf_counter()
    table, rejects, metrics = run(ingest.sources)
    write_stage(STAGE, table, rejects, metrics, paths, io, start)


if __name__ == "__main__":
    setup_logging()
    main()
