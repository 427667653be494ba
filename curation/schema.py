"""The shared vocabulary: record columns and their Arrow types, FinCap capabilities, kinds, splits, reason codes, ids.

Every dataset the pipeline writes is a table of *records* with the columns below, so one DuckDB query works on the
output of any stage. Optional columns are null where they do not apply (a CPT record has no `messages`). Everything a
source knows beyond these columns, generator ground truth included, lives in `metadata`, a JSON object stored as a
string so that DuckDB can read it with `metadata->>'$.is_spam'` whatever its keys are.

Ids are content-derived (Dolma-style): the same source row gets the same id in every run and every version, so a
record in any stage traces back to its source. Identical content repeated inside one source gets an occurrence
suffix, so exact duplicates keep distinct ids and are left for the dedup stage to find and report.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

import pyarrow as pa
import xxhash


class Capability(StrEnum):
    """FinCap: what a financial LLM must be able to do, plus the general ability it must not forget."""

    CONCEPTS = "concepts"
    TASKS = "tasks"
    REASONING = "reasoning"
    INSTRUCTION_FOLLOWING = "instruction_following"
    GENERAL = "general"


class Kind(StrEnum):
    CPT = "cpt"  # continual-pretraining text: `text`
    IT = "it"  # instruction conversation: `messages`, ending with an assistant turn
    PREF = "pref"  # preference pair: prompt `messages`, `chosen`, `rejected`
    EVAL = "eval"  # evaluation item: prompt `messages`, gold `answer`


class Split(StrEnum):
    TRAIN = "train"
    EVAL = "eval"


ID = "id"
KIND = "kind"
SOURCE = "source"
CAPABILITY = "capability"
LANGUAGE = "language"
SPLIT = "split"
TEXT = "text"
MESSAGES = "messages"
ANSWER = "answer"
CHOSEN = "chosen"
REJECTED = "rejected"
METADATA = "metadata"

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
RECORD_SCHEMA = pa.schema(
    [
        pa.field(ID, pa.string(), nullable=False),
        pa.field(KIND, pa.string(), nullable=False),
        pa.field(SOURCE, pa.string(), nullable=False),
        pa.field(CAPABILITY, pa.string(), nullable=False),
        pa.field(LANGUAGE, pa.string(), nullable=False),
        pa.field(SPLIT, pa.string(), nullable=False),
        pa.field(TEXT, pa.string()),
        pa.field(MESSAGES, pa.list_(MESSAGE_TYPE)),
        pa.field(ANSWER, pa.string()),
        pa.field(CHOSEN, pa.string()),
        pa.field(REJECTED, pa.string()),
        pa.field(METADATA, pa.string(), nullable=False),
    ]
)
COLUMNS = tuple(RECORD_SCHEMA.names)
ROLES = ("system", "user", "assistant")

# A dropped row is the record itself (so a drop can be inspected and undone; null where ingest could not build one)
# plus why: the reason code, a detail for people, the score that decided and the threshold it was held against, and
# for ingest rejects the file, line and raw input (cut to RAW_EXCERPT characters).
DROP_SCHEMA = pa.schema(
    [
        *(pa.field(f.name, f.type, nullable=f.name != SOURCE) for f in RECORD_SCHEMA),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("raw", pa.string()),
    ]
)
RAW_EXCERPT = 2000

_REASON = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def reason(stage: str, failure: str) -> str:
    """The reason code `<stage>.<failed_condition>`, checked so that a typo cannot invent a new category."""
    code = f"{stage}.{failure}"
    if not _REASON.match(code):
        raise ValueError(f"reason code {code!r} must look like 'stage.failed_condition' (lowercase, digits, '_')")
    return code


def content_key(kind: str, text: str | None, messages: list[dict[str, str]] | None, answer: str | None = None) -> str:
    """The canonical content a record is identified by: its text, or its conversation (and answer), as JSON."""
    if kind == Kind.CPT:
        return text or ""
    return json.dumps({"messages": messages, "answer": answer}, ensure_ascii=False, sort_keys=True)


def record_id(source: str, content: str, occurrence: int = 0) -> str:
    """Stable 16-hex id from source and content; the k-th repeat of identical content in a source gets suffix k."""
    key = f"{source}\x00{content}" if occurrence == 0 else f"{source}\x00{content}\x00{occurrence}"
    return xxhash.xxh3_64_hexdigest(key.encode("utf-8", "surrogatepass"))


def dump_metadata(metadata: dict[str, Any]) -> str:
    """Metadata as canonical JSON (sorted keys), so equal metadata gives equal bytes."""
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True, default=str)
