"""FinTrain-mini: a seeded synthetic financial world with ground truth, written as JSONL sources (DVC stage `world`).

Why: every curation stage (language id, spam and quality filters, boilerplate and mojibake repair, exact and near
dedup, decontamination) and every FinEval score needs data whose right answer is known, offline and in seconds. This
module writes such a world: fictional companies with internally consistent yearly facts; documents about them (10-K
MD&A sections, news, earnings calls) plus glossary explainers of real financial concepts, general English text,
German/French/Spanish pages and spam; planted exact and near copies, figure variants, mojibake, boilerplate lines and
malformed lines; instruction data and held-out evaluation items for the five FinCap capabilities; and evaluation items
leaked into web pages and instruction data. Each row's `metadata` carries the ground truth, every key always present,
so any stage's decisions can be scored against it. The JSONL files are the interface: `ingest` reads them as sources.

Non-obvious decisions:
- Near copies are edited until their *measured* word-5-gram Jaccard with the original (see `word_shingles`) lies in
  NEAR_DUP_BAND, and the measured value is stored: an edit count alone gives anything from 0.6 to 0.99 by length.
- Figure variants (same words, every figure changed) are NOT duplicates: they are what filings of two years look like,
  and they test that near-dedup does not throw away documents that differ only in their numbers.
- Company facts appear only in CPT text and are asked only in evaluation (`novel` concept questions), so a model can
  answer them only by learning from the documents; instruction data names companies and people from a disjoint pool.
- Noise (mojibake, boilerplate) goes only to documents outside duplicate relations, so each label means one thing.
- Evaluation items are held out at the n-gram level decontamination uses: each carries `metadata.query` (its content
  without the instruction template: the headline, the sentence, the table and question, the stem and options, the
  content request), and no training record shares a word 13-gram of it (or, for 8-12 words, the whole of it, also
  with the first answer words appended). Eval items get names, assets, phrasings and descriptions reserved for
  evaluation, and a candidate that may still collide with training text is replaced by the next one drawn
  (`TrainingIndex`); only planted leaks contain a query, and only queries long enough to be found are leaked.
- Determinism: each part draws from its own `random.Random` seeded by (seed, part name), so resizing one part leaves
  the others unchanged; only lists and tuples are iterated, never sets or dict orders that depend on hashing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from random import Random
from typing import Annotated, Any

from pydantic import Field

from curation.answers import (
    check_constraints,
    describe_constraint,
    execute_program,
    format_step,
    number_text,
    run_program,
)
from curation.config import load_params, params
from curation.io import stage_paths, write_metrics
from curation.progress import setup_logging
from curation.schema import Capability


log = logging.getLogger("world")

Count = Annotated[int, Field(ge=0)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]


@params
class CapabilitySizes:
    """Rows per FinCap capability: one `it_<capability>` or `eval_<capability>` file each."""

    concepts: Count
    tasks: Count
    reasoning: Count
    instruction_following: Count
    general: Count


@params
class WorldParams:
    seed: int
    n_companies: Annotated[int, Field(ge=1)]
    first_year: int
    n_years: Annotated[int, Field(ge=1)]
    news_per_company: Count
    calls_per_company: Count
    n_glossary_docs: Count
    n_general: Count
    n_web_finance: Count
    n_web_general: Count
    n_nonenglish: Count
    nonenglish_finance_rate: Rate
    n_spam: Count
    exact_dup_rate: Rate
    near_dup_rate: Rate
    near_dup_edit_rate: Rate
    figure_variant_rate: Rate
    mojibake_rate: Rate
    boilerplate_rate: Rate
    n_leaked_cpt: Count
    n_leaked_it: Count
    malformed_rows: Count
    it: CapabilitySizes
    eval: CapabilitySizes


CAPABILITIES = tuple(c.value for c in Capability)
CPT_SOURCES = ("filings", "news", "calls", "glossary", "general", "web")
IT_SOURCES = tuple(f"it_{c}" for c in CAPABILITIES)
EVAL_SOURCES = tuple(f"eval_{c}" for c in CAPABILITIES)
SOURCES = CPT_SOURCES + IT_SOURCES + EVAL_SOURCES
GROUND_TRUTH_KEYS = (
    "world_id",
    "is_finance",
    "is_spam",
    "true_language",
    "is_duplicate_of",
    "duplicate_type",
    "near_dup_jaccard",
    "figure_variant_of",
    "leaked_from",
    "mojibake",
    "boilerplate_lines",
)
REFERENCE_KEYS = ("is_duplicate_of", "figure_variant_of", "leaked_from")
NEAR_DUP_BAND = (0.87, 0.95)  # inside the promised [0.85, 0.97] whatever word tokenizer a reader uses
MIN_LEAK_PROMPT_WORDS = 20
MANIFEST_FILE = "manifest.json"

Rows = dict[str, list[dict[str, Any]]]
Pool = tuple[str, ...] | range


# ---------------------------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------------------------


def _rng(seed: int, part: str) -> Random:
    """An independent generator per part (string seeds are hashed with SHA-512, so this is stable across runs)."""
    return Random(f"{seed}:{part}")


def _money(millions: float) -> str:
    sign = "-" if millions < 0 else ""
    return f"{sign}${abs(millions):,.1f} million"


def _dollars(value: float, cents: bool = True) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}" if cents else f"{sign}${abs(value):,.0f}"


def _join(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _words(text: str) -> int:
    return len(text.split())


_FORMATTER = string.Formatter()


def _fill(template: str, rng: Random, vocab: Mapping[str, Pool], fixed: Mapping[str, Any] | None = None) -> str:
    """Fill `{slot}` fields from `vocab` (a field `x2` draws from pool `x`, distinct from `x`); `fixed` wins."""
    values: dict[str, Any] = dict(fixed or {})
    used: dict[str, list[str]] = {}
    for name, value in values.items():
        used.setdefault(name.rstrip("0123456789"), []).append(str(value))
    for _, name, _, _ in _FORMATTER.parse(template):
        if name is None or name in values:
            continue
        base = name.rstrip("0123456789")
        pool = vocab[base] if base in vocab else COMMON_VOCAB[base]
        taken = used.setdefault(base, [])
        value = str(rng.choice(pool))
        for _ in range(20):
            if value not in taken:
                break
            value = str(rng.choice(pool))
        taken.append(value)
        values[name] = value
    return _cap(template.format(**values))


def word_shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of the lowercased, whitespace-split text: the measure behind `near_dup_jaccard`."""
    words = text.lower().split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# ---------------------------------------------------------------------------------------------------------------
# Text transforms: mojibake, figure variants, near copies
# ---------------------------------------------------------------------------------------------------------------

# cp1252 as browsers decode it: the 5 bytes cp1252 leaves undefined map to the same code point (ftfy "sloppy").
_SLOPPY_CP1252 = tuple(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))


def to_mojibake(text: str) -> str:
    """UTF-8 bytes read as cp1252 (a curly apostrophe -> "â€™", "é" -> "Ã©"); typographic punctuation is added
    first, as a CMS would, so that even ASCII English text shows the damage."""
    typo = text.replace("'", "\u2019").replace(" - ", " \u2014 ")
    if typo.isascii():
        typo = typo.replace(", ", " \u2014 ", 1)
    if typo.isascii():
        typo += " \u2026"
    return misdecode(typo)


def misdecode(text: str) -> str:
    """The bytes of UTF-8 `text` read as cp1252; ASCII is unchanged."""
    return "".join(_SLOPPY_CP1252[b] for b in text.encode("utf-8"))


# A figure is any digit run except years and the form name "10-K", which keep a variant about the same filing.
_FIGURE = re.compile(r"(?P<keep>10-K|(?<![\d,.$])(?:19|20)\d\d(?![\d%]|[.,]\d))|(?P<digits>\d+)")


def figure_variant(text: str, rng: Random) -> str:
    """The same text with every figure changed digit run by digit run (same lengths and separators), years kept."""

    def replace(match: re.Match[str]) -> str:
        if match.group("keep"):
            return match.group(0)
        old = match.group("digits")
        for _ in range(50):
            first = str(rng.randint(1, 9)) if len(old) > 1 and old[0] != "0" else str(rng.randint(0, 9))
            new = first + "".join(str(rng.randint(0, 9)) for _ in old[1:])
            if new != old:
                return new
        return old  # unreachable in practice: 50 draws that all equal a fixed string

    return _FIGURE.sub(replace, text)


_FILLERS = ("also", "notably", "indeed", "reportedly", "overall", "still", "further", "meanwhile", "currently")
_SYNONYMS = {
    "increased": "rose",
    "decreased": "fell",
    "rose": "climbed",
    "fell": "declined",
    "company": "firm",
    "said": "stated",
    "revenue": "sales",
    "strong": "solid",
    "expects": "anticipates",
    "results": "figures",
    "quarter": "period",
    "customers": "clients",
    "growth": "expansion",
    "shares": "stock",
    "announced": "reported",
    "about": "roughly",
    "higher": "greater",
    "lower": "smaller",
    "new": "fresh",
    "large": "big",
    "the": "this",
    "and": "plus",
    "significant": "substantial",
}


def near_copy(text: str, rng: Random, edit_rate: float) -> tuple[str, float] | None:
    """Substitute, delete or insert a few words until the word-5-gram Jaccard with `text` lies in NEAR_DUP_BAND;
    returns (copy, measured Jaccard), or None when the text is too short to land in the band."""
    parts = re.split(r"(\s+)", text)  # words at even indices, whitespace at odd ones
    candidates = [i for i in range(0, len(parts), 2) if parts[i].isalpha()]
    original = word_shingles(text)
    k = max(1, round(edit_rate * _words(text)))
    for _ in range(15):
        if k > len(candidates):
            return None
        new = list(parts)
        for i in sorted(rng.sample(candidates, k)):
            word, op = new[i], rng.random()
            if op < 0.5:
                swap = _SYNONYMS.get(word.lower())
                new[i] = swap if swap and word.islower() else rng.choice(_FILLERS)
            elif op < 0.75:
                new[i] = ""
                if i + 1 < len(new) and new[i + 1] == " ":
                    new[i + 1] = ""
                elif i > 0 and new[i - 1] == " ":
                    new[i - 1] = ""
            else:
                new[i] = f"{rng.choice(_FILLERS)} {word}"
        copy = "".join(new)
        score = jaccard(word_shingles(copy), original)
        if NEAR_DUP_BAND[0] <= score <= NEAR_DUP_BAND[1]:
            return copy, round(score, 4)
        k = k + 1 if score > NEAR_DUP_BAND[1] else k - 1
        if k < 1:
            return None
    return None


# ---------------------------------------------------------------------------------------------------------------
# Names, places and the companies of the world
# ---------------------------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Amelia", "Benjamin", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiroshi", "Isabel", "James", "Kavya",
    "Lucas", "Maya", "Nathan", "Olivia", "Priya", "Quentin", "Rachel", "Samuel", "Tanya", "Umar", "Victoria",
    "William", "Ximena", "Yusuf", "Zoe", "Aisha", "Bruno", "Carmen", "Dmitri", "Emeka", "Fiona", "Gabriel", "Hannah",
    "Ingrid", "Javier", "Keiko", "Liam", "Mei", "Noah", "Omar", "Paula", "Rafael", "Sofia", "Thomas", "Ursula",
    "Valentina", "Wei", "Yara", "Adrian", "Beatrice", "Colin", "Diana", "Ethan", "Freya", "Gustavo", "Helen", "Ivan",
    "Julia", "Kwame",
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Bauer", "Castillo", "Dawson", "Eriksen", "Fischer", "Gallagher", "Hoffman", "Iyer", "Jensen",
    "Kowalski", "Lindqvist", "Moreno", "Nakamura", "Okafor", "Petrov", "Quinn", "Ramirez", "Sato", "Thornton",
    "Underwood", "Varga", "Whitaker", "Xu", "Yamamoto", "Zimmerman", "Abbott", "Bennett", "Chandra", "Delgado",
    "Ellison", "Fontaine", "Greene", "Haddad", "Ibrahim", "Jovanovic", "Keller", "Lambert", "Mendes", "Novak",
    "O'Brien", "Park", "Rossi", "Sullivan", "Takahashi", "Ulrich", "Vasquez", "Walsh", "Young", "Adeyemi", "Brennan",
    "Costa", "Dubois", "Engel", "Farrell", "Grant", "Holm", "Ito", "Kaplan", "Larsen",
)  # fmt: skip
# Company name stems: the world's companies and the disjoint pool that instruction data and eval tasks use.
WORLD_STEMS = (
    "Ambervale", "Brackenridge", "Corvane", "Dunhollow", "Elmcrest", "Farrowdale", "Glenmoor", "Harrowgate", "Ivelle",
    "Kestrelle", "Larchwick", "Merrow", "Norvane", "Orrindale", "Pellham", "Quarrington", "Rosswell", "Stellan",
    "Thornbury", "Ulmstead", "Varden", "Wexmoor", "Yarrowby", "Zellmer", "Ashcombe", "Birchmere", "Coldbrook",
    "Dovecrest", "Eastmere", "Fairhollow", "Greywater", "Hollisford", "Kingsmere", "Lowerby", "Marlowe", "Netherby",
    "Oakhurst", "Pemberly", "Redmere", "Saltmarsh", "Tamsworth", "Underhill", "Vellacott", "Westmere", "Alveston",
    "Brisbury", "Calvercote", "Dunstan", "Everleigh", "Foxmere", "Ashgrove", "Bellhaven", "Cindermoor", "Dalgarno",
    "Emberton", "Fennimore", "Galewood", "Heathcote", "Jarrowfield", "Kellbrook", "Lindenholt", "Mossbury",
    "Northcliffe", "Penwarden", "Quenby", "Ravensworth", "Thistlewood", "Umberleigh", "Vantress", "Whitlow",
    "Yelverton", "Amberley", "Blythewood", "Crestfield", "Dunraven", "Eskwood", "Fallowmere", "Garrowby", "Hazelmere",
    "Kilverstone",
)  # fmt: skip
TASK_STEMS = (
    "Abernethy", "Blackmoor", "Carraway", "Drummond", "Ellery", "Fairbanks", "Gillespie", "Hawthorne", "Ingram",
    "Jessop", "Kilbride", "Lockhart", "Mercer", "Norwood", "Ormsby", "Prescott", "Radley", "Selwyn", "Tolliver",
    "Vance", "Whitcombe", "Yardley", "Ashby", "Brandt", "Denholm", "Everard", "Fitzroy", "Galloway", "Hensley",
    "Kirkwood", "Lansing", "Montague", "Pendleton", "Rutherford", "Sinclair", "Tremont", "Waverly", "Ainsley",
)  # fmt: skip
TASK_NOUNS = (
    "Holdings", "Capital", "Industries", "Foods", "Systems", "Energy", "Logistics", "Pharma", "Motors", "Media",
    "Mining", "Bank", "Robotics", "Telecom", "Chemicals", "Airlines",
)  # fmt: skip
# Stems reserved for evaluation items (headlines, sentences, tables): no training text ever names them.
EVAL_TASK_STEMS = (
    "Aldermoor", "Bexley", "Cobaltine", "Draycott", "Elsworth", "Fenwick", "Gresham", "Halloran", "Kenward",
    "Lyndhurst", "Maplethorpe", "Newbold", "Oxley", "Pilkington", "Rowntree", "Stanwick", "Trevelyan", "Upton",
    "Wolcott", "Ellwood", "Hartigan", "Bramhall", "Quennell", "Sedgwick", "Tarrant", "Vickery", "Wyndham",
    "Chadwick",
)  # fmt: skip
NAME_SUFFIXES = ("Corporation", "Holdings", "Group", "Company")
ANALYST_FIRMS = (
    "Hartley Securities", "Bramwell & Co", "Northgate Capital Markets", "Ashford Research", "Kingsbridge Partners",
    "Lindell Brothers", "Carrow Stanton", "Pemberton Equity Research", "Halvorsen Advisors", "Quayside Securities",
)  # fmt: skip
REGULATORS = (
    "Securities and Exchange Commission", "Department of Justice", "Federal Trade Commission",
    "Financial Conduct Authority", "Competition and Markets Authority",
)  # fmt: skip
CENTRAL_BANKS = ("Federal Reserve", "European Central Bank", "Bank of England", "Bank of Japan", "Bank of Canada")
HQ_CITIES = (
    ("Austin", "Texas"), ("Denver", "Colorado"), ("Charlotte", "North Carolina"), ("Columbus", "Ohio"),
    ("Minneapolis", "Minnesota"), ("Seattle", "Washington"), ("Boston", "Massachusetts"), ("Atlanta", "Georgia"),
    ("Phoenix", "Arizona"), ("Pittsburgh", "Pennsylvania"), ("Nashville", "Tennessee"), ("Salt Lake City", "Utah"),
    ("Chicago", "Illinois"), ("San Diego", "California"), ("Raleigh", "North Carolina"), ("Portland", "Oregon"),
    ("Milwaukee", "Wisconsin"), ("Kansas City", "Missouri"), ("Houston", "Texas"), ("Dallas", "Texas"),
    ("Tampa", "Florida"), ("Indianapolis", "Indiana"), ("Richmond", "Virginia"), ("Omaha", "Nebraska"),
    ("Cleveland", "Ohio"), ("Sacramento", "California"), ("Detroit", "Michigan"), ("Baltimore", "Maryland"),
    ("Louisville", "Kentucky"), ("Hartford", "Connecticut"),
)  # fmt: skip
WORLD_CITIES = (
    "London", "Frankfurt", "Singapore", "Tokyo", "Toronto", "Sydney", "Zurich", "Paris", "Madrid", "Hong Kong",
    "Dubai", "Mumbai", "Seoul", "Amsterdam", "Stockholm", "Chicago", "New York", "San Francisco", "Dublin", "Milan",
)  # fmt: skip
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")

COMMON_VOCAB: dict[str, Pool] = {
    "n": range(2, 13),
    "minutes": range(5, 91, 5),
    "hours": range(2, 10),
    "weeks": range(2, 13),
    "km": range(3, 31),
    "year": range(1850, 2021),
    "count": range(100, 900, 10),
    "price": range(40, 600, 10),
    "weekday": (*WEEKDAYS, "Saturday", "Sunday"),
    "month": MONTHS,
    "city": WORLD_CITIES,
    "person": tuple(f"{f} {last}" for f, last in zip(FIRST_NAMES, LAST_NAMES, strict=True)),
}


@dataclass(frozen=True)
class Sector:
    name: str
    nouns: tuple[str, ...]  # second word of company names
    products: tuple[str, ...]  # plural noun phrases
    drivers: tuple[str, ...]  # reasons revenue grew
    headwinds: tuple[str, ...]  # reasons it did not
    risks: tuple[str, ...]  # risk-factor sentences
    margin: tuple[float, float]  # operating margin range
    growth: tuple[float, float]  # yearly revenue growth range
    revenue_per_employee: tuple[int, int]  # thousands of dollars


SECTORS = (
    Sector(
        "Technology",
        ("Systems", "Software", "Networks", "Digital", "Data"),
        ("cloud data platforms", "cybersecurity software", "networking equipment", "enterprise analytics tools",
         "payment processing software"),
        ("strong subscription renewals", "higher demand for cloud services", "new enterprise customers",
         "growth in recurring revenue"),
        ("longer sales cycles", "weaker hardware demand", "pricing pressure from larger rivals"),
        ("A significant breach of our systems or of customer data could damage our reputation and lead to costly "
         "litigation.",
         "Rapid technological change may make our products obsolete if we fail to keep pace with new developments.",
         "We depend on a limited number of suppliers for key components and cloud infrastructure."),
        (0.08, 0.30), (-0.05, 0.25), (250, 600),
    ),
    Sector(
        "Healthcare",
        ("Health", "Therapeutics", "Medical", "Biosciences", "Care"),
        ("diagnostic imaging systems", "generic medicines", "surgical instruments", "home care services",
         "laboratory testing services"),
        ("higher procedure volumes", "new product approvals", "growth in testing volumes",
         "the expansion of the clinic network"),
        ("reimbursement cuts", "delays in regulatory approvals", "lower testing volumes"),
        ("Changes in government reimbursement policies could reduce the prices we receive for our products.",
         "Our products are subject to extensive regulation, and delays in approvals could harm our growth.",
         "Product liability claims could result in significant costs and damage to our reputation."),
        (0.06, 0.22), (-0.03, 0.15), (150, 400),
    ),
    Sector(
        "Energy",
        ("Energy", "Power", "Resources", "Petroleum", "Renewables"),
        ("natural gas", "wind and solar power", "refined fuels", "oilfield services",
         "electric vehicle charging networks"),
        ("higher realized prices", "increased production volumes", "new capacity coming online",
         "stronger refining margins"),
        ("lower commodity prices", "unplanned maintenance outages", "weaker refining margins"),
        ("Volatile oil and natural gas prices can materially affect our revenue and cash flows.",
         "Stricter environmental regulation could increase our operating costs and limit future projects.",
         "Operational accidents could cause injuries, environmental damage and significant liabilities."),
        (0.05, 0.25), (-0.15, 0.20), (500, 1500),
    ),
    Sector(
        "Financials",
        ("Financial", "Capital", "Bancorp", "Assurance", "Payments"),
        ("commercial lending", "wealth management services", "property and casualty insurance", "payment cards",
         "mortgage loans"),
        ("higher net interest income", "growth in assets under management", "strong premium growth",
         "higher card spending volumes"),
        ("rising credit losses", "lower mortgage activity", "compressed net interest margins"),
        ("Changes in interest rates could reduce our net interest margin and the value of our investment portfolio.",
         "A deterioration in credit quality could require us to increase our allowance for loan losses.",
         "We operate in a highly regulated industry, and new capital requirements could limit our flexibility."),
        (0.12, 0.35), (-0.05, 0.12), (300, 700),
    ),
    Sector(
        "Consumer Staples",
        ("Foods", "Brands", "Beverages", "Household", "Farms"),
        ("packaged snacks", "bottled beverages", "household cleaning products", "personal care products",
         "frozen foods"),
        ("price increases", "higher volumes in snack brands", "strong demand in emerging markets",
         "new product introductions"),
        ("higher ingredient costs", "weaker volumes after price increases", "retailer destocking"),
        ("Increases in the cost of raw materials, packaging and freight could reduce our margins.",
         "Our business depends on a small number of large retail customers.",
         "Changing consumer preferences could reduce demand for our established brands."),
        (0.08, 0.20), (-0.03, 0.10), (200, 500),
    ),
    Sector(
        "Industrials",
        ("Industries", "Machinery", "Aerospace", "Logistics", "Engineering"),
        ("industrial pumps", "aircraft components", "freight logistics services", "construction equipment",
         "factory automation systems"),
        ("strong aftermarket demand", "higher aircraft build rates", "growth in the order backlog",
         "price realization"),
        ("supply chain disruptions", "lower freight volumes", "higher steel prices"),
        ("Cyclical downturns in our end markets could reduce demand for our products.",
         "Disruptions in our supply chain could delay deliveries and increase costs.",
         "We face intense competition from larger companies with greater resources."),
        (0.06, 0.18), (-0.08, 0.15), (180, 450),
    ),
    Sector(
        "Utilities",
        ("Utilities", "Electric", "Water", "Gas", "Grid"),
        ("electricity distribution", "regulated water services", "natural gas distribution", "transmission networks"),
        ("approved rate increases", "customer growth in the service area", "higher usage during a hot summer"),
        ("mild weather", "regulatory lag", "higher financing costs"),
        ("Our rates are set by regulators, who may not allow us to recover all of our costs.",
         "Severe weather events could damage our infrastructure and interrupt service.",
         "We require substantial capital to maintain and expand our networks."),
        (0.12, 0.28), (-0.02, 0.08), (400, 1000),
    ),
    Sector(
        "Materials",
        ("Materials", "Chemicals", "Metals", "Mining", "Packaging"),
        ("specialty chemicals", "copper and zinc", "paper packaging", "industrial gases", "construction aggregates"),
        ("higher selling prices", "strong demand from construction customers", "increased mine output"),
        ("lower metal prices", "weaker industrial demand", "higher energy costs"),
        ("Fluctuations in commodity prices could significantly affect our results.",
         "Our operations are energy intensive and exposed to changes in energy costs.",
         "Environmental liabilities from current or former sites could be costly."),
        (0.06, 0.22), (-0.12, 0.15), (300, 800),
    ),
    Sector(
        "Real Estate",
        ("Properties", "Realty", "Estates", "Land", "Housing"),
        ("office buildings", "shopping centers", "apartment communities", "logistics warehouses",
         "self-storage facilities"),
        ("higher occupancy", "rent increases on lease renewals", "contributions from newly acquired properties"),
        ("higher vacancy in office properties", "rising interest costs", "slower leasing activity"),
        ("Rising interest rates could increase our borrowing costs and reduce property values.",
         "Tenant bankruptcies could reduce our rental income.",
         "The real estate market is illiquid, which may limit our ability to sell properties quickly."),
        (0.20, 0.45), (-0.05, 0.12), (500, 1500),
    ),
    Sector(
        "Consumer Discretionary",
        ("Retail", "Apparel", "Motors", "Hotels", "Outdoors"),
        ("outdoor apparel", "home furnishings", "electric bicycles", "hotel stays", "online retail services"),
        ("strong holiday sales", "higher online traffic", "growth in the loyalty program", "new store openings"),
        ("weaker consumer spending", "heavy promotional activity", "higher freight costs"),
        ("A decline in consumer confidence could reduce demand for discretionary purchases.",
         "Our success depends on anticipating changing fashion and consumer trends.",
         "Disruptions at our distribution centers could prevent us from meeting customer demand."),
        (0.04, 0.15), (-0.08, 0.18), (120, 400),
    ),
)  # fmt: skip
GENERAL_RISKS = (
    "Adverse economic conditions could reduce demand for our products and services.",
    "We depend on key personnel, and the loss of members of our management team could disrupt our business.",
    "Our indebtedness could limit our flexibility and require us to devote cash to debt service.",
    "Fluctuations in foreign currency exchange rates could affect our reported results.",
    "Changes in tax laws could increase our effective tax rate.",
    "Litigation and regulatory investigations could result in significant expenses.",
    "Climate-related events could disrupt our operations and those of our suppliers.",
    "Cyberattacks on our systems could interrupt operations and expose confidential information.",
    "Inflation in wages and materials could raise our costs faster than we can raise prices.",
    "Acquisitions may not deliver the benefits we expect and could divert management attention.",
)


@dataclass(frozen=True)
class YearFacts:
    year: int
    revenue: float  # $ millions, like every amount below except per-share ones
    operating_income: float
    operating_margin: float  # percent, from the rounded amounts
    interest_expense: float
    net_income: float
    shares: float  # millions, diluted
    eps: float  # $ per diluted share
    dividend_per_share: float
    total_debt: float
    cash: float
    operating_cash_flow: float
    capex: float
    free_cash_flow: float
    employees: int
    ceo: str
    quarter_shares: tuple[float, float, float, float]  # revenue share of each quarter


@dataclass(frozen=True)
class Company:
    name: str  # "Corvane Systems Corporation"
    short: str  # "Corvane Systems"
    ticker: str
    exchange: str
    sector: Sector
    city: str
    state: str
    founded: int
    cfo: str
    products: tuple[str, ...]
    pays_dividend: bool
    facts: tuple[YearFacts, ...]  # facts[0] is the year before first_year: every filing has a prior year
    ceo_change_year: int | None
    former_ceo: str | None

    @property
    def hq(self) -> str:
        return f"{self.city}, {self.state}"

    def year(self, year: int) -> YearFacts:
        return self.facts[year - self.facts[0].year]


def _person(rng: Random, taken: list[str]) -> str:
    for _ in range(1000):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name not in taken:
            taken.append(name)
            return name
    raise ValueError("ran out of distinct person names")


