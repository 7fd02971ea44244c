/* Guards the recipes as C sees them: two holders of one lock, a reader let past a waiting
 * writer, a semaphore over its leases or whose cancel does not stop a waiting contender, an
 * election with two leaders, a latch that does not hand over, a blocking acquire inside a
 * callback that can only time out, connection-loss retries that outlast the caller's
 * timeout; and across processes, a killed holder whose lock or leadership never passes on
 * (the other process must take over within the session timeout). */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "check.h"

static zk_client *connect_to(zk_server *server) {
  zk_client *client = NULL;
  REQUIRE_OK(zk_server_connect(server, NULL, &client));
  return client;
}

static int strings_equal(zk_strings *strings, int count, const char **expected) {
  int same = strings != NULL && (int)strings->count == count;
  for (int i = 0; same && i < count; i++) same = strcmp(strings->items[i], expected[i]) == 0;
  zk_strings_free(strings);
  return same;
}

static void *acquire_in_thread(void *lock) {
  bool acquired = false;
  int rc = zk_lock_acquire(lock, true, 10000, &acquired);
  return (void *)(long)(rc == ZK_OK && acquired ? 1 : rc);
}

static void test_locks(zk_server *server) {
  zk_client *first = connect_to(server), *second = connect_to(server);
  zk_lock *holder = NULL, *waiter = NULL;
  EXPECT_RC(zk_lock_new(first, "/lock", "h", 7, &holder), ZK_INVALID_ARGUMENT);
  EXPECT_RC(zk_lock_new(first, NULL, "h", ZK_LOCK_EXCLUSIVE, &holder), ZK_NULL_ARGUMENT);
  EXPECT_RC(zk_lock_new(first, "/lock", "h", ZK_LOCK_EXCLUSIVE, NULL), ZK_NULL_ARGUMENT);
  REQUIRE_OK(zk_lock_new(first, "/lock", "holder", ZK_LOCK_EXCLUSIVE, &holder));
  REQUIRE_OK(zk_lock_new(second, "/lock", NULL, ZK_LOCK_EXCLUSIVE, &waiter));
  bool acquired = false, released = false;
  EXPECT_OK(zk_lock_acquire(holder, true, -1, &acquired));
  CHECK(acquired);
  EXPECT_OK(zk_lock_acquire(waiter, false, 0, &acquired));
  CHECK(!acquired);
  long started = now_ms();
  EXPECT_RC(zk_lock_acquire(waiter, true, 200, &acquired), ZK_TIMED_OUT);
  CHECK(now_ms() - started >= 200);
  EXPECT_RC(zk_lock_acquire(waiter, true, -5, &acquired), ZK_INVALID_ARGUMENT);
  zk_strings *contenders = NULL;
  EXPECT_OK(zk_lock_contenders(holder, &contenders));
  CHECK(strings_equal(contenders, 1, (const char *[]){"holder"}));

  pthread_t thread;
  pthread_create(&thread, NULL, acquire_in_thread, waiter);
  CHECK(WAIT_FOR((zk_lock_contenders(holder, &contenders) == ZK_OK &&
                  strings_equal(contenders, 2, (const char *[]){"holder", ""})), 5000));
  EXPECT_OK(zk_lock_release(holder, &released));
  CHECK(released);
  EXPECT_OK(zk_lock_release(holder, &released));
  CHECK(!released);
  void *outcome = NULL;
  pthread_join(thread, &outcome);
  CHECK(outcome == (void *)1L);

  /* cancel stops a waiting acquire */
  pthread_create(&thread, NULL, acquire_in_thread, holder);
  CHECK(WAIT_FOR((zk_lock_contenders(waiter, &contenders) == ZK_OK &&
                  strings_equal(contenders, 2, (const char *[]){"", "holder"})), 5000));
  EXPECT_OK(zk_lock_cancel(holder));
  pthread_join(thread, &outcome);
  CHECK(outcome == (void *)(long)ZK_CANCELLED);
  EXPECT_OK(zk_lock_release(waiter, &released));
  zk_lock_free(holder);
  zk_lock_free(waiter);
  zk_lock_free(NULL);

  /* readers share; a waiting writer holds later readers back */
  zk_lock *reader = NULL, *writer = NULL, *late_reader = NULL;
  REQUIRE_OK(zk_lock_new(first, "/rw", "r", ZK_LOCK_READ, &reader));
  REQUIRE_OK(zk_lock_new(second, "/rw", "w", ZK_LOCK_WRITE, &writer));
  REQUIRE_OK(zk_lock_new(second, "/rw", "late", ZK_LOCK_READ, &late_reader));
  EXPECT_OK(zk_lock_acquire(reader, false, 0, &acquired));
  CHECK(acquired);
  EXPECT_OK(zk_lock_acquire(writer, false, 0, &acquired));
  CHECK(!acquired);
  pthread_create(&thread, NULL, acquire_in_thread, writer);
  CHECK(WAIT_FOR((zk_lock_contenders(reader, &contenders) == ZK_OK &&
                  strings_equal(contenders, 2, (const char *[]){"r", "w"})), 5000));
  EXPECT_OK(zk_lock_acquire(late_reader, false, 0, &acquired));
  CHECK(!acquired);
  EXPECT_OK(zk_lock_release(reader, &released));
  pthread_join(thread, &outcome);
  CHECK(outcome == (void *)1L);
  EXPECT_OK(zk_lock_release(writer, &released));
  EXPECT_OK(zk_lock_acquire(late_reader, false, 0, &acquired));
  CHECK(acquired);
  zk_lock_free(reader);
  zk_lock_free(writer);
  zk_lock_free(late_reader);
  zk_client_free(first);
  zk_client_free(second);
}

