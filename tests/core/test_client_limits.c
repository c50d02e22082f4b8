/*
 * test_client_limits.c -- per-client limits over real 127.0.0.x sockets:
 * connections and upgrade requests per address (429 with Retry-After),
 * message and byte token buckets (drop or close 1008, exact counts), the
 * remote address taken from X-Forwarded-For / Forwarded only behind trusted
 * proxies, the Origin allow-list (403), address parsing, and no per-client
 * state at all when every limit is off.
 */
#include "conn_internal.h"
#include "support/fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static fx F;

static void teardown(void) {
  fx_stop(&F);
  memset(&F, 0, sizeof F);
}

TestSuite(client_limits, .fini = teardown, .timeout = 60);

/* A socket bound to 127.0.0.<host> connected to the server; -1 on error. */
static int connect_from(int host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)host);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "bind 127.0.0.%d", host);
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* Upgrade from 127.0.0.<host> with extra header lines; returns the status,
 * the response head in head, the socket in *fd (closed unless 101). */
static int upgrade_from(int host, const char *extra, char *head, size_t cap, int *fd) {
  *fd = connect_from(host, F.port);
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                   extra ? extra : "");
  wt_write(&F.pump, *fd, req, (size_t)n);
  int st = wt_read_http(&F.pump, *fd, head, cap, 3000);
  if (st != 101) {
    close(*fd);
    *fd = -1;
  }
  return st;
}

static wire_server_stats stats(void) {
  wire_server_stats st;
  cr_assert_eq(wire_server_stats_get(F.server, &st), 0);
  return st;
}

/* The remote address the last on_connect saw. */
static const char *remote(void) {
  static char buf[64];
  wire_str a = wire_request_remote_addr(wire_conn_request(F.conn));
  snprintf(buf, sizeof buf, "%.*s", (int)a.len, a.ptr);
  return buf;
}

Test(client_limits, per_address_refuses_the_next_with_429_while_others_connect) {
  wire_server_options so = {.max_connections_per_address = 2};
  fx_start(&F, &so, NULL, "/ws");
  char head[1024];
  int a1, a2, a3, b1;
  cr_assert_eq(upgrade_from(2, NULL, head, sizeof head, &a1), 101);
  cr_assert_eq(upgrade_from(2, NULL, head, sizeof head, &a2), 101);
  cr_assert_eq(upgrade_from(2, NULL, head, sizeof head, &a3), 429);
  cr_assert(strstr(head, "\r\nRetry-After: 1\r\n") != NULL, "%s", head);
  cr_assert_eq(upgrade_from(3, NULL, head, sizeof head, &b1), 101);
  cr_assert_eq(stats().refused_per_address, 1);
  cr_assert_eq(F.n_connect, 3);
  char text[65536]; /* /metrics counts it too */
  cr_assert_gt(wire_server_metrics_render(F.server, WIRE_METRICS_PROMETHEUS, text, sizeof text), 0);
  cr_assert(strstr(text, "wirecore_dropped_total{reason=\"per_address\"} 1\n"), "%s", text);
  /* a closed connection gives its place back */
  close(a1);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  cr_assert_eq(upgrade_from(2, NULL, head, sizeof head, &a3), 101);
  close(a2), close(a3), close(b1);
  FX_PUMP_UNTIL(&F, F.n_close == 4);
  cr_assert_eq(wire__climits_tracked(F.server), 0, "idle addresses are freed");
}

Test(client_limits, handshake_rate_allows_the_burst_then_429) {
  wire_server_options so = {.handshake_rate = 1, .handshake_burst = 3};
  fx_start(&F, &so, NULL, "/ws");
  char head[1024];
  int fd;
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(upgrade_from(4, NULL, head, sizeof head, &fd), 101, "upgrade %d", i);
    close(fd);
  }
  cr_assert_eq(upgrade_from(4, NULL, head, sizeof head, &fd), 429);
  cr_assert(strstr(head, "Retry-After: 1") != NULL);
  cr_assert_eq(upgrade_from(5, NULL, head, sizeof head, &fd), 101, "another address");
  close(fd);
  cr_assert_eq(stats().refused_handshake_rate, 1);
  cr_assert_eq(stats().refused_per_address, 0);
}

