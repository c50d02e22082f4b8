/*
 * fuzz_tls.c -- libFuzzer target for the TLS transport's input path: each
 * input is sent, as a client would, to a TLS listener on 127.0.0.1 (fuzzed
 * ClientHello records, garbage, plain HTTP), the client half-closes, and the
 * server runs until it has closed the connection. The transport's BIO, the
 * handshake, alerts and the close path all run under ASan/UBSan; a
 * connection the server never closes (within 2 s) is a failure.
 */
#include <wirecore.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A throwaway self-signed P-256 certificate as PEM text. */
static void make_cert(char **cert, char **key) {
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  if (pk == NULL || x == NULL)
    abort();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pk);
  X509_NAME *n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
  X509_set_issuer_name(x, n);
  if (X509_sign(x, pk, EVP_sha256()) == 0)
    abort();
  BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, x);
  PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL);
  char *p;
  long len = BIO_get_mem_data(cb, &p);
  *cert = strndup(p, (size_t)len);
  len = BIO_get_mem_data(kb, &p);
  *key = strndup(p, (size_t)len);
  BIO_free(cb);
  BIO_free(kb);
  X509_free(x);
  EVP_PKEY_free(pk);
}

static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  wire_conn_send_binary(c, m->data, m->len);
}

static wire_server *server(void) {
  static wire_server *s;
  if (s != NULL)
    return s;
  char *cert, *key;
  make_cert(&cert, &key);
  wire_server_options so = {.handshake_timeout_ms = 1000};
  if (wire_server_new(&so, &s) != 0)
    abort();
  wire_callbacks cb = {.on_message = on_message};
  if (wire_endpoint_add(s, "/", NULL, &cb, NULL, NULL, NULL) != 0)
    abort();
  wire_tls_cert c = {.cert_pem = cert, .key_pem = key};
  wire_tls_options o = {.certs = &c, .n_certs = 1};
  if (wire_server_listen_tls(s, "127.0.0.1", 0, &o, NULL) != 0)
    abort();
  free(cert);
  free(key);
  return s;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Process the server while waiting for fd to be readable (or ms to pass). */
static void pump(wire_server *s, int fd, int ms) {
  struct pollfd p[2] = {{wire_server_fd(s), POLLIN, 0}, {fd, POLLIN, 0}};
  int t = wire_server_timeout(s);
  poll(p, 2, t < 0 || t > ms ? ms : t);
  wire_server_process(s);
}

/* Connect fd to sa. libFuzzer's SIGALRM (its -timeout check) can interrupt
 * the call: the connection then goes on in the background, so wait for it
 * and ask again (EALREADY while pending, EISCONN once made). 0, or -1 with
 * errno (ETIMEDOUT when it is not made within 2 s). */
static int connect_to(int fd, const struct sockaddr_in *sa) {
  uint64_t end = now_ms() + 2000;
  while (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
    if (errno == EISCONN)
      return 0;
    if (errno != EINTR && errno != EALREADY)
      return -1;
    if (now_ms() > end) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    poll(&p, 1, 10);
  }
  return 0;
}

/* Send all of data on a blocking fd, going on after a signal interrupts it;
 * aborts on an error. */
static void send_all(int fd, const uint8_t *data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      abort();
    data += n;
    size -= (size_t)n;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wire_server *s = server();
  if (size > 16384)
    size = 16384;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)wire_server_port(s))};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0)
    abort();
  /* Thousands of connections a second: a busy machine can run short of
   * local ports for a moment; that is not the server's fault, so such an
   * input is passed over (an interrupted connect is not: it is retried).
   * Many failures in a row (a listener that stopped accepting) still fail
   * the run. */
  static int failed_in_a_row;
  if (connect_to(fd, &sa) != 0) {
    fprintf(stderr, "fuzz_tls: connect: %s\n", strerror(errno));
    close(fd);
    if (++failed_in_a_row > 100)
      abort();
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
    return 0;
  }
  failed_in_a_row = 0;
  /* Loopback takes 16 KiB at once; the server reads as it runs. */
  send_all(fd, data, size);
  shutdown(fd, SHUT_WR);
  uint64_t end = now_ms() + 2000;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      break; /* closed by the server */
    if (now_ms() > end)
      abort(); /* the server kept a dead connection open */
    pump(s, fd, 10);
  }
  struct linger lg = {1, 0}; /* a reset: no TIME_WAIT left per input */
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  while (wire_server_timeout(s) == 0)
    wire_server_process(s);
  return 0;
}
