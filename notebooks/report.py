# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # transferlab report
#
# Built from the `metrics.json` files under `results/` by `transferlab report <paper>` (papermill, then nbconvert
# without input cells). Test accuracy is reported at the best-validation step (model selection on validation only)
# and at the last step, as mean ± std over seeds with n. **Mini-protocol numbers come from embedded CPU-scale data
# and are never comparable to published numbers.**

# %% tags=["parameters"]
paper: str = "finetune"  # paper whose results to report (transferlab.papers)
results_dir: str = "results"  # root of the results tree
figures_dir: str = "reports/figures"  # where PNG figures are written

# %%
from transferlab import report_view as view

report = view.PaperReport(paper, results_dir, figures_dir)
report.header()

# %%
report.tables()

# %%
report.provenance()
