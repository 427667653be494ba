from __future__ import annotations

import pytest

from curation.schema import Kind, content_key, reason, record_id


def test_record_id_is_stable_and_content_derived() -> None:
    # Golden value: ids must not change across versions, or records lose their trace to the source.
    assert record_id("news", "Acme beats estimates.") == "056343fe3c4982e3"
    assert record_id("news", "Acme beats estimates.") != record_id("web", "Acme beats estimates.")
    assert record_id("news", "x", occurrence=1) != record_id("news", "x")
    assert len({record_id("s", "x", occurrence=k) for k in range(100)}) == 100


def test_content_key_covers_conversation_and_answer() -> None:
    messages = [{"role": "user", "content": "2+2?"}]
    assert content_key(Kind.EVAL, None, messages, "4") != content_key(Kind.EVAL, None, messages, "5")
    assert content_key(Kind.CPT, "text", None) == "text"


def test_reason_codes_are_checked() -> None:
    assert reason("quality", "too_few_words") == "quality.too_few_words"
    for bad in ("Quality", "too few", "a-b"):
        with pytest.raises(ValueError, match=r"stage\.failed_condition"):
            reason("quality", bad)