/* Open one connection from 127.0.0.2 and send `n` text messages `msgs`. */
static int send_texts(const char *const *msgs, int n) {
  int fd;
  char head[512];
  cr_assert_eq(upgrade_from(2, NULL, head, sizeof head, &fd), 101);
  uint8_t buf[4096];
  size_t len = 0;
  for (int i = 0; i < n; i++) /* one write: every message arrives at once */
    len += wt_frame(buf + len, 1, 1, msgs[i], strlen(msgs[i]), 1);
  wt_write(&F.pump, fd, buf, len);
  return fd;
}

Test(client_limits, message_rate_drops_exactly_the_excess) {
  wire_endpoint_options eo = {.message_rate = 1, .message_burst = 3};
  fx_start(&F, NULL, &eo, "/ws");
  const char *m[] = {"a", "b", "c", "d", "e", "f"};
  int fd = send_texts(m, 6);
  FX_PUMP_UNTIL(&F, stats().rate_limited_dropped == 3);
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(F.n_message, 3);
  cr_assert_str_eq(F.log, "a|b|c");
  cr_assert_eq(stats().rate_limited_dropped, 3);
  cr_assert_eq(stats().rate_limited_closed, 0);
  cr_assert_eq(F.n_close, 0, "dropping keeps the connection");
  close(fd);
}

Test(client_limits, message_rate_close_sends_1008) {
  wire_endpoint_options eo = {
      .message_rate = 1, .message_burst = 2, .rate_limit_action = WIRE_RATE_CLOSE};
  fx_start(&F, NULL, &eo, "/ws");
  const char *m[] = {"a", "b", "c", "d"};
  int fd = send_texts(m, 4);
  wt_msg msg;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &msg, 3000), 0);
  cr_assert_eq(msg.opcode, 8);
  cr_assert_eq(msg.close_code, 1008);
  cr_assert(msg.len >= 2 && memcmp(msg.data + 2, "rate limit", 10) == 0);
  wt_msg_free(&msg);
  cr_assert_eq(F.n_message, 2);
  cr_assert_eq(stats().rate_limited_closed, 1);
  cr_assert_eq(stats().rate_limited_dropped, 0);
  close(fd);
}

Test(client_limits, byte_rate_counts_payload_bytes) {
  wire_endpoint_options eo = {.byte_rate = 10};
  fx_start(&F, NULL, &eo, "/ws");
  const char *m[] = {"12345", "1234", "12", "1", "12345678901"};
  int fd = send_texts(m, 5);
  FX_PUMP_UNTIL(&F, stats().rate_limited_dropped == 2);
  wt_pump_for(&F.pump, 50);
  /* 5 + 4 pass, 2 is over (1 left), 1 passes, 11 is over the burst itself */
  cr_assert_str_eq(F.log, "12345|1234|1");
  cr_assert_eq(stats().rate_limited_dropped, 2);
  close(fd);
}

Test(client_limits, forwarded_for_is_honoured_only_from_trusted_proxies) {
  const char *proxies[] = {"127.0.0.5", "10.0.0.0/8"};
  wire_server_options so = {
      .max_connections_per_address = 1, .trusted_proxies = proxies, .n_trusted_proxies = 2};
  fx_start(&F, &so, NULL, "/ws");
  char head[512];
  int p1, p2, p3, u1;
  /* rightmost untrusted hop: 203.0.113.9 (10.1.2.3 is a trusted proxy) */
  cr_assert_eq(upgrade_from(5, "X-Forwarded-For: 198.51.100.1, 203.0.113.9, 10.1.2.3\r\n", head,
                            sizeof head, &p1),
               101);
  cr_assert_str_eq(remote(), "203.0.113.9");
  cr_assert_eq(upgrade_from(5, "X-Forwarded-For: 198.51.100.7\r\n", head, sizeof head, &p2), 101);
  cr_assert_str_eq(remote(), "198.51.100.7");
  /* the limit follows the forwarded address, not the proxy's */
  cr_assert_eq(upgrade_from(5, "X-Forwarded-For: 203.0.113.9\r\n", head, sizeof head, &p3), 429);
  /* an untrusted peer's header is ignored */
  cr_assert_eq(upgrade_from(6, "X-Forwarded-For: 198.51.100.8\r\n", head, sizeof head, &u1), 101);
  cr_assert_str_eq(remote(), "127.0.0.6");
  int f1, f2;
  cr_assert_eq(upgrade_from(5, "Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https\r\n", head,
                            sizeof head, &f1),
               101);
  cr_assert_str_eq(remote(), "2001:db8:cafe::17");
  /* IPv6 clients count per /64 */
  cr_assert_eq(
      upgrade_from(5, "Forwarded: for=\"[2001:db8:cafe::99]\"\r\n", head, sizeof head, &f2), 429);
  /* junk as the rightmost hop: the proxy's own address stays */
  cr_assert_eq(upgrade_from(5, "X-Forwarded-For: unknown\r\n", head, sizeof head, &f2), 101);
  cr_assert_str_eq(remote(), "127.0.0.5");
  cr_assert_eq(stats().refused_per_address, 2);
  close(p1), close(p2), close(u1), close(f1), close(f2);
}

