/*
 * test_tls.c -- wss:// through the TLS transport (transport_tls.c, tls.c)
 * with a real OpenSSL client on 127.0.0.1 against a throwaway CA made with
 * the `openssl` command: echo over TLS 1.2 and 1.3, ALPN, TLS 1.1 refused,
 * SNI, reload, encrypted keys, ticket resumption, and the faults (plain
 * HTTP, garbage, a stalled handshake, close_notify inside a frame).
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fx F;
static char dir[64];

/* The CA, a certificate for localhost and one for other.test (its key
 * encrypted with "secret"). */
static void make_certs(void) {
  snprintf(dir, sizeof dir, "/tmp/wire-tls-%d", (int)getpid());
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "set -e; mkdir -p %s; cd %s; "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
           "-out ca.pem -days 2 -subj /CN=TestCA 2>/dev/null; "
           "for n in localhost other.test; do "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key "
           "-out $n.csr -subj /CN=$n 2>/dev/null; "
           "printf 'subjectAltName=DNS:%%s\\n' $n > $n.ext; "
           "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem "
           "-days 2 -extfile $n.ext 2>/dev/null; done; "
           "openssl pkey -in other.test.key -aes256 -passout pass:secret -out other.test.enc "
           "2>/dev/null",
           dir, dir);
  cr_assert_eq(system(cmd), 0, "openssl could not make the test certificates");
}

static void path(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
}

static wire_tls_cert certs[2];
static char files[4][128];

static void setup(void) {
  memset(&F, 0, sizeof F);
  make_certs();
  path(files[0], 128, "localhost.pem");
  path(files[1], 128, "localhost.key");
  path(files[2], 128, "other.test.pem");
  path(files[3], 128, "other.test.enc");
  memset(certs, 0, sizeof certs);
  certs[0].cert_file = files[0];
  certs[0].key_file = files[1];
  certs[1].server_name = "other.test";
  certs[1].cert_file = files[2];
  certs[1].key_file = files[3];
  certs[1].key_password = "secret";
}

static void teardown(void) {
  fx_stop(&F);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 60);

/* An echo server listening with TLS (both certificates). */
static void start(const wire_server_options *so) {
  cr_assert_eq(wire_server_new(so, &F.server), 0);
  F.pump.server = F.server;
  F.echo = 1;
  wire_error err;
  cr_assert_eq(wire_endpoint_add(F.server, "/", NULL, &fx_callbacks, &F, &F.ep, &err), 0);
  wire_tls_options o = {.certs = certs, .n_certs = 2};
  int r = wire_server_listen_tls(F.server, "127.0.0.1", 0, &o, &err);
  cr_assert_eq(r, 0, "listen_tls: %s", err.message);
  F.port = wire_server_port(F.server);
}

/* ---- a pumped OpenSSL client ------------------------------------------------ */

typedef struct cli {
  SSL_CTX *ctx;
  SSL *ssl;
  int fd;
} cli;

/* Retry an SSL call while it wants I/O, pumping the server; its result. */
#define PUMPED(ssl, expr)                                                                          \
  ({                                                                                               \
    int r_;                                                                                        \
    uint64_t end_ = wt_now_ms() + 5000;                                                            \
    for (;;) {                                                                                     \
      r_ = (expr);                                                                                 \
      int e_ = r_ > 0 ? 0 : SSL_get_error((ssl), r_);                                              \
      if ((e_ != SSL_ERROR_WANT_READ && e_ != SSL_ERROR_WANT_WRITE) || wt_now_ms() > end_)         \
        break;                                                                                     \
      wt_pump_once(&F.pump, 2);                                                                    \
    }                                                                                              \
    r_;                                                                                            \
  })

static SSL_CTX *client_ctx(int min, int max) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  char ca[128];
  path(ca, sizeof ca, "ca.pem");
  cr_assert_eq(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_min_proto_version(ctx, min);
  SSL_CTX_set_max_proto_version(ctx, max);
  SSL_CTX_set_security_level(ctx, 0); /* let TLS 1.1 be offered */
  return ctx;
}

