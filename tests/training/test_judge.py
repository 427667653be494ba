"""training/judge.py: the verifier on hand-made right and wrong trajectories (the first wrong step, exactly), the
judge-model reply parsers, and the HTTP backend against a local fake OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from curation.config import load_params
from tests.conftest import PARAMS
from training import judge
from training.judge import (
    CORRECT,
    HTTP_ERROR,
    MALFORMED,
    NO_FORMAT,
    NO_REFERENCE,
    WRONG,
    HttpJudgeParams,
    JudgeParams,
    check_program,
    http_complete,
    llm_judge,
    parse_correction,
    parse_verdict,
    verify,
)


P = load_params("judge", JudgeParams, PARAMS)
PROGRAM, CHOICE = P.answers["program"], P.answers["multiple_choice"]
GOLD = "subtract(5.2, 3), divide(#0, 2)"  # 2.2, then 1.1
LINES = [
    f"Program: {GOLD}",
    "Step 1: subtract(5.2, 3) = 5.2 - 3 = 2.2",
    "Step 2: divide(#0, 2) = 2.2 / 2 = 1.1",
    "Answer: 1.1",
]
REFERENCE = "\n".join(LINES)
META = {"task": "program", "program": GOLD}


def with_line(j: int, line: str) -> list[str]:
    return [*LINES[:j], line, *LINES[j + 1 :]]


def test_a_right_trajectory_is_correct_with_no_wrong_step() -> None:
    j = verify(REFERENCE, REFERENCE, META, PROGRAM)
    assert (j.correct, j.first_wrong_step, j.correction, j.verdict) == (True, None, None, CORRECT)
    assert check_program(LINES, GOLD, PROGRAM) == (None, None)


@pytest.mark.parametrize(
    ("j", "line"),
    [
        (0, "Program: subtract(5.2, 3), divide(#0, 3)"),  # the wrong program
        (0, "Program: subtract(3, 5.2), divide(#0, 2)"),  # subtraction is not commutative
        (0, "Program: the difference, halved"),  # not a program
        (1, "Step 1: subtract(5.2, 3) = 5.2 - 3 = 2.3"),  # wrong result
        (1, "Step 1: subtract(5.3, 3) = 5.3 - 3 = 2.3"),  # wrong operand, consistently carried through
        (1, "Step 1: add(5.2, 3) = 5.2 + 3 = 2.2"),  # wrong operation
        (1, "Step 2: subtract(5.2, 3) = 5.2 - 3 = 2.2"),  # misnumbered
        (2, "Step 2: divide(#1, 2) = 2.2 / 2 = 1.1"),  # a step that refers to itself
        (2, "Step 2: divide(#0, 2) = 2.3 / 2 = 1.1"),  # the value written for #0 is not #0's
        (2, "Step 2: divide(2, #0) = 2 / 2.2 = 0.9091"),  # division is not commutative
        (3, "Answer: 1.5"),  # every step right, the answer line wrong
        (3, "The answer is 1.1"),  # not an answer line
    ],
)
def test_the_first_wrong_step_is_found_exactly_and_corrected_from_the_gold_program(j: int, line: str) -> None:
    lines = with_line(j, line)
    assert check_program(lines, GOLD, PROGRAM) == (j, "\n".join(LINES[j:]))
    later = [*lines[: j + 1], "Step 9: garbage", *lines[j + 1 :]]  # what follows the first error does not matter
    assert check_program(later, GOLD, PROGRAM)[0] == j


def test_equal_values_written_differently_and_commutative_operands_are_right() -> None:
    program = "add(1.5, 2), multiply(#0, 3)"
    lines = [
        "Program: add(2, 1.5), multiply(3, #0)",
        "Step 1: add(2, 1.50) = 2 + 1.5 = 3.5",
        "Step 2: multiply(3, #0) = 3 x 3.5 = 10.5",
        "Answer: 10.50",
    ]
    assert check_program(lines, program, PROGRAM) == (None, None)


def test_a_trajectory_that_stops_early_or_goes_on_is_wrong_where_it_departs() -> None:
    assert check_program(LINES[:2], GOLD, PROGRAM) == (2, "\n".join(LINES[2:]))
    assert check_program([], GOLD, PROGRAM) == (0, REFERENCE)
    assert check_program([*LINES, "Answer: 7"], GOLD, PROGRAM) == (4, "")  # the right continuation is to stop


def test_verdicts_read_the_final_answer_as_fineval_does() -> None:
    early = "\n".join(with_line(1, "Step 1: subtract(5.2, 3) = 5.2 - 3 = 9")[:3]) + "\nAnswer: 1.1"
    j = verify(early, REFERENCE, META, PROGRAM)  # right answer despite a wrong step: correct, the step still named
    assert (j.correct, j.first_wrong_step) == (True, 1)
    j = verify("Answer: 1.6", REFERENCE, META, PROGRAM)
    assert (j.correct, j.verdict, j.first_wrong_step, j.correction) == (False, WRONG, 0, REFERENCE)
    assert verify("Answer: 1.105", REFERENCE, META, PROGRAM).correct  # numeric_match's 1% tolerance
    assert verify("", REFERENCE, META, PROGRAM).correct is False
    mc = "Reasoning.\nSelection: [[B]]"
    assert verify("So B.\nSelection: [[B]]", mc, {"task": "multiple_choice"}, CHOICE).correct
    j = verify("Selection: [[C]]", mc, {"task": "multiple_choice"}, CHOICE)
    assert (j.correct, j.first_wrong_step, j.correction) == (False, None, None)  # no gold steps to check against
    assert verify("Answer: 1.1", "no number here", META, PROGRAM).verdict == NO_REFERENCE


def test_a_task_without_an_answer_format_is_unjudged_and_says_which_formats_exist() -> None:
    row = {"task": "sentiment", "output": "positive", "reference": "positive", "metadata": "{}"}
    (j,) = judge.judge_rows([row], P, None)
    assert (j.correct, j.verdict) == (None, NO_FORMAT) and "multiple_choice, program" in j.judge_detail


def test_reply_parsers_are_strict() -> None:
    assert parse_verdict("Looks fine.\nVerdict: correct") is True
    assert parse_verdict("Verdict: **Incorrect**") is False
    assert parse_verdict("verdict: wrong ... Verdict: correct") is True  # the last one counts
    assert parse_verdict("The answer is correct.") is None
    assert parse_correction("First wrong step: [2]\nCorrection:\nStep 2: x\nAnswer: 1", n_steps=3) == (
        1,
        "Step 2: x\nAnswer: 1",
    )
    assert parse_correction("First wrong step: 4\nCorrection: Answer: 1", n_steps=3) == (3, "Answer: 1")
    assert parse_correction("First wrong step: 5\nCorrection: x", n_steps=3) is None  # out of range
    assert parse_correction("First wrong step: 0\nCorrection: x", n_steps=3) is None
    assert parse_correction("First wrong step: 2\nCorrection:   ", n_steps=3) is None
    assert parse_correction("Step 2 is wrong.", n_steps=3) is None


ROWS = [
    {"prompt": [{"role": "user", "content": f"Question {i}?"}], "reference": REFERENCE, "output": f"Answer: {i}"}
    for i in range(4)
]


def test_llm_judge_asks_for_a_verdict_then_a_correction_of_wrong_answers_only() -> None:
    asked: list[list[str]] = []
    replies = iter([
        ["Verdict: correct", "Verdict: wrong", "no idea", None],
        ["First wrong step: 1\nCorrection:\nAnswer: 1.1"],
    ])  # fmt: skip

    def complete(prompts: Any) -> list[str | None]:
        asked.append(list(prompts))
        return next(replies)

    judgements = llm_judge(ROWS, complete)
    assert [j.verdict for j in judgements] == [CORRECT, WRONG, MALFORMED, HTTP_ERROR]
    assert [j.correct for j in judgements] == [True, False, None, None]
    assert (judgements[1].first_wrong_step, judgements[1].correction) == (0, "Answer: 1.1")
    assert len(asked[0]) == 4 and len(asked[1]) == 1
    assert "Question 1?" in asked[1][0] and "[1] Answer: 1" in asked[1][0] and REFERENCE in asked[0][0]


def test_the_model_backend_runs_a_local_checkpoint_and_rejects_what_it_cannot_parse(checkpoint: Path) -> None:
    p = judge.ModelJudgeParams(
        path=str(checkpoint), max_new_tokens=8, generate=judge.GenerateParams(2, "cpu", "float32")
    )
    replies = judge.model_complete(p)(["Grade this.", "And this."])
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)
    assert [j.verdict for j in llm_judge(ROWS[:2], judge.model_complete(p))] == [MALFORMED, MALFORMED]  # random LM


# --- the HTTP backend against a fake server --------------------------------------------------------------------


class FakeJudge(BaseHTTPRequestHandler):
    """An OpenAI-compatible /chat/completions endpoint whose behaviour the test scripts per request."""

    script: ClassVar[list[str]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeJudge.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        action = FakeJudge.script.pop(0) if FakeJudge.script else "Verdict: correct"
        if action == "sleep":
            time.sleep(1.0)
            action = "Verdict: correct"
        if action == "500":
            self._send(500, b'{"error": {"message": "overloaded"}}')
        elif action == "not json":
            self._send(200, b"<html>gateway</html>")
        elif action == "no choices":
            self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
        else:
            reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": action}}]}  # fmt: skip
            self._send(200, json.dumps(reply).encode())

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    FakeJudge.script, FakeJudge.seen = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def http_params(url: str, **changes: Any) -> HttpJudgeParams:
    return HttpJudgeParams(**{**vars(P.http), "base_url": url, "workers": 1, "max_retries": 0, **changes})


def test_http_backend_sends_the_prompt_with_the_key_from_the_environment_and_never_logs_it(
    server: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JUDGE_API_KEY", "sk-secret-123")
    FakeJudge.script = ["Verdict: wrong", "First wrong step: 1\nCorrection:\nAnswer: 1.1", "500"]
    with caplog.at_level(logging.DEBUG):
        judgements = llm_judge(ROWS[:1], http_complete(http_params(server)))
        assert http_complete(http_params(server))(["x"]) == [None]  # a 500 with no retries left
    assert (judgements[0].verdict, judgements[0].correction) == (WRONG, "Answer: 1.1")
    assert FakeJudge.seen[0]["auth"] == "Bearer sk-secret-123"
    assert FakeJudge.seen[0]["body"]["model"] == P.http.model and "Question 0?" in json.dumps(FakeJudge.seen[0])
    assert "sk-secret-123" not in caplog.text and "failed after 0 retries" in caplog.text


def test_http_backend_retries_server_errors_then_succeeds(server: str) -> None:
    FakeJudge.script = ["500", "500", "Verdict: correct"]
    assert http_complete(http_params(server, max_retries=2))(["x"]) == ["Verdict: correct"]
    assert len(FakeJudge.seen) == 3


def test_http_backend_times_out_and_gives_up_after_its_retries(server: str) -> None:
    FakeJudge.script = ["sleep", "sleep"]
    started = time.perf_counter()
    assert http_complete(http_params(server, timeout_s=0.2, max_retries=1))(["x"]) == [None]
    assert len(FakeJudge.seen) == 2 and time.perf_counter() - started < 5


@pytest.mark.parametrize("reply", ["not json", "no choices"])
def test_http_backend_treats_a_malformed_response_as_a_failed_call(server: str, reply: str) -> None:
    FakeJudge.script = [reply]
    (j,) = llm_judge(ROWS[:1], http_complete(http_params(server)))
    assert (j.correct, j.verdict) == (None, HTTP_ERROR)


def test_a_chunk_with_a_failed_call_is_not_kept_so_the_next_run_asks_again(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = JudgeParams(backend="http", chunk_size=2, answers=P.answers, model=P.model, http=http_params(server))
    rows = [{**r, "prompt_id": str(i), "sample": 0, "metadata": "{}", "task": "program"} for i, r in enumerate(ROWS)]
    samples = pa.Table.from_pylist(rows)
    FakeJudge.script = ["Verdict: correct", "Verdict: correct", "500"]  # chunk 1 fine, chunk 2's first call fails
    first, _ = judge.run(samples, tmp_path, p)
    assert first.column("verdict").to_pylist() == [CORRECT, CORRECT, HTTP_ERROR, CORRECT]
    assert len(list(tmp_path.glob("*.parquet"))) == 1
    second, metrics = judge.run(samples, tmp_path, p)  # chunk 1 reused: only chunk 2's two trajectories are asked
    assert len(FakeJudge.seen) == 4 + 2 and second.column("verdict").to_pylist() == [CORRECT] * 4
    assert metrics["policy_accuracy"] == 1.0 and metrics["verdicts"] == {CORRECT: 4}
