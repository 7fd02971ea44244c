"""Test certificates made at test time with the openssl command line, never committed.

`make_certificates(directory)` writes, all PEM:

- ``ca.pem``: the trusted CA; ``other-ca.pem``: a CA nobody trusts.
- ``server.pem``: the server's key store (private key, then its certificate, signed by ``ca``,
  for 127.0.0.1 and localhost); ``server-cert.pem`` / ``server-key.pem`` the same apart.
- ``client.pem`` (+ ``client-cert.pem``, ``client-key.pem``): a client certificate signed by
  ``ca`` with subject ``CLIENT_SUBJECT``.
- ``stranger.pem`` (+ cert/key): a client signed by ``other-ca``.
- ``expired.pem`` (+ cert/key): a client signed by ``ca`` whose validity ended in 2020.

Returns a dict of those names to their paths.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile

# As openssl's -subj writes it (first RDN first); Java prints it last RDN first.
CLIENT_SUBJ = "/C=US/O=Example, Inc./OU=Test/CN=client one"
# What Java's X500Principal.getName() (ZooKeeper's x509 id) gives for CLIENT_SUBJ.
CLIENT_SUBJECT = "CN=client one,OU=Test,O=Example\\, Inc.,C=US"

_CA_CONFIG = """
[ ca ]
default_ca = test_ca
[ test_ca ]
database = {directory}/index.txt
new_certs_dir = {directory}
serial = {directory}/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = copy
[ anything ]
commonName = supplied
"""


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key(directory, name):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", f"{name}-key.pem", cwd=directory)


def _ca(directory, name, subject):
    _key(directory, name)
    _openssl("req", "-x509", "-new", "-key", f"{name}-key.pem", "-subj", subject, "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", f"{name}.pem", cwd=directory)


def _leaf(directory, name, subject, ca, extensions, days="2"):
    _key(directory, name)
    _openssl("req", "-new", "-key", f"{name}-key.pem", "-subj", subject,
             "-out", f"{name}.csr", cwd=directory)
    extfile = os.path.join(directory, f"{name}.ext")
    with open(extfile, "w") as file:
        file.write(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-days", days, "-extfile", extfile,
             "-out", f"{name}-cert.pem", cwd=directory)
    _key_store(directory, name)


def _key_store(directory, name):
    with open(os.path.join(directory, f"{name}.pem"), "w") as store:
        for part in (f"{name}-key.pem", f"{name}-cert.pem"):
            with open(os.path.join(directory, part)) as file:
                store.write(file.read())


CLIENT_EXTENSIONS = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
SERVER_EXTENSIONS = ("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                     "subjectAltName=IP:127.0.0.1,DNS:localhost\n")


def make_client_certificate(directory, name, subject, ca="ca"):
    """A further client certificate ``<name>-cert.pem``/``<name>-key.pem`` with ``subject``
    (openssl's -subj syntax, UTF-8) signed by ``ca``."""
    _key(directory, name)
    _openssl("req", "-new", "-utf8", "-key", f"{name}-key.pem", "-subj", subject,
             "-out", f"{name}.csr", cwd=directory)
    with open(os.path.join(directory, f"{name}.ext"), "w") as file:
        file.write(CLIENT_EXTENSIONS)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
             "-out", f"{name}-cert.pem", cwd=directory)
    return {f"{name}-cert": os.path.join(directory, f"{name}-cert.pem"),
            f"{name}-key": os.path.join(directory, f"{name}-key.pem")}


def make_server_certificate(directory, name, ca="ca"):
    """A further server key store ``<name>.pem`` signed by ``ca`` (for reload tests)."""
    _leaf(directory, name, f"/CN={name}", ca, SERVER_EXTENSIONS)
    return os.path.join(directory, f"{name}.pem")


MEMBER_EXTENSIONS = ("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
                     "subjectAltName=IP:127.0.0.1,DNS:localhost\n")


def make_member_certificate(directory, name, ca="ca"):
    """An ensemble member's key store ``<name>.pem`` signed by ``ca``, for 127.0.0.1 and
    localhost: members present it both when they dial and when they accept."""
    _leaf(directory, name, f"/CN={name}", ca, MEMBER_EXTENSIONS)
    return {name: os.path.join(directory, f"{name}.pem"),
            f"{name}-cert": os.path.join(directory, f"{name}-cert.pem"),
            f"{name}-key": os.path.join(directory, f"{name}-key.pem")}


def make_certificates(directory):
    _ca(directory, "ca", "/CN=zookeeper-rs test CA")
    _ca(directory, "other-ca", "/CN=another CA")
    _leaf(directory, "server", "/CN=server", "ca", SERVER_EXTENSIONS)
    _leaf(directory, "client", CLIENT_SUBJ, "ca", CLIENT_EXTENSIONS)
    _leaf(directory, "stranger", "/CN=stranger", "other-ca", CLIENT_EXTENSIONS)
    # An expired certificate needs dates in the past: `openssl ca` can set them.
    _key(directory, "expired")
    _openssl("req", "-new", "-key", "expired-key.pem", "-subj", "/CN=expired",
             "-out", "expired.csr", cwd=directory)
    with open(os.path.join(directory, "index.txt"), "w"):
        pass
    with open(os.path.join(directory, "serial"), "w") as file:
        file.write("1000\n")
    config = os.path.join(directory, "ca.cnf")
    with open(config, "w") as file:
        file.write(_CA_CONFIG.format(directory=directory))
    with open(os.path.join(directory, "expired.ext"), "w") as file:
        file.write(CLIENT_EXTENSIONS)
    _openssl("ca", "-batch", "-config", config, "-cert", "ca.pem", "-keyfile", "ca-key.pem",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
             "-extfile", "expired.ext", "-in", "expired.csr", "-out", "expired-cert.pem",
             "-notext", cwd=directory)
    _key_store(directory, "expired")
    names = ["ca", "other-ca", "server", "client", "stranger", "expired"]
    paths = {name: os.path.join(directory, f"{name}.pem") for name in names}
    for name in names[2:]:
        paths[f"{name}-cert"] = os.path.join(directory, f"{name}-cert.pem")
        paths[f"{name}-key"] = os.path.join(directory, f"{name}-key.pem")
    return paths


@contextlib.contextmanager
def certificate_directory(prefix, *further):
    """`make_certificates` in a temporary directory removed afterwards; each of `further`
    (a function of the directory answering more paths, such as a `make_member_certificate`
    call) adds its certificates. Yields the paths."""
    directory = tempfile.mkdtemp(prefix=prefix)
    try:
        paths = make_certificates(directory)
        for make in further:
            paths.update(make(directory))
        yield paths
    finally:
        shutil.rmtree(directory, ignore_errors=True)
