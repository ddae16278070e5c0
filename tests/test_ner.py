"""NER for Co-Tuning: the CoNLL reader (IOB1 → IOB2), the token task (encoding, split, entity F1), the BERT backbone
whose source head is the pre-trained masked-LM head, the relationship on a hand-made case, the loss against a direct
computation, and a tiny end-to-end run — on a fixture CoNLL tree and a tiny BERT written to a weights folder."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transferlab import api
from transferlab.config import ConfigError, OptimConfig, RunConfig
from transferlab.data import DatasetNotFoundError, load
from transferlab.data.text import CONLL_LABELS, IGNORE, iob1_to_iob2, read_conll
from transferlab.experiment import check
from transferlab.models import WeightsError, build_backbone
from transferlab.schedules import lr_factor
from transferlab.tasks import task_of

# IOB1, as eng.train: I- starts an entity; B- only between two adjacent entities of one type.
TRAIN = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

Paris NNP I-NP I-LOC
Berlin NNP I-NP B-LOC
and CC O O
Peter NNP I-NP I-PER
met VBD I-VP O
EU NNP I-NP I-ORG
. . O O
"""
DEV = """German JJ I-NP I-MISC
call NN I-NP O

Paris NNP I-NP I-LOC
rejects VBZ I-VP O
"""
TEST = """Blackburn NNP I-NP I-PER
met VBD I-VP O
Paris NNP I-NP I-LOC
. . O O
"""
WORDS = [
    "EU",
    "rejects",
    "German",
    "call",
    ".",
    "Peter",
    "Black",
    "##burn",
    "Pa",
    "##ris",
    "Berlin",
    "and",
    "met",
]


def write_conll(root, names=("train.txt", "valid.txt", "test.txt")):
    folder = root / "conll2003"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in zip(names, (TRAIN, DEV, TEST)):
        (folder / name).write_text(text)
    return root


@pytest.fixture
def tiny_bert(tmp_path, monkeypatch):
    """A 1-layer BERT (H = 16) saved as ``bert-base-cased/`` (config, safetensors, vocab) in a weights folder."""
    from transformers import BertConfig, BertForMaskedLM

    folder = tmp_path / "weights" / "bert-base-cased"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)  # fmt: skip
    model = BertForMaskedLM(cfg)
    with torch.no_grad():  # a non-trivial head: random transform bias and output bias
        model.cls.predictions.bias.normal_()
        model.cls.predictions.transform.dense.bias.normal_()
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    monkeypatch.setenv("TRANSFERLAB_WEIGHTS_DIR", str(tmp_path / "weights"))
    return folder, model.eval()


# ------------------------------------------------------------------------------------------------------- reader
def test_iob1_becomes_iob2_with_the_known_answer(tmp_path):
    write_conll(tmp_path)
    words, tags = read_conll(tmp_path / "conll2003" / "train.txt")
    assert words[0] == ["EU", "rejects", "German", "call", "."]  # -DOCSTART- skipped
    assert tags == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"],
                    ["B-LOC", "B-LOC", "O", "B-PER", "O", "B-ORG", "O"]]  # fmt: skip
    assert iob1_to_iob2(["B-PER", "I-PER", "I-LOC", "O", "I-LOC"]) == [
        "B-PER",
        "I-PER",
        "B-LOC",
        "O",
        "B-LOC",
    ]
    for sentence in tags:  # IOB2 in, IOB2 out
        assert iob1_to_iob2(sentence) == sentence
    with pytest.raises(ValueError, match="not O, B-X or I-X"):
        iob1_to_iob2(["PER"])


def test_missing_files_name_the_layout_and_the_distribution_names_work(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"train.txt or eng.train.*\n.*Expected layout") as err:
        load("conll2003", tmp_path)
    assert "valid.txt" in str(err.value) and "NIST" in str(err.value)
    write_conll(tmp_path, ("eng.train", "eng.testa", "eng.testb"))
    src = load("conll2003", tmp_path)
    assert (len(src.train), len(src.test)) == (3 + 2, 1) and src.classes == CONLL_LABELS
    assert src.train.targets.tolist() == [0, 0, 0, 1, 1] and src.task == "token_classification"


