/*
 * test_server.c -- listeners, the upgrade phase over real sockets (statuses,
 * limits, timeouts, routing, on_connect), max_connections, and graceful
 * shutdown (server.c).
 */
#include "support/fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static fx F;

static void setup(void) {
  memset(&F, 0, sizeof F);
}
static void teardown(void) {
  fx_stop(&F);
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 30);

#define UPGRADE_HEADERS                                                                            \
  "Host: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"                           \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

/* Send raw request text; return the status and keep the head. */
static int request(const char *text, char *head, size_t cap) {
  int fd = wt_connect(F.port);
  cr_assert_geq(fd, 0);
  wt_write(&F.pump, fd, text, strlen(text));
  int status = wt_read_http(&F.pump, fd, head, cap, 3000);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000) || status == 101, "socket left open after %d", status);
  close(fd);
  return status;
}

Test(server, upgrades_with_101_and_the_accept_key) {
  fx_start(&F, NULL, NULL, "/ws");
  char head[2048];
  int fd = wt_connect(F.port);
  wt_write(&F.pump, fd, "GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS "Sec-WebSocket-Version: 13\r\n\r\n",
           strlen("GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS "Sec-WebSocket-Version: 13\r\n\r\n"));
  cr_assert_eq(wt_read_http(&F.pump, fd, head, sizeof head, 3000), 101);
  cr_assert(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "%s", head);
  cr_assert_eq(F.n_connect, 1);
  cr_assert_eq(wire_server_connection_count(F.server), 1);
  close(fd);
}

Test(server, unknown_path_gets_404_and_the_socket_closes) {
  fx_start(&F, NULL, NULL, "/ws");
  char head[1024];
  cr_assert_eq(request("GET /other HTTP/1.1\r\n" UPGRADE_HEADERS
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       head, sizeof head),
               404);
  cr_assert_eq(F.n_connect, 0);
}

Test(server, wrong_version_gets_426_naming_version_13) {
  fx_start(&F, NULL, NULL, "/ws");
  char head[1024];
  cr_assert_eq(request("GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS "Sec-WebSocket-Version: 8\r\n\r\n",
                       head, sizeof head),
               426);
  cr_assert(strstr(head, "Sec-WebSocket-Version: 13"), "%s", head);
}

Test(server, non_get_gets_405) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(
      request("POST /ws HTTP/1.1\r\n" UPGRADE_HEADERS "Sec-WebSocket-Version: 13\r\n\r\n", NULL, 0),
      405);
}

Test(server, missing_key_gets_400) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(
      request("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n",
              NULL, 0),
      400);
}

Test(server, forbidden_origin_gets_403) {
  const char *origins[] = {"https://good.example"};
  wire_endpoint_options eo = {0};
  eo.allowed_origins = origins;
  eo.n_allowed_origins = 1;
  fx_start(&F, NULL, &eo, "/ws");
  cr_assert_eq(request("GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS
                       "Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n",
                       NULL, 0),
               403);
  int fd = wt_connect(F.port);
  cr_assert_eq(wt_handshake(&F.pump, fd, "/ws", "Origin: https://good.example\r\n"), 101);
  close(fd);
}

Test(server, negotiates_the_first_supported_subprotocol) {
  const char *protos[] = {"v2.chat", "v1.chat"};
  wire_endpoint_options eo = {0};
  eo.subprotocols = protos;
  eo.n_subprotocols = 2;
  fx_start(&F, NULL, &eo, "/ws");
  int fd = wt_connect(F.port);
  const char *req = "GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v1.chat, v2.chat\r\n\r\n";
  wt_write(&F.pump, fd, req, strlen(req));
  char head[2048];
  cr_assert_eq(wt_read_http(&F.pump, fd, head, sizeof head, 3000), 101);
  cr_assert(strstr(head, "Sec-WebSocket-Protocol: v2.chat\r\n"), "%s", head);
  cr_assert_str_eq(wire_request_subprotocol(wire_conn_request(F.conn)).ptr, "v2.chat");
  close(fd);
}

