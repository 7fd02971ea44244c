"""Seeded random operation sequences for the differential tester: same seed, same sequence.

A sequence is a plain list of dicts (printable, replayable). It is generated up front from the
seed alone, never from server replies, so both servers receive exactly the same requests.

Paths come from a small namespace under a per-sequence root so that NodeExists, NoNode,
NotEmpty, BadVersion and NoChildrenForEphemerals happen often.

READ is the one permission the generator must plan. ZooKeeper 3.8.0 answers ``exists`` on a
znode the session cannot READ and delivers watch events to sessions without READ; ZooKeeper
3.9 / 3.8.4 and ours refuse both (CVE-2024-23944, see docs/design.md). To stay out of that
documented difference without ignoring anything, every path template has one READ policy for
the whole sequence (world-readable, or readable by one digest user only), every ACL the
generator writes for that template grants READ exactly per that policy, and a session only
issues ``exists`` (the one read 3.8.0 does not check) on paths it can READ. Identities only grow
within a session (add_auth), so a session that could READ a znode when it set a watch can still
READ it when the event fires, and the event filter never changes the outcome.
"""

import random

from kazoo.security import ACL, Id, Permissions, make_digest_acl_credential

USERS = ("u0", "u1", "u2")
PASSWORDS = {"u0": "pw0", "u1": "pw1", "u2": "pw2"}

# Named znodes relative to the sequence root; three levels so NotEmpty and NoNode (missing
# parent) are common.
NAMED_PATHS = (
    "a", "b", "c",
    "a/x", "a/y", "b/x", "b/y", "c/x",
    "a/x/z", "b/x/z", "c/x/z",
)
# Parents of sequential creates; the template of their children is PARENT/s-.
SEQUENTIAL_PARENTS = ("", "a", "b", "a/x")
SEQUENTIAL_PREFIX = "s-"

WRITE_PERMS = (Permissions.WRITE, Permissions.CREATE, Permissions.DELETE, Permissions.ADMIN)

MODES = (
    "persistent", "ephemeral", "persistent_sequential", "ephemeral_sequential",
    "container", "ttl", "ttl_sequential",
)
MODE_WEIGHTS = (30, 20, 12, 10, 10, 10, 5)

SESSION_SLOTS_MIN = 3
SESSION_SLOTS_MAX = 4
OPERATIONS_MIN = 50
OPERATIONS_MAX = 70


def digest_id(user):
    return make_digest_acl_credential(user, PASSWORDS[user])


def acl_to_wire(acl_spec):
    """Turns the generator's ACL tuples (perms, scheme, id) into kazoo ACL objects."""
    return [ACL(perms, Id(scheme, ident)) for perms, scheme, ident in acl_spec]


def join(root, relative):
    return root if relative == "" else f"{root}/{relative}"