static void test_semaphore(zk_server *server) {
  zk_client *client = connect_to(server);
  zk_semaphore *a = NULL, *b = NULL, *c = NULL, *mismatched = NULL;
  EXPECT_RC(zk_semaphore_new(client, "/pool", "a", 0, &a), ZK_INVALID_ARGUMENT);
  REQUIRE_OK(zk_semaphore_new(client, "/pool", "a", 2, &a));
  REQUIRE_OK(zk_semaphore_new(client, "/pool", "b", 2, &b));
  REQUIRE_OK(zk_semaphore_new(client, "/pool", "c", 2, &c));
  REQUIRE_OK(zk_semaphore_new(client, "/pool", "m", 3, &mismatched));
  bool acquired = false, released = false;
  EXPECT_OK(zk_semaphore_acquire(a, true, 5000, &acquired));
  CHECK(acquired);
  EXPECT_OK(zk_semaphore_acquire(b, true, 5000, &acquired));
  CHECK(acquired);
  EXPECT_OK(zk_semaphore_acquire(c, false, 0, &acquired));
  CHECK(!acquired);
  EXPECT_RC(zk_semaphore_acquire(c, true, 100, &acquired), ZK_TIMED_OUT);
  EXPECT_RC(zk_semaphore_acquire(mismatched, true, 1000, &acquired), ZK_LEASE_MISMATCH);
  zk_strings *holders = NULL;
  EXPECT_OK(zk_semaphore_lease_holders(a, &holders));
  CHECK(holders->count == 2);
  zk_strings_free(holders);
  EXPECT_OK(zk_semaphore_release(a, &released));
  CHECK(released);
  EXPECT_OK(zk_semaphore_acquire(c, true, 5000, &acquired));
  CHECK(acquired);
  EXPECT_OK(zk_semaphore_release(a, &released));
  CHECK(!released);
  EXPECT_OK(zk_semaphore_release(b, &released));
  EXPECT_OK(zk_semaphore_release(c, &released));
  zk_semaphore_free(a);
  zk_semaphore_free(b);
  zk_semaphore_free(c);
  zk_semaphore_free(mismatched);
  zk_semaphore_free(NULL);
  zk_client_free(client);
}

typedef struct semaphore_job {
  zk_semaphore *semaphore;
  int rc;
  long took_ms;
} semaphore_job;

static void *acquire_lease(void *userdata) {
  semaphore_job *job = userdata;
  bool acquired = false;
  long started = now_ms();
  job->rc = zk_semaphore_acquire(job->semaphore, true, 5000, &acquired);
  job->took_ms = now_ms() - started;
  return NULL;
}

static int lock_contenders_are(zk_client *client, const char *path, int count) {
  zk_lock *observer = NULL;
  zk_strings *names = NULL;
  if (zk_lock_new(client, path, "o", ZK_LOCK_EXCLUSIVE, &observer) != ZK_OK) return 0;
  int same = zk_lock_contenders(observer, &names) == ZK_OK && (int)names->count == count;
  zk_strings_free(names);
  zk_lock_free(observer);
  return same;
}

/* b waits for a lease while holding the inner lock <path>-__lock__; c waits for that lock:
 * a cancel must stop c there, not at its timeout. */
