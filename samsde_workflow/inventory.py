"""The figure inventory (stable ids of paper-notes section 6 plus the lecture's) and the claim fragments.

The DAG's default target, the tests and FIGURES.md all read these lists.
"""

#: figure id -> report category
FIGURES = {
    "weak_error": "Weak approximation",
    "trajectories": "Weak approximation",
    "drift_ablation": "Weak approximation",
    "weak_error_minibatch": "Weak approximation",
    "quadratic_stationary": "Insights",
    "saddle": "Insights",
    "hessian_trace": "Insights",
    "flat_minima": "Insights",
    "sharpness_sb_lb": "Lecture: SAM background",
    "interpolation": "Lecture: SAM background",
    "lr_scaling": "Lecture: SAM background",
    "sam_vs_sgd": "Lecture: SAM background",
    "hessian_spectrum": "Lecture: SAM background",
    "bouncing": "Lecture: SAM background",
}

#: each analysis rule writes results/claims/<fragment>.csv; the claims rule concatenates them
CLAIM_FRAGMENTS = ["weak_error", "weak_error_minibatch", "quadratic_stationary", "saddle", "hessian_trace"]
CLAIM_FRAGMENTS += ["flat_minima"]
CLAIM_FRAGMENTS += ["sharpness_sb_lb", "interpolation", "lr_scaling", "sam_vs_sgd", "hessian_spectrum", "bouncing"]
