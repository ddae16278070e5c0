"""Paper specs: each paper's experiment tables as grids of run configurations, with their provenance.

The vocabulary (``Table``, ``Cell``, ``Paper``, ``resolve``) is :mod:`transferlab.papers.spec`; each paper module
(``co_tuning``, ``finetune``, ``hub_pathway``, ``l2t_ww``, ``zoo_tuning``) registers its :class:`Paper` in
``PAPERS`` when imported here.
"""

from transferlab.papers.spec import IDENTITY, PAPERS, Cell, Claim, Paper, Table, register, resolve

from transferlab.papers import co_tuning, finetune, hub_pathway, l2t_ww, zoo_tuning  # noqa: E402,F401  isort: skip

__all__ = ["IDENTITY", "PAPERS", "Cell", "Claim", "Paper", "Table", "register", "resolve"]
