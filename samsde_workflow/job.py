"""The Snakemake context of one rule script, so that a script reads its inputs, calls one experiment function and
writes its outputs.

    with Job(snakemake, "saddle") as job:          # log redirected, torch threads set
        tables = saddle.run(job.settings, job.seed, job.device, job.log)
        job.write(table=tables["table"], claims=claims_frame(saddle.claims(tables, job.settings)))

``job.section`` is the rule's ``params.section`` (what the provenance records), ``job.settings`` the experiment's part
of it, ``job.seed`` the base seed, ``job.device`` the simulation device (resolved and logged on first use).
"""

from __future__ import annotations

import contextlib

import pandas as pd

from samsde_workflow.io import read_table, write_table
from samsde_workflow.logs import rule_logging


class Job:
    def __init__(self, snakemake, experiment: str | None = None):
        self.snakemake = snakemake
        self.rule = snakemake.rule
        params = snakemake.params
        self.section = getattr(params, "section", None)
        self.settings = self.section[experiment] if experiment and self.section is not None else self.section
        seed = getattr(params, "seed", None)
        self.seed = seed if seed is not None else (self.section or {}).get("seed")
        self.log = None
        self._device = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Job:
        self.log = self._stack.enter_context(rule_logging(self.snakemake))
        if self.snakemake.threads:
            import torch

            torch.set_num_threads(self.snakemake.threads)
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)

    @property
    def device(self):
        if self._device is None:
            from samsde_workflow.config import simulation_device

            name = (self.section or {}).get("device") or getattr(self.snakemake.params, "device", "cpu")
            self._device = simulation_device(name, self.log)
        return self._device

    def read(self, name: str) -> pd.DataFrame:
        """The input table ``name``; several files under one name are concatenated."""
        paths = self.snakemake.input[name]
        if isinstance(paths, str):
            return read_table(paths)
        return pd.concat([read_table(p) for p in paths], ignore_index=True)

    def write(self, **tables: pd.DataFrame) -> None:
        """Write each table to the output of that name, with its provenance (section, seed, rule)."""
        for name, table in tables.items():
            write_table(table, self.snakemake.output[name], self.section, self.seed, rule=self.rule)
