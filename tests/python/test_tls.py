"""Guards against a TLS client port that differs from Apache ZooKeeper's: kazoo over TLS, the
x509 auth scheme's id and ACLs, four-letter words over TLS, clientAuth need/want/none, port
unification, protocol and suite limits, certificate reload, and bad input (a stranger's or an
expired certificate, plain bytes on the TLS port, a handshake that never finishes).

Certificates are made at test time with the openssl command line (tls_certs.py). Apache
ZooKeeper 3.8 reads the same PEM stores (ssl.keyStore.type=PEM), so the x509 and 4lw tests run
against both servers and must give the same answers.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import InvalidACLError, NoAuthError
from kazoo.security import ACL, Id, Permissions

from conftest import (ZOOKEEPER_CLASSPATH, ZKRS_BIN_DEFAULT, _kill, _tail, _wait_until_up,
                      free_port, is_serving)
from tls_certs import (CLIENT_SUBJECT, certificate_directory, make_client_certificate,
                       make_server_certificate)

X509_PROVIDER = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
# Our server's (and Netty's) bound on a TLS handshake, in seconds.
HANDSHAKE_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def certs():
    with certificate_directory("zk-tls-certs-") as paths:
        yield paths


def tls_lines(certs, secure_port, client_auth="need", extra=()):
    return [
        f"secureClientPort={secure_port}",
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        f"ssl.keyStore.location={certs['server']}",
        "ssl.keyStore.type=PEM",
        f"ssl.trustStore.location={certs['ca']}",
        "ssl.trustStore.type=PEM",
        f"ssl.clientAuth={client_auth}",
        f"authProvider.x509={X509_PROVIDER}",
        "4lw.commands.whitelist=*",
        *extra,
    ]


@contextlib.contextmanager
def run_server(kind, lines):
    """Runs our binary or Apache ZooKeeper with a plain clientPort (for readiness checks) and
    the given zoo.cfg lines; yields (plain port, the server's log path)."""
    data_dir = tempfile.mkdtemp(prefix=f"zk-tls-{kind}-")
    port = free_port()
    os.mkdir(os.path.join(data_dir, "data"))
    config_path = os.path.join(data_dir, "zoo.cfg")
    with open(config_path, "w") as config:
        config.write("".join(line + "\n" for line in [
            "tickTime=2000", f"dataDir={data_dir}/data", f"clientPort={port}",
            "clientPortAddress=127.0.0.1", "admin.enableServer=false", *lines]))
    if kind == "ours":
        binary = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
        command = [binary, "--config", config_path]
    else:
        command = ["java", "-Dzookeeper.root.logger=INFO,CONSOLE", "-Xmx256m",
                   "-cp", ZOOKEEPER_CLASSPATH, "org.apache.zookeeper.server.ZooKeeperServerMain",
                   config_path]
    log_path = os.path.join(data_dir, "server.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
        try:
            _wait_until_up(process, port, kind, log_path)
            yield port, log_path
        finally:
            _kill(process)
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module", params=["ours", "apache"])
def server(request, certs):
    """(kind, plain port, secure port, log path) of a server asking for client certificates."""
    secure_port = free_port()
    with run_server(request.param, tls_lines(certs, secure_port)) as (port, log_path):
        yield request.param, port, secure_port, log_path


def tls_client(port, certs, client="client", **options):
    """A started kazoo client over TLS with `client`'s certificate (None: no certificate)."""
    kwargs = dict(use_ssl=True, ca=certs["ca"], verify_certs=True)
    if client:
        kwargs.update(certfile=certs[f"{client}-cert"], keyfile=certs[f"{client}-key"])
    kwargs.update(options)
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0, **kwargs)
    zk.start(timeout=10)
    return zk


@contextlib.contextmanager
def started(zk):
    try:
        yield zk
    finally:
        zk.stop()
        zk.close()


def s_client(port, certs, client="client", extra=(), send=b""):
    """openssl s_client against `port`; returns (exit code, what the server sent, the whole
    output: what it sent, then s_client's own report)."""
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", certs["ca"],
               "-verify_return_error", "-quiet", *extra]
    if client:
        command += ["-cert", certs[f"{client}-cert"], "-key", certs[f"{client}-key"]]
    result = subprocess.run(command, input=send, capture_output=True, timeout=30)
    sent = result.stdout.decode("utf-8", "replace")
    return result.returncode, sent, sent + result.stderr.decode("utf-8", "replace")


def four_letter_over_tls(port, certs, word):
    return s_client(port, certs, send=word)[1]


def test_kazoo_over_tls_reads_and_writes(server, certs):
    _, _, secure_port, _ = server
    with started(tls_client(secure_port, certs)) as zk:
        path = f"/tls-{uuid.uuid4().hex[:8]}"
        zk.create(path, b"over tls")
        assert zk.get(path)[0] == b"over tls"
        zk.set(path, b"again")
        assert zk.get(path)[0] == b"again"


