"""FinEval tasks as data: one YAML file per task in `evaluation/tasks/`, validated into a `TaskSpec`.

A task says where its items are (any file DuckDB reads, the curated Parquet, or a Hugging Face dataset), which rows
and columns to take (SQL, so a task is one query away from any dataset), how a row becomes a prompt and a reference
(Jinja), and how an output is extracted and scored (names in `evaluation.metrics`). Adding a task is adding a file;
the YAML is validated like params.yaml: every problem at once, with "did you mean".
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from curation.config import ConfigError, params, parse_section, read_yaml
from curation.io import RECORDS_GLOB
from curation.schema import Capability
from evaluation.metrics import EXTRACTORS, METRICS


TASKS_DIR = Path(__file__).parent / "tasks"
_FILE_READERS = {  # suffix -> DuckDB table function; a folder is a stage folder and reads its record shards
    ".parquet": "read_parquet",
    ".jsonl": "read_json",
    ".json": "read_json",
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".txt": "read_csv",
}


@params
class DataSpec:
    path: str  # file or stage folder; `{name}` is filled from params.yaml `evaluate.paths`; `hf:<id>` reads the Hub
    where: str | None = None  # SQL condition on the rows
    select: str = "*"  # SQL select list: derive the columns the templates need
    order_by: str | None = None  # SQL order; None keeps the file's order
    limit: int | None = None  # first rows only (after ordering)
    read_options: dict[str, Any] | None = None  # DuckDB reader options (delim, header, columns, encoding, ...)
    hf_split: str = "test"  # the split of a `hf:` dataset


@params
class ExtractSpec:
    kind: str  # a name in evaluation.metrics.EXTRACTORS
    options: dict[str, Any] | None = None


@params
class TaskSpec:
    task: str  # unique name; the file is <task>.yaml
    description: str
    capability: Capability
    group: Literal["similar", "novel"]  # similar: task types seen in training; novel: unseen ones (FinDAP)
    mode: Literal["direct", "cot"]  # direct answer or chain of thought
    data: DataSpec
    prompt: str  # Jinja over a row: the user turn
    reference: str  # Jinja over a row: the gold answer the metric compares with
    target: str  # Jinja over a row: what a perfect response looks like (the oracle; must score 100%)
    extract: ExtractSpec
    metrics: list[str]  # names in evaluation.metrics.METRICS; the first is the task's score
    max_new_tokens: int
    version: int
    system_prompt: str | None = None
    metric_options: dict[str, Any] | None = None


@dataclass(frozen=True)
class Item:
    """One rendered task item: what the model sees and what it is scored against."""

    id: str
    messages: list[dict[str, str]]
    reference: str
    target: str


_JINJA = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)
_JINJA.filters["fromjson"] = json.loads


def _check(spec: TaskSpec, where: str) -> None:
    problems = []
    if spec.extract.kind not in EXTRACTORS:
        problems.append(f"extract.kind {spec.extract.kind!r} is unknown{_suggest(spec.extract.kind, EXTRACTORS)}")
    if not spec.metrics:
        problems.append("metrics is empty; name at least one (the first is the task's score)")
    problems += [f"metric {m!r} is unknown{_suggest(m, METRICS)}" for m in spec.metrics if m not in METRICS]
    wanted = {o for m in spec.metrics if m in METRICS for o in METRICS[m].options}
    given = set(spec.metric_options or {})
    problems += [f"metric_options lacks {o!r}, which {', '.join(spec.metrics)} need" for o in sorted(wanted - given)]
    problems += [f"metric_options.{o} is used by none of {', '.join(spec.metrics)}" for o in sorted(given - wanted)]
    for field in ("prompt", "reference", "target", "system_prompt"):
        try:
            _JINJA.from_string(getattr(spec, field) or "")
        except TemplateError as err:
            problems.append(f"{field} is not a valid Jinja template: {err}")
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in {where}:\n" + "\n".join(f"  {p}" for p in problems))


def _suggest(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"


def load_task(path: Path) -> TaskSpec:
    """One task file, validated; ConfigError names the file and every problem in it."""
    spec = parse_section(read_yaml(path), TaskSpec, str(path))
    if spec.task != path.stem:
        raise ConfigError(f"{path}: task is {spec.task!r} but the file is {path.name}; name the file {spec.task}.yaml")
    _check(spec, str(path))
    return spec


def load_tasks(patterns: Sequence[str], folder: Path = TASKS_DIR) -> list[TaskSpec]:
    """The tasks whose names match any of `patterns` (fnmatch globs), sorted by name; a pattern matching none fails."""
    files = {p.stem: p for p in sorted(folder.glob("*.yaml"))}
    chosen: set[str] = set()
    for pattern in patterns:
        hits = fnmatch.filter(files, pattern)
        if not hits:
            raise ConfigError(f"no task in {folder} matches {pattern!r}{_suggest(pattern, files)}")
        chosen.update(hits)
    return [load_task(files[name]) for name in sorted(chosen)]


def _source_sql(spec: DataSpec, paths: Mapping[str, str], con: duckdb.DuckDBPyConnection) -> str:
    """A FROM clause for the task's data (a Hugging Face dataset is registered on `con` as a view)."""
    try:
        location = spec.path.format(**paths)
    except KeyError as err:
        raise ConfigError(f"data.path {spec.path!r} uses {err}, which params.yaml evaluate.paths lacks") from None
    if location.startswith("hf:"):
        import datasets  # only tasks that read the Hub pay for the import

        con.register("hf_rows", datasets.load_dataset(location[3:], split=spec.hf_split).data.table)
        return "hf_rows"
    path = Path(location)
    if path.is_dir():  # a stage folder: its records, not its drops
        return f"read_parquet('{path / RECORDS_GLOB}')"
    if not path.exists():
        raise FileNotFoundError(f"{path}: task data not found (data.path {spec.path!r}, paths {dict(paths)})")
    reader = _FILE_READERS.get(path.suffix)
    if reader is None:
        raise ConfigError(f"{path}: cannot read {path.suffix!r} files; use one of {', '.join(_FILE_READERS)}")
    options = "".join(f", {k} = {_sql_value(v)}" for k, v in (spec.read_options or {}).items())
    return f"{reader}('{path}'{options})"