Test(server, on_connect_status_rejects_before_the_upgrade_without_on_close) {
  F.connect_verdict = 401;
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(
      request("GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS "Sec-WebSocket-Version: 13\r\n\r\n", NULL, 0),
      401);
  wt_pump_for(&F.pump, 20);
  cr_assert_eq(F.n_connect, 1);
  cr_assert_eq(F.n_close, 0);
  cr_assert_eq(wire_server_connection_count(F.server), 0);
}

Test(server, oversized_handshake_gets_431) {
  wire_server_options so = {0};
  so.max_handshake_size = 1024;
  fx_start(&F, &so, NULL, "/ws");
  char req[3000];
  int n = snprintf(req, sizeof req, "GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS "X-Pad: ");
  memset(req + n, 'p', 1500);
  req[n + 1500] = 0;
  cr_assert_eq(request(req, NULL, 0), 431);
}

Test(server, handshake_just_under_the_limit_is_accepted) {
  wire_server_options so = {0};
  so.max_handshake_size = 1024;
  fx_start(&F, &so, NULL, "/ws");
  char pad[700];
  memset(pad, 'p', sizeof pad - 1);
  pad[sizeof pad - 1] = 0;
  char extra[800];
  snprintf(extra, sizeof extra, "X-Pad: %s\r\n", pad);
  int fd = wt_connect(F.port);
  cr_assert_eq(wt_handshake(&F.pump, fd, "/ws", extra), 101);
  close(fd);
}

Test(server, slow_handshake_is_dropped_after_the_timeout) {
  wire_server_options so = {0};
  so.handshake_timeout_ms = 150;
  fx_start(&F, &so, NULL, "/ws");
  int fd = wt_connect(F.port);
  wt_write(&F.pump, fd, "GET /ws HTTP/1.1\r\nHost: x\r\n", 27);
  uint64_t t0 = wt_now_ms();
  cr_assert(wt_wait_eof(&F.pump, fd, 3000), "slow client kept its socket");
  uint64_t dt = wt_now_ms() - t0;
  cr_assert_geq(dt, 100);
  cr_assert_lt(dt, 2000);
  cr_assert_eq(F.n_connect, 0);
  close(fd);
}

Test(server, silent_client_is_dropped_after_the_handshake_timeout) {
  wire_server_options so = {0};
  so.handshake_timeout_ms = 100;
  fx_start(&F, &so, NULL, "/ws");
  int fd = wt_connect(F.port);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000));
  FX_PUMP_UNTIL(&F, wire_server_connection_count(F.server) == 0);
  cr_assert_eq(wire_server_connection_count(F.server), 0);
  close(fd);
}

Test(server, beyond_max_connections_answers_503) {
  wire_server_options so = {0};
  so.max_connections = 2;
  fx_start(&F, &so, NULL, "/ws");
  int a = wt_open(&F.pump, F.port, "/ws");
  int b = wt_open(&F.pump, F.port, "/ws");
  cr_assert_geq(a, 0);
  cr_assert_geq(b, 0);
  cr_assert_eq(
      request("GET /ws HTTP/1.1\r\n" UPGRADE_HEADERS "Sec-WebSocket-Version: 13\r\n\r\n", NULL, 0),
      503);
  close(a);
  uint64_t end = wt_now_ms() + 2000;
  while (F.n_close == 0 && wt_now_ms() < end)
    wt_pump_once(&F.pump, 5);
  int c = wt_open(&F.pump, F.port, "/ws");
  cr_assert_geq(c, 0, "a freed slot is not reused");
  close(b);
  close(c);
}

static int route_hits[2];
static void on_message_a(wire_conn *c, const wire_message *m, void *ud) {
  route_hits[0]++;
}
static void on_message_b(wire_conn *c, const wire_message *m, void *ud) {
  route_hits[1]++;
}

Test(server, routes_to_the_first_matching_endpoint_with_its_parameters) {
  fx_start(&F, NULL, NULL, "/chat/{room}");
  wire_callbacks a = {0}, b = {0};
  a.on_message = on_message_a;
  b.on_message = on_message_b;
  cr_assert_eq(wire_endpoint_add(F.server, "/item/{id:int}", NULL, &a, NULL, NULL, NULL), 0);
  cr_assert_eq(wire_endpoint_add(F.server, "/{rest:path}", NULL, &b, NULL, NULL, NULL), 0);
  int fd = wt_open(&F.pump, F.port, "/chat/lobby");
  cr_assert_str_eq(wire_request_param(wire_conn_request(F.conn), "room").ptr, "lobby");
  int fa = wt_open(&F.pump, F.port, "/item/42");
  int fb = wt_open(&F.pump, F.port, "/item/x");
  wt_send_frame(&F.pump, fa, 1, 0x1, "a", 1);
  wt_send_frame(&F.pump, fb, 1, 0x1, "b", 1);
  FX_PUMP_UNTIL(&F, route_hits[0] == 1 && route_hits[1] == 1);
  cr_assert_eq(route_hits[0], 1);
  cr_assert_eq(route_hits[1], 1);
  close(fd);
  close(fa);
  close(fb);
}

