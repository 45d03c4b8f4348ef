"""Full-batch SAM against gradient descent on the lecture's MLP (samsde.experiments.lecture.full_batch_sharpness):
the alignment measure against its closed form on a quadratic, the batched full-batch steps against the one-run
step of samsde.algorithms, the experiment's tables on tiny sizes, and its claims computed from the tables."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from samsde import make_generator
from samsde import sharpness as sh
from samsde.algorithms import discrete_step
from samsde.experiments.lecture import full_batch_sharpness as fb
from samsde.lecture import MLP, shared_split
from samsde.lecture.batched import SeedStack, full_batch_steps
from samsde.tasks import random_orthogonal

matplotlib.use("Agg")
DTYPE = torch.float64
SPECTRUM = torch.tensor([3.0, 1.5, 0.7, 0.2, 0.05], dtype=DTYPE)


def quadratic():
    q = random_orthogonal(SPECTRUM.numel(), make_generator(0, "test", "fb", "rotation"), DTYPE)
    return q, (lambda theta: 0.5 * theta @ (q @ torch.diag(SPECTRUM) @ q.T) @ theta)


def test_ascent_alignment_matches_the_closed_form_on_a_quadratic():
    """On L = theta^T H theta / 2, g = H theta: |cos(g, v_1)| = |lam_1 c_1| / ||H theta||, c = Q^T theta.  Along
    v_1 it is 1 (to Lanczos accuracy, 1e-8), with no v_1 component 0, with g = 0 NaN."""
    q, loss = quadratic()
    top = sh.lambda_max(loss, torch.zeros(5, dtype=DTYPE), generator=make_generator(0, "test", "fb", "lanczos"))
    assert top.value == pytest.approx(3.0, rel=1e-10)
    assert sh.ascent_alignment(loss, 0.7 * q[:, 0], top.vector) == pytest.approx(1.0, abs=1e-8)
    assert sh.ascent_alignment(loss, q[:, 1] - 2 * q[:, 3], top.vector) == pytest.approx(0.0, abs=1e-8)
    coords = torch.tensor([0.4, -1.0, 2.0, 0.3, -5.0], dtype=DTYPE)
    expected = abs(SPECTRUM[0] * coords[0]) / torch.linalg.vector_norm(SPECTRUM * coords)
    assert sh.ascent_alignment(loss, q @ coords, top.vector) == pytest.approx(expected.item(), rel=1e-8)
    assert sh.ascent_alignment(loss, q @ coords, -3 * q[:, 0]) == pytest.approx(expected.item(), rel=1e-12)
    assert math.isnan(sh.ascent_alignment(loss, torch.zeros(5, dtype=DTYPE), top.vector))


@pytest.fixture(scope="module")
def small():
    data = shared_split("breast_cancer", 0.3, 0, DTYPE)
    return data, MLP([6], "tanh", "float64")


def test_full_batch_steps_equal_the_one_run_step_of_samsde_algorithms(small):
    """Two seeds x (GD, SAM) as one batched model equal samsde.algorithms.discrete_step (z = 0) on each run's flat
    parameters with the gradient of the objective closure, to 1e-10 after 5 steps."""
    data, mlp = small
    lr, rho, l2, steps = 0.5, 0.3, 0.05, 5
    members = [("sgd", 0), ("sgd", 1), ("sam", 0), ("sam", 1)]
    stack = SeedStack.build(mlp, data, [make_generator(0, "test", "fb", "init", r) for _, r in members])
    start = stack.models(mlp, data)
    full_batch_steps(
        stack, data.x_train, data.y_train, lr=lr, rho=[rho if m == "sam" else 0.0 for m, _ in members], l2=l2,
        n_steps=steps,
    )  # fmt: skip
    for (method, _), model, after in zip(members, start, stack.models(mlp, data), strict=True):
        loss = fb.objective_closure(model, data, l2)

        def grad(x, loss=loss):
            point = x[0].detach().requires_grad_(True)
            return torch.autograd.grad(loss(point), point)[0].unsqueeze(0)

        x = sh.get_flat_params(model).unsqueeze(0)
        for _ in range(steps):
            x = discrete_step(method, x, grad, torch.zeros_like(x), lr, rho)
        assert torch.allclose(sh.get_flat_params(after), x[0], rtol=0, atol=1e-10), method
    # SAM moved differently from GD (the test is not vacuous)
    final = [sh.get_flat_params(m) for m in stack.models(mlp, data)]
    assert (final[0] - final[2]).abs().max() > 1e-3


SETTINGS = {
    "n_seeds": 3,
    "lr": 1.0,
    "rho": 0.2,
    "l2": 0.01,
    "n_steps": 12,
    "checkpoints": [0, 4, 12],
    "compare": 1,
    "lanczos_iters": 15,
}


def test_experiment_writes_its_tables_on_tiny_sizes(small):
    data, mlp = small
    tables = fb.run(SETTINGS, 0, data, mlp)
    checkpoints, final = tables["checkpoints"], tables["final"]
    assert len(checkpoints) == 2 * 3 * 3 and set(checkpoints.method) == {"gd", "sam"}
    assert sorted(checkpoints.step.unique()) == [0, 4, 12]
    assert checkpoints.finite.all() and not final.diverged.any() and len(final) == 6
    assert checkpoints[["lambda_max", "alignment", "grad_norm"]].notna().all().all()
    assert checkpoints.alignment.between(0, 1).all()
    # step 0 is the shared init: the same point for both methods
    start = checkpoints[checkpoints.step == 0].pivot(index="seed", columns="method", values="objective")
    assert np.allclose(start.gd, start.sam, rtol=0, atol=1e-12)
    # final is the last checkpoint
    last = checkpoints[checkpoints.step == 12].set_index(["seed", "method"]).lambda_max
    assert np.allclose(final.set_index(["seed", "method"]).lambda_max.loc[last.index], last)
    claims = fb.claims(tables, SETTINGS)
    assert [c.claim_id for c in claims] == [
        "lecture.full_batch_sharpness.sam_smaller_lambda_max",
        "lecture.full_batch_sharpness.ascent_aligns_top_eigenvector",
    ]
    assert all(c.source == "lecture" and c.claim.startswith("lecture (Wen et al.): full-batch SAM") for c in claims)


def test_a_diverged_run_is_recorded_and_the_figure_draws_the_rest(small, tmp_path):
    """lr l2 = 1e6: the L2 term alone multiplies the weights by ~-1e6 per step, so every run overflows; the tables
    record it (NaN measurements, diverged), the claims fail, and the figure's panels still draw."""
    import matplotlib.pyplot as plt

    from samsde_workflow import lecture_figures as panels

    data, mlp = small
    settings = SETTINGS | {"lr": 1e4, "l2": 100.0, "n_steps": 60, "checkpoints": [0, 30, 60]}
    tables = fb.run(settings, 0, data, mlp)
    final, checkpoints = tables["final"], tables["checkpoints"]
    assert final.diverged.all() and final.lambda_max.isna().all()
    assert checkpoints[checkpoints.step == 0].finite.all()
    claims = fb.claims(tables, settings)
    assert not any(c.passed for c in claims) and all(math.isnan(c.value) for c in claims)
    assert all("not a pass" in c.note for c in claims)
    # one seed finite, the others diverged: the panels draw what exists
    mixed = synthetic(lam_sam=0.5)
    mixed.loc[mixed.seed == 2, ["lambda_max", "alignment"]] = np.nan
    mixed.loc[mixed.seed == 2, "finite"] = False
    fig, axes = plt.subplots(1, 3)
    panels.checkpoint_panel(axes[0], mixed, "lambda_max", "lambda_max", "t")
    panels.checkpoint_panel(axes[1], checkpoints, "alignment", "|cos|", "all diverged")
    panels.final_lambda_panel(axes[2], final_of(mixed))
    fig.savefig(tmp_path / "fig.png")
    plt.close(fig)


