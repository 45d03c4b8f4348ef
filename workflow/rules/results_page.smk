# The results page, generated from the run's tables (samsde_workflow/results_page.py): results/results.md (claims
# passing by stage and figure, every failing row, the slopes with their intervals, the figure index, stamped with
# the git commit and config fingerprint of the tables' provenance sidecars) and the fragment the report's front
# page (workflow/report/workflow.rst) shows.


rule results_page:
    input:
        claims="results/claims.csv",
        provenance="results/provenance.csv",
        pages="results/report/claims.html",  # written with sidecars: read only once they are all there
        figures=all_figures(),
    output:
        page=report(
            "results/results.md",
            caption="../report/results_page.rst",
            category="Summary",
            labels={"page": "results page"},
        ),
        front="results/report/front.rst",
    log:
        "logs/results_page.log",
    benchmark:
        benchmark_file("results_page")
    conda:
        "../envs/samsde.yaml"
    script:
        "../../scripts/results_page.py"
