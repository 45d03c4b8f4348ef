# SVAG stage: SVAG_l against SVAG_2l (self-convergence, the order-1 claim) and against the Euler-Maruyama-integrated
# paper SDE on one Brownian path per (task, algorithm), and the gap between SVAG's limit and the paper SDE against
# rho; one job for every task, which writes the tidy tables and its claims fragment.


rule svag_convergence:
    output:
        errors="results/svag/errors.csv",
        slopes="results/svag/slopes.csv",
        gap="results/svag/gap.csv",
        gap_slopes="results/svag/gap_slopes.csv",
        claims="results/claims/svag_convergence.csv",
    log:
        "logs/svag_convergence.log",
    benchmark:
        benchmark_file("svag_convergence", stage="svag")
    priority: measured_priority("svag_convergence")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=section("svag_convergence"),
        slope_max=config["claims"]["svag_slope_max"],
        gap_slope_min=config["claims"]["svag_gap_slope_min"],
    script:
        "../../scripts/svag_convergence.py"


# The scale experiment: discrete SAM, USAM, DNSAM against SVAG_L on a network with d ~ 10^3, one
# coupled simulation per eta; the weak error's slope in eta, and SVAG_L/2 vs SVAG_L as SVAG's own residual.
rule svag_scale:
    output:
        errors="results/svag/scale_errors.csv",
        slopes="results/svag/scale_slopes.csv",
        claims="results/claims/svag_scale.csv",
    log:
        "logs/svag_scale.log",
    benchmark:
        benchmark_file("svag_scale", stage="svag")
    priority: measured_priority("svag_scale")
    conda:
        "../envs/samsde.yaml"
    threads: 1
    params:
        section=section("svag_scale"),
        slope_min=config["claims"]["own_slope_min"],
    script:
        "../../scripts/svag_scale.py"
