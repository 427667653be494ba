"""Stage `judge`: FinDAP's generative reward model role. Every sampled trajectory gets a verdict on its final answer
and, where the judge can tell, the first wrong step with a correction (what the pair builder needs for FAP and SCP
pairs), behind one interface with three backends, chosen by `judge.backend`:

- `verifier` needs no model. The final answer is read and compared with FinEval's own extractor and metric (the
  `judge.answers` entry of the prompt's `metadata.task`), so a "correct" here is a "correct" in evaluation. For a
  FinQA-style program question the gold program (`metadata.<program_field>`) is executed step by step and the
  trajectory is checked line by line against it (`Program:`, `Step k:` with the values of `#0`, `#1`, ...,
  `Answer:`), which names the first wrong line exactly; the correction is the gold line there and the rest of the
  gold worked answer. Multiple choice has no checkable steps: verdicts only.
- `model` prompts any local transformers causal LM with the templates in training/prompts/ to grade the final answer
  and, for a wrong one, to find and correct the first wrong step.
- `http` sends the same prompts to an OpenAI-compatible server (a vLLM-served judge, say) through the `openai`
  client, which owns timeouts and retries with backoff. The key is read from the environment variable
  `judge.http.api_key_env` and never logged. A call that still fails leaves the trajectory unjudged
  (`judge.http_error`) in this run and its chunk is not kept, so the next run asks again.

A reply the judge model does not write in the asked form is `judge.malformed_reply`, never guessed at. Judging is
resumable in chunks of `chunk_size` trajectories (training.trainer.resumable).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from curation.answers import format_step, number_text, parse_step, run_program, trajectory_steps
from curation.config import load_params, params
from curation.io import IOParams, register_views, write_metrics, write_table
from curation.progress import setup_logging
from curation.schema import reason
from evaluation.generate import GenerateParams, checkpoint_digest, generate, load
from evaluation.metrics import extract, score
from evaluation.registry import ExtractSpec
from training.trainer import JUDGEMENTS_FILE, SAMPLES_FILE, clear, resumable, stage_args


log = logging.getLogger("judge")
STAGE = "judge"
PROMPTS_DIR = Path(__file__).parent / "prompts"
CORRECT, WRONG = reason(STAGE, "correct"), reason(STAGE, "wrong_answer")
NO_FORMAT, NO_REFERENCE = reason(STAGE, "no_answer_format"), reason(STAGE, "unreadable_reference")
MALFORMED, HTTP_ERROR = reason(STAGE, "malformed_reply"), reason(STAGE, "http_error")
JUDGE_COLUMNS = [
    pa.field("correct", pa.bool_()),  # the final answer is right; null: the judge could not tell (verdict says why)
    pa.field("first_wrong_step", pa.int32()),  # index into trajectory_steps(output); null: none found or not checked
    pa.field("correction", pa.string()),  # the corrected step and a right continuation, replacing steps from there
    pa.field("verdict", pa.string()),  # reason code: judge.correct, judge.wrong_answer, judge.malformed_reply, ...
    pa.field("judge_detail", pa.string()),  # for people: what the judge saw
]


@params
class AnswerFormat:
    extract: ExtractSpec  # how the final answer is read (evaluation.metrics extractors)
    metric: str  # how it is compared with the reference's (evaluation.metrics); correct = score 1
    metric_options: dict[str, Any]
    program_field: str | None  # metadata key of the gold FinQA program, checked step by step; null: verdicts only


@params
class ModelJudgeParams:
    path: str  # a local HF-format causal LM folder (or Hub id when online)
    max_new_tokens: int
    generate: GenerateParams


@params
class HttpJudgeParams:
    base_url: str  # OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for `vllm serve`
    model: str  # the served model's name
    api_key_env: str  # environment variable holding the key (unset: no key, as a local vLLM server takes)
    timeout_s: float  # per request
    max_retries: int  # the openai client's retries (connection errors, timeouts, 408/409/429/5xx), with backoff
    max_tokens: int
    temperature: float
    workers: int  # requests in flight at once


@params
class JudgeParams:
    backend: Literal["verifier", "model", "http"]
    chunk_size: int  # trajectories per resumable chunk
    answers: dict[str, AnswerFormat]  # metadata.task -> answer format (the verifier's; LLM judges read any task)
    model: ModelJudgeParams
    http: HttpJudgeParams


@dataclass(frozen=True)
class Judgement:
    correct: bool | None
    first_wrong_step: int | None
    correction: str | None
    verdict: str
    judge_detail: str


# --- verifier ---------------------------------------------------------------------------------------------------


def final_answer(text: str, fmt: AnswerFormat) -> str | None:
    return extract(text, fmt.extract.kind, **(fmt.extract.options or {}))


def answer_matches(prediction: str | None, gold: str, fmt: AnswerFormat) -> bool:
    return score([prediction], [gold], fmt.metric, **fmt.metric_options)[0][0] == 1.0


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-4)  # programs write numbers to 4 decimals (number_text)


def _same_step(k: int, stated: Any, gold: Any, results: Sequence[float]) -> bool:
    """Step `k` as stated (op, arguments, the values written for them, result) is the gold step."""
    if stated.op != gold.op or not _close(stated.result, gold.result):
        return False
    values = []
    for arg in (stated.a, stated.b):
        if arg.startswith("#") and int(arg[1:]) >= k:
            return False  # a reference to this step or a later one
        values.append(results[int(arg[1:])] if arg.startswith("#") else float(arg))
    pairs = [(values[0], values[1]), (stated.x, stated.y)]
    orders = [(gold.x, gold.y), (gold.y, gold.x)] if gold.op in ("add", "multiply") else [(gold.x, gold.y)]
    return all(any(_close(v[0], o[0]) and _close(v[1], o[1]) for o in orders) for v in pairs)


def check_program(lines: Sequence[str], program: str, fmt: AnswerFormat) -> tuple[int | None, str | None]:
    """The first line of a worked answer that departs from the gold program's (`Program:`, each `Step k:`, then
    `Answer:`), and the gold lines from there on; (None, None) when every line is right."""
    gold = run_program(program)
    results = [s.result for s in gold]
    answer = number_text(results[-1])
    expected = [f"Program: {program}", *(format_step(k, s) for k, s in enumerate(gold)), f"Answer: {answer}"]

    def right(j: int, line: str) -> bool:
        if j == 0:
            m = re.fullmatch(r"Program:\s*(.+)", line)
            try:
                steps = run_program(m[1]) if m else []
            except ValueError:
                return False
            return len(steps) == len(gold) and all(_same_step(k, s, g, results) for k, (s, g) in
                                                   enumerate(zip(steps, gold, strict=True)))  # fmt: skip
        if j <= len(gold):
            parsed = parse_step(line)
            return parsed is not None and parsed[0] == j - 1 and _same_step(j - 1, parsed[1], gold[j - 1], results)
        return line.startswith("Answer:") and answer_matches(final_answer(line, fmt), answer, fmt)

    for j, line in enumerate(lines):
        if j >= len(expected):
            return j, ""  # a complete answer followed by more lines: the right continuation is to stop
        if not right(j, line):
            return j, "\n".join(expected[j:])
    if len(lines) < len(expected):
        return len(lines), "\n".join(expected[len(lines) :])
    return None, None


def verify(output: str, reference: str, metadata: Mapping[str, Any], fmt: AnswerFormat) -> Judgement:
    """The verifier's judgement of one trajectory against the gold worked answer (and program, when there is one)."""
    gold = final_answer(reference, fmt)
    if gold is None:
        return Judgement(None, None, None, NO_REFERENCE, f"the gold answer states no {fmt.extract.kind} answer")
    predicted = final_answer(output, fmt)
    correct = predicted is not None and answer_matches(predicted, gold, fmt)
    detail = f"answer {predicted!r}, gold {gold!r}"
    program = metadata.get(fmt.program_field) if fmt.program_field else None
    if not program:
        return Judgement(correct, None, None, CORRECT if correct else WRONG, detail + "; no program to check steps")
    step, correction = check_program(trajectory_steps(output), program, fmt)
    detail += "; every step right" if step is None else f"; first wrong step {step}"
    return Judgement(correct, step, correction, CORRECT if correct else WRONG, detail)


