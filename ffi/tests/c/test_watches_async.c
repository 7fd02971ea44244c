/* Guards watches and completions across the C boundary: events lost, duplicated or out of
 * order, a completion that runs twice or never, memory of an answer that leaks, a callback
 * that closes its own client and deadlocks, and a session expiry nobody hears of. Completions
 * and closes from callbacks run both in process and over TCP. */
#include <pthread.h>

#include "check.h"

#define EVENTS_MAX 64

/* What a watcher or completion saw, in order: "type state path" or "done rc ...". */
typedef struct recorder {
  pthread_mutex_t lock;
  char lines[EVENTS_MAX][128];
  int count;
} recorder;

static void record(recorder *r, const char *line) {
  pthread_mutex_lock(&r->lock);
  if (r->count < EVENTS_MAX) snprintf(r->lines[r->count++], 128, "%s", line);
  pthread_mutex_unlock(&r->lock);
}

static int recorded(recorder *r) {
  pthread_mutex_lock(&r->lock);
  int count = r->count;
  pthread_mutex_unlock(&r->lock);
  return count;
}

static void reset(recorder *r) {
  pthread_mutex_lock(&r->lock);
  r->count = 0;
  pthread_mutex_unlock(&r->lock);
}

static void on_event(void *userdata, const zk_watch_event *event) {
  char line[128];
  snprintf(line, sizeof line, "event %d %d %s", event->event_type, event->state, event->path);
  record((recorder *)userdata, line);
}

static void on_done(void *userdata, zk_result rc, const zk_reply *reply) {
  char line[128];
  if (reply == NULL) {
    snprintf(line, sizeof line, "done %d", rc);
  } else if (reply->data != NULL) {
    snprintf(line, sizeof line, "done %d data %.*s v%d", rc, (int)reply->data->len,
             (const char *)reply->data->data, reply->stat->version);
  } else if (reply->children != NULL) {
    snprintf(line, sizeof line, "done %d children %zu", rc, reply->children->count);
  } else if (reply->multi_results != NULL) {
    snprintf(line, sizeof line, "done %d results %zu", rc, reply->multi_results->count);
  } else if (reply->read_results != NULL) {
    snprintf(line, sizeof line, "done %d reads %zu", rc, reply->read_results->count);
  } else if (reply->acl != NULL) {
    snprintf(line, sizeof line, "done %d acl %zu a%d", rc, reply->acl->count, reply->stat->aversion);
  } else if (reply->identities != NULL) {
    snprintf(line, sizeof line, "done %d identities %zu", rc, reply->identities->count);
  } else if (reply->path != NULL) {
    snprintf(line, sizeof line, "done %d path %s", rc, reply->path);
  } else if (reply->stat != NULL) {
    snprintf(line, sizeof line, "done %d stat v%d", rc, reply->stat->version);
  } else {
    snprintf(line, sizeof line, "done %d number %d", rc, reply->number);
  }
  record((recorder *)userdata, line);
}

/* A second watcher function: a pair (function, userdata) is one watcher. */
static void on_event_elsewhere(void *userdata, const zk_watch_event *event) {
  on_event(userdata, event);
}

static int has_line(recorder *r, int index, const char *expected) {
  pthread_mutex_lock(&r->lock);
  int same = index < r->count && strcmp(r->lines[index], expected) == 0;
  if (!same)
    fprintf(stderr, "line %d: got \"%s\", expected \"%s\"\n", index,
            index < r->count ? r->lines[index] : "(none)", expected);
  pthread_mutex_unlock(&r->lock);
  return same;
}

static recorder events = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0};
static recorder defaults = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0};

