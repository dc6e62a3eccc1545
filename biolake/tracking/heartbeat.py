"""Heartbeats: how a run on another host is known to be alive.

A process with started runs sets their ``heartbeat_at`` every ``interval()`` seconds (60 by
default, ``BIOLAKE_HEARTBEAT_SECONDS`` to change it) from one daemon thread. A run of another
host whose heartbeat is older than ``lease()`` (ten intervals: 10 minutes by default) is found
``crashed`` (its node was lost, or its process killed); on its own host, a run is crashed as
soon as its pid is gone. A closed instance (``ln.setup.close()``) gets no more beats.

On PostgreSQL, beats and the lease are measured by the database server's clock (``now()``),
so that nodes whose clocks disagree never find each other's live runs crashed; on SQLite, whose
writers share one machine, by that machine's clock.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from typing import Any

from sqlalchemy import func, select, update

from biolake.core.instance import Instance
from biolake.core.log import logger
from biolake.core.schema.base import utcnow

LEASE_INTERVALS = 10


def interval() -> float:
    """Seconds between two heartbeats of a live process."""
    try:
        return max(0.05, float(os.environ.get("BIOLAKE_HEARTBEAT_SECONDS", "60")))
    except ValueError:
        return 60.0


def lease() -> dt.timedelta:
    """How long a run of another host may go without a heartbeat before it counts as crashed."""
    return dt.timedelta(seconds=LEASE_INTERVALS * interval())


class _Heartbeat:
    """The one heartbeat thread of this process, over every instance it has runs in."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[Instance, Any]] = {}  # by instance root
        self.pid = -1
        self.wake = threading.Event()
        self.failures = 0

    def watch(self, instance: Instance, table: Any) -> None:
        self.tables[str(instance.root)] = (instance, table)
        if self.pid != os.getpid():  # first run here, or a forked child (threads do not fork)
            self.pid = os.getpid()
            threading.Thread(target=self._beat, name="biolake-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        host, pid = socket.gethostname(), os.getpid()
        while not self.wake.wait(interval()):
            for root, entry in list(self.tables.items()):
                instance, table = entry
                # Closed: its connections are gone, and a beat would open one nobody closes.
                beating = not instance.closed and self._beat_safely(instance, table, host, pid)
                if not beating and self.tables.get(root) is entry:  # not a newer watch()
                    self.tables.pop(root, None)  # no run left there; a new run watches again

    def _beat_safely(self, instance: Instance, table: Any, host: str, pid: int) -> bool:
        try:
            beating = _beat_once(instance, table, host, pid)
        except Exception as exc:  # a missed beat; the lease allows nine more
            self.failures += 1
            if self.failures == 3:
                logger.warning(f"runs of this process miss their heartbeats: {exc!r}")
            return True
        self.failures = 0
        return beating


def _beat_once(instance: Instance, table: Any, host: str, pid: int) -> bool:
    """Beat for this process's started runs in ``instance``; False when it has none left."""
    # Its own connection: the instance's session belongs to the main thread.
    mine = (table.c.pid == pid) & (table.c.host == host) & (table.c.status == "started")
    with instance.db.engine.begin() as conn:
        result: Any = conn.execute(update(table).where(mine).values(heartbeat_at=clock(instance)))
    return bool(result.rowcount)


def clock(instance: Instance) -> Any:
    """What a beat is stamped with: the server's ``now()`` on PostgreSQL, else this machine's."""
    return utcnow() if instance.db.is_sqlite else func.now()


def now(instance: Instance, session: Any) -> dt.datetime:
    """The time leases are compared with, by the same clock as the beats."""
    if instance.db.is_sqlite:
        return utcnow()
    value: dt.datetime = session.execute(select(func.now())).scalar_one()
    return value.astimezone(dt.UTC)


_heartbeat = _Heartbeat()


def watch(instance: Instance, table: Any) -> None:
    """Keep the started runs of this process in ``instance`` beating."""
    _heartbeat.watch(instance, table)