# --------------------------------------------------------------------------------------------------------- task
def test_encoding_labels_first_sub_tokens_and_the_split_keeps_the_dev_file(tmp_path, tiny_bert):
    src = load("conll2003", write_conll(tmp_path))
    task = task_of(src)
    data = src.train.dataset
    tok = ["[CLS]", "Pa", "##ris", "Berlin", "and", "Peter", "met", "EU", ".", "[SEP]"]
    vocab = (tiny_bert[0] / "vocab.txt").read_text().split()
    assert data.images[2, 0, : len(tok)].tolist() == [vocab.index(t) for t in tok]
    assert data.images[2, 1].sum() == len(tok)
    lab = [IGNORE, 7, IGNORE, 7, 0, 3, 0, 5, 0, IGNORE]  # B-LOC on "Pa" only; specials and "##ris" ignored
    assert data.targets[2, : len(tok)].tolist() == lab and (data.targets[2, len(tok) :] == IGNORE).all()
    assert task.entity_types == ["MISC", "PER", "ORG", "LOC"] and task.label_type.tolist()[:3] == [-1, 0, 0]
    cfg = RunConfig().data.__class__(dataset="conll2003", sample_rate=0.5)
    s = task.split(src, cfg, seed=0)
    assert s.val.tolist() == [3, 4] and len(s.train) == 2 and set(s.train) <= {0, 1, 2}


def test_entity_f1_is_seqeval_on_first_sub_tokens():
    from seqeval.metrics import f1_score, precision_score
    from transferlab.tasks.token_classification import TokenClassification

    task = TokenClassification(len(CONLL_LABELS), CONLL_LABELS, tokenizer="x", max_length=8)
    y = torch.tensor([[IGNORE, 3, 4, 0, IGNORE], [IGNORE, 7, IGNORE, 1, 0]])
    pred = torch.tensor([[0, 3, 4, 0, 0], [0, 7, 0, 5, 0]])  # second sentence: B-MISC predicted as B-ORG
    out = task.evaluate(lambda x: F.one_hot(pred, len(CONLL_LABELS)).float(), [(torch.zeros(2, 2, 5), y)])
    gold, guess = (
        [["B-PER", "I-PER", "O"], ["B-LOC", "B-MISC", "O"]],
        [["B-PER", "I-PER", "O"], ["B-LOC", "B-ORG", "O"]],
    )
    assert out["value"] == pytest.approx(100 * f1_score(gold, guess)) and out["n"] == 2
    assert (
        out["extras"]["precision"] == pytest.approx(100 * precision_score(gold, guess)) and out["value"] < 100
    )


# ----------------------------------------------------------------------------------------------------- backbone
def test_the_source_head_is_the_pretrained_masked_lm_head(tiny_bert):
    folder, hf = tiny_bert
    bb = build_backbone("bert", "bert-base-cased", source_head=True).eval()
    head = bb.source_head
    assert head is not None and head.out_features == hf.config.vocab_size
    emb = bb.body.embeddings.word_embeddings.weight
    assert (
        torch.equal(head.decoder.weight, emb) and head.decoder.weight.data_ptr() != emb.data_ptr()
    )  # a copy
    assert torch.equal(head.dense.weight, hf.cls.predictions.transform.dense.weight)
    assert torch.equal(head.decoder.bias, hf.cls.predictions.bias)
    ids = torch.tensor([[2, 13, 14, 5, 3]])
    x = torch.stack([ids, torch.ones_like(ids)], 1)
    with torch.no_grad():
        torch.testing.assert_close(head(bb.features(x)), hf(input_ids=ids).logits, rtol=1e-5, atol=1e-5)
    assert build_backbone("bert", "bert-base-cased").source_head is None  # fine-tuning: no MLM head built


