"""Every report caption renders as the report renders it (Jinja with the config, then reStructuredText) without a
docutils error or warning: an unescaped |x| is an undefined substitution, and the report shows the error text.
Links to report categories (`Claims`_) are resolved by Snakemake's report, not by docutils: those are allowed."""

import io
from pathlib import Path
from types import SimpleNamespace

import docutils.core
import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = sorted((ROOT / "workflow" / "report").glob("*.rst"))


@pytest.mark.parametrize("config_file", ["config.yaml", "config.smoke.yaml"])
@pytest.mark.parametrize("caption", CAPTIONS, ids=lambda p: p.stem)
def test_caption_renders_without_docutils_messages(caption, config_file):
    config = yaml.safe_load((ROOT / config_file).read_text())
    if config_file != "config.yaml":  # the smoke file is merged over the defaults, as Snakemake does
        config = {**yaml.safe_load((ROOT / "config.yaml").read_text()), **config}
    text = jinja2.Template(caption.read_text()).render(snakemake=SimpleNamespace(config=config))
    messages = io.StringIO()
    docutils.core.publish_doctree(text, settings_overrides={"warning_stream": messages, "report_level": 2})
    found = [m for m in messages.getvalue().splitlines() if m and "Unknown target name" not in m]
    assert found == [], found
