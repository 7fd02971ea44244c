/* Guards every blocking function of the C API against wrong answers (Stat fields, codes,
 * null versus empty data) and against crashes or leaks on bad input: NULL pointers, invalid
 * UTF-8, out-of-range arguments, too-small buffers and handles used after close or stop. */
#include "check.h"

static const char INVALID_UTF8_PATH[] = {'/', (char)0xff, (char)0xfe, 0};

static void test_result_messages(void) {
  CHECK(strcmp(zk_result_message(ZK_OK), "ok") == 0);
  CHECK(strcmp(zk_result_message(ZK_NONODE), "no node") == 0);
  CHECK(strcmp(zk_result_message(-101), "no node") == 0);
  CHECK(strcmp(zk_result_message(12345), "unknown result code") == 0);
  CHECK(strcmp(zk_result_message(ZK_NOTREADONLY),
               "state-changing request is passed to read-only server") == 0);
  CHECK(strcmp(zk_result_message(ZK_LIMIT_EXCEEDED), "a limit of the library was reached") == 0);
  CHECK(ZK_NONODE == -101 && ZK_NODEEXISTS == -110 && ZK_SESSIONEXPIRED == -112);
  CHECK(ZK_NULL_ARGUMENT < -1000 + 1 && ZK_PANIC < -1000);
}

static void test_server_lifecycle(void) {
  zk_server *server = NULL;
  zk_server_options options;
  EXPECT_RC(zk_server_options_init(NULL), ZK_NULL_ARGUMENT);
  EXPECT_OK(zk_server_options_init(&options));
  CHECK(options.port == -1 && options.data_dir == NULL && options.tick_ms == 2000);
  EXPECT_RC(zk_server_start(&options, NULL), ZK_NULL_ARGUMENT);
  options.port = 70000;
  EXPECT_RC(zk_server_start(&options, &server), ZK_INVALID_ARGUMENT);
  CHECK(server == NULL);
  options.port = 0;
  options.host = "not-an-address";
  EXPECT_RC(zk_server_start(&options, &server), ZK_INVALID_ARGUMENT);
  options.host = NULL;
  options.tick_ms = 0;
  EXPECT_RC(zk_server_start(&options, &server), ZK_START_FAILED);
  CHECK(server == NULL);
  /* the reason is the caller's to ask for; the library writes nothing to stderr */
  char reason[512];
  char small[8] = "unset";
  EXPECT_OK(zk_server_start_error(reason, sizeof reason));
  CHECK(strcmp(reason, "invalid server configuration: tick_ms must be greater than 0") == 0);
  EXPECT_RC(zk_server_start_error(small, sizeof small), ZK_BUFFER_TOO_SMALL);
  CHECK(strcmp(small, "unset") == 0);
  EXPECT_RC(zk_server_start_error(NULL, 8), ZK_NULL_ARGUMENT);

  options.tick_ms = 500;
  REQUIRE_OK(zk_server_start(&options, &server));
  char address[64];
  char tiny[4] = "xyz";
  EXPECT_RC(zk_server_address(server, tiny, sizeof tiny), ZK_BUFFER_TOO_SMALL);
  CHECK(strcmp(tiny, "xyz") == 0);
  EXPECT_RC(zk_server_address(server, NULL, 64), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_server_address(NULL, address, sizeof address), ZK_NULL_ARGUMENT);
  EXPECT_OK(zk_server_address(server, address, sizeof address));
  CHECK(strncmp(address, "127.0.0.1:", 10) == 0 && atoi(address + 10) > 0);

  /* A TCP client against the embedded server's port. */
  zk_client *tcp = NULL;
  EXPECT_RC(zk_client_connect(NULL, NULL, &tcp), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_client_connect(address, NULL, NULL), ZK_NULL_ARGUMENT);
  REQUIRE_OK(zk_client_connect(address, NULL, &tcp));
  zk_stat stat;
  EXPECT_OK(zk_exists(tcp, "/", NULL, NULL, &stat));
  CHECK(stat.num_children == 1); /* /zookeeper */
  zk_client_free(tcp);

  zk_server *in_process = NULL;
  REQUIRE_OK(zk_server_start(NULL, &in_process));
  EXPECT_OK(zk_server_start_error(reason, sizeof reason));
  CHECK(strcmp(reason, "") == 0); /* a start that succeeded clears it */
  EXPECT_RC(zk_server_address(in_process, address, sizeof address), ZK_NOT_LISTENING);
  zk_server_free(in_process);

  EXPECT_OK(zk_server_stop(server));
  EXPECT_RC(zk_server_stop(server), ZK_CLOSED_HANDLE);
  EXPECT_RC(zk_server_address(server, address, sizeof address), ZK_CLOSED_HANDLE);
  zk_client *late = NULL;
  EXPECT_RC(zk_server_connect(server, NULL, &late), ZK_CLOSED_HANDLE);
  CHECK(late == NULL);
  zk_server_free(server);
  zk_server_free(NULL);
}