def synthetic(lam_sam: float, align_first: float = 0.2, align_last: float = 0.8, n_seeds: int = 6) -> pd.DataFrame:
    """A checkpoints table: GD's lambda_max 0.75, SAM's ``lam_sam`` at the last step, SAM's alignment from
    ``align_first`` to ``align_last``, small seeded jitter."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(n_seeds):
        for step, share in ((0, 0.0), (10, 0.5), (20, 1.0)):
            sam_align = align_first + share * (align_last - align_first)
            for method, lam, align in (("gd", 0.75, 0.05), ("sam", lam_sam, sam_align)):
                jitter = rng.normal(0, 0.01, 2)
                rows.append({"seed": seed, "method": method, "step": step, "objective": 0.3, "cross_entropy": 0.1,
                             "grad_norm": 0.01, "lambda_max": lam + jitter[0], "alignment": align + jitter[1],
                             "finite": True})  # fmt: skip
    return pd.DataFrame(rows)


def final_of(checkpoints: pd.DataFrame) -> pd.DataFrame:
    last = checkpoints[checkpoints.step == checkpoints.step.max()]
    columns = ["seed", "method", "lambda_max", "alignment", "objective", "cross_entropy", "diverged"]
    return last.assign(diverged=~last.finite)[columns]


SYNTHETIC = SETTINGS | {"n_steps": 20, "checkpoints": [0, 10, 20], "compare": 1}


@pytest.mark.parametrize(
    ("lam_sam", "first", "last", "verdicts"),
    [
        (0.5, 0.2, 0.8, (True, True)),  # the lecture's picture
        (0.9, 0.2, 0.8, (False, True)),  # SAM sharper than GD: the lambda_max claim fails
        (0.5, 0.8, 0.2, (True, False)),  # alignment falls: the alignment claim fails
    ],
)
def test_claims_are_computed_from_the_tables(lam_sam, first, last, verdicts):
    checkpoints = synthetic(lam_sam, first, last)
    claims = fb.claims({"checkpoints": checkpoints, "final": final_of(checkpoints)}, SYNTHETIC)
    assert tuple(c.passed for c in claims) == verdicts, [(c.claim_id, c.value, c.ci_low, c.ci_high) for c in claims]
    assert claims[0].value == pytest.approx(lam_sam - 0.75, abs=0.02)
    assert claims[1].value == pytest.approx(last - first, abs=0.02)


def test_claims_use_the_seeds_where_both_runs_are_finite():
    checkpoints = synthetic(0.5)
    bad = (checkpoints.seed == 0) & (checkpoints.method == "sam") & (checkpoints.step == 20)
    checkpoints.loc[bad, ["lambda_max", "alignment"]] = np.nan
    checkpoints.loc[bad, "finite"] = False
    claims = fb.claims({"checkpoints": checkpoints, "final": final_of(checkpoints)}, SYNTHETIC)
    assert all(c.passed for c in claims)
    assert "5 of 6 seeds finite" in claims[0].note and "paired over 5 seeds" in claims[1].note


def test_an_interval_that_straddles_zero_fails_both_claims():
    """Per-seed differences alternating -0.1, +0.1 (mean 0): neither 95% interval excludes 0, so both claims fail."""
    checkpoints = synthetic(0.75, 0.5, 0.5)
    sign = np.where(checkpoints.seed % 2 == 0, -1.0, 1.0)
    sam = checkpoints.method == "sam"
    checkpoints.loc[sam, "lambda_max"] = 0.75 + 0.1 * sign[sam]
    checkpoints.loc[sam, "alignment"] = 0.5 + 0.1 * sign[sam] * np.where(checkpoints.step[sam] == 20, 1.0, -1.0)
    claims = fb.claims({"checkpoints": checkpoints, "final": final_of(checkpoints)}, SYNTHETIC)
    assert [c.passed for c in claims] == [False, False]
    assert [c.ci_low < 0 < c.ci_high for c in claims] == [True, True]
