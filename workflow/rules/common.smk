# Shared helpers: config validation at start-up, the figure inventory, per-job parameter sections.
from samsde_workflow.config import task_setting, validate_config
from samsde_workflow.inventory import CLAIM_FRAGMENTS, FIGURES

validate_config(config)

def all_figures():
    return expand("results/figures/{fig}.{ext}", fig=FIGURES, ext=["png", "pdf"])


def figure_outputs(fig):
    """PNG (in the report, with its caption and category) and PDF of one figure id."""
    return {
        "png": report(
            f"results/figures/{fig}.png",
            caption=f"../report/{fig}.rst",
            category=FIGURES[fig],
        ),
        "pdf": f"results/figures/{fig}.pdf",
    }


def section(name):
    """One config section plus the base seed: a rule's params, so editing another section reruns nothing here."""
    return {"seed": config["seed"], "device": config["device"], name: config[name]}
