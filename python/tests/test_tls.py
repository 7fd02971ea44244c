"""Guards against a Python client that cannot speak TLS as kazoo does (use_ssl, ca, certfile,
keyfile, verify_certs), that fails against a wrong CA or a refused certificate without saying
why, or that takes bad TLS arguments silently (certificates given without use_ssl would
connect in the clear).

Runs against our server binary and Apache ZooKeeper 3.8, both serving TLS from the same PEM
stores; certificates are made at test time with the openssl command line."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Dict, Iterator

import pytest

from conftest import REPO_ROOT, SERVER_START_TIMEOUT_S, ZKRS_BIN_DEFAULT, ZOOKEEPER_CLASSPATH
from conftest import _is_serving, free_port
from zookeeper import (ACL, BadArgumentsError, ConnectionLossError, Id, ZooDefs,
                       ZooKeeper, ZooServer)
from zookeeper.aio import AsyncZooKeeper

sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "python"))
from tls_certs import CLIENT_SUBJECT, make_certificates  # noqa: E402


@pytest.fixture(scope="module")
def certs() -> Iterator[Dict[str, str]]:
    directory = tempfile.mkdtemp(prefix="zk-py-tls-certs-")
    try:
        yield make_certificates(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module", params=["ours", "apache"])
def secure_address(request: Any, certs: Dict[str, str]) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a server's TLS port (client certificates needed)."""
    data_dir = tempfile.mkdtemp(prefix=f"zk-py-tls-{request.param}-")
    port, secure_port = free_port(), free_port()
    config = os.path.join(data_dir, "zoo.cfg")
    with open(config, "w") as file:
        file.write("\n".join([
            "tickTime=2000", f"dataDir={data_dir}/data", f"clientPort={port}",
            "clientPortAddress=127.0.0.1", f"secureClientPort={secure_port}",
            "admin.enableServer=false", "4lw.commands.whitelist=*", "forceSync=no",
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            f"ssl.keyStore.location={certs['server']}", "ssl.keyStore.type=PEM",
            f"ssl.trustStore.location={certs['ca']}", "ssl.trustStore.type=PEM",
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        ]) + "\n")
    if request.param == "ours":
        binary = os.environ.get("ZKRS_BIN", ZKRS_BIN_DEFAULT)
        if not os.path.exists(binary):
            pytest.fail(f"zookeeper-rs binary not built at {binary}")
        command = [binary, "--config", config]
    else:
        command = ["java", "-Xmx256m", "-Dzookeeper.root.logger=WARN,CONSOLE", "-cp",
                   ZOOKEEPER_CLASSPATH, "org.apache.zookeeper.server.ZooKeeperServerMain",
                   config]
    with open(os.path.join(data_dir, "server.log"), "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _is_serving(port):
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield f"127.0.0.1:{secure_port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


def tls(certs: Dict[str, str], who: str = "client", **overrides: Any) -> Dict[str, Any]:
    options: Dict[str, Any] = dict(use_ssl=True, ca=certs["ca"], certfile=certs[f"{who}-cert"],
                                   keyfile=certs[f"{who}-key"])
    options.update(overrides)
    return options


def test_mutual_tls_and_an_x509_acl(secure_address: str, certs: Dict[str, str]) -> None:
    path = f"/py-tls-{uuid.uuid4().hex[:8]}"
    acl = [ACL(ZooDefs.Perms.ALL, Id("x509", CLIENT_SUBJECT))]
    with ZooKeeper(secure_address, **tls(certs)) as zk:
        zk.create(path, b"secret", acl=acl)
        assert zk.get(path) == b"secret"
        assert zk.get_acls(path)[0] == acl
    # Without a certificate of its own a client is refused (clientAuth=need).
    with pytest.raises(ConnectionLossError, match="alert"):
        ZooKeeper(secure_address, use_ssl=True, ca=certs["ca"]).start(timeout=3)


def test_a_wrong_ca_says_the_server_is_not_trusted(secure_address: str,
                                                   certs: Dict[str, str]) -> None:
    client = ZooKeeper(secure_address, connect=False, **tls(certs, ca=certs["other-ca"]))
    with pytest.raises(ConnectionLossError, match="TLS handshake with .* UnknownIssuer"):
        client.start(timeout=3)


@pytest.mark.parametrize("who", ["expired", "stranger"])
def test_a_refused_client_certificate_says_so(secure_address: str, certs: Dict[str, str],
                                              who: str) -> None:
    client = ZooKeeper(secure_address, connect=False, **tls(certs, who))
    with pytest.raises(ConnectionLossError, match="alert"):
        client.start(timeout=3)


def test_not_verifying_the_server_still_offers_the_certificate(secure_address: str,
                                                               certs: Dict[str, str]) -> None:
    with ZooKeeper(secure_address, **tls(certs, ca=None, verify_certs=False)) as zk:
        assert zk.exists("/") is not None


def test_the_async_client_speaks_tls(secure_address: str, certs: Dict[str, str]) -> None:
    async def run() -> bool:
        zk = AsyncZooKeeper(secure_address, **tls(certs))
        await zk.start()
        try:
            return await zk.exists("/") is not None
        finally:
            await zk.stop()
    assert asyncio.run(run())


def test_bad_tls_arguments_are_refused_before_connecting(certs: Dict[str, str]) -> None:
    with pytest.raises(ValueError, match="without use_ssl"):
        ZooKeeper("127.0.0.1:1", connect=False, certfile=certs["client-cert"])
    with pytest.raises(ValueError, match="openssl pkey"):
        ZooKeeper("127.0.0.1:1", connect=False, keyfile_password="pw", **tls(certs))
    with pytest.raises(ValueError, match="needs ca"):
        ZooKeeper("127.0.0.1:1", connect=False, use_ssl=True)
    with pytest.raises(ValueError, match="keyfile needs certfile"):
        ZooKeeper("127.0.0.1:1", connect=False, use_ssl=True, ca=certs["ca"],
                  keyfile=certs["client-key"])
    with pytest.raises(TypeError):
        ZooKeeper("127.0.0.1:1", connect=False, use_ssl="yes")
    with pytest.raises(TypeError):
        ZooKeeper("127.0.0.1:1", connect=False, use_ssl=True, ca=42)
    with ZooServer() as server, pytest.raises(ValueError, match="in-process"):
        ZooKeeper(server, connect=False, **tls(certs))
    # Files are read when connecting; the error names the one that is missing.
    client = ZooKeeper("127.0.0.1:1", connect=False, **tls(certs, ca="/nonexistent/ca.pem"))
    with pytest.raises(BadArgumentsError, match="/nonexistent/ca.pem"):
        client.start(timeout=1)
