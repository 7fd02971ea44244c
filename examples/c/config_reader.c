/* A configuration reader that follows a znode: it reads /config/redis, keeps a watch on it,
 * and reloads whenever the value changes, as a Redis settings lookup would.
 *
 *   config_reader                 runs an embedded server and changes the value itself
 *   config_reader HOST:PORT       follows /config/redis on a running server until Ctrl-C
 *
 * Build:  cc config_reader.c -o config_reader $(pkg-config --cflags --libs zookeeper_rs)
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zookeeper_rs.h"

#define CONFIG_PATH "/config/redis"

/* The latest configuration and how many times it was loaded. */
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t config_changed = PTHREAD_COND_INITIALIZER;
static char config[256] = "";
static int loads = 0;

static void on_change(void *userdata, const zk_watch_event *event);

/* Reads the value and sets the next watch in the same call, so no change slips between. */
static void load(zk_client *client) {
  zk_bytes *data = NULL;
  int rc = zk_get(client, CONFIG_PATH, on_change, client, &data, NULL);
  if (rc != ZK_OK) {
    fprintf(stderr, "reading %s: %s\n", CONFIG_PATH, zk_result_message(rc));
    return;
  }
  pthread_mutex_lock(&config_lock);
  snprintf(config, sizeof config, "%.*s", data == NULL ? 0 : (int)data->len,
           data == NULL ? "" : (const char *)data->data);
  loads++;
  printf("loaded configuration #%d: %s\n", loads, config);
  fflush(stdout);
  pthread_cond_broadcast(&config_changed);
  pthread_mutex_unlock(&config_lock);
  zk_bytes_free(data);
}

/* Runs on the client's dispatcher thread; calling back into the client there is allowed. */
static void on_change(void *userdata, const zk_watch_event *event) {
  if (event->event_type == 3 /* data changed */) load((zk_client *)userdata);
}

static void wait_for_loads(int wanted) {
  pthread_mutex_lock(&config_lock);
  while (loads < wanted) pthread_cond_wait(&config_changed, &config_lock);
  pthread_mutex_unlock(&config_lock);
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "%s: %s\n", what, zk_result_message(rc));
  return 1;
}

int main(int argc, char **argv) {
  zk_server *server = NULL;
  zk_client *client = NULL;
  int rc;
  if (argc > 1) {
    rc = zk_client_connect(argv[1], NULL, &client);
  } else {
    if ((rc = zk_server_start(NULL, &server)) != ZK_OK) return fail("starting a server", rc);
    rc = zk_server_connect(server, NULL, &client);
  }
  if (rc != ZK_OK) return fail("connecting", rc);

  const char *initial = "maxmemory=100mb";
  zk_create(client, "/config", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL);
  rc = zk_create(client, CONFIG_PATH, (const uint8_t *)initial, strlen(initial), NULL, 0,
                 ZK_PERSISTENT, -1, NULL, NULL);
  if (rc != ZK_OK && rc != ZK_NODEEXISTS) return fail("creating " CONFIG_PATH, rc);
  load(client);

  if (server == NULL) {
    for (;;) pause(); /* follow changes until killed */
  }
  /* Standalone: an operator changes the value twice; the reader reloads each time. */
  const char *updates[] = {"maxmemory=200mb", "maxmemory=300mb"};
  for (int i = 0; i < 2; i++) {
    rc = zk_set(client, CONFIG_PATH, (const uint8_t *)updates[i], strlen(updates[i]), -1, NULL);
    if (rc != ZK_OK) return fail("updating", rc);
    wait_for_loads(i + 2);
  }
  int ok = strcmp(config, "maxmemory=300mb") == 0;
  zk_client_free(client);
  zk_server_free(server);
  return ok ? 0 : 1;
}