# --- judge models: one prompt pair, two ways to send it ----------------------------------------------------------

Complete = Callable[[Sequence[str]], list[str | None]]  # prompts -> replies (None: the call failed)
_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(PROMPTS_DIR), undefined=jinja2.StrictUndefined,
                                keep_trailing_newline=False, autoescape=False)  # fmt: skip


def template_text() -> str:
    """Both judge prompt templates, verbatim: what a judge model's verdicts depend on besides the model."""
    return "".join((PROMPTS_DIR / name).read_text(encoding="utf-8") for name in ("judge_outcome.jinja",
                                                                                 "judge_step.jinja"))  # fmt: skip


def parse_verdict(reply: str) -> bool | None:
    """The last `Verdict: correct|wrong` of a reply; None when there is none."""
    found = re.findall(r"verdict\s*:\s*\**\s*(correct|incorrect|wrong)\b", reply, flags=re.IGNORECASE)
    return found[-1].lower() == "correct" if found else None


def parse_correction(reply: str, n_steps: int) -> tuple[int, str] | None:
    """(0-based first wrong step, corrected continuation) of a reply, or None unless both are there and in range."""
    step = re.search(r"first wrong step\s*:\s*\[?(\d+)\]?", reply, flags=re.IGNORECASE)
    fix = re.search(r"correction\s*:\s*(.*)", reply, flags=re.IGNORECASE | re.DOTALL)
    if step is None or fix is None or not 1 <= int(step[1]) <= n_steps + 1 or not fix[1].strip():
        return None
    return int(step[1]) - 1, fix[1].strip()


