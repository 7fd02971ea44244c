"""Leader election by running a function while holding a lock (kazoo's ``Election``).

The logic is the Rust client's (``zookeeper_core::client::recipes::LeaderElection``), shared
with C. For a long-lived leader that is told when it gains and loses leadership, see
:class:`zookeeper.recipes.LeaderLatch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional

from zookeeper import _native
from zookeeper.recipes._support import session_slot

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["LeaderElection"]


class LeaderElection:
    """Contends for leadership and runs a function while leader.

    Example::

        election = LeaderElection(zk, "/elections/scheduler", "host-a")
        election.run(schedule_forever)   # blocks until elected, then runs it

    Leadership lasts while the function runs; when it returns or raises, the next contender
    is elected. A leader whose session ends is replaced, but its function is not interrupted:
    watch the client's connection state for LOST.
    """

    def __init__(self, client: ZooKeeper, path: str, identifier: Optional[str] = None) -> None:
        """Prepares a contender in the election at ``path``, listed as ``identifier``."""
        self.client = client
        self.path = path
        self._native = _native.NativeLeaderElection(session_slot(client), path,
                                                    str(identifier or ""))

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Blocks until elected, then calls ``func(*args, **kwargs)`` and gives up leadership
        when it returns. Returns without calling it after :meth:`cancel`."""
        if not callable(func):
            raise ValueError("leader function is not callable")
        self._native.run(lambda: func(*args, **kwargs))

    def cancel(self) -> None:
        """Stops contending; a running leader function is not interrupted."""
        self._native.cancel()

    def contenders(self) -> List[str]:
        """The identifiers of the contenders, the leader first."""
        return self._native.contenders()
