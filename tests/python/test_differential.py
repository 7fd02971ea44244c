"""Guards against our server answering any request differently from Apache ZooKeeper 3.8.

Seeded random sequences of operations (every create mode, conditional set/delete, multi,
reads with watches, digest ACLs, several sessions opening and closing) run against Apache
ZooKeeper 3.8 and against zookeeper-rs; every reply, error type, Stat field and watch event is
compared after normalising only what docs/design.md documents as a permitted difference (see
differential/compare.py ``normalise`` and differential/generator.py for the READ rule).

    ZK_DIFF_SEQUENCES=N       how many sequences (default 500)
    ZK_DIFF_BASE_SEED=S       base seed (default random, printed); sequence i uses S + i
    ZK_DIFF_SEED=S            with -k replay: replay only the sequence with seed S, verbosely
    ZK_DIFF_TARGET=reference  run against a second Apache ZooKeeper instead of ours
    ZK_DIFF_SELF_SEQUENCES=N  sequences for the ZooKeeper-vs-ZooKeeper harness check (default 30)
"""

import concurrent.futures
import logging
import os
import pprint
import random

import pytest

from conftest import run_our_server, run_reference_server
from differential import compare, generator, runner

SEQUENCES_DEFAULT = 500
SELF_CHECK_SEQUENCES_DEFAULT = 30
# Sequences run concurrently: each spends most of its time waiting on replies and on the
# write spacing, so a few threads fill the two cores.
WORKERS = 6
REPORTED_MISMATCHES_MAX = 20

# kazoo warns on every session close and server shutdown ("Connection dropped"); thousands
# of sessions would drown the mismatch reports.
logging.getLogger("kazoo").setLevel(logging.ERROR)

# Neither server may reap a container or TTL znode during a run: the reapers tick at
# different moments on the two servers, so a reap in mid-sequence would be a false mismatch.
# TTLs stay small; reaping itself is not what this file tests.
REAPER_INTERVAL_MS = 3_600_000
REFERENCE_JVM_ARGS = (f"-Dznode.container.checkIntervalMs={REAPER_INTERVAL_MS}",
                      runner.SUPER_DIGEST_PROPERTY)
OURS_CONFIG_LINES = ("tickTime=2000", f"znode.container.checkIntervalMs={REAPER_INTERVAL_MS}")


def _replay_command(seed, target):
    prefix = "ZK_DIFF_TARGET=reference " if target == "reference" else ""
    return f"{prefix}ZK_DIFF_SEED={seed} pytest tests/python/test_differential.py -k replay -s"


def _run_one(server_a, server_b, seed):
    root, _, operations = generator.generate(seed)
    trace_a = runner.SequenceRun(server_a, root, operations).run()
    trace_b = runner.SequenceRun(server_b, root, operations).run()
    return operations, trace_a, trace_b, compare.compare(operations, trace_a, trace_b)


def _describe(seed, target, operations, difference, names):
    name_a, name_b = names
    lines = [f"MISMATCH seed={seed}: {difference['what']} differ"
             + (f" at step {difference['step']}" if difference.get("step") is not None else "")]
    if difference.get("operation") is not None:
        lines.append(f"  operation: {difference['operation']!r}")
    lines.append(f"  {name_a}: {pprint.pformat(difference['a'], width=100, compact=True)}")
    lines.append(f"  {name_b}: {pprint.pformat(difference['b'], width=100, compact=True)}")
    if "events_a" in difference:
        lines.append(f"  all events {name_a}: {difference['events_a']}")
        lines.append(f"  all events {name_b}: {difference['events_b']}")
    lines.append(f"  replay: {_replay_command(seed, target)}")
    return "\n".join(lines)