def question(prompt: Sequence[Mapping[str, str]]) -> str:
    return next(m["content"] for m in reversed(prompt) if m["role"] == "user")


def llm_judge(rows: Sequence[Mapping[str, Any]], complete: Complete) -> list[Judgement]:
    """Verdicts from a judge model, then a located and corrected first wrong step for each wrong trajectory."""
    outcome, step = _TEMPLATES.get_template("judge_outcome.jinja"), _TEMPLATES.get_template("judge_step.jinja")
    asks = [outcome.render(question=question(r["prompt"]), reference=r["reference"], trajectory=r["output"])
            for r in rows]  # fmt: skip
    first = complete(asks)
    verdicts = [None if reply is None else parse_verdict(reply) for reply in first]
    wrong = [i for i, v in enumerate(verdicts) if v is False]
    steps = {i: trajectory_steps(rows[i]["output"]) for i in wrong}
    fixes = complete([step.render(question=question(rows[i]["prompt"]), reference=rows[i]["reference"],
                                  steps=steps[i]) for i in wrong])  # fmt: skip
    replies = dict(zip(wrong, fixes, strict=True))
    out = []
    for i, v in enumerate(verdicts):
        if v is None:
            failed = first[i] is None
            out.append(
                Judgement(
                    None,
                    None,
                    None,
                    HTTP_ERROR if failed else MALFORMED,
                    "the call failed" if failed else f"no verdict in the reply {first[i][:200]!r}",
                )
            )
        elif v:
            out.append(Judgement(True, None, None, CORRECT, "the judge model: correct"))
        elif replies[i] is None:  # the verdict stands; the step call is asked again by the next run
            out.append(Judgement(False, None, None, HTTP_ERROR, "the judge model: wrong; the step call failed"))
        else:
            fix = parse_correction(replies[i], len(steps[i]))
            note = (
                f"no valid first wrong step and correction in {replies[i][:200]!r}" if fix is None else "judge model"
            )
            out.append(Judgement(False, *(fix or (None, None)), WRONG, note))
    return out


def model_complete(p: ModelJudgeParams) -> Complete:
    """A local causal LM as the judge: each prompt is one user turn, answered greedily."""
    model, tokenizer = load(p.path, p.generate)

    def complete(prompts: Sequence[str]) -> list[str | None]:
        conversations = [[{"role": "user", "content": text}] for text in prompts]
        outputs = generate(model, tokenizer, conversations, p.max_new_tokens, p.generate.batch_size,
                           description="judge")  # fmt: skip
        return [o[0] for o in outputs]

    return complete


def http_complete(p: HttpJudgeParams) -> Complete:
    """An OpenAI-compatible chat-completions server as the judge; a call that fails after retries gives None."""
    import openai

    client = openai.OpenAI(base_url=p.base_url, api_key=os.environ.get(p.api_key_env) or "not-needed",
                           timeout=p.timeout_s, max_retries=p.max_retries)  # fmt: skip

    def ask(text: str) -> str | None:
        try:
            reply = client.chat.completions.create(model=p.model, messages=[{"role": "user", "content": text}],
                                                   max_tokens=p.max_tokens, temperature=p.temperature)  # fmt: skip
            return reply.choices[0].message.content or ""
        except (openai.APIError, ValueError, IndexError, AttributeError) as err:  # ValueError: a body that is not JSON
            log.warning("judge: %s failed after %d retries: %s", p.base_url, p.max_retries, type(err).__name__)
            return None

    def complete(prompts: Sequence[str]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=p.workers) as pool:
            return list(pool.map(ask, prompts))

    return complete


# --- the stage ---------------------------------------------------------------------------------------------------