def _ticker(stem: str, noun: str, taken: list[str]) -> str:
    s, n = stem.upper(), noun.upper()
    for candidate in (s[:3] + n[0], s[:2] + n[:2], s[0] + n[:3], s[:4], s[:3], s[:2] + n[0], s[0] + s[2] + n[:2]):
        if candidate not in taken:
            taken.append(candidate)
            return candidate
    for i in range(26 * 26):
        candidate = s[0] + n[0] + chr(65 + i // 26) + chr(65 + i % 26)
        if candidate not in taken:
            taken.append(candidate)
            return candidate
    raise ValueError("ran out of tickers")


def _year_facts(rng: Random, sector: Sector, years: Sequence[int], ceos: Sequence[str]) -> tuple[YearFacts, ...]:
    """Yearly facts from a few company traits and yearly shocks, derived from rounded amounts so they add up."""
    revenue = math.exp(rng.uniform(math.log(150), math.log(25000)))
    base_margin = rng.uniform(*sector.margin)
    shares = round(revenue * rng.uniform(0.04, 0.25), 1)
    debt = revenue * rng.uniform(0.1, 0.8)
    cash = revenue * rng.uniform(0.05, 0.3)
    rate, tax, payout = rng.uniform(0.03, 0.07), rng.uniform(0.19, 0.26), rng.uniform(0.2, 0.5)
    per_employee = rng.uniform(*sector.revenue_per_employee)
    facts = []
    for i, year in enumerate(years):
        if i:
            revenue *= 1 + rng.uniform(*sector.growth)
            debt *= rng.uniform(0.85, 1.15)
            cash *= rng.uniform(0.8, 1.25)
        rev = round(revenue, 1)
        op = round(rev * min(0.5, max(0.03, base_margin + rng.gauss(0, 0.02))), 1)
        interest = round(min(debt * rate, op * 0.5), 1)
        net = round((op - interest) * (1 - tax), 1)
        eps = round(net / shares, 2)
        ocf = round(net + rev * rng.uniform(0.04, 0.09), 1)
        capex = round(min(rev * rng.uniform(0.02, 0.06), ocf * 0.8), 1)
        seasons = [rng.uniform(0.22, 0.28) for _ in range(4)]
        facts.append(
            YearFacts(
                year=year,
                revenue=rev,
                operating_income=op,
                operating_margin=round(op / rev * 100, 1),
                interest_expense=interest,
                net_income=net,
                shares=shares,
                eps=eps,
                dividend_per_share=round(eps * payout, 2),
                total_debt=round(debt, 1),
                cash=round(cash, 1),
                operating_cash_flow=ocf,
                capex=capex,
                free_cash_flow=round(ocf - capex, 1),
                employees=max(50, round(rev * 1000 / per_employee / 10) * 10),
                ceo=ceos[i],
                quarter_shares=tuple(s / sum(seasons) for s in seasons),  # type: ignore[arg-type]
            )
        )
    return tuple(facts)


def make_companies(p: WorldParams) -> list[Company]:
    """The world's companies; names, tickers and people are unique and disjoint from the instruction-data pool."""
    rng = _rng(p.seed, "companies")
    combos = [(stem, sector, noun) for stem in WORLD_STEMS for sector in SECTORS for noun in sector.nouns]
    rng.shuffle(combos)
    stems_used: list[str] = []
    tickers: list[str] = []
    people: list[str] = []
    companies = []
    years = list(range(p.first_year - 1, p.first_year + p.n_years))
    for stem, sector, noun in combos:
        if len(companies) == p.n_companies:
            break
        if stem in stems_used:
            continue
        stems_used.append(stem)
        ceo = _person(rng, people)
        change = rng.random() < 0.3 and p.n_years > 1
        change_year = rng.randint(p.first_year + 1, p.first_year + p.n_years - 1) if change else None
        former = _person(rng, people) if change_year else None
        ceos = [former if change_year and y < change_year else ceo for y in years]
        city, state = rng.choice(HQ_CITIES)
        companies.append(
            Company(
                name=f"{stem} {noun} {rng.choice(NAME_SUFFIXES)}",
                short=f"{stem} {noun}",
                ticker=_ticker(stem, noun, tickers),
                exchange=rng.choice(("NYSE", "Nasdaq")),
                sector=sector,
                city=city,
                state=state,
                founded=rng.randint(1925, p.first_year - 8),
                cfo=_person(rng, people),
                products=tuple(rng.sample(sector.products, 3)),
                pays_dividend=rng.random() < 0.6,
                facts=_year_facts(rng, sector, years, ceos),  # type: ignore[arg-type]
                ceo_change_year=change_year,
                former_ceo=former,
            )
        )
    if len(companies) < p.n_companies:
        raise ValueError(f"n_companies={p.n_companies} exceeds the {len(WORLD_STEMS)} company name stems")
    return companies


# ---------------------------------------------------------------------------------------------------------------
# 10-K filings: MD&A sections per company-year
# ---------------------------------------------------------------------------------------------------------------

_FILING_HEADERS = (
    "{name}\nAnnual Report on Form 10-K for Fiscal Year {year}\n\nManagement's Discussion and Analysis of Financial "
    "Condition and Results of Operations",
    "{name} ({exchange}: {ticker})\nForm 10-K, Fiscal {year}\nManagement's Discussion and Analysis",
    "MANAGEMENT'S DISCUSSION AND ANALYSIS\n{name} - Annual Report on Form 10-K, fiscal year {year}",
    "Form 10-K | {name} | Fiscal Year {year}\nItem: Management's Discussion and Analysis of Financial Condition",
)
_H_OVERVIEW = ("Overview", "Business Overview", "Company Overview", "Our Business")
_H_RESULTS = ("Results of Operations", "Financial Results", "Operating Results", "Fiscal {year} Compared with {prev}")
_H_LIQUIDITY = ("Liquidity and Capital Resources", "Liquidity and Debt", "Capital Resources and Cash Flows")
_H_RISKS = ("Risk Factors", "Principal Risks", "Key Risks and Uncertainties")
_H_OUTLOOK = ("Outlook", "Looking Ahead", "Fiscal {next} Outlook", "Guidance")
_OVERVIEWS = (
    "{name} ({exchange}: {ticker}) is a {sector} company headquartered in {hq}. Founded in {founded}, the company's "
    "principal offerings are {products}. As of the end of fiscal {year}, it employed approximately {employees} "
    "people. {ceo} serves as chief executive officer.",
    "Headquartered in {hq}, {name} has operated in the {sector} sector since its founding in {founded}. Its shares "
    "trade on the {exchange} under the ticker {ticker}. The company sells {products} and had about {employees} "
    "employees at the close of fiscal {year}, under the leadership of chief executive officer {ceo}.",
    "We are {name}, a {sector} business founded in {founded} with our principal executive offices in {hq}. Our common "
    "stock is listed on the {exchange} under the symbol {ticker}. We offer {products}. Our workforce totaled "
    "{employees} employees at year-end {year}, and our chief executive officer is {ceo}.",
    "{name}, founded in {founded} and based in {hq}, is listed under the ticker symbol {ticker}. The company competes "
    "in the {sector} industry, offering {products}. At the end of fiscal {year} its headcount stood at {employees}, "
    "and {ceo} led the company as chief executive officer.",
)
_CEO_CHANGE = (
    "During fiscal {year}, the board appointed {ceo} as chief executive officer, succeeding {former_ceo}.",
    "{former_ceo} stepped down as chief executive officer in fiscal {year} and was succeeded by {ceo}.",
)
_REVENUE = (
    "Revenue for fiscal {year} was {revenue}, {change_noun} of {rev_pct} compared with {prev_revenue} in fiscal "
    "{prev}, driven primarily by {reason}.",
    "Total revenue {rose_fell} {rev_pct} year over year to {revenue}, from {prev_revenue} in {prev}, reflecting "
    "{reason}.",
    "Net sales reached {revenue} in fiscal {year} versus {prev_revenue} a year earlier, a change of {rev_abs} or "
    "{rev_pct}, mainly because of {reason}.",
    "We generated revenue of {revenue} in {year}, compared to {prev_revenue} in {prev}; the {rev_pct} "
    "{increase_decrease} reflected {reason}.",
)
_OPERATING = (
    "Operating income was {op}, representing an operating margin of {margin}, compared with {prev_margin} in the "
    "prior year.",
    "Operating income totaled {op} in fiscal {year}, and operating margin {margin_moved} to {margin} from "
    "{prev_margin}.",
    "Our operating margin was {margin} in {year} ({prev_margin} in {prev}), on operating income of {op}.",
)
_NET = (
    "Net income was {net}, or {eps} per diluted share, compared with {prev_net}, or {prev_eps} per diluted share, "
    "in fiscal {prev}.",
    "Net income for the year amounted to {net} and diluted earnings per share were {eps}, versus {prev_eps} "
    "in {prev}.",
    "After interest expense of {interest} and income taxes, net income reached {net}, equal to {eps} per diluted "
    "share.",
)
_LIQUIDITY = (
    "As of the end of fiscal {year}, we had cash and cash equivalents of {cash} and total debt of {debt}, {net_debt}.",
    "We ended fiscal {year} with {cash} in cash and cash equivalents against total borrowings of {debt}, {net_debt}.",
    "Cash and cash equivalents stood at {cash} at year-end {year}, while total debt was {debt}, {net_debt}.",
)
_CASH_FLOW = (
    "Cash provided by operating activities was {ocf}, and capital expenditures totaled {capex}, resulting in free "
    "cash flow of {fcf}.",
    "Operating activities generated {ocf} of cash in fiscal {year}; after capital spending of {capex}, free cash flow "
    "was {fcf}.",
    "Free cash flow, defined as operating cash flow of {ocf} less capital expenditures of {capex}, was {fcf}.",
)
_DIVIDEND = (
    "We paid dividends of {dps} per share during the year.",
    "Our board declared dividends totaling {dps} per share for fiscal {year}.",
)
_RISK_INTROS = (
    "Our business is subject to a number of risks, including the following.",
    "Investors should consider the following risks, among others.",
    "The following factors could materially affect our results.",
)
_OUTLOOKS = (
    "For fiscal {next}, management expects revenue growth of {g_lo}% to {g_hi}% and an operating margin of "
    "approximately {target_margin}%.",
    "Looking to {next}, we anticipate revenue to grow between {g_lo}% and {g_hi}%, with operating margin near "
    "{target_margin}%.",
    "Our fiscal {next} plan assumes revenue growth in a range of {g_lo}% to {g_hi}% and capital expenditures of "
    "about {capex_plan}.",
)
_TABLE_ROWS = (
    ("Revenue", "revenue", "m"),
    ("Operating income", "operating_income", "m"),
    ("Operating margin (%)", "operating_margin", "p"),
    ("Net income", "net_income", "m"),
    ("Diluted EPS ($)", "eps", "e"),
    ("Total debt", "total_debt", "m"),
    ("Cash and equivalents", "cash", "m"),
    ("Free cash flow", "free_cash_flow", "m"),
    ("Employees", "employees", "i"),
)


def _table_value(facts: YearFacts, attr: str, kind: str) -> str:
    value = getattr(facts, attr)
    return {"m": f"{value:,.1f}", "p": f"{value:.1f}", "e": f"{value:.2f}", "i": f"{value:,}"}[kind]


def _facts_table(f: YearFacts, p: YearFacts, rng: Random) -> str:
    rows = [r for r in _TABLE_ROWS if r[0] in ("Revenue", "Net income") or rng.random() < 0.75]
    lines = [
        "Selected financial data (USD millions, except per-share data and employees)",
        f"{'':<24}{f.year:>12}{p.year:>12}",
    ]
    lines += [f"{label:<24}{_table_value(f, a, k):>12}{_table_value(p, a, k):>12}" for label, a, k in rows]
    return "\n".join(lines)


def _filing_context(c: Company, f: YearFacts, p: YearFacts, rng: Random) -> dict[str, Any]:
    growth = f.revenue / p.revenue - 1
    up = growth >= 0
    pool = c.sector.drivers if up else c.sector.headwinds
    g_lo = rng.randint(-3, 10)
    return {
        "name": c.name,
        "short": c.short,
        "ticker": c.ticker,
        "exchange": c.exchange,
        "sector": c.sector.name.lower(),
        "hq": c.hq,
        "founded": c.founded,
        "products": _join(list(c.products)),
        "year": f.year,
        "prev": p.year,
        "next": f.year + 1,
        "employees": f"{f.employees:,}",
        "ceo": f.ceo,
        "former_ceo": c.former_ceo,
        "revenue": _money(f.revenue),
        "prev_revenue": _money(p.revenue),
        "rev_pct": f"{abs(growth) * 100:.1f}%",
        "rev_abs": _money(abs(f.revenue - p.revenue)),
        "change_noun": "an increase" if up else "a decrease",
        "rose_fell": "rose" if up else "fell",
        "increase_decrease": "increase" if up else "decrease",
        "reason": _join(rng.sample(pool, 2)),
        "op": _money(f.operating_income),
        "margin": f"{f.operating_margin:.1f}%",
        "prev_margin": f"{p.operating_margin:.1f}%",
        "margin_moved": "improved" if f.operating_margin >= p.operating_margin else "declined",
        "net": _money(f.net_income),
        "prev_net": _money(p.net_income),
        "eps": _dollars(f.eps),
        "prev_eps": _dollars(p.eps),
        "interest": _money(f.interest_expense),
        "cash": _money(f.cash),
        "debt": _money(f.total_debt),
        "net_debt": (
            f"resulting in net debt of {_money(f.total_debt - f.cash)}"
            if f.total_debt >= f.cash
            else f"leaving a net cash position of {_money(f.cash - f.total_debt)}"
        ),
        "ocf": _money(f.operating_cash_flow),
        "capex": _money(f.capex),
        "fcf": _money(f.free_cash_flow),
        "dps": _dollars(f.dividend_per_share),
        "g_lo": g_lo,
        "g_hi": g_lo + rng.randint(2, 5),
        "target_margin": f"{f.operating_margin + rng.uniform(-1.5, 2.0):.1f}",
        "capex_plan": _money(f.capex * rng.uniform(0.9, 1.3)),
    }


def filing_text(c: Company, year: int, rng: Random) -> str:
    """One MD&A-style annual filing section set: overview, results, liquidity, risks, outlook, often a table."""
    f = c.year(year)
    p = c.year(year - 1)
    ctx = _filing_context(c, f, p, rng)
    overview = rng.choice(_OVERVIEWS)
    if c.ceo_change_year == year:
        overview += " " + rng.choice(_CEO_CHANGE)
    results = " ".join((rng.choice(_REVENUE), rng.choice(_OPERATING), rng.choice(_NET)))
    liquidity = " ".join((rng.choice(_LIQUIDITY), rng.choice(_CASH_FLOW)))
    if c.pays_dividend:
        liquidity += " " + rng.choice(_DIVIDEND)
    risks = rng.sample(c.sector.risks, 2) + rng.sample(GENERAL_RISKS, rng.randint(1, 3))
    rng.shuffle(risks)
    sections = [
        (rng.choice(_H_OVERVIEW), overview),
        (rng.choice(_H_RESULTS), results),
        (rng.choice(_H_LIQUIDITY), liquidity),
        (rng.choice(_H_RISKS), rng.choice(_RISK_INTROS) + "\n" + "\n".join(f"- {r}" for r in risks)),
        (rng.choice(_H_OUTLOOK), rng.choice(_OUTLOOKS)),
    ]
    body = [f"{heading}\n{text}".format(**ctx) for heading, text in sections]
    if rng.random() < 0.65:
        body.insert(rng.choice((2, 3, 5)), _facts_table(f, p, rng))
    return rng.choice(_FILING_HEADERS).format(**ctx) + "\n\n" + "\n\n".join(body)


# ---------------------------------------------------------------------------------------------------------------
# News: headline + article, with an event type and a sentiment
# ---------------------------------------------------------------------------------------------------------------

EVENT_SENTIMENT = {
    "earnings_beat": "positive",
    "earnings_miss": "negative",
    "acquisition": "positive",
    "ceo_change": "neutral",
    "lawsuit": "negative",
    "guidance_cut": "negative",
    "guidance_raise": "positive",
    "dividend_increase": "positive",
    "layoffs": "negative",
    "product_launch": "positive",
    "rating_downgrade": "negative",
    "buyback": "positive",
    "debt_offering": "neutral",
    "investor_day": "neutral",
    "partnership": "positive",
}
EVENTS = tuple(EVENT_SENTIMENT)
EVENT_LABELS = {e: e.replace("_", " ").replace("ceo", "CEO") for e in EVENTS}
HEADLINES = {
    "earnings_beat": (
        "{short} beats profit estimates as {driver} lifts results",
        "{short} tops quarterly forecasts; shares climb {move}%",
        "{short} quarterly earnings surpass expectations on strong demand",
        "{short} posts better-than-expected {quarter} profit",
    ),
    "earnings_miss": (
        "{short} misses earnings estimates as costs weigh",
        "{short} shares slide {move}% after quarterly profit falls short",
        "{short} {quarter} results disappoint investors",
        "Weak demand drags {short} profit below forecasts",
    ),
    "acquisition": (
        "{short} agrees to buy {target} for ${deal} million",
        "{short} to acquire {target} in ${deal} million deal",
        "{short} expands with purchase of {target}",
    ),
    "ceo_change": (
        "{short} names {new_ceo} chief executive",
        "{short} appoints {new_ceo} as CEO, succeeding {old_ceo}",
        "Leadership change at {short}: {old_ceo} steps down as CEO",
    ),
    "lawsuit": (
        "{short} hit with lawsuit over {topic}",
        "{short} faces ${damages} million suit from {plaintiff}",
        "Investors sue {short} over {topic}",
    ),
    "guidance_cut": (
        "{short} cuts full-year outlook, shares drop {move}%",
        "{short} lowers {year} revenue forecast amid {headwind}",
        "{short} trims guidance as {headwind} bites",
    ),
    "guidance_raise": (
        "{short} raises full-year outlook after strong quarter",
        "{short} lifts {year} revenue forecast; stock jumps {move}%",
        "{short} boosts guidance on {driver}",
    ),
    "dividend_increase": (
        "{short} raises quarterly dividend by {div_pct}%",
        "{short} boosts dividend to ${dps} a share",
    ),
    "layoffs": (
        "{short} to cut {jobs} jobs in restructuring",
        "{short} plans to lay off {layoff_pct}% of workforce",
        "{short} announces job cuts as {headwind} persists",
    ),
    "product_launch": (
        "{short} unveils {product_name} to expand in {product}",
        "{short} launches {product_name}; shares rise {move}%",
    ),
    "rating_downgrade": (
        "{firm} downgrades {short} to {rating_low}",
        "{short} shares fall {move}% after {firm} downgrade",
    ),
    "buyback": (
        "{short} announces ${buyback} million share buyback",
        "{short} board approves new ${buyback} million repurchase program",
    ),
    "debt_offering": (
        "{short} prices ${notes} million of senior notes due {maturity}",
        "{short} plans ${notes} million bond sale",
    ),
    "investor_day": (
        "{short} outlines long-term targets at investor day",
        "{short} reiterates strategy at investor day",
    ),
    "partnership": (
        "{short} partners with {partner} on {product}",
        "{short} and {partner} sign multi-year agreement",
    ),
}
_EVENT_CLAUSES = {
    "earnings_beat": (
        "reported {quarter} earnings of ${q_eps} per share, ahead of the ${cons_eps} that analysts had expected",
        "posted {quarter} revenue of {q_rev}, beating the consensus estimate of {cons_rev}",
    ),
    "earnings_miss": (
        "reported {quarter} earnings of ${q_eps} per share, short of the ${cons_eps} analysts had forecast",
        "posted {quarter} revenue of {q_rev}, below the consensus estimate of {cons_rev}",
    ),
    "acquisition": (
        "agreed to acquire {target} for about ${deal} million in cash and stock",
        "announced a deal to buy privately held {target} for ${deal} million",
    ),
    "ceo_change": (
        "named {new_ceo} as chief executive officer, succeeding {old_ceo}",
        "announced that {old_ceo} will step down as chief executive and be replaced by {new_ceo}",
    ),
    "lawsuit": (
        "was sued by {plaintiff} over {topic}",
        "disclosed that it faces a lawsuit from {plaintiff} seeking ${damages} million in damages",
    ),
    "guidance_cut": (
        "lowered its full-year revenue forecast to a range of {g_lo} to {g_hi}",
        "cut its {year} outlook, citing {headwind}",
    ),
    "guidance_raise": (
        "raised its full-year revenue forecast to a range of {g_lo} to {g_hi}",
        "lifted its {year} outlook after a strong quarter driven by {driver}",
    ),
    "dividend_increase": (
        "raised its quarterly dividend by {div_pct}% to ${dps} per share",
        "increased its quarterly cash dividend to ${dps} a share from ${old_dps}",
    ),
    "layoffs": (
        "said it would cut about {jobs} jobs, or {layoff_pct}% of its workforce",
        "announced a restructuring plan that includes eliminating {jobs} positions",
    ),
    "product_launch": (
        "unveiled {product_name}, a new addition to its range of {product}",
        "launched {product_name}, which it described as its most advanced offering in {product}",
    ),
    "rating_downgrade": (
        "was downgraded to {rating_low} from {rating_high} by {firm}",
        "saw its stock cut to {rating_low} by analysts at {firm}",
    ),
    "buyback": (
        "announced a new share repurchase program of up to ${buyback} million",
        "said its board authorized the buyback of up to ${buyback} million of its stock",
    ),
    "debt_offering": (
        "priced an offering of ${notes} million in senior notes due {maturity}",
        "said it would sell ${notes} million of bonds maturing in {maturity}",
    ),
    "investor_day": (
        "laid out new long-term financial targets at its investor day",
        "held an investor day for the first time in {gap} years",
    ),
    "partnership": (
        "formed a multi-year partnership with {partner}",
        "signed an agreement with {partner} to jointly develop {product}",
    ),
}
_EVENT_DETAILS = {
    "earnings_beat": (
        "Quarterly revenue rose {q_growth}% from a year earlier to {q_rev}, helped by {driver}.",
        "Operating margin in the quarter widened to {q_margin}%, the company said.",
    ),
    "earnings_miss": (
        "The company blamed {headwind} for the shortfall.",
        "Operating margin narrowed to {q_margin}% as costs rose faster than sales.",
    ),
    "acquisition": (
        "{target} makes {product} and employs about {target_emp} people.",
        "The transaction is expected to close in the {half} half of {next_year}, subject to regulatory approval.",
    ),
    "ceo_change": (
        "{new_ceo} previously ran the company's largest division.",
        "{old_ceo} will remain as an adviser until the end of the year.",
    ),
    "lawsuit": (
        "The complaint, filed in federal court in {court_city}, alleges {allegation}.",
        "The company said it believes the claims are without merit and will defend itself vigorously.",
    ),
    "guidance_cut": (
        "The company previously expected revenue of {old_lo} to {old_hi}.",
        "Management also trimmed its operating margin target to about {target_margin}%.",
    ),
    "guidance_raise": (
        "The previous forecast called for revenue of {old_lo} to {old_hi}.",
        "Management now sees an operating margin of about {target_margin}%.",
    ),
    "dividend_increase": (
        "The dividend is payable next month to shareholders of record.",
        "It is the company's {nth} consecutive annual dividend increase.",
    ),
    "layoffs": (
        "The company expects restructuring charges of about {charge}.",
        "The cuts are expected to save {savings} a year once completed.",
    ),
    "product_launch": (
        "{product_name} will be available to customers starting in {month}.",
        "The company expects the launch to add about {launch_rev} to annual revenue within two years.",
    ),
    "rating_downgrade": (
        "{firm} lowered its price target to ${target_price} from ${old_target}.",
        "The analysts cited {headwind} and rising competition.",
    ),
    "buyback": (
        "The program replaces an earlier authorization and has no expiration date.",
        "The company ended the quarter with {cash} in cash.",
    ),
    "debt_offering": (
        "The notes carry a coupon of {coupon}%.",
        "Proceeds will be used to refinance existing debt and for general corporate purposes.",
    ),
    "investor_day": (
        "Management targets annual revenue growth of {tg_lo}% to {tg_hi}% through {target_year}.",
        "The company also set a goal of reaching an operating margin of {target_margin}%.",
    ),
    "partnership": (
        "Financial terms of the agreement were not disclosed.",
        "The companies plan to begin joint sales in {month}.",
    ),
}
_LEADS = (
    "{name} {clause}, the company said on {weekday}.",
    "On {weekday}, {name} {clause}.",
    "{name} said on {weekday} that it {clause}.",
    "{short}, the {sector} group, {clause}.",
)
_QUOTES = {
    "positive": (
        '"We are proud of what our teams delivered, and we see strong momentum going into {next_year}," said chief '
        "executive {ceo}.",
        '"This is an important step for {short} and for our shareholders," chief executive {ceo} said in a statement.',
        '"Our customers are responding well to our strategy," {ceo}, the chief executive, told reporters.',
        '"We enter the second half with confidence," {ceo} said on a call with analysts.',
    ),
    "negative": (
        '"We are disappointed with these results and are taking action to address them," said chief executive {ceo}.',
        '"The environment remains challenging, but we are focused on what we can control," {ceo} said.',
        '"We did not execute as well as we should have," chief executive {ceo} told analysts.',
        '"We are making difficult but necessary decisions," {ceo} said in a statement.',
    ),
    "neutral": (
        '"This reflects our long-term plan," chief executive {ceo} said in a statement.',
        '"We will keep investors informed as the process moves forward," said {ceo}, the chief executive.',
        '"Our priorities have not changed," {ceo} told reporters.',
        '"We continue to take a disciplined approach," said chief executive {ceo}.',
    ),
}
_REACTIONS = {
    "up": (
        "Shares of {short} rose {move}% to ${price} in {session} trading.",
        "{short} stock gained {move}% to close at ${price}.",
        "Investors welcomed the news, sending the shares up {move}% to ${price}.",
    ),
    "down": (
        "Shares of {short} fell {move}% to ${price} in {session} trading.",
        "{short} stock dropped {move}% to close at ${price}.",
        "The shares slid {move}% to ${price} as investors digested the news.",
    ),
    "flat": (
        "Shares of {short} were little changed at ${price} in {session} trading.",
        "The stock ended the day roughly flat at ${price}.",
    ),
}
_ANALYST_VIEWS = {
    "positive": (
        "It was a clean quarter with upside across the board",
        "Management is executing well and the balance sheet gives them room to invest",
        "We see further upside to estimates from here",
    ),
    "negative": (
        "The outlook is weaker than we had expected and visibility is low",
        "We think estimates need to come down further",
        "Investors will want to see evidence that the problems are temporary",
    ),
    "neutral": (
        "The announcement does not change our view of the company",
        "We need more detail before we update our model",
        "The market will focus on execution over the next few quarters",
    ),
}
_ANALYST_LINES = (
    '"{view}," said {analyst}, an analyst at {firm}.',
    '"{view}," {analyst} of {firm} wrote in a note to clients.',
    "{analyst} of {firm} said in a note that the news was {tone} for the stock.",
)
_BACKGROUNDS = (
    "{short}, which is based in {hq}, sells {products}. It reported revenue of {prev_revenue} for fiscal {prev_year}.",
    "Based in {hq}, {short} employs about {employees} people and reported annual revenue of {prev_revenue} in "
    "{prev_year}.",
    "The company, founded in {founded}, makes most of its money from {product}; its revenue was {prev_revenue} last "
    "year.",
)
_DATELINES = ("{city}, {month} {day} - ", "{city} ({wire}) - ", "", "{month} {day}, {year} - ")
WIRES = ("Market Ledger", "Finance Daily", "Business Wirecast", "The Trading Desk")
_TOPICS = (
    "misleading statements about its growth",
    "alleged patent infringement",
    "a data breach that exposed customer records",
    "pricing practices",
    "the handling of a product recall",
)
_ALLEGATIONS = (
    "that the company overstated demand for its products",
    "that the company used patented technology without a license",
    "that the company failed to protect customer data",
    "that executives concealed rising costs from investors",
)
_PRODUCT_NAMES = ("Atlas", "Nova", "Helix", "Vertex", "Orion", "Pulse", "Beacon", "Summit", "Echo", "Zenith", "Forge")
_RATINGS = (("sell", "hold"), ("underperform", "neutral"), ("hold", "buy"), ("neutral", "outperform"))


def _price_direction(sentiment: str, rng: Random) -> str:
    return {"positive": "up", "negative": "down"}.get(sentiment) or rng.choice(("up", "down", "flat"))


def news_context(
    short: str, rng: Random, *, event: str, year: int, extra: Mapping[str, Any], q_revenue: float | None = None
) -> dict[str, Any]:
    """Every slot a headline, lead or detail may use; `extra` and `q_revenue` supply a company's facts if any."""
    q = rng.randint(1, 4)
    q_rev = q_revenue if q_revenue is not None else rng.uniform(50, 5000)
    beat = rng.uniform(0.02, 0.08)
    cons_eps = rng.uniform(0.2, 3.0)
    old_lo = rng.uniform(200, 20000)
    direction = 1 if EVENT_SENTIMENT[event] != "negative" else -1
    new_lo = old_lo * (1 + direction * rng.uniform(0.03, 0.1))
    dps = rng.uniform(0.1, 2.0)
    low, high = rng.choice(_RATINGS)
    ctx: dict[str, Any] = {
        "short": short,
        "name": short,
        "sector": "",
        "year": year,
        "next_year": year + 1,
        "quarter": f"{ORDINALS[q - 1]}-quarter",
        "weekday": rng.choice(WEEKDAYS),
        "month": rng.choice(MONTHS),
        "day": rng.randint(1, 28),
        "move": f"{rng.uniform(0.5, 12):.1f}",
        "price": f"{rng.uniform(8, 400):.2f}",
        "session": rng.choice(("morning", "afternoon", "early", "late")),
        "q_rev": _money(q_rev),
        "cons_rev": _money(q_rev * (1 - direction * beat)),
        "q_eps": f"{cons_eps * (1 + direction * beat):.2f}",
        "cons_eps": f"{cons_eps:.2f}",
        "q_growth": f"{rng.uniform(2, 25):.1f}",
        "q_margin": f"{rng.uniform(4, 30):.1f}",
        "target": f"{rng.choice(TASK_STEMS)} {rng.choice(('Labs', 'Technologies', 'Solutions', 'Works'))}",
        "deal": f"{rng.randint(50, 4000):,}",
        "target_emp": f"{rng.randint(80, 5000):,}",
        "half": rng.choice(("first", "second")),
        "new_ceo": "a new chief executive",
        "old_ceo": "the previous chief executive",
        "plaintiff": rng.choice(("a group of shareholders", "a former supplier", "a rival manufacturer", "customers")),
        "damages": f"{rng.randint(20, 900):,}",
        "topic": rng.choice(_TOPICS),
        "allegation": rng.choice(_ALLEGATIONS),
        "court_city": rng.choice(HQ_CITIES)[0],
        "g_lo": _money(new_lo),
        "g_hi": _money(new_lo * rng.uniform(1.03, 1.08)),
        "old_lo": _money(old_lo),
        "old_hi": _money(old_lo * rng.uniform(1.03, 1.08)),
        "target_margin": f"{rng.uniform(5, 30):.1f}",
        "div_pct": rng.randint(3, 15),
        "dps": f"{dps:.2f}",
        "old_dps": f"{dps * rng.uniform(0.85, 0.97):.2f}",
        "nth": rng.choice(ORDINALS[2:]),
        "jobs": f"{rng.randint(50, 4000):,}",
        "layoff_pct": rng.randint(2, 15),
        "charge": _money(rng.uniform(5, 300)),
        "savings": _money(rng.uniform(10, 500)),
        "product_name": rng.choice(_PRODUCT_NAMES) + rng.choice(("", " Pro", " X", " One", " Plus")),
        "launch_rev": _money(rng.uniform(10, 400)),
        "firm": rng.choice(ANALYST_FIRMS),
        "rating_low": low,
        "rating_high": high,
        "target_price": f"{rng.uniform(10, 300):.2f}",
        "old_target": f"{rng.uniform(12, 350):.2f}",
        "buyback": f"{rng.randint(50, 5000):,}",
        "notes": f"{rng.randint(100, 3000):,}",
        "maturity": year + rng.randint(3, 30),
        "coupon": f"{rng.uniform(2.5, 8.5):.3f}",
        "gap": rng.randint(3, 9),
        "tg_lo": rng.randint(2, 8),
        "tg_hi": rng.randint(9, 15),
        "target_year": year + rng.randint(3, 6),
        "partner": f"{rng.choice(TASK_STEMS)} {rng.choice(TASK_NOUNS)}",
        "analyst": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        "ceo": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        "driver": rng.choice(("strong demand", "higher prices", "cost cuts", "a rebound in orders")),
        "headwind": rng.choice(("weak demand", "rising costs", "currency swings", "supply problems")),
        "product": rng.choice(("software", "medical devices", "industrial equipment", "consumer goods")),
        "cash": _money(rng.uniform(20, 5000)),
    }
    ctx.update(extra)
    return ctx


def headline(event: str, ctx: Mapping[str, Any], rng: Random) -> str:
    return _cap(rng.choice(HEADLINES[event]).format(**ctx))


def news_text(c: Company, year: int, event: str, rng: Random) -> tuple[str, dict[str, Any]]:
    """A news article about a world company: headline, dateline lead, event details, quote, reaction, background."""
    sentiment = EVENT_SENTIMENT[event]
    f, p = c.year(year), c.year(year - 1)
    extra: dict[str, Any] = {
        "short": c.short,
        "name": rng.choice((c.name, c.short)),
        "sector": c.sector.name.lower(),
        "ceo": f.ceo,
        "hq": c.hq,
        "founded": c.founded,
        "products": _join(list(c.products[:2])),
        "product": rng.choice(c.products),
        "driver": rng.choice(c.sector.drivers),
        "headwind": rng.choice(c.sector.headwinds),
        "prev_revenue": _money(p.revenue),
        "prev_year": p.year,
        "employees": f"{f.employees:,}",
        "cash": _money(f.cash),
    }
    if event == "ceo_change":
        extra.update(new_ceo=f.ceo, old_ceo=c.former_ceo)
    q_revenue = f.revenue * f.quarter_shares[rng.randint(0, 3)]
    ctx = news_context(c.short, rng, event=event, year=year, extra=extra, q_revenue=q_revenue)
    direction = _price_direction(sentiment, rng)
    title = headline(event, ctx, rng)
    lead = rng.choice(_DATELINES).format(city=c.city, wire=rng.choice(WIRES), **ctx) + rng.choice(_LEADS).format(
        clause=rng.choice(_EVENT_CLAUSES[event]).format(**ctx), **ctx
    )
    details = rng.sample(_EVENT_DETAILS[event], rng.randint(1, 2))
    view = rng.choice(_ANALYST_VIEWS[sentiment])
    tone = {"positive": "good", "negative": "bad", "neutral": "neutral"}[sentiment]
    middle = [
        " ".join(d.format(**ctx) for d in details),
        rng.choice(_QUOTES[sentiment]).format(**ctx),
        rng.choice(_REACTIONS[direction]).format(**ctx),
        rng.choice(_ANALYST_LINES).format(view=view, tone=tone, **ctx),
    ]
    rng.shuffle(middle)
    paragraphs = [lead, *middle, rng.choice(_BACKGROUNDS).format(**ctx)]
    meta = {"headline": title, "event": event, "sentiment": sentiment, "price_direction": direction}
    return title + "\n\n" + "\n\n".join(paragraphs), meta


# ---------------------------------------------------------------------------------------------------------------
# Earnings-call transcripts
# ---------------------------------------------------------------------------------------------------------------

_CALL_TITLES = (
    "{name} ({ticker}) Q{q} {year} Earnings Call Transcript",
    "{short} - {ordinal} Quarter {year} Results Conference Call",
    "Transcript: {name} Q{q} {year} earnings conference call",
)
_OPERATOR_OPEN = (
    "Good {tod}, and welcome to the {name} {ordinal_lower} quarter {year} earnings conference call. All participants "
    "are in listen-only mode. I would now like to turn the call over to {ir}, head of investor relations.",
    "Ladies and gentlemen, thank you for standing by, and welcome to the {short} quarterly results call. Today's "
    "call is being recorded. I will now hand the call to {ir}.",
)
_IR_OPEN = (
    "Thank you, operator. Joining me today are {ceo}, our chief executive officer, and {cfo}, our chief financial "
    "officer. Some of our remarks contain forward-looking statements that involve risks and uncertainties.",
    "Thanks, and good {tod}, everyone. With me are {ceo}, our CEO, and {cfo}, our CFO. Please note that today's "
    "discussion includes forward-looking statements, and actual results may differ materially.",
)
_CEO_REMARKS = (
    "Thank you, {ir_first}, and good {tod}, everyone. The {ordinal_lower} quarter was a {adj} quarter for {short}.",
    "Revenue for the quarter was {q_rev}, {up_down} {q_growth}% from the same quarter last year.",
    "Demand for our {product} remained {demand}, and we continued to invest in {priority}.",
    "Our teams executed well despite {headwind}.",
    "We remain focused on three priorities: {priority}, {priority2} and disciplined capital allocation.",
    "I want to thank our roughly {employees} employees for their hard work this quarter.",
    "We are confident in our strategy and in our ability to create value for shareholders over the long term.",
    "Customer feedback on our {product} has been encouraging, particularly in {region}.",
)
_CFO_REMARKS = (
    "Thanks, {ceo_first}. Let me walk you through the numbers.",
    "Total revenue was {q_rev}, and operating margin came in at {q_margin}%.",
    "Diluted earnings per share were ${q_eps} for the quarter.",
    "We ended the quarter with {cash} of cash and {debt} of total debt.",
    "Capital expenditures were {q_capex} in the quarter, in line with our plan.",
    "For the full year, we continue to expect revenue in the range of {g_lo} to {g_hi}.",
    "Our effective tax rate was {tax}% in the quarter.",
    "During the quarter we returned {returned} to shareholders through dividends and buybacks.",
)
_QUESTIONS = (
    "Thanks for taking my question. Can you talk about pricing trends in {product}?",
    "How should we think about operating margin for the rest of {year}?",
    "Could you give more color on {headwind} and how long you expect it to last?",
    "What are your priorities for capital allocation, given the {cash} cash balance?",
    "Can you update us on the integration of recent acquisitions?",
    "How much of the growth this quarter came from new customers versus existing ones?",
    "Are you seeing any change in order patterns heading into the next quarter?",
    "Can you quantify the impact of currency movements on revenue this quarter?",
)
_ANSWERS = (
    "Sure. Pricing has held up well, and we expect it to remain a modest tailwind.",
    "We expect margins to improve gradually through the year as our cost actions take hold.",
    "We think {headwind} will persist for a few more quarters, and our guidance assumes that.",
    "Our first priority remains investing in the business, followed by the dividend and opportunistic buybacks.",
    "Integration is on track, and we have already realized {synergy} of the planned cost savings.",
    "Roughly {share}% of the growth came from new customers, which is higher than last year.",
    "Order patterns have been stable, and our backlog is up {backlog}% from a year ago.",
    "Currency reduced revenue growth by about {fx} percentage points this quarter.",
)  # answers _QUESTIONS one to one
_OPERATOR_CLOSE = (
    "That concludes today's question-and-answer session. Thank you for participating. You may now disconnect.",
    "There are no further questions. This concludes today's conference call. Thank you.",
)
_REGIONS = ("North America", "Europe", "Asia", "Latin America", "our domestic market")
_PRIORITIES = ("innovation", "operational efficiency", "customer service", "digital capabilities", "talent")


def call_text(c: Company, year: int, q: int, rng: Random) -> str:
    """An earnings-call transcript: operator, investor relations, CEO, CFO, two or three analyst questions."""
    f = c.year(year)
    same_q_last_year = c.year(year - 1).revenue * c.year(year - 1).quarter_shares[q - 1]
    q_rev = f.revenue * f.quarter_shares[q - 1]
    growth = q_rev / same_q_last_year - 1
    g_lo = f.revenue * rng.uniform(0.96, 1.0)
    priorities = rng.sample(_PRIORITIES, 2)
    ctx = {
        "name": c.name,
        "short": c.short,
        "ticker": c.ticker,
        "q": q,
        "year": year,
        "ordinal": _cap(ORDINALS[q - 1]),
        "ordinal_lower": ORDINALS[q - 1],
        "tod": rng.choice(("morning", "afternoon")),
        "ir": (ir := _person(rng, [f.ceo, c.cfo])),
        "ir_first": ir.split()[0],
        "ceo": f.ceo,
        "ceo_first": f.ceo.split()[0],
        "cfo": c.cfo,
        "adj": "strong" if growth > 0.03 else "solid" if growth > -0.02 else "challenging",
        "q_rev": _money(q_rev),
        "up_down": "up" if growth >= 0 else "down",
        "q_growth": f"{abs(growth) * 100:.1f}",
        "product": rng.choice(c.products),
        "demand": "strong" if growth > 0 else "soft",
        "priority": priorities[0],
        "priority2": priorities[1],
        "headwind": rng.choice(c.sector.headwinds),
        "employees": f"{f.employees:,}",
        "region": rng.choice(_REGIONS),
        "q_margin": f"{f.operating_margin + rng.uniform(-1.5, 1.5):.1f}",
        "q_eps": f"{f.eps * f.quarter_shares[q - 1]:.2f}",
        "cash": _money(f.cash * rng.uniform(0.9, 1.1)),
        "debt": _money(f.total_debt),
        "q_capex": _money(f.capex * f.quarter_shares[q - 1]),
        "g_lo": _money(g_lo),
        "g_hi": _money(g_lo * rng.uniform(1.02, 1.06)),
        "tax": f"{rng.uniform(18, 27):.1f}",
        "returned": _money(f.net_income * rng.uniform(0.05, 0.2)),
        "share": rng.randint(20, 70),
        "backlog": rng.randint(2, 25),
        "fx": f"{rng.uniform(0.2, 2.5):.1f}",
        "synergy": f"{rng.randint(20, 80)}%",
    }
    ceo_lines = [_CEO_REMARKS[0], *rng.sample(_CEO_REMARKS[1:], rng.randint(3, 5))]
    cfo_lines = [_CFO_REMARKS[0], *rng.sample(_CFO_REMARKS[1:], rng.randint(3, 5))]
    turns = [
        rng.choice(_CALL_TITLES),
        "Operator: " + rng.choice(_OPERATOR_OPEN),
        f"{ctx['ir']}: " + rng.choice(_IR_OPEN),
        f"{f.ceo} (Chief Executive Officer): " + " ".join(ceo_lines),
        f"{c.cfo} (Chief Financial Officer): " + " ".join(cfo_lines),
        "Operator: We will now begin the question-and-answer session.",
    ]
    n_questions = rng.randint(2, 3)
    for qi in rng.sample(range(len(_QUESTIONS)), n_questions):
        analyst, firm = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", rng.choice(ANALYST_FIRMS)
        turns.append(f"Operator: Our next question comes from {analyst} with {firm}.")
        turns.append(f"{analyst} ({firm}): " + _QUESTIONS[qi])
        turns.append(f"{rng.choice((f.ceo, c.cfo))}: " + _ANSWERS[qi])
    turns.append("Operator: " + rng.choice(_OPERATOR_CLOSE))
    return "\n\n".join(t.format(**ctx) for t in turns)


# ---------------------------------------------------------------------------------------------------------------
# Glossary: real financial concepts, defined in our own words, each with a computable worked example
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    key: str
    name: str  # as used inside a sentence: "the current ratio", "EBITDA"
    category: str
    gist: str  # a description that does not name the concept (multiple-choice options)
    definition: str
    formula: str
    subjects: tuple[str, ...]  # who the worked example is about
    inputs: tuple[tuple[str, str, float, float, str], ...]  # (key, label, low, high, kind)
    expr: str  # the computation written with the inputs' values
    compute: Callable[[Mapping[str, float]], float]
    result: str  # kind of the result

    @property
    def title(self) -> str:
        bare = self.name.removeprefix("the ").removeprefix("a ")
        return _cap(bare)


_FIRM = ("a mid-sized retailer", "a software company", "a regional manufacturer", "a food producer", "a hotel chain")
_INVESTOR = ("an investor", "a retail investor", "a pension fund", "a portfolio manager")
_BOND = ("a corporate bond", "a government bond", "a bond portfolio")
_SAVER = ("a saver", "a household", "a young professional")

CONCEPTS = (
    Concept("ebitda", "EBITDA", "profitability",
            "operating profit before interest, taxes, depreciation and amortization",
            "EBITDA stands for earnings before interest, taxes, depreciation and amortization. It shows how "
            "much profit "
            "a business makes from its operations before financing costs, taxes and the gradual write-down of its "
            "assets are taken into account.",
            "EBITDA = operating income + depreciation and amortization", _FIRM,
            (("op", "operating income", 50, 900, "m"), ("da", "depreciation and amortization", 10, 200, "m")),
            "{op} + {da}", lambda v: v["op"] + v["da"], "m"),
    Concept("free_cash_flow", "free cash flow", "cash_flow",
            "cash from operations left after paying for capital expenditures",
            "Free cash flow is the cash a company generates from its operations after paying for the investments "
            "needed to maintain and expand its asset base. It is the cash left over for dividends, share buybacks or "
            "paying down debt.",
            "free cash flow = cash flow from operations - capital expenditures", _FIRM,
            (("ocf", "cash flow from operations", 100, 1500, "m"), ("capex", "capital expenditures", 20, 90, "m")),
            "{ocf} - {capex}", lambda v: v["ocf"] - v["capex"], "m"),
    Concept("working_capital", "working capital", "liquidity",
            "the difference between current assets and current liabilities",
            "Working capital is the difference between a company's current assets, such as cash, receivables and "
            "inventory, and its current liabilities, such as payables and short-term debt. Positive working capital "
            "means short-term resources exceed short-term obligations.",
            "working capital = current assets - current liabilities", _FIRM,
            (("ca", "current assets", 400, 2000, "m"), ("cl", "current liabilities", 100, 390, "m")),
            "{ca} - {cl}", lambda v: v["ca"] - v["cl"], "m"),
    Concept("current_ratio", "the current ratio", "liquidity",
            "current assets divided by current liabilities",
            "The current ratio compares current assets with current liabilities to show whether a company can cover "
            "the obligations due within a year from assets that turn into cash within the same period. A value above "
            "one means more short-term assets than short-term obligations.",
            "current ratio = current assets / current liabilities", _FIRM,
            (("ca", "current assets", 200, 2000, "m"), ("cl", "current liabilities", 100, 1500, "m")),
            "{ca} / {cl}", lambda v: v["ca"] / v["cl"], "x"),
    Concept("quick_ratio", "the quick ratio", "liquidity",
            "liquid current assets excluding inventory, divided by current liabilities",
            "The quick ratio, also called the acid-test ratio, is a stricter version of the current ratio that leaves "
            "inventory out of current assets, because inventory may take time to sell. It shows how well the most "
            "liquid assets cover short-term obligations.",
            "quick ratio = (current assets - inventory) / current liabilities", _FIRM,
            (("ca", "current assets", 600, 2000, "m"), ("inv", "inventory", 50, 500, "m"),
             ("cl", "current liabilities", 200, 1200, "m")),
            "({ca} - {inv}) / {cl}", lambda v: (v["ca"] - v["inv"]) / v["cl"], "x"),
    Concept("pe_ratio", "the price-to-earnings (P/E) ratio", "valuation",
            "the share price divided by earnings per share",
            "The price-to-earnings ratio divides a company's share price by its earnings per share. It tells an "
            "investor how many dollars the market pays for each dollar of annual profit; a high value usually signals "
            "high growth expectations.",
            "P/E = share price / earnings per share", ("a listed company", "a consumer goods company", "a bank"),
            (("price", "a share price", 10, 300, "p"), ("eps", "earnings per share", 0.5, 15, "p")),
            "{price} / {eps}", lambda v: v["price"] / v["eps"], "x"),
    Concept("eps", "earnings per share (EPS)", "profitability",
            "net income attributable to each outstanding common share",
            "Earnings per share is the portion of a company's net income that belongs to each outstanding common "
            "share. It makes profits comparable across companies of different sizes and is the denominator of the "
            "P/E ratio.",
            "EPS = net income / weighted average shares outstanding", _FIRM,
            (("net", "net income", 20, 900, "m"), ("shares", "weighted average shares outstanding (millions)", 10,
                                                   500, "i")),
            "{net} / {shares}", lambda v: v["net"] / v["shares"], "p"),
    Concept("dividend_yield", "dividend yield", "returns",
            "the annual dividend per share as a percentage of the share price",
            "Dividend yield is the annual dividend per share divided by the current share price, expressed as a "
            "percentage. It shows the cash return an investor receives from dividends alone, before any change in the "
            "share price.",
            "dividend yield = annual dividend per share / share price x 100", ("a utility stock", "a bank stock"),
            (("dps", "an annual dividend per share", 0.2, 5, "p"), ("price", "a share price", 10, 200, "p")),
            "{dps} / {price} x 100", lambda v: v["dps"] / v["price"] * 100, "pct"),
    Concept("payout_ratio", "the dividend payout ratio", "returns",
            "the share of net income paid out to shareholders as dividends",
            "The dividend payout ratio is the share of net income that a company pays to shareholders as dividends. "
            "A low ratio means most profit is retained to fund growth, while a very high ratio can be hard to "
            "sustain.",
            "payout ratio = dividends paid / net income x 100", _FIRM,
            (("div", "dividends paid", 10, 150, "m"), ("net", "net income", 160, 900, "m")),
            "{div} / {net} x 100", lambda v: v["div"] / v["net"] * 100, "pct"),
    Concept("gross_margin", "gross margin", "profitability",
            "revenue minus cost of goods sold, as a percentage of revenue",
            "Gross margin is the percentage of revenue left after subtracting the cost of goods sold, the direct cost "
            "of making or buying the products that were sold. It shows how much each sale contributes toward "
            "operating "
            "expenses and profit.",
            "gross margin = (revenue - cost of goods sold) / revenue x 100", _FIRM,
            (("rev", "revenue", 1000, 5000, "m"), ("cogs", "cost of goods sold", 300, 900, "m")),
            "({rev} - {cogs}) / {rev} x 100", lambda v: (v["rev"] - v["cogs"]) / v["rev"] * 100, "pct"),
    Concept("operating_margin", "operating margin", "profitability",
            "operating income as a percentage of revenue",
            "Operating margin is operating income divided by revenue. It measures how much profit a company "
            "makes from "
            "its core business on each dollar of sales, after costs such as wages, rent and marketing but before "
            "interest and taxes.",
            "operating margin = operating income / revenue x 100", _FIRM,
            (("op", "operating income", 50, 400, "m"), ("rev", "revenue", 1000, 5000, "m")),
            "{op} / {rev} x 100", lambda v: v["op"] / v["rev"] * 100, "pct"),
    Concept("net_margin", "net profit margin", "profitability",
            "net income as a percentage of revenue",
            "Net profit margin is net income as a percentage of revenue. Because it comes after every expense, "
            "including interest and taxes, it shows how much of each dollar of sales ends up as profit for "
            "shareholders.",
            "net profit margin = net income / revenue x 100", _FIRM,
            (("net", "net income", 20, 300, "m"), ("rev", "revenue", 1000, 5000, "m")),
            "{net} / {rev} x 100", lambda v: v["net"] / v["rev"] * 100, "pct"),
    Concept("roe", "return on equity (ROE)", "returns",
            "net income divided by shareholders' equity",
            "Return on equity measures how much net income a company earns for each dollar of shareholders' equity. "
            "It shows how effectively management uses the capital that owners have invested in or left in the "
            "business.",
            "ROE = net income / shareholders' equity x 100", _FIRM,
            (("net", "net income", 20, 500, "m"), ("equity", "shareholders' equity", 500, 4000, "m")),
            "{net} / {equity} x 100", lambda v: v["net"] / v["equity"] * 100, "pct"),
    Concept("roa", "return on assets (ROA)", "returns",
            "net income divided by total assets",
            "Return on assets divides net income by total assets. It indicates how efficiently a company turns "
            "everything it owns, whether financed by debt or by equity, into profit.",
            "ROA = net income / total assets x 100", _FIRM,
            (("net", "net income", 20, 500, "m"), ("assets", "total assets", 1000, 10000, "m")),
            "{net} / {assets} x 100", lambda v: v["net"] / v["assets"] * 100, "pct"),
    Concept("debt_to_equity", "the debt-to-equity ratio", "leverage",
            "total debt divided by shareholders' equity",
            "The debt-to-equity ratio compares a company's total debt with its shareholders' equity. It describes how "
            "much of the business is financed by lenders rather than owners; a higher value means more financial "
            "leverage and more fixed obligations.",
            "debt-to-equity = total debt / shareholders' equity", _FIRM,
            (("debt", "total debt", 100, 3000, "m"), ("equity", "shareholders' equity", 500, 4000, "m")),
            "{debt} / {equity}", lambda v: v["debt"] / v["equity"], "x"),
    Concept("interest_coverage", "the interest coverage ratio", "leverage",
            "earnings before interest and taxes divided by interest expense",
            "The interest coverage ratio divides earnings before interest and taxes by interest expense. It shows how "
            "many times a company could pay its interest bill from operating profit, so low values warn of trouble "
            "servicing debt.",
            "interest coverage = EBIT / interest expense", _FIRM,
            (("ebit", "EBIT", 50, 800, "m"), ("interest", "interest expense", 5, 100, "m")),
            "{ebit} / {interest}", lambda v: v["ebit"] / v["interest"], "x"),
    Concept("net_debt", "net debt", "leverage",
            "total debt minus cash and cash equivalents",
            "Net debt is total debt minus cash and cash equivalents. It shows how much debt would remain if a company "
            "used all of its cash to repay lenders; a negative value means the company holds more cash than debt.",
            "net debt = total debt - cash and cash equivalents", _FIRM,
            (("debt", "total debt", 300, 3000, "m"), ("cash", "cash and cash equivalents", 50, 800, "m")),
            "{debt} - {cash}", lambda v: v["debt"] - v["cash"], "m"),
    Concept("enterprise_value", "enterprise value (EV)", "valuation",
            "the market value of equity plus debt minus cash",
            "Enterprise value is the total value of a business to all of its capital providers. It adds debt to the "
            "market value of equity and subtracts cash, giving an approximate price for buying the whole "
            "company, debt "
            "included.",
            "EV = market capitalization + total debt - cash", ("a listed company", "an acquisition target"),
            (("mcap", "a market capitalization", 1000, 20000, "m"), ("debt", "total debt", 200, 5000, "m"),
             ("cash", "cash", 50, 1500, "m")),
            "{mcap} + {debt} - {cash}", lambda v: v["mcap"] + v["debt"] - v["cash"], "m"),
    Concept("ev_ebitda", "the EV/EBITDA multiple", "valuation",
            "enterprise value divided by EBITDA",
            "The EV/EBITDA multiple divides enterprise value by EBITDA. Unlike the P/E ratio it is not "
            "affected by how "
            "a company is financed, which makes companies with different amounts of debt easier to compare.",
            "EV/EBITDA = enterprise value / EBITDA", ("a listed company", "an acquisition target"),
            (("ev", "an enterprise value", 2000, 30000, "m"), ("ebitda", "EBITDA", 200, 3000, "m")),
            "{ev} / {ebitda}", lambda v: v["ev"] / v["ebitda"], "x"),
    Concept("market_cap", "market capitalization", "valuation",
            "the share price multiplied by the number of shares outstanding",
            "Market capitalization is the market value of all of a company's outstanding shares, found by multiplying "
            "the share price by the number of shares. Investors use it to group companies into small, mid and large "
            "caps.",
            "market capitalization = share price x shares outstanding", ("a listed company", "a technology company"),
            (("price", "a share price", 10, 200, "p"), ("shares", "shares outstanding (millions)", 10, 500, "i")),
            "{price} x {shares}", lambda v: v["price"] * v["shares"], "m"),
    Concept("bvps", "book value per share", "valuation",
            "shareholders' equity divided by the number of shares outstanding",
            "Book value per share is shareholders' equity divided by the number of shares outstanding. It is the "
            "accounting value of the net assets that stand behind each share.",
            "book value per share = shareholders' equity / shares outstanding", _FIRM,
            (("equity", "shareholders' equity", 500, 5000, "m"), ("shares", "shares outstanding (millions)", 20, 400,
                                                                  "i")),
            "{equity} / {shares}", lambda v: v["equity"] / v["shares"], "p"),
    Concept("price_to_book", "the price-to-book ratio", "valuation",
            "the share price divided by book value per share",
            "The price-to-book ratio compares the market price of a share with its book value per share. A "
            "ratio below "
            "one means the market values the company at less than the accounting value of its net assets.",
            "P/B = share price / book value per share", ("a bank", "an insurer", "a listed company"),
            (("price", "a share price", 10, 200, "p"), ("bvps", "book value per share", 5, 80, "p")),
            "{price} / {bvps}", lambda v: v["price"] / v["bvps"], "x"),
    Concept("cagr", "compound annual growth rate (CAGR)", "growth",
            "the constant yearly rate that takes a value from its start to its end over a period",
            "The compound annual growth rate is the constant yearly rate at which a value would have grown from its "
            "starting level to its ending level over a period. It smooths the ups and downs of individual years into "
            "a single average rate.",
            "CAGR = ((ending value / beginning value)^(1 / years) - 1) x 100", ("a company's revenue", "a fund"),
            (("start", "a beginning value", 200, 500, "m"), ("end", "an ending value", 600, 1500, "m"),
             ("years", "a period in years of", 3, 8, "i")),
            "(({end} / {start})^(1 / {years}) - 1) x 100",
            lambda v: ((v["end"] / v["start"]) ** (1 / v["years"]) - 1) * 100, "pct"),
    Concept("simple_interest", "simple interest", "interest",
            "interest calculated only on the original principal",
            "Simple interest is interest calculated only on the original principal, never on interest already earned. "
            "The amount owed or earned grows in a straight line with time.",
            "simple interest = principal x annual rate x years", _SAVER,
            (("principal", "a principal", 1000, 50000, "d"), ("rate", "an annual rate", 2, 9, "pct"),
             ("years", "a term in years of", 1, 10, "i")),
            "{principal} x {rate} x {years}", lambda v: v["principal"] * v["rate"] / 100 * v["years"], "d"),
    Concept("compound_interest", "compound interest", "interest",
            "interest earned on the principal and on previously added interest",
            "Compound interest is interest earned on both the original principal and the interest added in earlier "
            "periods. Because each period's interest itself earns interest, savings grow faster over time than with "
            "simple interest.",
            "future value = principal x (1 + rate)^years", _SAVER,
            (("principal", "a deposit", 1000, 50000, "d"), ("rate", "an annual rate", 2, 9, "pct"),
             ("years", "a term in years of", 2, 20, "i")),
            "{principal} x (1 + {rate})^{years}",
            lambda v: v["principal"] * (1 + v["rate"] / 100) ** v["years"], "d"),
    Concept("present_value", "present value", "interest",
            "what a future amount is worth today after discounting",
            "Present value is what a future amount of money is worth today, given a rate of return that could be "
            "earned in the meantime. It is found by discounting the future amount, because a dollar today is worth "
            "more than a dollar later.",
            "present value = future value / (1 + discount rate)^years", _SAVER,
            (("fv", "a future amount", 5000, 100000, "d"), ("rate", "a discount rate", 2, 10, "pct"),
             ("years", "a horizon in years of", 2, 15, "i")),
            "{fv} / (1 + {rate})^{years}", lambda v: v["fv"] / (1 + v["rate"] / 100) ** v["years"], "d"),
    Concept("npv", "net present value (NPV)", "corporate_finance",
            "the sum of a project's discounted cash flows including the initial investment",
            "Net present value is the sum of the present values of all cash flows from a project, with the initial "
            "investment counted as a negative amount. A positive NPV means the project is expected to earn more than "
            "the required rate of return.",
            "NPV = -investment + cash flow 1 / (1 + r) + cash flow 2 / (1 + r)^2 for a two-year project",
            ("a manufacturer weighing a new plant", "a retailer weighing a new store"),
            (("inv", "an initial investment", 100, 500, "m"), ("cf1", "a first-year cash flow", 60, 350, "m"),
             ("cf2", "a second-year cash flow", 60, 350, "m"), ("r", "a discount rate", 4, 12, "pct")),
            "-{inv} + {cf1} / (1 + {r}) + {cf2} / (1 + {r})^2",
            lambda v: -v["inv"] + v["cf1"] / (1 + v["r"] / 100) + v["cf2"] / (1 + v["r"] / 100) ** 2, "m"),
    Concept("current_yield", "current yield", "fixed_income",
            "a bond's annual coupon divided by its market price",
            "Current yield is a bond's annual coupon payment divided by its current market price. It shows the income "
            "return at today's price, ignoring any gain or loss if the bond is held to maturity.",
            "current yield = annual coupon / bond price x 100", _BOND,
            (("coupon", "an annual coupon", 20, 80, "d"), ("price", "a market price", 850, 1150, "d")),
            "{coupon} / {price} x 100", lambda v: v["coupon"] / v["price"] * 100, "pct"),
    Concept("duration", "duration", "fixed_income",
            "a bond's price sensitivity to interest-rate changes, expressed in years",
            "Duration measures how sensitive a bond's price is to changes in interest rates, expressed in years. A "
            "bond with a modified duration of six loses roughly six percent of its value when yields rise by one "
            "percentage point, so longer duration means more interest-rate risk.",
            "approximate price change (%) = -modified duration x change in yield (percentage points)", _BOND,
            (("dur", "a modified duration of", 2, 12, "x"), ("dy", "a rise in yields, in percentage points, of",
                                                            0.25, 2, "x")),
            "-{dur} x {dy}", lambda v: -v["dur"] * v["dy"], "pct"),
    Concept("yield_curve", "the yield curve", "fixed_income",
            "a plot of bond yields against time to maturity",
            "The yield curve plots the yields of bonds of the same credit quality against their time to maturity. It "
            "normally slopes upward because lenders want more for tying up money longer; when short-term yields "
            "exceed long-term yields the curve is inverted, which has often preceded recessions.",
            "slope = long-term yield - short-term yield", ("the government bond market",),
            (("y10", "a 10-year yield", 2, 6, "pct"), ("y2", "a 2-year yield", 1.5, 6, "pct")),
            "{y10} - {y2}", lambda v: v["y10"] - v["y2"], "pp"),
    Concept("real_interest_rate", "the real interest rate", "interest",
            "the nominal interest rate adjusted for inflation",
            "The real interest rate is the nominal interest rate adjusted for inflation. It measures the gain in "
            "purchasing power that a lender or saver actually earns.",
            "real rate = nominal rate - inflation rate (approximately)", _SAVER,
            (("nominal", "a nominal rate", 2, 9, "pct"), ("inflation", "an inflation rate", 1, 6, "pct")),
            "{nominal} - {inflation}", lambda v: v["nominal"] - v["inflation"], "pct"),
    Concept("beta", "beta", "risk",
            "a measure of how strongly a stock moves with the overall market",
            "Beta measures how much a stock's returns tend to move with the overall market. A beta of one means the "
            "stock moves in line with the market, above one means it swings more, and below one means it is less "
            "sensitive to market moves.",
            "expected stock move = beta x market move", ("a stock",),
            (("beta", "a beta of", 0.5, 2.0, "x"), ("mkt", "a market move of", 2, 10, "pct")),
            "{beta} x {mkt}", lambda v: v["beta"] * v["mkt"], "pct"),
    Concept("capm", "the capital asset pricing model (CAPM)", "risk",
            "a model giving required return as the risk-free rate plus beta times the market risk premium",
            "The capital asset pricing model estimates the return investors require from a stock as the risk-free "
            "rate plus a premium for market risk scaled by the stock's beta. It is widely used to estimate a "
            "company's "
            "cost of equity.",
            "expected return = risk-free rate + beta x (market return - risk-free rate)", ("a stock",),
            (("rf", "a risk-free rate", 1, 5, "pct"), ("beta", "a beta of", 0.6, 1.8, "x"),
             ("rm", "an expected market return", 6, 11, "pct")),
            "{rf} + {beta} x ({rm} - {rf})", lambda v: v["rf"] + v["beta"] * (v["rm"] - v["rf"]), "pct"),
    Concept("wacc", "the weighted average cost of capital (WACC)", "corporate_finance",
            "the blended cost of equity and after-tax debt, weighted by their shares of financing",
            "The weighted average cost of capital blends the cost of equity and the after-tax cost of debt, "
            "weighted by "
            "how much of the company's financing comes from each. It is the minimum return a project must earn to "
            "satisfy both shareholders and lenders.",
            "WACC = E/(D+E) x cost of equity + D/(D+E) x cost of debt x (1 - tax rate)", _FIRM,
            (("e", "equity with a market value of", 1000, 8000, "m"), ("d", "debt of", 500, 4000, "m"),
             ("re", "a cost of equity", 7, 13, "pct"), ("rd", "a cost of debt", 3, 7, "pct"),
             ("t", "a tax rate", 15, 30, "pct")),
            "{e}/({d}+{e}) x {re} + {d}/({d}+{e}) x {rd} x (1 - {t})",
            lambda v: (v["e"] * v["re"] + v["d"] * v["rd"] * (1 - v["t"] / 100)) / (v["d"] + v["e"]), "pct"),
    Concept("inventory_turnover", "inventory turnover", "efficiency",
            "cost of goods sold divided by average inventory",
            "Inventory turnover divides the cost of goods sold by average inventory. It shows how many times "
            "a company "
            "sells and replaces its stock of goods during a year; a higher figure usually means leaner, faster-moving "
            "inventory.",
            "inventory turnover = cost of goods sold / average inventory", _FIRM,
            (("cogs", "cost of goods sold", 500, 5000, "m"), ("inv", "average inventory", 50, 900, "m")),
            "{cogs} / {inv}", lambda v: v["cogs"] / v["inv"], "x"),
    Concept("dso", "days sales outstanding (DSO)", "efficiency",
            "the average number of days taken to collect payment after a credit sale",
            "Days sales outstanding is the average number of days a company takes to collect payment after a sale on "
            "credit. Rising DSO can signal that customers are paying more slowly or that credit terms have loosened.",
            "DSO = accounts receivable / revenue x 365", _FIRM,
            (("ar", "accounts receivable", 50, 600, "m"), ("rev", "annual revenue", 800, 5000, "m")),
            "{ar} / {rev} x 365", lambda v: v["ar"] / v["rev"] * 365, "days"),
    Concept("receivables_turnover", "accounts receivable turnover", "efficiency",
            "revenue divided by accounts receivable",
            "Accounts receivable turnover divides revenue by accounts receivable. It tells how many times during a "
            "year a company collects its average outstanding customer balances.",
            "receivables turnover = revenue / accounts receivable", _FIRM,
            (("rev", "revenue", 800, 5000, "m"), ("ar", "accounts receivable", 50, 600, "m")),
            "{rev} / {ar}", lambda v: v["rev"] / v["ar"], "x"),
    Concept("asset_turnover", "asset turnover", "efficiency",
            "revenue divided by total assets",
            "Asset turnover is revenue divided by total assets. It measures how much in sales a company "
            "generates from "
            "each dollar of assets and is typically high for retailers and low for utilities.",
            "asset turnover = revenue / total assets", _FIRM,
            (("rev", "revenue", 500, 8000, "m"), ("assets", "total assets", 1000, 9000, "m")),
            "{rev} / {assets}", lambda v: v["rev"] / v["assets"], "x"),
    Concept("break_even", "the break-even point", "corporate_finance",
            "the sales volume at which total revenue equals total costs",
            "The break-even point is the level of sales at which total revenue equals total costs, so the business "
            "makes neither a profit nor a loss. Each unit sold beyond it contributes its full margin to profit.",
            "break-even units = fixed costs / (price per unit - variable cost per unit)",
            ("a small bakery", "a furniture workshop", "a start-up"),
            (("fixed", "fixed costs", 50000, 500000, "d"), ("price", "a price per unit", 20, 100, "p"),
             ("var", "a variable cost per unit", 5, 18, "p")),
            "{fixed} / ({price} - {var})", lambda v: v["fixed"] / (v["price"] - v["var"]), "units"),
    Concept("contribution_margin", "contribution margin", "corporate_finance",
            "selling price minus variable cost per unit",
            "Contribution margin is the selling price of a unit minus the variable cost of producing it. It is the "
            "amount each unit contributes toward covering fixed costs and then toward profit.",
            "contribution margin ratio = (price - variable cost) / price x 100", ("a small bakery", "a start-up"),
            (("price", "a price per unit", 20, 100, "p"), ("var", "a variable cost per unit", 5, 18, "p")),
            "({price} - {var}) / {price} x 100", lambda v: (v["price"] - v["var"]) / v["price"] * 100, "pct"),
    Concept("dol", "the degree of operating leverage", "corporate_finance",
            "the percentage change in operating income per percentage change in sales",
            "The degree of operating leverage measures how strongly operating income reacts to a change in sales. "
            "Companies with high fixed costs have high operating leverage: a small rise in sales produces a much "
            "larger rise in operating profit, and the reverse when sales fall.",
            "degree of operating leverage = % change in operating income / % change in sales", _FIRM,
            (("dop", "a change in operating income of", 10, 40, "pct"), ("ds", "a change in sales of", 3, 9.9, "pct")),
            "{dop} / {ds}", lambda v: v["dop"] / v["ds"], "x"),
    Concept("sharpe", "the Sharpe ratio", "risk",
            "excess return over the risk-free rate per unit of volatility",
            "The Sharpe ratio measures the return of an investment in excess of the risk-free rate per unit of "
            "volatility. It lets investors compare portfolios that take different amounts of risk.",
            "Sharpe ratio = (portfolio return - risk-free rate) / standard deviation of returns", ("a fund",),
            (("rp", "an annual return", 6, 15, "pct"), ("rf", "a risk-free rate", 1, 4, "pct"),
             ("sd", "a standard deviation", 8, 25, "pct")),
            "({rp} - {rf}) / {sd}", lambda v: (v["rp"] - v["rf"]) / v["sd"], "x"),
    Concept("volatility", "volatility", "risk",
            "how widely returns swing around their average, usually their standard deviation",
            "Volatility describes how widely an asset's returns swing around their average, usually measured as the "
            "standard deviation of returns. Daily volatility is often annualized by multiplying it by the square root "
            "of the number of trading days in a year.",
            "annual volatility = daily volatility x square root of 252", ("a stock", "a currency pair"),
            (("daily", "a daily volatility", 0.5, 3, "pct"),),
            "{daily} x sqrt(252)", lambda v: v["daily"] * math.sqrt(252), "pct"),
    Concept("portfolio_return", "the expected return of a portfolio", "risk",
            "the weighted average of the expected returns of the holdings",
            "The expected return of a portfolio is the weighted average of the expected returns of its holdings, with "
            "each weight equal to the share of the portfolio invested in that asset.",
            "expected return = weight A x return A + (1 - weight A) x return B", _INVESTOR,
            (("wa", "a weight in stock fund A", 20, 80, "pct"), ("ra", "an expected return on A", 5, 12, "pct"),
             ("rb", "an expected return on bond fund B", 2, 5, "pct")),
            "{wa} x {ra} + (100% - {wa}) x {rb}",
            lambda v: v["wa"] / 100 * v["ra"] + (1 - v["wa"] / 100) * v["rb"], "pct"),
    Concept("dollar_cost_averaging", "dollar-cost averaging", "investing",
            "investing a fixed amount at regular intervals regardless of price",
            "Dollar-cost averaging means investing the same amount of money at regular intervals whatever the price. "
            "More shares are bought when prices are low and fewer when they are high, which keeps the average cost "
            "per share at or below the average price.",
            "average cost per share = total amount invested / total shares bought", _INVESTOR,
            (("amt", "a monthly investment", 200, 1000, "d"), ("p1", "a first-month price", 10, 30, "p"),
             ("p2", "a second-month price", 10, 30, "p"), ("p3", "a third-month price", 10, 30, "p")),
            "3 x {amt} / ({amt}/{p1} + {amt}/{p2} + {amt}/{p3})",
            lambda v: 3 / (1 / v["p1"] + 1 / v["p2"] + 1 / v["p3"]), "p"),
    Concept("stock_split", "a stock split", "investing",
            "issuing more shares to existing holders while the price per share falls proportionally",
            "A stock split increases the number of shares outstanding by giving existing shareholders additional "
            "shares, while the price per share falls in proportion. The total value of the company and of each "
            "shareholder's stake does not change.",
            "price after the split = price before the split / split ratio", ("a technology stock", "a retailer"),
            (("price", "a share price", 40, 600, "p"), ("ratio", "a split ratio of", 2, 5, "i")),
            "{price} / {ratio}", lambda v: v["price"] / v["ratio"], "p"),
    Concept("rule_of_72", "the rule of 72", "investing",
            "a shortcut that divides 72 by the annual return to estimate the doubling time",
            "The rule of 72 is a shortcut for estimating how long an investment takes to double: divide 72 by the "
            "annual rate of return in percent. It works best for rates between about four and twelve percent.",
            "years to double = 72 / annual return in percent", _SAVER,
            (("rate", "an annual return in percent of", 2, 12, "x"),),
            "72 / {rate}", lambda v: 72 / v["rate"], "years"),
    Concept("total_return", "total return", "returns",
            "price change plus income received, relative to the starting price",
            "Total return combines the change in an investment's price with the income it paid, such as dividends or "
            "interest, over a period. It is the fairest way to compare investments that pay different amounts of "
            "income.",
            "total return = (ending price - beginning price + dividends) / beginning price x 100", _INVESTOR,
            (("p0", "a purchase price", 20, 100, "p"), ("p1", "a price one year later", 20, 120, "p"),
             ("div", "dividends received", 0.5, 4, "p")),
            "({p1} - {p0} + {div}) / {p0} x 100", lambda v: (v["p1"] - v["p0"] + v["div"]) / v["p0"] * 100, "pct"),
    Concept("amortization", "loan amortization", "interest",
            "repaying a loan through regular installments of interest and principal",
            "Amortization is the repayment of a loan through regular installments that cover both interest "
            "and part of "
            "the principal. Early payments are mostly interest, and the principal share grows as the balance falls.",
            "payment = principal x r / (1 - (1 + r)^-n), with r the periodic rate and n the number of payments",
            ("a car buyer", "a small business owner"),
            (("principal", "a loan principal", 5000, 50000, "d"), ("r", "a monthly interest rate", 0.25, 0.75,
                                                                    "pct"),
             ("n", "a number of monthly payments of", 24, 72, "i")),
            "{principal} x {r} / (1 - (1 + {r})^-{n})",
            lambda v: v["principal"] * (v["r"] / 100) / (1 - (1 + v["r"] / 100) ** -v["n"]), "d"),
    Concept("equity_multiplier", "the equity multiplier", "leverage",
            "total assets divided by shareholders' equity",
            "The equity multiplier divides total assets by shareholders' equity. It is a measure of financial "
            "leverage: the larger it is, the more of the company's assets are financed with debt.",
            "equity multiplier = total assets / shareholders' equity", _FIRM,
            (("assets", "total assets", 1000, 10000, "m"), ("equity", "shareholders' equity", 300, 900, "m")),
            "{assets} / {equity}", lambda v: v["assets"] / v["equity"], "x"),
    Concept("effective_tax_rate", "the effective tax rate", "profitability",
            "income tax expense divided by pre-tax income",
            "The effective tax rate is the income tax expense a company reports divided by its pre-tax income. It "
            "often differs from the statutory rate because of credits, deductions and profits earned in other "
            "countries.",
            "effective tax rate = income tax expense / pre-tax income x 100", _FIRM,
            (("tax", "income tax expense", 10, 150, "m"), ("pretax", "pre-tax income", 160, 900, "m")),
            "{tax} / {pretax} x 100", lambda v: v["tax"] / v["pretax"] * 100, "pct"),
    Concept("goodwill", "goodwill", "accounting",
            "the excess of an acquisition price over the fair value of identifiable net assets",
            "Goodwill is an intangible asset recorded when one company buys another for more than the fair value of "
            "its identifiable net assets. It stands for things such as brand, customer relationships and expected "
            "synergies, and it must be written down if its value becomes impaired.",
            "goodwill = purchase price - fair value of identifiable net assets", ("an acquirer",),
            (("price", "a purchase price", 500, 5000, "m"), ("fv", "identifiable net assets at fair value", 100, 450,
                                                             "m")),
            "{price} - {fv}", lambda v: v["price"] - v["fv"], "m"),
    Concept("straight_line_depreciation", "straight-line depreciation", "accounting",
            "spreading an asset's cost less salvage value evenly over its useful life",
            "Straight-line depreciation spreads the cost of a long-lived asset, less its expected salvage "
            "value, evenly "
            "over its useful life. Each year the same amount is charged as an expense.",
            "annual depreciation = (cost - salvage value) / useful life in years",
            ("a delivery company", "a factory", "a farm"),
            (("cost", "a machine costing", 50000, 500000, "d"), ("salvage", "a salvage value", 2000, 40000, "d"),
             ("life", "a useful life in years of", 3, 15, "i")),
            "({cost} - {salvage}) / {life}", lambda v: (v["cost"] - v["salvage"]) / v["life"], "d"),
    Concept("short_selling", "short selling", "investing",
            "selling borrowed shares in the hope of buying them back more cheaply",
            "Short selling means borrowing shares and selling them in the hope of buying them back later at a lower "
            "price. The short seller profits if the price falls but faces potentially unlimited losses if it rises.",
            "profit = (sale price - repurchase price) x number of shares", ("a hedge fund", "a trader"),
            (("sell", "a sale price", 20, 150, "p"), ("buy", "a repurchase price", 15, 160, "p"),
             ("shares", "a position in shares of", 100, 2000, "i")),
            "({sell} - {buy}) x {shares}", lambda v: (v["sell"] - v["buy"]) * v["shares"], "d"),
    Concept("margin_of_safety", "margin of safety", "investing",
            "the gap between estimated intrinsic value and market price, relative to intrinsic value",
            "Margin of safety is the gap between an investor's estimate of a security's intrinsic value and "
            "its market "
            "price, expressed as a share of the intrinsic value. Buying with a wide margin leaves room for errors in "
            "the estimate.",
            "margin of safety = (intrinsic value - market price) / intrinsic value x 100", _INVESTOR,
            (("iv", "an estimated intrinsic value", 50, 150, "p"), ("price", "a market price", 30, 100, "p")),
            "({iv} - {price}) / {iv} x 100", lambda v: (v["iv"] - v["price"]) / v["iv"] * 100, "pct"),
    Concept("basis_point", "a basis point", "fixed_income",
            "one hundredth of a percentage point",
            "A basis point is one hundredth of a percentage point, or 0.01 percent. Rates and yields are quoted in "
            "basis points so that small changes can be described without confusion.",
            "new rate = old rate + basis points / 100", ("a central bank", "a mortgage lender"),
            (("old", "an old rate", 1, 6, "pct"), ("bp", "an increase in basis points of", 10, 75, "i")),
            "{old} + {bp} / 100", lambda v: v["old"] + v["bp"] / 100, "pct"),
)  # fmt: skip
CONCEPT_WHY = {
    "profitability": (
        "Analysts track it over several years because a trend says more than a single value.",
        "Comparing it with close competitors shows whether a company has pricing power or a cost advantage.",
    ),
    "cash_flow": (
        "Because it is measured in cash, it is harder to flatter with accounting choices than reported profit.",
        "Investors watch it closely since dividends and buybacks must ultimately be paid from it.",
    ),
    "liquidity": (
        "Lenders and suppliers check it to judge whether they will be paid on time.",
        "A sudden deterioration can be an early warning of financial stress.",
    ),
    "valuation": (
        "It is only meaningful when compared with similar companies or with the company's own history.",
        "A low value can signal a bargain or a business in trouble, so it should never be read alone.",
    ),
    "returns": (
        "It helps investors compare very different investments on the same footing.",
        "Looking at it over several periods smooths out one-off gains and losses.",
    ),
    "leverage": (
        "Credit analysts and rating agencies rely on it to judge default risk.",
        "Leverage magnifies both gains and losses, so it deserves attention in every downturn.",
    ),
    "growth": (
        "It is the standard way to compare growth across periods of different lengths.",
        "It hides volatility along the way, so it should be read together with year-by-year figures.",
    ),
    "interest": (
        "It is the arithmetic behind every savings account, loan and bond.",
        "Small differences in rates add up to large differences over long horizons.",
    ),
    "corporate_finance": (
        "Managers use it when deciding which projects deserve scarce capital.",
        "It turns a business plan into a number that can be compared across alternatives.",
    ),
    "fixed_income": (
        "Bond investors rely on it to understand what moves the value of their holdings.",
        "Central bank decisions are often discussed in these terms.",
    ),
    "risk": (
        "It gives investors a way to think about the trade-off between risk and reward.",
        "Portfolio managers use it to compare strategies that carry different levels of risk.",
    ),
    "efficiency": (
        "It shows how well management runs the day-to-day operations of the business.",
        "Changes over time often reveal problems before they reach the income statement.",
    ),
    "investing": (
        "It is a basic building block of an individual investor's toolkit.",
        "Understanding it helps investors avoid costly mistakes.",
    ),
    "accounting": (
        "It follows rules set by accounting standards, so it can be compared across companies.",
        "It affects reported profit without any cash changing hands in the period.",
    ),
}


# Descriptions for evaluation's multiple-choice items only: each concept's `gist` reworded, so that no option and no
# question stem repeats training text (the gists appear in training questions and in glossary "Related terms").
EVAL_GISTS = {
    "ebitda": "earnings from operations with interest, tax and the non-cash charges for using up assets added back",
    "free_cash_flow": "the money a business keeps after funding the investment its assets require",
    "working_capital": "what remains of short-term assets once the bills due soon are subtracted",
    "current_ratio": "a liquidity test that sets assets due within a year against debts due within a year",
    "quick_ratio": "a stricter liquidity test that counts cash and receivables but not goods waiting to be sold",
    "pe_ratio": "how many times the yearly profit per share an investor pays for one share",
    "eps": "the slice of yearly profit that belongs to each common share",
    "dividend_yield": "the cash a share pays its owner each year, compared with what the share costs",
    "payout_ratio": "the portion of profit a company hands back to its owners in cash",
    "gross_margin": "the part of every sales dollar left after paying for the goods that were sold",
    "operating_margin": "profit from the core business for every dollar of sales",
    "net_margin": "bottom-line profit for every dollar of sales",
    "roe": "how much profit management earns on the owners' stake in the business",
    "roa": "how much profit a company earns on everything it owns",
    "debt_to_equity": "borrowed money measured against the owners' stake",
    "interest_coverage": "how many times operating profit covers the cost of borrowing",
    "net_debt": "what a company owes once the money it holds is netted off",
    "enterprise_value": "the cost of buying a whole business, counting its borrowings and net of its money on hand",
    "ev_ebitda": "a multiple comparing the value of the whole firm with its operating profit before non-cash charges",
    "market_cap": "the stock market's total price tag on a company's shares",
    "bvps": "the accounting net worth that belongs to each share",
    "price_to_book": "how much investors pay for each dollar of accounting net worth",
    "cagr": "the steady yearly growth that would turn a starting amount into an ending amount",
    "simple_interest": "interest that is always worked out on the sum first lent and never on interest already due",
    "compound_interest": "interest that itself starts earning interest in later periods",
    "present_value": "today's worth of money that will only be received later",
    "npv": "what a project adds once every future cash flow is discounted and the upfront cost is counted",
    "current_yield": "the income a bond pays each year compared with what it costs to buy today",
    "duration": "roughly how far a bond's price moves when rates change, measured in years",
    "yield_curve": "a line showing how borrowing rates change as loans run for longer",
    "real_interest_rate": "the return on money after stripping out rising prices",
    "beta": "how much a share tends to move when the whole market moves",
    "capm": "a model in which expected return is a riskless return plus a reward for exposure to the market",
    "wacc": "the average return a company must pay all of its providers of money",
    "inventory_turnover": "how many times a year a business sells through its stock of goods",
    "dso": "how long customers take on average to pay what they owe",
    "receivables_turnover": "how many times a year a firm collects the bills its customers run up",
    "asset_turnover": "how much in sales a company produces from each dollar tied up in what it owns",
    "break_even": "the level of sales at which a business neither makes nor loses money",
    "contribution_margin": "what each unit sold adds toward covering costs that do not change with volume",
    "dol": "how strongly operating profit reacts to a change in sales",
    "sharpe": "the reward earned above a riskless return for each unit of risk taken",
    "volatility": "how much returns bounce around from one period to the next",
    "portfolio_return": "the blend of what each holding is expected to earn, in proportion to its size",
    "dollar_cost_averaging": "putting the same sum into the market on a fixed schedule, whatever prices do",
    "stock_split": "cutting each share into several smaller ones without changing what the company is worth",
    "rule_of_72": "a quick mental estimate of how long money takes to double",
    "total_return": "everything an investment earned over a period, counting both income and the change in price",
    "amortization": "paying off borrowed money in scheduled installments that cover both interest and the sum owed",
    "equity_multiplier": "how many dollars of assets a company holds for each dollar of its owners' money",
    "effective_tax_rate": "the share of profit before tax that actually goes to tax",
    "goodwill": "the premium paid for a business above the fair value of what can be identified and valued in it",
    "straight_line_depreciation": "charging the same expense every year for the wearing out of an asset",
    "short_selling": "betting on a price fall by selling shares that were borrowed",
    "margin_of_safety": "the cushion between what a stock is judged to be worth and what it costs",
    "basis_point": "a unit equal to 0.01 percent, used to quote changes in rates",
}


def _input_value(low: float, high: float, kind: str, rng: Random) -> float:
    if kind == "i":
        return float(rng.randint(int(low), int(high)))
    if kind == "d":
        return float(round(rng.uniform(low, high) / 100) * 100)
    if kind in ("p", "x"):
        return round(rng.uniform(low, high), 2)
    return round(rng.uniform(low, high), 1)  # m, pct


def _show_input(value: float, kind: str) -> tuple[str, str]:
    """(in a sentence, inside the computation)."""
    if kind == "m":
        return _money(value), f"{value:,.1f}"
    if kind == "d":
        return _dollars(value, cents=False), f"{value:,.0f}"
    if kind == "p":
        return _dollars(value), f"{value:.2f}"
    if kind == "pct":
        return f"{value:g}%", f"{value:g}%"
    if kind == "i":
        return f"{value:,.0f}", f"{value:,.0f}"
    return f"{value:g}", f"{value:g}"


def show_result(value: float, kind: str) -> str:
    if kind == "m":
        return _money(value)
    if kind in ("d", "p"):
        return _dollars(value)
    if kind == "pct":
        return f"{value:.2f}%"
    if kind == "pp":
        return f"{value:.2f} percentage points"
    if kind == "days":
        return f"{value:.1f} days"
    if kind == "years":
        return f"{value:.1f} years"
    if kind == "units":
        return f"{math.ceil(value):,} units"
    return f"{value:.2f}"


def _bare_label(label: str) -> str:
    """An input label as a field name: "an increase in basis points of" -> "increase in basis points"."""
    return re.sub(r"^(?:a|an) ", "", label).removesuffix(" of").removesuffix(",")


@dataclass(frozen=True)
class Worked:
    """One worked example of a concept: the situation, the computation and the result."""

    situation: str
    computation: str
    value: float
    result: str


def worked_example(c: Concept, rng: Random, held_out: bool = False) -> Worked:
    """Inputs drawn for a concept, as a situation ("Suppose a bank has ..."); `held_out` (evaluation) lists them
    as "Figures for a bank: net income $1.2 million; ...", a wording no training text uses."""
    values = {key: _input_value(low, high, kind, rng) for key, _, low, high, kind in c.inputs}
    shown = {key: _show_input(values[key], kind) for key, _, _, _, kind in c.inputs}
    if held_out:
        fields = [f"{_bare_label(label)} {shown[key][0]}" for key, label, *_ in c.inputs]
        situation = f"Figures for {rng.choice(c.subjects)}: {'; '.join(fields)}."
    else:
        facts = [f"{label} {shown[key][0]}" if label.endswith(" of") else f"{label} of {shown[key][0]}"
                 for key, label, *_ in c.inputs]  # fmt: skip
        verb = rng.choice(("has", "reports", "shows")) if c.subjects in (_FIRM,) else "has"
        situation = f"Suppose {rng.choice(c.subjects)} {verb} {_join(facts)}."
    value = c.compute(values)
    result = show_result(value, c.result)
    computation = f"{c.title} = {c.expr.format(**{k: v[1] for k, v in shown.items()})} = {result}"
    return Worked(situation, computation, value, result)


_GLOSSARY_TITLES = (
    "Glossary: {title}",
    "What is {name}? A plain-language guide",
    "{title} explained",
    "Understanding {name}",
    "Finance basics: {title}",
    "Key concept: {title}",
    "{title}: definition, formula and an example",
)
_FORMULA_LINES = ("The formula is: {formula}.", "In symbols: {formula}.", "It is calculated as follows: {formula}.")
_EXAMPLE_INTROS = ("Worked example.", "An example makes this concrete.", "Example:", "Let us work through numbers.")
_PITFALLS = (
    "A common mistake is to mix figures from different periods, for example a year-end balance with a quarterly "
    "income figure.",
    "Always check whether a figure has been adjusted by management, because adjusted and reported numbers can differ "
    "widely.",
    "Definitions vary slightly between data providers, so compare like with like.",
    "Rounding in intermediate steps can change the last digit of the answer, so keep full precision until the end.",
    "Context matters: what counts as a good value differs from one industry to another.",
)


def glossary_text(c: Concept, rng: Random) -> str:
    """An explainer: title, definition, usually the formula and why it matters, two or three worked examples with
    numbers, often a pitfall, and related terms; examples and related terms keep explainers of one concept apart."""
    ex, second = worked_example(c, rng), worked_example(c, rng)
    parts = [rng.choice(_GLOSSARY_TITLES).format(title=c.title, name=c.name), c.definition]
    if rng.random() < 0.8:
        parts.append(rng.choice(_FORMULA_LINES).format(formula=c.formula))
    if rng.random() < 0.7:
        parts.append(rng.choice(CONCEPT_WHY[c.category]))
    parts.append(f"{rng.choice(_EXAMPLE_INTROS)} {ex.situation} {ex.computation}.")
    parts.append(f"A second case: {second.situation[0].lower()}{second.situation[1:]} This gives {second.result}.")
    if rng.random() < 0.5:
        third = worked_example(c, rng)
        parts.append(f"For comparison, {third.situation[8:]} The result is {third.result}.")
    extras = []
    if rng.random() < 0.7:
        extras.append(rng.choice(_PITFALLS))
    related = rng.sample([o for o in CONCEPTS if o.key != c.key], rng.randint(2, 3))
    extras.append("Related terms: " + "; ".join(f"{o.title} ({o.gist})" for o in related) + ".")
    rng.shuffle(extras)
    return "\n\n".join(parts + extras)


# ---------------------------------------------------------------------------------------------------------------
# General English text: topic sentence banks whose slots keep documents of one topic apart
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    key: str
    phrase: str  # "cooking at home": used in instructions
    focus: tuple[str, ...]  # slots that keep one value through a document, so that it is about one thing
    titles: tuple[str, ...]
    sentences: tuple[str, ...]
    vocab: Mapping[str, Pool]


TOPICS = (
    Topic("cooking", "cooking at home", ("dish", "city"),
          ("How to make better {dish}", "Notes from the kitchen: {dish}", "A simple {dish} with {ingredient}",
           "What I learned cooking {dish}"),
          ("A good {dish} starts with patience, and most cooks agree that {ingredient} makes a noticeable difference.",
           "Heat the {pan} for about {heat} minutes before adding anything, so that the surface is evenly hot.",
           "If you are baking {dish}, set the oven to {temp} degrees Celsius and check on it after {minutes} minutes.",
           "Many home cooks finish their {dish} with {ingredient} just before it goes to the table.",
           "Leftover {dish} keeps for {days} days in the fridge when it is stored in a sealed container.",
           "Taste as you go, because a pinch of {ingredient} can rescue {dish} that tastes flat.",
           "My grandmother made {dish} every {weekday}, always in the same battered {pan}.",
           "Chopping everything before you start saves time, especially for {dish}, which is ready in about {minutes} "
           "minutes.",
           "For a quick {weekday} dinner, {dish} with {ingredient} is hard to beat.",
           "A {tool} is worth the money if you make {dish} more than once a month.",
           "Let {dish} rest for a few minutes before serving, because the flavors settle as it cools slightly.",
           "Serve the {dish} warm, with {ingredient} on the side for anyone who wants more flavor.",
           "Recipes for {dish} vary from region to region, and in {city} every family seems to have its own.",
           "Weighing ingredients instead of using cups gives more consistent results with {dish}.",
           "When {ingredient} is hard to find, {ingredient2} works as a substitute in {dish}.",
           "Cooking {dish} for {n} people takes only a little longer than cooking it for two.",
           "The first time I made {dish}, I used far too much {ingredient} and learned to measure carefully.",
           "A recipe for {dish} from {city} calls for {ingredient}, a {pan} and very little else.",
           "Children can help with {dish}: stirring, tasting and setting the table all count.",
           "Buy {ingredient} at a market if you can, because it is fresher and often cheaper.",
           "The smell of {dish} on a cold {month} evening is hard to beat.",
           "Double the recipe for {dish} and freeze half for a busy {weekday}."),
          {"dish": ("risotto", "lentil soup", "banana bread", "vegetable curry", "roast chicken", "tomato sauce",
                    "apple pie", "fried rice", "minestrone", "shortbread", "beef chili", "focaccia", "gazpacho",
                    "mushroom omelette", "potato gratin", "lemon tart"),
           "ingredient": ("garlic", "fresh basil", "smoked paprika", "lemon zest", "brown butter", "grated ginger",
                          "toasted cumin", "wine vinegar", "sea salt", "black pepper", "parmesan",
                          "coconut milk", "fresh thyme", "chopped parsley", "honey"),
           "pan": ("cast-iron skillet", "Dutch oven", "frying pan", "saucepan", "wok", "roasting tin"),
           "tool": ("stand mixer", "food processor", "sharp chef's knife", "digital scale", "cast-iron skillet",
                    "Dutch oven"),
           "heat": range(2, 9), "days": range(2, 6), "temp": range(160, 235, 5)}),
    Topic("hiking", "hiking in the mountains", ("trail", "region"),
          ("A day on {trail}", "Hiking in {region}: what to pack", "Notes from {km} kilometers in {region}",
           "Trail report: {trail}"),
          ("The walk along {trail} took us about {hours} hours, with roughly {m} meters of climbing.",
           "Never set out without {gear}, even when the forecast looks perfect.",
           "In {region}, the weather can change within an hour, so pack {gear} and {gear2}.",
           "We started at dawn on {weekday} and reached the high point of {trail} before noon.",
           "A route of {km} kilometers sounds short, but with {m} meters of ascent it fills most of a day.",
           "Locals in {region} recommend {trail} in {month}, when the crowds have gone.",
           "Drink before you feel thirsty and eat a small snack every {snack} minutes on a long climb.",
           "Our group of {n} walkers split up at the junction, and the faster half waited by the river.",
           "Tell someone your route and expected return time before hiking {trail} alone.",
           "The descent from {trail} is steep and loose, so trekking poles save your knees.",
           "I keep {gear} in the top pocket of my pack so that I can reach it without stopping.",
           "After {km} kilometers the path leaves the trees and the view opens across {region}.",
           "Wet rock is the most common cause of slips, so slow down whenever the trail turns dark and shiny.",
           "Camping near {trail} requires a permit in {month}, and the campsites fill up quickly.",
           "On our last trip to {region} we carried {gear} for {n} days and never needed it, which is exactly the "
           "point.",
           "The first {km} kilometers of {trail} follow an old stone wall through sheep pastures.",
           "We met only {n} other walkers on {trail} all day.",
           "In {month} the days in {region} are short, so start early and carry {gear}.",
           "The hut at the top of {trail} sells soup and hot tea from {month} onward.",
           "A good pair of boots matters more than any other piece of kit.",
           "Our guide in {region} had walked {trail} more than {count} times."),
          {"trail": ("the ridge trail above the lake", "the old mining road", "the coastal path",
                     "the canyon rim trail", "the river trail", "the forest loop", "the north face route",
                     "the shepherd's path"),
           "gear": ("a rain jacket", "a headlamp", "trekking poles", "a paper map", "extra socks", "a water filter",
                    "a first-aid kit", "sunscreen", "a warm hat", "a compass"),
           "region": ("the Alps", "the Scottish Highlands", "the Rocky Mountains", "Patagonia", "the Dolomites",
                      "the Appalachians", "the Pyrenees", "the Lake District", "the Cascades", "the Tatra Mountains"),
           "m": range(200, 1600, 50), "snack": range(30, 95, 15)}),
    Topic("astronomy", "stargazing", ("city", "instrument"),
          ("Looking up: {sky_object} this {month}", "A beginner's night with {instrument}", "Stargazing near {city}",
           "What to see in the {month} sky"),
          ("On a clear night in {month}, {sky_object} is easy to find even from a small town.",
           "Through {instrument}, {sky_object} looks far more detailed than it does to the naked eye.",
           "Let your eyes adjust to the dark for at least {dark} minutes before you start observing.",
           "Our astronomy club meets every {weekday} at {hour} p.m. on the hill outside {city}.",
           "Light pollution from {city} hides most faint stars, so we drive about {km} kilometers north.",
           "A red flashlight keeps your night vision intact while you read a star chart.",
           "Last {month} we counted {n} meteors in an hour, which is a good rate for a suburban sky.",
           "Beginners often buy a large telescope first, but {instrument} is easier to carry and set up.",
           "The best time to look at {sky_object} is when it is high above the horizon, away from the haze.",
           "Light from the Sun takes a little more than eight minutes to reach Earth.",
           "Planets shine with a steady light, while stars twinkle because of turbulence in our atmosphere.",
           "I photographed {sky_object} with {instrument} and a {n}-second exposure.",
           "Astronomers measure distances to nearby stars by watching how they shift as Earth orbits the Sun.",
           "Dress warmly, because standing still for {hours} hours on a {month} night gets cold very quickly.",
           "From {city}, {sky_object} rises in the east around {hour} p.m. this {month}.",
           "A simple star chart and {instrument} are all a beginner needs.",
           "The club in {city} lends {instrument} to new members for a {weeks}-week trial.",
           "Clouds rolled in after {minutes} minutes, so we packed up and drove home.",
           "Sketching {sky_object} at the eyepiece trains you to notice fine detail.",
           "The Moon washes out faint objects, so plan deep-sky sessions around the new Moon."),
          {"sky_object": ("Jupiter", "Saturn", "the Andromeda Galaxy", "the Orion Nebula", "Mars", "the Pleiades",
                          "Venus", "the Moon", "the Milky Way", "the Great Bear"),
           "instrument": ("a pair of binoculars", "a small refractor", "a reflecting telescope",
                          "a Dobsonian telescope", "an old family telescope"),
           "hour": range(8, 12), "dark": range(15, 35, 5)}),
    Topic("gardening", "growing vegetables", ("plant", "city"),
          ("Growing {plant} in {city}", "A gardener's diary: {month}", "How I grow {plant}",
           "Simple tips for {plant}"),
          ("Sow {plant} in {month}, once the soil has warmed up and the risk of frost has passed.",
           "Dig plenty of {soil} into the bed before planting {plant}, and water it well.",
           "Space {plant} about {cm} centimeters apart so that air can move between the plants.",
           "Slugs love young {plant}, so check the bed every evening for the first {weeks} weeks.",
           "My neighbor grows {plant} and {plant2} against a south-facing wall in {city}.",
           "A thick layer of {soil} keeps weeds down and holds moisture during dry spells.",
           "Plants such as {plant} need at least {sun} hours of direct sun a day.",
           "Water in the early morning so that the leaves of {plant} dry before evening.",
           "Harvest {plant} regularly, because picking encourages the plants to produce more.",
           "Rotating crops each year helps keep soil-borne diseases away from {plant}.",
           "Our community garden in {city} has {n} raised beds, and {plant} is the most popular crop.",
           "Seedlings of {plant} should be hardened off for about {weeks} weeks before they go outside.",
           "Pinch out the tips of {plant} in {month} to get bushier growth.",
           "A simple compost heap turns kitchen scraps into rich soil within a year.",
           "Last {month} a late frost killed half of my {plant}, so now I wait a little longer.",
           "I grow {plant} in large pots on a balcony in {city}, and they do surprisingly well.",
           "Save seeds from your best {plant} and sow them again next spring.",
           "A rain barrel of {liters} liters covers most of the watering for a small garden.",
           "Companion planting {plant} next to {plant2} can keep some pests away.",
           "Weeding for {minutes} minutes every {weekday} is easier than a long session once a month."),
          {"plant": ("tomatoes", "basil", "lavender", "runner beans", "courgettes", "roses", "strawberries", "garlic",
                     "sunflowers", "kale", "sweet peppers", "marigolds", "potatoes", "lettuce"),
           "soil": ("compost", "well-rotted manure", "leaf mould", "bark mulch", "garden compost"),
           "cm": range(10, 80, 5), "sun": range(4, 9), "liters": range(100, 500, 50)}),
    Topic("sports", "playing a team sport", ("sport", "city"),
          ("Club news: {sport} in {city}", "Match report from {city}", "Why I took up {sport}",
           "Training tips for {sport}"),
          ("Our local {sport} club trains every {weekday} evening, and new members are always welcome.",
           "The match in {city} ended {score} after a tense finish.",
           "Good {sport} players spend as much time on footwork as on anything else.",
           "{person} has coached {sport} for {n} years and still arrives first at every session.",
           "Warming up for at least {warm} minutes reduces the risk of pulled muscles.",
           "The youth {sport} league in {city} now has {n} teams, twice as many as a decade ago.",
           "Rest days matter: muscles rebuild and get stronger between training sessions, not during them.",
           "In {sport}, a calm head in the final minutes often decides the result.",
           "The crowd of about {attendance} fans stayed on their feet for the whole second half.",
           "After the season ended in {month}, the team spent {weeks} weeks working on fitness.",
           "Watching video of past games helps {sport} players spot patterns they miss in the moment.",
           "{person} scored twice in the final {late} minutes to turn the game around.",
           "Many adults take up {sport} in their forties and find it is the best way to stay fit.",
           "Our team traveled {km} kilometers to {city2} for the regional final on {weekday}.",
           "Our {sport} team lost {score} on {weekday}, but the young players showed real promise.",
           "{person} joined the {sport} club in {city} at the age of {age}.",
           "Tickets for the final in {city} sold out within {hours} hours.",
           "Stretching after a match matters as much as warming up before it.",
           "The {sport} season in {city} runs from {month} to {month2}.",
           "Volunteers keep the club running, from washing kits to driving players to away games."),
          {"sport": ("football", "basketball", "tennis", "volleyball", "hockey", "rugby", "handball", "table tennis",
                     "cricket", "water polo"),
           "score": ("1-0", "2-1", "3-2", "0-0", "2-2", "4-1", "1-1", "3-1"),
           "attendance": range(800, 40000, 100), "warm": range(10, 25, 5), "late": range(5, 20), "age": range(6, 60)}),
    Topic("music", "learning a musical instrument", ("instrument", "city"),
          ("Learning the {instrument} as an adult", "Concert notes: {composer} in {city}", "Practice habits that work",
           "Why I love {genre}"),
          ("Learning the {instrument} as an adult is slower than as a child, but steady practice pays off.",
           "Practice for {practice} minutes every day rather than for {hours} hours once a week.",
           "Our band plays {genre} on {weekday} nights at a small cafe in {city}.",
           "Start slowly with a metronome at {bpm} beats per minute and raise the tempo only when the passage is "
           "clean.",
           "Many players of the {instrument} learn arrangements of pieces by {composer}.",
           "Listening to recordings of {genre} trains your ear as much as any exercise.",
           "The concert in {city} opened with a piece by {composer} and ended with an encore of {genre}.",
           "A good teacher will correct your posture on the {instrument} before bad habits set in.",
           "Our choir of {singers} singers rehearses in an old church with wonderful acoustics.",
           "Tuning the {instrument} before every session is a habit worth building early.",
           "In {genre}, players learn to listen closely to one another.",
           "Recording yourself once a week is a humbling but effective way to hear your progress.",
           "The festival in {month} brings {n} ensembles to {city} for three days of free concerts.",
           "I found an old {instrument} at a market in {city} and had it restored for about {price} dollars.",
           "My first {instrument} teacher in {city} made me play scales for {short} minutes before every lesson.",
           "Playing {genre} with friends every {weekday} is the highlight of my week.",
           "A second-hand {instrument} is a sensible choice until you know you will stick with it.",
           "Breaking a difficult passage into small pieces makes it far less intimidating.",
           "Our teacher asks us to listen to at least one recording of {composer} each week.",
           "The school orchestra in {city} has {singers} players and rehearses twice a week."),
          {"instrument": ("piano", "violin", "acoustic guitar", "cello", "banjo", "trumpet", "flute", "saxophone",
                          "clarinet", "double bass"),
           "genre": ("jazz", "folk music", "bluegrass", "swing", "bossa nova", "blues", "chamber music", "gospel"),
           "composer": ("Bach", "Mozart", "Chopin", "Debussy", "Beethoven", "Vivaldi", "Schubert", "Haydn"),
           "bpm": range(60, 161, 4), "practice": range(15, 65, 5), "short": range(5, 16), "singers": range(12, 80)}),
    Topic("history", "local history", ("era", "city"),
          ("Traces of {era} in {city}", "What {artifact} tells us", "A short history walk through {city}",
           "Rethinking {era}"),
          ("Historians studying {era} rely heavily on sources such as {artifact}.",
           "The museum in {city} holds {artifact} that was found during building work in {found}.",
           "Life in {era} was shaped by trade, religion and the seasons far more than by politics.",
           "Studying {artifact} from {era} can reveal how ordinary people lived.",
           "The old town of {city} still follows a street plan laid out centuries ago.",
           "Archaeologists spent {n} seasons excavating the site before publishing their findings.",
           "Many of the buildings we admire today were considered modern and even ugly when they were built.",
           "Our guide in {city} explained how the river shaped the growth of the town for centuries.",
           "A single {artifact} can change what scholars believe about {era}.",
           "Local archives in {city} contain parish records going back to {year}.",
           "Textbooks often simplify {era} into a few dates, but the real story is slower and messier.",
           "The exhibition brings together {count} objects from {era}, several of them shown for the first time.",
           "Oral histories recorded in the {decade}s preserve memories that no document captured.",
           "Visitors to {city} can join a guided walk through the historic center on {weekday} afternoons.",
           "In {year}, a fire destroyed much of the old market in {city}, and the town was rebuilt in stone.",
           "Coins from {era} still turn up in fields near {city} after heavy rain.",
           "A diary written in {year} describes daily life in {city} in remarkable detail.",
           "Museums increasingly invite local people to help interpret objects from {era}.",
           "The street names of {city} still record the trades that once filled them.",
           "Historians disagree about how quickly {era} came to an end."),
          {"era": ("ancient Rome", "the Ming dynasty", "medieval Venice", "the Industrial Revolution",
                   "the Renaissance", "the Viking Age", "the Ottoman Empire", "ancient Egypt", "the Hanseatic League",
                   "the Byzantine Empire"),
           "artifact": ("a bronze coin", "a merchant's ledger", "a stone inscription", "a ship's log",
                        "a hand-drawn map", "a bundle of letters", "a tax register", "a pottery shard"),
           "year": range(1200, 1900), "found": range(1950, 2021), "decade": range(1950, 2000, 10)}),
    Topic("pets", "caring for a pet", ("pet", "city"),
          ("Living with a {pet}", "What our {pet} taught us", "A first-time owner's guide to the {pet}",
           "Shelter stories from {city}"),
          ("A young {pet} needs more attention than most new owners expect.",
           "We adopted our {pet} from a shelter in {city} {n} years ago.",
           "Feed your {pet} at the same times every day, because animals like routine.",
           "A visit to the vet once a year catches most health problems early.",
           "Our {pet} sleeps for about {hours} hours in the afternoon and wakes up full of energy.",
           "Before bringing home a {pet}, check that your landlord allows animals.",
           "Training works best in short sessions of {session} minutes with plenty of rewards.",
           "A {pet} that is bored will often find its own entertainment, usually at the expense of the furniture.",
           "Fresh water should always be available, especially in {summer} when the days are hot.",
           "The animal shelter in {city} places around {count} pets with new families every year.",
           "Grooming your {pet} once a week is a good chance to check for cuts, ticks and lumps.",
           "My neighbor's {pet2} visits our garden every {weekday} morning.",
           "Older animals often need softer food and a warmer place to sleep.",
           "Pet insurance can cost around {price} dollars a year, depending on the age of the animal.",
           "Our {pet} was {age} months old when it came home, and it chewed everything in sight.",
           "Keep toxic plants and cleaning products well out of reach of a curious {pet}.",
           "A {pet} needs a quiet corner where it can retreat when visitors arrive.",
           "Microchipping your {pet} greatly improves the chance of getting it back if it is lost.",
           "We spend about {price} dollars a year on food and toys for our {pet}.",
           "Daily play keeps a {pet} fit and strengthens the bond with its owner."),
          {"pet": ("dog", "cat", "rabbit", "parrot", "hamster", "guinea pig", "tortoise", "ferret", "puppy", "kitten"),
           "summer": ("June", "July", "August"), "session": range(5, 16), "age": range(2, 12)}),
    Topic("photography", "taking better photos", ("subject", "city"),
          ("Shooting {subject} with {lens}", "A photo walk through {city}", "Better pictures of {subject}",
           "Lessons from a year of {subject}"),
          ("The best light for {subject} comes in the hour after sunrise and the hour before sunset.",
           "I shot most of the trip with {lens}, which kept my bag light.",
           "Set the shutter speed to at least 1/{shutter} of a second to freeze {subject}.",
           "A tripod lets you use exposures of {n} seconds or more for {subject} at night.",
           "Our photo walk through {city} on {weekday} produced over {count} pictures, and about ten were worth "
           "keeping.",
           "Fill the frame: most photos of {subject} improve when you step closer.",
           "Shooting in raw format gives you far more room to correct exposure later.",
           "The rule of thirds is a starting point, not a law, for composing {subject}.",
           "Clean your lens before every session, because a single fingerprint softens the whole image.",
           "For {subject}, an aperture of f/{aperture} gives enough depth of field.",
           "I spent {hours} hours waiting for the light to change over the harbor in {city}.",
           "Editing should take less time than shooting; if it does not, change how you shoot.",
           "Backing up photos to two separate drives protects years of work against a single failure.",
           "Many beginners buy new gear when {lens} and patience would do the job.",
           "I took my best picture of {subject} in {city} after waiting {minutes} minutes for a gap in the crowd.",
           "Raising the ISO to {iso} kept the shutter speed fast enough indoors.",
           "A polarizing filter deepens blue skies and cuts reflections from water.",
           "Studying the work of other photographers of {subject} is the fastest way to improve.",
           "On a trip to {city} I limited myself to {n} photos a day, which made every frame count.",
           "Overcast days are ideal for {subject} because the light is soft and even."),
          {"subject": ("street scenes", "portraits", "birds in flight", "landscapes", "architecture", "wildlife",
                       "city lights", "children at play"),
           "lens": ("a 35 mm prime lens", "a compact zoom", "an old 50 mm lens", "a wide-angle lens",
                    "a phone camera"),
           "shutter": range(250, 2001, 250), "aperture": ("2.8", "4", "5.6", "8", "11"),
           "iso": ("800", "1600", "3200", "6400")}),
)  # fmt: skip
GENERIC_SENTENCES = (
    "I learned most of this the hard way, over {n} years of trial and error.",
    "Friends often ask me where to start, and my answer is always the same: start small.",
    "None of this requires expensive equipment or special talent.",
    "The first attempt rarely goes to plan, and that is perfectly normal.",
    "If you only remember one thing from this post, make it the point about patience.",
    "A notebook helps: write down what worked and what did not.",
    "Local clubs and libraries are good places to find people who share the hobby.",
    "My {relative} got me started, and we still compare notes every {weekday}.",
    "Most mistakes are easy to fix if you notice them early.",
    "Some people prefer to learn alone, while others need the push of a group.",
    "Online videos are useful, but nothing replaces doing it yourself.",
    "I usually set aside a {weekday} afternoon for it, when the house is quiet.",
    "There is always more to learn, which is part of the fun.",
    "Questions and comments are welcome below.",
)
_GENERIC_VOCAB: dict[str, Pool] = {"relative": ("aunt", "uncle", "grandfather", "older sister", "neighbor", "cousin")}


def _focus(t: Topic, rng: Random) -> dict[str, str]:
    """One value per focus slot, kept through a document."""
    return {name: str(rng.choice(t.vocab.get(name, COMMON_VOCAB.get(name, ())))) for name in t.focus}


def topic_sentences(t: Topic, rng: Random, n: int, focus: Mapping[str, str] | None = None) -> list[str]:
    """Up to `n` filled sentences of a topic, each template at most once, all about one focus."""
    focus = focus if focus is not None else _focus(t, rng)
    order = list(range(len(t.sentences)))
    rng.shuffle(order)
    return [_fill(t.sentences[i], rng, t.vocab, focus) for i in order[:n]]


def general_text(t: Topic, rng: Random) -> str:
    """A 150-400-word general English document about one focus: a title and paragraphs of 3-5 sentences; no
    sentence template appears twice."""
    focus = _focus(t, rng)
    target = rng.randint(150, 400)
    topical = topic_sentences(t, rng, len(t.sentences), focus)
    generic = [_fill(s, rng, _GENERIC_VOCAB) for s in rng.sample(GENERIC_SENTENCES, rng.randint(1, 6))]
    sentences: list[str] = []
    while (topical or generic) and sum(map(_words, sentences)) < target:
        source = generic if generic and (not topical or rng.random() < 0.2) else topical
        sentences.append(source.pop())
    paragraphs, i = [], 0
    while i < len(sentences):
        k = rng.randint(3, 5)
        paragraphs.append(" ".join(sentences[i : i + k]))
        i += k
    return _fill(rng.choice(t.titles), rng, t.vocab, focus) + "\n\n" + "\n\n".join(paragraphs)


# ---------------------------------------------------------------------------------------------------------------
# German, French and Spanish pages (everyday and finance), written to be grammatical in every slot filling
# ---------------------------------------------------------------------------------------------------------------

NONENGLISH: dict[str, dict[str, Any]] = {
    "de": {
        "titles": ("Nachrichten aus {city}", "Neues aus der Region", "Tipps für das Wochenende in {city}"),
        "finance_titles": ("Wirtschaft: {company} legt Zahlen vor", "Börse am {weekday}", "Märkte und Unternehmen"),
        "general": (
            "In {city} scheint heute die Sonne, und am Nachmittag werden bis zu {temp} Grad erwartet.",
            "Am Wochenende findet in {city} ein großer Flohmarkt statt, auf dem rund {n} Händler ihre Waren anbieten.",
            "Wer gern wandert, sollte im {month} die Wege rund um {city} ausprobieren.",
            "Für dieses Rezept braucht man {small} Eier, etwas Mehl und eine Prise Salz.",
            "Die Stadtbibliothek von {city} hat ihre Öffnungszeiten verlängert und ist jetzt bis {hour} Uhr geöffnet.",
            "Der Zug nach {city} hatte heute Morgen etwa {n} Minuten Verspätung.",
            "Im Stadtpark von {city} wurden in diesem Frühjahr mehr als {n} neue Bäume gepflanzt.",
            "Am Abend spielte das Orchester in {city} Werke von Mozart und Beethoven vor ausverkauftem Haus.",
            "Für die Radtour von {city} nach {city2} sollte man ungefähr {small} Stunden einplanen.",
            "Der Verein sucht noch freiwillige Helfer für das Sommerfest am {day}. {month}.",
            "Im Museum von {city} ist noch bis Ende {month} eine Ausstellung über die Geschichte der Stadt zu sehen.",
            "Nach dem Regen der letzten Tage ist der Wasserstand des Flusses um {n} Zentimeter gestiegen.",
            "Die neue Bäckerei in der Altstadt von {city} öffnet schon um {early} Uhr morgens.",
            "Viele Familien aus {city} verbringen die Sommerferien an der Ostsee.",
            "Beim Stadtlauf am {weekday} gingen mehr als {n} Läuferinnen und Läufer an den Start.",
        ),
        "finance": (
            "Die {company} hat im Geschäftsjahr {year} einen Umsatz von {amount} Millionen Euro erzielt.",
            "Der Gewinn vor Steuern der {company} stieg im Vergleich zu {prev} um {pct} Prozent.",
            "Die Aktie der {company} schloss am {weekday} mit einem Plus von {pct} Prozent.",
            "Die Europäische Zentralbank beließ den Leitzins im {month} bei {rate} Prozent.",
            "Analysten von {bank} rechnen für {next} mit einem Umsatzwachstum von {pct} Prozent.",
            "Der Vorstand der {company} schlägt eine Dividende von {eur} Euro je Aktie vor.",
            "Wegen höherer Energiekosten sank die operative Marge der {company} im Jahr {year} auf {pct} Prozent.",
            "Die Nettoverschuldung der {company} lag Ende {year} bei {amount} Millionen Euro.",
            "Der DAX verlor am {weekday} {pct} Prozent, belastet von schwachen Konjunkturdaten aus {country}.",
            "Die {company} will bis {next} rund {n} neue Stellen in {city} schaffen.",
            "Im {month} übernahm die {company} einen Konkurrenten aus {city} für {amount} Millionen Euro.",
            "Die Inflationsrate in {country} lag im {month} bei {rate} Prozent.",
        ),
        "cities": ("Berlin", "München", "Hamburg", "Köln", "Wien", "Zürich", "Leipzig", "Dresden", "Bremen", "Graz"),
        "countries": ("Deutschland", "Österreich", "der Schweiz", "Frankreich", "China", "den USA"),
        "months": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                   "November", "Dezember"),
        "weekdays": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag"),
        "companies": tuple(f"{a}{b} {s}" for a in ("Nord", "Süd", "Rhein", "Alpen", "Elb", "Hanse")
                           for b in ("werk", "stahl", "energie", "chemie", "logistik") for s in ("AG", "SE")),
        "banks": ("der Deutschen Bank", "der Commerzbank", "der DZ Bank", "der UBS"),
    },
    "fr": {
        "titles": ("Nouvelles de {city}", "La vie locale", "Que faire ce week-end à {city} ?"),
        "finance_titles": ("Économie : {company} publie ses résultats", "La Bourse ce {weekday}",
                           "Marchés et entreprises"),
        "general": (
            "À {city}, le soleil brille aujourd'hui et les températures devraient atteindre {temp} degrés dans "
            "l'après-midi.",
            "Le marché du samedi matin à {city} attire chaque semaine près de {n} visiteurs.",
            "Pour préparer cette tarte, il faut {small} œufs, un peu de farine et une pincée de sel.",
            "La bibliothèque municipale de {city} est désormais ouverte jusqu'à {hour} heures.",
            "Le train pour {city} avait environ {n} minutes de retard ce matin.",
            "Au printemps, la mairie de {city} a planté plus de {n} arbres dans le parc central.",
            "Ce soir, l'orchestre de {city} joue des œuvres de Debussy et de Ravel devant une salle comble.",
            "Il faut compter environ {small} heures pour faire le trajet à vélo entre {city} et {city2}.",
            "Le musée de {city} présente jusqu'à la fin du mois de {month} une exposition consacrée à l'histoire de "
            "la ville.",
            "Après les pluies de la semaine dernière, le niveau de la rivière a monté de {n} centimètres.",
            "La nouvelle boulangerie du quartier ouvre ses portes dès {early} heures du matin.",
            "Beaucoup de familles de {city} passent leurs vacances d'été au bord de la mer.",
            "L'association cherche encore des bénévoles pour la fête du {day} {month}.",
            "Les randonneurs apprécient particulièrement les sentiers autour de {city} au mois de {month}.",
            "Plus de {n} coureurs ont pris le départ de la course populaire de {city} ce {weekday}.",
        ),
        "finance": (
            "{company} a réalisé un chiffre d'affaires de {amount} millions d'euros au cours de l'exercice {year}.",
            "Le bénéfice net de {company} a progressé de {pct} % par rapport à {prev}.",
            "L'action {company} a terminé la séance de {weekday} en hausse de {pct} %.",
            "La Banque centrale européenne a maintenu son taux directeur à {rate} % au mois de {month}.",
            "Les analystes de {bank} prévoient une croissance du chiffre d'affaires de {pct} % en {next}.",
            "Le conseil d'administration de {company} propose un dividende de {eur} € par action.",
            "En raison de la hausse des coûts de l'énergie, la marge opérationnelle de {company} est tombée à {pct} % "
            "en {year}.",
            "La dette nette de {company} atteignait {amount} millions d'euros à la fin de {year}.",
            "Le CAC 40 a cédé {pct} % ce {weekday}, pénalisé par des indicateurs économiques décevants en {country}.",
            "{company} prévoit de créer environ {n} emplois à {city} d'ici {next}.",
            "Au mois de {month}, {company} a racheté un concurrent basé à {city} pour {amount} millions d'euros.",
            "L'inflation en {country} s'est établie à {rate} % au mois de {month}.",
        ),
        "cities": ("Paris", "Lyon", "Marseille", "Bordeaux", "Toulouse", "Nantes", "Lille", "Strasbourg", "Genève",
                   "Bruxelles"),
        "countries": ("France", "Allemagne", "Belgique", "Suisse", "Chine", "Italie"),
        "months": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                   "novembre", "décembre"),
        "weekdays": ("lundi", "mardi", "mercredi", "jeudi", "vendredi"),
        "companies": tuple(f"{a} {b} SA" for a in ("Groupe", "Société", "Compagnie")
                           for b in ("Horizon", "Lumière", "Atlantique", "Provence", "Rivage", "Montclair", "Vallon",
                                     "Cévennes")),
        "banks": ("BNP Paribas", "la Société Générale", "Crédit Agricole", "Natixis"),
    },
    "es": {
        "titles": ("Noticias de {city}", "La vida en la ciudad", "Planes para el fin de semana en {city}"),
        "finance_titles": ("Economía: {company} presenta resultados", "La Bolsa este {weekday}",
                           "Mercados y empresas"),
        "general": (
            "En {city} hoy hace sol y por la tarde se esperan hasta {temp} grados.",
            "El mercado de los sábados en {city} atrae cada semana a unos {n} visitantes.",
            "Para esta receta se necesitan {small} huevos, un poco de harina y una pizca de sal.",
            "La biblioteca municipal de {city} ahora abre hasta las {hour}:00 horas.",
            "El tren a {city} llevaba unos {n} minutos de retraso esta mañana.",
            "Esta primavera el ayuntamiento de {city} plantó más de {n} árboles en el parque central.",
            "Esta noche la orquesta de {city} interpreta obras de Falla y Albéniz ante un público entusiasmado.",
            "Para ir en bicicleta de {city} a {city2} hay que calcular unas {small} horas.",
            "El museo de {city} presenta hasta finales de {month} una exposición sobre la historia de la ciudad.",
            "Tras las lluvias de la semana pasada, el nivel del río subió {n} centímetros.",
            "La nueva panadería del barrio abre a las {early} de la mañana.",
            "Muchas familias de {city} pasan las vacaciones de verano en la costa.",
            "La asociación todavía busca voluntarios para la fiesta del {day} de {month}.",
            "A los senderistas les encantan los caminos que rodean {city} en el mes de {month}.",
            "Más de {n} corredores tomaron la salida en la carrera popular de {city} este {weekday}.",
        ),
        "finance": (
            "{company} obtuvo una facturación de {amount} millones de euros en el ejercicio {year}.",
            "El beneficio neto de {company} aumentó un {pct} % con respecto a {prev}.",
            "Las acciones de {company} cerraron el {weekday} con una subida del {pct} %.",
            "El Banco Central Europeo mantuvo en {month} su tipo de interés de referencia en el {rate} %.",
            "Los analistas de {bank} prevén un crecimiento de las ventas del {pct} % en {next}.",
            "El consejo de administración de {company} propone un dividendo de {eur} euros por acción.",
            "Debido al aumento de los costes energéticos, el margen operativo de {company} cayó al {pct} % en {year}.",
            "La deuda neta de {company} se situaba en {amount} millones de euros al cierre de {year}.",
            "El IBEX 35 cedió un {pct} % este {weekday}, lastrado por unos datos económicos débiles de {country}.",
            "{company} prevé crear unos {n} empleos en {city} antes de {next}.",
            "En {month}, {company} compró a un competidor de {city} por {amount} millones de euros.",
            "La inflación en {country} se situó en el {rate} % en {month}.",
        ),
        "cities": ("Madrid", "Barcelona", "Sevilla", "Valencia", "Bilbao", "Zaragoza", "Málaga", "Granada",
                   "Salamanca", "Córdoba"),
        "countries": ("España", "Francia", "Alemania", "Portugal", "China", "Italia"),
        "months": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
                   "noviembre", "diciembre"),
        "weekdays": ("lunes", "martes", "miércoles", "jueves", "viernes"),
        "companies": tuple(f"{a} {b}" for a in ("Grupo", "Corporación", "Industrias")
                           for b in ("Ibérica", "Solaris", "Cantábrico", "Meseta", "Levante", "Atlántida", "Tajo",
                                     "Sierra Nevada")),
        "banks": ("BBVA", "Banco Santander", "CaixaBank", "Bankinter"),
    },
}  # fmt: skip