Test(server, endpoint_add_rejects_a_bad_pattern) {
  fx_start(&F, NULL, NULL, "/ok");
  wire_error err;
  cr_assert_eq(wire_endpoint_add(F.server, "no-slash", NULL, &fx_callbacks, NULL, NULL, &err),
               WIRE_EROUTE);
  cr_assert_eq(wire_endpoint_add(F.server, NULL, NULL, &fx_callbacks, NULL, NULL, &err),
               WIRE_EINVAL);
}

Test(server, listen_reports_address_in_use_and_bad_hosts) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_listen(F.server, "127.0.0.1", F.port), WIRE_EADDRINUSE);
  cr_assert_eq(wire_server_listen(F.server, "not an address", 0), WIRE_EINVAL);
  cr_assert_eq(wire_server_listen(F.server, "127.0.0.1", 70000), WIRE_EINVAL);
  cr_assert_eq(wire_server_listen(F.server, "::1", 0), 0);
  cr_assert_eq(wire_server_port(F.server), F.port, "the first listener's port");
}

Test(server, free_while_listening_is_ebusy) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_free(F.server), WIRE_EBUSY);
}

Test(server, never_listening_server_frees_at_once) {
  wire_server *s = NULL;
  cr_assert_eq(wire_server_new(NULL, &s), 0);
  cr_assert_eq(wire_server_port(s), -1);
  cr_assert_eq(wire_endpoint_add(s, "/x", NULL, NULL, NULL, NULL, NULL), 0);
  cr_assert_eq(wire_server_free(s), 0);
}

static void on_done(wire_server *s, void *ud) {
  (*(int *)ud)++;
}

Test(server, graceful_shutdown_sends_1001_waits_for_replies_then_calls_done) {
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/ws");
  int a = wt_open(&F.pump, F.port, "/ws");
  int b = wt_open(&F.pump, F.port, "/ws");
  int done = 0;
  cr_assert_eq(wire_server_shutdown(F.server, 5000, on_done, &done), 0);
  cr_assert_eq(wire_server_shutdown(F.server, 5000, on_done, &done), WIRE_ESTATE);
  cr_assert_eq(wire_server_listen(F.server, "127.0.0.1", 0), WIRE_ESTATE);
  /* new connections are refused */
  int late = wt_connect(F.port);
  if (late >= 0) {
    cr_assert(wt_wait_eof(&F.pump, late, 3000));
    close(late);
  }
  for (int i = 0; i < 2; i++) {
    int fd = i ? b : a;
    wt_msg m;
    cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
    cr_assert_eq(m.opcode, 0x8);
    cr_assert_eq(m.close_code, 1001);
    wt_msg_free(&m);
  }
  wt_pump_for(&F.pump, 30);
  cr_assert_eq(done, 0, "done before the peers answered");
  uint64_t t0 = wt_now_ms();
  wt_send_frame(&F.pump, a, 1, 0x8, "\x03\xe9", 2);
  wt_send_frame(&F.pump, b, 1, 0x8, "\x03\xe9", 2);
  wt_pump_until(&F.pump, &done, 3000);
  cr_assert_eq(done, 1);
  cr_assert_lt(wt_now_ms() - t0, 1000, "waited for the deadline although everyone answered");
  cr_assert_eq(F.n_close, 2);
  cr_assert_eq(F.close_code, 1001);
  cr_assert_eq(wire_server_process(F.server), 0);
  cr_assert_eq(wire_server_timeout(F.server), -1);
  F.done = 1;
  close(a);
  close(b);
}

Test(server, shutdown_drops_unresponsive_peers_at_the_deadline) {
  fx_start(&F, NULL, NULL, "/ws");
  int a = wt_open(&F.pump, F.port, "/ws");
  int hs = wt_connect(F.port); /* never finishes its handshake */
  wt_pump_for(&F.pump, 20);
  int done = 0;
  uint64_t t0 = wt_now_ms();
  cr_assert_eq(wire_server_shutdown(F.server, 200, on_done, &done), 0);
  wt_pump_until(&F.pump, &done, 3000);
  uint64_t dt = wt_now_ms() - t0;
  cr_assert_eq(done, 1);
  cr_assert_geq(dt, 150);
  cr_assert_lt(dt, 2000);
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(wire_server_connection_count(F.server), 0);
  F.done = 1;
  close(a);
  close(hs);
}

Test(server, shutdown_of_an_idle_server_finishes_without_connections) {
  fx_start(&F, NULL, NULL, "/ws");
  int done = 0;
  cr_assert_eq(wire_server_shutdown(F.server, 0, on_done, &done), 0);
  wt_pump_until(&F.pump, &done, 3000);
  cr_assert_eq(done, 1);
  F.done = 1;
}