def _run_many(address_a, address_b, sequences, target, names):
    base_seed = int(os.environ.get("ZK_DIFF_BASE_SEED", random.randrange(1, 10**9) * 1000))
    print(f"\ndifferential: base seed {base_seed}, {sequences} sequences, {names[0]} vs "
          f"{names[1]} (ZK_DIFF_BASE_SEED={base_seed} reproduces this run)", flush=True)
    server_a = runner.Server(names[0], address_a)
    server_b = runner.Server(names[1], address_b)
    mismatches = []
    classes = {}
    operations_total = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            futures = [pool.submit(_run_one, server_a, server_b, base_seed + i)
                       for i in range(sequences)]
            for i, future in enumerate(futures):
                seed = base_seed + i
                operations, _, _, difference = future.result()
                operations_total += len(operations)
                if difference is None:
                    continue
                mismatches.append(seed)
                key = compare.signature(operations, difference)
                classes.setdefault(key, []).append(seed)
                if len(mismatches) <= REPORTED_MISMATCHES_MAX:
                    print(_describe(seed, target, operations, difference, names), flush=True)
    finally:
        server_a.close()
        server_b.close()
    print(f"differential: {sequences} sequences, {operations_total} operations, "
          f"{len(mismatches)} mismatching", flush=True)
    if mismatches:
        summary = "\n".join(
            f"  {len(seeds):4d} x {key}   e.g. {_replay_command(seeds[0], target)}"
            for key, seeds in sorted(classes.items(), key=lambda item: -len(item[1])))
        pytest.fail(f"{len(mismatches)} of {sequences} sequences mismatch (base seed "
                    f"{base_seed}); by first difference:\n{summary}", pytrace=False)


@pytest.fixture(scope="module")
def reference_for_diff():
    with run_reference_server(jvm_args=REFERENCE_JVM_ARGS) as address:
        yield address


@pytest.fixture(scope="module")
def second_server_for_diff():
    """Our server, or a second Apache ZooKeeper when ZK_DIFF_TARGET=reference."""
    if os.environ.get("ZK_DIFF_TARGET") == "reference":
        with run_reference_server(jvm_args=REFERENCE_JVM_ARGS) as address:
            yield "reference", address
    else:
        with run_our_server(config_lines=OURS_CONFIG_LINES) as address:
            yield "ours", address


def test_harness_reference_against_reference(reference_for_diff):
    """Two Apache ZooKeepers must agree on everything, or the harness compares noise."""
    sequences = int(os.environ.get("ZK_DIFF_SELF_SEQUENCES", SELF_CHECK_SEQUENCES_DEFAULT))
    if sequences == 0:
        pytest.skip("ZK_DIFF_SELF_SEQUENCES=0")
    with run_reference_server(jvm_args=REFERENCE_JVM_ARGS) as second:
        _run_many(reference_for_diff, second, sequences, "reference",
                  ("reference-1", "reference-2"))


def test_differential(reference_for_diff, second_server_for_diff):
    target, address = second_server_for_diff
    sequences = int(os.environ.get("ZK_DIFF_SEQUENCES", SEQUENCES_DEFAULT))
    _run_many(reference_for_diff, address, sequences, target, ("reference", target))


def _replay(reference_for_diff, second_server_for_diff):
    """Replays one sequence (ZK_DIFF_SEED) and prints both servers' replies side by side."""
    seed = int(os.environ["ZK_DIFF_SEED"])
    target, address = second_server_for_diff
    server_a = runner.Server("reference", reference_for_diff)
    server_b = runner.Server(target, address)
    try:
        operations, trace_a, trace_b, difference = _run_one(server_a, server_b, seed)
    finally:
        server_a.close()
        server_b.close()
    steps_a, events_a = compare.normalise(trace_a)
    steps_b, events_b = compare.normalise(trace_b)
    print(f"\nreplay seed {seed}: reference vs {target}")
    for index in range(max(len(steps_a), len(steps_b))):
        operation = operations[index] if index < len(operations) else "final-tree"
        reply_a = steps_a[index][1] if index < len(steps_a) else None
        reply_b = steps_b[index][1] if index < len(steps_b) else None
        marker = "  " if reply_a == reply_b else "!!"
        print(f"{marker} step {index}: {operation!r}")
        print(f"     reference: {reply_a!r}")
        if reply_a != reply_b:
            print(f"     {target}: {reply_b!r}")
    for index, (list_a, list_b) in enumerate(zip(events_a, events_b)):
        print(f"{'  ' if list_a == list_b else '!!'} session {index} events reference: {list_a}")
        if list_a != list_b:
            print(f"   session {index} events {target}: {list_b}")
    if difference is not None:
        pytest.fail(_describe(seed, target, operations, difference, ("reference", target)),
                    pytrace=False)


# The replay is a debugging tool, collected only when asked for, so a normal run has no
# skipped test in it.
if "ZK_DIFF_SEED" in os.environ:
    test_replay = _replay