/* Run the TLS handshake on the connected c->fd: 1 on success. */
static int cli_handshake(cli *c, SSL_CTX *ctx, const char *sni, SSL_SESSION *resume) {
  c->ctx = ctx;
  c->ssl = SSL_new(ctx);
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_tlsext_host_name(c->ssl, sni);
  SSL_set1_host(c->ssl, sni);
  SSL_set_alpn_protos(c->ssl, (const unsigned char *)"\x08http/1.1", 9);
  if (resume)
    SSL_set_session(c->ssl, resume);
  int r = PUMPED(c->ssl, SSL_connect(c->ssl));
  ERR_clear_error();
  return r == 1;
}

/* Connect and run the TLS handshake: 1 on success. */
static int cli_open(cli *c, SSL_CTX *ctx, const char *sni, SSL_SESSION *resume) {
  c->fd = wt_connect(F.port);
  cr_assert_geq(c->fd, 0);
  return cli_handshake(c, ctx, sni, resume);
}

static void cli_close(cli *c) {
  SSL_free(c->ssl);
  close(c->fd);
}

static void cli_write(cli *c, const void *d, size_t n) {
  size_t done = 0;
  while (done < n) {
    int r = PUMPED(c->ssl, SSL_write(c->ssl, (const char *)d + done, (int)(n - done)));
    cr_assert_gt(r, 0, "SSL_write failed");
    done += (size_t)r;
  }
}

/* Read exactly n bytes; returns how many arrived before EOF/timeout. */
static size_t cli_read(cli *c, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    int r = PUMPED(c->ssl, SSL_read(c->ssl, (char *)buf + got, (int)(n - got)));
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  ERR_clear_error();
  return got;
}

/* The upgrade over TLS: 1 on 101. */
static int cli_upgrade(cli *c) {
  const char *req = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n";
  cli_write(c, req, strlen(req));
  char head[1024];
  size_t n = 0;
  while (n < sizeof head - 1 && cli_read(c, head + n, 1) == 1) {
    n++;
    if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
      break;
  }
  head[n] = 0;
  return strncmp(head, "HTTP/1.1 101", 12) == 0;
}

/* Send one masked text/binary frame and read the echoed frame's payload. */
static void cli_echo(cli *c, const uint8_t *payload, size_t len) {
  uint8_t *f = malloc(len + 14);
  size_t fl = wt_frame(f, 1, 2, payload, len, 1);
  cli_write(c, f, fl);
  free(f);
  uint8_t h[10];
  cr_assert_eq(cli_read(c, h, 2), 2);
  size_t n = h[1] & 0x7f, hl = n == 126 ? 2 : n == 127 ? 8 : 0;
  cr_assert_eq(cli_read(c, h + 2, hl), hl);
  if (hl) {
    n = 0;
    for (size_t i = 0; i < hl; i++)
      n = n << 8 | h[2 + i];
  }
  cr_assert_eq(n, len);
  uint8_t *back = malloc(len + 1);
  cr_assert_eq(cli_read(c, back, len), len);
  cr_assert(memcmp(back, payload, len) == 0);
  free(back);
}

/* The peer's certificate CN. */
static void peer_cn(cli *c, char *out, size_t cap) {
  X509 *x = SSL_get1_peer_certificate(c->ssl);
  cr_assert_not_null(x);
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap);
  X509_free(x);
}

/* ---- tests -------------------------------------------------------------------- */