def _decimal(value: float, lang: str) -> str:
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang in ("de", "fr", "es") else text


def nonenglish_text(lang: str, finance: bool, rng: Random) -> str:
    bank = NONENGLISH[lang]
    year = rng.randint(2015, 2024)
    vocab: dict[str, Pool] = {
        "city": bank["cities"],
        "country": bank["countries"],
        "month": bank["months"],
        "weekday": bank["weekdays"],
        "company": bank["companies"],
        "bank": bank["banks"],
        "n": range(12, 900),
        "small": range(2, 7),
        "temp": range(14, 36),
        "hour": range(19, 23),
        "early": range(5, 8),
        "day": range(1, 29),
        "amount": range(120, 9800),
        "year": (str(year),),
        "prev": (str(year - 1),),
        "next": (str(year + 1),),
        "pct": tuple(_decimal(x / 10, lang) for x in range(5, 250)),
        "rate": tuple(_decimal(x / 10, lang) for x in range(5, 60)),
        "eur": tuple(f"{x / 100:.2f}".replace(".", ",") for x in range(40, 480, 5)),
    }
    if finance:
        pool = bank["finance"]
        n_main, n_other = rng.randint(5, 8), rng.randint(0, 2)
        title = bank["finance_titles"]
    else:
        pool = bank["general"]
        n_main, n_other = rng.randint(5, 9), 0
        title = bank["titles"]
    order = list(range(len(pool)))
    rng.shuffle(order)
    sentences = [_fill(pool[i], rng, vocab) for i in order[:n_main]]
    sentences += [_fill(s, rng, vocab) for s in rng.sample(bank["general"], n_other)]
    return _fill(rng.choice(title), rng, vocab) + "\n\n" + " ".join(sentences)


