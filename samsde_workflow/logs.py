"""Send a rule script's output, and its traceback if it fails, to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback


@contextlib.contextmanager
def rule_logging(snakemake) -> object:
    """Redirect stdout/stderr (and the ``logging`` root) of a ``script:`` rule to ``snakemake.log[0]``.

    An exception is written to the log with its traceback and re-raised, so Snakemake still fails the job.
    """
    path = snakemake.log[0] if len(snakemake.log) else None
    if path is None:
        yield logging.getLogger("samsde")
        return
    with open(path, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
        try:
            yield logging.getLogger("samsde")
        except BaseException:
            traceback.print_exc(file=handle)
            raise
        finally:
            sys.stdout.flush()
