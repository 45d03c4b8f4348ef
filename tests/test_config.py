"""Config validation: every bad value is rejected before any job starts, with a message naming key and value."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from samsde_workflow.config import ConfigError, task_setting, validate_config

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def edited(edit) -> dict:
    config = copy.deepcopy(DEFAULT)
    edit(config)
    return config


def setitem(path: str, value):
    """An edit that sets config[a][b]... = value for path 'a.b...' (integers index lists)."""

    def edit(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return edit


def delitem(path: str):
    def edit(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        del node[last]

    return edit


def both(*edits):
    def edit(config):
        for one in edits:
            one(config)

    return edit


# (edit, substrings the message must contain: the key and the offending value)
BAD = {
    "negative eta": (setitem("weak_error.etas", [0.1, -0.05]), ["weak_error.etas[1]", "-0.05"]),
    "zero eta": (setitem("weak_error.etas", [0.0]), ["weak_error.etas[0]", "0.0"]),
    "empty eta list": (setitem("weak_error.etas", []), ["weak_error.etas", "[]"]),
    "eta is a string": (setitem("weak_error.etas", ["fast"]), ["weak_error.etas[0]", "fast"]),
    "unknown task": (
        setitem("weak_error.tasks.mnist", {"source": "paper", "params": {}}),
        ["weak_error.tasks", "mnist"],
    ),
    "unknown algorithm": (setitem("weak_error.algorithms", ["usam", "adam"]), ["weak_error.algorithms[1]", "adam"]),
    "sgd is not a weak-error algorithm": (
        setitem("weak_error.algorithms", ["sgd"]),
        ["weak_error.algorithms[0]", "sgd"],
    ),
    "scaling without a constant": (
        setitem("weak_error.scalings.sqrt", {"alpha": 0.5}),
        ["weak_error.scalings.sqrt", "'c'"],
    ),
    "negative scaling constant": (setitem("weak_error.scalings.sqrt.c", -1.0), ["weak_error.scalings.sqrt.c", "-1.0"]),
    "resolution below 1": (setitem("weak_error.resolution", 0), ["weak_error.resolution", "0"]),
    "fractional resolution": (setitem("weak_error.resolution", 2.5), ["weak_error.resolution", "2.5"]),
    "one path": (setitem("weak_error.n_paths", 1), ["weak_error.n_paths", "1"]),
    "unknown diffusion mode": (setitem("weak_error.diffusion", "milstein"), ["weak_error.diffusion", "milstein"]),
    "unknown noise kind": (setitem("weak_error.noise.kind", "cauchy"), ["weak_error.noise.kind", "cauchy"]),
    "negative sigma": (setitem("weak_error.noise.sigma", -0.5), ["weak_error.noise.sigma", "-0.5"]),
    "misspelled key": (setitem("weak_error.horizn", 2.0), ["weak_error", "horizn"]),
    "unknown top-level key": (setitem("extra", 1), ["<top level>", "extra"]),
    "missing section": (delitem("saddle"), ["<top level>", "saddle"]),
    "unknown device": (setitem("device", "tpu"), ["device", "tpu"]),
    "negative seed": (setitem("seed", -3), ["seed", "-3"]),
    "spectrum and x0 of different lengths": (
        setitem("weak_error.tasks.quadratic.params", {"spectrum": [1.0, 2.0, -0.5], "x0": [1.0, 1.0]}),
        ["weak_error.tasks.quadratic.params.x0", "2", "3"],
    ),
    "bad task parameter": (
        setitem("weak_error.tasks.iris.params", {"n_hiden": 4}),
        ["weak_error.tasks.iris.params", "n_hiden"],
    ),
    "dim contradicts spectrum": (
        setitem("weak_error.tasks.quadratic.params", {"dim": 4, "spectrum": [1.0, 2.0]}),
        ["weak_error.tasks.quadratic.params", "dim 4"],
    ),
    "positive saddle eigenvalue": (
        setitem("saddle.negative_eigenvalues", [-1.0, 0.5]),
        ["saddle.negative_eigenvalues[1]", "0.5"],
    ),
    "negative rho in a sweep": (
        setitem("quadratic_stationary.rhos", [0.0, -0.1]),
        ["quadratic_stationary.rhos[1]", "-0.1"],
    ),
    "per-task override with a bad value": (
        setitem("weak_error.tasks.iris.n_paths", 0),
        ["weak_error.tasks.iris.n_paths", "0"],
    ),
    "minibatch without batch size": (
        setitem("weak_error.tasks.iris.noise", {"kind": "minibatch"}),
        ["weak_error.tasks.iris.noise", "batch_size"],
    ),
    "inverted slope range": (setitem("claims.control_slope_range", [1.2, 0.8]), ["claims.control_slope_range", "1.2"]),
    "drift ablation at an unknown scaling": (
        setitem("weak_error.drift_ablation", ["sqrt", "cubic"]),
        ["weak_error.drift_ablation[1]", "cubic"],
    ),
    "duplicate etas of a task": (
        setitem("weak_error.tasks.iris.etas", [0.1, 0.05, 0.1]),
        ["weak_error.tasks.iris.etas", "duplicates"],
    ),
    "scaling named like the control": (
        setitem("weak_error.scalings.none", {"alpha": 0.5, "c": 0.1}),
        ["weak_error.scalings.none", "reserved"],
    ),
    "horizon shorter than a step": (
        setitem("weak_error.tasks.iris.horizon", 0.05),
        ["weak_error.tasks.iris.horizon", "0.05", "shorter than one step", "0.1"],
    ),
    # the mini-batch stage
    "batch as large as the data": (
        setitem("weak_error_minibatch.tasks.iris.batch_size", 150),
        ["weak_error_minibatch.tasks.iris.batch_size", "150", "[1, 149]"],
    ),
    "batch larger than the data": (
        setitem("weak_error_minibatch.batch_size", 500),
        ["weak_error_minibatch.batch_size", "500", "'iris'"],
    ),
    "zero batch size": (setitem("weak_error_minibatch.batch_size", 0), ["weak_error_minibatch.batch_size", "0"]),
    "n_inner below 2": (setitem("weak_error_minibatch.n_inner", 1), ["weak_error_minibatch.n_inner", "1"]),
    "n_inner above N for the sampled root": (
        setitem("weak_error_minibatch.tasks.iris.n_inner", 151),
        ["weak_error_minibatch.tasks.iris.n_inner", "151", "N = 150"],
    ),
    "mini-batch task that is not a finite sum": (
        setitem("weak_error_minibatch.tasks.quadratic", {"source": "paper", "params": {}}),
        ["weak_error_minibatch.tasks", "quadratic"],
    ),
    "unknown mini-batch diffusion": (
        setitem("weak_error_minibatch.diffusion", "gaussian"),
        ["weak_error_minibatch.diffusion", "gaussian"],
    ),
    "formula ablation at an unknown scaling": (
        setitem("weak_error_minibatch.formula_ablation", ["linear"]),
        ["weak_error_minibatch.formula_ablation[0]", "linear"],
    ),
    "duplicate mini-batch etas": (
        setitem("weak_error_minibatch.etas", [0.1, 0.1]),
        ["weak_error_minibatch.etas", "duplicates"],
    ),
    "mini-batch horizon shorter than a step": (
        setitem("weak_error_minibatch.horizon", 0.01),
        ["weak_error_minibatch.horizon", "0.01", "shorter than one step"],
    ),
    "NaN eta": (setitem("weak_error_minibatch.etas", [float("nan")]), ["weak_error_minibatch.etas[0]", "nan"]),
    # semantic checks the schema cannot express (samsde_workflow.config_checks), one case each
    "horizon not a whole number of steps": (
        setitem("weak_error.tasks.iris.horizon", 0.25),
        ["weak_error.tasks.iris.horizon", "0.25", "not a whole number of steps eta = 0.1"],
    ),
    "records sparser than the run": (
        setitem("weak_error_minibatch.record_every", 50),
        ["weak_error_minibatch.record_every", "50", "10 steps"],
    ),
    "stationary horizon not a whole number of steps": (
        setitem("quadratic_stationary.horizon", 16.005),
        ["quadratic_stationary.horizon", "16.005", "whole number"],
    ),
    "burn-in leaves nothing to average": (
        setitem("quadratic_stationary.burn_in", 16.0),
        ["quadratic_stationary.burn_in", "16.0", "fewer than two records"],
    ),
    "unstable stationary step": (setitem("quadratic_stationary.eta", 0.5), ["quadratic_stationary.eta", "0.5"]),
    "duplicate rhos": (setitem("quadratic_stationary.rhos", [0.0, 0.1, 0.1]), ["quadratic_stationary.rhos", "0.1"]),
    "duplicate Hessian scales": (
        setitem("quadratic_stationary.hessian_scales", [1.0, 1.0]),
        ["quadratic_stationary.hessian_scales", "non-unique"],
    ),
    "NaN rho": (setitem("saddle.rhos", [0.1, float("nan")]), ["saddle.rhos[1]", "nan"]),
    "duplicate saddle eigenvalues": (
        setitem("saddle.negative_eigenvalues", [-1.0, -1.0]),
        ["saddle.negative_eigenvalues", "non-unique"],
    ),
    "saddle horizon shorter than a step": (
        setitem("saddle.horizon", 0.005),
        ["saddle.horizon", "0.005", "shorter than one step"],
    ),
    "saddle records sparser than the run": (
        setitem("saddle.record_every", 5000),
        ["saddle.record_every", "5000", "1000 steps"],
    ),
    "radius factors all inside": (
        setitem("saddle.radius_factors", [0.25, 0.5, 0.75]),
        ["saddle.radius_factors", "[0.25, 0.5, 0.75]", "below and above 1"],
    ),
    "matrix sensing with isolated minima": (
        setitem("hessian_trace.params.n_measurements", 36),
        ["hessian_trace.params.n_measurements", "36", "n (n + 1) / 2 = 36"],
    ),
    "bad matrix sensing parameter": (
        setitem("hessian_trace.params.n_measurement", 30),
        ["hessian_trace.params", "n_measurement"],
    ),
    "hessian trace horizon not a whole number of steps": (
        setitem("hessian_trace.horizon", 40.01),
        ["hessian_trace.horizon", "40.01"],
    ),
    "hessian trace records sparser than the run": (
        setitem("hessian_trace.record_every", 801),
        ["hessian_trace.record_every", "801"],
    ),
    "sharp well wider than the flat one": (
        setitem("flat_minima.params.sharp_width", 1.0),
        ["flat_minima.params.sharp_width", "1.0", "0.75"],
    ),
    "bad two-basin parameter": (setitem("flat_minima.params.depth", 2.0), ["flat_minima.params", "depth"]),
    "svag floor task not a task": (
        setitem("svag_convergence.floor_tasks", {"quadratic": ["usam"], "breast_cancer": ["sgd"]}),
        ["svag_convergence.floor_tasks.breast_cancer", "'breast_cancer'"],
    ),
    "svag floor algorithm run nowhere": (
        setitem("svag_convergence.floor_algorithms", ["sgd"]),
        ["svag_convergence.floor_algorithms", "'sgd'", "runs on no task"],
    ),
    # SVAG's limit is not the SAM SDE (O(rho^2) apart even on a quadratic): a SAM floor claim is rejected by key
    "svag floor claim for sam on the quadratic": (
        setitem("svag_convergence.floor_tasks", {"quadratic": ["usam", "sam"]}),
        ["svag_convergence.floor_tasks.quadratic", "'sam'", "rho^2 H Cov(u) H"],
    ),
    "svag floor claim for sam on every task": (
        setitem("svag_convergence.floor_algorithms", ["sam"]),
        ["svag_convergence.floor_algorithms", "'sam'", "rho^2 H Cov(u) H"],
    ),
    "svag floor claim for usam on a network": (
        both(
            setitem("svag_convergence.tasks.iris.algorithms", ["sam", "usam"]),
            setitem("svag_convergence.floor_tasks", {"iris": ["usam"]}),
        ),  # fmt: skip
        ["svag_convergence.floor_tasks.iris", "'usam'", "only on the quadratic"],
    ),
    "svag per-algorithm grid for an algorithm not run": (
        setitem("svag_convergence.tasks.iris.ls", {"usam": [1, 2, 4]}),
        ["svag_convergence.tasks.iris.ls.usam", "'usam'"],
    ),
    "svag task grid duplicated l": (
        setitem("svag_convergence.tasks.quadratic.ls", [1, 2, 2, 4]),
        ["svag_convergence", "ls"],
    ),
    "svag horizon not whole steps": (setitem("svag_convergence.horizon", 0.25), ["svag_convergence.horizon", "0.25"]),
    "svag bad task parameter": (
        setitem("svag_convergence.tasks.quadratic.params", {"dim": 10, "width": 3}),
        ["svag_convergence.tasks.quadratic.params", "width"],
    ),
    "svag unknown task": (setitem("svag_convergence.tasks.mnist", {}), ["svag_convergence.tasks", "mnist"]),
    "svag minibatch noise": (
        setitem("svag_convergence.noise", {"kind": "minibatch", "sigma": 0.5}),
        ["svag_convergence.noise.kind", "minibatch"],
    ),
    "svag scale odd l": (setitem("svag_scale.l", 15), ["svag_scale.l", "15"]),
    "odd antithetic SDE paths": (
        setitem("weak_error_minibatch.tasks.teacher_student.n_paths", 301),
        ["weak_error_minibatch.tasks.teacher_student.n_paths", "301", "pairs"],
    ),
    "svag scale horizon not whole steps": (setitem("svag_scale.horizon", 0.55), ["svag_scale.horizon", "0.55"]),
    "svag scale unknown task": (setitem("svag_scale.task.name", "mnist"), ["svag_scale.task.name", "mnist"]),
    "svag scale bad task parameter": (
        setitem("svag_scale.task.params", {"n_in": 20, "width": 3}),
        ["svag_scale.task.params", "width"],
    ),
    "flat-minima horizon not a whole number of steps": (
        setitem("flat_minima.horizon", 40.05),
        ["flat_minima.horizon", "40.05"],
    ),
    "duplicate flat-minima rhos": (setitem("flat_minima.rhos", [0.0, 0.0]), ["flat_minima.rhos", "non-unique"]),
    "small batch not below the large batch": (
        setitem("lecture.large_batch.small_batch", 314),
        ["lecture.large_batch.small_batch", "314"],
    ),
    "large batch larger than the training set": (
        setitem("lecture.large_batch.large_batch", 5000),
        ["lecture.large_batch.large_batch", "5000", "1258 training samples"],
    ),
    "duplicate Keskar radii": (
        setitem("lecture.large_batch.keskar_eps0", [1.0e-3, 1.0e-3]),
        ["lecture.large_batch.keskar_eps0", "non-unique"],
    ),
    "inverted interpolation range": (
        setitem("lecture.interpolation.alpha_range", [2.0, -1.0]),
        ["lecture.interpolation.alpha_range", "2.0"],
    ),
    "gap share above one": (setitem("lecture.lr_scaling.min_gap_closed", 1.5), ["lecture.lr_scaling.min_gap_closed"]),
    "SAM batch larger than the sweep's training set": (
        setitem("lecture.sam_vs_sgd.batch_size", 1100),
        ["lecture.sam_vs_sgd.batch_size", "1100", "1006 samples"],
    ),
    "rho grid of a method not run": (
        setitem("lecture.sam_vs_sgd.methods", ["sgd", "sam"]),
        ["lecture.sam_vs_sgd.rho_grid", "not a method ['usam']"],
    ),
    "ascent method without a rho grid": (
        setitem("lecture.sam_vs_sgd.rho_grid", {"sam": [0.1]}),
        ["lecture.sam_vs_sgd.rho_grid", "missing ['usam']"],
    ),
    "duplicate rho grid": (
        setitem("lecture.sam_vs_sgd.rho_grid.sam", [0.1, 0.1]),
        ["lecture.sam_vs_sgd.rho_grid.sam", "non-unique"],
    ),
    "label-noise shares with one name": (
        setitem("lecture.sam_vs_sgd.label_noise", [0.2, 0.201]),
        ["lecture.sam_vs_sgd.label_noise", "[20, 20]"],
    ),
    "label-noise share below a percent": (
        setitem("lecture.sam_vs_sgd.label_noise", [0.004]),
        ["lecture.sam_vs_sgd.label_noise", "0.004"],
    ),
    "more spectra than solutions": (
        setitem("lecture.hessian_spectrum.n_seeds", 41),
        ["lecture.hessian_spectrum.n_seeds", "41", "40 solutions"],
    ),
    "more eigenvalues than Lanczos steps": (
        setitem("lecture.hessian_spectrum.top_k", 81),
        ["lecture.hessian_spectrum.top_k", "81", "80"],
    ),
    "diverging bouncing quadratic": (
        setitem("lecture.bouncing.quadratic.eta", 1.0),
        ["lecture.bouncing.quadratic.eta", "1.0", ">= 2"],
    ),
    "two-cycle window longer than the run": (
        setitem("lecture.bouncing.quadratic.window", 301),
        ["lecture.bouncing.quadratic.window", "301"],
    ),
    "valley ends swapped": (setitem("lecture.bouncing.valley.a_min", 5.0), ["lecture.bouncing.valley.a_min", "5.0"]),
    "diverging valley": (setitem("lecture.bouncing.valley.eta", 0.5), ["lecture.bouncing.valley.eta", "0.5"]),
    # combinations the schema accepts that the code cannot run (rejected before any job)
    "SAM's first-order diffusion on psd noise": (
        setitem("weak_error.tasks.quadratic.noise", {"kind": "psd", "sigma": 0.5}),
        ["weak_error.tasks.quadratic.noise.kind", "'psd'", "set weak_error.diffusion: exact"],
    ),
    "SVAG reference SDE's first-order SAM diffusion on psd noise": (
        setitem("svag_convergence.noise", {"kind": "psd", "sigma": 0.5}),
        ["svag_convergence.noise.kind", "'psd'", "svag_convergence.diffusion: exact"],
    ),
    "closed-form SAM moments on psd noise": (
        lambda c: c["weak_error"]["tasks"]["quadratic"].update(
            noise={"kind": "psd", "sigma": 0.5}, sam_moments="closed_form"
        ),
        ["weak_error.tasks.quadratic.sam_moments", "'closed_form' needs isotropic noise"],
    ),
    "mini-batch noise on a task that is not a finite sum": (
        setitem("weak_error.tasks.quadratic.noise", {"kind": "minibatch", "batch_size": 4}),
        ["weak_error.tasks.quadratic.noise", "not a finite sum"],
    ),
    "full-batch minibatch noise (B = N) in the weak-error stage": (
        setitem("weak_error.tasks.iris.noise", {"kind": "minibatch", "batch_size": 150}),
        ["weak_error.tasks.iris.noise.batch_size", "150", "[1, 149]", "'none'"],
    ),
    "no test samples": (
        setitem("lecture.data.test_fraction", 1.0e-4),
        ["lecture.data.test_fraction", "0.0001", "0 test samples"],
    ),
    "no validation samples": (
        setitem("lecture.sam_vs_sgd.validation_fraction", 1.0e-4),
        ["lecture.sam_vs_sgd.validation_fraction", "0.0001", "holds out 0"],
    ),
    "more eigenvalues than parameters": (
        lambda c: (
            setitem("lecture.model.hidden", [])(c),
            setitem("lecture.hessian_spectrum.top_k", 651)(c),
            setitem("lecture.hessian_spectrum.topk_iters", 700)(c),
        ),  # fmt: skip
        ["lecture.hessian_spectrum.top_k", "651", "650 parameters"],
    ),
    "full-batch checkpoints not ending at n_steps": (
        setitem("lecture.full_batch_sharpness.checkpoints", [0, 50, 100]),
        ["lecture.full_batch_sharpness.checkpoints", "[0, 50, 100]", "n_steps 200"],
    ),
    "full-batch checkpoints out of order": (
        setitem("lecture.full_batch_sharpness.checkpoints", [0, 100, 50, 200]),
        ["lecture.full_batch_sharpness.checkpoints", "[0, 100, 50, 200]"],
    ),
    "full-batch alignment windows overlap": (
        setitem("lecture.full_batch_sharpness.compare", 4),
        ["lecture.full_batch_sharpness.compare", "4", "overlap"],
    ),
    "valley records sparser than the run": (
        setitem("lecture.bouncing.valley.record_every", 4000),
        ["lecture.bouncing.valley.record_every", "4000"],
    ),
}


# ---- every size parameter at least its real minimum ---------------------------------------------------------
# The least value each integer size key of config.yaml runs with and computes its statistics with (README of the
# bounds: the report of this change; the task parameters' bounds are the tasks' ``param_bounds``).  2 for a count
# behind a standard error (ddof 1: paths, seeds, Hutchinson and average-direction samples, inner samples); 10 for
# bootstrap replicates (a 95% percentile interval); 3 interpolation points; 2 density grid points and two-cycle
# window steps; SVAG's largest l even and >= 2 (SVAG_l/2 is its residual check); 1 for every other size.
SIZE_MINIMA = {
    **{f"weak_error.{k}": m for k, m in {"resolution": 1, "n_paths": 2, "n_boot": 10, "inner_samples": 2}.items()},
    "weak_error.record_every": 1,
    "weak_error.tasks.quadratic.params.dim": 1,
    "weak_error.tasks.iris.params.n_hidden": 1,
    "weak_error.tasks.iris.n_paths": 2,
    "weak_error.tasks.breast_cancer.params.n_hidden": 1,
    "weak_error.tasks.breast_cancer.n_paths": 2,
    **{f"weak_error.tasks.teacher_student.params.{k}": 1 for k in ("n_in", "n_hidden", "n_samples")},
    "weak_error.tasks.teacher_student.n_paths": 2,
    **{f"weak_error_minibatch.{k}": m for k, m in {"resolution": 1, "n_paths": 2, "n_boot": 10, "n_inner": 2}.items()},
    "weak_error_minibatch.discrete_paths": 2,
    "weak_error_minibatch.batch_size": 1,
    "weak_error_minibatch.record_every": 1,
    "weak_error_minibatch.tasks.iris.params.n_hidden": 1,
    **{f"weak_error_minibatch.tasks.teacher_student.params.{k}": 1 for k in ("n_in", "n_hidden", "n_samples")},
    "weak_error_minibatch.tasks.teacher_student.batch_size": 1,
    "weak_error_minibatch.tasks.teacher_student.discrete_paths": 2,
    **{f"weak_error_minibatch.exact_anchor.{k}": m for k, m in {"n_data": 2, "dim": 1, "batch_size": 1}.items()},
    "svag_convergence.ls.0": 1,
    **{f"svag_convergence.{k}": m for k, m in {"n_paths": 2, "resolution": 1, "n_boot": 10}.items()},
    "svag_convergence.tasks.quadratic.params.dim": 1,
    "svag_convergence.tasks.quadratic.ls.0": 1,
    "svag_convergence.tasks.quadratic.resolution": 1,
    "svag_convergence.tasks.iris.params.n_hidden": 1,
    "svag_convergence.tasks.iris.n_paths": 2,
    **{f"svag_convergence.tasks.teacher_student.params.{k}": 1 for k in ("n_in", "n_hidden", "n_samples")},
    "svag_convergence.tasks.teacher_student.n_paths": 2,
    **{f"svag_scale.{k}": m for k, m in {"l": 2, "n_paths": 2, "n_boot": 10}.items()},
    **{f"svag_scale.task.params.{k}": 1 for k in ("n_in", "n_hidden", "n_samples")},
    **{f"quadratic_stationary.{k}": m for k, m in {"resolution": 1, "n_paths": 2, "inner_samples": 2}.items()},
    "quadratic_stationary.record_every": 1,
    **{f"saddle.{k}": m for k, m in {"n_paths": 2, "resolution": 1, "inner_samples": 2, "record_every": 1}.items()},
    **{f"hessian_trace.params.{k}": 1 for k in ("n", "rank", "k", "n_measurements")},
    "hessian_trace.n_paths": 2,
    "hessian_trace.record_every": 1,
    "flat_minima.params.dim": 1,
    **{f"flat_minima.{k}": m for k, m in {"n_paths": 2, "resolution": 1, "inner_samples": 2}.items()},
    "lecture.model.hidden.0": 1,
    **{f"lecture.large_batch.{k}": 1 for k in ("small_batch", "large_batch", "epochs", "keskar_steps")},
    "lecture.large_batch.lanczos_iters": 1,
    "lecture.large_batch.n_seeds": 2,
    "lecture.interpolation.n_alphas": 3,
    "lecture.lr_scaling.n_boot": 10,
    "lecture.sam_vs_sgd.n_seeds": 2,
    **{f"lecture.sam_vs_sgd.{k}": 1 for k in ("batch_size", "epochs", "sweep_seeds")},
    **{f"lecture.hessian_spectrum.{k}": 2 for k in ("n_seeds", "density_grid", "hutchinson_samples")},
    "lecture.hessian_spectrum.average_samples": 2,
    **{f"lecture.hessian_spectrum.{k}": 1 for k in ("top_k", "topk_iters", "lanczos_iters", "slq_lanczos")},
    **{f"lecture.hessian_spectrum.{k}": 1 for k in ("slq_probes", "worst_steps")},
    "lecture.full_batch_sharpness.n_seeds": 2,
    **{f"lecture.full_batch_sharpness.{k}": 1 for k in ("n_steps", "compare", "lanczos_iters")},
    "lecture.full_batch_sharpness.checkpoints.0": 0,
    "lecture.bouncing.n_seeds": 2,
    "lecture.bouncing.quadratic.n_steps": 1,
    "lecture.bouncing.quadratic.window": 2,
    "lecture.bouncing.valley.n_steps": 1,
    "lecture.bouncing.valley.record_every": 1,
}


def _integer_keys(node, path=()):
    """The dotted path of every integer (not bool) in the config, list items by index; seeds are any integer."""
    if isinstance(node, dict):
        return [k for key, value in node.items() if key != "seed" for k in _integer_keys(value, (*path, key))]
    if isinstance(node, list):
        return [k for i, value in enumerate(node) for k in _integer_keys(value, (*path, str(i)))][:1]
    return [".".join(path)] if isinstance(node, int) and not isinstance(node, bool) else []


def test_every_integer_key_has_its_minimum():
    """SIZE_MINIMA covers every integer of config.yaml (a new size key needs its minimum and a rejection case)."""
    assert set(_integer_keys(DEFAULT)) == set(SIZE_MINIMA)


@pytest.mark.parametrize("path", sorted(SIZE_MINIMA))
def test_size_below_its_minimum_is_rejected(path):
    value = SIZE_MINIMA[path] - 1
    with pytest.raises(ConfigError) as info:
        validate_config(edited(setitem(path, value)))
    message = str(info.value)
    if path.split(".")[-1].isdigit():  # a list item: named by its index (svag_convergence.ls[0]) or in its list
        assert f"config key {path.rsplit('.', 1)[0]}" in message and f"{value}" in message, message
    else:
        assert f"config key {path}: value {value} is invalid" in message, message


@pytest.mark.parametrize(
    "path",
    [
        "weak_error.tasks.iris.params.n_hidden",
        "weak_error.tasks.teacher_student.params.n_samples",
        "weak_error.tasks.iris.n_paths",
        "saddle.n_paths",
        "hessian_trace.n_paths",
        "flat_minima.params.dim",
        "svag_scale.task.params.n_in",
    ],
)
def test_size_at_its_minimum_is_accepted(path):
    """The bounds are the real minima, not stricter ones: each of these runs at its minimum."""
    validate_config(edited(setitem(path, SIZE_MINIMA[path])))


def test_default_and_smoke_configs_are_valid():
    validate_config(copy.deepcopy(DEFAULT))
    validate_config(yaml.safe_load((ROOT / "config.smoke.yaml").read_text()))


def test_smoke_config_has_the_same_keys():
    smoke = yaml.safe_load((ROOT / "config.smoke.yaml").read_text())

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            tasks = ("weak_error.tasks", "weak_error_minibatch.tasks", "svag_convergence.tasks")
            if prefix.startswith((*tasks, "svag_convergence.floor_tasks")) or prefix.endswith("params"):
                continue  # task lists, per-task overrides, task -> algorithm maps and task parameters may differ
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(smoke) == keys(DEFAULT)


def test_smoke_config_is_itself_after_snakemakes_merge():
    """The Snakefile reads config.yaml next to itself and merges a --configfile over it key by key: the smoke
    config must write out every key whose default differs, or per-task entries of config.yaml (breast_cancer's
    sigma, teacher-student's 600 mini-batch paths) leak into the smoke run."""
    from snakemake.utils import update_config

    smoke = yaml.safe_load((ROOT / "config.smoke.yaml").read_text())
    merged = copy.deepcopy(DEFAULT)
    update_config(merged, smoke)
    assert merged == smoke


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_is_rejected_with_key_and_value(case):
    edit, needles = BAD[case]
    with pytest.raises(ConfigError) as info:
        validate_config(edited(edit))
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{case}: {needle!r} not in message:\n{message}"


def test_task_overrides_apply_per_task():
    config = edited(setitem("weak_error.tasks.iris.n_paths", 123))
    assert task_setting(config, "iris")["n_paths"] == 123
    assert task_setting(config, "quadratic")["n_paths"] == DEFAULT["weak_error"]["n_paths"]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "1"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)


