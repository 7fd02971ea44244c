"""Normalising and comparing two traces of one sequence: zxids and times as dense ranks, session
ids as indexes, and ZooKeeper's hash-set orders (children, a close's events) sorted; each
normalisation says why it is allowed."""

from kazoo.protocol.states import ZnodeStat


def _stats(value, found):
    if isinstance(value, ZnodeStat):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _stats(item, found)


def _dense_ranks(values):
    return {value: rank for rank, value in enumerate(sorted(set(values)))}


def normalise(trace):
    """Maps a raw trace onto values that two correct servers must agree on.

    - czxid, mzxid, pzxid: dense ranks among all zxids the sequence saw (one shared ranking).
      ZooKeeper burns a zxid on every failed write and ours does not (docs/design.md), so raw
      zxids differ; their order does not.
    - ctime, mtime: dense ranks among all times seen. Writes are spaced by WRITE_SPACING_S, so
      equal ranks mean "same write" (or the same multi) on both servers.
    - ephemeralOwner: "session N" by the order sessions were opened in the sequence; 0 stays 0.
      TTL and container znodes report 0 on both servers (DataNode.getClientEphemeralOwner).
    - children lists were already sorted when recorded (ZooKeeper uses hash-set order).
    - watch events caused by one session close are sorted. ZooKeeper deletes a closing
      session's ephemerals in hash-set order (DataTree.killSession iterates a HashSet), so the
      order of their NodeDeleted / NodeChildrenChanged events is not defined; the set is.
      Barrier requests around each close (SequenceRun._barrier) delimit exactly those events.
      Every other event keeps its order, per session.
    Everything else (version, cversion, aversion, dataLength, numChildren, data, paths, ACLs,
    error types, multi result types) is compared as is.
    """
    found = []
    for _, result in trace.steps:
        _stats(result, found)
    zxid_rank = _dense_ranks([z for s in found for z in (s.czxid, s.mzxid, s.pzxid)])
    time_rank = _dense_ranks([t for s in found for t in (s.ctime, s.mtime)])

    def owner(session_id):
        if session_id == 0:
            return 0
        index = trace.session_ids.get(session_id)
        return f"session {index}" if index is not None else "unknown session"

    def convert(value):
        if isinstance(value, ZnodeStat):
            return {
                "czxid": zxid_rank[value.czxid], "mzxid": zxid_rank[value.mzxid],
                "pzxid": zxid_rank[value.pzxid], "ctime": time_rank[value.ctime],
                "mtime": time_rank[value.mtime], "version": value.version,
                "cversion": value.cversion, "aversion": value.aversion,
                "ephemeralOwner": owner(value.ephemeralOwner),
                "dataLength": value.dataLength, "numChildren": value.numChildren,
            }
        if isinstance(value, (list, tuple)):
            return [convert(item) for item in value]
        return value

    steps = [(label, convert(result)) for label, result in trace.steps]
    events = [_order_close_events(session) for session in trace.sessions]
    return steps, events


def _order_close_events(session):
    """The session's events, with each group caused by one session close sorted."""
    events = []
    group = []
    for event in session.events:
        if group and event[0] != group[0][0]:
            events.extend(_maybe_sorted(session, group))
            group = []
        group.append(event)
    events.extend(_maybe_sorted(session, group))
    return events


def _maybe_sorted(session, group):
    if not group:
        return group
    tag = group[0][0]
    if 0 < tag <= len(session.request_kinds) and session.request_kinds[tag - 1] == "before-close":
        return sorted(group, key=repr)
    return group


def compare(operations, trace_a, trace_b):
    """Returns None when both traces agree, else a dict describing the first difference."""
    steps_a, events_a = normalise(trace_a)
    steps_b, events_b = normalise(trace_b)
    labels = [operation["kind"] for operation in operations] + ["final-tree"]
    for index in range(max(len(steps_a), len(steps_b))):
        reply_a = steps_a[index][1] if index < len(steps_a) else "<no step: run stopped>"
        reply_b = steps_b[index][1] if index < len(steps_b) else "<no step: run stopped>"
        if reply_a != reply_b:
            return {"step": index, "what": "reply",
                    "operation": operations[index] if index < len(operations) else labels[-1],
                    "a": reply_a, "b": reply_b}
    if len(events_a) != len(events_b):
        return {"step": None, "what": "session count", "a": len(events_a), "b": len(events_b)}
    for session_index, (list_a, list_b) in enumerate(zip(events_a, events_b)):
        if list_a == list_b:
            continue
        position = next((i for i, (x, y) in enumerate(zip(list_a, list_b)) if x != y),
                        min(len(list_a), len(list_b)))
        event_a = list_a[position] if position < len(list_a) else "<none>"
        event_b = list_b[position] if position < len(list_b) else "<none>"
        # The event arrived after the session's request number `tag`; name the step of that
        # request so the report points near the write that caused it.
        tags = [e[0] for e in (event_a, event_b) if isinstance(e, tuple)]
        session = trace_a.sessions[session_index]
        step = None
        if tags and 0 < min(tags) <= len(session.request_steps):
            step = session.request_steps[min(tags) - 1]
        return {"step": step, "what": f"watch events of session {session_index}",
                "position": position, "a": event_a, "b": event_b,
                "events_a": list_a, "events_b": list_b}
    if trace_a.aborted or trace_b.aborted:
        return {"step": None, "what": "aborted", "a": trace_a.aborted, "b": trace_b.aborted}
    return None


EVENT_TYPE_NAMES = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
                    4: "NodeChildrenChanged"}


def signature(operations, difference):
    """A short class name for a difference, to group mismatches in the summary."""
    if difference["what"] != "reply":
        def kind(event):
            if not isinstance(event, tuple):
                return str(event)
            if event[1] == "state":
                return f"state {event[2]}"
            return EVENT_TYPE_NAMES.get(event[1], f"type {event[1]}")

        return (f"{difference['what'].split(' of ')[0]}: "
                f"{kind(difference['a'])} vs {kind(difference['b'])}")
    operation = difference["operation"]
    label = operation["kind"] if isinstance(operation, dict) else operation
    if isinstance(operation, dict):
        if label == "create":
            label += f"/{operation['mode']}"
        elif label == "resolved":
            label += f"/{operation['action']}"

    def shape(reply):
        if isinstance(reply, (list, tuple)) and reply and reply[0] == "error":
            return f"error {reply[1]}"
        if isinstance(reply, (list, tuple)) and reply and reply[0] == "ok":
            return "ok"
        return str(reply)[:40]

    shape_a, shape_b = shape(difference["a"]), shape(difference["b"])
    if shape_a == shape_b:
        return f"{label}: {shape_a}, values differ"
    return f"{label}: {shape_a} vs {shape_b}"
