"""A server under test as the differential harness holds it: its address, its version's
quirks, and the harness's own sessions on it (an admin with every digest user, and on Apache
ZooKeeper 3.8.0 the super user)."""

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl_credential

from . import generator

REQUEST_TIMEOUT_S = 10.0
SESSION_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0

# The super user of Apache ZooKeeper servers under test (their JVM gets SUPER_DIGEST_PROPERTY):
# working out 3.9's deleteContainer on 3.8.0 must skip ACLs as 3.9 does.
SUPER_USER = "super"
SUPER_PASSWORD = "differential"
SUPER_DIGEST_PROPERTY = ("-Dzookeeper.DigestAuthenticationProvider.superDigest="
                         + make_digest_acl_credential(SUPER_USER, SUPER_PASSWORD))


class Server:
    """One server under test plus the harness's own session on it.

    The harness session authenticates as every digest user, so it can list parents for
    resolved operations, dump the final tree and delete any sequence's root. It is shared by
    all sequences (kazoo clients are thread-safe) and takes no part in the comparison except
    through the Stats it reads.
    """

    def __init__(self, name, address):
        self.name = name
        self.address = address
        # Debian's Apache ZooKeeper 3.8.0, where 3.9's answers to a standalone check and to a
        # client's deleteContainer must be worked out from its own state (see SequenceRun).
        self.is_3_8 = name.startswith("reference")
        self.admin = KazooClient(hosts=address, timeout=SESSION_TIMEOUT_S)
        self.admin.start(timeout=CONNECT_TIMEOUT_S)
        for user in generator.USERS:
            self.admin.add_auth_async("digest", f"{user}:{generator.PASSWORDS[user]}").get(
                timeout=REQUEST_TIMEOUT_S)
        # 3.9 checks no ACL on a client's deleteContainer; on 3.8.0 only the super user can
        # list and delete whatever 3.9 would.
        self.superuser = None
        if self.is_3_8:
            self.superuser = KazooClient(hosts=address, timeout=SESSION_TIMEOUT_S)
            self.superuser.start(timeout=CONNECT_TIMEOUT_S)
            self.superuser.add_auth_async("digest", f"{SUPER_USER}:{SUPER_PASSWORD}").get(
                timeout=REQUEST_TIMEOUT_S)

    def close(self):
        for client in (self.admin, self.superuser):
            if client is not None:
                client.stop()
                client.close()