def _sql_value(value: Any) -> str:
    """A Python option value as a DuckDB literal (strings quoted, mappings as structs, lists as lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"'{k}': {_sql_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_sql_value(v) for v in value) + "]"
    return str(value)


def rows(spec: TaskSpec, paths: Mapping[str, str]) -> list[dict[str, Any]]:
    """The task's rows as dicts, after its SQL; an error names the task file and the query."""
    with duckdb.connect() as con:
        query = f"SELECT {spec.data.select} FROM {_source_sql(spec.data, paths, con)}"
        query += f" WHERE {spec.data.where}" if spec.data.where else ""
        query += f" ORDER BY {spec.data.order_by}" if spec.data.order_by else ""
        query += f" LIMIT {spec.data.limit}" if spec.data.limit is not None else ""
        try:
            result = con.execute(query)
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        except duckdb.Error as err:
            raise ConfigError(f"{TASKS_DIR / spec.task}.yaml: data query failed: {err}\n  query: {query}") from None


def render(spec: TaskSpec, row: Mapping[str, Any], index: int) -> Item:
    """One row as an Item; a template error names the task, the row and the missing field."""

    def fill(field: str) -> str:
        try:
            return _JINJA.from_string(getattr(spec, field)).render(**row).strip()
        except TemplateError as err:
            raise ConfigError(
                f"{TASKS_DIR / spec.task}.yaml: {field} fails on row {index} ({err}); columns: {', '.join(row)}"
            ) from None

    messages = [{"role": "system", "content": fill("system_prompt")}] if spec.system_prompt else []
    messages.append({"role": "user", "content": fill("prompt")})
    item_id = str(row["id"]) if "id" in row else f"{spec.task}-{index:06d}"
    return Item(item_id, messages, fill("reference"), fill("target"))


def items(spec: TaskSpec, paths: Mapping[str, str]) -> list[Item]:
    """Every item of a task, rendered; a task with no rows fails, naming its query."""
    found = [render(spec, row, i) for i, row in enumerate(rows(spec, paths))]
    if not found:
        raise ConfigError(f"{TASKS_DIR / spec.task}.yaml: the data query returned no rows (data: {spec.data})")
    return found
