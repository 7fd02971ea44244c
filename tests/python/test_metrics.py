"""Guards against a /metrics endpoint Prometheus cannot parse, figures that do not follow known
operations, mntr and /metrics disagreeing, and an HTTP port that a huge or stalled request can
hold or fill.

Our binary runs with ZooKeeper's Prometheus provider configured (metricsProvider.className,
httpHost, httpPort); /metrics is parsed by prometheus_client's text parser, as Prometheus would
scrape it.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import ZKRS_BIN_DEFAULT, _kill, _tail, _wait_until_up, free_port
from kazoo.client import KazooClient
from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
HTTP_TIMEOUT_S = 5.0
# admin.idleTimeout: how long an HTTP request may take on our server here.
IDLE_TIMEOUT_MS = 1500


@contextlib.contextmanager
def server_with_metrics(extra_lines=()):
    """Our binary with /metrics on and `extra_lines` in its zoo.cfg; yields (client address,
    metrics port, log path)."""
    binary = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
    if not os.path.exists(binary):
        pytest.fail(f"zookeeper-rs binary not built at {binary}")
    directory = tempfile.mkdtemp(prefix="zk-metrics-")
    port, metrics_port = free_port(), free_port()
    config = os.path.join(directory, "zoo.cfg")
    with open(config, "w") as out:
        out.write("tickTime=2000\n"
                  "4lw.commands.whitelist=*\n"
                  f"metricsProvider.className={PROMETHEUS_PROVIDER}\n"
                  "metricsProvider.httpHost=127.0.0.1\n"
                  f"metricsProvider.httpPort={metrics_port}\n"
                  f"admin.idleTimeout={IDLE_TIMEOUT_MS}\n"
                  + "".join(line + "\n" for line in extra_lines))
    os.mkdir(os.path.join(directory, "data"))
    log_path = os.path.join(directory, "server.log")
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--data-dir", os.path.join(directory, "data"),
         "--config", config],
        stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    try:
        _wait_until_up(process, port, "zookeeper-rs", log_path)
        yield f"127.0.0.1:{port}", metrics_port, log_path
        assert process.poll() is None, f"the server died: {_tail(log_path)}"
    finally:
        _kill(process)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def metrics_server():
    with server_with_metrics() as server:
        yield server


def scrape(metrics_port):
    """Every sample of /metrics by name (labels folded into the name as the exposition has
    them), after checking the response's type."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            key = sample.name
            if sample.labels:
                key += "{" + ",".join(f'{k}="{v}"' for k, v in sample.labels.items()) + "}"
            samples[key] = sample.value
    return samples, types


def mntr(address):
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(b"mntr")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    values = {}
    for line in answer.decode().splitlines():
        key, value = line.split("\t", 1)
        values[key] = value
    return values


@pytest.fixture
def client(metrics_server):
    address = metrics_server[0]
    client = KazooClient(hosts=address, timeout=10.0)
    client.start(timeout=10.0)
    yield client
    client.stop()
    client.close()


def test_zookeepers_names_and_types_are_exposed(metrics_server):
    samples, types = scrape(metrics_server[1])
    for gauge in ["znode_count", "watch_count", "ephemerals_count", "num_alive_connections",
                  "outstanding_requests", "avg_latency", "min_latency", "max_latency",
                  "packets_received", "packets_sent", "global_sessions", "uptime",
                  "approximate_data_size", "apply_queue_depth"]:
        assert types[gauge] == "gauge", gauge
        assert gauge in samples, gauge
    for summary in ["fsynctime", "snapshottime", "readlatency", "updatelatency",
                    "group_commit_batch_size"]:
        assert types[summary] == "summary", summary
        assert f"{summary}_count" in samples and f"{summary}_sum" in samples, summary
        assert f'{summary}{{quantile="0.5"}}' in samples, summary
    for advanced in ["readlatency", "updatelatency"]:
        assert f'{advanced}{{quantile="0.99"}}' in samples
    # The Python parser names a counter's family without _total and its sample with it.
    assert types["connection_rejected"] == "counter"
    assert "connection_rejected_total" in samples


