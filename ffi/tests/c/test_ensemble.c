/* Guards the C in-process ensemble against losing acknowledged writes or sessions when members
 * fail (the leader killed, a member restarted, the leader cut off by a partition or paused),
 * against a stranded leader acknowledging writes, against bad input (NULL, out-of-range
 * members, a partition of the wrong size, a negative timeout) that crashes, writes an
 * out-parameter or changes the ensemble, and against leaks: under valgrind, 0 errors and 0
 * leaks after everything is freed. */
#include <stdint.h>

#include "check.h"

/* Bound on every wait: elections take ~100-200 ms, under valgrind much longer. */
#define WAIT_MS 60000

static zk_client_options session_options(void) {
  zk_client_options options;
  zk_client_options_init(&options);
  options.session_timeout_ms = 30000;
  return options;
}

static int32_t wait_leader(const zk_ensemble *ensemble) {
  int32_t leader = -1;
  REQUIRE_OK(zk_ensemble_wait_for_leader(ensemble, WAIT_MS, &leader));
  return leader;
}

static int32_t leader_now(const zk_ensemble *ensemble) {
  int32_t leader = -1;
  REQUIRE_OK(zk_ensemble_leader(ensemble, &leader));
  return leader;
}

/* Waits until a member other than `old` leads, and returns it. */
static int32_t new_leader(const zk_ensemble *ensemble, int32_t old) {
  int32_t leader = -1;
  bool found = WAIT_FOR((leader = leader_now(ensemble)) != -1 && leader != old, WAIT_MS);
  if (!found) {
    fprintf(stderr, "no leader other than member %d (last: %d)\n", old, leader);
    exit(2);
  }
  return leader;
}

/* An in-process session on `member`, which waits for the member to serve. */
static zk_client *member_client(const zk_ensemble *ensemble, uint32_t member) {
  zk_client_options options = session_options();
  zk_client *client = NULL;
  REQUIRE_OK(zk_ensemble_connect(ensemble, member, &options, &client));
  return client;
}

/* Waits until `member` serves sessions (knows its leader): only then does a session open. */
static void wait_serving(const zk_ensemble *ensemble, uint32_t member) {
  zk_client_free(member_client(ensemble, member));
}

/* Runs `call` again while it answers ZK_CONNECTIONLOSS, for up to WAIT_MS, and answers its
 * last code. A member that loses or changes its leader drops its clients' calls in flight,
 * and on a loaded machine (valgrind, shared cores) elections happen beyond the ones a test
 * causes: ZooKeeper leaves such a call's fate unknown and clients retry it. */
#define RETRY_ON_LOSS(call)                                                       \
  ({                                                                              \
    long deadline_ = now_ms() + WAIT_MS;                                          \
    zk_result rc_;                                                                \
    while ((rc_ = (call)) == ZK_CONNECTIONLOSS && now_ms() < deadline_) sleep_ms(10); \
    rc_;                                                                          \
  })

/* True when `path` holds exactly `expected` at data version `version`. */
static bool holds(const zk_client *client, const char *path, const char *expected,
                  int32_t version) {
  zk_bytes *data = NULL;
  zk_stat stat;
  if (RETRY_ON_LOSS(zk_get(client, path, NULL, NULL, &data, &stat)) != ZK_OK) return false;
  bool same = data != NULL && data->len == strlen(expected) &&
              memcmp(data->data, expected, data->len) == 0 && stat.version == version;
  zk_bytes_free(data);
  return same;
}

/* Creates `path` holding `data`, once: a retry that finds it made by an attempt cut short
 * counts (the caller then checks its data). */
static zk_result create(const zk_client *client, const char *path, const char *data) {
  zk_result rc = zk_create(client, path, (const uint8_t *)data, strlen(data), NULL, 0,
                           ZK_PERSISTENT, -1, NULL, NULL);
  if (rc != ZK_CONNECTIONLOSS) return rc;
  rc = RETRY_ON_LOSS(zk_create(client, path, (const uint8_t *)data, strlen(data), NULL, 0,
                               ZK_PERSISTENT, -1, NULL, NULL));
  return rc == ZK_NODEEXISTS ? ZK_OK : rc;
}