static void test_semaphore_cancel_reaches_a_waiting_contender(zk_server *server) {
  zk_client *clients[3];
  zk_semaphore *holders[3];
  const char *names[3] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    clients[i] = connect_to(server);
    REQUIRE_OK(zk_semaphore_new(clients[i], "/busy", names[i], 1, &holders[i]));
  }
  bool acquired = false, released = false;
  EXPECT_OK(zk_semaphore_acquire(holders[0], true, 1000, &acquired));
  semaphore_job b = {holders[1], -1, 0}, c = {holders[2], -1, 0};
  pthread_t b_thread, c_thread;
  pthread_create(&b_thread, NULL, acquire_lease, &b);
  CHECK(WAIT_FOR(lock_contenders_are(clients[0], "/busy-__lock__", 1), 5000));
  pthread_create(&c_thread, NULL, acquire_lease, &c);
  CHECK(WAIT_FOR(lock_contenders_are(clients[0], "/busy-__lock__", 2), 5000));
  long cancelled_at = now_ms();
  EXPECT_OK(zk_semaphore_cancel(holders[2]));
  pthread_join(c_thread, NULL);
  CHECK(c.rc == ZK_CANCELLED);
  CHECK(now_ms() - cancelled_at < 1000);
  EXPECT_OK(zk_semaphore_release(holders[0], &released));
  pthread_join(b_thread, NULL);
  CHECK(b.rc == ZK_OK);
  EXPECT_OK(zk_semaphore_release(holders[1], &released));
  CHECK(released);
  for (int i = 0; i < 3; i++) {
    zk_semaphore_free(holders[i]);
    zk_client_free(clients[i]);
  }
}

/* A blocking acquire inside a watcher of the lock's own client could only time out (the
 * wake-up queues behind it): it answers ZK_INVALID_STATE at once. */
typedef struct in_callback {
  zk_lock *lock;
  zk_leader_latch *latch;
  int lock_rc, try_rc, await_rc;
  long took_ms;
  int done;
} in_callback;

static void acquire_in_watcher(void *userdata, const zk_watch_event *event) {
  in_callback *call = userdata;
  if (event->event_type != 1 /* created */) return;
  bool acquired = true, leader = true;
  long started = now_ms();
  call->lock_rc = zk_lock_acquire(call->lock, true, 3000, &acquired);
  call->try_rc = zk_lock_acquire(call->lock, false, 0, &acquired);
  call->await_rc = zk_leader_latch_await(call->latch, -1, &leader);
  call->took_ms = now_ms() - started;
  __atomic_store_n(&call->done, 1, __ATOMIC_SEQ_CST);
}

static void test_blocking_calls_inside_callbacks(zk_server *server) {
  zk_client *holder_client = connect_to(server), *client = connect_to(server);
  zk_lock *holder = NULL;
  in_callback call = {NULL, NULL, -1, -1, -1, 0, 0};
  REQUIRE_OK(zk_lock_new(holder_client, "/cb-lock", "h", ZK_LOCK_EXCLUSIVE, &holder));
  REQUIRE_OK(zk_lock_new(client, "/cb-lock", "x", ZK_LOCK_EXCLUSIVE, &call.lock));
  REQUIRE_OK(zk_leader_latch_new(client, "/cb-latch", "x", NULL, NULL, &call.latch));
  bool acquired = false;
  EXPECT_OK(zk_lock_acquire(holder, true, 1000, &acquired));
  EXPECT_RC(zk_exists(client, "/go", acquire_in_watcher, &call, NULL), ZK_NONODE);
  EXPECT_OK(zk_create(holder_client, "/go", NULL, 0, NULL, 0, ZK_PERSISTENT, -1, NULL, NULL));
  CHECK(WAIT_FOR(__atomic_load_n(&call.done, __ATOMIC_SEQ_CST), 5000));
  CHECK(call.lock_rc == ZK_INVALID_STATE);
  CHECK(call.try_rc == ZK_OK); /* a non-blocking look is fine */
  CHECK(call.await_rc == ZK_INVALID_STATE);
  CHECK(call.took_ms < 1000);
  bool released = false;
  EXPECT_OK(zk_lock_release(holder, &released));
  zk_lock_free(holder);
  zk_lock_free(call.lock);
  zk_leader_latch_free(call.latch);
  zk_client_free(holder_client);
  zk_client_free(client);
}

/* With the server gone, retries stop at the caller's timeout; a non-blocking call makes one
 * attempt. */