def test_values_follow_known_operations(metrics_server, client):
    port = metrics_server[1]
    before, _ = scrape(port)
    root = f"/metrics-{uuid.uuid4().hex[:8]}"
    client.create(root, b"12345")
    for i in range(4):
        client.create(f"{root}/c{i}", b"x" * 10)
    client.create(f"{root}/e", ephemeral=True)
    client.get(root, watch=lambda event: None)
    client.set(f"{root}/c0", b"y")
    for _ in range(3):
        client.get(f"{root}/c1")
    after, _ = scrape(port)
    assert after["znode_count"] - before["znode_count"] == 6
    assert after["ephemerals_count"] - before["ephemerals_count"] == 1
    assert after["watch_count"] - before["watch_count"] == 1
    # Path and data bytes: the root (len + 5), four children (len + 10, then one is 1), "e".
    added = (len(root) + 5) + 4 * (len(root) + 3 + 10) - 9 + (len(root) + 2)
    assert after["approximate_data_size"] - before["approximate_data_size"] == added
    assert after["num_alive_connections"] == 1
    assert after["global_sessions"] >= 1
    # 7 writes and 4 reads were answered (kazoo may ping in between: reads too).
    assert after["updatelatency_count"] - before["updatelatency_count"] == 7
    assert after["readlatency_count"] - before["readlatency_count"] >= 4
    assert after["packets_received"] - before["packets_received"] >= 11
    assert after["packets_sent"] - before["packets_sent"] >= 11
    # Each write was made durable by an fsync; one fsync may carry several entries.
    assert after["fsynctime_count"] > before["fsynctime_count"]
    committed = after["group_commit_batch_size_sum"] - before["group_commit_batch_size_sum"]
    assert committed >= 7
    assert after["apply_queue_depth"] == 0
    assert after["min_latency"] <= after["avg_latency"] <= after["max_latency"]


def test_mntr_and_metrics_agree(metrics_server, client):
    address, port = metrics_server[0], metrics_server[1]
    client.create(f"/agree-{uuid.uuid4().hex[:8]}", ephemeral=True)
    # The kazoo session pings every few seconds: both are read between two of its pings, so
    # the counters do not move in between; a rare ping that lands between them is retried.
    for _ in range(5):
        four_letter = mntr(address)
        samples, types = scrape(port)
        again = mntr(address)
        assert int(again["zk_packets_received"]) == int(four_letter["zk_packets_received"]) + 1
        # Each mntr is a packet received (counted before it answers); what else moved between
        # the first and last read means a ping came: read again.
        moving = {"zk_uptime", "zk_open_file_descriptor_count", "zk_packets_received"}
        if {k: v for k, v in four_letter.items() if k not in moving} == \
                {k: v for k, v in again.items() if k not in moving}:
            break
    else:
        pytest.fail("the server's figures kept moving while nothing happened")
    compared = 0
    for name, kind in types.items():
        if kind == "summary":
            assert float(four_letter[f"zk_cnt_{name}"]) == samples[f"{name}_count"], name
            assert float(four_letter[f"zk_sum_{name}"]) == samples[f"{name}_sum"], name
            compared += 2
            continue
        sample = samples[f"{name}_total" if kind == "counter" else name]
        if name in ("uptime", "open_file_descriptor_count"):
            continue
        value = float(four_letter[f"zk_{name}"])
        if name == "num_alive_connections":
            # mntr's own connection is a client connection; an HTTP scrape is not.
            assert value == sample + 1
        else:
            assert value == sample, name
        compared += 1
    assert compared >= 25


def test_an_unknown_path_or_method_is_refused(metrics_server):
    port = metrics_server[1]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=HTTP_TIMEOUT_S)
    assert refused.value.code == 404
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S)
    assert refused.value.code == 405


def log_text(log_path):
    with open(log_path, "rb") as log:
        return log.read().decode("utf-8", "replace")


def test_a_huge_request_is_refused_early_and_logged_once(metrics_server):
    port, log_path = metrics_server[1], metrics_server[2]
    refused_before = log_text(log_path).count("Metrics port: bad request refused")
    sent = 0
    answer = b""
    chunk = b"X-Filler: " + b"a" * 65536 + b"\r\n"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        try:
            # 64 MiB of headers unless the server stops reading first.
            for _ in range(1024):
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - started
    # The server read a few KiB, answered 431 (or reset) and closed: what it and the kernel
    # buffered is a small fraction of what the client meant to send.
    assert sent < 8 * 1024 * 1024, sent
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert elapsed < HTTP_TIMEOUT_S
    deadline = time.monotonic() + 5
    while log_text(log_path).count("Metrics port: bad request refused") == refused_before:
        assert time.monotonic() < deadline, "the refusal was not logged"
        time.sleep(0.05)
    time.sleep(0.2)
    assert log_text(log_path).count("Metrics port: bad request refused") == refused_before + 1
    samples, _ = scrape(port)
    assert samples["znode_count"] >= 1


