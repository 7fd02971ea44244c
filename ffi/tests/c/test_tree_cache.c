/* Guards the subtree cache across the C boundary: events lost, of the wrong kind or order, an
 * event's memory that leaks or outlives its call, a listener called after close, a mirror that
 * answers differently from the server, and bad arguments accepted. Both ways of watching. */
#include <pthread.h>

#include "check.h"

#define LINES_MAX 32

typedef struct recorder {
  pthread_mutex_t lock;
  char lines[LINES_MAX][128];
  int count;
} recorder;

static void on_tree_event(void *userdata, const zk_tree_event *event) {
  recorder *r = userdata;
  char line[128];
  if (event->path == NULL) {
    snprintf(line, sizeof line, "%d", event->kind);
  } else {
    snprintf(line, sizeof line, "%d %s %.*s v%d", event->kind, event->path,
             event->data == NULL ? 4 : (int)event->data->len,
             event->data == NULL ? "null" : (const char *)event->data->data,
             event->stat->version);
  }
  pthread_mutex_lock(&r->lock);
  if (r->count < LINES_MAX) snprintf(r->lines[r->count++], 128, "%s", line);
  pthread_mutex_unlock(&r->lock);
}

static int recorded(recorder *r) {
  pthread_mutex_lock(&r->lock);
  int count = r->count;
  pthread_mutex_unlock(&r->lock);
  return count;
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

static void test_mirror(zk_server *server, bool per_node_watches) {
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  zk_delete(client, "/r/a", -1);
  zk_delete(client, "/r", -1);
  EXPECT_OK(zk_create(client, "/r", (const uint8_t *)"root", 4, NULL, 0, ZK_PERSISTENT, -1, NULL,
                      NULL));
  EXPECT_OK(zk_create(client, "/r/a", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  recorder r = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0};
  zk_tree_cache *cache = NULL;
  REQUIRE_OK(zk_tree_cache_new(client, "/r", per_node_watches, on_tree_event, &r, &cache));
  EXPECT_OK(zk_tree_cache_start(cache));
  EXPECT_RC(zk_tree_cache_start(cache), ZK_INVALID_STATE);
  CHECK(WAIT_FOR(recorded(&r) == 3, 5000));
  CHECK(has_line(&r, 0, "0 /r root v0"));
  CHECK(has_line(&r, 1, "0 /r/a null v0"));
  CHECK(has_line(&r, 2, "6"));

  EXPECT_OK(zk_create(client, "/r/b", (const uint8_t *)"b", 1, NULL, 0, ZK_PERSISTENT, -1, NULL,
                      NULL));
  CHECK(WAIT_FOR(recorded(&r) == 4, 5000) && has_line(&r, 3, "0 /r/b b v0"));
  EXPECT_OK(zk_set(client, "/r/a", (const uint8_t *)"a1", 2, -1, NULL));
  CHECK(WAIT_FOR(recorded(&r) == 5, 5000) && has_line(&r, 4, "1 /r/a a1 v1"));
  EXPECT_OK(zk_delete(client, "/r/b", -1));
  CHECK(WAIT_FOR(recorded(&r) == 6, 5000) && has_line(&r, 5, "2 /r/b b v0"));

  zk_bytes *data = NULL;
  zk_stat stat;
  EXPECT_OK(zk_tree_cache_get_data(cache, "/r/a", &data, &stat));
  CHECK(data != NULL && data->len == 2 && memcmp(data->data, "a1", 2) == 0 && stat.version == 1);
  zk_bytes_free(data);
  EXPECT_RC(zk_tree_cache_get_data(cache, "/r/b", &data, &stat), ZK_NONODE);
  EXPECT_OK(zk_tree_cache_get_data(cache, "/r", NULL, NULL));
  zk_strings *children = NULL;
  EXPECT_OK(zk_tree_cache_get_children(cache, "/r", &children));
  CHECK(children->count == 1 && strcmp(children->items[0], "a") == 0);
  zk_strings_free(children);
  EXPECT_RC(zk_tree_cache_get_children(cache, "/nope", &children), ZK_NONODE);
  EXPECT_RC(zk_tree_cache_get_children(cache, "/r", NULL), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_tree_cache_get_data(cache, NULL, NULL, NULL), ZK_NULL_ARGUMENT);

  /* after close the listener hears nothing, and the cache's watches are gone */
  EXPECT_OK(zk_tree_cache_close(cache));
  EXPECT_OK(zk_tree_cache_close(cache));
  EXPECT_OK(zk_set(client, "/r/a", (const uint8_t *)"a2", 2, -1, NULL));
  sleep_ms(50);
  CHECK(recorded(&r) == 6);
  zk_tree_cache_free(cache);
  zk_tree_cache_free(NULL);
  EXPECT_OK(zk_delete(client, "/r/a", -1));
  EXPECT_OK(zk_delete(client, "/r", -1));
  zk_client_free(client);
}

static void test_bad_arguments(zk_server *server) {
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  zk_tree_cache *cache = NULL;
  EXPECT_RC(zk_tree_cache_new(client, "relative", false, NULL, NULL, &cache), ZK_BADARGUMENTS);
  EXPECT_RC(zk_tree_cache_new(client, NULL, false, NULL, NULL, &cache), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_tree_cache_new(NULL, "/r", false, NULL, NULL, &cache), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_tree_cache_new(client, "/r", false, NULL, NULL, NULL), ZK_NULL_ARGUMENT);
  CHECK(cache == NULL);
  EXPECT_RC(zk_tree_cache_start(NULL), ZK_NULL_ARGUMENT);
  /* a cache without a listener still mirrors */
  REQUIRE_OK(zk_tree_cache_new(client, "/", false, NULL, NULL, &cache));
  EXPECT_OK(zk_tree_cache_start(cache));
  CHECK(WAIT_FOR(zk_tree_cache_get_data(cache, "/zookeeper", NULL, NULL) == ZK_OK, 5000));
  zk_tree_cache_free(cache);
  zk_client_free(client);
}

int main(void) {
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(NULL, &server));
  test_mirror(server, false);
  test_mirror(server, true);
  test_bad_arguments(server);
  zk_server_free(server);
  return finish("test_tree_cache");
}
