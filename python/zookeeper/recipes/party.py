"""Group membership: who is in the party right now. :class:`Party` keeps each member's
identifier in its znode's data; :class:`ShallowParty` keeps it in the znode's name, so listing
the members is a single call (kazoo's recipes and node names)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Iterator, List, Optional

from zookeeper.recipes._support import CreateMode, NodeExistsError, NoNodeError, retry

if TYPE_CHECKING:
    from zookeeper import ZooKeeper

__all__ = ["Party", "ShallowParty"]


class _BaseParty:
    """What both parties share: joining and leaving with an ephemeral znode."""

    def __init__(self, client: ZooKeeper, path: str, identifier: Optional[str] = None) -> None:
        self.client = client
        self.path = path
        self.data = str(identifier or "").encode("utf-8")
        #: True between join() and leave().
        self.participating = False
        self._ensured_path = False
        self.node = ""
        self.create_path = ""

    def _ensure_parent(self) -> None:
        if not self._ensured_path:
            retry(self.client.ensure_path, self.path)
            self._ensured_path = True

    def join(self) -> None:
        """Joins the party (no-op when already a member). Membership ends with the session."""
        self._ensure_parent()
        try:
            retry(self.client.create, self.create_path, self.data, CreateMode.EPHEMERAL)
        except NodeExistsError:
            pass  # already a member, or a retried create whose first reply was lost
        self.participating = True

    def leave(self) -> bool:
        """Leaves the party; False when this member was not in it."""
        self.participating = False
        try:
            retry(self.client.delete, self.create_path)
        except NoNodeError:
            return False
        return True

    def _children(self) -> List[str]:
        self._ensure_parent()
        return list(retry(self.client.get_children, self.path))

    def __len__(self) -> int:
        """The number of members."""
        return len(self._children())


class Party(_BaseParty):
    """A party whose members' identifiers may be any text (kept in the znodes' data)."""

    _NODE_NAME = "__party__"

    def __init__(self, client: ZooKeeper, path: str, identifier: Optional[str] = None) -> None:
        """A member-to-be of the party at ``path``, known as ``identifier``."""
        super().__init__(client, path, identifier)
        self.node = uuid.uuid4().hex + self._NODE_NAME
        self.create_path = self.path + "/" + self.node

    def _children(self) -> List[str]:
        return [c for c in super()._children() if self._NODE_NAME in c]

    def __iter__(self) -> Iterator[str]:
        """The members' identifiers."""
        for child in self._children():
            try:
                yield bytes(retry(self.client.get, self.path + "/" + child)).decode("utf-8")
            except NoNodeError:
                pass  # left while we listed


class ShallowParty(_BaseParty):
    """A party whose members' identifiers are part of their znodes' names: listing is one
    call, but an identifier must be valid in a znode name (no ``/``)."""

    def __init__(self, client: ZooKeeper, path: str, identifier: Optional[str] = None) -> None:
        """A member-to-be of the party at ``path``, known as ``identifier``."""
        super().__init__(client, path, identifier)
        if "/" in self.data.decode("utf-8"):
            raise ValueError(f"a ShallowParty identifier cannot contain '/': {identifier!r}")
        self.node = "-".join([uuid.uuid4().hex, self.data.decode("utf-8")])
        self.create_path = self.path + "/" + self.node

    def __iter__(self) -> Iterator[str]:
        """The members' identifiers."""
        for child in self._children():
            yield child[child.find("-") + 1:]
