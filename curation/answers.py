"""Answers a program can verify, shared by the data that states them and the code that grades them.

FinQA-style programs (`subtract(5.2, 3), divide(#0, 3)`, where `#k` is step k's result) and IFEval-style
constraints ("answer in lowercase") are written into FinTrain-mini by `curation.world`, scored by
`evaluation.metrics` and checked step by step by the preference judge. One definition here keeps those three
from disagreeing about what a right answer is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


# --- FinQA programs ---------------------------------------------------------------------------------------------

OPERATIONS = {"add": "+", "subtract": "-", "multiply": "x", "divide": "/"}
_ARG = r"#\d+|-?\d+(?:\.\d+)?"
_STEP = re.compile(rf"({'|'.join(OPERATIONS)})\(\s*({_ARG})\s*,\s*({_ARG})\s*\)")


class Step(NamedTuple):
    """One executed program step: `op(a, b)` with its argument values `x`, `y` and `result`."""

    op: str
    a: str
    b: str
    x: float
    y: float
    result: float


def apply(op: str, x: float, y: float) -> float:
    """The value of one operation; division by zero raises ZeroDivisionError."""
    return {"add": x + y, "subtract": x - y, "multiply": x * y}[op] if op != "divide" else x / y


def run_program(program: str) -> list[Step]:
    """Every step of a FinQA program, executed; ValueError names the program when it is not one."""
    pattern = rf"(?:{'|'.join(OPERATIONS)})\(\s*[^(),\s]+\s*,\s*[^(),\s]+\s*\)"
    if not re.fullmatch(rf"\s*{pattern}(?:\s*,\s*{pattern})*\s*", program):
        raise ValueError(f"not a FinQA program: {program!r}")
    steps: list[Step] = []
    for op, a, b in _STEP.findall(program):
        refs = [int(t[1:]) for t in (a, b) if t.startswith("#")]
        if any(k >= len(steps) for k in refs):
            raise ValueError(f"not a FinQA program: {program!r} (step {len(steps)} refers to a later step)")
        x, y = (steps[int(t[1:])].result if t.startswith("#") else float(t) for t in (a, b))
        steps.append(Step(op, a, b, x, y, apply(op, x, y)))
    if len(steps) != program.count("("):
        raise ValueError(f"not a FinQA program: {program!r}")
    return steps


def execute_program(program: str) -> float:
    """The final value of a FinQA program."""
    return run_program(program)[-1].result


def number_text(value: float) -> str:
    """A number as programs and answers write it: at most 4 decimals, no trailing zeros, no thousands separators."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


_NUM = r"-?\d+(?:\.\d+)?"
_STEP_LINE = re.compile(
    rf"Step (\d+):\s*({'|'.join(OPERATIONS)})\(\s*({_ARG})\s*,\s*({_ARG})\s*\)\s*=\s*({_NUM})\s*([-+x/])\s*({_NUM})"
    rf"\s*=\s*({_NUM})"
)


def parse_step(line: str) -> tuple[int, Step] | None:
    """The 0-based step number and the step a `format_step` line states, its numbers as written (unchecked); None
    when the line is not one."""
    m = _STEP_LINE.fullmatch(line.strip())
    if m is None or OPERATIONS[m[2]] != m[6]:
        return None
    return int(m[1]) - 1, Step(m[2], m[3], m[4], float(m[5]), float(m[7]), float(m[8]))


def trajectory_steps(text: str) -> list[str]:
    """A worked answer's steps: its non-empty lines, stripped. The judge names the first wrong one by its index, and
    a stepwise corrective pair keeps the steps before it."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def format_step(k: int, step: Step) -> str:
    """The worked-answer line of step `k` (0-based): 'Step 1: divide(#0, 2) = 11961.9 / 2 = 5980.95'."""
    x, y, r = map(number_text, (step.x, step.y, step.result))
    return f"Step {k + 1}: {step.op}({step.a}, {step.b}) = {x} {OPERATIONS[step.op]} {y} = {r}"


# --- IFEval-style constraints -----------------------------------------------------------------------------------

CONSTRAINT_TYPES = ("uppercase", "lowercase", "max_words", "bullets", "keyword", "end_with", "json_keys",
                    "no_commas", "quotation")  # fmt: skip


def describe_constraint(c: Mapping[str, Any]) -> str:
    """The sentence of an instruction that asks for constraint `c`."""
    kind = c["type"]
    if kind == "uppercase":
        return "Your entire response must be in English and in capital letters only."
    if kind == "lowercase":
        return "Your entire response must be in lowercase letters; no capital letters are allowed."
    if kind == "max_words":
        return f"Answer with at most {c['n']} words."
    if kind == "bullets":
        return f"Your answer must contain exactly {c['n']} bullet points, each on its own line starting with '* '."
    if kind == "keyword":
        return f'Include the keyword "{c["word"]}" in your response.'
    if kind == "end_with":
        return f'Finish your response with this exact phrase: "{c["phrase"]}". No other words should follow it.'
    if kind == "json_keys":
        return (
            "Wrap your entire output in JSON format with exactly these keys: "
            + ", ".join(f'"{k}"' for k in c["keys"])
            + "."
        )
    if kind == "no_commas":
        return "Do not use any commas in your response."
    if kind == "quotation":
        return "Wrap your entire response in double quotation marks."
    raise ValueError(f"unknown constraint type {kind!r}; known: {', '.join(CONSTRAINT_TYPES)}")


def follows(text: str, c: Mapping[str, Any]) -> bool:
    """Whether `text` satisfies constraint `c` (IFEval's strict reading: the response as written)."""
    kind = c["type"]
    if kind == "uppercase":
        return text == text.upper() and any(ch.isalpha() for ch in text)
    if kind == "lowercase":
        return text == text.lower() and any(ch.isalpha() for ch in text)
    if kind == "max_words":
        return len(text.split()) <= c["n"]
    if kind == "bullets":
        return len(re.findall(r"^\s*[*-]\s", text, flags=re.MULTILINE)) == c["n"]
    if kind == "keyword":
        return re.search(rf"\b{re.escape(c['word'])}\b", text, flags=re.IGNORECASE) is not None
    if kind == "end_with":
        return text.strip().endswith(c["phrase"])
    if kind == "json_keys":
        try:
            obj = json.loads(text.strip().removeprefix("```json").removesuffix("```").strip())
        except json.JSONDecodeError:
            return False
        return isinstance(obj, dict) and sorted(obj) == sorted(c["keys"])
    if kind == "no_commas":
        return "," not in text
    if kind == "quotation":
        stripped = text.strip()
        return len(stripped) > 1 and stripped[0] == '"' and stripped[-1] == '"'
    raise ValueError(f"unknown constraint type {kind!r}; known: {', '.join(CONSTRAINT_TYPES)}")


def check_constraints(text: str, constraints: Sequence[Mapping[str, Any]]) -> list[str]:
    """The types of the constraints `text` violates (empty when it satisfies all of them)."""
    return [c["type"] for c in constraints if not follows(text, c)]
