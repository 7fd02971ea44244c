"""Guards against x509 auth that differs from Apache ZooKeeper 3.8's in three corners: ACL ids
sent as null or blank (kazoo writes "" as null), the identities of a session resumed on a new
connection with another certificate (ZooKeeper keeps auth info per connection, so neither the
old certificate nor an addAuth follows the session), and X509AuthenticationProvider.superUser.

Each test runs the same steps against our server and Apache ZooKeeper 3.8 (both with
ssl.clientAuth=want and the same PEM stores) and asserts the answers Apache gave.
"""

import os
import random
import struct
import uuid

import pytest
from kazoo.exceptions import MarshallingError
from kazoo.security import ACL, Id, Permissions, make_digest_acl_credential

from conftest import free_port
from rawtls import PERMS_ALL, TlsConnection
from test_tls import run_java, run_server, started, tls_client, tls_lines
from tls_certs import CLIENT_SUBJECT, certificate_directory, make_client_certificate

OTHER_SUBJECT = "CN=other"
SUPER_SUBJECT = "CN=admin,O=ops"
OK, MARSHALLING_ERROR, NO_NODE, NO_AUTH, INVALID_ACL = 0, -5, -101, -102, -114
PERMS_READ = 1


@pytest.fixture(scope="module")
def certs():
    with certificate_directory(
            "zk-x509-certs-",
            lambda directory: make_client_certificate(directory, "other", "/CN=other"),
            lambda directory: make_client_certificate(directory, "admin", "/O=ops/CN=admin"),
    ) as paths:
        yield paths


@pytest.fixture(scope="module", params=["ours", "apache"])
def server(request, certs):
    """(kind, secure port) of a server that asks for client certificates without needing one,
    with the admin certificate's subject as the x509 super user."""
    secure_port = free_port()
    lines = tls_lines(certs, secure_port, client_auth="want",
                      extra=[f"X509AuthenticationProvider.superUser={SUPER_SUBJECT}"])
    with run_server(request.param, lines):
        yield request.param, secure_port


def unique(prefix):
    return f"/{prefix}-{uuid.uuid4().hex[:8]}"


# (ACL entries, Apache 3.8's answer to a create and to a setACL with them). None is an id
# sent as null: ZooKeeper's fixupACL then meets a NullPointerException (X500Principal(null),
# id.split, getId().equals, or the jute Id.equals while dropping duplicates), answered
# MarshallingError; "" sent as a string is the empty name, which X500Principal accepts.
NEW_ACL_ANSWERS = [
    ([(PERMS_ALL, "x509", None)], MARSHALLING_ERROR),
    ([(PERMS_ALL, "x509", "")], OK),
    ([(PERMS_ALL, "x509", " ")], INVALID_ACL),
    ([(PERMS_ALL, "x509", "\t")], INVALID_ACL),
    ([(PERMS_ALL, "x509", "CN=")], OK),
    ([(PERMS_ALL, "digest", None)], MARSHALLING_ERROR),
    ([(PERMS_ALL, "ip", None)], MARSHALLING_ERROR),
    ([(PERMS_ALL, "world", None)], MARSHALLING_ERROR),
    ([(PERMS_ALL, "foo", None)], INVALID_ACL),
    ([(PERMS_ALL, "digest", "bad"), (PERMS_ALL, "x509", None)], INVALID_ACL),
    ([(PERMS_ALL, "x509", None), (PERMS_ALL, "digest", "bad")], MARSHALLING_ERROR),
    ([(PERMS_ALL, "digest", "bad"), (PERMS_ALL, "digest", None)], MARSHALLING_ERROR),
    ([(PERMS_READ, "digest", "bad"), (PERMS_ALL, "digest", None)], INVALID_ACL),
    # auth never reads its id, but dropping duplicates compares it.
    ([(PERMS_ALL, "auth", None), (PERMS_ALL, "auth", None)], MARSHALLING_ERROR),
    # A null scheme: InvalidAcl alone (fixupACL's own check), but dropping duplicates meets
    # it first when an earlier entry has the same perms (Id.equals starts with the scheme).
    ([(PERMS_ALL, None, "x")], INVALID_ACL),
    ([(PERMS_ALL, "world", "anyone"), (PERMS_ALL, None, "x")], MARSHALLING_ERROR),
    ([(PERMS_READ, "world", "anyone"), (PERMS_ALL, None, "x")], INVALID_ACL),
    ([(PERMS_ALL, None, "x"), (PERMS_ALL, "world", "anyone")], INVALID_ACL),
    ([(PERMS_ALL, None, None), (PERMS_ALL, None, None)], MARSHALLING_ERROR),
]