static void test_one_shot_and_persistent_watches(zk_server *server) {
  zk_client_options options;
  zk_client_options_init(&options);
  options.watcher = on_event;
  options.watcher_userdata = &defaults;
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, &options, &client));
  CHECK(WAIT_FOR(recorded(&defaults) == 1, 5000));
  CHECK(has_line(&defaults, 0, "event -1 3 ")); /* SyncConnected */

  /* a one-shot data watch fires once; the same (callback, userdata) set twice fires once */
  EXPECT_OK(zk_create(client, "/w", (const uint8_t *)"a", 1, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  zk_bytes *data = NULL;
  EXPECT_OK(zk_get(client, "/w", on_event, &events, &data, NULL));
  zk_bytes_free(data);
  EXPECT_OK(zk_exists(client, "/w", on_event, &events, NULL));
  EXPECT_OK(zk_set(client, "/w", (const uint8_t *)"b", 1, -1, NULL));
  EXPECT_OK(zk_set(client, "/w", (const uint8_t *)"c", 1, -1, NULL));
  CHECK(WAIT_FOR(recorded(&events) >= 1, 5000));
  sleep_ms(50);
  CHECK(recorded(&events) == 1);
  CHECK(has_line(&events, 0, "event 3 3 /w"));

  /* exists on a missing znode leaves a watch that fires on creation */
  reset(&events);
  EXPECT_RC(zk_exists(client, "/later", on_event, &events, NULL), ZK_NONODE);
  EXPECT_OK(zk_create(client, "/later", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  CHECK(WAIT_FOR(recorded(&events) == 1, 5000) && has_line(&events, 0, "event 1 3 /later"));

  /* child watch */
  reset(&events);
  zk_strings *children = NULL;
  EXPECT_OK(zk_get_children(client, "/w", on_event, &events, &children, NULL));
  zk_strings_free(children);
  EXPECT_OK(zk_create(client, "/w/kid", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  CHECK(WAIT_FOR(recorded(&events) == 1, 5000) && has_line(&events, 0, "event 4 3 /w"));

  /* a persistent recursive watch hears every descendant until removed */
  reset(&events);
  EXPECT_RC(zk_add_watch(client, "/w", ZK_ADD_WATCH_PERSISTENT_RECURSIVE, NULL, NULL),
            ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_add_watch(client, "/w", 9, on_event, &events), ZK_INVALID_ARGUMENT);
  EXPECT_OK(zk_add_watch(client, "/w", ZK_ADD_WATCH_PERSISTENT_RECURSIVE, on_event, &events));
  EXPECT_OK(zk_set(client, "/w/kid", (const uint8_t *)"x", 1, -1, NULL));
  EXPECT_OK(zk_delete(client, "/w/kid", -1));
  CHECK(WAIT_FOR(recorded(&events) == 2, 5000));
  CHECK(has_line(&events, 0, "event 3 3 /w/kid"));
  CHECK(has_line(&events, 1, "event 2 3 /w/kid"));
  EXPECT_RC(zk_remove_watches(client, "/w", ZK_WATCHER_PERSISTENT_RECURSIVE,
                              on_event_elsewhere, &events),
            ZK_NOWATCHER); /* that pair never watched anything */
  EXPECT_RC(zk_remove_watches(client, "/w", 42, NULL, NULL), ZK_INVALID_ARGUMENT);
  EXPECT_OK(zk_remove_watches(client, "/w", ZK_WATCHER_PERSISTENT_RECURSIVE, on_event, &events));
  CHECK(WAIT_FOR(recorded(&events) == 3, 5000) && has_line(&events, 2, "event 7 3 /w"));
  EXPECT_OK(zk_set(client, "/w", NULL, 0, -1, NULL));
  sleep_ms(50);
  CHECK(recorded(&events) == 3);
  EXPECT_RC(zk_remove_watches(client, "/w", ZK_WATCHER_ANY, NULL, NULL), ZK_NOWATCHER);

  /* a persistent watch and removal of all data watchers */
  reset(&events);
  EXPECT_OK(zk_add_watch(client, "/w", ZK_ADD_WATCH_PERSISTENT, on_event, &events));
  EXPECT_OK(zk_create(client, "/w/a", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  EXPECT_OK(zk_set(client, "/w", NULL, 0, -1, NULL));
  CHECK(WAIT_FOR(recorded(&events) == 2, 5000));
  CHECK(has_line(&events, 0, "event 4 3 /w") && has_line(&events, 1, "event 3 3 /w"));
  EXPECT_OK(zk_remove_watches(client, "/w", ZK_WATCHER_PERSISTENT, NULL, NULL));
  CHECK(WAIT_FOR(recorded(&events) == 3, 5000) && has_line(&events, 2, "event 7 3 /w"));

  /* closing: the default watcher hears Closed (7) */
  reset(&defaults);
  EXPECT_OK(zk_client_close(client));
  CHECK(WAIT_FOR(recorded(&defaults) == 1, 5000) && has_line(&defaults, 0, "event -1 7 "));
  zk_client_free(client);
}

static void test_every_async_operation(zk_server *server, connect_fn connect) {
  zk_client *client = NULL;
  REQUIRE_OK(connect(server, NULL, &client));
  recorder *r = &events;
  reset(r);
  /* what the tree holds already, for the answers about "/" */
  zk_strings *root = NULL;
  int32_t descendants = 0;
  REQUIRE_OK(zk_get_children(client, "/", NULL, NULL, &root, NULL));
  REQUIRE_OK(zk_get_all_children_number(client, "/", &descendants));
  char root_children[32], all_children[32];
  snprintf(root_children, sizeof root_children, "done 0 children %zu", root->count + 1);
  snprintf(all_children, sizeof all_children, "done 0 number %d", descendants + 1);
  zk_strings_free(root);
  /* a watch event of a change runs before the completion of the write that made it */
  EXPECT_OK(zk_create_async(client, "/a", (const uint8_t *)"1", 1, NULL, 0, ZK_PERSISTENT, -1,
                            on_done, r));
  EXPECT_OK(zk_exists_async(client, "/a", on_event, r, on_done, r));
  EXPECT_OK(zk_set_async(client, "/a", (const uint8_t *)"22", 2, 0, on_done, r));
  EXPECT_OK(zk_get_async(client, "/a", NULL, NULL, on_done, r));
  EXPECT_OK(zk_get_children_async(client, "/", NULL, NULL, on_done, r));
  EXPECT_OK(zk_get_acl_async(client, "/a", on_done, r));
  zk_acl open = {ZK_PERM_ALL, "world", "anyone"};
  EXPECT_OK(zk_set_acl_async(client, "/a", &open, 1, 0, on_done, r));
  zk_op ops[1] = {{.kind = ZK_OP_CHECK, .path = "/a", .version = 9}};
  EXPECT_OK(zk_multi_async(client, ops, 1, on_done, r));
  zk_read_op reads[1] = {{ZK_OP_GET_DATA, "/a"}};
  EXPECT_OK(zk_multi_read_async(client, reads, 1, on_done, r));
  EXPECT_OK(zk_sync_async(client, "/a", on_done, r));
  EXPECT_OK(zk_add_auth_async(client, "digest", (const uint8_t *)"u:p", 3, on_done, r));
  EXPECT_OK(zk_whoami_async(client, on_done, r));
  EXPECT_OK(zk_get_ephemerals_async(client, "/", on_done, r));
  EXPECT_OK(zk_get_all_children_number_async(client, "/", on_done, r));
  EXPECT_OK(zk_add_watch_async(client, "/a", ZK_ADD_WATCH_PERSISTENT, on_event, r, on_done, r));
  EXPECT_OK(zk_remove_watches_async(client, "/a", ZK_WATCHER_PERSISTENT, NULL, NULL, on_done, r));
  EXPECT_OK(zk_delete_async(client, "/a", -1, on_done, r));
  EXPECT_OK(zk_get_async(client, "/a", NULL, NULL, on_done, r));
  const char *expected[] = {
      "done 0 path /a",        "done 0 stat v0",       "event 3 3 /a",
      "done 0 stat v1",        "done 0 data 22 v1",    root_children,
      "done 0 acl 1 a0",       "done 0 stat v1",       "done -103 results 1",
      "done 0 reads 1",        "done 0 path /a",       "done 0 number 0",
      "done 0 identities 2",   "done 0 children 0",    all_children,
      "done 0 number 0",       "event 7 3 /a",         "done 0 number 0",
      "done 0 number 0",       "done -101",
  };
  int expected_count = (int)(sizeof expected / sizeof expected[0]);
  CHECK(WAIT_FOR(recorded(r) == expected_count, 5000));
  for (int i = 0; i < expected_count; i++) CHECK(has_line(r, i, expected[i]));

  /* errors found before sending answer at once, and no completion runs */
  reset(r);
  EXPECT_RC(zk_get_async(client, "bad", NULL, NULL, on_done, r), ZK_OK);
  EXPECT_RC(zk_get_async(client, NULL, NULL, NULL, on_done, r), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_get_async(client, "/a", NULL, NULL, NULL, r), ZK_NULL_ARGUMENT);
  CHECK(WAIT_FOR(recorded(r) == 1, 5000) && has_line(r, 0, "done -8"));
  EXPECT_OK(zk_client_close(client));
  EXPECT_RC(zk_get_async(client, "/a", NULL, NULL, on_done, r), ZK_CLOSED_HANDLE);
  sleep_ms(20);
  CHECK(recorded(r) == 1);
  zk_client_free(client);
}

/* A watcher that closes the client it watches, from the dispatcher thread. */
typedef struct self_closer {
  zk_client *client;
  int close_rc;
  int calls;
} self_closer;

static void close_own_client(void *userdata, const zk_watch_event *event) {
  self_closer *closer = userdata;
  if (event->event_type == 2 /* deleted */) {
    closer->close_rc = zk_client_close(closer->client);
  }
  __atomic_add_fetch(&closer->calls, 1, __ATOMIC_SEQ_CST);
}

static void close_from_completion(void *userdata, zk_result rc, const zk_reply *reply) {
  (void)rc;
  (void)reply;
  self_closer *closer = userdata;
  closer->close_rc = zk_client_close(closer->client);
  __atomic_add_fetch(&closer->calls, 1, __ATOMIC_SEQ_CST);
}

static void test_callbacks_close_their_own_client(zk_server *server, connect_fn connect) {
  self_closer closer = {NULL, -1, 0};
  REQUIRE_OK(connect(server, NULL, &closer.client));
  EXPECT_OK(zk_create(closer.client, "/doomed", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  EXPECT_OK(zk_exists(closer.client, "/doomed", close_own_client, &closer, NULL));
  EXPECT_OK(zk_delete(closer.client, "/doomed", -1));
  CHECK(WAIT_FOR(closer.close_rc != -1, 5000));
  CHECK(closer.close_rc == ZK_OK);
  /* its one-shot watch was used up, so it does not also hear Closed */
  sleep_ms(50);
  CHECK(__atomic_load_n(&closer.calls, __ATOMIC_SEQ_CST) == 1);
  EXPECT_RC(zk_exists(closer.client, "/", NULL, NULL, NULL), ZK_CLOSED_HANDLE);
  zk_client_free(closer.client);

  self_closer second = {NULL, -1, 0};
  REQUIRE_OK(connect(server, NULL, &second.client));
  EXPECT_OK(zk_sync_async(second.client, "/", close_from_completion, &second));
  CHECK(WAIT_FOR(second.close_rc != -1, 5000) && second.close_rc == ZK_OK);
  zk_client_free(second.client);
}

static void test_session_expiry(void) {
  zk_server_options server_options;
  zk_server_options_init(&server_options);
  server_options.tick_ms = 100;
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(&server_options, &server));
  recorder *r = &defaults;
  reset(r);
  zk_client_options options;
  zk_client_options_init(&options);
  options.session_timeout_ms = 400;
  options.watcher = on_event;
  options.watcher_userdata = r;
  zk_client *doomed = NULL, *observer = NULL;
  REQUIRE_OK(zk_server_connect(server, &options, &doomed));
  REQUIRE_OK(zk_server_connect(server, NULL, &observer));
  EXPECT_OK(zk_create(doomed, "/owned", NULL, 0, NULL, 0, ZK_EPHEMERAL, -1, NULL, NULL));
  reset(&events);
  EXPECT_OK(zk_exists(observer, "/owned", on_event, &events, NULL));
  long cut_at = now_ms();
  EXPECT_OK(zk_client_set_attached(doomed, false));
  CHECK(WAIT_FOR(recorded(&events) == 1, 5000) && has_line(&events, 0, "event 2 3 /owned"));
  CHECK(now_ms() - cut_at >= 400);
  CHECK(WAIT_FOR(recorded(r) == 2, 5000));
  CHECK(has_line(r, 0, "event -1 3 ") && has_line(r, 1, "event -1 -112 "));
  int32_t state = -1;
  EXPECT_OK(zk_client_state(doomed, &state));
  CHECK(state == ZK_STATE_EXPIRED);
  EXPECT_RC(zk_exists(doomed, "/", NULL, NULL, NULL), ZK_SESSIONEXPIRED);
  zk_client_free(doomed);
  zk_client_free(observer);
  zk_server_free(server);
}

/* Completions are answered from the read cache as blocking calls are: a second async read of
 * each kind is a hit, and still runs on the dispatcher with the right answer. */
static void test_async_reads_use_the_cache(zk_server *server, connect_fn connect) {
  zk_client_options options;
  zk_client_options_init(&options);
  options.read_cache_entries_max = 16;
  options.read_cache_ttl_ms = -1;
  zk_client *client = NULL;
  EXPECT_RC(connect(server, &options, &client), ZK_INVALID_ARGUMENT);
  CHECK(client == NULL);
  options.read_cache_ttl_ms = 60000;
  REQUIRE_OK(connect(server, &options, &client));
  EXPECT_OK(zk_create(client, "/cached", (const uint8_t *)"c", 1, NULL, 0, ZK_PERSISTENT, -1, NULL,
                      NULL));
  recorder *r = &events;
  reset(r);
  for (int round = 0; round < 2; round++) {
    EXPECT_OK(zk_get_async(client, "/cached", NULL, NULL, on_done, r));
    EXPECT_OK(zk_exists_async(client, "/cached", NULL, NULL, on_done, r));
    EXPECT_OK(zk_get_children_async(client, "/cached", NULL, NULL, on_done, r));
    /* the first round's answers are stored before the second round asks */
    CHECK(WAIT_FOR(recorded(r) == 3 * (round + 1), 5000));
  }
  for (int round = 0; round < 2; round++) {
    CHECK(has_line(r, 3 * round, "done 0 data c v0"));
    CHECK(has_line(r, 3 * round + 1, "done 0 stat v0"));
    CHECK(has_line(r, 3 * round + 2, "done 0 children 0"));
  }
  zk_read_cache_stats stats;
  EXPECT_OK(zk_client_read_cache_stats(client, &stats));
  CHECK(stats.data_hits == 1 && stats.data_misses == 1);
  CHECK(stats.exists_hits == 1 && stats.exists_misses == 1);
  CHECK(stats.children_hits == 1 && stats.children_misses == 1);
  CHECK(stats.hits == 3 && stats.misses == 3 && stats.entries == 3 && stats.bytes == 1);
  CHECK(stats.expirations == 0 && stats.watches_released == 0);
  EXPECT_OK(zk_delete(client, "/cached", -1));
  zk_client_free(client);
}

int main(void) {
  zk_server *server = start_tcp_server();
  test_one_shot_and_persistent_watches(server);
  connect_fn connects[] = {zk_server_connect, connect_tcp};
  for (int i = 0; i < 2; i++) {
    test_every_async_operation(server, connects[i]);
    test_callbacks_close_their_own_client(server, connects[i]);
    test_async_reads_use_the_cache(server, connects[i]);
  }
  zk_server_free(server);
  test_session_expiry();
  return finish("test_watches_async");
}
