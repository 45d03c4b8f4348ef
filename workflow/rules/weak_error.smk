# Weak-error stage: coupled simulations per (task, algorithm, rho scaling) over the task's eta grid, the
# aggregate tables and slope fits, and the figures weak_error, trajectories and drift_ablation.
# One job covers all etas of a scaling: a job's start-up (importing torch, ~3 s) would otherwise dominate.


rule simulate_weak_error:
    output:
        trajectories="results/weak_error/runs/{task}/{algorithm}/{scaling}/trajectories.csv",
        errors="results/weak_error/runs/{task}/{algorithm}/{scaling}/errors.csv",
    log:
        "logs/simulate_weak_error/{task}/{algorithm}/{scaling}.log",
    benchmark:
        benchmark_file(
            "simulate_weak_error",
            "{task}/{algorithm}/{scaling}",
            task=list(WE["tasks"]),
            algorithm=WE["algorithms"],
            scaling=list(WE["scalings"]),
        )
    conda:
        "../envs/samsde.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        seed=config["seed"],
        device=config["device"],
        setting=lambda wc: task_setting(config, wc.task),
        scaling=lambda wc: WE["scalings"][wc.scaling],
    script:
        "../../scripts/simulate_weak_error.py"


rule weak_error_table:
    input:
        errors=weak_error_runs("errors"),
    output:
        errors="results/weak_error/errors.csv",
        slopes="results/weak_error/slopes.csv",
        claims="results/claims/weak_error.csv",
    log:
        "logs/weak_error_table.log",
    benchmark:
        benchmark_file("weak_error_table")
    conda:
        "../envs/samsde.yaml"
    params:
        seed=config["seed"],
        section=WE,
        claims=config["claims"],
    script:
        "../../scripts/weak_error_table.py"


rule figure_weak_error:
    input:
        errors="results/weak_error/errors.csv",
        slopes="results/weak_error/slopes.csv",
    output:
        **figure_outputs("weak_error"),
    log:
        "logs/figure_weak_error.log",
    benchmark:
        benchmark_file("figure_weak_error")
    conda:
        "../envs/samsde.yaml"
    params:
        **FIGURE_LAYOUT,
    script:
        "../../scripts/figure_weak_error.py"


rule figure_trajectories:
    input:
        trajectories=weak_error_runs("trajectories"),
    output:
        **figure_outputs("trajectories"),
    log:
        "logs/figure_trajectories.log",
    benchmark:
        benchmark_file("figure_trajectories")
    conda:
        "../envs/samsde.yaml"
    params:
        **FIGURE_LAYOUT,
    script:
        "../../scripts/figure_trajectories.py"


rule figure_drift_ablation:
    input:
        errors="results/weak_error/errors.csv",
    output:
        **figure_outputs("drift_ablation"),
    log:
        "logs/figure_drift_ablation.log",
    benchmark:
        benchmark_file("figure_drift_ablation")
    conda:
        "../envs/samsde.yaml"
    params:
        **FIGURE_LAYOUT,
    script:
        "../../scripts/figure_drift_ablation.py"