static void test_retries_end_at_the_callers_timeout(void) {
  char data_dir[] = "/tmp/zkrs-recipes-XXXXXX";
  if (mkdtemp(data_dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  zk_server_options options;
  zk_server_options_init(&options);
  options.data_dir = data_dir;
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(&options, &server));
  zk_client *client = connect_to(server);
  zk_lock *lock = NULL;
  REQUIRE_OK(zk_lock_new(client, "/l", "x", ZK_LOCK_EXCLUSIVE, &lock));
  /* a durable server's in-process clients lose their connection for good when it stops */
  EXPECT_OK(zk_server_stop(server));
  bool acquired = false;
  long started = now_ms();
  EXPECT_RC(zk_lock_acquire(lock, true, 100, &acquired), ZK_CONNECTIONLOSS);
  long took = now_ms() - started;
  CHECK(took < 600);
  started = now_ms();
  EXPECT_RC(zk_lock_acquire(lock, false, 0, &acquired), ZK_CONNECTIONLOSS);
  CHECK(now_ms() - started < 100);
  zk_lock_free(lock);
  zk_client_free(client);
  zk_server_free(server);
  char command[64];
  snprintf(command, sizeof command, "rm -rf %s", data_dir);
  CHECK(system(command) == 0);
}

static int leaders_now = 0, leaders_peak = 0, led_count = 0;
static pthread_mutex_t leading_lock = PTHREAD_MUTEX_INITIALIZER;

static void lead(void *userdata) {
  (void)userdata;
  pthread_mutex_lock(&leading_lock);
  leaders_now++;
  if (leaders_now > leaders_peak) leaders_peak = leaders_now;
  led_count++;
  pthread_mutex_unlock(&leading_lock);
  sleep_ms(20);
  pthread_mutex_lock(&leading_lock);
  leaders_now--;
  pthread_mutex_unlock(&leading_lock);
}

static void *run_election(void *election) {
  bool led = false;
  int rc = zk_leader_election_run(election, lead, NULL, &led);
  return (void *)(long)(rc == ZK_OK && led ? 1 : rc == ZK_OK ? 2 : rc);
}

static void test_election(zk_server *server) {
  zk_client *clients[3];
  zk_leader_election *elections[3];
  pthread_t threads[3];
  for (int i = 0; i < 3; i++) {
    clients[i] = connect_to(server);
    REQUIRE_OK(zk_leader_election_new(clients[i], "/election", "c", &elections[i]));
    pthread_create(&threads[i], NULL, run_election, elections[i]);
  }
  for (int i = 0; i < 3; i++) {
    void *outcome = NULL;
    pthread_join(threads[i], &outcome);
    CHECK(outcome == (void *)1L);
  }
  CHECK(led_count == 3 && leaders_peak == 1);
  EXPECT_RC(zk_leader_election_run(elections[0], NULL, NULL, NULL), ZK_NULL_ARGUMENT);
  zk_strings *contenders = NULL;
  EXPECT_OK(zk_leader_election_contenders(elections[0], &contenders));
  CHECK(contenders->count == 0);
  zk_strings_free(contenders);
  /* cancelled before it leads: the function never runs */
  EXPECT_OK(zk_leader_election_cancel(elections[1]));
  void *outcome = run_election(elections[1]);
  CHECK(outcome == (void *)2L && led_count == 3);
  for (int i = 0; i < 3; i++) {
    zk_leader_election_free(elections[i]);
    zk_client_free(clients[i]);
  }
}

typedef struct heard {
  pthread_mutex_t lock;
  int changes[8];
  int count;
} heard;

static void on_leadership(void *userdata, bool leader) {
  heard *h = userdata;
  pthread_mutex_lock(&h->lock);
  if (h->count < 8) h->changes[h->count++] = leader;
  pthread_mutex_unlock(&h->lock);
}

static void test_latch(zk_server *server) {
  zk_client *first_client = connect_to(server), *second_client = connect_to(server);
  heard first_heard = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
  heard second_heard = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};
  zk_leader_latch *first = NULL, *second = NULL;
  REQUIRE_OK(zk_leader_latch_new(first_client, "/latch", "first", on_leadership, &first_heard,
                                 &first));
  REQUIRE_OK(zk_leader_latch_new(second_client, "/latch", "second", on_leadership, &second_heard,
                                 &second));
  bool leader = true;
  EXPECT_OK(zk_leader_latch_await(first, 0, &leader));
  CHECK(!leader); /* not started */
  EXPECT_OK(zk_leader_latch_start(first));
  EXPECT_RC(zk_leader_latch_start(first), ZK_INVALID_STATE);
  EXPECT_OK(zk_leader_latch_await(first, 5000, &leader));
  CHECK(leader);
  EXPECT_OK(zk_leader_latch_start(second));
  zk_strings *participants = NULL;
  CHECK(WAIT_FOR((zk_leader_latch_participants(first, &participants) == ZK_OK &&
                  strings_equal(participants, 2, (const char *[]){"first", "second"})), 5000));
  EXPECT_OK(zk_leader_latch_has_leadership(second, &leader));
  CHECK(!leader);
  EXPECT_OK(zk_leader_latch_close(first, true));
  EXPECT_OK(zk_leader_latch_close(first, true));
  EXPECT_OK(zk_leader_latch_await(second, 5000, &leader));
  CHECK(leader);
  CHECK(first_heard.count == 2 && first_heard.changes[0] == 1 && first_heard.changes[1] == 0);
  CHECK(WAIT_FOR(second_heard.count == 1, 5000) && second_heard.changes[0] == 1);
  EXPECT_RC(zk_leader_latch_await(second, -2, &leader), ZK_INVALID_ARGUMENT);
  zk_leader_latch_free(first);
  zk_leader_latch_free(second);
  zk_leader_latch_free(NULL);
  zk_client_free(first_client);
  zk_client_free(second_client);
}

