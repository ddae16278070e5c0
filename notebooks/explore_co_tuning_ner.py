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
# # Co-Tuning for NER: the masked-LM head as the source head
#
# Co-Tuning's NLP experiment (thuml/CoTuning `nlp/`) keeps BERT's pre-trained **masked-LM head** as the source head:
# the source categories are the vocabulary, the target categories the entity types, and the relationship
# R = p(vocabulary token | entity type) is the head's mean output distribution at each type's entity tokens on the
# training sentences (our procedure: the official script was not released; `methods/co_tuning_tokens.py`). Fine-tuning
# then adds λ · CE(masked-LM head, R[type]) at every entity token (λ = 0.7). This notebook prepares the mini NER
# table's Co-Tuning cell (a constructed set, the MiniLM encoder with a masked-LM head the suite fits once) and shows
# each entity type's most probable tokens under R. Settings: the `ner` tables of `lib/transferlab/papers/co_tuning.py`;
# the mini numbers are a mechanics check, never comparable to CoNLL-2003 F1.

# %% tags=["parameters"]
protocol: str = (
    "mini"  # mini (mini_ner, MiniLM, CPU) | paper (CoNLL-2003 and bert-base-cased under your data root)
)
relationship: str = (
    "direct"  # direct (the tables' choice) | reverse (slow: logistic regression over the vocabulary)
)
seed: int = 0  # seeds the split
top: int = 12  # tokens shown per entity type

# %%
import pandas as pd
import transferlab as tl
from transferlab.methods.co_tuning_tokens import top_tokens
from transferlab.models.text import tokenizer
from transferlab.papers import resolve

params = {"trade_off": 0.7, "relationship": relationship, "direct_variant": "tllib"}
cfg = resolve(
    "co_tuning", "ner", protocol, seed=seed, method="co_tuning", overrides={"method_params": params}
)
method, data = tl.prepared_method(cfg)
print(method.info)

# %% [markdown]
# ## The most probable vocabulary tokens of each entity type under R

# %%
tok = tokenizer(data.source.task_params["tokenizer"])
pd.DataFrame(top_tokens(method.relationship, tok, method.task.entity_types, top))
