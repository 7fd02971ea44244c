/* Guards against wire replies the Apache C client (libzookeeper_mt) cannot parse or misreads: handshake, CRUD, watches, error codes. */

/*
 * A real C program against the Apache ZooKeeper C client. Usage: zk_c_client HOST:PORT.
 * Every step checks its result; the first mismatch prints what was expected and what came,
 * and the program exits 1. Exit 0 means every step matched ZooKeeper's documented behaviour.
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

/* How long any wait for the server may take before the program gives up. */
#define WAIT_SECONDS_MAX 10
#define EVENTS_MAX 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int connected = 0;

/* Watch events recorded by the watcher callbacks, in arrival order. */
struct event {
    int type;
    char path[256];
    const char *tag;
};
static struct event events[EVENTS_MAX];
static int event_count = 0;

static void fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

static void expect_rc(const char *step, int got, int want)
{
    if (got != want) {
        fail("%s: expected %d (%s), got %d (%s)", step, want, zerror(want), got, zerror(got));
    }
    printf("ok   %s -> %s\n", step, zerror(got));
}

static void expect_int(const char *what, long long got, long long want)
{
    if (got != want) {
        fail("%s: expected %lld, got %lld", what, want, got);
    }
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *context)
{
    (void)zh;
    (void)path;
    (void)context;
    if (type == ZOO_SESSION_EVENT) {
        pthread_mutex_lock(&lock);
        connected = (state == ZOO_CONNECTED_STATE);
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
}

/* Records one event of a one-shot watch; the context is a tag naming the watch. */
static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *context)
{
    (void)zh;
    (void)state;
    pthread_mutex_lock(&lock);
    if (event_count < EVENTS_MAX) {
        events[event_count].type = type;
        snprintf(events[event_count].path, sizeof(events[event_count].path), "%s",
                 path ? path : "");
        events[event_count].tag = (const char *)context;
        event_count++;
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static struct timespec deadline(void)
{
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += WAIT_SECONDS_MAX;
    return at;
}

static void wait_connected(void)
{
    struct timespec at = deadline();
    pthread_mutex_lock(&lock);
    while (!connected) {
        if (pthread_cond_timedwait(&changed, &lock, &at) == ETIMEDOUT) {
            pthread_mutex_unlock(&lock);
            fail("no ZOO_CONNECTED_STATE within %d s", WAIT_SECONDS_MAX);
        }
    }
    pthread_mutex_unlock(&lock);
    printf("ok   connected\n");
}

static void wait_events(int count)
{
    struct timespec at = deadline();
    pthread_mutex_lock(&lock);
    while (event_count < count) {
        if (pthread_cond_timedwait(&changed, &lock, &at) == ETIMEDOUT) {
            int seen = event_count;
            pthread_mutex_unlock(&lock);
            fail("expected %d watch events within %d s, got %d", count, WAIT_SECONDS_MAX, seen);
        }
    }
    pthread_mutex_unlock(&lock);
}

static void expect_event(int index, int type, const char *path, const char *tag)
{
    pthread_mutex_lock(&lock);
    struct event got = events[index];
    pthread_mutex_unlock(&lock);
    if (got.type != type || strcmp(got.path, path) != 0 || strcmp(got.tag, tag) != 0) {
        fail("event %d: expected type %d path %s watch %s, got type %d path %s watch %s",
             index, type, path, tag, got.type, got.path, got.tag);
    }
    printf("ok   event %d: type %d on %s (%s watch)\n", index, type, path, tag);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);

    zhandle_t *zh = zookeeper_init(argv[1], session_watcher, 10000, NULL, NULL, 0);
    if (zh == NULL) {
        fail("zookeeper_init: %s", strerror(errno));
    }
    wait_connected();
    const clientid_t *client = zoo_client_id(zh);
    if (client->client_id == 0) {
        fail("session id is 0 after connecting");
    }
    expect_int("negotiated session timeout", zoo_recv_timeout(zh), 10000);

    char base[64];
    char path[128];
    char created[128];
    char buffer[128];
    int buffer_len;
    struct Stat stat;
    struct Stat parent;
    struct String_vector children;

    snprintf(base, sizeof(base), "/c-client-%ld-%d", (long)time(NULL), (int)getpid());

    /* create, with the created path and Stat handed back */
    expect_rc("create base", zoo_create2(zh, base, "base", 4, &ZOO_OPEN_ACL_UNSAFE, 0, created,
                                         sizeof(created), &parent), ZOK);
    if (strcmp(created, base) != 0) {
        fail("create returned path %s, expected %s", created, base);
    }
    expect_int("base version", parent.version, 0);
    expect_int("base dataLength", parent.dataLength, 4);
    expect_int("base czxid == mzxid", parent.czxid, parent.mzxid);
    expect_int("base ephemeralOwner", parent.ephemeralOwner, 0);

    expect_rc("create existing", zoo_create(zh, base, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
              ZNODEEXISTS);
    snprintf(path, sizeof(path), "%s/missing/child", base);
    expect_rc("create under missing parent",
              zoo_create(zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZNONODE);

    /* a child watch on base, then create a child */
    expect_rc("get_children with watch",
              zoo_wget_children(zh, base, node_watcher, "child", &children), ZOK);
    expect_int("children of fresh node", children.count, 0);
    deallocate_String_vector(&children);

    snprintf(path, sizeof(path), "%s/node", base);
    expect_rc("create node", zoo_create(zh, path, "one", 3, &ZOO_OPEN_ACL_UNSAFE, 0, created,
                                        sizeof(created)), ZOK);
    wait_events(1);
    expect_event(0, ZOO_CHILD_EVENT, base, "child");

    /* read with a data watch, then set: the watch fires with ZOO_CHANGED_EVENT */
    buffer_len = sizeof(buffer);
    expect_rc("get with watch",
              zoo_wget(zh, path, node_watcher, "data", buffer, &buffer_len, &stat), ZOK);
    expect_int("data length read", buffer_len, 3);
    if (memcmp(buffer, "one", 3) != 0) {
        fail("get returned %.*s, expected one", buffer_len, buffer);
    }
    expect_int("node version", stat.version, 0);

    expect_rc("set with wrong version", zoo_set(zh, path, "two", 3, 5), ZBADVERSION);
    struct Stat after;
    expect_rc("set", zoo_set2(zh, path, "two!", 4, 0, &after), ZOK);
    expect_int("version after set", after.version, 1);
    expect_int("dataLength after set", after.dataLength, 4);
    expect_int("czxid unchanged by set", after.czxid, stat.czxid);
    if (after.mzxid <= stat.mzxid) {
        fail("mzxid did not grow: %lld then %lld", (long long)stat.mzxid, (long long)after.mzxid);
    }
    wait_events(2);
    expect_event(1, ZOO_CHANGED_EVENT, path, "data");

    buffer_len = sizeof(buffer);
    expect_rc("get after set", zoo_get(zh, path, 0, buffer, &buffer_len, &stat), ZOK);
    if (buffer_len != 4 || memcmp(buffer, "two!", 4) != 0) {
        fail("get after set returned %.*s, expected two!", buffer_len, buffer);
    }

    /* sequential and ephemeral children, listed */
    snprintf(path, sizeof(path), "%s/seq-", base);
    expect_rc("create sequential",
              zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, created,
                         sizeof(created)), ZOK);
    char want[160];
    snprintf(want, sizeof(want), "%s/seq-0000000001", base);
    if (strcmp(created, want) != 0) {
        fail("sequential create returned %s, expected %s", created, want);
    }
    snprintf(path, sizeof(path), "%s/eph", base);
    expect_rc("create ephemeral",
              zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
    expect_rc("exists ephemeral", zoo_exists(zh, path, 0, &stat), ZOK);
    expect_int("ephemeralOwner", stat.ephemeralOwner, client->client_id);
    snprintf(path, sizeof(path), "%s/eph/child", base);
    expect_rc("child of ephemeral",
              zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZNOCHILDRENFOREPHEMERALS);

    expect_rc("get_children", zoo_get_children(zh, base, 0, &children), ZOK);
    expect_int("children count", children.count, 3);
    int found = 0;
    for (int index = 0; index < children.count; index++) {
        const char *name = children.data[index];
        if (strcmp(name, "node") == 0 || strcmp(name, "seq-0000000001") == 0 ||
            strcmp(name, "eph") == 0) {
            found++;
        } else {
            fail("unexpected child %s", name);
        }
    }
    expect_int("expected children found", found, 3);
    deallocate_String_vector(&children);
    expect_rc("exists base", zoo_exists(zh, base, 0, &parent), ZOK);
    expect_int("base numChildren", parent.numChildren, 3);
    expect_int("base cversion", parent.cversion, 3);

    /* errors on missing nodes */
    snprintf(path, sizeof(path), "%s/nothing", base);
    buffer_len = sizeof(buffer);
    expect_rc("get missing", zoo_get(zh, path, 0, buffer, &buffer_len, &stat), ZNONODE);
    expect_rc("set missing", zoo_set(zh, path, "x", 1, -1), ZNONODE);
    expect_rc("delete missing", zoo_delete(zh, path, -1), ZNONODE);
    expect_rc("exists missing with watch",
              zoo_wexists(zh, path, node_watcher, "exists", &stat), ZNONODE);
    expect_rc("create watched", zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
    wait_events(3);
    expect_event(2, ZOO_CREATED_EVENT, path, "exists");

    /* deletes: a data watch sees ZOO_DELETED_EVENT; a non-empty node refuses */
    snprintf(path, sizeof(path), "%s/node", base);
    buffer_len = sizeof(buffer);
    expect_rc("get node with watch",
              zoo_wget(zh, path, node_watcher, "data", buffer, &buffer_len, &stat), ZOK);
    expect_rc("delete with wrong version", zoo_delete(zh, path, 0), ZBADVERSION);
    expect_rc("delete node", zoo_delete(zh, path, 1), ZOK);
    wait_events(4);
    expect_event(3, ZOO_DELETED_EVENT, path, "data");
    expect_rc("delete non-empty base", zoo_delete(zh, base, -1), ZNOTEMPTY);

    /* a multi: all or nothing */
    char multi_path[128];
    snprintf(multi_path, sizeof(multi_path), "%s/multi", base);
    zoo_op_t ops[2];
    zoo_op_result_t results[2];
    zoo_create_op_init(&ops[0], multi_path, "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    zoo_create_op_init(&ops[1], base, "b", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    expect_rc("failing multi", zoo_multi(zh, 2, ops, results), ZNODEEXISTS);
    expect_int("multi op 0 rolled back", results[0].err, ZOK);
    expect_int("multi op 1 failed", results[1].err, ZNODEEXISTS);
    expect_rc("multi left nothing", zoo_exists(zh, multi_path, 0, &stat), ZNONODE);

    /* clean up: children then base */
    const char *names[] = {"seq-0000000001", "eph", "nothing"};
    for (size_t index = 0; index < sizeof(names) / sizeof(names[0]); index++) {
        snprintf(path, sizeof(path), "%s/%s", base, names[index]);
        expect_rc("delete child", zoo_delete(zh, path, -1), ZOK);
    }
    expect_rc("delete base", zoo_delete(zh, base, -1), ZOK);
    expect_rc("base gone", zoo_exists(zh, base, 0, &stat), ZNONODE);

    /* no stray events arrived */
    usleep(200 * 1000);
    pthread_mutex_lock(&lock);
    int total = event_count;
    pthread_mutex_unlock(&lock);
    expect_int("total watch events", total, 4);

    expect_rc("close", zookeeper_close(zh), ZOK);
    printf("PASS\n");
    return 0;
}
