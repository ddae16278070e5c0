"""A warm worker: ``python -m transferlab.runner.worker`` imports the suite once, then runs cells as they come.

Protocol (JSON lines): a request ``{"cfg": <flat config>, "run_dir": ..., "root": ..., "notebook": ""}`` on stdin,
one reply ``{"status": ..., ...}`` (:func:`transferlab.runner.cell.execute`) on the process's original stdout,
which is kept for replies only: a cell's own output goes to its ``run.log``. The worker runs with one CPU thread
(``TRANSFERLAB_THREADS`` from the pool) and is killed with its parent (``PR_SET_PDEATHSIG`` set by the pool).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    replies = os.fdopen(
        os.dup(1), "w", buffering=1
    )  # the protocol channel; fd 1 itself goes to the cell logs
    os.dup2(2, 1)
    from transferlab.config import RunConfig
    from transferlab.runner.cell import execute

    replies.write(json.dumps({"status": "ready", "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            cfg = RunConfig.from_flat(req["cfg"])
            reply = execute(cfg, Path(req["run_dir"]), Path(req["root"]), req.get("notebook", ""))
        except Exception as err:  # noqa: BLE001  a malformed request: answer, keep serving
            reply = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:500]}
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
