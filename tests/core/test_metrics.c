/*
 * test_metrics.c -- the counters against traffic made here (connections,
 * messages, bytes, close codes, handshakes, errors), the Prometheus and JSON
 * renderers, /metrics and /health on the WebSocket port and on a metrics
 * listener (health 503 while draining), wire_server_observe's histogram, and
 * the log events with their JSON form (metrics.c, log.c).
 */
#include "conn_internal.h"
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
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

TestSuite(metrics, .init = setup, .fini = teardown, .timeout = 30);

/* Send `req` to port and read the whole answer until the server closes;
 * returns the status, the body (after the blank line) in body. */
static int http(int port, const char *req, char *body, size_t cap) {
  int fd = wt_connect(port);
  cr_assert_geq(fd, 0);
  wt_write(&F.pump, fd, req, strlen(req));
  static char all[65536];
  size_t len = 0;
  uint64_t end = wt_now_ms() + 3000;
  while (len < sizeof all - 1 && wt_now_ms() < end) {
    ssize_t n = recv(fd, all + len, sizeof all - 1 - len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      break; /* the server closes after its answer */
    if (n > 0)
      len += (size_t)n;
    else
      wt_pump_once(&F.pump, 2);
  }
  all[len] = 0;
  close(fd);
  int status = 0;
  cr_assert_eq(sscanf(all, "HTTP/1.1 %d", &status), 1, "no status in: %s", all);
  const char *b = strstr(all, "\r\n\r\n");
  cr_assert_not_null(b);
  snprintf(body, cap, "%s", b + 4);
  return status;
}

static int get(int port, const char *path, char *body, size_t cap) {
  char req[256];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  return http(port, req, body, cap);
}

/* The value of the sample line that starts with `series ` (exact name and
 * labels), or -1 when there is none. */
static long long sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, series, n) == 0 && p[n] == ' ')
      return atoll(p + n + 1);
  return -1;
}

static char body[65536];

Test(metrics, counts_connections_messages_bytes_and_close_codes) {
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_set_metrics(F.server, "/metrics", "/health"), 0);
  int a = wt_open(&F.pump, F.port, "/ws");
  int b = wt_open(&F.pump, F.port, "/ws");
  cr_assert(a >= 0 && b >= 0);
  for (int i = 0; i < 3; i++) {
    wt_send_frame(&F.pump, a, 1, 1, "hello", 5);
    wt_send_frame(&F.pump, b, 1, 2, "ab", 2);
  }
  wt_msg m;
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(wt_read_frame(&F.pump, a, &m, 3000), 0);
    wt_msg_free(&m);
    cr_assert_eq(wt_read_frame(&F.pump, b, &m, 3000), 0);
    wt_msg_free(&m);
  }
  uint8_t code[2] = {0x0f, 0xa0}; /* 4000 */
  wt_send_frame(&F.pump, a, 1, 8, code, 2);
  cr_assert(wt_wait_eof(&F.pump, a, 3000));
  close(a);
  close(b); /* no close frame: 1006 */
  FX_PUMP_UNTIL(&F, F.n_close == 2);
  cr_assert_eq(F.n_close, 2);
  /* one refused upgrade: a wrong path */
  int c = wt_connect(F.port);
  cr_assert_eq(wt_handshake(&F.pump, c, "/nope", NULL), 404);
  close(c);

  cr_assert_eq(get(F.port, "/metrics", body, sizeof body), 200);
  cr_assert_eq(sample(body, "wirecore_connections_total{path=\"/ws\"}"), 2, "%s", body);
  cr_assert_eq(sample(body, "wirecore_connections_open{path=\"/ws\"}"), 0);
  cr_assert_eq(sample(body, "wirecore_messages_received_total{path=\"/ws\"}"), 6);
  cr_assert_eq(sample(body, "wirecore_received_bytes_total{path=\"/ws\"}"), 21);
  cr_assert_eq(sample(body, "wirecore_messages_sent_total{path=\"/ws\"}"), 6);
  cr_assert_eq(sample(body, "wirecore_sent_bytes_total{path=\"/ws\"}"), 21);
  cr_assert_eq(sample(body, "wirecore_connections_closed_total{path=\"/ws\",code=\"app\"}"), 1);
  cr_assert_eq(sample(body, "wirecore_connections_closed_total{path=\"/ws\",code=\"1006\"}"), 1);
  cr_assert_eq(sample(body, "wirecore_close_frames_received_total{path=\"/ws\",code=\"app\"}"), 1);
  cr_assert_eq(sample(body, "wirecore_handshakes_total{status=\"101\"}"), 2);
  cr_assert_eq(sample(body, "wirecore_handshakes_total{status=\"404\"}"), 1);
  cr_assert_eq(sample(body, "wirecore_workers"), 1);

  wire_server_stats st;
  cr_assert_eq(wire_server_stats_get(F.server, &st), 0);
  cr_assert_eq(st.connections_total, 2);
  cr_assert_eq(st.messages_in, 6);
  cr_assert_eq(st.bytes_out, 21);

  char json[8192];
  int64_t n = wire_server_metrics_render(F.server, WIRE_METRICS_JSON, json, sizeof json);
  cr_assert(n > 0 && n < (int64_t)sizeof json);
  cr_assert(strstr(json, "\"connections_total\":2,\"messages_in\":6,\"bytes_in\":21"), "%s", json);
  cr_assert(strstr(json, "\"handshakes\":{\"101\":2,\"404\":1}"), "%s", json);
  cr_assert(strstr(json, "\"close_codes\":{\"1006\":1,\"app\":1}"), "%s", json);
}