def test_weights_errors_name_the_files(tiny_bert, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    folder, _ = tiny_bert
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("cls.")}, str(folder / "model.safetensors"))
    with pytest.raises(WeightsError, match="no masked-LM head"):
        build_backbone("bert", "bert-base-cased", source_head=True)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("TRANSFERLAB_WEIGHTS_DIR", str(tmp_path / "empty"))
    with pytest.raises(
        WeightsError, match=r"(?s)bert-base-cased/ with config.json, vocab.txt.*huggingface.co"
    ):
        build_backbone("bert", "bert-base-cased")
    with pytest.raises(ConfigError, match="Valid: bert-base-cased, minilm-l6-mlm"):
        check(RunConfig.from_flat({"backbone": "bert", "pretrained": "IMAGENET1K_V1", "dataset": "mini_ner"}))


# ------------------------------------------------------------------------------------------------- relationship
def test_direct_relationship_on_a_hand_made_case():
    from transferlab.methods.co_tuning_tokens import direct, entity_mask
    from transferlab.methods.relationship import direct_relationship

    label_type = torch.tensor([-1, 0, 0, 1, 1])  # O, B-A, I-A, B-B, I-B
    y = torch.tensor([[IGNORE, 1, 2, 0, IGNORE], [3, IGNORE, 0, 4, 0]])
    assert entity_mask(y, label_type).tolist() == [
        [False, True, True, False, False],
        [True, False, False, True, False],
    ]
    p = torch.tensor(
        [[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]], dtype=torch.float64
    )
    types = torch.tensor([0, 0, 1, 1])
    r, counts = direct([(p[:3], types[:3]), (p[3:], types[3:])], 3)
    np.testing.assert_allclose(r[:2], [[0.3, 0.35, 0.35], [0.1, 0.6, 0.3]])
    assert np.isnan(r[2]).all() and counts.tolist() == [2, 2, 0]
    with np.errstate(divide="ignore"):  # log 0 = −inf: a zero probability, as softmax gives back
        np.testing.assert_allclose(r[:2], direct_relationship(np.log(p.numpy()), types.numpy()), atol=1e-12)


# --------------------------------------------------------------------------------------------- loss, end to end
def _cfg(method: str, **params) -> RunConfig:
    flat = {"paper": "tests", "table": "ner", "method": method, "backbone": "bert", "pretrained": "bert-base-cased",
            "dataset": "conll2003", "device": "cpu", "batch_size": 2, "eval_batch_size": 4, "optimizer": "adam",
            "lr": 1e-3, "weight_decay": 0.0, "head_lr_mult": 1.0, "schedule": "linear", "iterations": 3,
            "eval_every": 3, "method_params": params}  # fmt: skip
    return RunConfig.from_flat(flat)


