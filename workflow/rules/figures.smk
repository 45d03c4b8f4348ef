# Figure rules, one per id of the figure inventory (samsde_workflow/inventory.py), generated in one loop: each reads
# the tables below, runs scripts/figure_<id>.py and writes results/figures/<id>.png (in the report, labelled with
# its id: its claims page, claims.smk, is listed right after it) and .pdf.

# figure id -> (input tables of its script, params)
FIGURE_RULES = {
    "weak_error": (
        {
            "errors": "results/weak_error/errors.csv",
            "slopes": "results/weak_error/slopes.csv",
        },
        FIGURE_LAYOUT,
    ),
    "trajectories": ({"trajectories": weak_error_runs("trajectories")}, FIGURE_LAYOUT),
    "drift_ablation": ({"errors": "results/weak_error/errors.csv"}, FIGURE_LAYOUT),
    "weak_error_minibatch": (
        {
            "errors": "results/weak_error_minibatch/errors.csv",
            "exact": "results/weak_error_minibatch/exact.csv",
            "slopes": "results/weak_error_minibatch/slopes.csv",
        },
        MINIBATCH_LAYOUT,
    ),
    "svag_convergence": (
        {
            "errors": "results/svag/errors.csv",
            "slopes": "results/svag/slopes.csv",
            "gap": "results/svag/gap.csv",
            "gap_slopes": "results/svag/gap_slopes.csv",
        },
        {},
    ),
    "svag_scale": (
        {
            "errors": "results/svag/scale_errors.csv",
            "slopes": "results/svag/scale_slopes.csv",
        },
        {},
    ),
    "quadratic_stationary": (
        {"table": "results/insights/quadratic_stationary.csv"},
        {},
    ),
    "saddle": (
        {
            "grid": "results/insights/saddle_grid.csv",
            "trajectories": "results/insights/saddle_trajectories.csv",
            "radius": "results/insights/saddle_radius.csv",
        },
        {},
    ),
    "hessian_trace": ({"table": "results/insights/hessian_trace.csv"}, {}),
    "flat_minima": (
        {
            "table": "results/insights/flat_minima.csv",
            "paths": "results/insights/flat_minima_paths.csv",
        },
        {"section": section("flat_minima")},
    ),
    "sharpness_sb_lb": (
        {
            "runs": "results/lecture/sb_lb_runs.csv",
            "keskar": "results/lecture/sb_lb_keskar.csv",
        },
        {},
    ),
    "interpolation": ({"table": "results/lecture/interpolation.csv"}, {}),
    "lr_scaling": ({"table": "results/lecture/lr_scaling.csv"}, {}),
    "sam_vs_sgd": (
        {
            "sweep": expand(
                "results/lecture/sam_vs_sgd/{labels}/sweep.csv", labels=SAM_LABELS
            ),
            "runs": expand(
                "results/lecture/sam_vs_sgd/{labels}/runs.csv", labels=SAM_LABELS
            ),
        },
        {},
    ),
    "hessian_spectrum": (
        {
            "sharpness": "results/lecture/hessian_sharpness.csv",
            "topk": "results/lecture/hessian_topk.csv",
            "density": "results/lecture/hessian_density.csv",
        },
        {},
    ),
    "full_batch_sharpness": (
        {
            "checkpoints": "results/lecture/full_batch_checkpoints.csv",
            "final": "results/lecture/full_batch_final.csv",
        },
        {},
    ),
    "bouncing": (
        {
            "quadratic": "results/lecture/bouncing_quadratic.csv",
            "valley": "results/lecture/bouncing_valley.csv",
        },
        {"bouncing": LECTURE["bouncing"]},
    ),
}
assert list(FIGURE_RULES) == list(
    FIGURES
), "every figure of the inventory needs its rule, in inventory order"


# Each rule's outputs carry the wildcard {fig}, constrained to its one figure id, so that the script path can name
# it: a script path is evaluated when the job runs, when a loop variable would be the last figure's.
for fig, (tables, figure_params) in FIGURE_RULES.items():

    rule:
        name:
            f"figure_{fig}"
        input:
            **tables,
        output:
            png=report(
                "results/figures/{fig}.png",
                caption=f"../report/{fig}.rst",
                category=FIGURES[fig],
                labels={"figure": fig},
            ),
            pdf="results/figures/{fig}.pdf",
        log:
            "logs/figures/{fig}.log",
        benchmark:
            benchmark_file("figure_{fig}", stage=FIGURE_STAGE[fig], fig=[fig])
        wildcard_constraints:
            fig=fig,
        conda:
            "../envs/samsde.yaml"
        params:
            **figure_params,
        script:
            "../../scripts/figure_{wildcards.fig}.py"
