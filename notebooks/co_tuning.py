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
# # Co-Tuning for Transfer Learning (You et al., NeurIPS 2020)
#
# Keep the pre-trained source head, learn the relationship p(y_s|y_t), and train the source head on the soft labels
# R[y] alongside the new target head: L = CE(target head) + λ · CE(source head, R[y]) with λ = 2.3.
#
# Settings: `lib/transferlab/papers/co_tuning.py`. Methods: `co_tuning` (both relationship approaches) and the
# baselines `l2sp`, `delta`, `bss`, `lwf`, golden-checked against the official code and TLlib.
# `notebooks/explore_co_tuning.py` draws the learned relationship. The NLP variant is table `ner` (CoNLL-2003 NER,
# bert-base-cased's masked-LM head as the source head, λ = 0.7; its mini table runs only when named: `make ner`);
# `notebooks/explore_co_tuning_ner.py` shows its relationship p(token | entity type). Mini numbers are never comparable
# to published ones.

# %% tags=["parameters"]
paper: str = "co_tuning"  # lib/transferlab/papers/co_tuning.py holds every setting
table: str = "sampling"  # one of the paper's tables: `transferlab run --help` lists them
protocol: str = "mini"  # mini (embedded, CPU) | paper (real data and weights, GPU) | demo (mini, short)
scope: str = "cell"  # cell: the one cell named below; table: the whole table via the runner (warm workers)
method: str = "co_tuning"  # the cell's method ("": the table's first)
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
