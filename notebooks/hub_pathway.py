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
# # Hub-Pathway: Transfer Learning from a Hub of Pre-trained Models (Shu et al., NeurIPS 2022)
#
# A noisy pathway generator routes each input to k of the hub's K models; their outputs are aggregated with the
# pathway weights, with exploration and exploitation losses. **Our reading of the abstract** (no code, body not
# read): every choice is an option of `methods/hub_pathway.py`. Settings: `lib/transferlab/papers/hub_pathway.py`.
# A cell's result holds its routing on the test set (shown below for `hub_pathway` cells).

# %% tags=["parameters"]
paper: str = "hub_pathway"  # lib/transferlab/papers/hub_pathway.py holds every setting
table: str = "classification"  # one of the paper's tables: `transferlab run --help` lists them
protocol: str = "mini"  # mini (embedded, CPU) | paper (real data and weights, GPU) | demo (mini, short)
scope: str = "cell"  # cell: the one cell named below; table: the whole table via the runner (warm workers)
method: str = "hub_pathway"  # the cell's method ("": the table's first)
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

# %%
run.routing()