@pytest.mark.parametrize("acl, answer", NEW_ACL_ANSWERS)
def test_null_and_blank_x509_ids_are_answered_as_on_zookeeper(server, certs, acl, answer):
    _, secure_port = server
    connection = TlsConnection(secure_port, certs)
    try:
        path = unique("null-id")
        assert connection.create(path, acl) == answer
        # A refused create leaves nothing behind; an accepted one's ACL admits no one here.
        assert connection.get_data(path)[0] == (NO_NODE if answer != OK else NO_AUTH)
        target = unique("set-acl")
        assert connection.create(target, [(PERMS_ALL, "world", "anyone")], data=b"t") == OK
        assert connection.set_acl(target, acl) == answer
        if answer != OK:
            # Refused: the ACL is unchanged, so anyone still writes.
            assert connection.set_data(target, b"still world") == OK
    finally:
        connection.close_socket()


def test_kazoo_sends_an_empty_x509_id_as_null(server, certs):
    _, secure_port = server
    with started(tls_client(secure_port, certs)) as zk:
        path = unique("kazoo-null")
        with pytest.raises(MarshallingError):
            zk.create(path, b"", acl=[ACL(Permissions.ALL, Id("x509", ""))])
        assert zk.exists(path) is None
        zk.create(path, b"")
        with pytest.raises(MarshallingError):
            zk.set_acls(path, [ACL(Permissions.ALL, Id("x509", ""))])
        assert zk.get_acls(path)[0] == [ACL(Permissions.ALL, Id("world", "anyone"))]


def test_a_null_acl_id_fails_a_whole_multi(server, certs):
    _, secure_port = server
    connection = TlsConnection(secure_port, certs)
    try:
        first, second = unique("multi"), unique("multi")
        world = [(PERMS_ALL, "world", "anyone")]
        # ZooKeeper's multi loop catches only KeeperExceptions; the NullPointerException
        # escapes it, so no per-op results come back, just the error.
        null = [(PERMS_ALL, "x509", None)]
        assert connection.multi_create([(first, world), (second, null)]) == (MARSHALLING_ERROR, b"")
        assert connection.get_data(first)[0] == NO_NODE
        assert connection.create(first, world) == OK
        # An invalid ACL fails its op alone: per-op error results (a MultiHeader of type -1
        # with the code, then the code), then the closing header.
        blank = [(PERMS_ALL, "x509", " ")]
        error, body = connection.multi_create([(second, world), (first + "x", blank)])
        assert error == OK
        assert body == (struct.pack(">i?ii", -1, False, OK, OK)
                        + struct.pack(">i?ii", -1, False, INVALID_ACL, INVALID_ACL)
                        + struct.pack(">i?i", -1, True, -1))
        assert connection.get_data(second)[0] == NO_NODE
    finally:
        connection.close_socket()


def readable(connection, paths):
    return [connection.get_data(path)[0] for path in paths]


def test_a_resumed_session_has_only_its_new_connections_identities(server, certs):
    _, secure_port = server
    first = TlsConnection(secure_port, certs)
    assert first.add_auth("digest", b"user:secret") == OK
    digest_id = make_digest_acl_credential("user", "secret")
    paths = [unique("for-client"), unique("for-other"), unique("for-digest")]
    for path, scheme, identity in zip(paths, ["x509", "x509", "digest"],
                                      [CLIENT_SUBJECT, OTHER_SUBJECT, digest_id]):
        assert first.create(path, [(PERMS_READ, scheme, identity)], data=b"x") == OK
    assert readable(first, paths) == [OK, NO_AUTH, OK]
    session = first.session
    # The connection drops; the session lives on and is resumed with its id and password.
    first.close_socket()

    other = TlsConnection(secure_port, certs, client="other", session=session)
    assert other.session[0] == session[0]
    # Neither the first certificate nor the first connection's addAuth came along.
    assert readable(other, paths) == [NO_AUTH, OK, NO_AUTH]
    assert sorted(other.who_am_i()) == [("ip", "127.0.0.1"), ("x509", OTHER_SUBJECT)]
    other.close_socket()

    anonymous = TlsConnection(secure_port, certs, client=None, session=session)
    assert readable(anonymous, paths) == [NO_AUTH, NO_AUTH, NO_AUTH]
    assert anonymous.who_am_i() == [("ip", "127.0.0.1")]
    # A client re-sends its auth on a new connection (kazoo and the Java client do).
    assert anonymous.add_auth("digest", b"user:secret") == OK
    assert readable(anonymous, paths) == [NO_AUTH, NO_AUTH, OK]
    anonymous.close_socket()

    again = TlsConnection(secure_port, certs, session=session)
    assert readable(again, paths) == [OK, NO_AUTH, NO_AUTH]
    again.close_socket()


