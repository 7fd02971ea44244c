/* Guards the C ABI's TLS options: a client that cannot reach a TLS client port, that connects
 * to a server its CA does not vouch for, or that fails without saying why (an unknown CA, a
 * refused certificate, an unreadable file). Run by run-c-tests.sh with a TLS server of ours:
 *   test_tls HOST:SECURE_PORT CERTS_DIR
 * where CERTS_DIR holds ca.pem, other-ca.pem, client-cert.pem, client-key.pem and
 * stranger-cert.pem/stranger-key.pem (signed by other-ca), and the server asks for a client
 * certificate and maps its subject to an x509 id ("CN=c-client"). */
#include "check.h"

static char ca[512], other_ca[512], cert[512], key[512], stranger_cert[512], stranger_key[512];

static zk_client_options tls_options(const char *ca_file, const char *cert_file,
                                     const char *key_file) {
  zk_client_options options;
  zk_client_options_init(&options);
  /* Generous: under valgrind a handshake takes a while. */
  options.session_timeout_ms = 15000;
  options.connect_timeout_ms = 15000;
  options.tls = true;
  options.tls_ca_file = ca_file;
  options.tls_cert_file = cert_file;
  options.tls_key_file = key_file;
  return options;
}

static void test_mutual_tls_and_the_x509_identity(const char *hosts) {
  zk_client_options options = tls_options(ca, cert, key);
  zk_client *zk = NULL;
  REQUIRE_OK(zk_client_connect(hosts, &options, &zk));
  zk_acl mine = {ZK_PERM_ALL, "x509", "CN=c-client"};
  EXPECT_OK(zk_create(zk, "/c-tls", (const uint8_t *)"v", 1, &mine, 1, ZK_PERSISTENT, -1,
                      NULL, NULL));
  zk_bytes *data = NULL;
  EXPECT_OK(zk_get(zk, "/c-tls", NULL, NULL, &data, NULL));
  CHECK(data != NULL && data->len == 1 && data->data[0] == 'v');
  zk_bytes_free(data);
  zk_identity_list *identities = NULL;
  EXPECT_OK(zk_whoami(zk, &identities));
  int found = 0;
  for (size_t i = 0; identities != NULL && i < identities->count; i++) {
    found |= strcmp(identities->items[i].scheme, "x509") == 0 &&
             strcmp(identities->items[i].id, "CN=c-client") == 0;
  }
  CHECK(found);
  zk_identity_list_free(identities);
  char why[256];
  EXPECT_RC(zk_client_connect_error(why, sizeof why), ZK_INVALID_STATE);
  zk_client_free(zk);
}

static void expect_refused(const char *hosts, zk_client_options options, zk_result code,
                           const char *because) {
  /* Refusals repeat until the connect timeout: one attempt (or a few) says why. */
  options.connect_timeout_ms = 4000;
  zk_client *zk = NULL;
  EXPECT_RC(zk_client_connect(hosts, &options, &zk), code);
  CHECK(zk == NULL);
  char why[512];
  EXPECT_OK(zk_client_connect_error(why, sizeof why));
  if (strstr(why, because) == NULL) {
    checks_failed++;
    fprintf(stderr, "expected \"%s\" in \"%s\"\n", because, why);
  }
  char tiny[4];
  EXPECT_RC(zk_client_connect_error(tiny, sizeof tiny), ZK_BUFFER_TOO_SMALL);
  EXPECT_RC(zk_client_connect_error(NULL, 64), ZK_NULL_ARGUMENT);
}

static void test_failures_say_why(const char *hosts) {
  expect_refused(hosts, tls_options(other_ca, cert, key), ZK_CONNECTIONLOSS, "UnknownIssuer");
  expect_refused(hosts, tls_options(ca, stranger_cert, stranger_key), ZK_CONNECTIONLOSS,
                 "alert");
  expect_refused(hosts, tls_options(ca, NULL, NULL), ZK_CONNECTIONLOSS, "alert");
  expect_refused(hosts, tls_options("/nonexistent/ca.pem", cert, key), ZK_BADARGUMENTS,
                 "/nonexistent/ca.pem");
  expect_refused(hosts, tls_options(NULL, cert, key), ZK_BADARGUMENTS, "CA file");
  expect_refused(hosts, tls_options(ca, NULL, key), ZK_BADARGUMENTS, "certfile");
  /* A key file given as the certificate: no certificate in it. */
  expect_refused(hosts, tls_options(ca, key, NULL), ZK_BADARGUMENTS, "no certificate");
  static const char bad_utf8[] = {'/', (char)0xff, 0};
  zk_client_options options = tls_options(bad_utf8, cert, key);
  zk_client *zk = NULL;
  EXPECT_RC(zk_client_connect(hosts, &options, &zk), ZK_INVALID_UTF8);
  /* Plain TCP to the TLS port: no answer the client takes for a session. */
  zk_client_options plain = tls_options(NULL, NULL, NULL);
  plain.tls = false;
  plain.connect_timeout_ms = 4000;
  EXPECT_RC(zk_client_connect(hosts, &plain, &zk), ZK_CONNECTIONLOSS);
}

static void test_skipping_verification_still_offers_the_certificate(const char *hosts) {
  zk_client_options options = tls_options(other_ca, cert, key);
  options.tls_skip_verification = true;
  zk_client *zk = NULL;
  REQUIRE_OK(zk_client_connect(hosts, &options, &zk));
  zk_bytes *data = NULL;
  EXPECT_OK(zk_get(zk, "/c-tls", NULL, NULL, &data, NULL));
  zk_bytes_free(data);
  zk_client_free(zk);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_tls HOST:SECURE_PORT CERTS_DIR\n");
    return 2;
  }
  const char *dir = argv[2];
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(other_ca, sizeof other_ca, "%s/other-ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/client-cert.pem", dir);
  snprintf(key, sizeof key, "%s/client-key.pem", dir);
  snprintf(stranger_cert, sizeof stranger_cert, "%s/stranger-cert.pem", dir);
  snprintf(stranger_key, sizeof stranger_key, "%s/stranger-key.pem", dir);
  test_mutual_tls_and_the_x509_identity(argv[1]);
  test_failures_say_why(argv[1]);
  test_skipping_verification_still_offers_the_certificate(argv[1]);
  return finish("test_tls");
}