Test(client_limits, bad_trusted_proxy_is_einval) {
  const char *proxies[] = {"10.0.0.0/33"};
  wire_server_options so = {.trusted_proxies = proxies, .n_trusted_proxies = 1};
  wire_server *s = NULL;
  cr_assert_eq(wire_server_new(&so, &s), WIRE_EINVAL);
  cr_assert_null(s);
  wire_endpoint_options eo = {.rate_limit_action = 7};
  cr_assert_eq(wire_server_new(NULL, &s), 0);
  cr_assert_eq(wire_endpoint_add(s, "/", &eo, NULL, NULL, NULL, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_free(s), 0);
}

Test(client_limits, cidr_parse) {
  uint8_t k[16];
  unsigned bits;
  cr_assert_eq(wire__cidr_parse("10.0.0.0/8", 10, k, &bits), 0);
  cr_assert_eq(bits, 104);
  cr_assert_eq(k[10], 0xff);
  cr_assert_eq(k[12], 10);
  cr_assert_eq(wire__cidr_parse("::1", 3, k, &bits), 0);
  cr_assert_eq(bits, 128);
  cr_assert_eq(k[15], 1);
  cr_assert_eq(wire__cidr_parse("[fd00::]/8", 10, k, &bits), 0);
  cr_assert_eq(bits, 8);
  const char *bad[] = {"", "10.0.0.0/", "10.0.0.0/x", "::1/129", "1.2.3", "host", "1.2.3.4/-1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_assert_eq(wire__cidr_parse(bad[i], strlen(bad[i]), k, &bits), WIRE_EINVAL, "%s", bad[i]);
}

Test(client_limits, origin_allow_list_answers_403) {
  const char *origins[] = {"https://app.example"};
  wire_endpoint_options eo = {.allowed_origins = origins, .n_allowed_origins = 1};
  fx_start(&F, NULL, &eo, "/ws");
  char head[512];
  int fd;
  cr_assert_eq(upgrade_from(2, "Origin: https://evil.example\r\n", head, sizeof head, &fd), 403);
  cr_assert_eq(upgrade_from(2, NULL, head, sizeof head, &fd), 403, "no Origin");
  cr_assert_eq(upgrade_from(2, "Origin: https://app.example\r\n", head, sizeof head, &fd), 101);
  close(fd);
  cr_assert_eq(F.n_connect, 1);
}

Test(client_limits, nothing_is_kept_when_limits_are_off) {
  fx_start(&F, NULL, NULL, "/ws");
  int fd = wt_open(&F.pump, F.port, "/ws");
  cr_assert_geq(fd, 0);
  cr_assert_null(F.server->climits);
  cr_assert_null(F.conn->x, "the message path checks one NULL pointer");
  close(fd);
}

Test(client_limits, an_address_is_forgotten_once_idle_and_refilled) {
  wire_server_options so = {.handshake_rate = 1, .handshake_burst = 1};
  fx_start(&F, &so, NULL, "/ws");
  char head[512];
  int fd;
  cr_assert_eq(upgrade_from(8, NULL, head, sizeof head, &fd), 101);
  close(fd);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  /* closed, but its bucket is empty: kept, or a reconnect loop would reset it */
  cr_assert_eq(wire__climits_tracked(F.server), 1);
  cr_assert_eq(upgrade_from(8, NULL, head, sizeof head, &fd), 429);
  fx_stop(&F);
  memset(&F, 0, sizeof F);

  so.handshake_rate = 1000; /* a token every millisecond */
  fx_start(&F, &so, NULL, "/ws");
  cr_assert_eq(upgrade_from(8, NULL, head, sizeof head, &fd), 101);
  wt_pump_for(&F.pump, 20);
  close(fd);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  cr_assert_eq(wire__climits_tracked(F.server), 0, "idle and full again: freed");
}