static zk_result sync_all(const zk_client *client) {
  return RETRY_ON_LOSS(zk_sync(client, "/"));
}

static void test_writes_survive_failures(void) {
  zk_ensemble *ensemble = NULL;
  REQUIRE_OK(zk_ensemble_start(NULL, &ensemble));
  uint32_t members = 0;
  EXPECT_OK(zk_ensemble_size(ensemble, &members));
  CHECK(members == 3);
  int32_t leader = wait_leader(ensemble);
  CHECK(leader >= 0 && leader < 3);

  char *hosts = NULL;
  REQUIRE_OK(zk_ensemble_connect_string(ensemble, &hosts));
  CHECK(strncmp(hosts, "127.0.0.1:", 10) == 0);
  zk_client_options options = session_options();
  zk_client *zk = NULL;
  REQUIRE_OK(zk_client_connect(hosts, &options, &zk));
  zk_string_free(hosts);
  int64_t session = 0, session_after = -1;
  EXPECT_OK(zk_client_session_id(zk, &session));
  EXPECT_OK(create(zk, "/config", "v1"));

  /* The leader dies: the others elect one, the client fails over with its session. */
  char *old_address = NULL;
  REQUIRE_OK(zk_ensemble_client_address(ensemble, (uint32_t)leader, &old_address));
  EXPECT_OK(zk_ensemble_kill(ensemble, (uint32_t)leader));
  int32_t elected = wait_leader(ensemble);
  CHECK(elected != leader);
  for (uint32_t member = 0; member < 3; member++) {
    if ((int32_t)member != leader) wait_serving(ensemble, member);
  }
  /* BADVERSION only if an attempt cut short applied it: `holds` checks it is this write. */
  zk_result set = RETRY_ON_LOSS(zk_set(zk, "/config", (const uint8_t *)"v2", 2, 0, NULL));
  CHECK(set == ZK_OK || set == ZK_BADVERSION);
  CHECK(holds(zk, "/config", "v2", 1));
  EXPECT_OK(zk_client_session_id(zk, &session_after));
  CHECK(session_after == session);

  /* It comes back on its port and catches up. */
  EXPECT_OK(zk_ensemble_restart(ensemble, (uint32_t)leader));
  char *new_address = NULL;
  REQUIRE_OK(zk_ensemble_client_address(ensemble, (uint32_t)leader, &new_address));
  CHECK(strcmp(old_address, new_address) == 0);
  zk_client *direct = NULL;
  REQUIRE_OK(zk_client_connect(new_address, &options, &direct));
  EXPECT_OK(sync_all(direct));
  CHECK(holds(direct, "/config", "v2", 1));
  zk_client_free(direct);
  zk_string_free(old_address);
  zk_string_free(new_address);

  /* A partition strands the leader: it acknowledges nothing, the majority goes on. */
  int32_t stranded_member = wait_leader(ensemble);
  zk_client *stranded = member_client(ensemble, (uint32_t)stranded_member);
  uint32_t groups[3] = {0, 0, 0};
  groups[stranded_member] = 7;
  EXPECT_OK(zk_ensemble_partition(ensemble, groups, 3));
  EXPECT_RC(zk_create(stranded, "/lost", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_CONNECTIONLOSS);
  int32_t majority_leader = new_leader(ensemble, stranded_member);
  zk_client *writer = member_client(ensemble, (uint32_t)majority_leader);
  EXPECT_OK(create(writer, "/during", "majority"));
  EXPECT_OK(zk_ensemble_heal(ensemble));
  zk_client *back = member_client(ensemble, (uint32_t)stranded_member);
  EXPECT_OK(sync_all(back));
  CHECK(holds(back, "/during", "majority", 0));
  EXPECT_RC(RETRY_ON_LOSS(zk_exists(back, "/lost", NULL, NULL, NULL)), ZK_NONODE);
  CHECK(leader_now(ensemble) == majority_leader);
  zk_client_free(back);
  zk_client_free(stranded);

  /* isolate is a partition of one. */
  EXPECT_OK(zk_ensemble_isolate(ensemble, (uint32_t)majority_leader));
  int32_t third = new_leader(ensemble, majority_leader);
  zk_client *third_writer = member_client(ensemble, (uint32_t)third);
  EXPECT_OK(create(third_writer, "/isolated", ""));
  EXPECT_OK(zk_ensemble_heal(ensemble));

  /* A paused leader is replaced, and follows once resumed. */
  EXPECT_OK(zk_ensemble_pause(ensemble, (uint32_t)third));
  int32_t fourth = new_leader(ensemble, third);
  zk_client *fourth_writer = member_client(ensemble, (uint32_t)fourth);
  EXPECT_OK(create(fourth_writer, "/while-paused", "p"));
  EXPECT_OK(zk_ensemble_resume(ensemble, (uint32_t)third));
  zk_client *resumed = member_client(ensemble, (uint32_t)third);
  EXPECT_OK(sync_all(resumed));
  CHECK(holds(resumed, "/while-paused", "p", 0));
  EXPECT_OK(RETRY_ON_LOSS(zk_exists(resumed, "/isolated", NULL, NULL, NULL)));

  /* The client through the connect string saw it all with its one session. */
  EXPECT_OK(sync_all(zk));
  CHECK(holds(zk, "/during", "majority", 0));
  EXPECT_OK(zk_client_session_id(zk, &session_after));
  CHECK(session_after == session);

  zk_client_free(resumed);
  zk_client_free(fourth_writer);
  zk_client_free(third_writer);
  zk_client_free(writer);
  zk_client_free(zk);
  zk_ensemble_free(ensemble);
}

static void test_a_lost_quorum_has_no_leader(void) {
  zk_ensemble_options options;
  REQUIRE_OK(zk_ensemble_options_init(&options));
  CHECK(options.members == 3 && options.tick_ms == 2000);
  options.members = 1;
  zk_ensemble *ensemble = NULL;
  REQUIRE_OK(zk_ensemble_start(&options, &ensemble));
  CHECK(wait_leader(ensemble) == 0);
  /* A timeout no clock reaches answers as soon as there is a leader. */
  int32_t leader = -1;
  EXPECT_OK(zk_ensemble_wait_for_leader(ensemble, INT64_MAX, &leader));
  CHECK(leader == 0);
  EXPECT_OK(zk_ensemble_wait_for_leader(ensemble, 0, NULL));

  EXPECT_OK(zk_ensemble_kill(ensemble, 0));
  EXPECT_OK(zk_ensemble_kill(ensemble, 0)); /* a member that is down: nothing */
  CHECK(leader_now(ensemble) == -1);
  leader = 77;
  EXPECT_RC(zk_ensemble_wait_for_leader(ensemble, 100, &leader), ZK_TIMED_OUT);
  CHECK(leader == 77);
  zk_client *client = NULL;
  long started = now_ms();
  EXPECT_RC(zk_ensemble_connect(ensemble, 0, NULL, &client), ZK_CONNECTIONLOSS);
  CHECK(client == NULL);
  CHECK(now_ms() - started < 5000); /* down: at once, no waiting */

  EXPECT_OK(zk_ensemble_restart(ensemble, 0));
  CHECK(wait_leader(ensemble) == 0);
  client = member_client(ensemble, 0);
  EXPECT_OK(create(client, "/back", ""));
  zk_client_free(client);
  zk_ensemble_free(ensemble);
}

static void test_bad_input_answers_codes(void) {
  zk_ensemble_options options;
  REQUIRE_OK(zk_ensemble_options_init(&options));
  zk_ensemble *ensemble = NULL;
  char reason[512];

  EXPECT_RC(zk_ensemble_options_init(NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_start(NULL, NULL), ZK_NULL_ARGUMENT);
  options.members = 0;
  EXPECT_RC(zk_ensemble_start(&options, &ensemble), ZK_START_FAILED);
  EXPECT_OK(zk_server_start_error(reason, sizeof reason));
  CHECK(strcmp(reason, "invalid server configuration: an ensemble has 1 to 15 members") == 0);
  options.members = ZK_ENSEMBLE_MEMBERS_MAX + 1;
  EXPECT_RC(zk_ensemble_start(&options, &ensemble), ZK_START_FAILED);
  options.members = 1;
  options.tick_ms = 0;
  EXPECT_RC(zk_ensemble_start(&options, &ensemble), ZK_START_FAILED);
  EXPECT_OK(zk_server_start_error(reason, sizeof reason));
  CHECK(strstr(reason, "tick_ms") != NULL);
  CHECK(ensemble == NULL);

  options.tick_ms = 2000;
  REQUIRE_OK(zk_ensemble_start(&options, &ensemble));
  EXPECT_OK(zk_server_start_error(reason, sizeof reason));
  CHECK(reason[0] == '\0');
  CHECK(wait_leader(ensemble) == 0);

  /* NULL handles and out-parameters. */
  uint32_t members = 99;
  int32_t leader = 77;
  char *text = NULL;
  zk_client *client = NULL;
  uint32_t groups[2] = {0, 1};
  EXPECT_RC(zk_ensemble_size(NULL, &members), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_size(ensemble, NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_connect_string(NULL, &text), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_connect_string(ensemble, NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_client_address(NULL, 0, &text), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_client_address(ensemble, 0, NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_kill(NULL, 0), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_restart(NULL, 0), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_partition(NULL, groups, 1), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_partition(ensemble, NULL, 1), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_isolate(NULL, 0), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_heal(NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_pause(NULL, 0), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_resume(NULL, 0), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_leader(NULL, &leader), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_leader(ensemble, NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_wait_for_leader(NULL, 10, &leader), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_connect(NULL, 0, NULL, &client), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_ensemble_connect(ensemble, 0, NULL, NULL), ZK_NULL_ARGUMENT);

  /* Members the ensemble does not have, a partition of the wrong size, bad numbers. */
  EXPECT_RC(zk_ensemble_client_address(ensemble, 1, &text), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_kill(ensemble, 1), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_restart(ensemble, UINT32_MAX), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_isolate(ensemble, 1), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_pause(ensemble, 2), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_resume(ensemble, 3), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_partition(ensemble, groups, 2), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_partition(ensemble, groups, 0), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_partition(ensemble, groups, SIZE_MAX), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_wait_for_leader(ensemble, -1, &leader), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_ensemble_connect(ensemble, 1, NULL, &client), ZK_INVALID_ARGUMENT);
  zk_client_options bad_session = session_options();
  bad_session.session_timeout_ms = -5;
  EXPECT_RC(zk_ensemble_connect(ensemble, 0, &bad_session, &client), ZK_INVALID_ARGUMENT);

  /* Nothing was written, and nothing changed: member 0 still leads and serves. */
  CHECK(members == 99 && leader == 77 && text == NULL && client == NULL);
  zk_ensemble_free(NULL);
  CHECK(leader_now(ensemble) == 0);
  client = member_client(ensemble, 0);
  EXPECT_OK(create(client, "/unchanged", ""));
  zk_client_free(client);
  zk_ensemble_free(ensemble);
}

int main(void) {
  test_writes_survive_failures();
  test_a_lost_quorum_has_no_leader();
  test_bad_input_answers_codes();
  return finish("test_ensemble");
}
