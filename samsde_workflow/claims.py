"""Rows of ``results/claims.csv``: one claim of the paper (or the lecture), what was measured, and the verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

COLUMNS = [
    "claim_id",
    "source",
    "figure",
    "claim",
    "quantity",
    "value",
    "ci_low",
    "ci_high",
    "expected",
    "passed",
    "note",
]


@dataclass
class Claim:
    claim_id: str
    source: str  # "paper" or "lecture"
    figure: str
    claim: str
    quantity: str
    value: float
    ci_low: float
    ci_high: float
    expected: str
    passed: bool
    note: str = ""


def in_range(value: float, low: float, high: float) -> bool:
    return math.isfinite(value) and low <= value <= high


def claims_frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in claims], columns=COLUMNS)
