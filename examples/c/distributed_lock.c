/* A critical section guarded by a distributed lock: several workers (threads here; processes
 * or machines alike) increment a counter znode with an unguarded read-modify-write, which
 * only adds up because the lock lets one worker in at a time. The lock uses kazoo's znode
 * layout, so kazoo and Python processes can take part in it.
 *
 *   distributed_lock              runs an embedded server
 *   distributed_lock HOST:PORT    uses a running server
 *
 * Build:  cc distributed_lock.c -o distributed_lock $(pkg-config --cflags --libs zookeeper_rs)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zookeeper_rs.h"

#define WORKERS 4
#define ROUNDS 10
#define LOCK_PATH "/locks/counter"
#define COUNTER_PATH "/counter"

static zk_server *server = NULL;
static const char *hosts = NULL;

static zk_client *open_client(void) {
  zk_client *client = NULL;
  int rc = hosts != NULL ? zk_client_connect(hosts, NULL, &client)
                         : zk_server_connect(server, NULL, &client);
  if (rc != ZK_OK) {
    fprintf(stderr, "connecting: %s\n", zk_result_message(rc));
    exit(1);
  }
  return client;
}

static long read_counter(zk_client *client) {
  zk_bytes *data = NULL;
  if (zk_get(client, COUNTER_PATH, NULL, NULL, &data, NULL) != ZK_OK) return -1;
  char text[32] = "0";
  if (data != NULL && data->len > 0 && data->len < sizeof text) {
    memcpy(text, data->data, data->len);
    text[data->len] = 0;
  }
  zk_bytes_free(data);
  return atol(text);
}

static void *worker(void *name) {
  zk_client *client = open_client();
  zk_lock *lock = NULL;
  if (zk_lock_new(client, LOCK_PATH, name, ZK_LOCK_EXCLUSIVE, &lock) != ZK_OK) exit(1);
  for (int round = 0; round < ROUNDS; round++) {
    bool acquired = false;
    int rc = zk_lock_acquire(lock, true, 30000, &acquired);
    if (rc != ZK_OK || !acquired) {
      fprintf(stderr, "%s: acquiring: %s\n", (char *)name, zk_result_message(rc));
      exit(1);
    }
    /* The critical section: read, compute, write back. */
    char text[32];
    int length = snprintf(text, sizeof text, "%ld", read_counter(client) + 1);
    zk_set(client, COUNTER_PATH, (const uint8_t *)text, (size_t)length, -1, NULL);
    zk_lock_release(lock, NULL);
  }
  zk_lock_free(lock);
  zk_client_free(client);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    hosts = argv[1];
  } else if (zk_server_start(NULL, &server) != ZK_OK) {
    return 1;
  }
  zk_client *client = open_client();
  zk_create(client, COUNTER_PATH, (const uint8_t *)"0", 1, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL);
  long before = read_counter(client);

  pthread_t threads[WORKERS];
  char names[WORKERS][16];
  for (int i = 0; i < WORKERS; i++) {
    snprintf(names[i], sizeof names[i], "worker-%d", i);
    pthread_create(&threads[i], NULL, worker, names[i]);
  }
  for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);

  long after = read_counter(client);
  printf("counter went from %ld to %ld (%d increments under the lock)\n", before, after,
         WORKERS * ROUNDS);
  zk_client_free(client);
  zk_server_free(server);
  return after - before == WORKERS * ROUNDS ? 0 : 1;
}
