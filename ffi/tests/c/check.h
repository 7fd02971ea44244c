/* A minimal harness for the C tests: CHECK records a failure with its line and goes on;
 * EXPECT_RC compares zk_result codes by name; finish() prints "N passed, N failed";
 * connect_tcp and start_tcp_server run a test over TCP as well as in process. */
#ifndef ZKRS_CHECK_H
#define ZKRS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zookeeper_rs.h"

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(condition)                                                          \
  do {                                                                            \
    if (condition) {                                                              \
      checks_passed++;                                                            \
    } else {                                                                      \
      checks_failed++;                                                            \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
    }                                                                             \
  } while (0)

#define EXPECT_RC(call, expected)                                                 \
  do {                                                                            \
    int rc_ = (int)(call);                                                        \
    if (rc_ == (int)(expected)) {                                                 \
      checks_passed++;                                                            \
    } else {                                                                      \
      checks_failed++;                                                            \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s\n", __FILE__,      \
              __LINE__, #call, rc_, zk_result_message(rc_), #expected);           \
    }                                                                             \
  } while (0)

#define EXPECT_OK(call) EXPECT_RC(call, ZK_OK)

/* Fails the test at once: for setup that later checks cannot do without. */
#define REQUIRE_OK(call)                                                          \
  do {                                                                            \
    int rc_ = (int)(call);                                                        \
    if (rc_ != ZK_OK) {                                                           \
      fprintf(stderr, "%s:%d: %s returned %d (%s)\n", __FILE__, __LINE__, #call,  \
              rc_, zk_result_message(rc_));                                       \
      exit(2);                                                                    \
    }                                                                             \
  } while (0)

static inline int finish(const char *name) {
  printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
  return checks_failed == 0 ? 0 : 1;
}

static inline void sleep_ms(long ms) {
  struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&pause, NULL);
}

static inline long now_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000L + now.tv_nsec / 1000000L;
}

/* Polls `condition` every 5 ms for up to `limit_ms`; true if it became true. */
#define WAIT_FOR(condition, limit_ms)                                             \
  ({                                                                              \
    long deadline_ = now_ms() + (limit_ms);                                       \
    while (!(condition) && now_ms() < deadline_) sleep_ms(5);                     \
    (condition);                                                                  \
  })

/* How a test opens a client on an embedded server: in process (zk_server_connect) or over
 * TCP (connect_tcp, which needs a server started with a port). */
typedef zk_result (*connect_fn)(const zk_server *server, const zk_client_options *options,
                                zk_client **client_out);

static inline zk_result connect_tcp(const zk_server *server, const zk_client_options *options,
                                    zk_client **client_out) {
  char hosts[64];
  zk_result rc = zk_server_address(server, hosts, sizeof hosts);
  return rc != ZK_OK ? rc : zk_client_connect(hosts, options, client_out);
}

/* An embedded server in memory that also serves TCP on a free port. */
static inline zk_server *start_tcp_server(void) {
  zk_server_options options;
  zk_server_options_init(&options);
  options.port = 0;
  zk_server *server = NULL;
  REQUIRE_OK(zk_server_start(&options, &server));
  return server;
}

#endif