def test_co_tuning_loss_against_a_direct_computation(tmp_path, tiny_bert):
    method, data = api.prepared_method(_cfg("co_tuning", trade_off=0.7, relationship="direct",
                                            direct_variant="tllib").replace(data_root=str(write_conll(tmp_path))))  # fmt: skip
    r = method.relationship
    assert r.shape == (4, 18) and torch.allclose(r.sum(1), torch.ones(4, dtype=r.dtype))
    x, y = next(iter(data.train()))
    method.eval()  # no dropout: both computations see the same features
    out = method.loss(x, y)
    with torch.no_grad():
        f = method.backbone.body(input_ids=x[:, 0], attention_mask=x[:, 1]).last_hidden_state
        logits = f @ method.backbone.head.weight.T + method.backbone.head.bias
        keep = y != IGNORE
        ce = -F.log_softmax(logits[keep], -1).gather(1, y[keep][:, None]).mean()
        ent = keep & (y > 0)  # CoNLL label order: entity labels are 1..8, type = (label - 1) // 2
        prob = F.softmax(method.backbone.source_head(f[ent]), -1)
        aux = -(r[(y[ent] - 1) // 2].float() * torch.log(prob + 1e-10)).sum(1).mean()
    assert int(ent.sum()) > 0
    torch.testing.assert_close(out["ce"], ce)
    torch.testing.assert_close(out["co_tuning"], aux)
    torch.testing.assert_close(out["loss"], ce + 0.7 * aux)


def test_finetune_and_co_tuning_run_end_to_end_with_entity_f1(tmp_path, tiny_bert):
    root = str(write_conll(tmp_path / "data"))
    for method, params in (("finetune", {}), ("co_tuning", {"trade_off": 0.7, "relationship": "direct"})):
        res = api.run(
            _cfg(method, **params).replace(data_root=root), out_dir=tmp_path / method, root=tmp_path
        )
        m = res.metrics
        assert (
            m["metric"] == "f1" and m["task"] == "token_classification" and 0 <= m["test_at_best_val"] <= 100
        )
        assert "precision_at_best_val" in m and res.cost["val_images"] == 2
    assert res.extra["co_tuning"]["entity_types"] == ["MISC", "PER", "ORG", "LOC"]
    assert (tmp_path / "co_tuning" / "relationship.npz").exists()


def test_the_dataset_and_the_weights_must_share_a_vocabulary(tmp_path, tiny_bert):
    cfg = _cfg("finetune").replace(dataset="mini_ner", data_root=str(tmp_path))
    with pytest.raises(ConfigError, match="'all-MiniLM-L6-v2' vocabulary.*'bert-base-cased'"):
        api.run(cfg, out_dir=tmp_path / "run", root=tmp_path)


# --------------------------------------------------------------------------------------------- the rest wired
def test_linear_schedule_decays_to_zero():
    o = OptimConfig(schedule="linear", iterations=10, warmup_steps=2)
    assert [round(lr_factor(o, s), 3) for s in (0, 1, 2, 6, 9)] == [0.5, 1.0, 1.0, 0.5, 0.125]


def test_ner_tables_and_the_separate_mini_table():
    from transferlab.papers import PAPERS

    spec = PAPERS.get("co_tuning")
    assert "ner" not in spec.table_names("mini") and "ner" in spec.table_names("mini", separate=True)
    assert "ner" in spec.table_names("paper")
    cells = spec.table("ner", "paper").cells(seeds=[0], paper="co_tuning")
    cfg = {c.params["method"]: c.config() for c in cells}
    assert cfg["co_tuning"].method_params["trade_off"] == 0.7 and cfg["co_tuning"].optim.lr == 5e-5
    assert cfg["finetune"].optim.optimizer == "adam" and cfg["finetune"].data.dataset == "conll2003"


def test_import_transferlab_does_not_import_transformers():
    code = (
        "import sys, transferlab, transferlab.api, transferlab.papers; print('transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_the_ner_exploration_notebook_shows_each_types_top_tokens(tmp_path):
    """``notebooks/explore_co_tuning_ner.py`` on the mini protocol, as a user runs it (fits the MiniLM masked-LM head
    once if the cache lacks it: minutes)."""
    import json
    import os

    from transferlab import nbexec

    ipynb = nbexec.notebook_ipynb("explore_co_tuning_ner", tmp_path)
    env = {**os.environ, "PYTHONPATH": nbexec.pythonpath_with_lib(os.environ.get("PYTHONPATH"))}
    code, tail = nbexec.execute_notebook(ipynb, tmp_path / "out.ipynb", {"top": 5}, env, tmp_path / "log")
    assert code == 0, tail
    cells = json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    html = "".join(
        "".join(o.get("data", {}).get("text/html", "")) for c in cells for o in c.get("outputs", [])
    )
    assert all(t in html for t in ("MISC", "PER", "ORG", "LOC"))


def test_fitting_the_mini_head_on_a_cold_cache_leaves_the_runs_rng_alone(tmp_path, monkeypatch):
    """fit() seeds torch; a run that finds the head's cache cold must continue with the RNG state it had (a cold
    cache once gave another Co-Tuning NER result than a warm one)."""
    from transferlab.models import text_mlm

    def fake_fit(body, tok, head_class):
        torch.manual_seed(text_mlm.SEED)
        return {"w": torch.zeros(2)}, {"heldout_top1": 0.0, "heldout_top5": 0.0, "seconds": 0.0}

    monkeypatch.setattr(text_mlm, "fit", fake_fit)
    monkeypatch.setattr(text_mlm, "cache_dir", lambda: tmp_path / "cache")
    (tmp_path / "model.safetensors").write_bytes(b"encoder")
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    state, sha = text_mlm.fitted_head(torch.nn.Identity(), tmp_path, None, lambda: None)
    assert torch.equal(torch.rand(3), expected) and torch.equal(state["w"], torch.zeros(2)) and len(sha) == 64