def test_snakemake_stops_before_any_job(tmp_path):
    """A bad config stops `snakemake` at start-up: its lines once, no traceback, a non-zero exit, nothing created
    or removed.  (Before, the message came twice, the second time inside a traceback through common.smk.)"""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"weak_error": {"etas": [0.1, -0.05]}, "saddle": {"rhos": [0.1, 0.1]}}))
    keep = tmp_path / "results" / "claims.csv"
    keep.parent.mkdir()
    keep.write_text("already computed\n")
    out = _snakemake(tmp_path, "--configfile", str(path))
    printed = out.stderr + out.stdout
    assert out.returncode != 0
    assert printed.count("invalid config:") == 1, printed
    assert printed.count("config key weak_error.etas[1]: value -0.05") == 1, printed
    assert "Traceback" not in printed and 'File "' not in printed, printed
    assert keep.read_text() == "already computed\n"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["claims.csv"]
    assert not (tmp_path / "logs").exists()


def test_resolve_config_keeps_the_form_of_the_task_params_the_user_names():
    """Snakemake merges a --configfile key by key; a task's params whose constructor takes alternative forms keep
    only the form the override names (the quadratic: generated {dim, seed} or given {spectrum, x0})."""
    from samsde_workflow.config import resolve_config

    def quadratic(params):
        override = {"weak_error": {"tasks": {"quadratic": {"params": params}}}}
        return resolve_config(DEFAULT, override)["weak_error"]["tasks"]["quadratic"]["params"]

    given = {"spectrum": [1.0, 2.0], "x0": [1.0, 1.0]}
    assert quadratic(given) == {"seed": 0, **given}
    assert quadratic({"dim": 4}) == {"dim": 4, "seed": 0}
    assert quadratic({"dim": 4, "spectrum": [1.0]}) == {"dim": 4, "seed": 0, "spectrum": [1.0]}  # both: rejected
    iris = resolve_config(DEFAULT, {"weak_error": {"tasks": {"iris": {"params": {"n_hidden": 8}}}}})
    assert iris["weak_error"]["tasks"]["iris"]["params"] == {"n_hidden": 8, "l2": 0.001, "init_scale": 0.5}
    assert iris["weak_error"]["tasks"]["iris"]["n_paths"] == 500  # the rest merges as Snakemake merges it
    assert resolve_config(DEFAULT, {}) == DEFAULT


