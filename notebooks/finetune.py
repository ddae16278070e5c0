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
# # Fine-tuning vs. training from scratch
#
# The baseline every paper in the suite compares against (`lib/transferlab/papers/finetune.py`). Run top to
# bottom for one mini cell (CPU, seconds), set `scope = "table"` for the whole table, or run it from the shell:
# `transferlab run finetune --protocol mini`.
#
# - **paper protocol**: CUB-200-2011, ImageNet ResNet-50 (`IMAGENET1K_V1`), the official Co-Tuning schedule.
# - **mini protocol**: embedded data at CPU scale; never comparable to published numbers.
#
# Model selection uses the validation split only; results report the test metric at the best-validation step and
# at the last step.

# %% tags=["parameters"]
paper: str = "finetune"  # lib/transferlab/papers/finetune.py holds every setting
table: str = "sampling"  # one of the paper's tables: `transferlab run --help` lists them
protocol: str = "mini"  # mini (embedded, CPU) | paper (real data and weights, GPU) | demo (mini, short)
scope: str = "cell"  # cell: the one cell named below; table: the whole table via the runner (warm workers)
method: str = "finetune"  # the cell's method ("": the table's first)
dataset: str = ""  # "": the table's first dataset
sample_rate: float = 0.0  # 0: the table's (sampling-rate tables: 0.05, 0.15, 0.5, ...)
shots: int = 0  # 0: the table's (k-shot tables: images per class)
pretrained: str = ""  # "": the table's weights for this method
method_params: dict = {}  # {}: the table's; e.g. {"relationship": "direct"}
seed: int = 0  # seeds the split, the initialisation and the augmentation
overrides: dict = {}  # any other field, e.g. {"iterations": 100}; then not the table's cell (own run folder)
seeds: list = []  # table scope: the seeds to run ([]: the table's five)
jobs: int = 2  # table scope: warm workers (one CPU thread each)
results: str = "results"  # results root (relative to the repository root)
out_dir: str = ""  # cell scope: the run folder ("": results/paper/protocol/run id)
config: dict = {}  # config scope: a full flat configuration (what transferlab run --notebooks injects)

# %%
from transferlab.notebook import Notebook

run = Notebook(globals())
run.show_config()

# %%
run.execute()

# %%
run.show()
