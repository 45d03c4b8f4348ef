# The claims table: one row per claim of the paper (and the lecture), concatenated from each stage's fragment.


rule claims:
    input:
        expand("results/claims/{fragment}.csv", fragment=CLAIM_FRAGMENTS),
    output:
        "results/claims.csv",
    log:
        "logs/claims.log",
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
    conda:
        "../envs/samsde.yaml"
    script:
        "../../scripts/provenance.py"
