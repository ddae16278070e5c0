"""Measurement: ``fit()`` against a bare loop (:mod:`.fit`), method steps against each other (:mod:`.methods`), and
a table's cost — parameters, MACs, images/s, peak memory (:mod:`.cost`, :mod:`.table`). Targets live here, as
ratios measured on one machine, never as timed assertions in tests."""