# ---------------------------------------------------------------------------------------------------------------
# Spam and boilerplate
# ---------------------------------------------------------------------------------------------------------------

_SPAM_KEYWORDS = (
    "cheap loans", "fast cash", "best rates", "no credit check", "crypto signals", "free bonus", "make money online",
    "work from home", "guaranteed profit", "instant approval", "casino bonus", "weight loss", "cheap pills",
    "forex robot", "payday loans",
)  # fmt: skip
_SPAM_SHOUTS = (
    "BUY NOW!!! LIMITED OFFER!!!",
    "WORK FROM HOME AND EARN $5000 A WEEK GUARANTEED",
    "YOU HAVE BEEN SELECTED AS TODAY'S WINNER",
    "100% FREE - NO CREDIT CARD NEEDED - ACT NOW",
    "DOCTORS HATE THIS ONE WEIRD TRICK",
    "DOUBLE YOUR BITCOIN IN 24 HOURS",
)
_SPAM_DOMAINS = ("best-deals-now.biz", "free-prize.xyz", "cashfast-online.top", "win-big.click", "cheap-pills.info")
_SPAM_SYMBOLS = ("$$$", "!!!", ">>>", "<<<", "###", "***", "+++", "\u2605\u2605\u2605", "\u2192\u2192")
_NAV_MENUS = (
    "Home | About Us | Services | Blog | Contact | Login | Register",
    "Home | Deals | Coupons | Top 10 | Contact",
    "Home | Markets | Crypto | Signals | VIP Club",
)
_COOKIE_NOTICES = (
    "This site uses cookies to improve your experience. By continuing to browse you accept our use of cookies.",
    "Accept all cookies",
    "We value your privacy. Manage preferences | Accept | Reject",
)
_LOREM = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor",
    "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim", "minim", "veniam",
)  # fmt: skip