static void test_server_from_zoo_cfg(void) {
  char path[] = "/tmp/zkrs-cfg-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE_OK(fd < 0 ? ZK_SYSTEMERROR : ZK_OK);
  const char *cfg = "tickTime=500\nclientPort=0\n";
  CHECK(write(fd, cfg, strlen(cfg)) == (ssize_t)strlen(cfg));
  close(fd);
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start_from_config(path, &server));
  char address[64];
  EXPECT_OK(zk_server_address(server, address, sizeof address));
  CHECK(strncmp(address, "127.0.0.1:", 10) == 0);
  zk_server_free(server);
  unlink(path);

  EXPECT_RC(zk_server_start_from_config("/nonexistent/zoo.cfg", &server), ZK_START_FAILED);
  char reason[512];
  EXPECT_OK(zk_server_start_error(reason, sizeof reason));
  CHECK(strcmp(reason, "cannot read /nonexistent/zoo.cfg: No such file or directory (os error 2)") ==
        0);
  EXPECT_RC(zk_server_start_from_config(INVALID_UTF8_PATH, &server), ZK_INVALID_UTF8);
  EXPECT_RC(zk_server_start_from_config(NULL, &server), ZK_NULL_ARGUMENT);
}

static void test_znode_operations(zk_server *server) {
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  int64_t session_id = 0;
  EXPECT_OK(zk_client_session_id(client, &session_id));
  CHECK(session_id != 0);

  /* create: path and Stat, null data versus empty data */
  char *created = NULL;
  zk_stat stat;
  memset(&stat, 0, sizeof stat);
  EXPECT_OK(zk_create(client, "/app", (const uint8_t *)"v1", 2, NULL, 0, ZK_PERSISTENT, -1,
                      &created, &stat));
  CHECK(created != NULL && strcmp(created, "/app") == 0);
  CHECK(stat.czxid > 0 && stat.czxid == stat.mzxid && stat.czxid == stat.pzxid);
  CHECK(stat.version == 0 && stat.cversion == 0 && stat.aversion == 0);
  CHECK(stat.data_length == 2 && stat.num_children == 0 && stat.ephemeral_owner == 0);
  zk_string_free(created);
  EXPECT_OK(zk_create(client, "/app/null", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  EXPECT_OK(zk_create(client, "/app/empty", (const uint8_t *)"", 0, NULL, 0, ZK_PERSISTENT, -1,
                      NULL, NULL));
  char *again = (char *)0x1;
  EXPECT_RC(zk_create(client, "/app", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, &again, NULL),
            ZK_NODEEXISTS);
  CHECK(again == (char *)0x1); /* out-parameters are written only on success */
  EXPECT_RC(zk_create(client, "/missing/child", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_NONODE);
  EXPECT_RC(zk_create(client, "no-slash", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_BADARGUMENTS);
  EXPECT_RC(zk_create(client, "/x", NULL, 0, NULL, 0, 99, -1, NULL, NULL), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_create(client, "/x", NULL, 5, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_create(client, INVALID_UTF8_PATH, NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_INVALID_UTF8);
  EXPECT_RC(zk_create(NULL, "/x", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_create(client, NULL, NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL),
            ZK_NULL_ARGUMENT);

  /* every create mode */
  EXPECT_OK(zk_create(client, "/app/seq-", NULL, 0, NULL, 0, ZK_PERSISTENT_SEQUENTIAL, -1,
                      &created, NULL));
  CHECK(strcmp(created, "/app/seq-0000000002") == 0);
  zk_string_free(created);
  EXPECT_OK(zk_create(client, "/app/eph", NULL, 0, NULL, 0, ZK_EPHEMERAL, -1, NULL, &stat));
  CHECK(stat.ephemeral_owner == session_id);
  EXPECT_OK(zk_create(client, "/app/eseq-", NULL, 0, NULL, 0, ZK_EPHEMERAL_SEQUENTIAL, -1,
                      &created, NULL));
  CHECK(strcmp(created, "/app/eseq-0000000004") == 0);
  zk_string_free(created);
  EXPECT_OK(zk_create(client, "/app/container", NULL, 0, NULL, 0, ZK_CONTAINER, -1, NULL, &stat));
  CHECK(stat.ephemeral_owner == 0);
  EXPECT_OK(zk_create(client, "/app/ttl", NULL, 0, NULL, 0, ZK_PERSISTENT_WITH_TTL, 60000, NULL,
                      &stat));
  CHECK(stat.ephemeral_owner == 0);
  EXPECT_OK(zk_create(client, "/app/ttlseq-", NULL, 0, NULL, 0, ZK_PERSISTENT_SEQUENTIAL_WITH_TTL,
                      60000, &created, NULL));
  CHECK(strcmp(created, "/app/ttlseq-0000000007") == 0);
  zk_string_free(created);
  EXPECT_RC(zk_create(client, "/app/badttl", NULL, 0, NULL, 0, ZK_PERSISTENT_WITH_TTL, 0, NULL,
                      NULL), ZK_BADARGUMENTS);

  /* get: null data is a NULL zk_bytes, empty data an empty one */
  zk_bytes *data = (zk_bytes *)0x1;
  EXPECT_OK(zk_get(client, "/app/null", NULL, NULL, &data, &stat));
  CHECK(data == NULL && stat.data_length == 0);
  EXPECT_OK(zk_get(client, "/app/empty", NULL, NULL, &data, &stat));
  CHECK(data != NULL && data->len == 0);
  zk_bytes_free(data);
  EXPECT_OK(zk_get(client, "/app", NULL, NULL, &data, &stat));
  CHECK(data != NULL && data->len == 2 && memcmp(data->data, "v1", 2) == 0);
  zk_bytes_free(data);
  zk_bytes_free(NULL);
  data = (zk_bytes *)0x1;
  EXPECT_RC(zk_get(client, "/nope", NULL, NULL, &data, &stat), ZK_NONODE);
  CHECK(data == (zk_bytes *)0x1);
  EXPECT_RC(zk_get(client, "/app/", NULL, NULL, &data, NULL), ZK_BADARGUMENTS);

  /* set and exists */
  zk_stat before, after;
  EXPECT_OK(zk_exists(client, "/app", NULL, NULL, &before));
  EXPECT_OK(zk_set(client, "/app", (const uint8_t *)"v22", 3, 0, &after));
  CHECK(after.version == 1 && after.data_length == 3 && after.mzxid > before.mzxid);
  CHECK(after.czxid == before.czxid && after.ctime == before.ctime);
  EXPECT_RC(zk_set(client, "/app", NULL, 0, 0, NULL), ZK_BADVERSION);
  EXPECT_OK(zk_set(client, "/app/empty", NULL, 0, -1, NULL));
  EXPECT_OK(zk_get(client, "/app/empty", NULL, NULL, &data, NULL));
  CHECK(data == NULL);
  EXPECT_RC(zk_exists(client, "/nope", NULL, NULL, &stat), ZK_NONODE);
  EXPECT_RC(zk_exists(client, "/nope", NULL, NULL, NULL), ZK_NONODE);

  /* children, descendants */
  zk_strings *children = NULL;
  EXPECT_OK(zk_get_children(client, "/app", NULL, NULL, &children, &stat));
  CHECK(children != NULL && children->count == 8 && stat.num_children == 8);
  CHECK(strcmp(children->items[0], "container") == 0);
  CHECK(strcmp(children->items[1], "empty") == 0);
  zk_strings_free(children);
  zk_strings_free(NULL);
  int32_t number = -1;
  EXPECT_OK(zk_get_all_children_number(client, "/app", &number));
  CHECK(number == 8);
  EXPECT_RC(zk_get_all_children_number(client, "/nope", &number), ZK_NONODE);

  /* ephemerals */
  zk_strings *ephemerals = NULL;
  EXPECT_OK(zk_get_ephemerals(client, "/", &ephemerals));
  CHECK(ephemerals->count == 2 && strcmp(ephemerals->items[0], "/app/eph") == 0 &&
        strcmp(ephemerals->items[1], "/app/eseq-0000000004") == 0);
  zk_strings_free(ephemerals);

  /* delete */
  EXPECT_RC(zk_delete(client, "/app", -1), ZK_NOTEMPTY);
  EXPECT_RC(zk_delete(client, "/app/null", 5), ZK_BADVERSION);
  EXPECT_OK(zk_delete(client, "/app/null", 0));
  EXPECT_RC(zk_delete(client, "/app/null", -1), ZK_NONODE);

  /* sync */
  EXPECT_OK(zk_sync(client, "/app"));
  EXPECT_RC(zk_sync(client, NULL), ZK_NULL_ARGUMENT);
  zk_client_free(client);
}

static void test_acl_and_auth(zk_server *server) {
  zk_client *owner = NULL, *stranger = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &owner));
  REQUIRE_OK(zk_server_connect(server, NULL, &stranger));
  const char *credential = "alice:secret";
  EXPECT_OK(zk_add_auth(owner, "digest", (const uint8_t *)credential, strlen(credential)));
  EXPECT_RC(zk_add_auth(owner, "digest", NULL, 3), ZK_NULL_ARGUMENT);
  zk_identity_list *identities = NULL;
  EXPECT_OK(zk_whoami(owner, &identities));
  CHECK(identities->count == 2);
  int saw_digest = 0;
  for (size_t i = 0; i < identities->count; i++) {
    if (strcmp(identities->items[i].scheme, "digest") == 0 &&
        strcmp(identities->items[i].id, "alice") == 0)
      saw_digest = 1;
  }
  CHECK(saw_digest);
  zk_identity_list_free(identities);

  zk_acl creator_all = {ZK_PERM_ALL, "auth", ""};
  EXPECT_OK(zk_create(owner, "/private", (const uint8_t *)"s", 1, &creator_all, 1, ZK_PERSISTENT,
                      -1, NULL, NULL));
  zk_bytes *data = NULL;
  EXPECT_RC(zk_get(stranger, "/private", NULL, NULL, &data, NULL), ZK_NOAUTH);
  zk_acl_list *acl = NULL;
  zk_stat stat;
  EXPECT_OK(zk_get_acl(owner, "/private", &acl, &stat));
  CHECK(acl->count == 1 && acl->items[0].perms == ZK_PERM_ALL);
  CHECK(strcmp(acl->items[0].scheme, "digest") == 0 && strncmp(acl->items[0].id, "alice:", 6) == 0);
  CHECK(stat.aversion == 0);
  zk_acl_list_free(acl);
  zk_acl_list_free(NULL);

  zk_acl read_only = {ZK_PERM_READ, "world", "anyone"};
  EXPECT_RC(zk_set_acl(owner, "/private", &read_only, 1, 5, NULL), ZK_BADVERSION);
  EXPECT_OK(zk_set_acl(owner, "/private", &read_only, 1, 0, &stat));
  CHECK(stat.aversion == 1);
  /* without ADMIN now, even the owner cannot change it back */
  EXPECT_RC(zk_set_acl(owner, "/private", &creator_all, 1, -1, NULL), ZK_NOAUTH);
  EXPECT_OK(zk_get(stranger, "/private", NULL, NULL, &data, NULL));
  zk_bytes_free(data);
  EXPECT_RC(zk_set(stranger, "/private", NULL, 0, -1, NULL), ZK_NOAUTH);
  zk_acl broken = {ZK_PERM_ALL, NULL, "anyone"};
  EXPECT_RC(zk_set_acl(owner, "/private", &broken, 1, -1, NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_set_acl(owner, "/private", NULL, 2, -1, NULL), ZK_NULL_ARGUMENT);

  /* an unknown scheme fails the session's auth for good */
  EXPECT_RC(zk_add_auth(stranger, "kerberos", (const uint8_t *)"x", 1), ZK_AUTHFAILED);
  int32_t state = -1;
  EXPECT_OK(zk_client_state(stranger, &state));
  CHECK(state == ZK_STATE_AUTH_FAILED);
  EXPECT_RC(zk_exists(stranger, "/", NULL, NULL, NULL), ZK_AUTHFAILED);
  zk_client_free(owner);
  zk_client_free(stranger);
}

static void test_multi(zk_server *server) {
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  zk_op ops[3];
  memset(ops, 0, sizeof ops);
  ops[0] = (zk_op){.kind = ZK_OP_CREATE, .path = "/jobs", .data = (const uint8_t *)"j", .data_len = 1,
                   .mode = ZK_PERSISTENT, .version = -1};
  ops[1] = (zk_op){.kind = ZK_OP_CREATE, .path = "/jobs/1", .mode = ZK_PERSISTENT, .version = -1};
  ops[2] = (zk_op){.kind = ZK_OP_SET_DATA, .path = "/jobs", .data = (const uint8_t *)"jj",
                   .data_len = 2, .version = 0};
  zk_multi_results *results = NULL;
  EXPECT_OK(zk_multi(client, ops, 3, &results));
  CHECK(results->count == 3);
  CHECK(results->items[0].kind == ZK_OP_CREATE && strcmp(results->items[0].path, "/jobs") == 0);
  CHECK(results->items[1].kind == ZK_OP_CREATE && results->items[1].stat.version == 0);
  CHECK(results->items[2].kind == ZK_OP_SET_DATA && results->items[2].stat.version == 1 &&
        results->items[2].path == NULL);
  zk_multi_results_free(results);

  /* a failed multi answers the failing op's code and every op's result */
  zk_op failing[3];
  memset(failing, 0, sizeof failing);
  failing[0] = (zk_op){.kind = ZK_OP_CHECK, .path = "/jobs", .version = 1};
  failing[1] = (zk_op){.kind = ZK_OP_DELETE, .path = "/missing", .version = -1};
  failing[2] = (zk_op){.kind = ZK_OP_DELETE, .path = "/jobs/1", .version = -1};
  results = NULL;
  EXPECT_RC(zk_multi(client, failing, 3, &results), ZK_NONODE);
  CHECK(results != NULL && results->count == 3);
  if (results != NULL) {
    CHECK(results->items[0].kind == ZK_OP_ERROR && results->items[0].error == ZK_OK);
    CHECK(results->items[1].kind == ZK_OP_ERROR && results->items[1].error == ZK_NONODE);
    CHECK(results->items[2].kind == ZK_OP_ERROR &&
          results->items[2].error == ZK_RUNTIMEINCONSISTENCY);
  }
  zk_multi_results_free(results);
  EXPECT_OK(zk_exists(client, "/jobs/1", NULL, NULL, NULL)); /* nothing applied */
  failing[0].kind = 77;
  EXPECT_RC(zk_multi(client, failing, 3, &results), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_multi(client, NULL, 1, &results), ZK_NULL_ARGUMENT);

  zk_read_op reads[3] = {{ZK_OP_GET_DATA, "/jobs"}, {ZK_OP_GET_CHILDREN, "/jobs"},
                         {ZK_OP_GET_DATA, "/missing"}};
  zk_read_results *read_results = NULL;
  EXPECT_OK(zk_multi_read(client, reads, 3, &read_results));
  CHECK(read_results->count == 3);
  CHECK(read_results->items[0].kind == ZK_OP_GET_DATA && read_results->items[0].data->len == 2 &&
        memcmp(read_results->items[0].data->data, "jj", 2) == 0 &&
        read_results->items[0].stat.version == 1);
  CHECK(read_results->items[1].kind == ZK_OP_GET_CHILDREN &&
        read_results->items[1].children->count == 1 &&
        strcmp(read_results->items[1].children->items[0], "1") == 0);
  CHECK(read_results->items[2].kind == ZK_OP_ERROR && read_results->items[2].error == ZK_NONODE);
  zk_read_results_free(read_results);
  reads[0].kind = ZK_OP_CREATE;
  EXPECT_RC(zk_multi_read(client, reads, 3, &read_results), ZK_INVALID_ARGUMENT);
  zk_client_free(client);
}

static void test_session_getters_resume_and_close(zk_server *server) {
  zk_client_options options;
  EXPECT_OK(zk_client_options_init(&options));
  CHECK(options.session_timeout_ms == 30000 && options.watcher == NULL && !options.resume);
  options.session_timeout_ms = 4000;
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, &options, &client));
  int32_t timeout_ms = 0;
  EXPECT_OK(zk_client_session_timeout_ms(client, &timeout_ms));
  CHECK(timeout_ms == 4000);
  uint8_t password[16];
  uint8_t short_buffer[8];
  EXPECT_RC(zk_client_session_password(client, short_buffer, sizeof short_buffer),
            ZK_BUFFER_TOO_SMALL);
  EXPECT_OK(zk_client_session_password(client, password, sizeof password));
  int64_t session_id = 0;
  EXPECT_OK(zk_client_session_id(client, &session_id));
  EXPECT_RC(zk_client_session_id(client, NULL), ZK_NULL_ARGUMENT);
  EXPECT_OK(zk_create(client, "/resumed", NULL, 0, NULL, 0, ZK_EPHEMERAL, -1, NULL, NULL));
  zk_read_cache_stats stats;
  EXPECT_RC(zk_client_read_cache_stats(client, &stats), ZK_INVALID_STATE);

  /* resume: same session, same ephemerals; a wrong password is refused */
  zk_client_options resume;
  EXPECT_OK(zk_client_options_init(&resume));
  resume.resume = true;
  resume.resume_session_id = session_id;
  memcpy(resume.resume_password, password, 16);
  zk_client *resumed = NULL;
  REQUIRE_OK(zk_server_connect(server, &resume, &resumed));
  int64_t resumed_id = 0;
  EXPECT_OK(zk_client_session_id(resumed, &resumed_id));
  CHECK(resumed_id == session_id);
  zk_strings *ephemerals = NULL;
  EXPECT_OK(zk_get_ephemerals(resumed, "/", &ephemerals));
  CHECK(ephemerals->count == 1 && strcmp(ephemerals->items[0], "/resumed") == 0);
  zk_strings_free(ephemerals);
  resume.resume_password[0] ^= 1;
  zk_client *refused = NULL;
  EXPECT_RC(zk_server_connect(server, &resume, &refused), ZK_SESSIONEXPIRED);
  CHECK(refused == NULL);

  /* close: the handle answers ZK_CLOSED_HANDLE afterwards */
  EXPECT_OK(zk_client_close(resumed));
  EXPECT_RC(zk_client_close(resumed), ZK_CLOSED_HANDLE);
  EXPECT_RC(zk_exists(resumed, "/", NULL, NULL, NULL), ZK_CLOSED_HANDLE);
  EXPECT_RC(zk_client_session_id(resumed, &resumed_id), ZK_CLOSED_HANDLE);
  int32_t state = -1;
  EXPECT_OK(zk_client_state(resumed, &state));
  CHECK(state == ZK_STATE_CLOSED);
  EXPECT_RC(zk_exists(client, "/resumed", NULL, NULL, NULL), ZK_SESSIONEXPIRED);
  zk_client_free(resumed);
  zk_client_free(client);
  zk_client_free(NULL);

  /* options out of range */
  options.session_timeout_ms = 0;
  EXPECT_RC(zk_server_connect(server, &options, &client), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_client_options_init(NULL), ZK_NULL_ARGUMENT);
}

static void test_read_cache(zk_server *server) {
  zk_client_options options;
  EXPECT_OK(zk_client_options_init(&options));
  options.read_cache_entries_max = 16;
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, &options, &client));
  EXPECT_OK(zk_create(client, "/cached", (const uint8_t *)"abc", 3, NULL, 0, ZK_PERSISTENT, -1,
                      NULL, NULL));
  zk_bytes *data = NULL;
  for (int i = 0; i < 3; i++) {
    EXPECT_OK(zk_get(client, "/cached", NULL, NULL, &data, NULL));
    zk_bytes_free(data);
  }
  EXPECT_OK(zk_set(client, "/cached", (const uint8_t *)"abcd", 4, -1, NULL));
  EXPECT_OK(zk_get(client, "/cached", NULL, NULL, &data, NULL));
  CHECK(data->len == 4);
  zk_bytes_free(data);
  zk_read_cache_stats stats;
  EXPECT_OK(zk_client_read_cache_stats(client, &stats));
  CHECK(stats.hits == 2 && stats.misses == 2 && stats.invalidations == 1);
  CHECK(stats.entries == 1 && stats.bytes == 4 && stats.evictions == 0);
  zk_client_free(client);
}

int main(void) {
  test_result_messages();
  test_server_lifecycle();
  test_server_from_zoo_cfg();
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(NULL, &server));
  test_znode_operations(server);
  test_acl_and_auth(server);
  test_multi(server);
  test_session_getters_resume_and_close(server);
  test_read_cache(server);
  zk_server_free(server);
  return finish("test_api");
}
