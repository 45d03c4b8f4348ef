"""Rows of ``results/claims.csv``: one claim of the paper (or the lecture), what was measured, and the verdict."""

from __future__ import annotations

from dataclasses import asdict, fields
from html import escape

import pandas as pd

from samsde.claims import Claim, in_range

COLUMNS = [f.name for f in fields(Claim)]

__all__ = ["COLUMNS", "Claim", "claims_frame", "claims_page", "in_range", "report_label", "summary", "verdict"]


def claims_frame(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([asdict(c) for c in claims], columns=COLUMNS)


# ---- the claims table as HTML pages of the Snakemake report (one per figure, next to it, and one of all claims)

#: the report shows an HTML result in an iframe; a self-contained page (inline style, no script, nothing fetched)
PAGE_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1e293b; }
h1 { font-size: 1.3em; margin: 0 0 .3em; } h2 { font-size: 1.1em; margin: 1.5em 0 .3em; }
p { margin: 0 0 .8em; }
table { border-collapse: collapse; width: 100%; min-width: 860px; table-layout: fixed; }
th, td { border-bottom: 1px solid #cbd5e1; padding: .35em .5em; text-align: left; vertical-align: top; }
th { background: #f1f5f9; position: sticky; top: 0; }
td.num { font-variant-numeric: tabular-nums; overflow-wrap: normal; }
code { font-size: .85em; color: #475569; overflow-wrap: anywhere; }
td { overflow-wrap: anywhere; }
.quantity, td.note { font-size: .85em; color: #475569; }
td.verdict { font-weight: bold; white-space: nowrap; }
tr.pass td.verdict { color: #166534; background: #dcfce7; }
tr.fail td.verdict { color: #991b1b; background: #fee2e2; }
"""
#: column -> width (fixed layout: a long claim id or note wraps instead of squeezing the other columns; in a narrow
#: frame the table scrolls sideways rather than break a number)
HEADER = {"claim": 30, "value": 7, "95% interval": 14, "expected": 15, "verdict": 8, "note": 26}


def _number(x: float) -> str:
    return "not measured" if pd.isna(x) else f"{x:.4g}"


def _interval(low: float, high: float) -> str:
    return "none" if pd.isna(low) or pd.isna(high) else f"[{low:.4g}, {high:.4g}]"


def verdict(passed: bool) -> str:
    return "pass" if passed else "fail"


def summary(claims: pd.DataFrame, passing: str = "claims pass") -> str:
    """``k of n claims pass`` (``none`` for no rows)."""
    return f"{int(claims.passed.sum())} of {len(claims)} {passing}" if len(claims) else "none"


def report_label(claims_csv: str, figure: str | None = None) -> str:
    """The report's label of a claims page (read when the report is built, so the list of results shows the
    verdicts): ``<figure> claims: k of n pass`` (``all claims: ...``). The space sorts the page right after its
    figure's own label (the report sorts labels by localeCompare, where a space comes before ``_``: weak_error, its
    claims, then weak_error_minibatch)."""
    claims = pd.read_csv(claims_csv)
    rows = claims if figure is None else claims[claims.figure == figure]
    return f"{figure or 'all'} claims: {summary(rows, 'pass')}"


def claims_rows_html(claims: pd.DataFrame) -> str:
    """One ``<tr>`` per claim, its id the claim id and its class the verdict (what the report's test looks up)."""
    rows = []
    for c in claims.itertuples(index=False):
        word = verdict(bool(c.passed))
        cells = [
            (
                "",
                f"<code>{escape(c.claim_id)}</code> ({escape(c.source)})<br>{escape(c.claim)}"
                f'<br><span class="quantity">{escape(c.quantity)}</span>',
            ),
            ("num", _number(c.value)),
            ("num", _interval(c.ci_low, c.ci_high)),
            ("", escape(c.expected)),
            ("verdict", word),
            ("note", escape("" if pd.isna(c.note) else str(c.note))),
        ]
        tds = "".join(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>" for cls, text in cells)
        rows.append(f'<tr id="{escape(c.claim_id)}" class="{word}">{tds}</tr>')
    return "\n".join(rows)


def claims_table_html(claims: pd.DataFrame) -> str:
    if claims.empty:
        return "<p>No row of <code>results/claims.csv</code> cites this figure.</p>"
    cols = "".join(f'<col style="width: {w}%">' for w in HEADER.values())
    head = "".join(f"<th>{h}</th>" for h in HEADER)
    return (
        f"<table>\n<colgroup>{cols}</colgroup>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{claims_rows_html(claims)}\n</tbody>\n</table>"
    )


def claims_page(title: str, sections: list[tuple[str, pd.DataFrame]], intro: str = "") -> str:
    """A page of the report: ``title``, then one table per (heading, claims) section (no heading: one table)."""
    body = [f"<h1>{escape(title)}</h1>", f"<p>{intro}</p>" if intro else ""]
    for heading, claims in sections:
        if heading:
            body.append(f"<h2>{escape(heading)}: {summary(claims)}</h2>")
        body.append(claims_table_html(claims))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(b for b in body if b)
        + "\n</body>\n</html>\n"
    )