def test_the_x509_super_user_may_do_anything_and_others_may_not(server, certs):
    _, secure_port = server
    owner = TlsConnection(secure_port, certs)
    parent = unique("owned")
    child = parent + "/child"
    only_owner = [(PERMS_ALL, "x509", CLIENT_SUBJECT)]
    assert owner.create(parent, only_owner, data=b"p") == OK
    assert owner.create(child, only_owner, data=b"c") == OK
    owner.close_socket()

    stranger = TlsConnection(secure_port, certs, client="other")
    assert stranger.get_data(child) == (NO_AUTH, None)
    assert stranger.set_data(child, b"no") == NO_AUTH
    assert stranger.set_acl(child, [(PERMS_ALL, "world", "anyone")]) == NO_AUTH
    assert stranger.delete(child) == NO_AUTH
    stranger.close_socket()

    admin = TlsConnection(secure_port, certs, client="admin")
    assert sorted(admin.who_am_i()) == [("ip", "127.0.0.1"), ("super", ""),
                                        ("x509", SUPER_SUBJECT)]
    assert admin.get_data(child) == (OK, b"c")
    assert admin.set_data(child, b"by admin") == OK
    assert admin.get_data(child) == (OK, b"by admin")
    assert admin.delete(child) == OK
    assert admin.get_data(child)[0] == NO_NODE
    assert admin.delete(parent) == OK
    admin.close_socket()


# Prints, for each line of the file named, whether new X500Principal(line) parses it: what
# ZooKeeper's X509AuthenticationProvider.isValid asks of an x509 ACL id.
JAVA_VALIDITY_PROGRAM = """
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import javax.security.auth.x500.X500Principal;
public class Validity {
  public static void main(String[] args) throws Exception {
    String text = new String(Files.readAllBytes(Paths.get(args[0])), StandardCharsets.UTF_8);
    for (String name : text.split("\\u0000", -1)) {
      boolean valid = true;
      try { new X500Principal(name); } catch (IllegalArgumentException e) { valid = false; }
      System.out.println(valid ? "valid" : "invalid");
    }
  }
}
"""
# Pieces of names where Java's parser has rules of its own: separators, quotes, escapes, hex
# pairs, #hex values (BER), keywords and OIDs, blanks.
NAME_PIECES = ["CN", "cn", "O", "OID.", "1.2", "2.5.4.3", "3.1", "1.40", "=", "=", ",", ";",
               "+", '"', "\\", "\\\\", "#", "04", "0401", "61", "8", "1", "3080", "0000", "a",
               "b c", " ", "\n", "<", ">", "\\,", "\\4a", "é"]


def generated_names(count, seed=8):
    chooser = random.Random(seed)
    names = []
    for _ in range(count):
        pieces = ["CN="] if chooser.random() < 0.5 else []
        pieces += chooser.choices(NAME_PIECES, k=chooser.randint(1, 7))
        names.append("".join(pieces))
    return names


def java_validity(names):
    def names_file(directory):
        path = os.path.join(directory, "names")
        with open(path, "w", encoding="utf-8") as file:
            file.write("\0".join(names))
        return [path]

    output = run_java("Validity", JAVA_VALIDITY_PROGRAM, names_file)
    return [line == "valid" for line in output.split()]


# Names for the rules generated ones rarely reach: BER indefinite lengths, quoted and escaped
# separators, OID component limits.
CHOSEN_NAMES = ["", " ", "CN=#30800000", "CN=#3080040200000000", "CN=#3080", "CN=#3080000000",
                "CN=#04800000", "CN=#0403", 'CN="a,b"', "CN=a\\,b", "1.39=x", "1.40=x", "2.99=x",
                "3.1=x", "OID.1.2=x", "1.2.=x"]


def test_x509_ids_are_refused_exactly_when_java_cannot_parse_them(server, certs):
    names = CHOSEN_NAMES + generated_names(400)
    valid = java_validity(names)
    assert len(valid) == len(names)
    # Both answers occur, so the comparison means something.
    assert 40 < sum(valid) < 360, sum(valid)
    _, secure_port = server
    connection = TlsConnection(secure_port, certs)
    try:
        answers = [connection.create(unique("name"), [(PERMS_ALL, "x509", name)])
                   for name in names]
    finally:
        connection.close_socket()
    mismatches = [(name, answer) for name, answer, java in zip(names, answers, valid)
                  if answer != (OK if java else INVALID_ACL)]
    assert mismatches == []
