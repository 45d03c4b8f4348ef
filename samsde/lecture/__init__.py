"""Small-scale reconstructions of the lecture's SAM background: the math, config-free.

* :mod:`~samsde.lecture.data`: a seeded train/test split of a scikit-learn data set, standardized features.
* :mod:`~samsde.lecture.network`: a small MLP with a seeded init (:class:`MLP` is its architecture).
* :mod:`~samsde.lecture.training`: one training loop for every algorithm with a torch optimizer (SGD, SAM, USAM),
  its evaluation and the measurements at a solution.
* :mod:`~samsde.lecture.intervals`: Student-t intervals over seeds and the bootstrap of the share of a gap closed.
* :mod:`~samsde.lecture.full_batch`: full-batch SAM on toy landscapes ("bouncing across ravines").

Every random stream is a ``torch.Generator`` from :func:`samsde.seeding.make_generator`, passed in by the caller.
The experiments that use these tools are :mod:`samsde.experiments.lecture`.
"""

from samsde.lecture.data import DATASETS, Dataset, load_dataset, shared_split, split_validation
from samsde.lecture.full_batch import (
    TwoCycle,
    Valley,
    quadratic_two_cycle_amplitude,
    run_full_batch,
    two_cycle_summary,
)
from samsde.lecture.intervals import bootstrap_gap_closed, mean_ci
from samsde.lecture.network import MLP, make_mlp
from samsde.lecture.training import (
    METHODS,
    TrainResult,
    evaluate,
    fit_mlp,
    keskar_radius,
    line_curvature,
    make_optimizer,
    solution_metrics,
    train,
    train_loss_closure,
)

__all__ = [
    "DATASETS",
    "METHODS",
    "MLP",
    "Dataset",
    "TrainResult",
    "TwoCycle",
    "Valley",
    "bootstrap_gap_closed",
    "evaluate",
    "fit_mlp",
    "keskar_radius",
    "line_curvature",
    "load_dataset",
    "make_mlp",
    "make_optimizer",
    "mean_ci",
    "quadratic_two_cycle_amplitude",
    "run_full_batch",
    "shared_split",
    "solution_metrics",
    "split_validation",
    "train",
    "train_loss_closure",
    "two_cycle_summary",
]
