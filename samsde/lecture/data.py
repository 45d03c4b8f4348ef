"""The lecture's data: a seeded train/test split of a scikit-learn data set with standardized features."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from samsde.seeding import make_generator

DATASETS = ("digits", "breast_cancer")


class Dataset(NamedTuple):
    """Standardized features and integer labels of a seeded train/test split."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max().item()) + 1


def load_dataset(
    name: str, test_fraction: float, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> Dataset:
    """``load_digits`` (1797 x 64, 10 classes) or ``load_breast_cancer`` (569 x 30, 2 classes), split at random.

    The permutation comes from ``generator``; the test set is its first ``round(test_fraction * n)`` samples.
    Features are standardized with the training set's mean and standard deviation (constant features, e.g.
    the always-blank border pixels of the digits, are only centred), so no test statistic leaks into training.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = _loader(name)()
    x = torch.as_tensor(bunch.data, dtype=dtype)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    perm = torch.randperm(x.shape[0], generator=generator)
    n_test = round(test_fraction * x.shape[0])
    test, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(0), x[tr].std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return Dataset((x[tr] - mean) / std, y[tr], (x[test] - mean) / std, y[test])


def split_sizes(name: str, test_fraction: float) -> tuple[int, int]:
    """(n_train, n_test) of :func:`load_dataset`'s split, without building it."""
    n = _loader(name)(return_X_y=True)[0].shape[0]
    n_test = round(test_fraction * n)
    return n - n_test, n_test


def _loader(name: str):
    from sklearn import datasets  # late import: keeps ``import samsde`` light

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {list(DATASETS)}")
    return getattr(datasets, f"load_{name}")


def shared_split(name: str, test_fraction: float, seed: int, dtype: torch.dtype = torch.float64) -> Dataset:
    """The split every lecture experiment sees: :func:`load_dataset` with the stream
    ``make_generator(seed, "lecture", "split", name)``."""
    return load_dataset(name, test_fraction, make_generator(seed, "lecture", "split", name), dtype)


def split_validation(data: Dataset, fraction: float, generator: torch.Generator) -> Dataset:
    """Hold out ``round(fraction * n_train)`` random training samples as a validation set.

    Returns a :class:`Dataset` whose *test* fields hold the validation samples: hyperparameters chosen on it
    never see the test set.  Features keep the standardization of ``data``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    n = data.x_train.shape[0]
    perm = torch.randperm(n, generator=generator)
    n_val = round(fraction * n)
    val, tr = perm[:n_val], perm[n_val:]
    return Dataset(data.x_train[tr], data.y_train[tr], data.x_train[val], data.y_train[val])
