"""Rows of ``results/claims.csv``: one claim of the paper (or the lecture), what was measured, and the verdict."""

from __future__ import annotations

from dataclasses import asdict, fields

import pandas as pd

from samsde.claims import Claim, in_range

COLUMNS = [f.name for f in fields(Claim)]

__all__ = ["COLUMNS", "Claim", "claims_frame", "in_range"]


def claims_frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in claims], columns=COLUMNS)
