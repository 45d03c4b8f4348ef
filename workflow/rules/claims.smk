# The claims table: one row per claim of the paper (and the lecture), concatenated from each stage's fragment;
# the provenance of every table; the profile of every job (included last: every rule has registered its benchmark).


rule claims:
    input:
        expand("results/claims/{fragment}.csv", fragment=RUN_FRAGMENTS),
    output:
        "results/claims.csv",
    log:
        "logs/claims.log",
    benchmark:
        benchmark_file("claims")
    conda:
        "../envs/samsde.yaml"
    params:
        seed=config["seed"],
    script:
        "../../scripts/claims.py"


rule provenance:
    input:
        claims="results/claims.csv",
        figures=all_figures(),
    output:
        report(
            "results/provenance.csv",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "logs/provenance.log",
    benchmark:
        benchmark_file("provenance")
    conda:
        "../envs/samsde.yaml"
    script:
        "../../scripts/provenance.py"


rule pipeline_profile:
    input:
        PROFILED,
    output:
        table="results/profile.csv",
        png=report(
            "results/figures/pipeline_profile.png",
            caption="../report/pipeline_profile.rst",
            category="Pipeline profile",
        ),
    log:
        "logs/pipeline_profile.log",
    conda:
        "../envs/samsde.yaml"
    script:
        "../../scripts/pipeline_profile.py"