def test_a_stalled_request_is_closed_after_the_idle_timeout(metrics_server):
    port, log_path = metrics_server[1], metrics_server[2]
    text_before = log_text(log_path)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost:")
        closed = sock.recv(65536)
    elapsed = time.monotonic() - started
    # Closed (an empty read or a 408) once admin.idleTimeout passed, not before.
    assert closed == b"" or closed.startswith(b"HTTP/1.1 408"), closed[:100]
    assert IDLE_TIMEOUT_MS / 1000 * 0.9 <= elapsed < IDLE_TIMEOUT_MS / 1000 + 3, elapsed
    deadline = time.monotonic() + 5
    while len(log_text(log_path)) == len(text_before):
        assert time.monotonic() < deadline, "the stalled request was not logged"
        time.sleep(0.05)
    new_lines = [line for line in log_text(log_path)[len(text_before):].splitlines()
                 if "Metrics port" in line]
    assert len(new_lines) == 1, new_lines
    samples, _ = scrape(port)
    assert "znode_count" in samples


def test_too_many_connections_are_refused_and_the_port_keeps_serving(metrics_server):
    port = metrics_server[1]
    # 64 connections is the limit; each idle one holds a slot until the idle timeout.
    held = [socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_S)
            for _ in range(64)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_S) as extra:
            try:
                extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                assert extra.recv(65536) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    samples, _ = scrape(port)
    assert "znode_count" in samples


def metrics_port_from_log(log_path):
    """The port our server logged for /metrics (the ensemble's members ask for port 0)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log_text(log_path).splitlines():
            if "serving HTTP: Metrics" in line:
                return int(line.rsplit(":", 1)[1])
        time.sleep(0.05)
    raise AssertionError(f"no /metrics address in {log_path}")


def test_an_ensemble_reports_zookeepers_leader_and_quorum_gauges():
    from process_ensemble import ProcessEnsemble, four_letter

    lines = [f"metricsProvider.className={PROMETHEUS_PROVIDER}",
             "metricsProvider.httpHost=127.0.0.1", "metricsProvider.httpPort=0"]
    with ProcessEnsemble("ours", 3, extra_lines=lines) as ensemble:
        leader = ensemble.leader()
        follower = next(member for member in ensemble.client_ports if member != leader)
        client = KazooClient(hosts=ensemble.host(leader), timeout=10.0)
        client.start(timeout=30)
        client.create("/written", b"12345")
        client.stop()
        client.close()
        leader_port = metrics_port_from_log(ensemble.logs[leader][1])
        deadline = time.monotonic() + 30
        while scrape(leader_port)[0]["synced_followers"] != 2:
            assert time.monotonic() < deadline, "the followers never synced"
            time.sleep(0.1)
        samples, types = scrape(leader_port)
        assert (samples["learners"], samples["quorum_size"], samples["pending_syncs"]) == (2, 3, 0)
        assert types["leader_uptime"] == "gauge" and samples["leader_uptime"] > 0
        assert samples["proposal_count"] >= 1 and samples["last_proposal_size"] > 0
        monitor = dict(line.split("\t", 1) for line in
                       four_letter(ensemble.client_ports[leader], "mntr").splitlines())
        for name in ["learners", "synced_followers", "synced_observers", "quorum_size",
                     "min_proposal_size", "max_proposal_size", "last_proposal_size",
                     "proposal_count", "znode_count"]:
            assert float(monitor[f"zk_{name}"]) == samples[name], name
        follower_port = metrics_port_from_log(ensemble.logs[follower][1])
        # The follower applies the write a moment after the leader answered it.
        while scrape(follower_port)[0]["znode_count"] != samples["znode_count"]:
            assert time.monotonic() < deadline, "the follower never applied the write"
            time.sleep(0.05)
        follower_samples, _ = scrape(follower_port)
        assert follower_samples["quorum_size"] == 3
        assert "learners" not in follower_samples and "synced_followers" not in follower_samples


def test_snapshots_are_timed():
    with server_with_metrics(extra_lines=["snapCount=10"]) as (address, port, _):
        before, _ = scrape(port)
        assert before["snapshottime_count"] == 0
        client = KazooClient(hosts=address, timeout=10.0)
        client.start(timeout=10.0)
        try:
            for i in range(30):
                client.create(f"/snap-{i}")
        finally:
            client.stop()
            client.close()
        # Snapshots are written on their own thread: wait for the first one.
        deadline = time.monotonic() + 10
        while scrape(port)[0]["snapshottime_count"] == 0:
            assert time.monotonic() < deadline, "no snapshot was timed"
            time.sleep(0.05)
        after, _ = scrape(port)
        assert after['snapshottime{quantile="0.5"}'] >= 0
        assert after["snapshottime_sum"] >= 0