static void echo_over(int version) {
  start(NULL);
  cli c;
  SSL_CTX *ctx = client_ctx(version, version);
  cr_assert(cli_open(&c, ctx, "localhost", NULL), "TLS handshake failed");
  cr_assert_eq(SSL_version(c.ssl), version);
  const unsigned char *alpn;
  unsigned alen;
  SSL_get0_alpn_selected(c.ssl, &alpn, &alen);
  cr_assert(alen == 8 && memcmp(alpn, "http/1.1", 8) == 0, "ALPN http/1.1 not selected");
  cr_assert(cli_upgrade(&c));
  FX_PUMP_UNTIL(&F, F.n_connect == 1);
  cr_assert_eq(F.n_connect, 1);
  cli_echo(&c, (const uint8_t *)"hello", 5);
  size_t big = 1u << 20;
  uint8_t *p = malloc(big);
  for (size_t i = 0; i < big; i++)
    p[i] = (uint8_t)(i * 31);
  cli_echo(&c, p, big); /* more than the socket takes at once: our own writes */
  free(p);
  PUMPED(c.ssl, SSL_shutdown(c.ssl)); /* close_notify between frames: a clean EOF */
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  cr_assert_eq(F.n_close, 1);
  cli_close(&c);
  SSL_CTX_free(ctx);
}

Test(tls, echo_tls13) {
  echo_over(TLS1_3_VERSION);
}

Test(tls, echo_tls12) {
  echo_over(TLS1_2_VERSION);
}

/* A drain (a worker's rolling replace) takes in what waits in a TLS
 * listener's backlog as TLS connections. */
Test(tls, drain_serves_the_tls_backlog) {
  start(NULL);
  cli c;
  c.fd = wt_connect(F.port); /* connected, not yet accepted: the server has not run */
  cr_assert_geq(c.fd, 0);
  usleep(20000);
  cr_assert_eq(wire_server_drain(F.server, 5000, NULL, NULL), 0);
  SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
  cr_assert(cli_handshake(&c, ctx, "localhost", NULL), "TLS handshake failed");
  cr_assert(cli_upgrade(&c));
  cli_echo(&c, (const uint8_t *)"drained", 7);
  cli_close(&c);
  SSL_CTX_free(ctx);
  FX_PUMP_UNTIL(&F, wire_server_process(F.server) == 0); /* the last one gone: shut down */
  cr_assert_eq(wire_server_free(F.server), 0);
  F.server = NULL;
}

Test(tls, tls11_refused) {
  start(NULL);
  cli c;
  SSL_CTX *ctx = client_ctx(TLS1_1_VERSION, TLS1_1_VERSION);
  cr_assert_not(cli_open(&c, ctx, "localhost", NULL), "TLS 1.1 was accepted");
  cr_assert(wt_wait_eof(&F.pump, c.fd, 3000));
  cr_assert_eq(F.n_connect, 0);
  cli_close(&c);
  SSL_CTX_free(ctx);
}

Test(tls, sni_picks_certificate_and_encrypted_key_loads) {
  start(NULL);
  char cn[64];
  SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
  cli c;
  cr_assert(cli_open(&c, ctx, "other.test", NULL));
  peer_cn(&c, cn, sizeof cn);
  cr_assert_str_eq(cn, "other.test");
  cli_close(&c);
  cr_assert(cli_open(&c, ctx, "localhost", NULL));
  peer_cn(&c, cn, sizeof cn);
  cr_assert_str_eq(cn, "localhost");
  cli_close(&c);
  SSL_CTX_free(ctx);
}