/* Starts recipe_worker with its stdout on a pipe; returns its pid. */
static pid_t start_worker(const char *worker, const char *hosts, const char *role,
                          const char *path, FILE **output) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execl(worker, worker, hosts, role, path, (char *)NULL);
    _exit(127);
  }
  close(pipe_fds[1]);
  *output = fdopen(pipe_fds[0], "r");
  return pid;
}

static int read_line_is(FILE *output, const char *expected) {
  char line[64] = {0};
  if (fgets(line, sizeof line, output) == NULL) return 0;
  line[strcspn(line, "\n")] = 0;
  return strcmp(line, expected) == 0;
}

static void stop_worker(pid_t pid, FILE *output) {
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  fclose(output);
}

static void test_across_processes(const char *worker) {
  zk_server_options options;
  zk_server_options_init(&options);
  options.port = 0;
  options.tick_ms = 200;
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(&options, &server));
  char hosts[64];
  REQUIRE_OK(zk_server_address(server, hosts, sizeof hosts));
  zk_client *client = connect_to(server);

  /* a killed lock holder's lock passes on within its session timeout (2 s) */
  FILE *output = NULL;
  pid_t holder = start_worker(worker, hosts, "lock", "/shared-lock", &output);
  CHECK(read_line_is(output, "ACQUIRED"));
  zk_lock *lock = NULL;
  REQUIRE_OK(zk_lock_new(client, "/shared-lock", "tester", ZK_LOCK_EXCLUSIVE, &lock));
  bool acquired = true;
  EXPECT_OK(zk_lock_acquire(lock, false, 0, &acquired));
  CHECK(!acquired);
  long killed_at = now_ms();
  stop_worker(holder, output);
  EXPECT_OK(zk_lock_acquire(lock, true, 10000, &acquired));
  CHECK(acquired);
  long waited_ms = now_ms() - killed_at;
  CHECK(waited_ms >= 1000 && waited_ms < 2000 + 2000);
  zk_lock_free(lock);

  /* a killed leader's latch passes leadership on */
  pid_t leader = start_worker(worker, hosts, "latch", "/shared-latch", &output);
  CHECK(read_line_is(output, "LEADER"));
  zk_leader_latch *latch = NULL;
  REQUIRE_OK(zk_leader_latch_new(client, "/shared-latch", "tester", NULL, NULL, &latch));
  EXPECT_OK(zk_leader_latch_start(latch));
  bool leading = true;
  EXPECT_OK(zk_leader_latch_await(latch, 300, &leading));
  CHECK(!leading);
  killed_at = now_ms();
  stop_worker(leader, output);
  EXPECT_OK(zk_leader_latch_await(latch, 10000, &leading));
  CHECK(leading && now_ms() - killed_at < 2000 + 2000);
  zk_leader_latch_free(latch);
  zk_client_free(client);
  zk_server_free(server);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_recipes PATH-TO-recipe_worker\n");
    return 2;
  }
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(NULL, &server));
  test_locks(server);
  test_semaphore(server);
  test_election(server);
  test_latch(server);
  test_semaphore_cancel_reaches_a_waiting_contender(server);
  test_blocking_calls_inside_callbacks(server);
  zk_server_free(server);
  test_retries_end_at_the_callers_timeout();
  test_across_processes(argv[1]);
  return finish("test_recipes");
}