def test_x509_acl_admits_the_certificate_subject_only(server, certs):
    kind, port, secure_port, _ = server
    path = f"/x509-{uuid.uuid4().hex[:8]}"
    acl = [ACL(Permissions.ALL, Id("x509", CLIENT_SUBJECT))]
    with started(tls_client(secure_port, certs)) as zk:
        zk.create(path, b"mine", acl=acl)
        assert zk.get(path)[0] == b"mine"
        assert zk.get_acls(path)[0] == acl
        # `auth` becomes the connection's x509 id, as on Apache ZooKeeper.
        zk.create(path + "-auth", b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        assert zk.get_acls(path + "-auth")[0] == acl
        with pytest.raises(InvalidACLError):
            zk.create(path + "-bad", b"", acl=[ACL(Permissions.ALL, Id("x509", "nonsense"))])
    plain = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0)
    plain.start(timeout=10)
    with started(plain):
        with pytest.raises(NoAuthError):
            plain.get(path)
        # addauth cannot claim an x509 id: the scheme only authenticates at the handshake.
        with pytest.raises(Exception):
            plain.add_auth("x509", CLIENT_SUBJECT)


# Prints each certificate's subject as ZooKeeper's X509AuthenticationProvider takes it.
JAVA_SUBJECT_PROGRAM = """
import java.io.FileInputStream;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
public class Subject {
  public static void main(String[] paths) throws Exception {
    for (String path : paths) {
      X509Certificate certificate = (X509Certificate) CertificateFactory.getInstance("X.509")
          .generateCertificate(new FileInputStream(path));
      System.out.println(certificate.getSubjectX500Principal().getName());
    }
  }
}
"""
# Multi-valued RDNs, attributes Java prints as OIDs, escapes, a trailing space, UTF-8.
UNUSUAL_SUBJ = ('/DC=com/DC=example/C=DE/ST=Bay ern /L=München/O=A\\, B;C'
                '/OU=x=y #1 "q" <a>/CN=multi+UID=u1/emailAddress=a@b.c/serialNumber=42')


def run_java(class_name, program, arguments):
    """Runs a one-file Java program (`java Name.java`) in a temporary directory; `arguments`
    is a function of that directory (it may write the program's input files there). Answers
    the program's standard output."""
    directory = tempfile.mkdtemp(prefix="zk-java-")
    try:
        source = os.path.join(directory, f"{class_name}.java")
        with open(source, "w") as file:
            file.write(program)
        result = subprocess.run(["java", source, *arguments(directory)], capture_output=True,
                                timeout=120, check=True)
        return result.stdout.decode("utf-8")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def java_subject(certificate):
    return run_java("Subject", JAVA_SUBJECT_PROGRAM, lambda _: [certificate]).strip()


def test_x509_ids_are_javas_names_for_unusual_subjects(server, certs):
    _, _, secure_port, _ = server
    odd = make_client_certificate(os.path.dirname(certs["ca"]), "unusual", UNUSUAL_SUBJ)
    subject = java_subject(odd["unusual-cert"])
    assert subject.startswith("2.5.4.5=#13023432,1.2.840.113549.1.9.1=#16") and "\\ ," in subject
    acl = [ACL(Permissions.ALL, Id("x509", subject))]
    path = f"/unusual-{uuid.uuid4().hex[:8]}"
    with started(tls_client(secure_port, {**certs, **odd}, client="unusual")) as zk:
        zk.create(path, b"odd", acl=acl)
        # Readable only if the server's id for this certificate is exactly Java's name.
        assert zk.get(path)[0] == b"odd"
        assert zk.get_acls(path)[0] == acl


def test_four_letter_words_answer_over_tls(server, certs):
    answer = four_letter_over_tls(server[2], certs, b"srvr")
    assert "Zookeeper version:" in answer and "Mode: standalone" in answer, answer
    assert four_letter_over_tls(server[2], certs, b"ruok") == "imok"


@pytest.mark.parametrize("client", ["stranger", "expired", None])
def test_bad_client_certificates_are_refused(server, certs, client):
    _, port, secure_port, _ = server
    code, sent, output = s_client(secure_port, certs, client=client, send=b"srvr")
    assert sent == "", output
    assert "alert" in output, output
    with pytest.raises(Exception):
        with started(tls_client(secure_port, certs, client=client,
                                connection_retry={"max_tries": 0})):
            pass
    assert is_serving(port)