Test(metrics, render_reports_the_length_like_snprintf) {
  fx_start(&F, NULL, NULL, "/ws");
  int64_t full = wire_server_metrics_render(F.server, WIRE_METRICS_PROMETHEUS, NULL, 0);
  cr_assert_gt(full, 100);
  char small[16];
  cr_assert_eq(wire_server_metrics_render(F.server, WIRE_METRICS_PROMETHEUS, small, sizeof small),
               full);
  cr_assert_eq(strlen(small), sizeof small - 1);
  cr_assert_eq(wire_server_metrics_render(F.server, 7, NULL, 0), WIRE_EINVAL);
  cr_assert_eq(wire_server_metrics_render(NULL, 0, NULL, 0), WIRE_EINVAL);
}

Test(metrics, validation_and_unknown_messages_are_counted_by_kind) {
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_JSON;
  const char *schemas[] = {"{\"type\":\"object\",\"required\":[\"a\"]}"};
  eo.message_schemas = schemas;
  eo.n_message_schemas = 1;
  fx_start(&F, NULL, &eo, "/v");
  int a = wt_open(&F.pump, F.port, "/v");
  wt_send_frame(&F.pump, a, 1, 1, "{\"b\":1}", 7);
  wt_send_frame(&F.pump, a, 1, 1, "{nope", 5);
  FX_PUMP_UNTIL(&F, F.n_error == 2);
  cr_assert_eq(wire_server_set_metrics(F.server, "/m", NULL), 0);
  cr_assert_eq(get(F.port, "/m", body, sizeof body), 200);
  long long unknown = sample(body, "wirecore_errors_total{path=\"/v\",error=\"unknown_message\"}");
  long long invalid = sample(body, "wirecore_errors_total{path=\"/v\",error=\"validation\"}");
  cr_assert_eq((unknown > 0 ? unknown : 0) + (invalid > 0 ? invalid : 0), 1, "%s", body);
  cr_assert_eq(sample(body, "wirecore_errors_total{path=\"/v\",error=\"deserialize\"}"), 1);
  close(a);
}

Test(metrics, health_is_ok_then_503_while_draining_on_the_metrics_port) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_listen_metrics(F.server, "127.0.0.1", 0), 0);
  int mp = wire_server_metrics_port(F.server);
  cr_assert_gt(mp, 0);
  cr_assert_neq(mp, F.port);
  cr_assert_eq(wire_server_port(F.server), F.port);
  int a = wt_open(&F.pump, F.port, "/ws");
  cr_assert_eq(get(mp, "/health", body, sizeof body), 200);
  cr_assert_str_eq(body, "{\"status\":\"ok\",\"connections\":1,\"broker\":\"none\"}\n");
  /* the metrics port serves nothing else, upgrades included */
  cr_assert_eq(get(mp, "/ws", body, sizeof body), 404);
  int u = wt_connect(mp);
  cr_assert_eq(wt_handshake(&F.pump, u, "/ws", NULL), 404);
  close(u);
  /* the WebSocket port has no metrics paths unless asked */
  cr_assert_eq(get(F.port, "/metrics", body, sizeof body), 400);
  cr_assert_eq(wire_server_drain(F.server, 5000, NULL, NULL), 0);
  cr_assert_eq(get(mp, "/health", body, sizeof body), 503);
  cr_assert_str_eq(body, "{\"status\":\"draining\",\"connections\":1,\"broker\":\"none\"}\n");
  cr_assert_eq(get(mp, "/metrics", body, sizeof body), 200);
  cr_assert_eq(sample(body, "wirecore_connections_open{path=\"/ws\"}"), 1);
  close(a);
}

