# Weak-error stage: one coupled simulation per (task, eta) holding every algorithm, rho scaling and SDE model
# (the SGD SDE and the control SGD once), the aggregate tables and slope fits, and the figures weak_error,
# trajectories and drift_ablation.


rule simulate_weak_error:
    output:
        trajectories="results/weak_error/runs/{task}/eta_{eta}/trajectories.csv",
        errors="results/weak_error/runs/{task}/eta_{eta}/errors.csv",
        replicates="results/weak_error/runs/{task}/eta_{eta}/replicates.csv",
    log:
        "logs/simulate_weak_error/{task}/eta_{eta}.log",
    benchmark:
        benchmark_file(
            "simulate_weak_error", "{task}/eta_{eta}", zip, "weak_error", **WE_CELLS
        )
    priority: measured_priority("simulate_weak_error", "{task}/eta_{eta}")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        seed=config["seed"],
        device=config["device"],
        section=lambda wc: task_setting(config, wc.task),
        eta=stage_eta("weak_error"),
    script:
        "../../scripts/simulate_weak_error.py"


rule weak_error_table:
    input:
        errors=weak_error_runs("errors"),
        replicates=weak_error_runs("replicates"),
    output:
        errors="results/weak_error/errors.csv",
        slopes="results/weak_error/slopes.csv",
        claims="results/claims/weak_error.csv",
    log:
        "logs/weak_error_table.log",
    benchmark:
        benchmark_file("weak_error_table", stage="weak_error")
    conda:
        "../envs/samsde.yaml"
    params:
        seed=config["seed"],
        section=stage_section(config, "weak_error"),
        claims=config["claims"],
    script:
        "../../scripts/weak_error_table.py"


# The mini-batch regime: the same cells, on real mini-batches (discrete runs not coupled to the SDEs) with the
# paper's mini-batch SDEs, their additive-noise-formula ablation and the SGD SDE.


rule simulate_weak_error_minibatch:
    output:
        trajectories="results/weak_error_minibatch/runs/{task}/eta_{eta}/trajectories.csv",
        errors="results/weak_error_minibatch/runs/{task}/eta_{eta}/errors.csv",
        replicates="results/weak_error_minibatch/runs/{task}/eta_{eta}/replicates.csv",
    log:
        "logs/simulate_weak_error_minibatch/{task}/eta_{eta}.log",
    benchmark:
        benchmark_file(
            "simulate_weak_error_minibatch",
            "{task}/eta_{eta}",
            zip,
            "weak_error_minibatch",
            **WE_MB_CELLS,
        )
    priority: measured_priority("simulate_weak_error_minibatch", "{task}/eta_{eta}")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        seed=config["seed"],
        device=config["device"],
        section=lambda wc: task_setting(config, wc.task, "weak_error_minibatch"),
        eta=stage_eta("weak_error_minibatch"),
    script:
        "../../scripts/simulate_weak_error.py"


rule weak_error_minibatch_table:
    input:
        errors=stage_runs("weak_error_minibatch", "errors"),
        replicates=stage_runs("weak_error_minibatch", "replicates"),
    output:
        errors="results/weak_error_minibatch/errors.csv",
        slopes="results/weak_error_minibatch/slopes.csv",
        claims="results/claims/weak_error_minibatch.csv",
    log:
        "logs/weak_error_minibatch_table.log",
    benchmark:
        benchmark_file("weak_error_minibatch_table", stage="weak_error_minibatch")
    conda:
        "../envs/samsde.yaml"
    params:
        seed=config["seed"],
        section=stage_section(config, "weak_error_minibatch"),
        claims=config["claims"],
        stage="minibatch",
    script:
        "../../scripts/weak_error_table.py"


# The Monte-Carlo-free anchor of the mini-batch stage: exact weak errors of mini-batch USAM on a finite-sum
# quadratic (exact moment recursion of the discrete run, matrix-exponential moment ODE of each SDE).
rule minibatch_exact:
    output:
        table="results/weak_error_minibatch/exact.csv",
        claims="results/claims/minibatch_exact.csv",
    log:
        "logs/minibatch_exact.log",
    benchmark:
        benchmark_file("minibatch_exact", stage="weak_error_minibatch")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section={
            "seed": config["seed"],
            "exact_anchor": WE_MB["exact_anchor"],
        },
        own_slope_min=config["claims"]["own_slope_min"],
        window=config["claims"]["exact_half_order_window"],
    script:
        "../../scripts/minibatch_exact.py"
