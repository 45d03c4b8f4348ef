"""Send a rule script's output to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging
import sys


@contextlib.contextmanager
def rule_logging(snakemake) -> object:
    """Redirect stdout/stderr (and the ``logging`` root) of a ``script:`` rule to ``snakemake.log[0]``."""
    path = snakemake.log[0] if len(snakemake.log) else None
    if path is None:
        yield logging.getLogger("samsde")
        return
    with open(path, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
        yield logging.getLogger("samsde")
        sys.stdout.flush()