def test_a_client_that_distrusts_the_server_is_told_why(server, certs):
    with pytest.raises(Exception):
        with started(tls_client(server[2], certs, ca=certs["other-ca"],
                                connection_retry={"max_tries": 0})):
            pass
    code, sent, output = s_client(server[2], {**certs, "ca": certs["other-ca"]}, send=b"srvr")
    assert code != 0 and sent == "" and "unable to get local issuer certificate" in output, output


def test_plain_bytes_on_the_tls_port_get_no_answer(server, certs):
    _, port, secure_port, _ = server
    for payload in (b"srvr", b"\x00\x00\x00\x2c" + b"\x00" * 44, os.urandom(2048)):
        with socket.create_connection(("127.0.0.1", secure_port), timeout=5) as sock:
            sock.sendall(payload)
            sock.settimeout(HANDSHAKE_TIMEOUT_S + 5)
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
            except ConnectionResetError:
                pass
            assert b"Zookeeper" not in received
            # Nothing but perhaps a TLS alert record (type 21) comes back.
            assert received == b"" or received[0] == 0x15, received[:20]
    assert is_serving(port)


def test_a_handshake_that_never_finishes_is_closed(server, certs):
    _, port, secure_port, _ = server
    socks = []
    try:
        # Half a ClientHello record header, then silence; and a socket that sends nothing.
        for first in (b"\x16\x03\x01\x02", b""):
            sock = socket.create_connection(("127.0.0.1", secure_port), timeout=5)
            sock.sendall(first)
            socks.append(sock)
        started_at = time.monotonic()
        # Other clients are served meanwhile.
        assert is_serving(port)
        for sock in socks:
            sock.settimeout(HANDSHAKE_TIMEOUT_S + 10)
            try:
                assert sock.recv(4096) == b""
            except ConnectionResetError:
                pass
        assert time.monotonic() - started_at < HANDSHAKE_TIMEOUT_S + 5
    finally:
        for sock in socks:
            sock.close()
    assert is_serving(port)


@pytest.mark.parametrize("kind", ["ours", "apache"])
def test_client_auth_want_admits_anonymous_clients(certs, kind):
    secure_port = free_port()
    with run_server(kind, tls_lines(certs, secure_port, client_auth="want")):
        path = f"/want-{uuid.uuid4().hex[:8]}"
        with started(tls_client(secure_port, certs)) as zk:
            zk.create(path, b"", acl=[ACL(Permissions.ALL, Id("x509", CLIENT_SUBJECT))])
        with started(tls_client(secure_port, certs, client=None)) as anonymous:
            with pytest.raises(NoAuthError):
                anonymous.get(path)
        # A certificate from another CA is still refused.
        with pytest.raises(Exception):
            with started(tls_client(secure_port, certs, client="stranger",
                                    connection_retry={"max_tries": 0})):
                pass


def test_client_auth_none_asks_for_no_certificate(certs):
    secure_port = free_port()
    with run_server("ours", tls_lines(certs, secure_port, client_auth="none")):
        # Even a stranger's certificate is not looked at: none is asked for.
        for client in (None, "stranger"):
            with started(tls_client(secure_port, certs, client=client)) as zk:
                assert zk.exists("/") is not None
        assert s_client(secure_port, certs, client=None, send=b"ruok")[1] == "imok"


def test_port_unification_serves_plain_and_tls_on_one_port(certs):
    secure_port = free_port()
    lines = tls_lines(certs, secure_port, extra=["client.portUnification=true"])
    with run_server("ours", lines) as (port, _):
        with started(tls_client(port, certs)) as secure:
            path = f"/unified-{uuid.uuid4().hex[:8]}"
            secure.create(path, b"both")
        plain = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0)
        plain.start(timeout=10)
        with started(plain):
            assert plain.get(path)[0] == b"both"
        assert four_letter_over_tls(port, certs, b"ruok") == "imok"


def test_enabled_protocols_and_cipher_suites_limit_the_handshake(certs):
    secure_port = free_port()
    lines = tls_lines(certs, secure_port, extra=[
        "ssl.enabledProtocols=TLSv1.3", "ssl.ciphersuites=TLS_AES_256_GCM_SHA384"])
    with run_server("ours", lines):
        code, sent, output = s_client(secure_port, certs, extra=["-tls1_2"], send=b"ruok")
        assert sent == "" and "protocol version" in output, output
        code, sent, output = s_client(secure_port, certs, send=b"ruok", extra=[
            "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"])
        assert sent == "" and "handshake failure" in output, output
        assert s_client(secure_port, certs, extra=["-tls1_3"], send=b"ruok")[1] == "imok"


def test_the_default_protocol_is_tls12_as_in_zookeeper(certs):
    secure_port = free_port()
    with run_server("ours", tls_lines(certs, secure_port)):
        assert s_client(secure_port, certs, extra=["-tls1_3"], send=b"ruok")[1] == ""
        assert s_client(secure_port, certs, extra=["-tls1_2"], send=b"ruok")[1] == "imok"


