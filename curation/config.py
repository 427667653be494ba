"""`params.yaml` is the only home of defaults: each stage reads its section into a frozen dataclass that has none.

The dataclasses are pydantic dataclasses with unknown keys forbidden, so a typo'd key fails loudly instead of being
ignored, and pydantic reports every problem of a section at once. We add the file name and a "did you mean" for
unknown keys (lm-evaluation-harness style). `dataclasses.replace` works on them, which is how tests override the
shipped defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass


T = TypeVar("T")
PARAMS_FILE = "params.yaml"

params = dataclass(frozen=True, config=ConfigDict(extra="forbid"))
"""Decorator for a params section: frozen, no unknown keys, types checked."""


class ConfigError(ValueError):
    """All the problems of one params section, each with where it is and how to fix it."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from the project root or pass --params PATH") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _field_names(cls: Any, seen: set[Any] | None = None) -> set[str]:
    """Every field name in a params dataclass and the dataclasses nested in it, for 'did you mean'."""
    seen = seen if seen is not None else set()
    if cls in seen or not dataclasses.is_dataclass(cls):
        return set()
    seen.add(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for hint in typing.get_type_hints(cls).values():
        for arg in (hint, *typing.get_args(hint)):
            names |= _field_names(arg, seen)
            for inner in typing.get_args(arg):
                names |= _field_names(inner, seen)
    return names


def parse_section(data: Any, cls: type[T], where: str) -> T:
    """Validate one section's raw data into `cls`, or raise ConfigError listing every problem."""
    try:
        return TypeAdapter(cls).validate_python(data)
    except ValidationError as err:
        known = sorted(_field_names(cls))
        problems = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            msg = f"  {where}.{loc}: {e['msg']}"
            if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
                close = difflib.get_close_matches(str(e["loc"][-1]), known, n=1)
                msg += f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            problems.append(msg)
        raise ConfigError(f"{len(problems)} problem(s) in {where}:\n" + "\n".join(problems)) from None


def load_params(section: str, cls: type[T], path: str | Path = PARAMS_FILE) -> T:
    """Read `section` of the params file into `cls`; the only place params are read."""
    data = read_yaml(path)
    if section not in data:
        close = difflib.get_close_matches(section, list(data), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{path}: no section {section!r}{hint} (sections: {', '.join(data)})")
    return parse_section(data[section], cls, f"{path}:{section}")


def apply_profile(params_path: str | Path, profile_path: str | Path) -> list[str]:
    """Merge a profile (a partial params file) into the params file: mappings key by key, anything else (a list of
    sources, a value) replaced whole. Comments and order of the params file survive (ruamel round-trip), so the
    change is a readable `git diff`. Returns the dotted keys that were set. The sections are checked when the stages
    load them, with the usual "did you mean"."""
    from ruamel.yaml import YAML

    yaml_rt = YAML()
    yaml_rt.width = 4096  # keep one source per line
    params_path, profile_path = Path(params_path), Path(profile_path)
    data = yaml_rt.load(params_path.read_text(encoding="utf-8"))
    profile = read_yaml(profile_path)
    changed: list[str] = []

    def merge(target: Any, patch: dict[str, Any], where: str) -> None:
        for key, value in patch.items():  # a new key is allowed (judge.answers.<task>); a typo fails in load_params
            if isinstance(value, dict) and isinstance(target.get(key), dict) and value:
                merge(target[key], value, f"{where}{key}.")
            else:
                target[key] = value
                changed.append(f"{where}{key}")

    merge(data, profile, "")
    with params_path.open("w", encoding="utf-8") as f:
        yaml_rt.dump(data, f)
    return changed