def judge_rows(rows: Sequence[Mapping[str, Any]], p: JudgeParams, complete: Complete | None) -> list[Judgement]:
    """Judgements of trajectories (sample rows) by the configured backend (`complete` for model and http)."""
    if p.backend != "verifier":
        assert complete is not None
        return llm_judge(rows, complete)
    out = []
    for r in rows:
        fmt = p.answers.get(r["task"] or "")
        if fmt is None:
            known = ", ".join(sorted(p.answers))
            out.append(Judgement(None, None, None, NO_FORMAT, f"task {r['task']!r} has no judge.answers entry "
                                                              f"(known: {known})"))  # fmt: skip
        else:
            out.append(verify(r["output"], r["reference"], json.loads(r["metadata"]), fmt))
    return out


def with_judgements(table: pa.Table, judgements: Sequence[Judgement]) -> pa.Table:
    for field in JUDGE_COLUMNS:
        table = table.append_column(field, pa.array([getattr(j, field.name) for j in judgements], field.type))
    return table


def backend_key(p: JudgeParams) -> list[Any]:
    """What a verdict depends on besides the trajectory: the backend and its settings (model bytes, templates)."""
    if p.backend == "verifier":
        return ["verifier", {k: str(v) for k, v in sorted(p.answers.items())}]
    if p.backend == "model":
        return ["model", checkpoint_digest(p.model.path), str(p.model), template_text()]
    return ["http", p.http.base_url, p.http.model, p.http.max_tokens, p.http.temperature, template_text()]


def run(samples: pa.Table, checkpoints: Path, p: JudgeParams) -> tuple[pa.Table, dict[str, Any]]:
    complete = {"verifier": lambda: None, "model": lambda: model_complete(p.model),
                "http": lambda: http_complete(p.http)}[p.backend]()  # fmt: skip
    settings = backend_key(p)
    chunks = [samples.slice(i, p.chunk_size) for i in range(0, samples.num_rows, p.chunk_size)]

    def key(chunk: pa.Table) -> str:
        rows = chunk.select(["prompt_id", "sample", "output", "reference", "metadata"]).to_pylist()
        return xxhash.xxh3_128_hexdigest(json.dumps([settings, rows], sort_keys=True))

    def work(chunk: pa.Table) -> tuple[pa.Table, bool]:
        judgements = judge_rows(chunk.to_pylist(), p, complete)
        return with_judgements(chunk, judgements), all(j.verdict != HTTP_ERROR for j in judgements)

    schema = pa.schema([*samples.schema, *JUDGE_COLUMNS])
    table = resumable(chunks, key, work, checkpoints, schema, "judge")
    return table, metrics(table, p.backend)


def metrics(table: pa.Table, backend: str) -> dict[str, Any]:
    rows = table.select(["task", "correct", "first_wrong_step", "correction", "verdict"]).to_pylist()
    by_task: dict[str, dict[str, int]] = {}
    for r in rows:
        counts = by_task.setdefault(str(r["task"]), {"trajectories": 0, "correct": 0, "wrong": 0, "unjudged": 0,
                                                      "wrong_step_located": 0})  # fmt: skip
        counts["trajectories"] += 1
        counts["unjudged" if r["correct"] is None else "correct" if r["correct"] else "wrong"] += 1
        counts["wrong_step_located"] += r["correct"] is False and r["correction"] is not None
    verdicts: dict[str, int] = {}
    for r in rows:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    judged = sum(r["correct"] is not None for r in rows)
    return {
        "backend": backend,
        "trajectories": len(rows),
        "policy_accuracy": round(sum(r["correct"] is True for r in rows) / judged, 4) if judged else None,
        "verdicts": dict(sorted(verdicts.items())),
        "by_task": dict(sorted(by_task.items())),
    }


def main(argv: Sequence[str] | None = None) -> None:
    paths, checkpoints = stage_args(argv, __doc__)
    p = load_params(STAGE, JudgeParams, paths.params)
    io = load_params("io", IOParams, paths.params)
    started = time.perf_counter()
    (sample_dir,) = paths.inputs
    table, stage_metrics = run(pq.read_table(sample_dir / SAMPLES_FILE), checkpoints, p)
    write_table(table, paths.output / JUDGEMENTS_FILE, io.compression)
    clear(checkpoints)
    stage_metrics["wall_s"] = round(time.perf_counter() - started, 1)
    write_metrics(stage_metrics, paths.metrics)
    register_views(Path(io.catalog), STAGE, paths.output, {"judgements": JUDGEMENTS_FILE})
    log.info("judge (%s): %d trajectories, policy accuracy %s, verdicts %s (%.0f s)", p.backend,
             stage_metrics["trajectories"], stage_metrics["policy_accuracy"], stage_metrics["verdicts"],
             stage_metrics["wall_s"])  # fmt: skip


if __name__ == "__main__":
    setup_logging()
    main()