def test_a_users_quadratic_runs_from_a_config_file(tmp_path):
    """examples/quadratic_spectrum.yaml (docs/configuration.md) overrides only the quadratic's params with a
    spectrum: the DAG builds, one simulation job per eta of the quadratic and no other task's.  Before,
    config.yaml's dim 10 survived next to the 5 eigenvalues and the run stopped: "dim 10 does not match"."""
    example = ROOT / "examples" / "quadratic_spectrum.yaml"
    page = (ROOT / "docs" / "configuration.md").read_text()
    shown = page.split("\n# examples/quadratic_spectrum.yaml:")[1].split("```")[0].split("\n", 1)[1]
    assert yaml.safe_load(shown) == yaml.safe_load(example.read_text())  # the page shows the file a test runs
    out = _snakemake(tmp_path, "-n", "--configfile", str(example))
    assert out.returncode == 0, out.stderr + out.stdout
    jobs = dict(line.split()[:2] for line in out.stdout.splitlines() if line.strip().startswith("simulate"))
    assert jobs == {"simulate_weak_error": str(len(DEFAULT["weak_error"]["etas"]))}, out.stdout


def test_minibatch_task_setting_is_what_run_cell_takes():
    setting = task_setting(DEFAULT, "iris", "weak_error_minibatch")
    section = DEFAULT["weak_error_minibatch"]
    assert setting["noise"] == {"kind": "minibatch", "batch_size": section["batch_size"]}
    assert setting["inner_samples"] == section["n_inner"] and setting["formula_ablation"] == ["sqrt"]
    assert "drift_ablation" not in setting and "batch_size" not in setting and "n_inner" not in setting
