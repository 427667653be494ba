"""Readers of the real public data in shared/data, shared by the real-data tests and the benchmarks.

Each reader returns the text as stored (see each folder's SOURCE.md for its encoding and format); the `*_cleaned`
variants also apply the clean stage's whitespace rule (and, for Reuters, unescape entities), which is what the
quality checks score. The dedup and domain checks keep their own, rawer Reuters forms on purpose: changing them
would change the records those tests assert on. The data is read from here, never copied into the repository
(several licences are research-only). A missing folder skips the test that needs it (`pytest.skip`); a benchmark
stops with the same message.
"""

from __future__ import annotations

import csv
import html
import json
import re
from functools import cache
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
# shared/ beside the checkout, as in /work/main + /work/shared; other checkouts fall back to the development machine's
DATA = REPO.parent / "shared" / "data" if (REPO.parent / "shared" / "data").exists() else Path("/work/shared/data")
MDNA = DATA / "cpt" / "sec_10k_mdna"
REUTERS = DATA / "cpt" / "reuters21578"
FOMC = DATA / "cpt" / "fomc_communications"
GUM = DATA / "general" / "nonfinance_english_gum"
UD = DATA / "general" / "nonenglish_ud_text"
PHRASEBANK = DATA / "eval" / "financial_phrasebank"
PIXIU = DATA / "instruct" / "pixiu_flare_instructions"


def require(path: Path) -> Path:
    """`path` itself, or a skip of the calling test when shared/data lacks it."""
    if not path.exists():
        pytest.skip(f"{path} is missing; the real-data checks need {DATA}")
    return path


def normalize(text: str) -> str:
    """What the clean stage does to whitespace: runs of spaces collapse, lines are stripped, blank runs shrink."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def line_chunks(text: str, low: int = 300, high: int = 800) -> list[str]:
    """Paragraph-sized CPT chunks: whole lines until `low` words; a chunk over `high` words is cut at `high`."""
    out, lines, n = [], [], 0
    for line in text.split("\n"):
        lines.append(line)
        n += len(line.split())
        if n >= low:
            words = "\n".join(lines).split(" ")
            out += [" ".join(words[i : i + high]) for i in range(0, len(words), high) if len(words[i:]) >= low]
            lines, n = [], 0
    return out


def word_chunks(text: str, size: int, shortest: int | None = None) -> list[str]:
    """Consecutive `size`-word pieces; a tail under `shortest` words (two thirds of `size` if None) is left out."""
    words = text.split()
    shortest = size * 2 // 3 if shortest is None else shortest
    pieces = [words[i : i + size] for i in range(0, len(words), size)]
    return [" ".join(p) for p in pieces if len(p) >= shortest]


def sentence_groups(sentences: list[str], size: int) -> list[str]:
    """Documents of `size` consecutive sentences (the last may be shorter)."""
    return [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]


@cache
def mdna_sections(folder: Path = MDNA) -> list[str]:
    """The 10-K MD&A sections (utf-8), in file-name order; cached, so do not mutate the list."""
    return [f.read_text(encoding="utf-8") for f in sorted(require(folder).glob("*.txt"))]


@cache
def mdna_cleaned() -> list[str]:
    """The 10-K MD&A sections with whitespace as the clean stage leaves it; cached, so do not mutate the list."""
    return [normalize(text) for text in mdna_sections()]


def reuters_stories(files: int | None = None) -> list[tuple[set[str], str]]:
    """(topics, raw `<BODY>`) of each story with a body in the first `files` SGML files (latin-1, entities escaped)."""
    stories = []
    for path in sorted(require(REUTERS).glob("reut2-*.sgm"))[:files]:
        for story in re.findall(r"<REUTERS(.*?)</REUTERS>", path.read_text(encoding="latin-1"), re.S):
            topics = re.search(r"<TOPICS>(.*?)</TOPICS>", story, re.S)
            body = re.search(r"<BODY>(.*?)</BODY>", story, re.S)
            if body:
                stories.append((set(re.findall(r"<D>(.*?)</D>", topics.group(1))) if topics else set(), body.group(1)))
    return stories


def reuters_bodies(files: int | None = None) -> list[str]:
    """Raw `<BODY>` texts of the first `files` Reuters-21578 SGML files, in story order."""
    return [body for _, body in reuters_stories(files)]


def reuters_cleaned() -> list[str]:
    """Reuters bodies as the clean stage leaves them: entities unescaped, the end-of-story `\\x03` gone."""
    return [normalize(html.unescape(body).replace("\x03", "")) for body in reuters_bodies()]


def fomc_minutes() -> list[str]:
    """FOMC meeting minutes, one file each (one line per file, as published)."""
    return [f.read_text(encoding="utf-8") for f in sorted(require(FOMC / "meeting_minutes").glob("*.txt"))]


def fomc_press_conferences() -> list[str]:
    """FOMC press-conference transcripts, one sentence per line."""
    press = []
    for path in sorted(require(FOMC / "press_conference_select").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            press.append("\n".join(row["sentence"] for row in csv.DictReader(f)))
    return press


def fomc_cleaned() -> list[str]:
    """FOMC minutes, then press conferences, with whitespace as the clean stage leaves it."""
    return [normalize(text) for text in fomc_minutes() + fomc_press_conferences()]


def openstax_modules(book: str) -> list[str]:
    """Plain-text modules of an OpenStax book (`principles_of_finance`, `introduction_to_business`)."""
    folder = require(DATA / "cpt" / f"openstax_{book}" / "text")
    return [f.read_text(encoding="utf-8") for f in sorted(folder.glob("*.txt"))]


def gum_documents(split: str) -> list[str]:
    """Texts of the GUM English documents of a split (`dev`, `test`) from its `.docs.jsonl`."""
    path = require(GUM / f"en_gum-ud-{split}.docs.jsonl")
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines]


def sentence_files(folder: Path, strip: bool = False) -> dict[str, list[str]]:
    """File name -> non-blank lines of every `*.txt` in a one-sentence-per-line folder; `strip` trims each line."""
    files = sorted(require(folder).glob("*.txt"))
    lines = {path.name: path.read_text(encoding="utf-8").splitlines() for path in files}
    return {name: [s.strip() if strip else s for s in rows if s.strip()] for name, rows in lines.items()}


def phrasebank(agreement: str = "50Agree") -> list[tuple[int, str, str]]:
    """(line number, sentence, label) of the Financial PhraseBank's `sentence@label` lines (latin-1)."""
    lines = require(PHRASEBANK / f"Sentences_{agreement}.txt").read_text(encoding="latin-1").splitlines()
    rows = []
    for i, line in enumerate(lines):
        if "@" in line:
            sentence, label = line.rsplit("@", 1)
            rows.append((i, sentence, label))
    return rows


def pixiu_conversations(name: str) -> list[list[str]]:
    """The turns (prompt first) of each record of a PIXIU instruction file, e.g. `FPB/valid.jsonl`."""
    rows = require(PIXIU / name).read_text(encoding="utf-8").splitlines()
    return [[turn["value"] for turn in json.loads(row)["conversations"]] for row in rows]