def spam_text(rng: Random) -> str:
    """A page made of 3-6 spam devices: stuffing, shouting, repeated lines, 'click here', symbols, menus, lorem."""

    def stuffing() -> str:
        keys = rng.sample(_SPAM_KEYWORDS, 3)
        return " ".join(rng.choice(keys) for _ in range(rng.randint(12, 30)))

    def repeated() -> str:
        return "\n".join([rng.choice(_SPAM_SHOUTS)] * rng.randint(3, 6))

    def click() -> str:
        return f"Click here to claim your {rng.choice(_SPAM_KEYWORDS)} >>> www.{rng.choice(_SPAM_DOMAINS)}"

    def symbols() -> str:
        return " ".join(rng.choice(_SPAM_SYMBOLS) for _ in range(rng.randint(5, 15)))

    def lorem() -> str:
        return _cap(" ".join(rng.choice(_LOREM) for _ in range(rng.randint(20, 60)))) + "."

    devices = [
        stuffing,
        repeated,
        click,
        symbols,
        lorem,
        lambda: rng.choice(_NAV_MENUS),
        lambda: rng.choice(_COOKIE_NOTICES),
        lambda: rng.choice(_SPAM_SHOUTS),
    ]
    chosen = rng.sample(devices, rng.randint(3, 6))
    return "\n\n".join(device() for device in chosen)


