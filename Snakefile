# samsde: regenerate every figure of "An SDE for Modeling SAM: Theory and Insights" (ICML 2023).
#   snakemake --cores 2                         # all figures, default config
#   snakemake --cores 2 --configfile config.smoke.yaml     # tiny sizes, same DAG
#   snakemake --report results/report.html      # the report, after a run


# the defaults, next to this file (so a run from another working directory, -d, gets them too); a --configfile
# is merged over them (workflow/rules/common.smk)
DEFAULTS_FILE = os.path.join(workflow.basedir, "config.yaml")


configfile: DEFAULTS_FILE


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/weak_error.smk"
include: "workflow/rules/svag.smk"
include: "workflow/rules/insights.smk"
include: "workflow/rules/lecture.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/results_page.smk"
include: "workflow/rules/claims.smk"


rule all:
    default_target: True
    input:
        all_figures(),
        "results/claims.csv",
        rules.claims_report.output,
        "results/provenance.csv",
        "results/results.md",
        "results/profile.csv",