Test(tls, wrong_password_and_bad_files_are_clear_errors) {
  cr_assert_eq(wire_server_new(NULL, &F.server), 0);
  F.pump.server = F.server;
  wire_tls_cert bad = certs[1];
  bad.key_password = "nope";
  wire_tls_options o = {.certs = &bad, .n_certs = 1};
  wire_error err;
  cr_assert_eq(wire_server_listen_tls(F.server, "127.0.0.1", 0, &o, &err), WIRE_EINVAL);
  cr_assert(strstr(err.message, "private key") != NULL, "%s", err.message);
  bad = certs[0];
  bad.cert_file = "/nonexistent.pem";
  cr_assert_eq(wire_server_listen_tls(F.server, "127.0.0.1", 0, &o, &err), WIRE_EINVAL);
  cr_assert(strstr(err.message, "/nonexistent.pem") != NULL, "%s", err.message);
  bad = certs[0];
  bad.key_file = files[3]; /* other.test's key for localhost's certificate */
  bad.key_password = "secret";
  cr_assert_eq(wire_server_listen_tls(F.server, "127.0.0.1", 0, &o, &err), WIRE_EINVAL);
  cr_assert(strstr(err.message, "does not match") != NULL, "%s", err.message);
  wire_tls_options co = {.certs = certs, .n_certs = 1, .ca_pem = "not a certificate"};
  cr_assert_eq(wire_server_listen_tls(F.server, "127.0.0.1", 0, &co, &err), WIRE_EINVAL);
  cr_assert(strstr(err.message, "cannot load CA") != NULL, "%s", err.message);
  cr_assert_eq(wire_server_tls_reload(F.server, &o, &err), WIRE_ESTATE);
  F.done = 1; /* never listened */
}

/* ca_file or ca_pem: a client must present a certificate the CA signed
 * (localhost's serves as the client's: no EKU, signed by the test CA). */
static void client_certificate_required(int as_pem) {
  cr_assert_eq(wire_server_new(NULL, &F.server), 0);
  F.pump.server = F.server;
  F.echo = 1;
  wire_error err;
  cr_assert_eq(wire_endpoint_add(F.server, "/", NULL, &fx_callbacks, &F, &F.ep, &err), 0);
  char ca[128], pem[8192] = "";
  path(ca, sizeof ca, "ca.pem");
  FILE *fp = fopen(ca, "r");
  cr_assert_not_null(fp);
  size_t n = fread(pem, 1, sizeof pem - 1, fp);
  fclose(fp);
  wire_tls_options o = {.certs = certs, .n_certs = 1};
  if (as_pem) {
    o.ca_pem = pem;
    o.ca_pem_len = n;
  } else {
    o.ca_file = ca;
  }
  cr_assert_eq(wire_server_listen_tls(F.server, "127.0.0.1", 0, &o, &err), 0, "%s", err.message);
  F.port = wire_server_port(F.server);
  cli c;
  /* TLS 1.2: the refusal comes inside the client's handshake */
  SSL_CTX *anon = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
  cr_assert_not(cli_open(&c, anon, "localhost", NULL), "a client without a certificate got in");
  cli_close(&c);
  SSL_CTX *mine = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
  cr_assert_eq(SSL_CTX_use_certificate_chain_file(mine, files[0]), 1);
  cr_assert_eq(SSL_CTX_use_PrivateKey_file(mine, files[1], SSL_FILETYPE_PEM), 1);
  cr_assert(cli_open(&c, mine, "localhost", NULL), "the client's certificate was refused");
  cr_assert(cli_upgrade(&c));
  cli_echo(&c, (const uint8_t *)"signed", 6);
  cr_assert_eq(F.n_connect, 1);
  cli_close(&c);
  SSL_CTX_free(anon);
  SSL_CTX_free(mine);
}

Test(tls, ca_file_requires_a_client_certificate) {
  client_certificate_required(0);
}

Test(tls, ca_pem_requires_a_client_certificate) {
  client_certificate_required(1);
}

Test(tls, reload_swaps_certificate_for_new_connections) {
  start(NULL);
  SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
  cli a;
  cr_assert(cli_open(&a, ctx, "localhost", NULL));
  cr_assert(cli_upgrade(&a));
  /* the default certificate becomes other.test's (PEM in memory this time) */
  FILE *fp = fopen(files[2], "r");
  char pem[4096];
  size_t n = fread(pem, 1, sizeof pem, fp);
  fclose(fp);
  wire_tls_cert nc = {
      .cert_pem = pem, .cert_pem_len = n, .key_file = files[3], .key_password = "secret"};
  wire_tls_options o = {.certs = &nc, .n_certs = 1};
  wire_error err;
  cr_assert_eq(wire_server_tls_reload(F.server, &o, &err), 0, "%s", err.message);
  cli b;
  SSL_CTX *any = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
  SSL_CTX_set_verify(any, SSL_VERIFY_NONE, NULL);
  cr_assert(cli_open(&b, any, "localhost", NULL));
  char cn[64];
  peer_cn(&b, cn, sizeof cn);
  cr_assert_str_eq(cn, "other.test");
  cli_echo(&a, (const uint8_t *)"still here", 10); /* the old connection is untouched */
  cli_close(&a);
  cli_close(&b);
  SSL_CTX_free(ctx);
  SSL_CTX_free(any);
}