Test(metrics, metrics_answer_carries_the_exposition_content_type) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_set_metrics(F.server, "/metrics", "/healthz"), 0);
  int fd = wt_connect(F.port);
  const char *req = "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  wt_write(&F.pump, fd, req, strlen(req));
  char head[2048];
  cr_assert_eq(wt_read_http(&F.pump, fd, head, sizeof head, 3000), 200);
  cr_assert(strstr(head, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "%s", head);
  close(fd);
  cr_assert_eq(get(F.port, "/healthz", body, sizeof body), 200);
  /* other methods on the path are answered as before */
  cr_assert_eq(http(F.port, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", body, sizeof body), 405);
}

Test(metrics, set_metrics_checks_its_paths) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_set_metrics(F.server, "metrics", NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_set_metrics(F.server, "/a b", NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_set_metrics(F.server, NULL, "/h?x"), WIRE_EINVAL);
  cr_assert_eq(wire_server_set_metrics(NULL, NULL, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_set_metrics(F.server, "", NULL), 0); /* off */
  cr_assert_eq(get(F.port, "/metrics", body, sizeof body), 400);
}

Test(metrics, observe_fills_a_cumulative_histogram) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_observe(F.server, F.ep, 0.00005), 0);
  cr_assert_eq(wire_server_observe(F.server, F.ep, 0.003), 0);
  cr_assert_eq(wire_server_observe(F.server, F.ep, 7.0), 0);
  cr_assert_eq(wire_server_observe(F.server, F.ep, -1), WIRE_EINVAL);
  cr_assert_eq(wire_server_observe(F.server, NULL, 1), WIRE_EINVAL);
  char *text = malloc(65536);
  cr_assert_gt(wire_server_metrics_render(F.server, WIRE_METRICS_PROMETHEUS, text, 65536), 0);
  const char *h = "wirecore_handler_duration_seconds";
  char k[128];
  snprintf(k, sizeof k, "%s_bucket{path=\"/ws\",le=\"0.0001\"}", h);
  cr_assert_eq(sample(text, k), 1);
  snprintf(k, sizeof k, "%s_bucket{path=\"/ws\",le=\"0.0025\"}", h);
  cr_assert_eq(sample(text, k), 1);
  snprintf(k, sizeof k, "%s_bucket{path=\"/ws\",le=\"0.005\"}", h);
  cr_assert_eq(sample(text, k), 2);
  snprintf(k, sizeof k, "%s_bucket{path=\"/ws\",le=\"2.5\"}", h);
  cr_assert_eq(sample(text, k), 2);
  snprintf(k, sizeof k, "%s_bucket{path=\"/ws\",le=\"+Inf\"}", h);
  cr_assert_eq(sample(text, k), 3);
  snprintf(k, sizeof k, "%s_count{path=\"/ws\"}", h);
  cr_assert_eq(sample(text, k), 3);
  snprintf(k, sizeof k, "%s_sum{path=\"/ws\"} 7.00305", h);
  cr_assert(strstr(text, k), "%s", text);
  free(text);
}

/* ---- logs ------------------------------------------------------------------------- */

static char logged[8192];
static int n_logged;

static void on_log(const wire_log_event *ev, void *ud) {
  (void)ud;
  char line[1024];
  cr_assert_gt(wire_log_event_json(ev, line, sizeof line), 0);
  size_t len = strlen(logged);
  snprintf(logged + len, sizeof logged - len, "%s\n", line);
  n_logged++;
}

Test(metrics, log_events_for_open_close_reject_and_error) {
  memset(logged, 0, sizeof logged);
  n_logged = 0;
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_set_log(F.server, on_log, NULL, WIRE_LOG_INFO), 0);
  int a = wt_open(&F.pump, F.port, "/ws");
  wt_send_frame(&F.pump, a, 1, 1, "hey", 3);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, a, &m, 3000), 0);
  wt_msg_free(&m);
  uint8_t bad[] = {0xff};
  wt_send_frame(&F.pump, a, 1, 1, bad, 1); /* invalid UTF-8: error, then close 1007 */
  cr_assert(wt_wait_eof(&F.pump, a, 3000));
  close(a);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  int c = wt_connect(F.port);
  cr_assert_eq(wt_handshake(&F.pump, c, "/nope", NULL), 404);
  close(c);
  cr_assert(
      strstr(logged, "{\"level\":\"info\",\"event\":\"open\",\"conn\":1,\"remote\":\"127.0.0.1\""),
      "%s", logged);
  cr_assert(strstr(logged, "\"path\":\"/ws\",\"code\":1007,"), "%s", logged);
  cr_assert(strstr(logged, "\"bytes_in\":3,\"bytes_out\":3}"), "%s", logged);
  cr_assert(strstr(logged, "{\"level\":\"info\",\"event\":\"error\""), "%s", logged);
  cr_assert(strstr(logged, "\"error\":\"EUTF8\""), "%s", logged);
  cr_assert(strstr(logged, "\"event\":\"reject\""), "%s", logged);
  cr_assert(strstr(logged, "\"status\":404"), "%s", logged);
  /* above the level: nothing */
  int before = n_logged;
  cr_assert_eq(wire_server_set_log(F.server, on_log, NULL, WIRE_LOG_ERROR), 0);
  int d = wt_open(&F.pump, F.port, "/ws");
  close(d);
  FX_PUMP_UNTIL(&F, F.n_close == 2);
  cr_assert_eq(n_logged, before);
}

