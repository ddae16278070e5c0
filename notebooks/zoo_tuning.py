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
# # Zoo-Tuning: Adaptive Transfer from a Zoo of Models (Shu et al., ICML 2021)
#
# Every convolution aggregates the K source kernels with per-sample gates computed from its input; the lite variant
# collapses to one model for inference. Settings: `lib/transferlab/papers/zoo_tuning.py`; baselines: each hub
# model fine-tuned alone (the report picks the best by validation), `ensemble`, `feature_concat`, `distill`.
# Validation is carved from the training images (the official code validates on the test split). Mini numbers
# are never comparable to published ones.

# %% tags=["parameters"]
paper: str = "zoo_tuning"  # lib/transferlab/papers/zoo_tuning.py holds every setting
table: str = "classification"  # one of the paper's tables: `transferlab run --help` lists them
protocol: str = "mini"  # mini (embedded, CPU) | paper (real data and weights, GPU) | demo (mini, short)
scope: str = "cell"  # cell: the one cell named below; table: the whole table via the runner (warm workers)
method: str = "zoo_tuning"  # the cell's method ("": the table's first)
dataset: str = ""  # "": the table's first dataset
sample_rate: float = 0.0  # 0: the table's (sampling-rate tables: 0.05, 0.15, 0.5, ...)
shots: int = 0  # 0: the table's (k-shot tables: images per class)
pretrained: str = ""  # "": the table's weights for this method; a hub: hub:mini
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
