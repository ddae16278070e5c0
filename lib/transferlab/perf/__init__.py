"""Measurement, in one vocabulary (:mod:`.common`: a ``Case`` of ``Arm`` s, one run configuration, warm-up and
alternating timed runs, one table formatter, one report writer). Suites of ``transferlab bench``: ``fit()`` against a
bare loop (:mod:`.fit`), method steps against each other (:mod:`.methods`), the input path from files on disk
(:mod:`.data`); their contenders in :mod:`.arms`. A method's cost — parameters, MACs, images/s, peak memory
(:mod:`.cost`, :mod:`.memory`) — and ``transferlab cost``'s paper tables (:mod:`.table`). Targets live here, as ratios
measured on one machine, never as timed assertions in tests."""
