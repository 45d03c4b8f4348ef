"""The generated results page and figure index (samsde_workflow.results_page): counts, failing rows, slopes and the
provenance stamp from a small fake results/ directory; FIGURES.md is the inventory's index."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from samsde_workflow import results_page
from samsde_workflow.inventory import FIGURE_TABLES, FIGURES

ROOT = Path(__file__).resolve().parents[1]


def claim(claim_id, figure, passed, value=1.0, low=0.9, high=1.1, source="paper", note=""):
    return dict(claim_id=claim_id, source=source, figure=figure, claim="c", quantity="q", value=value, ci_low=low,
                ci_high=high, expected="slope >= 0.8", passed=passed, note=note)  # fmt: skip


def sidecar(path: Path, commit: str, config_sha: str, rule: str = "r") -> None:
    side = {"rule": rule, "config": {}, "config_sha256": config_sha, "seed": 7, "packages": {}, "git_commit": commit}
    Path(f"{path}.provenance.json").write_text(json.dumps(side))


@pytest.fixture
def fake_results(tmp_path):
    results = tmp_path / "results"
    (results / "weak_error").mkdir(parents=True)
    rows = [
        claim("order1_own_sde.quad.sam.sqrt", "weak_error", True),
        claim("sgd_sde_not_order1.quad.sam.sqrt", "weak_error", False, 0.91, 0.88, 0.95, note="too steep"),
        claim("control.quad", "weak_error", True, source="control"),
        claim("saddle.usam", "saddle", False, float("nan"), float("nan"), float("nan"), note="diverged"),
        claim("saddle.sam", "saddle", True),
    ]
    pd.DataFrame(rows).to_csv(results / "claims.csv", index=False)
    sidecar(results / "claims.csv", "abc123", "f" * 64)
    slopes = pd.DataFrame(
        {
            "task": ["quad"],
            "algorithm": ["sam"],
            "scaling": ["sqrt"],
            "alpha": [0.5],
            "model": ["own_sde"],
            "statistic": ["loss"],
            "slope": [1.0123],
            "ci_low": [0.9871],
            "ci_high": [1.0456],
            "n_points": [3],
            "usable": [True],
            "a": [0.25],
            "a_ci_low": [0.2],
            "a_ci_high": [0.3],
        }  # fmt: skip
    )
    slopes.to_csv(results / "weak_error" / "slopes.csv", index=False)
    sidecar(results / "weak_error" / "slopes.csv", "abc123", "e" * 64)
    sidecar(results / "profile.csv", "other", "d" * 64, rule="pipeline_profile")  # a measurement: not stamped
    return results


def test_results_page_counts_failing_rows_slopes_and_stamp(fake_results, tmp_path):
    out = tmp_path / "page.md"
    assert results_page.main(["--results", str(fake_results), "--out", str(out)]) == 0
    page = out.read_text()
    assert "## Claims: 3 of 5 pass" in page
    assert "| **weak_error** | all | **2 of 3** |" in page and "| **insights** | all | **1 of 2** |" in page
    assert "| saddle | 1 of 2 |" in page and "| control | 1 of 1 |" in page  # per figure, per source
    failing = page.split("## Failing claims (2)")[1].split("## Slopes")[0]
    assert "`sgd_sde_not_order1.quad.sam.sqrt` | weak_error | paper | 0.91 | [0.88, 0.95] |" in failing
    assert "`saddle.usam` | saddle | paper | not measured | none |" in failing and "diverged" in failing
    assert "order1_own_sde" not in failing and "saddle.sam`" not in failing
    assert "| quad | sam | sqrt | 0.5 | own_sde | loss | 1.01 [0.987, 1.05] | 3 | True | 0.25 | 0.2 | 0.3 |" in page
    assert "git commit `abc123` (2 files)" in page and "`other`" not in page and "seed 7" in page
    # the fingerprint changes with any table's config section
    first = re.search(r"fingerprint `(\w+)`", page).group(1)
    sidecar(fake_results / "weak_error" / "slopes.csv", "abc123", "0" * 64)
    results_page.main(["--results", str(fake_results), "--out", str(out)])
    assert re.search(r"fingerprint `(\w+)`", out.read_text()).group(1) != first


def test_front_fragment_links_failing_rows_to_their_claims_pages(fake_results, tmp_path):
    front = tmp_path / "front.rst"
    results_page.main(["--results", str(fake_results), "--out", str(tmp_path / "p.md"), "--front", str(front)])
    text = front.read_text()
    assert text.startswith("**Claims: 3 of 5 pass.** By stage: weak_error 2 of 3, insights 1 of 2 (by figure:")
    assert "Git commit ``abc123``" in text
    assert "- ``saddle.usam``: not measured (`claims_saddle.html`_)" in text
    assert "- ``sgd_sde_not_order1.quad.sam.sqrt``: 0.91 [0.88, 0.95] (`claims_weak_error.html`_)" in text
    assert "image::" not in text  # no headline figure in this run


def test_unknown_figure_and_missing_claims_are_errors(fake_results, tmp_path):
    claims = pd.read_csv(fake_results / "claims.csv")
    claims.loc[0, "figure"] = "no_such_figure"
    claims.to_csv(fake_results / "claims.csv", index=False)
    with pytest.raises(ValueError, match="no_such_figure"):
        results_page.main(["--results", str(fake_results), "--out", str(tmp_path / "p.md")])
    with pytest.raises(FileNotFoundError, match="claims.csv"):
        results_page.main(["--results", str(tmp_path / "nothing"), "--out", str(tmp_path / "p.md")])


def test_figures_md_is_the_generated_index():
    """FIGURES.md is generated from the inventory; regenerate it with the command its first lines name."""
    assert (ROOT / "FIGURES.md").read_text() == results_page.figures_md(), (
        "FIGURES.md and samsde_workflow/inventory.py disagree: "
        "run `python -m samsde_workflow.results_page --figures-index FIGURES.md`"
    )
    for fig in FIGURES:
        assert (ROOT / "workflow" / "report" / f"{fig}.rst").exists(), fig
        assert results_page.caption_title(fig), fig


def test_inventory_tables_are_the_figure_rules_inputs():
    """The tables the index lists per figure are the literal inputs of its rule in workflow/rules/figures.smk."""
    smk = (ROOT / "workflow" / "rules" / "figures.smk").read_text()
    block = smk.split("FIGURE_RULES = {")[1].split("\n}\n")[0]
    chunks = re.split(r'^    "(\w+)": \(', block, flags=re.M)[1:]
    literal = {
        fig: re.findall(r'"(results/[^"{]+\.csv)"', body) for fig, body in zip(chunks[::2], chunks[1::2], strict=True)
    }
    assert list(literal) == list(FIGURES)
    for fig, paths in literal.items():
        listed = [t for t in FIGURE_TABLES[fig] if "<" not in t]
        assert sorted(paths) == sorted(listed), fig


def test_front_fragment_shows_the_headline_figure_as_valid_rst(fake_results, tmp_path):
    """With results/figures/weak_error.png the fragment embeds a thumbnail; docutils (which renders the report's
    front page) parses it without a message: no line over its length limit, every link target defined."""
    from docutils.core import publish_parts
    from PIL import Image

    (fake_results / "figures").mkdir()
    Image.new("RGB", (2400, 1600), (200, 30, 30)).save(fake_results / "figures" / "weak_error.png")
    front = tmp_path / "front.rst"
    results_page.main(["--results", str(fake_results), "--out", str(tmp_path / "p.md"), "--front", str(front)])
    text = front.read_text()
    targets = ["claims.html", "claims_weak_error.html", "claims_saddle.html", "weak_error.png", "results.md"]
    links = "".join(f"\n.. _{t}: javascript:show('{t}')" for t in targets)  # what Snakemake appends
    html = publish_parts(text + "\n" + links, writer_name="html", settings_overrides={"report_level": 2})["body"]
    assert "system-message" not in html and 'src="data:image/png;base64,' in html
    assert max(len(line) for line in text.splitlines()) < 200
    assert len(results_page.thumbnail(fake_results / "figures" / "weak_error.png")) < 200_000
