"""TLS between ensemble members (sslQuorum), ours beside Apache ZooKeeper 3.8, both started from
the same zoo.cfg lines an operator writes: an ensemble that replicates over TLS and keeps
serving when its leader dies, a member whose certificate another CA signed that never joins,
and ZooKeeper's rolling change from plain to TLS (portUnification) under a steady write load.
"""

import socket
import ssl
import time

import pytest
from kazoo.client import KazooClient

from process_ensemble import ProcessEnsemble, mode
from test_ensemble_processes import KINDS, SESSION_TIMEOUT_S, Writers
from tls_certs import certificate_directory, make_member_certificate

# How long a member with a refused certificate is watched not joining.
OUTSIDER_WATCH_S = 6.0


@pytest.fixture(scope="module")
def certificates():
    with certificate_directory(
            "zk-quorum-tls-",
            lambda directory: make_member_certificate(directory, "member"),
            lambda directory: make_member_certificate(directory, "outsider", ca="other-ca"),
    ) as paths:
        yield paths


def stores(certificates, store="member"):
    """ZooKeeper's ssl.quorum.* lines for PEM stores."""
    return [f"ssl.quorum.keyStore.location={certificates[store]}",
            "ssl.quorum.keyStore.type=PEM",
            f"ssl.quorum.trustStore.location={certificates['ca']}",
            "ssl.quorum.trustStore.type=PEM"]


def tls_lines(certificates, store="member"):
    return ["sslQuorum=true", *stores(certificates, store)]


def handshake(port, certificates, store):
    """A TLS client presenting `store`'s certificate at `port`: the server certificate's
    common name once the server took ours, or None when it refused it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(certificates["ca"])
    context.load_cert_chain(certificates[f"{store}-cert"], certificates[f"{store}-key"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                subject = dict(field[0] for field in tls.getpeercert()["subject"])
                # Under TLS 1.3 the server judges our certificate after our handshake ends:
                # a refusal shows as an alert or a close on the first read.
                tls.settimeout(2.0)
                try:
                    if tls.recv(1) == b"":
                        return None
                except socket.timeout:
                    pass  # taken: the member waits for our first words
                return subject["commonName"]
        except (ssl.SSLError, ConnectionError):
            return None


def create_and_read_elsewhere(ensemble, writer_member, reader_member, path, data):
    writer = KazooClient(hosts=ensemble.host(writer_member), timeout=SESSION_TIMEOUT_S)
    reader = KazooClient(hosts=ensemble.host(reader_member), timeout=SESSION_TIMEOUT_S)
    writer.start(timeout=30)
    reader.start(timeout=30)
    try:
        writer.create(path, data)
        reader.sync(path)
        assert reader.get(path)[0] == data
    finally:
        for client in (writer, reader):
            client.stop()
            client.close()


@pytest.mark.parametrize("kind", KINDS)
def test_an_ensemble_replicates_over_tls_and_survives_its_leader(kind, certificates):
    # Without our shared secret: the certificates alone authenticate the members.
    with ProcessEnsemble(kind, 3, extra_lines=tls_lines(certificates),
                         secret=False) as ensemble:
        create_and_read_elsewhere(ensemble, 1, 3, "/over-tls", b"replicated")
        leader = ensemble.leader()
        # The leader's peer port speaks TLS to a member's certificate and refuses another
        # CA's; no plain hello is answered.
        port = ensemble.peer_port(leader)
        assert handshake(port, certificates, "member") == "member"
        assert handshake(port, certificates, "outsider") is None
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"zkrp\x00\x01" + bytes(48))
            raw.settimeout(10)
            try:
                assert raw.recv(64) == b""
            except ConnectionError:
                pass
        ensemble.kill(leader)
        survivors = [member for member in ensemble.client_ports if member != leader]
        ensemble.wait_until_serving(members=survivors)
        create_and_read_elsewhere(ensemble, survivors[0], survivors[1], "/after", b"still")


@pytest.mark.parametrize("kind", KINDS)
def test_a_member_whose_certificate_another_ca_signed_never_joins(kind, certificates):
    ensemble = ProcessEnsemble(kind, 3, extra_lines=["sslQuorum=true"], secret=False,
                               member_lines={1: stores(certificates), 2: stores(certificates),
                                             3: stores(certificates, "outsider")})
    try:
        for member in (1, 2, 3):
            ensemble.start(member)
        ensemble.wait_until_serving(members=[1, 2])
        create_and_read_elsewhere(ensemble, 1, 2, "/members-only", b"1 and 2")
        deadline = time.monotonic() + OUTSIDER_WATCH_S
        while time.monotonic() < deadline:
            assert mode(ensemble.client_ports[3]) is None, ensemble.tails()
            time.sleep(0.5)
        assert ensemble.processes[3].poll() is None, "the outsider should keep trying"
    finally:
        ensemble.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_rolling_change_from_plain_to_tls_keeps_every_write(kind, certificates):
    """ZooKeeper's procedure: every member takes TLS dialers beside plain ones
    (portUnification), then dials TLS (sslQuorum), then stops taking plain ones; one
    member restarted at a time, writes going on throughout."""
    with ProcessEnsemble(kind, 3) as ensemble, Writers(ensemble) as writers:
        steps = [["portUnification=true", *stores(certificates)],
                 ["portUnification=true", *tls_lines(certificates)],
                 tls_lines(certificates)]
        for lines in steps:
            for member in list(ensemble.client_ports):
                ensemble.configure(member, lines)
                ensemble.terminate(member)
                ensemble.start(member)
                ensemble.wait_until_serving()
                writers.first_success_after(time.monotonic())
        # Every member now refuses a plain hello and takes a member's certificate.
        leader = ensemble.leader()
        assert handshake(ensemble.peer_port(leader), certificates, "member") == "member"
        writers.stop()
        assert writers.verify() > 0
