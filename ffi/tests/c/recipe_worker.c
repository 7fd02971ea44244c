/* A recipe user in its own process for test_recipes.c: connects over TCP, then
 *   recipe_worker HOSTS lock PATH     acquires a lock, prints "ACQUIRED", holds it;
 *   recipe_worker HOSTS latch PATH    starts a leader latch, prints "LEADER" on leadership;
 * and waits until it is killed. Its session then ends only when the server expires it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zookeeper_rs.h"

static void on_leadership(void *userdata, bool leader) {
  (void)userdata;
  if (leader) {
    printf("LEADER\n");
    fflush(stdout);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: recipe_worker HOSTS lock|latch PATH\n");
    return 2;
  }
  zk_client_options options;
  zk_client_options_init(&options);
  options.session_timeout_ms = 2000;
  zk_client *client = NULL;
  int rc = zk_client_connect(argv[1], &options, &client);
  if (rc != ZK_OK) {
    fprintf(stderr, "connect: %s\n", zk_result_message(rc));
    return 1;
  }
  if (strcmp(argv[2], "lock") == 0) {
    zk_lock *lock = NULL;
    bool acquired = false;
    if (zk_lock_new(client, argv[3], "worker", ZK_LOCK_EXCLUSIVE, &lock) != ZK_OK ||
        zk_lock_acquire(lock, true, 10000, &acquired) != ZK_OK || !acquired) {
      return 1;
    }
    printf("ACQUIRED\n");
    fflush(stdout);
  } else {
    zk_leader_latch *latch = NULL;
    if (zk_leader_latch_new(client, argv[3], "worker", on_leadership, NULL, &latch) != ZK_OK ||
        zk_leader_latch_start(latch) != ZK_OK) {
      return 1;
    }
  }
  for (;;) pause();
}
