# Insight stage: four reconstructed experiments, each one job that writes its tidy tables
# and its claims fragment, and one figure job that only reads the tables.


rule quadratic_stationary:
    output:
        table="results/insights/quadratic_stationary.csv",
        claims="results/claims/quadratic_stationary.csv",
    log:
        "logs/quadratic_stationary.log",
    benchmark:
        benchmark_file("quadratic_stationary", stage="insights")
    priority: measured_priority("quadratic_stationary")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=section("quadratic_stationary"),
        rel_tol=config["claims"]["stationary_rel_tol"],
    script:
        "../../scripts/insight_quadratic_stationary.py"


rule saddle:
    output:
        grid="results/insights/saddle_grid.csv",
        trajectories="results/insights/saddle_trajectories.csv",
        radius="results/insights/saddle_radius.csv",
        claims="results/claims/saddle.csv",
    log:
        "logs/saddle.log",
    benchmark:
        benchmark_file("saddle", stage="insights")
    priority: measured_priority("saddle")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=section("saddle"),
    script:
        "../../scripts/insight_saddle.py"


rule hessian_trace:
    output:
        table="results/insights/hessian_trace.csv",
        claims="results/claims/hessian_trace.csv",
    log:
        "logs/hessian_trace.log",
    benchmark:
        benchmark_file("hessian_trace", stage="insights")
    priority: measured_priority("hessian_trace")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=section("hessian_trace"),
    script:
        "../../scripts/insight_hessian_trace.py"


rule flat_minima:
    output:
        table="results/insights/flat_minima.csv",
        paths="results/insights/flat_minima_paths.csv",
        claims="results/claims/flat_minima.csv",
    log:
        "logs/flat_minima.log",
    benchmark:
        benchmark_file("flat_minima", stage="insights")
    priority: measured_priority("flat_minima")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=section("flat_minima"),
    script:
        "../../scripts/insight_flat_minima.py"
