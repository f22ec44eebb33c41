"""Fault injection for the reliability tests: named points in the stages where a test can kill
the process or cut its database connection, to prove that a rerun converges.

Off unless `CCG_FAULT_INJECT` is set (one environment lookup per point otherwise). The value is
`ACTION:POINT:N`: at the Nth time this process reaches POINT (a trailing `*` matches a prefix),
do ACTION:

- `kill`: SIGKILL this process, as the kernel's OOM killer or a lost worker would: no cleanup,
  no rollback sent, open transactions die with the connection;
- `cut`: break the database connection of the transaction in progress (PostgreSQL:
  `pg_terminate_backend` from a second connection; SQLite: the connection is closed under the
  transaction), so its next statement fails as after a network cut or a server restart;
- `raise`: raise `InjectedFault` (an in-process crash, for tests that run the stage themselves).

Points: `audit.<action>` (the last write of every audited transaction: an ingest batch, a
retention chunk, a publication, a request), `statistics.build.<table>`, `statistics.export`.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from typing import Any

ENV = "CCG_FAULT_INJECT"
HITS: Counter[str] = Counter()


class InjectedFault(ConnectionError):
    """The `raise` action: a crash where the test asked for one."""


def reach(point: str, conn: Any = None, cut: Callable[[Any], None] | None = None) -> None:
    """Mark that this process reached `point`, inside the transaction of `conn` if given; `cut`
    ends that connection's session (the warehouse's backend knows how)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    action, _, rest = spec.partition(":")
    name, _, nth = rest.rpartition(":")
    if not (point == name or (name.endswith("*") and point.startswith(name[:-1]))):
        return
    HITS[name] += 1
    if HITS[name] != int(nth or 0):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "cut":
        if conn is None or cut is None:
            raise ValueError(f"{ENV}: the cut action needs a point inside a transaction")
        cut(conn)
    elif action == "raise":
        raise InjectedFault(f"fault injected at {point}")
    else:
        raise ValueError(f"{ENV}: unknown action {action!r}; expected kill, cut or raise")
