"""A shared counter changed atomically by compare-and-set on the znode's version (kazoo's
``Counter``; with ``support_curator=True`` it shares the znode with Curator's
``SharedCount``)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Optional, Tuple, Union

from zookeeper.recipes._support import BadVersionError, retry

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["Counter"]

Number = Union[int, float]

# Concurrent changes make a compare-and-set fail; after this many in a row it gives up and
# raises BadVersionError rather than spin for ever under contention.
CHANGE_ATTEMPTS_MAX = 1000


class Counter:
    """A counter of ints or floats (the type of ``default``) stored as ASCII in a znode.

    Example::

        counter = Counter(zk, "/counters/jobs")
        counter += 2
        counter -= 1
        counter.value       # 1
        counter.pre_value   # 2, the value before this client's last change
        counter.post_value  # 1, the value this client's last change wrote
    """

    def __init__(
        self,
        client: ZooKeeper,
        path: str,
        default: Number = 0,
        support_curator: bool = False,
    ) -> None:
        """A counter at ``path`` (created on first use) that reads as ``default`` while the
        znode is empty. ``support_curator`` stores a 4-byte big-endian int as Curator does."""
        if support_curator and not isinstance(default, int):
            raise TypeError("when support_curator is enabled the default type must be an int")
        if not isinstance(default, (int, float)):
            raise TypeError(f"default must be an int or float, got {type(default).__name__}")
        self.client = client
        self.path = path
        self.default = default
        self.default_type = type(default)
        self.support_curator = support_curator
        #: The counter's value before this client's last change.
        self.pre_value: Optional[Number] = None
        #: The value this client's last change wrote.
        self.post_value: Optional[Number] = None
        self._ensured_path = False

    def _read(self) -> Tuple[Number, int]:
        if not self._ensured_path:
            retry(self.client.ensure_path, self.path)
            self._ensured_path = True
        data = retry(self.client.get, self.path)
        raw = bytes(data)
        value: Number
        if not raw:
            value = self.default
        elif self.support_curator:
            value = struct.unpack(">i", raw)[0]
        else:
            value = self.default_type(raw.decode("ascii"))
        return value, data.stat.version

    @property
    def value(self) -> Number:
        """The counter's current value."""
        return self._read()[0]

    def _change(self, delta: Number) -> Counter:
        if not isinstance(delta, self.default_type) or isinstance(delta, bool):
            raise TypeError(f"invalid type for value change: {type(delta).__name__}, "
                            f"expected {self.default_type.__name__}")
        for attempt in range(CHANGE_ATTEMPTS_MAX):
            pre_value, version = self._read()
            post_value = pre_value + delta
            data = (struct.pack(">i", post_value) if self.support_curator
                    else repr(post_value).encode("ascii"))
            try:
                # Not retried on connection loss: a set whose reply was lost may have been
                # applied, and doing it again would count twice. The caller decides.
                self.client.set(self.path, data, version=version)
            except BadVersionError:
                if attempt + 1 == CHANGE_ATTEMPTS_MAX:
                    self.post_value = None
                    raise
                continue
            self.pre_value, self.post_value = pre_value, post_value
            return self
        raise AssertionError("unreachable: the last attempt returns or raises")

    def __add__(self, delta: Number) -> Counter:
        """Adds ``delta`` atomically; ``counter += n`` keeps the same object."""
        return self._change(delta)

    def __sub__(self, delta: Number) -> Counter:
        """Subtracts ``delta`` atomically."""
        return self._change(-delta)
