# The claims table: one row per claim of the paper (and the lecture), concatenated from each stage's fragment, and
# its pages in the report; the provenance of every table; the profile of every job (included last: every rule has
# registered its benchmark).


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


# The claims table inside the report (a reviewer opens results/report.html, not the CSV): one page per figure, in
# the figure's category and listed right after it, labelled with its count of passing claims (read when the report
# is built), and one page of every claim in the category "Claims".
CLAIMS_PAGES = {
    fig: report(
        f"results/report/claims_{fig}.html",
        caption="../report/claims_figure.rst",
        category=FIGURES[fig],
        labels=claims_label(fig),
    )
    for fig in RUN_FIGURES
}


rule claims_report:
    input:
        "results/claims.csv",
    output:
        **CLAIMS_PAGES,
        all=report(
            "results/report/claims.html",
            caption="../report/claims.rst",
            category="Claims",
            labels=claims_label(),
        ),
    log:
        "logs/claims_report.log",
    benchmark:
        benchmark_file("claims_report")
    conda:
        "../envs/samsde.yaml"
    params:
        figures=RUN_FIGURES,
        seed=config["seed"],
    script:
        "../../scripts/claims_report.py"


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