BOILERPLATE_HEAD = (
    "Home | Markets | Economy | Opinion | Contact",
    "Advertisement",
    "Sign up for free alerts",
    "This site uses cookies to improve your experience.",
)
BOILERPLATE_TAIL = (
    "Subscribe to our newsletter for daily market updates.",
    "All rights reserved.",
    "\u00a9 2024 Market Ledger Media",
    "Share on Twitter",
    "Follow us on LinkedIn",
    "Click here to read more stories like this.",
    "Accept all cookies",
)


def add_boilerplate(text: str, rng: Random, transform: Callable[[str], str] = str) -> tuple[str, list[str]]:
    """Navigation lines on top and footer lines below, each on its own line (passed through `transform`, e.g. the
    page's mis-decoding); returns the text and the inserted lines."""
    head = [transform(line) for line in rng.sample(BOILERPLATE_HEAD, rng.randint(0, 2))]
    tail = [transform(line) for line in rng.sample(BOILERPLATE_TAIL, rng.randint(1, 3))]
    return "\n".join([*head, text, *tail]), head + tail


# ---------------------------------------------------------------------------------------------------------------
# Finance web articles: stock spotlights, market wraps and personal-finance advice
# ---------------------------------------------------------------------------------------------------------------

_SPOTLIGHT_TITLES = (
    "Stock spotlight: {short} ({ticker})",
    "Is {short} a buy after its {year} results?",
    "{short}: what investors should know",
    "A closer look at {short}",
)
_SPOTLIGHT = (
    ("{name} ({ticker}) has been on many investors' watch lists this year.",
     "Few {sector} names have drawn as much attention as {short} lately."),
    ("The company, based in {hq}, sells {products}.", "Based in {hq}, {short} makes its money from {products}."),
    ("In fiscal {year}, revenue came in at {revenue}, {up_down} {growth}% from the year before.",
     "Revenue for {year} was {revenue}, a {growth}% {change} on {prev}."),
    ("Operating margin was {margin}%, and diluted earnings per share reached {eps}.",
     "The company earned {eps} per diluted share on an operating margin of {margin}%."),
    ("At a share price of ${price}, the stock trades at roughly {pe} times earnings.",
     "With the shares at ${price}, the price-to-earnings ratio is about {pe}."),
    ("The balance sheet shows {cash} in cash against {debt} of total debt.",
     "Total debt stood at {debt} at year-end, with {cash} of cash on hand."),
    ("Bulls point to {driver}, while bears worry about {headwind}.",
     "Supporters cite {driver}; skeptics point to {headwind}."),
    ("Chief executive {ceo} has set out a plan built on {priority}.",
     "Under chief executive {ceo}, the company is prioritizing {priority}."),
    ("As always, do your own research before buying any individual stock.",
     "This article is for information only and is not investment advice."),
)  # fmt: skip
_WRAP_TITLES = (
    "Markets wrap: stocks {dir_word} as investors weigh {macro}",
    "Stock market today: {weekday} recap",
    "Wall Street {dir_word} on {macro}",
)
_WRAP = (
    "Stocks {dir_word} on {weekday} as investors weighed {macro}.",
    "The S&P 500 {idx_dir} {idx} percent, while the Nasdaq Composite {idx_dir2} {idx2} percent.",
    "The yield on the 10-year Treasury note moved to {y10} percent.",
    "Among individual stocks, {s1} {s1_dir} {s1_pct} percent after {s1_reason}.",
    "{s2} {s2_dir} {s2_pct} percent in heavy trading.",
    "Oil prices settled at ${oil} a barrel, and gold traded near ${gold} an ounce.",
    "{sector1} shares led the market, while {sector2} stocks lagged.",
    "Traders are now looking ahead to {upcoming}.",
    "Trading volume was about {volume} billion shares, {vol_cmp} the recent average.",
)
_MACROS = (
    "the latest inflation report",
    "comments from central bank officials",
    "a strong jobs report",
    "weak manufacturing data",
    "falling bond yields",
    "rising oil prices",
    "a batch of earnings reports",
)
_UPCOMING = (
    "next week's inflation data",
    "the central bank's policy meeting",
    "the monthly jobs report",
    "earnings from large banks",
    "retail sales figures",
)
_REASONS = (
    "quarterly results beat forecasts",
    "an analyst upgrade",
    "a guidance cut",
    "news of an acquisition",
    "a disappointing outlook",
    "a new product launch",
)
_PF_TITLES = ("{tip_title}", "Personal finance: {tip_title}", "Money matters: {tip_title}")
_PF_TIP_TITLES = (
    "How to build an emergency fund",
    "Five habits of good savers",
    "Paying down debt faster",
    "Why low-cost index funds win",
    "Getting started with retirement saving",
)
_PF = (
    "Financial planners often suggest keeping {months} months of expenses in an emergency fund.",
    "If you spend {spend} a month, that means a cushion of about {cushion}.",
    "A credit card charging {apr}% a year turns a {balance} balance into roughly {balance_after} after a year if "
    "nothing is paid.",
    "Index funds with annual fees of {fee}% leave more of the return in your pocket than funds charging {fee2}%.",
    "Saving {monthly} a month at {ret}% a year grows to roughly {fv} after {years} years.",
    "The 50/30/20 rule splits take-home pay into needs, wants and savings.",
    "Automating transfers on payday makes saving the default rather than a decision.",
    "Paying off the highest-interest debt first saves the most money over time.",
    "Check your credit report at least once a year for errors.",
    "If your employer matches contributions up to {match}% of salary, contribute at least that much.",
    "Keep investments you will need within {horizon} years out of the stock market.",
    "Rebalancing once a year keeps a portfolio close to its target mix of stocks and bonds.",
    "Someone earning {salary} a year who saves {save_pct}% of it puts away {saved} annually.",
    "Moving {monthly} into savings every payday adds up to {yearly} a year.",
    "A car loan of {loan} at {loan_rate}% over {loan_years} years costs far more than the sticker price suggests.",
    "Cancelling a {sub} monthly subscription saves {sub_year} a year.",
    "Inflation of {infl}% a year halves the purchasing power of cash in about {halving} years.",
    "Pay yourself first: treat savings as a bill that is due every month.",
    "Keep at least {buffer} in your checking account to avoid overdraft fees.",
    "Review insurance policies once a year, because premiums often rise quietly.",
    "A target-date fund shifts gradually from stocks to bonds as retirement approaches.",
    "Paying {pay} a month, a {balance} balance is cleared in about {months_to_pay} months before interest.",
)


def web_finance_text(companies: Sequence[Company], last_year: int, rng: Random) -> tuple[str, dict[str, Any]]:
    """A finance web article: a stock spotlight on a world company, a market wrap or personal-finance advice."""
    kind = rng.choice(("spotlight", "spotlight", "wrap", "advice"))
    if kind == "spotlight":
        c = rng.choice(companies)
        year = rng.randint(companies[0].facts[1].year, last_year)
        f, p = c.year(year), c.year(year - 1)
        growth = f.revenue / p.revenue - 1
        price = f.eps * rng.uniform(8, 40)
        ctx = {
            "name": c.name, "short": c.short, "ticker": c.ticker, "sector": c.sector.name.lower(), "hq": c.hq,
            "products": _join(list(c.products[:2])), "year": year, "prev": p.year, "revenue": _money(f.revenue),
            "up_down": "up" if growth >= 0 else "down", "change": "rise" if growth >= 0 else "decline",
            "growth": f"{abs(growth) * 100:.1f}", "margin": f"{f.operating_margin:.1f}", "eps": _dollars(f.eps),
            "price": f"{price:.2f}", "pe": f"{price / f.eps:.1f}", "cash": _money(f.cash),
            "debt": _money(f.total_debt), "driver": rng.choice(c.sector.drivers),
            "headwind": rng.choice(c.sector.headwinds), "ceo": f.ceo, "priority": rng.choice(_PRIORITIES),
        }  # fmt: skip
        lines = [rng.choice(pair).format(**ctx) for pair in _SPOTLIGHT if rng.random() < 0.85]
        title = rng.choice(_SPOTLIGHT_TITLES).format(**ctx)
        return title + "\n\n" + " ".join(lines), {"doc_type": "web_finance", "article": kind, "company": c.name}
    if kind == "wrap":
        up = rng.random() < 0.5
        s1, s2 = rng.sample(list(companies), 2)
        sectors = rng.sample([s.name for s in SECTORS], 2)
        ctx = {
            "dir_word": "rose" if up else "fell", "weekday": rng.choice(WEEKDAYS), "macro": rng.choice(_MACROS),
            "idx_dir": "gained" if up else "lost", "idx": f"{rng.uniform(0.1, 2.5):.1f}",
            "idx_dir2": rng.choice(("added", "gained", "slipped", "dropped")), "idx2": f"{rng.uniform(0.1, 3):.1f}",
            "y10": f"{rng.uniform(1.5, 5.5):.2f}", "s1": s1.short, "s1_dir": rng.choice(("jumped", "fell", "rose")),
            "s1_pct": f"{rng.uniform(1, 15):.1f}", "s1_reason": rng.choice(_REASONS), "s2": s2.short,
            "s2_dir": rng.choice(("climbed", "slid", "edged up", "dropped")), "s2_pct": f"{rng.uniform(0.5, 9):.1f}",
            "oil": f"{rng.uniform(45, 110):.2f}", "gold": f"{rng.uniform(1500, 2600):,.0f}", "sector1": sectors[0],
            "sector2": sectors[1].lower(), "upcoming": rng.choice(_UPCOMING), "volume": f"{rng.uniform(8, 16):.1f}",
            "vol_cmp": rng.choice(("above", "below", "in line with")),
        }  # fmt: skip
        lines = [s.format(**ctx) for s in _WRAP if rng.random() < 0.85]
        title = rng.choice(_WRAP_TITLES).format(**ctx)
        return title + "\n\n" + " ".join(lines), {"doc_type": "web_finance", "article": kind, "company": None}
    spend = rng.randint(15, 60) * 100
    months = rng.randint(3, 6)
    balance = rng.randint(10, 80) * 100
    apr = rng.randint(16, 29)
    monthly, ret, years = rng.randint(1, 10) * 50, rng.randint(4, 8), rng.randint(10, 35)
    r = ret / 100 / 12
    salary, save_pct = rng.randint(30, 150) * 1000, rng.randint(5, 25)
    sub, infl, pay = rng.choice((7.99, 9.99, 12.99, 14.99, 19.99)), rng.randint(2, 9), rng.randint(2, 20) * 25
    ctx = {
        "tip_title": rng.choice(_PF_TIP_TITLES), "months": months, "spend": _dollars(spend, False),
        "cushion": _dollars(spend * months, False), "apr": apr, "balance": _dollars(balance, False),
        "balance_after": _dollars(balance * (1 + apr / 100), False), "fee": f"{rng.uniform(0.03, 0.2):.2f}",
        "fee2": f"{rng.uniform(0.8, 1.5):.2f}", "monthly": _dollars(monthly, False), "ret": ret,
        "fv": _dollars(monthly * ((1 + r) ** (12 * years) - 1) / r, False), "years": years,
        "match": rng.randint(3, 6), "horizon": rng.randint(2, 5), "salary": _dollars(salary, False),
        "save_pct": save_pct, "saved": _dollars(salary * save_pct / 100, False),
        "yearly": _dollars(monthly * 12, False), "loan": _dollars(rng.randint(8, 60) * 1000, False),
        "loan_rate": f"{rng.uniform(3, 12):.1f}", "loan_years": rng.randint(3, 7), "sub": _dollars(sub),
        "sub_year": _dollars(sub * 12), "infl": infl, "halving": f"{72 / infl:.0f}",
        "buffer": _dollars(rng.randint(2, 20) * 50, False), "pay": _dollars(pay, False),
        "months_to_pay": math.ceil(balance / pay),
    }  # fmt: skip
    order = list(range(len(_PF)))
    rng.shuffle(order)
    lines = [_PF[i].format(**ctx) for i in order[: rng.randint(5, 8)]]
    title = rng.choice(_PF_TITLES).format(**ctx)
    return title + "\n\n" + " ".join(lines), {"doc_type": "web_finance", "article": kind, "company": None}


# ---------------------------------------------------------------------------------------------------------------
# Instruction and evaluation items. Every generator returns an Item; `task` and the task's fields go in metadata.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    prompt: str
    answer: str  # the gold answer of an eval item
    response: str  # the assistant turn of an instruction record
    meta: dict[str, Any]
    query: str = ""  # eval items: the content without the instruction template, a verbatim part of the prompt


# --- held-out evaluation items: the decontamination query and the training n-grams it must avoid -----------------
#
# Decontamination (curation/decontam.py, after lm-evaluation-harness's `doc_to_decontamination_query`) looks for an
# eval item's query, plus its first answer words, in training data: word 13-grams, or the whole text when it has
# 8-12 words. An eval item is held out when no training record shares such an n-gram with it, so eval items are
# written with content reserved for evaluation (EVAL_TASK_STEMS, held-out assets, phrasings and descriptions), and
# every candidate is checked against the training text that exists when evaluation is generated (`TrainingIndex`).

QUERY_NGRAM = 13  # words per n-gram (GPT-3's 13-grams)
MIN_QUERY_WORDS = 8  # a query shorter than QUERY_NGRAM is matched whole, down to this many words
QUERY_ANSWER_WORDS = QUERY_NGRAM - 1  # answer words after the query: n-grams across the boundary are indexed too
_QUERY_WORD = re.compile(r"[a-z0-9]+")


def query_words(text: str) -> list[str]:
    """Words as decontamination compares them: lowercase, punctuation gone, digits kept."""
    return _QUERY_WORD.findall(text.lower())


def query_ngrams(query: str, answer: str) -> list[tuple[str, ...]]:
    """The n-grams of the query alone and of the query followed by the first answer words: QUERY_NGRAM words, or
    the whole text when shorter but at least MIN_QUERY_WORDS words."""
    grams: dict[tuple[str, ...], None] = {}
    q = query_words(query)
    for tokens in (q, q + query_words(answer)[:QUERY_ANSWER_WORDS]):
        if len(tokens) >= MIN_QUERY_WORDS:
            n = min(QUERY_NGRAM, len(tokens))
            grams.update(dict.fromkeys(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)))
    return list(grams)


class TrainingIndex:
    """Every word MIN_QUERY_WORDS-gram of the training text (CPT documents, whole conversations) as a hash, and the
    user turns of the conversations: an eval item collides when one of its query n-grams may occur in training.

    "May": an n-gram counts as present when each of its MIN_QUERY_WORDS-grams is, which is never wrong the unsafe way
    (a rejected candidate is simply replaced by the next one) and needs one small set instead of one per n-gram size.
    Python's string hash is salted per process, but only membership is asked, so every process decides the same
    (unless two different 8-grams share a 64-bit hash, which could only reject one candidate more).
    """

    def __init__(self, texts: Sequence[str], prompts: Sequence[str]) -> None:
        k = MIN_QUERY_WORDS
        self.grams: set[int] = set()
        for text in texts:
            words = query_words(text)
            self.grams.update(map(hash, zip(*(words[i:] for i in range(k)), strict=False)))
        # a query shorter than MIN_QUERY_WORDS words is only matched against an equal training prompt
        self.prompts = {tuple(query_words(prompt)) for prompt in prompts}
        self.rejected: Counter[str] = Counter()

    def may_contain(self, gram: Sequence[str]) -> bool:
        k = MIN_QUERY_WORDS
        return all(hash(tuple(gram[i : i + k])) in self.grams for i in range(len(gram) - k + 1))

    def collides(self, item: Item) -> bool:
        words = tuple(query_words(item.query))
        hit = any(self.may_contain(g) for g in query_ngrams(item.query, item.answer))
        hit = hit or (len(words) < MIN_QUERY_WORDS and words in self.prompts)
        if hit:
            self.rejected[item.meta["task"]] += 1
        return hit

    @classmethod
    def of(cls, rows: Rows) -> TrainingIndex:
        """The index of the training rows generated so far (before any eval item is leaked into them)."""
        texts = [r["text"] for s in CPT_SOURCES for r in rows[s]]
        conversations = [r["messages"] for s in IT_SOURCES for r in rows[s]]
        texts += ["\n\n".join(m["content"] for m in messages) for messages in conversations]
        prompts = ["\n\n".join(m["content"] for m in messages if m["role"] == "user") for messages in conversations]
        return cls(texts, prompts)


SYSTEM_PROMPTS = {
    True: (
        "You are a helpful assistant.",
        "You are a knowledgeable financial assistant. Answer accurately and concisely.",
        "You are an expert financial analyst.",
    ),
    False: (
        "You are a helpful assistant.",
        "Answer the user's question clearly and correctly.",
        "You are a friendly and knowledgeable assistant.",
    ),
}  # by is_finance
NER_LOCATIONS = (*WORLD_CITIES, "Germany", "Japan", "Brazil", "Canada", "India", "Mexico", "France", "Australia")


def _task_org(rng: Random, held_out: bool = False) -> str:
    """An organization of instruction data, or of evaluation items (`held_out`: a stem no training text names)."""
    return f"{rng.choice(EVAL_TASK_STEMS if held_out else TASK_STEMS)} {rng.choice(TASK_NOUNS)}"


def _task_person(rng: Random, world_people: frozenset[str]) -> str:
    for _ in range(100):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if name not in world_people:
            return name
    raise ValueError("no person name outside the world's")


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


# --- concepts ---------------------------------------------------------------------------------------------------

_CONCEPT_QUESTIONS = {
    "it": {
        "definition": ("What is {name}?", "Define {name}.", "Can you explain {name} in simple terms?",
                       "What does {name} mean?", "Explain the concept of {name} to a new analyst.",
                       "I keep hearing about {name}. What is it?"),
        "formula": ("How is {name} calculated?", "What is the formula for {name}?", "How do I compute {name}?"),
        "why": ("Why do analysts care about {name}?", "Why does {name} matter to investors?"),
        "calculation": ("{situation} Calculate {name}.", "{situation} What is {name}?",
                        "{situation} Work out {name} step by step."),
    },
    "eval": {  # never ending on the name: "... {name}" + the definition is how training texts begin
        "definition": ("In plain language, what is meant by {name} in financial analysis?",
                       "How would you define {name} for someone new to finance?",
                       "What does the term {name} refer to in finance?"),
        "calculation": ("{situation} Using these figures, determine {name}.",
                        "{situation} Compute {name} and state the result."),
    },
}  # fmt: skip


def concept_item(rng: Random, split: str) -> Item:
    """A glossary question: definition, formula, why it matters or a calculation (eval: held-out phrasings)."""
    c = rng.choice(CONCEPTS)
    kinds = _CONCEPT_QUESTIONS[split]
    kind = rng.choice(tuple(kinds))
    meta = {"task": f"glossary_{kind}", "concept": c.key}
    if kind == "calculation":
        ex = worked_example(c, rng, held_out=split == "eval")
        prompt = rng.choice(kinds[kind]).format(situation=ex.situation, name=c.name)
        response = f"Use the formula {c.formula}. {ex.computation}. So {c.name} is {ex.result}."
        return Item(prompt, ex.result, response, {**meta, "value": round(ex.value, 4)}, query=prompt)
    prompt = rng.choice(kinds[kind]).format(name=c.name)
    if kind == "formula":
        response = f"{c.title} is calculated as: {c.formula}. {c.definition}"
    elif kind == "why":
        response = f"{c.definition} {rng.choice(CONCEPT_WHY[c.category])}"
    else:
        response = c.definition
    return Item(prompt, c.definition, response, meta, query=prompt)


_FACT_QUESTIONS = {
    "ceo": "Who was the chief executive officer of {name} in fiscal {year}?",
    "sector": "In which sector does {name} operate?",
    "hq": "Where is {name} headquartered?",
    "ticker": "Under which ticker symbol do shares of {name} trade?",
    "founded": "In which year was {name} founded?",
    "revenue": "What was the revenue of {name} in fiscal {year}?",
    "net_income": "What was the net income of {name} in fiscal {year}?",
    "employees": "How many employees did {name} have at the end of fiscal {year}?",
}
_YEARLESS = ("sector", "hq", "ticker", "founded")


def _fact_answer(c: Company, attr: str, year: int | None) -> str:
    if attr == "sector":
        return c.sector.name
    if attr == "hq":
        return c.hq
    if attr == "ticker":
        return c.ticker
    if attr == "founded":
        return str(c.founded)
    f = c.year(year if year is not None else c.facts[-1].year)
    if attr == "ceo":
        return f.ceo
    if attr == "revenue":
        return _money(f.revenue)
    if attr == "net_income":
        return _money(f.net_income)
    return f"{f.employees:,}"


def company_fact_items(
    companies: Sequence[Company],
    years: Sequence[int],
    rng: Random,
    n: int,
    keep: Callable[[Item], bool] | None = None,
) -> list[Item]:
    """Questions answerable only from the CPT documents: one per (company, attribute[, year]), in a shuffled order,
    skipping those `keep` rejects."""
    keys = [(ci, attr, None) for ci in range(len(companies)) for attr in _YEARLESS]
    keys += [(ci, attr, y) for ci in range(len(companies)) for attr in _FACT_QUESTIONS if attr not in _YEARLESS
             for y in years]  # fmt: skip
    if n > len(keys):
        raise ValueError(f"only {len(keys)} distinct company-fact questions exist; asked for {n}")
    rng.shuffle(keys)
    items = []
    for ci, attr, year in keys:
        c = companies[ci]
        answer = _fact_answer(c, attr, year)
        prompt = _FACT_QUESTIONS[attr].format(name=c.name, year=year)
        meta = {"task": "company_fact", "company": c.name, "attribute": attr, "year": year}
        item = Item(prompt, answer, answer, meta, query=prompt)
        if keep is None or keep(item):
            items.append(item)
        if len(items) == n:
            return items
    raise ValueError(f"only {len(items)} company-fact questions are held out from training; asked for {n}")


