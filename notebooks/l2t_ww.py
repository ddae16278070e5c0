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
# # Learning What and Where to Transfer, L2T-ww (Jang et al., ICML 2019)
#
# Meta-learned feature matching: a "what" network weights the source channels, a "where" network weights each
# (source layer, target layer) pair; both are trained through the target's look-ahead updates.
#
# Settings: `lib/transferlab/papers/l2t_ww.py` (rows: scratch, LwF, AT, FM, L2T-w, L2T-ww; the official per-batch
# meta-step, golden-checked). An L2T-ww cell costs ~20× a plain one on the CPU. Mini numbers are never comparable
# to published ones.

# %% tags=["parameters"]
paper: str = "l2t_ww"  # lib/transferlab/papers/l2t_ww.py holds every setting
table: str = "limited"  # one of the paper's tables: `transferlab run --help` lists them
protocol: str = "mini"  # mini (embedded, CPU) | paper (real data and weights, GPU) | demo (mini, short)
scope: str = "cell"  # cell: the one cell named below; table: the whole table via the runner (warm workers)
method: str = "l2t_ww"  # the cell's method ("": the table's first)
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
