"""A claim of the paper (or the lecture) as the experiments check it: what was measured and the verdict.

Experiments build claims with keyword arguments; the pipeline writes them as rows of ``results/claims.csv``
(``samsde_workflow.claims.claims_frame``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Claim:
    claim_id: str
    # "paper", "lecture", "reconstructed" ("reconstructed illustration" for flat_minima's), "control", or "own": a
    # check of the project's that tests no statement of the paper or the lecture (kept in the table with its numbers;
    # its note says why it is the project's own)
    source: str
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