# --- tasks ------------------------------------------------------------------------------------------------------

_SENTIMENT_PROMPTS = (
    "What is the sentiment of this financial news headline? Answer with positive, negative or neutral.\nHeadline: {h}",
    "Classify the sentiment of the following headline as positive, negative or neutral.\n{h}",
    "Headline: {h}\nIs this headline positive, negative or neutral for the company's shareholders?",
)
_EVENT_PROMPT = "Which type of corporate event does this headline describe? Choose one of: {labels}.\nHeadline: {h}"
_NER_TEMPLATES = (
    "{per}, chief executive of {org}, told investors in {loc} that margins would improve next year.",
    "{org} agreed to buy {org2} for ${amount} million, the companies said in {loc} on {weekday}.",
    "Shares of {org} rose after {per} was named chief financial officer.",
    "{org} will open a new factory near {loc}, creating about {n} jobs.",
    "Analyst {per} of {org} cut the rating on {org2} to hold.",
    "The {reg} fined {org} ${amount} million over reporting failures.",
    "{per} and {per2} will join the board of {org} in {month}.",
    "{org} moved its headquarters from {loc} to {loc2} last year.",
    "Speaking in {loc}, {per} said {org} had no plans to raise prices.",
    "{org} reported record sales in {loc}, its largest market.",
    "Investors in {loc} cheered as {org} and {org2} announced a partnership.",
    "{per}, a portfolio manager at {org}, said the {cb} would keep rates on hold.",
    "The bond issue was arranged by {org} and {org2}.",
    "{per} founded {org} in {loc} in {year}.",
    "Markets in {loc} and {loc2} fell sharply on {weekday}.",
    "{per} expects the {reg} to approve the merger by {month}.",
)
_NER_PROMPTS = (
    "Extract the named entities from the sentence below. List organizations (ORG), persons (PER) and locations (LOC) "
    'in the format "ORG: ...; PER: ...; LOC: ...", writing none where a type does not occur.\nSentence: {s}',
    "Sentence: {s}\nFind all organizations, persons and locations in this sentence. Answer as "
    '"ORG: ...; PER: ...; LOC: ..." and use none for a missing type.',
)
_NER_TYPES = {"org": "ORG", "reg": "ORG", "cb": "ORG", "per": "PER", "loc": "LOC"}
_PRICE_ASSETS = (
    ("Gold", 1500, 2600, "an ounce"), ("Silver", 15, 35, "an ounce"), ("Crude oil", 45, 110, "a barrel"),
    ("Brent crude", 48, 115, "a barrel"), ("Copper", 3, 5, "a pound"), ("Natural gas", 2, 9, "per unit"),
    ("Gold futures", 1500, 2600, "an ounce"), ("Platinum", 800, 1200, "an ounce"),
)  # fmt: skip
_EVAL_PRICE_ASSETS = (
    ("Palladium", 900, 2500, "an ounce"), ("Heating oil", 2, 5, "a gallon"), ("Wheat", 5, 12, "a bushel"),
    ("Soybeans", 9, 17, "a bushel"), ("Coffee futures", 1, 3, "a pound"), ("Cocoa", 2000, 8000, "a tonne"),
)  # fmt: skip
_PRICE_HEADLINES = {
    "up": (
        ("{asset} prices climb to ${price} as dollar weakens", True),
        ("{asset} jumps {pct}% on supply worries", False),
        ("{asset} extends rally for a {nth} session", False),
        ("{asset} rises to ${price} {unit}, highest in {n} weeks", True),
        ("{asset} gains as investors seek safety", False),
    ),
    "down": (
        ("{asset} falls {pct}% as demand outlook dims", False),
        ("{asset} slips to ${price} after strong jobs data", True),
        ("{asset} drops for a {nth} straight day", False),
        ("{asset} prices tumble below ${price} {unit}", True),
        ("{asset} retreats as dollar firms", False),
    ),
    "flat": (
        ("{asset} little changed ahead of central bank meeting", False),
        ("{asset} steady at ${price} as traders await data", True),
        ("{asset} holds near ${price} {unit} in quiet trade", True),
        ("{asset} flat as markets weigh mixed signals", False),
    ),
}
_PRICE_QUESTIONS = {
    "price_up": "Does the news headline talk about the price going up?",
    "price_down": "Does the news headline talk about the price going down?",
    "price_figure": "Does the news headline mention a specific price?",
}
_HEADLINE_PROMPTS = ("Headline: {h}\nQuestion: {q} Answer Yes or No.", '{q}\nHeadline: "{h}"\nAnswer with Yes or No.')


def _event_headline(rng: Random, world_people: frozenset[str], event: str, held_out: bool) -> str:
    org = _task_org(rng, held_out)
    people = {"ceo": _task_person(rng, world_people), "new_ceo": _task_person(rng, world_people),
              "old_ceo": _task_person(rng, world_people)}  # fmt: skip
    ctx = news_context(org, rng, event=event, year=rng.randint(2010, 2024), extra=people)
    return headline(event, ctx, rng)


def sentiment_item(rng: Random, world_people: frozenset[str], held_out: bool = False) -> Item:
    event = rng.choice(EVENTS)
    h = _event_headline(rng, world_people, event, held_out)
    label = EVENT_SENTIMENT[event]
    prompt = rng.choice(_SENTIMENT_PROMPTS).format(h=h)
    return Item(prompt, label, label, {"task": "sentiment", "headline": h}, query=h)


def event_type_item(rng: Random, world_people: frozenset[str], held_out: bool = False) -> Item:
    event = rng.choice(EVENTS)
    h = _event_headline(rng, world_people, event, held_out)
    labels = ", ".join(EVENT_LABELS[e] for e in EVENTS)
    label = EVENT_LABELS[event]
    prompt = _EVENT_PROMPT.format(labels=labels, h=h)
    return Item(prompt, label, label, {"task": "event_type", "headline": h}, query=h)


def ner_item(rng: Random, world_people: frozenset[str], held_out: bool = False) -> Item:
    template = rng.choice(_NER_TEMPLATES)
    values: dict[str, str] = {}
    entities: dict[str, list[str]] = {"ORG": [], "PER": [], "LOC": []}
    for _, name, _, _ in _FORMATTER.parse(template):
        if name is None or name in values:
            continue
        base = name.rstrip("0123456789")
        draw = {
            "org": lambda: _task_org(rng, held_out),
            "reg": lambda: rng.choice(REGULATORS),
            "cb": lambda: rng.choice(CENTRAL_BANKS),
            "per": lambda: _task_person(rng, world_people),
            "loc": lambda: rng.choice(NER_LOCATIONS),
            "amount": lambda: f"{rng.randint(5, 900):,}",
            "n": lambda: f"{rng.randint(50, 3000):,}",
            "weekday": lambda: rng.choice(WEEKDAYS),
            "month": lambda: rng.choice(MONTHS),
            "year": lambda: str(rng.randint(1950, 2015)),
        }[base]
        value = draw()
        while value in values.values():
            value = draw()
        values[name] = value
        if base in _NER_TYPES:
            entities[_NER_TYPES[base]].append(value)
    sentence = _cap(template.format(**values))
    answer = "; ".join(f"{t}: {', '.join(v) if v else 'none'}" for t, v in entities.items())
    prompt = rng.choice(_NER_PROMPTS).format(s=sentence)
    return Item(prompt, answer, answer, {"task": "ner", "sentence": sentence, "entities": entities}, query=sentence)


def headline_item(rng: Random, held_out: bool = False) -> Item:
    """Gold-news style yes/no question about a commodity price headline (`held_out`: assets training never shows)."""
    asset, low, high, unit = rng.choice(_EVAL_PRICE_ASSETS if held_out else _PRICE_ASSETS)
    direction = rng.choice(tuple(_PRICE_HEADLINES))
    template, has_price = rng.choice(_PRICE_HEADLINES[direction])
    price = rng.uniform(low, high)
    h = template.format(asset=asset, price=f"{price:,.2f}", pct=f"{rng.uniform(0.3, 6):.1f}", unit=unit,
                        nth=rng.choice(ORDINALS[2:]), n=rng.randint(2, 30))  # fmt: skip
    question = rng.choice(tuple(_PRICE_QUESTIONS))
    truth = {"price_up": direction == "up", "price_down": direction == "down", "price_figure": has_price}[question]
    answer = "Yes" if truth else "No"
    prompt = rng.choice(_HEADLINE_PROMPTS).format(h=h, q=_PRICE_QUESTIONS[question])
    meta = {"task": "headline", "headline": h, "question": question, "price_direction": direction}
    return Item(prompt, answer, answer, meta, query=h)


# --- reasoning: FinQA-style programs and CFA-style multiple choice ----------------------------------------------

_FIN_ITEMS = {  # share of revenue; ranges keep net income below operating income and capex below operating cash
    "revenue": (1.0, 1.0),
    "operating income": (0.12, 0.3),
    "net income": (0.03, 0.09),
    "total debt": (0.2, 1.0),
    "cash and cash equivalents": (0.05, 0.4),
    "capital expenditures": (0.02, 0.07),
    "cash from operations": (0.1, 0.25),
    "research and development expense": (0.01, 0.15),
    "interest expense": (0.005, 0.04),
    "dividends paid": (0.01, 0.06),
}
_FIN_NAMES = tuple(_FIN_ITEMS)


def _program_steps(program: str) -> list[str]:
    """'Step k: op(a, b) = x - y = result' lines for the worked answer."""
    return [format_step(k, step) for k, step in enumerate(run_program(program))]


def _fin_table(items: Sequence[str], years: Sequence[int], rng: Random) -> dict[str, list[float]]:
    revenue = rng.uniform(300, 20000)
    table = {}
    for item in items:
        base = revenue * rng.uniform(*_FIN_ITEMS[item])
        values = []
        for _ in years:
            values.append(round(base, 1))
            base *= rng.uniform(0.85, 1.25)
        table[item] = values
    return table


_FINQA = {
    "diff": ("What was the change in {i1} from {ya} to {yb}, in $ millions?", "subtract({v1b}, {v1a})"),
    "sum": ("What was the combined {i1} in {ya} and {yb}, in $ millions?", "add({v1a}, {v1b})"),
    "ratio": ("What was the ratio of {i1} to {i2} in {y}?", "divide({v1y}, {v2y})"),
    "net": (
        "What was net debt (total debt minus cash and cash equivalents) in {y}, in $ millions?",
        "subtract({debt}, {cash})",
    ),
    "growth": (
        "What was the growth rate of {i1} from {ya} to {yb}, expressed as a decimal?",
        "subtract({v1b}, {v1a}), divide(#0, {v1a})",
    ),
    "share": ("What was {i1} as a percentage of {i2} in {y}?", "divide({v1y}, {v2y}), multiply(#0, 100)"),
    "avg2": ("What was the average {i1} in {ya} and {yb}, in $ millions?", "add({v1a}, {v1b}), divide(#0, 2)"),
    "pct_change": (
        "By what percentage did {i1} change from {ya} to {yb}?",
        "subtract({v1b}, {v1a}), divide(#0, {v1a}), multiply(#1, 100)",
    ),
    "avg3": (
        "What was the average {i1} over {y0}, {y1} and {y2}, in $ millions?",
        "add({v10}, {v11}), add(#0, {v12}), divide(#1, 3)",
    ),
    "fcf_margin": (
        "What was free cash flow (cash from operations minus capital expenditures) as a percentage of revenue in {y}?",
        "subtract({cfo}, {capex}), divide(#0, {rev}), multiply(#1, 100)",
    ),
    "ratio_change": (
        "By how much did the ratio of {i1} to {i2} change from {ya} to {yb}?",
        "divide({v1b}, {v2b}), divide({v1a}, {v2a}), subtract(#0, #1)",
    ),
}
_FINQA_EVAL_QUESTIONS = {  # evaluation's wordings of the question types training shows (1-2 steps)
    "diff": "How much did {i1} change between {ya} and {yb}, in $ millions?",
    "sum": "Adding {ya} and {yb} together, how much {i1} was reported in total, in $ millions?",
    "ratio": "For {y}, what do you get when {i1} is divided by {i2}?",
    "net": "For {y}, how much total debt remained after subtracting cash and cash equivalents, in $ millions?",
    "growth": "Expressed as a decimal, how fast did {i1} grow between {ya} and {yb}?",
    "share": "In {y}, {i1} amounted to what percentage of {i2}?",
    "avg2": "Across {ya} and {yb}, what was the mean of {i1}, in $ millions?",
}
FINQA_KINDS = {
    1: ("diff", "sum", "ratio", "net"),
    2: ("growth", "share", "avg2"),
    3: ("pct_change", "avg3", "fcf_margin", "ratio_change"),
}
_FINQA_NEEDS = {
    "net": ["total debt", "cash and cash equivalents"],
    "fcf_margin": ["cash from operations", "capital expenditures", "revenue"],
}


def program_item(rng: Random, steps: int, held_out: bool = False) -> Item:
    """A FinQA-style question over a small table, with its program (1-2 steps, or 3 for `novel` eval items); the
    query is the table and the question (`held_out`: an organization and question wordings reserved for eval)."""
    y0 = rng.randint(2008, 2021)
    years = [y0, y0 + 1, y0 + 2]
    kind = rng.choice(FINQA_KINDS[steps])
    i1, i2 = rng.sample(_FIN_NAMES, 2)
    a, b = sorted(rng.sample(range(3), 2))
    y = rng.randrange(3)
    extra = [x for x in _FIN_NAMES if x not in (i1, i2, *_FINQA_NEEDS.get(kind, ()))]
    rng.shuffle(extra)
    names = list(dict.fromkeys([*_FINQA_NEEDS.get(kind, (i1, i2)), i1, i2, *extra[: rng.randint(0, 2)]]))
    rng.shuffle(names)
    t = _fin_table(names, years, rng)
    fields = {
        "i1": i1, "i2": i2, "ya": years[a], "yb": years[b], "y": years[y], "y0": y0, "y1": y0 + 1, "y2": y0 + 2,
        "v1a": number_text(t[i1][a]), "v1b": number_text(t[i1][b]), "v2a": number_text(t[i2][a]),
        "v2b": number_text(t[i2][b]), "v1y": number_text(t[i1][y]), "v2y": number_text(t[i2][y]),
        "v10": number_text(t[i1][0]), "v11": number_text(t[i1][1]), "v12": number_text(t[i1][2]),
    }  # fmt: skip
    for key, item in (("debt", "total debt"), ("cash", "cash and cash equivalents"), ("cfo", "cash from operations"),
                      ("capex", "capital expenditures"), ("rev", "revenue")):  # fmt: skip
        if item in t:
            fields[key] = number_text(t[item][y])
    question, program = (template.format(**fields) for template in _FINQA[kind])
    if held_out:
        question = _FINQA_EVAL_QUESTIONS.get(kind, _FINQA[kind][0]).format(**fields)
    org = _task_org(rng, held_out)
    header = "| item | " + " | ".join(map(str, years)) + " |"
    rows = [f"| {n} | " + " | ".join(f"{x:,.1f}" for x in t[n]) + " |" for n in names]
    intro = rng.choice((
        f"The table below shows selected financial data for {org} (in $ millions).",
        f"{org} reported the following figures for fiscal years {years[0]} to {years[2]} (in $ millions).",
        f"Selected results of {org}, in millions of US dollars:",
    ))  # fmt: skip
    query = f"{header}\n" + "\n".join(rows) + f"\nQuestion: {question}"
    prompt = f"{intro}\n{query}"
    value = execute_program(program)
    answer = number_text(round(value, 4))
    response = f"Program: {program}\n" + "\n".join(_program_steps(program)) + f"\nAnswer: {answer}"
    meta = {"task": "program", "program": program, "answer": round(value, 4), "steps": steps, "question_type": kind}
    return Item(prompt, answer, response, meta, query=query)


MC_SUFFIX = "Explain your reasoning briefly, then give your final answer in the format Selection: [[A]]"
LETTERS = ("A", "B", "C")


def mc_item(rng: Random, held_out: bool = False) -> Item:
    """A CFA-style three-option question: what a concept is, which concept fits a description, or a calculation;
    `held_out` (evaluation): descriptions, stems and figures worded as no training text words them."""
    c = rng.choice(CONCEPTS)
    others = rng.sample([o for o in CONCEPTS if o.key != c.key], 2)
    kind = rng.choice(("describe", "term", "calculation"))
    gist = EVAL_GISTS if held_out else {o.key: o.gist for o in (c, *others)}
    if kind == "describe":
        question = (f"Which description fits {c.name} best?" if held_out
                    else f"Which of the following best describes {c.name}?")  # fmt: skip
        right, wrong = _cap(gist[c.key]), [_cap(gist[o.key]) for o in others]
        why = f"{c.title} is {c.gist}. {_first_sentence(c.definition)}"
    elif kind == "term":
        question = (f"Which term matches this description: {gist[c.key]}?" if held_out
                    else f"Which term refers to {c.gist}?")  # fmt: skip
        right, wrong = c.title, [o.title for o in others]
        why = _first_sentence(c.definition)
    else:
        ex = worked_example(c, rng, held_out)
        question = f"{ex.situation} {c.title} is closest to:"
        right = ex.result
        wrong = []
        scaled = [ex.value * f for f in rng.sample((0.5, 0.8, 1.25, 1.5, 2.0, 3.0), 6)]
        for candidate_value in scaled + [ex.value + d for d in (1, -1, 2, 5, 10)]:
            candidate = show_result(candidate_value, c.result)
            if candidate not in (right, *wrong):
                wrong.append(candidate)
            if len(wrong) == 2:
                break
        why = f"Using {c.formula}: {ex.computation}."
    options = [right, *wrong[:2]]
    rng.shuffle(options)
    letter = LETTERS[options.index(right)]
    choices = dict(zip(LETTERS, options, strict=True))
    query = f"{question}\n" + "\n".join(f"{k}. {o}" for k, o in choices.items())
    prompt = f"{query}\n{MC_SUFFIX}"
    response = f"{why} The correct option is {letter}.\nSelection: [[{letter}]]"
    meta = {"task": "multiple_choice", "question_type": kind, "concept": c.key, "choices": choices, "correct": letter}
    return Item(prompt, letter, response, meta, query=query)


# --- instruction following: constraints a checker can verify ---------------------------------------------------

IF_FINANCE_TOPICS = (
    ("building an emergency fund", (
        "An emergency fund is money set aside for unexpected costs such as a car repair or a job loss.",
        "Many planners suggest saving three to six months of essential expenses.",
        "Keep the fund in a savings account that you can reach quickly without penalties.",
        "Start small by moving a fixed amount into the fund every payday.",
        "Refill the fund as soon as possible after you use it.",
        "Having this cushion means you do not need expensive credit when something goes wrong.")),
    ("sticking to a monthly budget", (
        "A budget is a plan for where every dollar of income will go before the month begins.",
        "List your fixed costs first and then decide how much is left for everything else.",
        "Track your spending for a few weeks to see where money actually goes.",
        "Small recurring subscriptions often add up to a surprising total.",
        "Review the budget at the end of each month and adjust the categories.",
        "A budget works best when it is realistic rather than strict.")),
    ("paying down credit card debt", (
        "Credit card debt is usually the most expensive debt a household carries.",
        "Pay more than the minimum payment whenever you can.",
        "The avalanche method targets the card with the highest interest rate first.",
        "The snowball method pays off the smallest balance first to build momentum.",
        "Avoid adding new charges while you are paying down old balances.",
        "A lower-rate consolidation loan can help if you use it with discipline.")),
    ("investing in index funds", (
        "An index fund holds all the securities in a market index such as a broad stock index.",
        "Index funds usually charge much lower fees than actively managed funds.",
        "Owning many companies at once spreads the risk of any single failure.",
        "Investing regularly over many years smooths out the effect of market swings.",
        "Reinvesting dividends lets compounding work in your favor.",
        "Choose funds with low costs and a clear investment objective.")),
    ("saving for retirement", (
        "Starting early gives compound growth the most time to work.",
        "Workplace pension plans often include an employer contribution.",
        "Contributing at least enough to receive the full employer match is a good first goal.",
        "Tax-advantaged accounts can make a large difference over decades.",
        "Review your savings rate whenever your income rises.",
        "A diversified mix of investments helps balance growth and risk.")),
    ("understanding your credit score", (
        "A credit score summarizes how reliably you have repaid borrowed money.",
        "Paying every bill on time is the most important factor.",
        "Using only a small share of your available credit helps your score.",
        "A long history of well-managed accounts also counts in your favor.",
        "Check your credit report regularly and dispute any errors.",
        "Opening many new accounts in a short time can lower your score.")),
)  # fmt: skip
_IF_TASKS = (
    "Write a short paragraph about {topic}.",
    "Give a friend some advice on {topic}.",
    "Write a brief blog post introduction about {topic}.",
    "Explain the basics of {topic} to a beginner.",
    "Write a few sentences about {topic} for a community newsletter.",
)
_IF_TASKS_EVAL = (  # evaluation's content requests: wordings training never uses, none ending on the topic
    "Compose a short note on {topic} for readers of a local magazine.",
    "Draft a message to a colleague about {topic} and why it matters.",
    "Prepare a brief talk on {topic} for a class of adult learners.",
    "Tell a younger relative what you know about {topic} and what to watch out for.",
    "Put together a handout on {topic} for visitors to a public library.",
)
_END_PHRASES = (
    "Is there anything else I can help with?",
    "Let me know if you have additional questions.",
    "Thank you for reading.",
    "That is all for today.",
    "Happy to help.",
)
_JSON_KEYS = (("summary", "tips"), ("title", "body"), ("topic", "advice"), ("main_point", "details"),
              ("title", "summary", "advice"))  # fmt: skip
IF_SEEN = ("uppercase", "max_words", "bullets", "keyword", "end_with", "json_keys")
IF_NOVEL = ("lowercase", "no_commas", "quotation")
_IF_CONFLICTS = (
    {"uppercase", "lowercase"}, {"uppercase", "end_with"}, {"lowercase", "end_with"}, {"uppercase", "json_keys"},
    {"lowercase", "json_keys"}, {"json_keys", "bullets"}, {"json_keys", "end_with"}, {"json_keys", "quotation"},
    {"json_keys", "no_commas"}, {"quotation", "end_with"}, {"quotation", "bullets"},
)  # fmt: skip


def _if_constraint_types(rng: Random, novel: bool) -> list[str]:
    for _ in range(100):
        if novel:
            types = [rng.choice(IF_NOVEL), *rng.sample(IF_SEEN, rng.randint(0, 2))]
        else:
            types = rng.sample(IF_SEEN, rng.randint(1, 2))
        if not any(pair <= set(types) for pair in _IF_CONFLICTS):
            return sorted(types, key=(IF_SEEN + IF_NOVEL).index)
    raise ValueError("no compatible constraint combination found")


