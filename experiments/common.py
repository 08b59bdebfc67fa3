"""What the experiment scripts share: where the repository, its reports and its scratch
files live, and which interpreter runs each peer (each peer in its own virtual
environment, never in the project's). Imports nothing from eventax, so that the peers'
scripts (`bench_jaxsnn.py`, `bench_spyx.py`, run by the peers' interpreters) use it too.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"  # the reports (committed)
SCRATCH = REPO / "results"  # generated weights, workloads and raw logs (git-ignored)

PEERS = ("eventax", "jaxsnn", "spyx")  # eventax: the published 0.1.0


def peer_python(peer: str) -> str:
    """The interpreter of `peer`'s virtual environment: `$PEER_<PEER>_PYTHON` if set,
    else `<repo>/../<peer>-ref/bin/python` (beside the project)."""
    if peer not in PEERS:
        raise ValueError(f"`peer` must be one of {PEERS}; got {peer!r}.")
    return os.environ.get(f"PEER_{peer.upper()}_PYTHON", str(REPO.parent / f"{peer}-ref" / "bin" / "python"))
