/* Guards the C boundary against bad input in every family of functions: a length no memory
 * can hold (a negative length cast to size_t aborted the process inside the library), a
 * timeout no clock can reach, invalid UTF-8 in any string argument (node operations,
 * batches, session calls, recipes, servers), and recipe handles used after their client was
 * closed or freed: a result code each time, never a crash, an abort or a leak. */
#include <stdint.h>

#include "check.h"

static const char BAD[] = {'/', (char)0xff, (char)0xfe, 0};

static void test_lengths_no_memory_can_hold(zk_client *client) {
  uint8_t bytes[4] = {0};
  zk_acl open = {ZK_PERM_ALL, "world", "anyone"};
  EXPECT_RC(zk_set(client, "/", bytes, SIZE_MAX, -1, NULL), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_set(client, "/", bytes, (size_t)PTRDIFF_MAX + 1, -1, NULL), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_create(client, "/n", bytes, SIZE_MAX, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_create(client, "/n", NULL, 0, &open, SIZE_MAX / 2, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_set_acl(client, "/", &open, SIZE_MAX / sizeof open, -1, NULL),
            ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_add_auth(client, "digest", bytes, SIZE_MAX), ZK_INVALID_ARGUMENT);
  zk_op op = {.kind = ZK_OP_CREATE, .path = "/n", .data = bytes, .data_len = SIZE_MAX,
              .mode = ZK_PERSISTENT, .version = -1};
  zk_multi_results *results = NULL;
  EXPECT_RC(zk_multi(client, &op, 1, &results), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_multi(client, &op, SIZE_MAX / 4, &results), ZK_INVALID_ARGUMENT);
  zk_read_op read = {ZK_OP_GET_DATA, "/"};
  zk_read_results *reads = NULL;
  EXPECT_RC(zk_multi_read(client, &read, SIZE_MAX / 2, &reads), ZK_INVALID_ARGUMENT);
  uint8_t password[16];
  EXPECT_OK(zk_client_session_password(client, password, SIZE_MAX)); /* only 16 are written */
  /* nothing was created on the way */
  EXPECT_RC(zk_exists(client, "/n", NULL, NULL, NULL), ZK_NONODE);
}

static void test_timeouts_no_clock_can_reach(zk_client *client) {
  zk_lock *lock = NULL;
  zk_leader_latch *latch = NULL;
  REQUIRE_OK(zk_lock_new(client, "/far/lock", "x", ZK_LOCK_EXCLUSIVE, &lock));
  REQUIRE_OK(zk_leader_latch_new(client, "/far/latch", "x", NULL, NULL, &latch));
  bool acquired = false, leader = false, released = false;
  EXPECT_OK(zk_lock_acquire(lock, true, INT64_MAX, &acquired));
  CHECK(acquired);
  EXPECT_OK(zk_lock_release(lock, &released));
  EXPECT_OK(zk_leader_latch_start(latch));
  EXPECT_OK(zk_leader_latch_await(latch, INT64_MAX, &leader));
  CHECK(leader);
  zk_lock_free(lock);
  zk_leader_latch_free(latch);
}

static void on_done(void *userdata, zk_result rc, const zk_reply *reply) {
  (void)userdata;
  (void)rc;
  (void)reply;
}

static void never_leads(void *userdata) { (void)userdata; }

static void on_event(void *userdata, const zk_watch_event *event) {
  (void)userdata;
  (void)event;
}

static void test_invalid_utf8_in_every_family(zk_server *server, zk_client *client) {
  /* node operations */
  EXPECT_RC(zk_delete(client, BAD, -1), ZK_INVALID_UTF8);
  EXPECT_RC(zk_exists(client, BAD, NULL, NULL, NULL), ZK_INVALID_UTF8);
  zk_bytes *data = NULL;
  EXPECT_RC(zk_get(client, BAD, NULL, NULL, &data, NULL), ZK_INVALID_UTF8);
  EXPECT_RC(zk_set(client, BAD, NULL, 0, -1, NULL), ZK_INVALID_UTF8);
  zk_strings *children = NULL;
  EXPECT_RC(zk_get_children(client, BAD, NULL, NULL, &children, NULL), ZK_INVALID_UTF8);
  EXPECT_RC(zk_get_async(client, BAD, NULL, NULL, on_done, NULL), ZK_INVALID_UTF8);
  /* batches and ACLs */
  zk_acl_list *acl = NULL;
  EXPECT_RC(zk_get_acl(client, BAD, &acl, NULL), ZK_INVALID_UTF8);
  zk_acl bad_scheme = {ZK_PERM_ALL, BAD + 1, "anyone"};
  zk_acl bad_id = {ZK_PERM_ALL, "world", BAD};
  EXPECT_RC(zk_set_acl(client, "/", &bad_scheme, 1, -1, NULL), ZK_INVALID_UTF8);
  EXPECT_RC(zk_create(client, "/n", NULL, 0, &bad_id, 1, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_INVALID_UTF8);
  zk_op op = {.kind = ZK_OP_DELETE, .path = BAD, .version = -1};
  zk_multi_results *results = NULL;
  EXPECT_RC(zk_multi(client, &op, 1, &results), ZK_INVALID_UTF8);
  zk_read_op read = {ZK_OP_GET_CHILDREN, BAD};
  zk_read_results *reads = NULL;
  EXPECT_RC(zk_multi_read(client, &read, 1, &reads), ZK_INVALID_UTF8);
  /* session calls */
  EXPECT_RC(zk_sync(client, BAD), ZK_INVALID_UTF8);
  EXPECT_RC(zk_add_auth(client, BAD, (const uint8_t *)"u:p", 3), ZK_INVALID_UTF8);
  EXPECT_RC(zk_add_watch(client, BAD, ZK_ADD_WATCH_PERSISTENT, on_event, NULL), ZK_INVALID_UTF8);
  EXPECT_RC(zk_remove_watches(client, BAD, ZK_WATCHER_ANY, NULL, NULL), ZK_INVALID_UTF8);
  EXPECT_RC(zk_get_ephemerals(client, BAD, &children), ZK_INVALID_UTF8);
  int32_t number = 0;
  EXPECT_RC(zk_get_all_children_number(client, BAD, &number), ZK_INVALID_UTF8);
  zk_client *other = NULL;
  EXPECT_RC(zk_client_connect(BAD, NULL, &other), ZK_INVALID_UTF8);
  /* recipes: path and identifier */
  zk_lock *lock = NULL;
  EXPECT_RC(zk_lock_new(client, BAD, "x", ZK_LOCK_EXCLUSIVE, &lock), ZK_INVALID_UTF8);
  EXPECT_RC(zk_lock_new(client, "/l", BAD, ZK_LOCK_EXCLUSIVE, &lock), ZK_INVALID_UTF8);
  zk_semaphore *semaphore = NULL;
  EXPECT_RC(zk_semaphore_new(client, BAD, "x", 1, &semaphore), ZK_INVALID_UTF8);
  zk_leader_election *election = NULL;
  EXPECT_RC(zk_leader_election_new(client, "/e", BAD, &election), ZK_INVALID_UTF8);
  zk_leader_latch *latch = NULL;
  EXPECT_RC(zk_leader_latch_new(client, BAD, "x", NULL, NULL, &latch), ZK_INVALID_UTF8);
  /* servers */
  zk_server_options options;
  zk_server_options_init(&options);
  options.data_dir = BAD;
  zk_server *started = NULL;
  EXPECT_RC(zk_server_start(&options, &started), ZK_INVALID_UTF8);
  options.data_dir = NULL;
  options.port = 0;
  options.host = BAD;
  EXPECT_RC(zk_server_start(&options, &started), ZK_INVALID_UTF8);
  EXPECT_RC(zk_server_start_from_config(BAD, &started), ZK_INVALID_UTF8);
  (void)server;
}

static void test_recipes_after_their_client_ends(zk_server *server) {
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  zk_lock *lock = NULL;
  zk_semaphore *semaphore = NULL;
  zk_leader_election *election = NULL;
  zk_leader_latch *latch = NULL;
  REQUIRE_OK(zk_lock_new(client, "/after/lock", "x", ZK_LOCK_EXCLUSIVE, &lock));
  REQUIRE_OK(zk_semaphore_new(client, "/after/semaphore", "x", 1, &semaphore));
  REQUIRE_OK(zk_leader_election_new(client, "/after/election", "x", &election));
  REQUIRE_OK(zk_leader_latch_new(client, "/after/latch", "x", NULL, NULL, &latch));
  bool acquired = false;
  EXPECT_OK(zk_lock_acquire(lock, true, 1000, &acquired));
  CHECK(acquired);
  EXPECT_OK(zk_leader_latch_start(latch));

  EXPECT_OK(zk_client_close(client));
  zk_lock *late = NULL;
  EXPECT_RC(zk_lock_new(client, "/after/lock", "y", ZK_LOCK_EXCLUSIVE, &late), ZK_CLOSED_HANDLE);
  /* the lock went with the session */
  EXPECT_OK(zk_lock_is_acquired(lock, &acquired));
  CHECK(!acquired);
  zk_client_free(client);

  bool released = true;
  EXPECT_OK(zk_lock_release(lock, &released));
  CHECK(!released);
  EXPECT_RC(zk_lock_acquire(lock, true, 1000, &acquired), ZK_SESSIONEXPIRED);
  EXPECT_RC(zk_lock_acquire(lock, false, 0, &acquired), ZK_SESSIONEXPIRED);
  zk_strings *names = NULL;
  EXPECT_RC(zk_lock_contenders(lock, &names), ZK_SESSIONEXPIRED);
  EXPECT_RC(zk_semaphore_acquire(semaphore, true, 1000, &acquired), ZK_SESSIONEXPIRED);
  EXPECT_RC(zk_semaphore_lease_holders(semaphore, &names), ZK_SESSIONEXPIRED);
  EXPECT_OK(zk_semaphore_release(semaphore, &released));
  CHECK(!released);
  bool led = true;
  EXPECT_RC(zk_leader_election_run(election, never_leads, NULL, &led),
            ZK_SESSIONEXPIRED);
  bool leading = true;
  EXPECT_OK(zk_leader_latch_await(latch, 100, &leading));
  CHECK(!leading);
  EXPECT_RC(zk_leader_latch_participants(latch, &names), ZK_SESSIONEXPIRED);
  EXPECT_OK(zk_leader_latch_close(latch, true));
  zk_lock_free(lock);
  zk_semaphore_free(semaphore);
  zk_leader_election_free(election);
  zk_leader_latch_free(latch);
}

int main(void) {
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(NULL, &server));
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  test_lengths_no_memory_can_hold(client);
  test_timeouts_no_clock_can_reach(client);
  test_invalid_utf8_in_every_family(server, client);
  zk_client_free(client);
  test_recipes_after_their_client_ends(server);
  zk_server_free(server);
  return finish("test_bad_input");
}
