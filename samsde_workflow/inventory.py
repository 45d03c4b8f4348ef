"""The figure inventory (stable ids of paper-notes section 6 plus the lecture's) and the claim fragments.

The DAG's default target, the tests and FIGURES.md all read these lists.
"""

#: figure id -> report category
FIGURES = {
    "weak_error": "Weak approximation",
    "trajectories": "Weak approximation",
    "drift_ablation": "Weak approximation",
    "weak_error_minibatch": "Weak approximation",
    "svag_convergence": "Weak approximation",
    "svag_scale": "Weak approximation",
    "quadratic_stationary": "Insights",
    "saddle": "Insights",
    "hessian_trace": "Insights",
    "flat_minima": "Insights",
    "sharpness_sb_lb": "Lecture: SAM background",
    "interpolation": "Lecture: SAM background",
    "lr_scaling": "Lecture: SAM background",
    "sam_vs_sgd": "Lecture: SAM background",
    "hessian_spectrum": "Lecture: SAM background",
    "full_batch_sharpness": "Lecture: SAM background",
    "bouncing": "Lecture: SAM background",
}

#: the stages of ``run.stages`` (config.yaml): their figures and claim fragments
STAGE_FIGURES = {
    "weak_error": ["weak_error", "trajectories", "drift_ablation"],
    "weak_error_minibatch": ["weak_error_minibatch"],
    "svag": ["svag_convergence", "svag_scale"],
    "insights": ["quadratic_stationary", "saddle", "hessian_trace", "flat_minima"],
    "lecture": [
        "sharpness_sb_lb",
        "interpolation",
        "lr_scaling",
        "sam_vs_sgd",
        "hessian_spectrum",
        "full_batch_sharpness",
        "bouncing",
    ],
}
#: figure id -> its stage
FIGURE_STAGE = {fig: stage for stage, figs in STAGE_FIGURES.items() for fig in figs}
assert list(FIGURE_STAGE) == list(FIGURES), "every figure belongs to one stage, in inventory order"

#: each analysis rule writes results/claims/<fragment>.csv; the claims rule concatenates them
CLAIM_FRAGMENTS = ["weak_error", "weak_error_minibatch", "svag_convergence", "svag_scale", "quadratic_stationary"]
CLAIM_FRAGMENTS += ["saddle", "hessian_trace", "flat_minima"]
CLAIM_FRAGMENTS += ["sharpness_sb_lb", "interpolation", "lr_scaling", "sam_vs_sgd", "hessian_spectrum"]
CLAIM_FRAGMENTS += ["full_batch_sharpness", "bouncing"]
#: claim fragment -> its stage (a weak-error stage's fragment is named after it; the others after their figure)
FRAGMENT_STAGE = {fragment: FIGURE_STAGE.get(fragment, fragment) for fragment in CLAIM_FRAGMENTS}


def selected(stages) -> tuple[list[str], list[str]]:
    """The figures and claim fragments of the stages ``stages`` (``run.stages``), in inventory order."""
    figures = [f for f in FIGURES if FIGURE_STAGE[f] in stages]
    return figures, [f for f in CLAIM_FRAGMENTS if FRAGMENT_STAGE[f] in stages]
