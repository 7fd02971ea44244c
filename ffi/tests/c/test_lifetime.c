/* Guards the end of a handle's life: a watcher or completion that runs after zk_client_free
 * returned (a use after free of the caller's userdata, which valgrind reports), a completion
 * of a call still on its way that never runs (its userdata leaks), a free from inside a
 * callback that skips the callbacks queued behind it or deadlocks, and a latch listener that
 * runs after zk_leader_latch_free returned. In process and over TCP. */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

/* Heap userdata that every callback writes to: freed right after zk_client_free. */
typedef struct counter {
  atomic_int calls;
} counter;

static void count_event(void *userdata, const zk_watch_event *event) {
  (void)event;
  atomic_fetch_add(&((counter *)userdata)->calls, 1);
}

static void count_completion(void *userdata, zk_result rc, const zk_reply *reply) {
  (void)rc;
  (void)reply;
  atomic_fetch_add(&((counter *)userdata)->calls, 1);
}

/* Each completion owns its userdata and frees it: one that never runs leaks. */
typedef struct owned_call {
  atomic_int *ran;
} owned_call;

static void free_own_userdata(void *userdata, zk_result rc, const zk_reply *reply) {
  (void)rc;
  (void)reply;
  owned_call *call = userdata;
  atomic_fetch_add(call->ran, 1);
  free(call);
}

static void test_no_callback_after_free(zk_server *server, connect_fn connect) {
  for (int round = 0; round < 10; round++) {
    counter *seen = calloc(1, sizeof *seen);
    zk_client_options options;
    zk_client_options_init(&options);
    options.watcher = count_event;
    options.watcher_userdata = seen;
    zk_client *client = NULL;
    REQUIRE_OK(connect(server, &options, &client));
    /* events and completions on their way when the handle goes */
    EXPECT_RC(zk_exists(client, "/lifetime", count_event, seen, NULL), ZK_NONODE);
    EXPECT_OK(zk_create_async(client, "/lifetime", NULL, 0, NULL, 0, ZK_EPHEMERAL, -1,
                              count_completion, seen));
    EXPECT_OK(zk_sync_async(client, "/", count_completion, seen));
    zk_client_free(client);
    /* SyncConnected and Closed to the default watcher, the creation to the exists watcher
     * and both completions: all ran before the free returned */
    CHECK(atomic_load(&seen->calls) == 5);
    free(seen); /* valgrind: any later callback reads freed memory */
  }
  sleep_ms(100);
}

static void test_pending_completions_run_before_free_returns(zk_server *server,
                                                              connect_fn connect) {
  enum { CALLS = 50 };
  atomic_int ran = 0;
  zk_client *client = NULL;
  REQUIRE_OK(connect(server, NULL, &client));
  for (int i = 0; i < CALLS; i++) {
    owned_call *call = malloc(sizeof *call);
    call->ran = &ran;
    EXPECT_OK(zk_get_async(client, "/", NULL, NULL, free_own_userdata, call));
  }
  zk_client_free(client);
  CHECK(atomic_load(&ran) == CALLS);
}

/* A callback that frees its own client: the callbacks queued behind it run inside the free,
 * and none runs after it. */
typedef struct self_freer {
  zk_client *client;
  atomic_int calls;
  atomic_int calls_when_freed;
  atomic_bool freeing;
  atomic_bool freed;
  atomic_int late_calls;
} self_freer;

static self_freer freer;

static void free_own_client(void *userdata, const zk_watch_event *event) {
  (void)userdata;
  if (atomic_load(&freer.freed)) atomic_fetch_add(&freer.late_calls, 1);
  atomic_fetch_add(&freer.calls, 1);
  if (event->event_type == 2 /* deleted */ && !atomic_exchange(&freer.freeing, true)) {
    zk_client_free(freer.client);
    atomic_store(&freer.calls_when_freed, atomic_load(&freer.calls));
    atomic_store(&freer.freed, true);
  }
}

static void test_free_from_a_callback(zk_server *server, connect_fn connect) {
  memset(&freer, 0, sizeof freer);
  REQUIRE_OK(connect(server, NULL, &freer.client));
  EXPECT_OK(zk_create(freer.client, "/doomed", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  /* two watchers hear the deletion: the first frees the client */
  EXPECT_OK(zk_exists(freer.client, "/doomed", free_own_client, (void *)1, NULL));
  EXPECT_OK(zk_add_watch(freer.client, "/", ZK_ADD_WATCH_PERSISTENT_RECURSIVE, free_own_client,
                         (void *)2));
  EXPECT_OK(zk_delete(freer.client, "/doomed", -1));
  CHECK(WAIT_FOR(atomic_load(&freer.calls_when_freed) > 0, 5000));
  sleep_ms(100);
  /* the deletion reached both watchers, and the recursive one heard Closed, inside the free */
  CHECK(atomic_load(&freer.calls_when_freed) == 3);
  CHECK(atomic_load(&freer.calls) == 3);
  CHECK(atomic_load(&freer.late_calls) == 0);
}

/* A latch listener busy when the latch is freed: the free waits for it, and its userdata
 * may go right after. */
typedef struct listener_state {
  atomic_bool entered;
  atomic_int calls;
} listener_state;

static void slow_listener(void *userdata, bool leader) {
  (void)leader;
  listener_state *state = userdata;
  atomic_store(&state->entered, true);
  sleep_ms(200);
  atomic_fetch_add(&state->calls, 1);
}

static zk_leader_latch *self_freeing_latch;

static long child_count(zk_client *client, const char *path) {
  zk_strings *children = NULL;
  if (zk_get_children(client, path, NULL, NULL, &children, NULL) != ZK_OK) return -1;
  long count = (long)children->count;
  zk_strings_free(children);
  return count;
}

static void free_own_latch(void *userdata, bool leader) {
  if (leader) {
    zk_leader_latch_free(self_freeing_latch);
    atomic_store((atomic_bool *)userdata, true);
  }
}

static void test_no_listener_after_latch_free(zk_server *server) {
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  listener_state *state = calloc(1, sizeof *state);
  zk_leader_latch *latch = NULL;
  REQUIRE_OK(zk_leader_latch_new(client, "/latch", "slow", slow_listener, state, &latch));
  EXPECT_OK(zk_leader_latch_start(latch));
  CHECK(WAIT_FOR(atomic_load(&state->entered), 5000));
  zk_leader_latch_free(latch);
  CHECK(atomic_load(&state->calls) == 1);
  free(state); /* valgrind: a later listener call reads freed memory */

  /* freed from its own listener: no deadlock, and the election goes on without it */
  atomic_bool freed_itself = false;
  REQUIRE_OK(zk_leader_latch_new(client, "/latch2", "self", free_own_latch, &freed_itself,
                                 &self_freeing_latch));
  EXPECT_OK(zk_leader_latch_start(self_freeing_latch));
  CHECK(WAIT_FOR(atomic_load(&freed_itself), 5000));
  CHECK(WAIT_FOR(child_count(client, "/latch2") == 0, 5000));
  zk_client_free(client);
}

int main(void) {
  zk_server *server = start_tcp_server();
  connect_fn connects[] = {zk_server_connect, connect_tcp};
  for (int i = 0; i < 2; i++) {
    test_no_callback_after_free(server, connects[i]);
    test_pending_completions_run_before_free_returns(server, connects[i]);
    test_free_from_a_callback(server, connects[i]);
  }
  test_no_listener_after_latch_free(server);
  zk_server_free(server);
  return finish("test_lifetime");
}
