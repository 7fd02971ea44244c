"""Create modes kazoo 2.11 cannot send itself, sent through a kazoo client: createContainer
(19) and createTTL (21), both answered with a Create2Response, as
org.apache.zookeeper.ZooKeeper#create sends them."""

from collections import namedtuple

from kazoo.protocol.serialization import Create2, long_struct
from kazoo.security import OPEN_ACL_UNSAFE

WAIT_S = 10.0


class CreateContainer(Create2):
    type = 19


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        body = Create2(self.path, self.data, self.acl, self.flags).serialize()
        body.extend(long_struct.pack(self.ttl))
        return body

    deserialize = Create2.deserialize


def call(client, request):
    result = client.handler.async_result()
    client._call(request, result)
    return result.get(timeout=WAIT_S)


def create_container(client, path, data=b""):
    return call(client, CreateContainer(path, data, OPEN_ACL_UNSAFE, 4))


def create_ttl(client, path, ttl_ms, data=b"", sequential=False):
    return call(client, CreateTTL(path, data, OPEN_ACL_UNSAFE, 6 if sequential else 5, ttl_ms))