def server_subject(port, certs):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", certs["ca"],
         "-cert", certs["client-cert"], "-key", certs["client-key"]],
        input=b"", capture_output=True, timeout=30)
    for line in result.stdout.decode().splitlines():
        if line.startswith("subject="):
            return line
    raise AssertionError(result.stdout.decode() + result.stderr.decode())


def test_certificates_reload_when_the_key_store_changes(certs):
    directory = tempfile.mkdtemp(prefix="zk-tls-reload-")
    try:
        key_store = os.path.join(directory, "server.pem")
        shutil.copy(certs["server"], key_store)
        secure_port = free_port()
        lines = [line if not line.startswith("ssl.keyStore.location") else
                 f"ssl.keyStore.location={key_store}" for line in tls_lines(certs, secure_port)]
        with run_server("ours", lines) as (port, log_path):
            assert server_subject(secure_port, certs) == "subject=CN = server"
            # A broken store keeps the old certificate serving.
            with open(key_store, "w") as file:
                file.write("-----BEGIN PRIVATE KEY-----\nnot base64\n")
            time.sleep(2.5)
            assert server_subject(secure_port, certs) == "subject=CN = server"
            renewed = make_server_certificate(os.path.dirname(certs["ca"]), "renewed")
            shutil.copy(renewed, key_store + ".new")
            os.replace(key_store + ".new", key_store)
            deadline = time.monotonic() + 10
            while server_subject(secure_port, certs) != "subject=CN = renewed":
                assert time.monotonic() < deadline, _tail(log_path)
                time.sleep(0.2)
            with open(log_path, "rb") as log:
                text = log.read().decode("utf-8", "replace")
            assert text.count("do not load") == 1, text
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("change, message", [
    (("ssl.keyStore.type=JKS",), "keytool -importkeystore"),
    (("ssl.keyStore.location=/nonexistent/server.pem",), "cannot read /nonexistent/server.pem"),
    (("ssl.clientAuth=sometimes",), "invalid ssl.clientAuth"),
    (("ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",), "no cipher suite"),
])
def test_broken_tls_settings_stop_the_server_with_a_clear_error(certs, change, message):
    directory = tempfile.mkdtemp(prefix="zk-tls-bad-")
    try:
        keys = {line.split("=", 1)[0] for line in change}
        lines = [line for line in tls_lines(certs, free_port())
                 if line.split("=", 1)[0] not in keys] + list(change)
        config_path = os.path.join(directory, "zoo.cfg")
        with open(config_path, "w") as config:
            config.write("".join(line + "\n" for line in [
                f"dataDir={directory}", f"clientPort={free_port()}", *lines]))
        binary = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
        result = subprocess.run([binary, "--config", config_path], capture_output=True,
                                timeout=30, cwd=directory)
        assert result.returncode != 0
        assert message in (result.stdout + result.stderr).decode(), result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("kind", ["ours", "apache"])
def test_a_secure_port_brings_the_x509_provider_without_authprovider(certs, kind):
    # ZooKeeper registers the x509 provider itself when a port speaks TLS
    # (QuorumPeerConfig.configureSSLAuth), so the line is not needed for x509 ACLs.
    secure_port = free_port()
    lines = [line for line in tls_lines(certs, secure_port) if not line.startswith("authProvider")]
    with run_server(kind, lines):
        with started(tls_client(secure_port, certs)) as zk:
            path = f"/implicit-{uuid.uuid4().hex[:8]}"
            acl = [ACL(Permissions.ALL, Id("x509", CLIENT_SUBJECT))]
            zk.create(path, b"", acl=acl)
            assert zk.get_acls(path)[0] == acl
            zk.get(path)


def test_handshakes_that_never_finish_count_against_the_connection_limit(certs):
    # A flood of silent TLS connections holds at most maxClientCnxns slots, each for at most
    # the handshake timeout: bounded in memory and in time.
    secure_port = free_port()
    with run_server("ours", tls_lines(certs, secure_port, extra=["maxClientCnxns=5"])):
        silent = [socket.create_connection(("127.0.0.1", secure_port), timeout=5)
                  for _ in range(5)]
        try:
            time.sleep(0.5)
            with socket.create_connection(("127.0.0.1", secure_port), timeout=5) as extra:
                extra.settimeout(5)
                started_at = time.monotonic()
                assert extra.recv(16) == b""
                assert time.monotonic() - started_at < 2
            for sock in silent:
                sock.settimeout(HANDSHAKE_TIMEOUT_S + 10)
                assert sock.recv(16) == b""
        finally:
            for sock in silent:
                sock.close()
        time.sleep(0.5)
        with started(tls_client(secure_port, certs)) as zk:
            assert zk.exists("/") is not None