class _Planner:
    """Generation state: the sequence's READ policies and each session slot's identities."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed = seed
        self.root = f"/diff-{seed}"
        rng = self.rng
        templates = list(NAMED_PATHS) + [
            (f"{parent}/" if parent else "") + SEQUENTIAL_PREFIX for parent in SEQUENTIAL_PARENTS
        ]
        # None: world-readable. A user name: readable by that digest user only.
        self.read_policy = {
            template: (None if rng.random() < 0.75 else rng.choice(USERS))
            for template in templates
        }
        self.read_policy[""] = None  # the root is the harness's, world-readable
        self.slot_count = rng.randint(SESSION_SLOTS_MIN, SESSION_SLOTS_MAX)
        self.open_slots = set(range(self.slot_count))
        self.identities = {slot: set() for slot in range(self.slot_count)}
        # A slot's sessions either set one-shot watches (and check or remove them, and
        # re-register them with setWatches) or persistent ones (addWatch, setWatches2), never
        # both: 3.8.0 and 3.9 differ where the two meet on one path (docs/design.md).
        self.persistent_style = {slot: rng.random() < 0.35 for slot in range(self.slot_count)}
        # Which slots may hold a watch on each named path (a conservative over-estimate: a
        # one-shot watch may have fired since). 3.8.0's checkWatches answers OK when any
        # session watches the path (WatchManager.containsWatcher, fixed in 3.9): a check is
        # generated only where no other slot may have a watch.
        self.watchers = {}
        # Whether a slot's persistent watch on a path is recursive: 3.9 keeps a persistent
        # and a recursive watch of one session on one path side by side, 3.8.0 lets the later
        # replace the earlier, so a slot keeps one kind per path.
        self.persistent_kind = {}
        # Named paths that exist if every generated write so far succeeded. Only a bias for
        # picking paths (most operations should hit something); outcomes are the servers'.
        self.likely_existing = {""}

    # -- paths -------------------------------------------------------------------------------

    def named_path(self, allow_root=False):
        """Mostly a path that likely exists, sometimes any (NoNode), shallow ones favoured."""
        rng = self.rng
        if allow_root and rng.random() < 0.08:
            return ""
        existing = [path for path in NAMED_PATHS if path in self.likely_existing]
        if existing and rng.random() < 0.7:
            return rng.choice(existing)
        return rng.choices(NAMED_PATHS, [4 - path.count("/") * 1.5 for path in NAMED_PATHS])[0]

    def path_to_create(self):
        """Mostly a path whose parent likely exists and which itself likely does not."""
        rng = self.rng
        candidates = [path for path in NAMED_PATHS if path not in self.likely_existing
                      and path.rpartition("/")[0] in self.likely_existing]
        if candidates and rng.random() < 0.75:
            return rng.choice(candidates)
        return self.named_path()

    def note_created(self, relative):
        self.likely_existing.add(relative)

    def note_deleted(self, relative):
        self.likely_existing = {path for path in self.likely_existing
                                if path != relative and not path.startswith(relative + "/")}

    def can_read(self, slot, template):
        policy = self.read_policy[template]
        return policy is None or policy in self.identities[slot]

    def world_readable(self, relative, recursive=False):
        """True when every session may READ the template (and, when ``recursive``, every
        template below it): 3.8.0 delivers events of znodes a session cannot read and 3.9 does
        not, so watches whose events are not filtered alike stay on world-readable znodes."""
        templates = [relative]
        if recursive:
            prefix = "" if relative == "" else relative + "/"
            templates += [t for t in self.read_policy if t.startswith(prefix) and t != relative]
        return all(self.read_policy.get(template) is None for template in templates)

    def one_shot_watch(self, slot, probability):
        return not self.persistent_style[slot] and self.rng.random() < probability

    def note_watch(self, slot, relative):
        self.watchers.setdefault(relative, set()).add(slot)

    def watched_only_by(self, slot, relative):
        return self.watchers.get(relative, set()) <= {slot}

    # -- ACLs ---------------------------------------------------------------------------------

    def acl_for(self, template):
        """A random ACL that grants READ exactly per the template's policy.

        Someone among the digest users (or the world) always holds ADMIN, so the harness's
        cleanup session, which authenticates as every user, can open and delete anything.
        """
        rng = self.rng
        policy = self.read_policy[template]
        if rng.random() < 0.03:
            return []  # InvalidACL
        if policy is None and rng.random() < 0.45:
            return [(Permissions.ALL, "world", "anyone")]
        acl = []
        world_perms = 0
        for perm in WRITE_PERMS:
            if rng.random() < 0.35:
                world_perms |= perm
        if policy is None:
            world_perms |= Permissions.READ
        if world_perms:
            acl.append((world_perms, "world", "anyone"))
        users = [user for user in USERS if rng.random() < 0.5]
        if policy is not None and policy not in users:
            users.append(policy)
        for user in users:
            perms = 0
            for perm in WRITE_PERMS:
                if rng.random() < 0.6:
                    perms |= perm
            if policy is None and rng.random() < 0.5:
                perms |= Permissions.READ
            if policy == user:
                perms |= Permissions.READ
            acl.append((perms, "digest", digest_id(user)))
        if rng.random() < 0.08:
            # auth scheme: expands to the creator's identities, InvalidACL if it has none. Its
            # READ would reach whatever the creator authenticated as, so only world-readable
            # templates give it READ.
            perms = rng.choice(WRITE_PERMS) | Permissions.ADMIN
            if policy is None:
                perms |= Permissions.READ
            acl.append((perms, "auth", ""))
        if rng.random() < 0.05:
            perms = rng.choice(WRITE_PERMS) | (Permissions.READ if policy is None else 0)
            acl.append((perms, "ip", "127.0.0.1"))
        if acl and rng.random() < 0.05:
            acl.append(rng.choice(acl))  # duplicate entry
        if not any(perms & Permissions.ADMIN for perms, scheme, _ in acl
                   if scheme in ("digest", "world")):
            user = policy or rng.choice(USERS)
            acl.append((Permissions.ADMIN | (Permissions.READ if policy in (None, user) else 0),
                        "digest", digest_id(user)))
        return acl

    # -- operations -------------------------------------------------------------------------

    def data(self):
        """Data for a create or set: null (None, which ZooKeeper keeps apart from empty and
        answers as null), empty, binary, or a short text."""
        rng = self.rng
        choice = rng.random()
        if choice < 0.08:
            return None
        if choice < 0.15:
            return b""
        if choice < 0.2:
            return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        return f"v{rng.randrange(1000)}".encode()

    def version(self, any_probability=0.3):
        """-1 (any) or a guess; a guess is right often enough (versions start at 0)."""
        rng = self.rng
        return -1 if rng.random() < any_probability else rng.choice((0, 0, 1, 1, 2, 3, 7))

    def create_spec(self):
        """(path, template, mode, ttl) for one create, sequential ones under a parent."""
        rng = self.rng
        mode = rng.choices(MODES, MODE_WEIGHTS)[0]
        if mode.endswith("sequential"):
            parent = rng.choice(SEQUENTIAL_PARENTS)
            template = (f"{parent}/" if parent else "") + SEQUENTIAL_PREFIX
            relative = template
        else:
            relative = self.path_to_create()
            template = relative
            self.note_created(relative)
        ttl = None
        if mode.startswith("ttl"):
            # Small TTLs; the servers' reapers are set to run far later than a test run, so
            # no TTL znode is reaped mid-sequence. 0 and negative TTLs are BadArguments.
            ttl = rng.choice((1, 5, 100, 1000, 30000, 0, -5)) if rng.random() < 0.15 else \
                rng.choice((1, 10, 100, 1000, 5000))
        return relative, template, mode, ttl

    def pick_open_slot(self, operations):
        """An open slot; reopens a closed one (a new session) when the draw lands on it."""
        rng = self.rng
        slot = rng.randrange(self.slot_count)
        if slot not in self.open_slots:
            operations.append({"kind": "open", "slot": slot})
            self.open_slots.add(slot)
            self.identities[slot] = set()
        return slot

    def operation(self, operations):
        rng = self.rng
        kind = rng.choices(
            ("create", "set", "delete", "get", "exists", "children", "multi", "get_acls",
             "set_acls", "add_auth", "close", "resolved", "sync", "rare"),
            (24, 12, 9, 10, 10, 9, 10, 3, 4, 4, 2, 7, 1, 14),
        )[0]
        slot = self.pick_open_slot(operations)
        root = self.root
        if kind == "rare":
            operations.append(self.rare_operation(slot))
            return
        if kind == "create":
            relative, template, mode, ttl = self.create_spec()
            operations.append({
                "kind": "create", "slot": slot, "path": join(root, relative), "mode": mode,
                "ttl": ttl, "data": self.data(), "acl": self.acl_for(template),
                "include_data": rng.random() < 0.5,
            })
        elif kind == "set":
            operations.append({"kind": "set", "slot": slot,
                               "path": join(root, self.named_path(allow_root=True)),
                               "data": self.data(), "version": self.version()})
        elif kind == "delete":
            relative = self.named_path()
            if rng.random() < 0.5:
                self.note_deleted(relative)
            operations.append({"kind": "delete", "slot": slot,
                               "path": join(root, relative), "version": self.version()})
        elif kind == "get":
            relative = self.named_path(allow_root=True)
            watch = self.one_shot_watch(slot, 0.7)
            if watch:
                self.note_watch(slot, relative)
            operations.append({"kind": "get", "slot": slot, "path": join(root, relative),
                               "watch": watch})
        elif kind == "exists":
            relative = self.named_path(allow_root=True)
            if not self.can_read(slot, relative):
                relative = ""  # see the module doc: exists only where the session can READ
            watch = self.one_shot_watch(slot, 0.7)
            if watch:
                self.note_watch(slot, relative)
            operations.append({"kind": "exists", "slot": slot, "path": join(root, relative),
                               "watch": watch})
        elif kind == "children":
            relative = rng.choice(("", "", "a", "b", "c", "a/x", "a/y", "b/x", "c/x"))
            watch = self.one_shot_watch(slot, 0.7)
            if watch:
                self.note_watch(slot, relative)
            operations.append({"kind": "children", "slot": slot, "path": join(root, relative),
                               "watch": watch,
                               "include_data": rng.random() < 0.5})
        elif kind == "multi":
            operations.append({"kind": "multi", "slot": slot,
                               "operations": [self.multi_operation()
                                              for _ in range(rng.randint(1, 4))]})
        elif kind == "get_acls":
            operations.append({"kind": "get_acls", "slot": slot,
                               "path": join(root, self.named_path(allow_root=True))})
        elif kind == "set_acls":
            relative = self.named_path()
            operations.append({"kind": "set_acls", "slot": slot, "path": join(root, relative),
                               "acl": self.acl_for(relative), "version": self.version()})
        elif kind == "add_auth":
            user = rng.choice(USERS)
            self.identities[slot].add(user)
            operations.append({"kind": "add_auth", "slot": slot, "user": user})
        elif kind == "close":
            if len(self.open_slots) > 1:
                self.open_slots.discard(slot)
                operations.append({"kind": "close", "slot": slot})
        elif kind == "resolved":
            # Reaches sequential znodes, whose names depend on earlier outcomes: the executor
            # lists the parent (as the harness's all-identities session), sorts the names and
            # takes index % count. exists is not offered here: the picked znode's READ policy
            # is unknown at generation time.
            parent = rng.choice(SEQUENTIAL_PARENTS + ("b/x",))
            action = rng.choice(("get", "set", "delete", "children", "get_acls"))
            watch = self.one_shot_watch(slot, 0.5)
            if watch:
                prefix = "" if parent == "" else parent + "/"
                for named in NAMED_PATHS:
                    if named.startswith(prefix) and "/" not in named[len(prefix):]:
                        self.note_watch(slot, named)
            operations.append({"kind": "resolved", "slot": slot, "parent": join(root, parent),
                               "index": rng.randrange(8), "action": action,
                               "watch": watch, "data": self.data(),
                               "version": self.version()})
        elif kind == "sync":
            operations.append({"kind": "sync", "slot": slot, "path": join(root, "")})

    def rare_operation(self, slot):
        """One of the opcodes kazoo does not send itself, so that every opcode of
        zookeeper.jute meets every kind of znode (ACL-protected, ephemeral, container, TTL):
        a gap like a client's deleteContainer deleting any znode cannot come back unseen."""
        rng = self.rng
        root = self.root
        kind = rng.choices(
            ("check", "delete_container", "reconfig", "sasl", "who_am_i", "get_ephemerals",
             "all_children_number", "multi_read", "add_watch", "check_watches",
             "remove_watches", "set_watches", "set_watches2"),
            (4, 4, 1, 1, 1, 2, 2, 3, 3, 2, 2, 2, 1),
        )[0]
        operation = {"kind": kind, "slot": slot}
        relative = self.named_path(allow_root=True)
        if kind == "check":
            operation.update(path=join(root, relative), version=self.version())
        elif kind == "delete_container":
            if rng.random() < 0.5:
                self.note_deleted(relative)
            operation.update(path=join(root, relative))
        elif kind == "reconfig":
            operation.update(joining=rng.choice((None, "server.9=127.0.0.1:2888:3888")),
                             leaving=rng.choice((None, "1")), new_members=None,
                             config_id=rng.choice((-1, 0)))
        elif kind in ("sasl", "who_am_i"):
            pass
        elif kind == "get_ephemerals":
            operation.update(prefix=rng.choice(("/", join(root, ""), join(root, "a"),
                                                join(root, "s-"))))
        elif kind == "all_children_number":
            operation.update(path=join(root, relative))
        elif kind == "multi_read":
            operation.update(reads=[
                (rng.choice(("get", "children")),
                 join(root, self.named_path(allow_root=True)),
                 self.one_shot_watch(slot, 0.4))
                for _ in range(rng.randint(1, 4))])
        elif kind in ("add_watch", "set_watches2"):
            recursive = self.persistent_kind.setdefault((slot, relative), rng.random() < 0.5)
            if not self.persistent_style[slot] or not self.world_readable(relative, recursive):
                return {"kind": "who_am_i", "slot": slot}
            self.note_watch(slot, relative)
            operation.update(path=join(root, relative), recursive=recursive)
        elif kind in ("check_watches", "remove_watches"):
            if self.persistent_style[slot] or (kind == "check_watches"
                                               and not self.watched_only_by(slot, relative)):
                return {"kind": "who_am_i", "slot": slot}
            # Data, Children, Any: the one-shot types 3.8.0 decodes and matches as 3.9 does.
            operation.update(path=join(root, relative), watcher_type=rng.choice((1, 2, 3)))
        elif kind == "set_watches":
            if self.persistent_style[slot]:
                return {"kind": "who_am_i", "slot": slot}
            readable = [t for t in ("",) + NAMED_PATHS if self.world_readable(t)]

            def pick():
                chosen = rng.sample(readable, min(len(readable), rng.randint(0, 2)))
                for relative in chosen:
                    self.note_watch(slot, relative)
                return [join(root, relative) for relative in chosen]

            operation.update(data=pick(), exist=pick(), child=pick())
        return operation

    def multi_operation(self):
        rng = self.rng
        root = self.root
        kind = rng.choices(("create", "delete", "set", "check"), (45, 20, 20, 15))[0]
        if kind == "create":
            relative, template, mode, ttl = self.create_spec()
            return {"kind": "create", "path": join(root, relative), "mode": mode, "ttl": ttl,
                    "data": self.data(), "acl": self.acl_for(template),
                    "opcode": rng.choice(("create", "create2"))}
        if kind == "delete":
            relative = self.named_path()
            if rng.random() < 0.3:
                self.note_deleted(relative)
            return {"kind": "delete", "path": join(root, relative),
                    "version": self.version(0.6)}
        if kind == "set":
            return {"kind": "set", "path": join(root, self.named_path(allow_root=True)),
                    "data": self.data(), "version": self.version(0.6)}
        return {"kind": "check", "path": join(root, self.named_path(allow_root=True)),
                "version": self.version()}


def generate(seed):
    """Returns (root path, session slot count, operations) for ``seed``.

    The last operations close every open session, in slot order, so that their ephemerals
    vanish and the other sessions' watches fire while they are still there to hear.
    """
    planner = _Planner(seed)
    operations = []
    for slot in range(planner.slot_count):
        operations.append({"kind": "open", "slot": slot})
    target = planner.rng.randint(OPERATIONS_MIN, OPERATIONS_MAX)
    while len(operations) < target:
        planner.operation(operations)
    for slot in sorted(planner.open_slots):
        operations.append({"kind": "close", "slot": slot})
    return planner.root, planner.slot_count, operations
