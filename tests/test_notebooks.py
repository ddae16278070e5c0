"""The paper notebooks: thin parameters cells that identify a run, one source of settings, clear errors.

Each ``notebooks/<paper>.py`` defines exactly the parameters ``transferlab.notebook.PARAMETERS``, one annotated line
each (papermill documents them); its defaults name a valid cell of that paper, resolved from the paper spec; a name
papermill injects that is not a parameter is an error, not a warning; the notebook runs a cell with papermill.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jupytext
import pytest
from transferlab.config import ConfigError
from transferlab.nbexec import NOTEBOOKS, child_env, execute_notebook, notebook_ipynb
from transferlab.notebook import PARAMETERS, Notebook, parameters_of
from transferlab.papers import PAPERS, resolve


def _parameters_cell(name: str):
    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("paper", PAPERS.names())
def test_every_paper_notebook_has_the_thin_parameters_cell(paper):
    cell = _parameters_cell(PAPERS.get(paper).notebook)
    namespace: dict = {}
    exec(cell.source, namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == sorted(PARAMETERS)
    for line in cell.source.splitlines():
        assert re.match(r"^\w+: \w+ = .+  # [^=]+$", line), (
            f"{paper}: not a one-line documented parameter: {line!r}"
        )
    assert namespace["paper"] == paper and namespace["scope"] == "cell"
    run = Notebook(namespace)  # the defaults resolve, from the paper spec, to a valid cell of that paper
    assert run.cfg.paper == paper and run.cfg.table == namespace["table"]
    assert run.cfg == resolve(paper, namespace["table"], seed=0, method=namespace["method"])


def test_papermill_documents_the_parameters(tmp_path):
    ipynb = notebook_ipynb("co_tuning", tmp_path)
    helped = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(ipynb)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    documented = dict(re.findall(r"^  (\w+): (\w+) \(default", helped.stdout, flags=re.M))
    assert set(documented) == set(PARAMETERS)
    assert "Unknown" not in documented.values()


def test_a_name_that_is_not_a_parameter_is_an_error():
    namespace: dict = {}
    exec(_parameters_cell("finetune").source, namespace)
    namespace["learning_rate"] = 0.1  # what `papermill -p learning_rate 0.1` injects
    with pytest.raises(ConfigError, match=r"unknown notebook parameter\(s\) \['learning_rate'\].*overrides"):
        parameters_of(namespace)
    namespace.pop("learning_rate")
    with pytest.raises(ConfigError, match="scope='tables' is not valid; choose one of: cell, table, config"):
        Notebook({**namespace, "scope": "tables"})
    with pytest.raises(ConfigError, match=r"unknown override\(s\) \['learning_rate'\]"):
        Notebook({**namespace, "overrides": {"learning_rate": 0.1}})
    with pytest.raises(ConfigError, match="has no cell with"):
        Notebook({**namespace, "method": "fintune"})


def test_the_cell_scope_runs_with_papermill_and_overrides_make_their_own_run(tmp_path):
    ipynb = notebook_ipynb("finetune", tmp_path)
    params = {"method": "scratch", "sample_rate": 0.05, "overrides": {"iterations": 6, "eval_every": 3},
              "results": str(tmp_path / "results")}  # fmt: skip
    code, tail = execute_notebook(ipynb, tmp_path / "out.ipynb", params, child_env(), tmp_path / "log")
    assert code == 0, tail
    (metrics,) = (tmp_path / "results" / "finetune" / "mini").glob("*/metrics.json")
    result = json.loads(metrics.read_text())
    assert result["config"]["iterations"] == 6 and result["config"]["method"] == "scratch"
    table_cell = resolve("finetune", "sampling", method="scratch", sample_rate=0.05)
    assert result["config_hash"] != table_cell.config_hash()  # overridden: never passes for the table's cell
    out = json.loads((tmp_path / "out.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", []))
    assert "scratch on mini_fmnist" in text  # the run's summary line

    code, tail = execute_notebook(ipynb, tmp_path / "bad.ipynb", {"learning_rate": 0.1}, child_env(),
                                  tmp_path / "bad.log")  # fmt: skip
    assert code != 0 and "unknown notebook parameter(s) ['learning_rate']" in tail