Test(tls, session_ticket_resumes) {
  start(NULL);
  SSL_CTX *ctx = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
  cli a;
  cr_assert(cli_open(&a, ctx, "localhost", NULL));
  cr_assert(cli_upgrade(&a)); /* reading delivers the ticket */
  SSL_SESSION *sess = SSL_get1_session(a.ssl);
  cr_assert(SSL_SESSION_is_resumable(sess));
  cli b;
  cr_assert(cli_open(&b, ctx, "localhost", sess));
  cr_assert(SSL_session_reused(b.ssl), "the session was not resumed");
  SSL_SESSION_free(sess);
  cli_close(&a);
  cli_close(&b);
  SSL_CTX_free(ctx);
}

/* Raw bytes to the TLS port: the server closes without an on_connect. */
static void raw_refused(const char *bytes, size_t n) {
  start(NULL);
  int fd = wt_connect(F.port);
  wt_write(&F.pump, fd, bytes, n);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000), "the socket stayed open");
  cr_assert_eq(F.n_connect, 0);
  close(fd);
}

Test(tls, plain_http_to_tls_port_closes) {
  const char *r = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
  raw_refused(r, strlen(r));
}

Test(tls, garbage_client_hello_closes) {
  /* a handshake record whose ClientHello is nonsense */
  uint8_t g[64] = {0x16, 0x03, 0x01, 0x00, 59, 0x01, 0x00, 0x00, 55};
  for (int i = 9; i < 64; i++)
    g[i] = (uint8_t)(i * 97);
  raw_refused((const char *)g, sizeof g);
}

Test(tls, stalled_handshake_times_out) {
  wire_server_options so = {.handshake_timeout_ms = 200};
  start(&so);
  int fd = wt_connect(F.port);
  const uint8_t half[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01}; /* a record header, then nothing */
  wt_write(&F.pump, fd, half, sizeof half);
  uint64_t t0 = wt_now_ms();
  cr_assert(wt_wait_eof(&F.pump, fd, 3000));
  cr_assert_lt(wt_now_ms() - t0, 2000);
  close(fd);
}

Test(tls, close_notify_inside_a_frame) {
  start(NULL);
  SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
  cli c;
  cr_assert(cli_open(&c, ctx, "localhost", NULL));
  cr_assert(cli_upgrade(&c));
  FX_PUMP_UNTIL(&F, F.n_connect == 1);
  uint8_t f[64];
  size_t fl = wt_frame(f, 1, 1, "half a frame", 12, 1);
  cli_write(&c, f, fl - 5);
  PUMPED(c.ssl, SSL_shutdown(c.ssl));
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 1006);
  cr_assert_eq(F.n_message, 0);
  cli_close(&c);
  SSL_CTX_free(ctx);
}

Test(tls, renegotiation_refused) {
  start(NULL);
  SSL_CTX *ctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
  cli c;
  cr_assert(cli_open(&c, ctx, "localhost", NULL));
  cr_assert(cli_upgrade(&c));
  cr_assert_eq(SSL_renegotiate(c.ssl), 1);
  int r = PUMPED(c.ssl, SSL_do_handshake(c.ssl));
  ERR_clear_error();
  cr_assert_neq(r, 1, "the server renegotiated");
  cli_close(&c);
  SSL_CTX_free(ctx);
}