Test(metrics, logging_turned_on_while_open_counts_the_close_event_from_then) {
  memset(logged, 0, sizeof logged);
  n_logged = 0;
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/ws");
  int a = wt_open(&F.pump, F.port, "/ws");
  wt_msg m;
  wt_send_frame(&F.pump, a, 1, 1, "before", 6); /* not counted: logging is off */
  cr_assert_eq(wt_read_frame(&F.pump, a, &m, 3000), 0);
  wt_msg_free(&m);
  cr_assert_null(F.conn->x, "an idle connection without logging keeps no extras");
  cr_assert_eq(wire_server_set_log(F.server, on_log, NULL, WIRE_LOG_INFO), 0);
  cr_assert_not_null(F.conn->x);
  wt_send_frame(&F.pump, a, 1, 1, "hi", 2);
  cr_assert_eq(wt_read_frame(&F.pump, a, &m, 3000), 0);
  wt_msg_free(&m);
  close(a);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  cr_assert(strstr(logged, "\"event\":\"close\""), "%s", logged);
  cr_assert(strstr(logged, "\"bytes_in\":2,\"bytes_out\":2}"), "%s", logged);
}

Test(metrics, log_json_escapes_and_measures_like_snprintf) {
  wire_log_event ev = {0};
  ev.level = WIRE_LOG_ERROR;
  ev.event = "error";
  ev.remote = "::1";
  ev.path = "/a\"b";
  ev.error = WIRE_EHANDLER;
  ev.message = "line\nnext \\ end";
  char buf[512];
  int n = wire_log_event_json(&ev, buf, sizeof buf);
  cr_assert_str_eq(buf, "{\"level\":\"error\",\"event\":\"error\",\"conn\":0,\"remote\":\"::1\","
                        "\"port\":0,\"path\":\"/a\\\"b\",\"error\":\"EHANDLER\","
                        "\"message\":\"line\\u000anext \\\\ end\"}");
  cr_assert_eq(n, (int)strlen(buf));
  char small[10];
  cr_assert_eq(wire_log_event_json(&ev, small, sizeof small), n);
  cr_assert_eq(strlen(small), 9);
  cr_assert_eq(wire_log_event_json(NULL, buf, sizeof buf), WIRE_EINVAL);
}

static void on_shutdown_done(wire_server *s, void *ud) {
  (void)s;
  ((fx *)ud)->done = 1;
}

Test(metrics, health_is_503_through_the_graceful_shutdown_then_the_metrics_port_closes) {
  fx_start(&F, NULL, NULL, "/ws");
  cr_assert_eq(wire_server_listen_metrics(F.server, "127.0.0.1", 0), 0);
  int mp = wire_server_metrics_port(F.server);
  int a = wt_open(&F.pump, F.port, "/ws"); /* answers the 1001 only when told */
  cr_assert_eq(wire_server_shutdown(F.server, 5000, on_shutdown_done, &F), 0);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, a, &m, 3000), 0);
  cr_assert_eq(m.close_code, 1001);
  wt_msg_free(&m);
  cr_assert_eq(get(mp, "/health", body, sizeof body), 503);
  cr_assert_str_eq(body, "{\"status\":\"shutting_down\",\"connections\":1,\"broker\":\"none\"}\n");
  cr_assert_eq(get(mp, "/metrics", body, sizeof body), 200);
  cr_assert_eq(F.done, 0);
  uint8_t code[2] = {0x03, 0xe9}; /* 1001 */
  wt_send_frame(&F.pump, a, 1, 8, code, 2);
  FX_PUMP_UNTIL(&F, F.done);
  cr_assert(F.done, "the shutdown did not finish once the last connection closed");
  close(a);
  cr_assert_lt(wt_connect(mp), 0, "the metrics port is still open");
}