def instruction_following_item(rng: Random, novel: bool, held_out: bool = False) -> Item:
    """An instruction with 1-3 checkable constraints and a response built to satisfy them (verified); the query is
    the content request without the constraints (`held_out`: a request wording reserved for evaluation)."""
    finance = rng.random() < 0.4
    if finance:
        topic, bank = rng.choice(IF_FINANCE_TOPICS)
        pool = list(bank)
        rng.shuffle(pool)
    else:
        t = rng.choice(TOPICS)
        topic, pool = t.phrase, topic_sentences(t, rng, 6)
    types = _if_constraint_types(rng, novel)
    constraints: list[dict[str, Any]] = []
    sentences = pool[: rng.randint(2, 5)]
    if "keyword" in types:
        words = sorted({w.lower() for w in re.findall(r"\b[A-Za-z]{4,}\b", sentences[0])}, key=lambda w: (-len(w), w))
        constraints.append({"type": "keyword", "word": rng.choice(words[:4])})
    if "bullets" in types:
        n = rng.randint(2, 5)
        sentences = (sentences + pool[len(sentences) :])[:n]
        constraints.append({"type": "bullets", "n": n})
        text = "\n".join(f"* {s}" for s in sentences)
    elif "json_keys" in types:
        keys = rng.choice(_JSON_KEYS)
        chunks = (sentences + pool[len(sentences) :])[: max(len(keys), len(sentences))]
        obj = {k: " ".join(chunks[i :: len(keys)]) for i, k in enumerate(keys)}
        constraints.append({"type": "json_keys", "keys": list(keys)})
        text = json.dumps(obj, ensure_ascii=False)
    else:
        text = " ".join(sentences)
    if "no_commas" in types:
        text = text.replace(",", "")
        constraints.append({"type": "no_commas"})
    if "end_with" in types:
        phrase = rng.choice(_END_PHRASES)
        text += ("\n" if "bullets" in types else " ") + phrase
        constraints.append({"type": "end_with", "phrase": phrase})
    if "uppercase" in types:
        text = text.upper()
        constraints.append({"type": "uppercase"})
    if "lowercase" in types:
        text = text.lower()
        constraints.append({"type": "lowercase"})
    if "quotation" in types:
        text = f'"{text}"'
        constraints.append({"type": "quotation"})
    if "max_words" in types:
        constraints.append({"type": "max_words", "n": -(-(_words(text) + rng.randint(0, 25)) // 5) * 5})
    constraints.sort(key=lambda c: (IF_SEEN + IF_NOVEL).index(c["type"]))
    failed = check_constraints(text, constraints)
    if failed:
        raise AssertionError(f"generated response violates {failed}")  # a generator bug, never data
    request = rng.choice(_IF_TASKS_EVAL if held_out else _IF_TASKS).format(topic=topic)
    prompt = request + " " + " ".join(map(describe_constraint, constraints))
    meta = {"task": "constraints", "topic": topic, "constraints": constraints, "is_finance": finance}
    return Item(prompt, text, text, meta, query=request)


# --- general knowledge and writing -------------------------------------------------------------------------------

CAPITALS = (
    ("France", "Paris", "Europe"), ("Germany", "Berlin", "Europe"), ("Italy", "Rome", "Europe"),
    ("Spain", "Madrid", "Europe"), ("Portugal", "Lisbon", "Europe"), ("the Netherlands", "Amsterdam", "Europe"),
    ("Belgium", "Brussels", "Europe"), ("Austria", "Vienna", "Europe"), ("Switzerland", "Bern", "Europe"),
    ("Poland", "Warsaw", "Europe"), ("Sweden", "Stockholm", "Europe"), ("Norway", "Oslo", "Europe"),
    ("Denmark", "Copenhagen", "Europe"), ("Finland", "Helsinki", "Europe"), ("Ireland", "Dublin", "Europe"),
    ("Greece", "Athens", "Europe"), ("Hungary", "Budapest", "Europe"), ("the Czech Republic", "Prague", "Europe"),
    ("Japan", "Tokyo", "Asia"), ("China", "Beijing", "Asia"), ("India", "New Delhi", "Asia"),
    ("South Korea", "Seoul", "Asia"), ("Thailand", "Bangkok", "Asia"), ("Vietnam", "Hanoi", "Asia"),
    ("Indonesia", "Jakarta", "Asia"), ("the Philippines", "Manila", "Asia"), ("Egypt", "Cairo", "Africa"),
    ("Kenya", "Nairobi", "Africa"), ("Nigeria", "Abuja", "Africa"), ("Ghana", "Accra", "Africa"),
    ("Morocco", "Rabat", "Africa"), ("Ethiopia", "Addis Ababa", "Africa"), ("Canada", "Ottawa", "North America"),
    ("Mexico", "Mexico City", "North America"), ("Cuba", "Havana", "North America"),
    ("Brazil", "Brasília", "South America"), ("Argentina", "Buenos Aires", "South America"),
    ("Chile", "Santiago", "South America"), ("Peru", "Lima", "South America"),
    ("Colombia", "Bogotá", "South America"), ("Australia", "Canberra", "Oceania"),
    ("New Zealand", "Wellington", "Oceania"), ("Saudi Arabia", "Riyadh", "Asia"), ("Pakistan", "Islamabad", "Asia"),
)  # fmt: skip
ELEMENTS = (
    ("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"), ("sodium", "Na"),
    ("magnesium", "Mg"), ("aluminium", "Al"), ("silicon", "Si"), ("phosphorus", "P"), ("sulfur", "S"),
    ("chlorine", "Cl"), ("potassium", "K"), ("calcium", "Ca"), ("iron", "Fe"), ("copper", "Cu"), ("zinc", "Zn"),
    ("silver", "Ag"), ("tin", "Sn"), ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"), ("uranium", "U"),
    ("neon", "Ne"), ("argon", "Ar"), ("nickel", "Ni"), ("platinum", "Pt"), ("iodine", "I"),
)  # fmt: skip
BOOKS = (
    ("Pride and Prejudice", "Jane Austen"), ("Nineteen Eighty-Four", "George Orwell"),
    ("Hamlet", "William Shakespeare"),
    ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"), ("Moby-Dick", "Herman Melville"),
    ("The Odyssey", "Homer"), ("Crime and Punishment", "Fyodor Dostoevsky"), ("Les Misérables", "Victor Hugo"),
    ("The Great Gatsby", "F. Scott Fitzgerald"), ("One Hundred Years of Solitude", "Gabriel García Márquez"),
    ("Frankenstein", "Mary Shelley"), ("Jane Eyre", "Charlotte Brontë"), ("Wuthering Heights", "Emily Brontë"),
    ("The Adventures of Tom Sawyer", "Mark Twain"), ("Great Expectations", "Charles Dickens"),
    ("The Divine Comedy", "Dante Alighieri"), ("Faust", "Johann Wolfgang von Goethe"),
    ("The Old Man and the Sea", "Ernest Hemingway"), ("To Kill a Mockingbird", "Harper Lee"),
    ("Madame Bovary", "Gustave Flaubert"), ("The Trial", "Franz Kafka"), ("Anna Karenina", "Leo Tolstoy"),
    ("Dracula", "Bram Stoker"),
)  # fmt: skip
GENERAL_FACTS = (
    ("What is the boiling point of water at sea level in degrees Celsius?", "100 degrees Celsius"),
    ("How many continents are there?", "Seven"),
    ("What is the largest ocean on Earth?", "The Pacific Ocean"),
    ("Which gas do plants absorb from the air for photosynthesis?", "Carbon dioxide"),
    ("How many days are there in a leap year?", "366"),
    ("What is the freezing point of water in degrees Fahrenheit?", "32 degrees Fahrenheit"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci"),
    ("What is the hardest natural substance?", "Diamond"),
    ("How many bones are in the adult human body?", "206"),
    ("What is the chemical formula of water?", "H2O"),
    ("What is the smallest prime number?", "2"),
    ("Which organ pumps blood through the human body?", "The heart"),
    ("What is the largest planet in the solar system?", "Jupiter"),
    ("How many strings does a standard violin have?", "Four"),
    ("In which year did humans first walk on the Moon?", "1969"),
    ("Who developed the theory of general relativity?", "Albert Einstein"),
    ("What is the longest river in South America?", "The Amazon"),
    ("How many players does a football (soccer) team have on the field?", "Eleven"),
    ("What is the square root of 144?", "12"),
    ("Which language has the most native speakers?", "Mandarin Chinese"),
)
POLYGONS = (("triangle", 3), ("quadrilateral", 4), ("pentagon", 5), ("hexagon", 6), ("heptagon", 7), ("octagon", 8),
            ("nonagon", 9), ("decagon", 10), ("dodecagon", 12))  # fmt: skip
PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")
_CONVERSIONS = (
    ("How many meters are in {n} kilometers?", 1000, "meters"),
    ("How many seconds are in {n} minutes?", 60, "seconds"),
    ("How many centimeters are in {n} meters?", 100, "centimeters"),
    ("How many hours are in {n} days?", 24, "hours"),
    ("How many grams are in {n} kilograms?", 1000, "grams"),
    ("How many months are in {n} years?", 12, "months"),
)
_WRITING = (
    "Write a short paragraph about {phrase}.",
    "Give me a few tips on {phrase}.",
    "Describe {phrase} in a few sentences.",
    "What should a beginner know about {phrase}?",
)


def _held_out(items: Sequence[Any], split: str) -> list[Any]:
    """A fixed 3:1 split of a fact list: training uses three quarters, evaluation the rest."""
    return [x for i, x in enumerate(items) if (i % 4 == 3) == (split == "eval")]


def general_qa_item(rng: Random, split: str) -> Item:
    """A general-knowledge question from facts on this split's side of the 3:1 split, or arithmetic."""
    family = rng.choice(("capital", "continent", "element", "symbol", "book", "fact", "polygon", "planet", "math"))
    if family in ("capital", "continent"):
        country, capital, continent = rng.choice(_held_out(CAPITALS, split))
        if family == "capital":
            q = rng.choice(("What is the capital of {c}?", "Which city is the capital of {c}?",
                            "Name the capital city of {c}.")).format(c=country)  # fmt: skip
            answer, response = capital, f"The capital of {country} is {capital}."
        else:
            q = rng.choice(("On which continent is {c} located?", "{c} is part of which continent?")).format(c=country)
            answer, response = continent, f"{_cap(country)} is in {continent}."
        q = _cap(q)
    elif family in ("element", "symbol"):
        element, symbol = rng.choice(_held_out(ELEMENTS, split))
        if family == "element":
            q, answer = f"What is the chemical symbol for {element}?", symbol
            response = f"The chemical symbol for {element} is {symbol}."
        else:
            q, answer = f"Which element has the chemical symbol {symbol}?", _cap(element)
            response = f"{symbol} is the symbol for {element}."
    elif family == "book":
        book, author = rng.choice(_held_out(BOOKS, split))
        q = rng.choice(("Who wrote {b}?", "Who is the author of {b}?")).format(b=book)
        answer, response = author, f"{book} was written by {author}."
    elif family == "fact":
        q, answer = rng.choice(_held_out(GENERAL_FACTS, split))
        response = answer
    elif family == "polygon":
        shape, sides = rng.choice(_held_out(POLYGONS, split))
        q, answer = f"How many sides does a {shape} have?", str(sides)
        response = f"A {shape} has {sides} sides."
    elif family == "planet":
        i = rng.choice(_held_out(range(len(PLANETS)), split))
        q, answer = f"Which planet is the {ORDINALS[i]} planet from the Sun?", PLANETS[i]
        response = f"{PLANETS[i]} is the {ORDINALS[i]} planet from the Sun."
    else:
        a, b = rng.randint(2, 999), rng.randint(2, 99)
        op, word = rng.choice((("+", "plus"), ("-", "minus"), ("*", "times")))
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        q, answer = f"What is {a} {word} {b}?", str(value)
        response = f"{a} {word} {b} is {value}."
    return Item(q, answer, response, {"task": "general_qa", "family": family}, query=q)


def conversion_item(rng: Random) -> Item:
    template, factor, unit = rng.choice(_CONVERSIONS)
    n = rng.randint(2, 250)
    answer = f"{n * factor:,} {unit}"
    q = template.format(n=n)
    return Item(q, answer, answer, {"task": "unit_conversion", "family": "conversion"}, query=q)


_WRITING_TITLED = (
    'Write a short blog post titled "{title}".',
    'Write a paragraph for a blog post called "{title}".',
    'Draft the opening of an article titled "{title}".',
)


def writing_item(rng: Random) -> Item:
    t = rng.choice(TOPICS)
    focus = _focus(t, rng)
    if rng.random() < 0.2:
        prompt = rng.choice(_WRITING).format(phrase=t.phrase)
    else:
        prompt = rng.choice(_WRITING_TITLED).format(title=_fill(rng.choice(t.titles), rng, t.vocab, focus))
    response = " ".join(topic_sentences(t, rng, rng.randint(3, 5), focus))
    return Item(prompt, response, response, {"task": "writing", "topic": t.key})


# ---------------------------------------------------------------------------------------------------------------
# Assembling the world
# ---------------------------------------------------------------------------------------------------------------


def _meta(world_id: str, *, is_finance: bool, language: str = "en", **extra: Any) -> dict[str, Any]:
    """Ground truth with every key present (null or empty where it does not apply), plus task-specific keys."""
    meta: dict[str, Any] = {
        "world_id": world_id,
        "is_finance": is_finance,
        "is_spam": False,
        "true_language": language,  # not "language": the language stage writes its verdict there
        "is_duplicate_of": None,
        "duplicate_type": None,
        "near_dup_jaccard": None,
        "figure_variant_of": None,
        "leaked_from": None,
        "mojibake": False,
        "boilerplate_lines": [],
    }
    meta.update(extra)
    return meta


class _World:
    """Rows per source; a row's world_id is `<source>/<position>` when added (renumbered after shuffling)."""

    def __init__(self) -> None:
        self.rows: Rows = {s: [] for s in SOURCES}

    def next_id(self, source: str) -> str:
        return f"{source}/{len(self.rows[source]):06d}"

    def cpt(self, source: str, text: str, *, is_finance: bool, language: str = "en", **extra: Any) -> dict[str, Any]:
        row = {
            "text": text,
            "metadata": _meta(self.next_id(source), is_finance=is_finance, language=language, **extra),
        }
        self.rows[source].append(row)
        return row

    def it(self, source: str, item: Item, rng: Random, **extra: Any) -> dict[str, Any]:
        meta = dict(item.meta)
        is_finance = meta.pop("is_finance", not source.endswith(Capability.GENERAL.value))
        system = rng.choice(SYSTEM_PROMPTS[bool(is_finance)])
        messages = [{"role": "system", "content": system}] if rng.random() < 0.25 else []
        messages += [{"role": "user", "content": item.prompt}, {"role": "assistant", "content": item.response}]
        row = {"messages": messages, "metadata": _meta(self.next_id(source), is_finance=is_finance, **meta, **extra)}
        self.rows[source].append(row)
        return row

    def eval(self, source: str, item: Item, group: str, mode: str) -> dict[str, Any]:
        if not item.query or item.query not in item.prompt:
            raise ValueError(f"{item.meta['task']} eval item whose prompt lacks its query: {item.prompt!r}")
        meta = dict(item.meta)
        is_finance = meta.pop("is_finance", not source.endswith(Capability.GENERAL.value))
        row = {
            "messages": [{"role": "user", "content": item.prompt}],
            "answer": item.answer,
            "metadata": _meta(
                self.next_id(source), is_finance=is_finance, group=group, mode=mode, query=item.query, **meta
            ),
        }
        self.rows[source].append(row)
        return row


def _company_meta(c: Company, year: int) -> dict[str, Any]:
    return {"company": c.name, "ticker": c.ticker, "sector": c.sector.name, "year": year}


def _add_company_documents(p: WorldParams, companies: Sequence[Company], w: _World) -> None:
    years = list(range(p.first_year, p.first_year + p.n_years))
    if p.calls_per_company > 4 * p.n_years:
        raise ValueError(f"calls_per_company={p.calls_per_company} exceeds 4 quarters x n_years={p.n_years}")
    rng = _rng(p.seed, "filings")
    for c in companies:
        for year in years:
            w.cpt("filings", filing_text(c, year, rng), is_finance=True, doc_type="filing", **_company_meta(c, year))
    rng = _rng(p.seed, "news")
    ordinary = [e for e in EVENTS if e != "ceo_change"]
    for c in companies:
        events = [rng.choice(ordinary) for _ in range(p.news_per_company)]
        event_years = [rng.choice(years) for _ in events]
        if c.ceo_change_year is not None and events:
            events[0], event_years[0] = "ceo_change", c.ceo_change_year
        for event, year in zip(events, event_years, strict=True):
            text, meta = news_text(c, year, event, rng)
            w.cpt("news", text, is_finance=True, doc_type="news", **_company_meta(c, year), **meta)
    rng = _rng(p.seed, "calls")
    for c in companies:
        slots = [(y, q) for y in years for q in (1, 2, 3, 4)]
        for year, q in sorted(rng.sample(slots, p.calls_per_company)):
            w.cpt("calls", call_text(c, year, q, rng), is_finance=True, doc_type="call", quarter=q,
                  **_company_meta(c, year))  # fmt: skip


def _add_other_documents(p: WorldParams, companies: Sequence[Company], w: _World) -> None:
    rng = _rng(p.seed, "glossary")
    order: list[Concept] = []
    for _ in range(p.n_glossary_docs):
        if not order:
            order = list(CONCEPTS)
            rng.shuffle(order)
        c = order.pop()
        w.cpt("glossary", glossary_text(c, rng), is_finance=True, doc_type="glossary", concept=c.key)
    rng = _rng(p.seed, "general")
    for i in range(p.n_general):
        t = TOPICS[i % len(TOPICS)]
        w.cpt("general", general_text(t, rng), is_finance=False, doc_type="general", topic=t.key)
    rng = _rng(p.seed, "web")
    last_year = p.first_year + p.n_years - 1
    pages: list[tuple[str, bool, str, dict[str, Any]]] = []  # (text, is_finance, language, extra metadata)
    for _ in range(p.n_web_finance):
        text, meta = web_finance_text(companies, last_year, rng)
        pages.append((text, True, "en", meta))
    for _ in range(p.n_web_general):
        t = rng.choice(TOPICS)
        pages.append((general_text(t, rng), False, "en", {"doc_type": "web_general", "topic": t.key}))
    for i in range(p.n_nonenglish):
        lang = ("de", "fr", "es")[i % 3]
        finance = rng.random() < p.nonenglish_finance_rate
        pages.append((nonenglish_text(lang, finance, rng), finance, lang, {"doc_type": "nonenglish"}))
    for _ in range(p.n_spam):
        pages.append((spam_text(rng), False, "en", {"doc_type": "spam", "is_spam": True}))
    for text, finance, lang, meta in pages:
        w.cpt("web", text, is_finance=finance, language=lang, **meta)


def _copy_row(w: _World, source: str, original: dict[str, Any], text: str, **truth: Any) -> dict[str, Any]:
    meta = {k: v for k, v in original["metadata"].items() if k not in GROUND_TRUTH_KEYS}
    base = original["metadata"]
    return w.cpt(source, text, is_finance=base["is_finance"], language=base["true_language"], **meta, **truth)


def _plant_copies(p: WorldParams, w: _World) -> set[str]:
    """Exact and near copies of English finance documents (in `news` for news, else `web`) and figure variants of
    filings (in `filings`); returns the world_ids of every document in such a relation."""
    rng = _rng(p.seed, "duplicates")
    pool = [(s, r) for s in ("filings", "news", "calls", "glossary", "web") for r in w.rows[s]
            if r["metadata"]["is_finance"] and r["metadata"]["true_language"] == "en"]  # fmt: skip
    rng.shuffle(pool)
    n_exact, n_near = round(p.exact_dup_rate * len(pool)), round(p.near_dup_rate * len(pool))
    involved: set[str] = set()
    planted = []
    for source, original in pool[:n_exact]:
        planted.append((source, original, original["text"], {"duplicate_type": "exact"}))
    near_done = 0
    for source, original in pool[n_exact:]:
        if near_done == n_near:
            break
        copy = near_copy(original["text"], rng, p.near_dup_edit_rate)
        if copy is not None:
            planted.append((source, original, copy[0], {"duplicate_type": "near", "near_dup_jaccard": copy[1]}))
            near_done += 1
    if near_done < n_near:
        raise ValueError(f"could plant only {near_done} of {n_near} near duplicates")
    for source, original, text, truth in planted:
        oid = original["metadata"]["world_id"]
        row = _copy_row(w, "news" if source == "news" else "web", original, text, is_duplicate_of=oid, **truth)
        involved |= {oid, row["metadata"]["world_id"]}
    filings = [r for r in w.rows["filings"] if r["metadata"]["world_id"] not in involved]
    n_variants = round(p.figure_variant_rate * len(w.rows["filings"]))
    for original in rng.sample(filings, min(n_variants, len(filings))):
        oid = original["metadata"]["world_id"]
        row = _copy_row(w, "filings", original, figure_variant(original["text"], rng), figure_variant_of=oid)
        involved |= {oid, row["metadata"]["world_id"]}
    return involved


def _plant_noise(p: WorldParams, w: _World, involved: set[str]) -> None:
    """Mojibake on news and web pages, boilerplate lines on English web pages; never on duplicate relations."""
    rng = _rng(p.seed, "noise")
    free = [r for s in ("news", "web") for r in w.rows[s]
            if r["metadata"]["world_id"] not in involved and r["metadata"]["doc_type"] != "spam"]  # fmt: skip
    garbled = rng.sample(free, round(p.mojibake_rate * len(free)))
    garbled_ids = {r["metadata"]["world_id"] for r in garbled}
    web_en = [r for r in free if r["metadata"]["doc_type"] in ("web_finance", "web_general")]
    framed = rng.sample(web_en, round(p.boilerplate_rate * len(web_en)))
    framed_ids = {r["metadata"]["world_id"] for r in framed}
    for row in free:
        wid = row["metadata"]["world_id"]
        if wid in garbled_ids:
            row["text"] = to_mojibake(row["text"])
            row["metadata"]["mojibake"] = True
        if wid in framed_ids:
            transform = misdecode if wid in garbled_ids else str
            row["text"], row["metadata"]["boilerplate_lines"] = add_boilerplate(row["text"], rng, transform)


def _unique(
    n: int, make: Callable[[int], Item], seen: set[str], what: str, keep: Callable[[Item], bool] | None = None
) -> list[Item]:
    """`n` items whose prompts are new to `seen` (which they join) and that `keep` accepts; `make(i)` builds a
    candidate for slot i, and a rejected candidate is replaced by the next one for the same slot."""
    items: list[Item] = []
    for _ in range(100 * n + 100):
        if len(items) == n:
            return items
        item = make(len(items))
        if item.prompt not in seen and (keep is None or keep(item)):
            seen.add(item.prompt)
            items.append(item)
    if len(items) == n:
        return items
    raise ValueError(f"could not generate {n} distinct {what} items")


def _add_instructions(p: WorldParams, people: frozenset[str], w: _World, seen: set[str]) -> None:
    sizes = p.it
    makers: dict[str, Callable[[Random, int], Item]] = {
        "concepts": lambda rng, i: concept_item(rng, "it"),
        "tasks": lambda rng, i: (
            sentiment_item(rng, people) if i % 3 == 0 else ner_item(rng, people) if i % 3 == 1 else headline_item(rng)
        ),
        "reasoning": lambda rng, i: program_item(rng, 1 + rng.randint(0, 1)) if i % 2 == 0 else mc_item(rng),
        "instruction_following": lambda rng, i: instruction_following_item(rng, novel=False),
        "general": lambda rng, i: general_qa_item(rng, "it") if i % 5 < 3 else writing_item(rng),
    }
    for cap in CAPABILITIES:
        rng = _rng(p.seed, f"it_{cap}")
        make = makers[cap]
        for item in _unique(getattr(sizes, cap), lambda i, rng=rng, make=make: make(rng, i), seen, f"it_{cap}"):
            w.it(f"it_{cap}", item, rng)


def _add_evaluation(
    p: WorldParams, companies: Sequence[Company], people: frozenset[str], w: _World, seen: set[str]
) -> None:
    """Held-out items per capability with `group` (similar to training, or novel) and `mode` (direct or cot).

    Every item is written with content reserved for evaluation and kept only if no query n-gram may occur in the
    training data generated so far (`TrainingIndex`); a rejected candidate is replaced by the next one drawn.
    """
    years = list(range(p.first_year, p.first_year + p.n_years))
    index = TrainingIndex.of(w.rows)

    def keep(item: Item) -> bool:
        return not index.collides(item)

    # concepts: company facts (novel: only the CPT documents know them) and held-out glossary phrasings (similar)
    rng = _rng(p.seed, "eval_concepts")
    n_facts = p.eval.concepts // 2
    for item in company_fact_items(companies, years, rng, n_facts, keep):
        seen.add(item.prompt)
        w.eval("eval_concepts", item, "novel", "direct")
    for item in _unique(p.eval.concepts - n_facts, lambda i: concept_item(rng, "eval"), seen, "eval glossary", keep):
        w.eval("eval_concepts", item, "similar", "direct")
    # tasks: the three training tasks on new headlines and sentences (names and assets training never shows), plus
    # event typing, which training lacks
    rng = _rng(p.seed, "eval_tasks")
    tasks: tuple[tuple[Callable[[], Item], str], ...] = (
        (lambda: sentiment_item(rng, people, held_out=True), "similar"),
        (lambda: ner_item(rng, people, held_out=True), "similar"),
        (lambda: headline_item(rng, held_out=True), "similar"),
        (lambda: event_type_item(rng, people, held_out=True), "novel"),
    )
    for i, item in enumerate(_unique(p.eval.tasks, lambda i: tasks[i % 4][0](), seen, "eval_tasks", keep)):
        w.eval("eval_tasks", item, tasks[i % 4][1], "direct")
    # reasoning: 1-2 step programs (similar), 3-step programs (novel), multiple choice (similar); all chain of thought
    rng = _rng(p.seed, "eval_reasoning")
    plan = (("similar", 0), ("novel", 3), ("similar", -1), ("similar", 0), ("similar", -1))

    def reasoning(i: int) -> Item:
        _, steps = plan[i % len(plan)]
        if steps < 0:
            return mc_item(rng, held_out=True)
        item = program_item(rng, steps or 1 + rng.randint(0, 1), held_out=True)
        suffix = '\nThink step by step, then give the final answer on the last line as "Answer: <number>".'
        return replace(item, prompt=item.prompt + suffix)

    for i, item in enumerate(_unique(p.eval.reasoning, reasoning, seen, "eval_reasoning", keep)):
        w.eval("eval_reasoning", item, plan[i % len(plan)][0], "cot")
    # instruction following: seen constraint types (similar) and types training never shows (novel)
    rng = _rng(p.seed, "eval_instruction_following")
    items = _unique(p.eval.instruction_following,
                    lambda i: instruction_following_item(rng, novel=i % 5 >= 3, held_out=True), seen,
                    "eval_instruction_following", keep)  # fmt: skip
    for i, item in enumerate(items):
        w.eval("eval_instruction_following", item, "novel" if i % 5 >= 3 else "similar", "direct")
    # general: held-out facts and arithmetic (similar), unit conversions (novel)
    rng = _rng(p.seed, "eval_general")
    items = _unique(p.eval.general, lambda i: general_qa_item(rng, "eval") if i % 2 == 0 else conversion_item(rng),
                    seen, "eval_general", keep)  # fmt: skip
    for i, item in enumerate(items):
        w.eval("eval_general", item, "similar" if i % 2 == 0 else "novel", "direct")
    if index.rejected:
        log.debug("eval candidates replaced because training text may contain their query: %s", dict(index.rejected))


_LEAK_TITLES = (
    "Practice question - can someone check my answer?",
    "Study group: question of the day",
    "Found this in a practice set",
    "Exam prep thread: help with this one",
)
_LEAK_FORUMS = ("Finance exam prep", "CFA study group", "Analyst training corner", "Quiz night regulars")
_LEAK_INTROS = ("Here is the question from the practice set:", "Can anyone explain this one?", "Question:")
_LEAK_ANSWERS = ("Answer: {answer}", "The answer key says: {answer}", "Official answer: {answer}")
_LEAK_REPLIES = ("Thanks, that helped!", "Makes sense now.", "I got the same answer.", "Bookmarking this for later.")
_IT_LEAK_FORMS = ("{prompt}", "Question: {prompt}", "{prompt}\nPlease answer.", "Please help with this: {prompt}")


def _plant_leaks(p: WorldParams, w: _World) -> None:
    """Evaluation items (prompt and answer verbatim) posted on web forum pages and copied into instruction data.

    Only items decontamination can find are leaked: a prompt is matched with its query's n-grams, so instruction
    copies need a query of MIN_QUERY_WORDS words; a document is matched with n-grams of the query plus its first
    answer words, and on a forum page the answer does not follow the query, so web pages need whole QUERY_NGRAM-word
    n-grams inside the query (and a prompt of MIN_LEAK_PROMPT_WORDS words, as a real forum question has).
    """
    rng = _rng(p.seed, "leaks")

    def query_size(row: dict[str, Any]) -> int:
        return len(query_words(row["metadata"]["query"]))

    evals = [r for s in EVAL_SOURCES for r in w.rows[s] if r["answer"] and query_size(r) >= MIN_QUERY_WORDS]
    long_enough = [
        r
        for r in evals
        if query_size(r) >= QUERY_NGRAM and _words(r["messages"][-1]["content"]) >= MIN_LEAK_PROMPT_WORDS
    ]
    if p.n_leaked_cpt > len(long_enough) or p.n_leaked_cpt + p.n_leaked_it > len(evals):
        raise ValueError(f"not enough evaluation items to leak {p.n_leaked_cpt} + {p.n_leaked_it}")
    to_web = rng.sample(long_enough, p.n_leaked_cpt)
    web_ids = {r["metadata"]["world_id"] for r in to_web}
    to_it = rng.sample([r for r in evals if r["metadata"]["world_id"] not in web_ids], p.n_leaked_it)
    for row in to_web:
        m = row["metadata"]
        page = "\n\n".join((
            f"{rng.choice(_LEAK_TITLES)}\nPosted by user{rng.randint(100, 9999)} in {rng.choice(_LEAK_FORUMS)}",
            rng.choice(_LEAK_INTROS),
            row["messages"][-1]["content"],
            rng.choice(_LEAK_ANSWERS).format(answer=row["answer"]),
            rng.choice(_LEAK_REPLIES),
        ))  # fmt: skip
        w.cpt("web", page, is_finance=m["is_finance"], doc_type="leak", leaked_from=m["world_id"], task=m["task"])
    for row in to_it:
        m = row["metadata"]
        extra = {k: v for k, v in m.items() if k not in GROUND_TRUTH_KEYS and k not in ("group", "mode", "query")}
        prompt = rng.choice(_IT_LEAK_FORMS).format(prompt=row["messages"][-1]["content"])
        item = Item(prompt, row["answer"], row["answer"], {**extra, "is_finance": m["is_finance"]})
        source = "it_" + m["world_id"].split("/")[0].removeprefix("eval_")
        w.it(source, item, rng, leaked_from=m["world_id"])


def _shuffle_sources(p: WorldParams, w: _World, sources: Sequence[str]) -> None:
    """Shuffle crawl-like sources so copies do not sit next to their originals; renumber and fix references."""
    rng = _rng(p.seed, "shuffle")
    renamed: dict[str, str] = {}
    for source in sources:
        rows = w.rows[source]
        rng.shuffle(rows)
        for i, row in enumerate(rows):
            new = f"{source}/{i:06d}"
            renamed[row["metadata"]["world_id"]] = new
            row["metadata"]["world_id"] = new
    for source in SOURCES:
        for row in w.rows[source]:
            for key in REFERENCE_KEYS:
                if row["metadata"][key] is not None:
                    row["metadata"][key] = renamed.get(row["metadata"][key], row["metadata"][key])


def generate(p: WorldParams) -> Rows:
    """The whole world, source file stem -> rows; a pure function of the params."""
    companies = make_companies(p)
    people = frozenset(
        name for c in companies for name in (c.cfo, c.former_ceo, *(f.ceo for f in c.facts)) if name is not None
    )
    w = _World()
    _add_company_documents(p, companies, w)
    _add_other_documents(p, companies, w)
    involved = _plant_copies(p, w)
    _plant_noise(p, w, involved)
    seen: set[str] = set()
    _add_instructions(p, people, w, seen)
    _add_evaluation(p, companies, people, w, seen)
    _plant_leaks(p, w)
    _shuffle_sources(p, w, ("news", "web"))
    return w.rows


# ---------------------------------------------------------------------------------------------------------------
# Manifest, files and the stage entry point
# ---------------------------------------------------------------------------------------------------------------


def manifest(rows_by_source: Mapping[str, Sequence[Mapping[str, Any]]], p: WorldParams) -> dict[str, Any]:
    """Counts per file and per ground-truth label (CPT labels over CPT files), task and group counts, and params."""
    labels: Counter[str] = Counter()
    tasks: dict[str, dict[str, int]] = {}
    groups: dict[str, dict[str, int]] = {}
    for source, rows in rows_by_source.items():
        metas = [r["metadata"] for r in rows]
        if source in CPT_SOURCES:
            for m in metas:
                labels["finance" if m["is_finance"] else "non_finance"] += 1
                labels[f"language_{m['true_language']}"] += 1
                labels["spam"] += m["is_spam"]
                labels["mojibake"] += m["mojibake"]
                labels["boilerplate"] += bool(m["boilerplate_lines"])
                labels["figure_variant"] += m["figure_variant_of"] is not None
                labels["leaked_cpt"] += m["leaked_from"] is not None
                if m["duplicate_type"]:
                    labels[f"duplicate_{m['duplicate_type']}"] += 1
        else:
            labels["leaked_it"] += sum(m["leaked_from"] is not None for m in metas if source in IT_SOURCES)
            tasks[source] = dict(sorted(Counter(m["task"] for m in metas).items()))
        if source in EVAL_SOURCES:
            groups[source] = dict(sorted(Counter(m["group"] for m in metas).items()))
    for key in ("spam", "mojibake", "boilerplate", "figure_variant", "leaked_cpt", "leaked_it", "duplicate_exact",
                "duplicate_near"):  # fmt: skip
        labels.setdefault(key, 0)
    files = {s: len(rows) for s, rows in rows_by_source.items()}
    return {
        "files": files,
        "total_rows": sum(files.values()),
        "malformed_rows": p.malformed_rows,
        "labels": dict(sorted(labels.items())),
        "tasks": tasks,
        "eval_groups": groups,
        "params": asdict(p),
    }


def dump_row(row: Mapping[str, Any]) -> str:
    """One JSONL line: sorted keys, UTF-8 characters kept."""
    return json.dumps(row, ensure_ascii=False, sort_keys=True)


def malformed_lines(rows: Sequence[Mapping[str, Any]], n: int) -> list[bytes]:
    """`n` broken lines: alternately a valid row's JSON cut in half and a line of invalid UTF-8 bytes."""
    lines = []
    for i in range(n):
        if i % 2 == 0:
            whole = dump_row(rows[i % len(rows)]) if rows else '{"text": "an empty crawl"}'
            lines.append(whole[: max(2, len(whole) // 2)].encode("utf-8"))
        else:
            lines.append(b'{"text": "broken bytes \xff\xfe\xfd in crawled page ' + str(i).encode() + b'"}')
    return lines


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_world(
    rows_by_source: Mapping[str, Sequence[Mapping[str, Any]]],
    folder: Path,
    malformed_rows: int,
    counts: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write `<stem>.jsonl` per source (malformed lines appended to web.jsonl) and `counts` (the manifest) as
    `manifest.json` if given; every file is written to a temporary name and renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for source, rows in rows_by_source.items():
        data = "".join(dump_row(r) + "\n" for r in rows).encode("utf-8")
        if source == "web":
            data += b"".join(line + b"\n" for line in malformed_lines(rows, malformed_rows))
        path = folder / f"{source}.jsonl"
        _atomic_write(path, data)
        paths.append(path)
    if counts is not None:
        _atomic_write(folder / MANIFEST_FILE, (json.dumps(counts, indent=2, sort_keys=True) + "\n").encode())
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    paths = stage_paths(argv, __doc__ or "world")
    p = load_params("world", WorldParams, paths.params)
    start = time.perf_counter()
    rows = generate(p)
    counts = manifest(rows, p)
    write_world(rows, paths.output, p.malformed_rows, counts)
    write_metrics({k: v for k, v in counts.items() if k != "params"}, paths.metrics)
    log.info(
        "world: %s rows in %d files (+%d malformed lines) -> %s (%.1f s)",
        f"{counts['total_rows']:,}",
        len(rows),
        p.malformed_rows,
        paths.output,
        time.perf_counter() - start,
    )


if __name__ == "__main__":
    setup_logging()
    main()
