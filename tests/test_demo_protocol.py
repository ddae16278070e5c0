"""The demo protocol: every mini results table at seed 0 on a shortened schedule, derived, never written by hand."""

from __future__ import annotations

import pytest
from transferlab.cli import main
from transferlab.config import DEMO_EVAL_SCALE, DEMO_STEPS_SCALE
from transferlab.papers import PAPERS
from transferlab.papers.spec import demo_ref, scale_steps


def _twins():
    for name in PAPERS.names():
        spec = PAPERS.get(name)
        for (table, protocol), t in spec.tables.items():
            if protocol == "mini":
                yield name, table, t, spec.tables.get((table, "demo"))


def test_every_mini_results_table_has_a_demo_twin_and_no_other_table_does():
    twins = list(_twins())
    assert twins
    for paper, table, mini, demo in twins:
        wanted = mini.kind == "results" and not mini.separate
        assert (demo is not None) == wanted, (paper, table)
    names = {(p, t) for p, t, _, demo in twins if demo is not None}
    assert ("co_tuning", "ner") not in names and (
        "zoo_tuning",
        "rl",
    ) not in names  # separate: never in a demo
    assert ("finetune", "sampling") in names and ("hub_pathway", "ablation") in names


def test_demo_cells_are_the_mini_cells_at_seed_0_with_every_step_count_scaled():
    for paper, table, mini, demo in _twins():
        if demo is None:
            continue
        mini_cells = [c for c in mini.cells(paper=paper) if c.params["seed"] == 0]
        demo_cells = demo.cells(paper=paper)
        assert {c.params["seed"] for c in demo_cells} == {0}
        assert len(demo_cells) == len(mini_cells), (paper, table)
        for m, d in zip(mini_cells, demo_cells):
            if not m.available:
                continue
            mc, dc = m.config(), d.config()
            assert dc.protocol == "demo" and mc.protocol == "mini"
            assert (dc.method, dc.data.dataset, dc.pretrained, dc.data.sample_rate) == (
                mc.method, mc.data.dataset, demo_ref(mc.pretrained), mc.data.sample_rate)  # fmt: skip
            assert dc.optim.iterations == max(1, round(mc.optim.iterations * DEMO_STEPS_SCALE))
            assert dc.optim.eval_every == max(1, round(mc.optim.eval_every * DEMO_EVAL_SCALE))
            assert dc.config_hash() != mc.config_hash()  # a demo run never passes for a mini one


def test_demo_runs_use_only_the_demo_hub_and_mini_runs_never_do():
    from transferlab.hubbuild import models_of
    from transferlab.models.mini_hub import DEMO, MINI_HUB

    demo_needs, mini_needs = set(), set()
    for paper, _, mini, demo in _twins():
        for table, needs in ((mini, mini_needs), (demo, demo_needs)):
            for c in table.cells(paper=paper) if table is not None else []:
                if c.available:
                    needs.update(n for n in models_of(c.config()) if not n.startswith("policy:"))
    assert demo_needs == {DEMO + n for n in ("clusters", "coarse", "rotation", "parity", "jigsaw")}
    assert mini_needs and not any(n.startswith(DEMO) for n in mini_needs)
    for name in mini_needs:  # each twin: the same recipe with × DEMO_STEPS_SCALE of its steps, parent's twin
        m, d = MINI_HUB.get(name), MINI_HUB.get(DEMO + name)
        assert d.iterations == max(1, round(m.iterations * DEMO_STEPS_SCALE)) < m.iterations
        assert (d.dataset, d.batch_size, d.lr) == (m.dataset, m.batch_size, m.lr)
        assert d.parent == (DEMO + m.parent if m.parent else "")
        assert d.recipe().config_hash() != m.recipe().config_hash()
    assert demo_ref("mini:clusters") == "mini:demo_clusters" == demo_ref("mini:demo_clusters")
    assert demo_ref("hub:mini") == "hub:demo" and demo_ref("none") == "none"


def test_an_l2t_demo_run_names_the_demo_source_even_when_the_mini_run_says_auto():
    from transferlab.papers import resolve

    assert resolve("l2t_ww", "limited", "mini", method="l2t_ww").method_params.get("source", "auto") == "auto"
    assert (
        resolve("l2t_ww", "limited", "demo", method="l2t_ww").method_params["source"] == "mini:demo_clusters"
    )


def test_scale_steps_keeps_warmup_and_milestones_inside_the_schedule():
    out = scale_steps(
        {"iterations": 1000, "eval_every": 100, "warmup_steps": 40, "milestones": [600, 900]}, 0.1
    )
    assert out == {"iterations": 100, "eval_every": 10, "warmup_steps": 4, "milestones": [60, 90]}
    assert scale_steps({"iterations": 3}, 0.1)["iterations"] == 1  # never zero steps
    assert scale_steps({}, 0.5)["iterations"] == 500  # a field left at its default is scaled too
    assert scale_steps({"iterations": 1000, "eval_every": 100}, 0.25, 0.5) == {
        "iterations": 250,
        "eval_every": 50,
    }


def test_run_protocol_demo_plans_the_demo_cells_in_their_own_folder(tmp_path, capsys):
    assert main(["run", "finetune", "--protocol", "demo", "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "finetune/sampling (demo): 6 cells" in out
    assert f"{tmp_path}/finetune/demo/sampling-mini_fmnist-finetune-r5-s0-" in out


def test_an_unknown_protocol_names_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["run", "finetune", "--protocol", "tiny", "--dry-run"])
    assert "'mini', 'paper', 'demo'" in capsys.readouterr().err


def test_the_demo_markdown_report_says_what_it_is_and_makes_no_claims(tmp_path):
    from transferlab.reports_markdown import paper_markdown

    text = paper_markdown("co_tuning", str(tmp_path), protocol="demo")
    assert "Demo protocol" in text and "no claims" in text
    assert "Does the mini result agree" not in text and "agrees" not in text
    assert "### `sampling`" in text
