"""All seeds of a lecture run as one batched model: equal, to rounding, to the one-seed torch.nn runs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from samsde.lecture import MLP, fit_mlp, shared_split
from samsde.lecture.batched import SeedStack, train_seeds
from samsde.seeding import make_generator


@pytest.fixture(scope="module")
def data():
    full = shared_split("digits", 0.3, 2023)
    return full._replace(x_train=full.x_train[:300], y_train=full.y_train[:300])


@pytest.mark.parametrize("method, rho", [("sgd", 0.0), ("sam", [0.05, 0.2, 0.0]), ("usam", [0.3, 1.0, 3.0])])
def test_batched_seeds_equal_the_one_seed_runs(data, method, rho):
    """Three seeds (own init, own batch order, SAM/USAM with their own rho and own gradient norm), momentum and
    weight decay, 3 epochs: every parameter equals the one-seed run's to 1e-10 (float64 rounding; a seed that
    used another seed's batches, norm or rho differs by O(1e-2))."""
    mlp = MLP(hidden=(16,), activation="relu")
    seeds = range(3)
    rhos = rho if isinstance(rho, list) else [rho] * 3
    kwargs = dict(method=method, lr=0.05, momentum=0.9, weight_decay=1e-3, batch_size=32, max_epochs=3)
    singles = []
    for s in seeds:
        model, result = fit_mlp(
            data, mlp, init=make_generator(1, "init", s), batches=make_generator(1, "batches", s), rho=rhos[s], **kwargs
        )
        singles.append((model, result))
    stack = SeedStack.build(mlp, data, [make_generator(1, "init", s) for s in seeds])
    results = train_seeds(
        stack, data, generators=[make_generator(1, "batches", s) for s in seeds], rho=rhos, **kwargs
    )
    for s, (model, result) in enumerate(singles):
        assert results[s].steps == result.steps
        assert abs(results[s].train_loss - result.train_loss) < 1e-10
        batched = stack.models(mlp, data)[s]
        for p, q in zip(model.parameters(), batched.parameters(), strict=True):
            assert (p - q).abs().max().item() < 1e-10, (method, s)


def test_arms_of_different_methods_train_as_one_model(data):
    """SGD, SAM and USAM members in one stack equal their one-method stacks (SGD's rho is ignored: it is 0)."""
    mlp = MLP(hidden=(16,), activation="relu")
    kwargs = dict(lr=0.05, momentum=0.9, batch_size=32, max_epochs=2)
    methods, rhos = ["sgd", "sam", "usam"], [0.7, 0.1, 1.0]
    mixed = SeedStack.build(mlp, data, [make_generator(2, "init", m) for m in methods])
    batches = [make_generator(2, "b", m) for m in methods]
    train_seeds(mixed, data, method=methods, rho=rhos, generators=batches, **kwargs)
    for i, (method, rho) in enumerate(zip(methods, rhos, strict=True)):
        alone = SeedStack.build(mlp, data, [make_generator(2, "init", method)])
        train_seeds(alone, data, method=method, rho=rho, generators=[make_generator(2, "b", method)], **kwargs)
        for p, q in zip(mixed.params, alone.params, strict=True):
            assert (p[i] - q[0]).abs().max().item() < 1e-12, method


def test_label_noise_replaces_exactly_the_share_and_keeps_the_test_set(data):
    from samsde.experiments.lecture.sam_vs_sgd import with_label_noise

    noisy = with_label_noise(data, 0.3, make_generator(3, "noise"))
    wrong = (noisy.y_train != data.y_train).sum().item()
    assert wrong == round(0.3 * data.y_train.numel())
    assert torch.equal(noisy.y_test, data.y_test) and torch.equal(noisy.x_train, data.x_train)
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() < data.n_classes


def test_sam_vs_sgd_reports_every_label_noise_share(data):
    """The experiment at toy size: runs per share, seed and method; claim ids for the true and the noisy labels;
    and its SGD run of seed 0 on the true labels equals the one-seed torch.nn run."""
    from samsde.experiments.lecture import sam_vs_sgd

    settings = dict(n_seeds=2, methods=["sgd", "sam", "usam"], lr=0.05, momentum=0.9, weight_decay=0.0, batch_size=64,
                    epochs=2, rho_grid={"sam": [0.05, 0.1], "usam": [0.3]}, validation_fraction=0.2, sweep_seeds=1,
                    label_noise=[0.25])  # fmt: skip
    mlp = MLP(hidden=(16,), activation="relu")
    parts = [sam_vs_sgd.run(settings, 7, data, mlp, label_noise=share) for share in (0.0, 0.25)]
    tables = {name: pd.concat([p[name] for p in parts], ignore_index=True) for name in parts[0]}
    runs = tables["runs"]
    assert sorted(runs.label_noise.unique()) == [0.0, 0.25] and len(runs) == 2 * 2 * 3
    ids = {c.claim_id for c in sam_vs_sgd.claims(tables, settings)}
    prefix = "lecture.sam_vs_sgd."
    assert ids == {f"{prefix}{s}{m}_beats_sgd" for s in ("", "label_noise_25.") for m in ("sam", "usam")}
    model, _ = fit_mlp(data, mlp, init=make_generator(7, "lecture", "sam_vs_sgd", "test", "init", 0),
                       batches=make_generator(7, "lecture", "sam_vs_sgd", "test", "batches", 0), method="sgd", rho=0.0,
                       lr=0.05, momentum=0.9, weight_decay=0.0, batch_size=64, max_epochs=2)  # fmt: skip
    params = parts[0]["params"]
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    mine = params[(params.seed == 0) & (params.method == "sgd")].sort_values("index").value.to_numpy()
    assert abs(torch.tensor(mine) - theta).max().item() < 1e-10


def test_max_steps_stops_every_member_where_the_one_seed_run_stops(data):
    """lr_scaling's runs stop after a number of updates, mid-epoch: same steps, epochs and parameters."""
    mlp = MLP(hidden=(16,), activation="relu")
    kwargs = dict(method="sgd", lr=0.1, batch_size=100, max_epochs=10**9, max_steps=17)
    model, result = fit_mlp(data, mlp, init=make_generator(4, "i", 0), batches=make_generator(4, "b", 0), **kwargs)
    stack = SeedStack.build(mlp, data, [make_generator(4, "i", s) for s in range(2)])
    results = train_seeds(stack, data, generators=[make_generator(4, "b", s) for s in range(2)], **kwargs)
    assert (results[0].steps, results[0].epochs) == (result.steps, result.epochs) == (17, 6)
    for p, q in zip(model.parameters(), stack.models(mlp, data)[0].parameters(), strict=True):
        assert (p - q).abs().max().item() < 1e-12
