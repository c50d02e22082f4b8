/*
 * test_rules.c -- the connection rules (rules.c, wire_conn_invalid in
 * pipeline.c) over real sockets on 127.0.0.1: the queued-message bound stops
 * and resumes reading, on_drain after the send high-water mark, wire_conn_fail
 * (on_error, else 1011), the invalid-message entry for host codecs, and the
 * error categories.
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The recorder: the fixture's fields plus what these rules add. */
static fx F;
static int n_drain, hold_each, fail_in_message, fail_in_error, invalid_code;
static int fail_result, invalid_result, drain_after_close;

static void setup(void) {
  memset(&F, 0, sizeof F);
  n_drain = hold_each = fail_in_message = fail_in_error = invalid_code = 0;
  fail_result = invalid_result = -100;
  drain_after_close = 0;
}
static void teardown(void) {
  fx_stop(&F);
}

TestSuite(rules, .init = setup, .fini = teardown, .timeout = 60);

static int on_connect(wire_conn *c, const wire_request *req, void *ud) {
  (void)req;
  (void)ud;
  F.n_connect++;
  F.conn = c;
  return 0;
}

static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  F.n_message++;
  if (hold_each)
    cr_assert_eq(wire_conn_hold(c), 0);
  if (fail_in_message) {
    wire_error e;
    memset(&e, 0, sizeof e);
    snprintf(e.message, sizeof e.message, "boom");
    fail_result = wire_conn_fail(c, &e);
  }
  if (invalid_code) {
    wire_error e;
    memset(&e, 0, sizeof e);
    e.code = invalid_code;
    snprintf(e.path, sizeof e.path, "/x");
    snprintf(e.keyword, sizeof e.keyword, "type");
    if (m->kind == WIRE_MSG_TEXT)
      snprintf(e.message, sizeof e.message, "bad %.*s", (int)m->len, (const char *)m->data);
    else
      snprintf(e.message, sizeof e.message, "bad binary");
    invalid_result = wire_conn_invalid(c, &e);
  }
  if (F.echo)
    wire_conn_send_text(c, (const char *)m->data, m->len);
}

static void on_close(wire_conn *c, int code, const char *reason, size_t len, void *ud) {
  (void)c;
  (void)ud;
  F.n_close++;
  F.close_code = code;
  snprintf(F.close_reason, sizeof F.close_reason, "%.*s", (int)len, reason);
}

static int on_error(wire_conn *c, const wire_error *err, void *ud) {
  (void)ud;
  F.n_error++;
  F.last_error = err->code;
  snprintf(F.last_error_msg, sizeof F.last_error_msg, "%s", err->message);
  if (fail_in_error)
    cr_assert_eq(wire_conn_fail(c, err), 0, "a fail inside on_error closes");
  return F.error_verdict;
}

static void on_drain(wire_conn *c, void *ud) {
  (void)ud;
  n_drain++;
  if (F.n_close)
    drain_after_close = 1;
  cr_assert(wire_conn_writable(c), "on_drain fired over the mark");
}

static const wire_callbacks callbacks = {on_connect, on_message, on_close, on_error, on_drain};

/* A server with the rules' callbacks and one endpoint; returns an open client. */
static int start(const wire_endpoint_options *eo) {
  cr_assert_eq(wire_server_new(NULL, &F.server), 0);
  F.pump.server = F.server;
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_endpoint_add(F.server, "/r", eo, &callbacks, &F, &F.ep, &err), 0, "%s",
               err.message);
  cr_assert_eq(wire_server_listen(F.server, "127.0.0.1", 0), 0);
  F.port = wire_server_port(F.server);
  int fd = wt_open(&F.pump, F.port, "/r");
  cr_assert_geq(fd, 0, "handshake failed");
  FX_PUMP_UNTIL(&F, F.conn != NULL);
  return fd;
}

static void send_and_wait(int fd, const char *text, int expect_messages) {
  wt_send_frame(&F.pump, fd, 1, 0x1, text, strlen(text));
  FX_PUMP_UNTIL(&F, F.n_message >= expect_messages);
}

static int read_close(int fd) {
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0, "no frame");
  cr_assert_eq(m.opcode, 0x8, "expected a close, got opcode %d", m.opcode);
  int code = m.close_code;
  wt_msg_free(&m);
  return code;
}

/* ---- queued-message bound --------------------------------------------------- */

Test(rules, held_messages_stop_reading_at_the_bound_and_resume_at_half) {
  wire_endpoint_options eo = {0};
  eo.max_queued_messages = 4;
  hold_each = 1;
  int fd = start(&eo);
  for (int i = 1; i <= 4; i++)
    send_and_wait(fd, "m", i);
  cr_assert_eq(F.n_message, 4);
  cr_assert_eq(wire_conn_queued(F.conn), 4);
  /* Two more while the bound holds: they wait in the kernel, unread. */
  wt_send_frame(&F.pump, fd, 1, 0x1, "5", 1);
  wt_send_frame(&F.pump, fd, 1, 0x1, "6", 1);
  wt_pump_for(&F.pump, 200);
  cr_assert_eq(F.n_message, 4, "read past the bound");
  cr_assert_eq(wire_conn_consumed(F.conn, 1), 0);
  wt_pump_for(&F.pump, 100);
  cr_assert_eq(F.n_message, 4, "resumed above the low-water mark");
  cr_assert_eq(wire_conn_consumed(F.conn, 1), 0); /* 2 = half of 4 */
  FX_PUMP_UNTIL(&F, F.n_message == 6);
  cr_assert_eq(F.n_message, 6, "did not resume at the low-water mark");
  cr_assert_eq(wire_conn_queued(F.conn), 4);
  cr_assert_eq(wire_conn_consumed(F.conn, 5), WIRE_EINVAL);
  cr_assert_eq(wire_conn_consumed(F.conn, 4), 0);
  send_and_wait(fd, "7", 7);
  cr_assert_eq(F.n_message, 7);
  close(fd);
}

Test(rules, default_bound_is_64) {
  hold_each = 1;
  int fd = start(NULL);
  for (int i = 1; i <= 64; i++)
    send_and_wait(fd, "m", i);
  wt_send_frame(&F.pump, fd, 1, 0x1, "x", 1);
  wt_pump_for(&F.pump, 150);
  cr_assert_eq(F.n_message, 64);
  cr_assert_eq(wire_conn_consumed(F.conn, 32), 0);
  FX_PUMP_UNTIL(&F, F.n_message == 65);
  cr_assert_eq(F.n_message, 65);
  close(fd);
}

Test(rules, the_pause_queue_counts_toward_queued) {
  int fd = start(NULL);
  cr_assert_eq(wire_conn_pause(F.conn), 0);
  uint8_t buf[64];
  size_t n = 0;
  for (int i = 0; i < 3; i++)
    n += wt_frame(buf + n, 1, 0x1, "q", 1, 1);
  wt_write(&F.pump, fd, buf, n);
  FX_PUMP_UNTIL(&F, wire_conn_queued(F.conn) == 3);
  cr_assert_eq(wire_conn_queued(F.conn), 3);
  cr_assert_eq(F.n_message, 0);
  cr_assert_eq(wire_conn_resume(F.conn), 0);
  FX_PUMP_UNTIL(&F, F.n_message == 3);
  cr_assert_eq(wire_conn_queued(F.conn), 0);
  close(fd);
}

Test(rules, hold_after_close_is_refused_and_holds_are_forgotten) {
  hold_each = 1;
  int fd = start(NULL);
  wire_conn_ref(F.conn);
  send_and_wait(fd, "m", 1);
  close(fd);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(wire_conn_hold(F.conn), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_consumed(F.conn, 1), WIRE_ECLOSED);
  wire_conn_unref(F.conn);
}

/* ---- send flow control --------------------------------------------------------- */

/* Send 64 KiB messages from host code until the connection is not writable. */
static size_t fill_until_not_writable(void) {
  static uint8_t chunk[65536];
  size_t sent = 0;
  for (int i = 0; i < 2000 && wire_conn_writable(F.conn); i++) {
    cr_assert_eq(wire_conn_send_binary(F.conn, chunk, sizeof chunk), 0);
    sent += sizeof chunk + 10; /* 64 KiB needs the 64-bit length: a 10-byte header */
  }
  cr_assert_not(wire_conn_writable(F.conn), "never went over the high-water mark");
  cr_assert_eq(n_drain, 0, "on_drain without a 0 from wire_conn_writable");
  return sent;
}

Test(rules, on_drain_fires_once_when_the_queue_falls_to_the_high_water_mark) {
  wire_endpoint_options eo = {0};
  eo.max_backpressure = 512u << 20;
  eo.send_high_water = 256u << 10;
  int fd = start(&eo);
  size_t total = fill_until_not_writable();
  cr_assert_gt(wire_conn_buffered_amount(F.conn), 256u << 10);
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(n_drain, 0, "on_drain while the peer reads nothing");
  /* The peer reads everything: the queue drains and on_drain fires once. */
  static uint8_t sink[1 << 16];
  size_t got = 0;
  uint64_t end = wt_now_ms() + 10000;
  while (got < total && wt_now_ms() < end) {
    ssize_t r = recv(fd, sink, sizeof sink, 0);
    if (r > 0)
      got += (size_t)r;
    else
      wt_pump_once(&F.pump, 1);
  }
  cr_assert_eq(got, total, "read %zu of %zu bytes", got, total);
  FX_PUMP_UNTIL(&F, n_drain == 1);
  cr_assert_eq(n_drain, 1);
  cr_assert(wire_conn_writable(F.conn));
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(n_drain, 1, "on_drain fired twice for one crossing");
  close(fd);
}

Test(rules, a_close_ends_the_wait_without_on_drain) {
  wire_endpoint_options eo = {0};
  eo.max_backpressure = 512u << 20;
  eo.send_high_water = 64u << 10;
  int fd = start(&eo);
  fill_until_not_writable();
  /* Far more than the kernel's buffers can absorb, so it cannot drain. */
  static uint8_t chunk[1 << 20];
  while (wire_conn_buffered_amount(F.conn) < (48u << 20))
    cr_assert_eq(wire_conn_send_binary(F.conn, chunk, sizeof chunk), 0);
  close(fd);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(n_drain, 0);
  cr_assert_eq(drain_after_close, 0);
}

Test(rules, high_water_defaults_to_a_quarter_of_max_backpressure) {
  wire_endpoint_options eo = {0};
  eo.max_backpressure = 1u << 20;
  int fd = start(&eo);
  static uint8_t chunk[200 * 1024];
  /* Queue without a socket write in between: inside a bracket-free host call
   * the write happens at once, so measure through buffered_amount instead. */
  size_t before = wire_conn_buffered_amount(F.conn);
  cr_assert_eq(before, 0);
  cr_assert(wire_conn_writable(F.conn));
  int went_over = 0;
  for (int i = 0; i < 400 && !went_over; i++) {
    cr_assert_eq(wire_conn_send_binary(F.conn, chunk, sizeof chunk), 0);
    size_t q = wire_conn_buffered_amount(F.conn);
    int w = wire_conn_writable(F.conn);
    cr_assert_eq(w, q <= (256u << 10), "writable=%d with %zu queued", w, q);
    went_over = !w;
  }
  cr_assert(went_over);
  close(fd);
}

/* ---- wire_conn_fail --------------------------------------------------------------- */

Test(rules, fail_reports_to_on_error_then_closes_with_1011) {
  fail_in_message = 1;
  int fd = start(NULL);
  send_and_wait(fd, "go", 1);
  cr_assert_eq(fail_result, 0);
  cr_assert_eq(F.n_error, 1);
  cr_assert_eq(F.last_error, WIRE_EHANDLER);
  cr_assert_str_eq(F.last_error_msg, "boom");
  cr_assert_eq(read_close(fd), 1011);
  close(fd);
}

Test(rules, fail_handled_by_on_error_keeps_the_connection) {
  fail_in_message = 1;
  F.error_verdict = 1;
  F.echo = 1;
  int fd = start(NULL);
  send_and_wait(fd, "a", 1);
  cr_assert_eq(fail_result, 1);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x1);
  cr_assert_str_eq((char *)m.data, "a");
  wt_msg_free(&m);
  cr_assert(wire_conn_is_open(F.conn));
  close(fd);
}

Test(rules, fail_inside_on_error_closes_without_recursing) {
  fail_in_message = 1;
  fail_in_error = 1;
  F.error_verdict = 1;
  int fd = start(NULL);
  send_and_wait(fd, "a", 1);
  cr_assert_eq(F.n_error, 1, "on_error ran again for the inner fail");
  cr_assert_eq(read_close(fd), 1011);
  close(fd);
}

Test(rules, fail_after_close_and_before_open) {
  int fd = start(NULL);
  wire_conn_ref(F.conn);
  close(fd);
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(wire_conn_fail(F.conn, NULL), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_fail(NULL, NULL), WIRE_EINVAL);
  cr_assert_eq(F.n_error, 0);
  wire_conn_unref(F.conn);
}

/* ---- wire_conn_invalid --------------------------------------------------------------- */

Test(rules, invalid_replies_in_json_on_a_raw_endpoint) {
  invalid_code = WIRE_EVALIDATION;
  int fd = start(NULL);
  send_and_wait(fd, "x", 1);
  cr_assert_eq(invalid_result, 0);
  cr_assert_eq(F.last_error, WIRE_EVALIDATION, "on_error was not consulted");
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x1);
  cr_assert_str_eq((char *)m.data,
                   "{\"type\":\"error\",\"error\":\"validation_failed\",\"path\":\"/"
                   "x\",\"keyword\":\"type\",\"message\":\"bad x\"}");
  wt_msg_free(&m);
  close(fd);
}

Test(rules, invalid_replies_in_msgpack_on_a_msgpack_endpoint) {
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_MSGPACK;
  invalid_code = WIRE_EUNKNOWN_MESSAGE;
  int fd = start(&eo);
  wt_send_frame(&F.pump, fd, 1, 0x2, "\xc0", 1); /* nil */
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  cr_assert_eq(F.n_message, 1);
  cr_assert_eq(invalid_result, 0, "invalid returned %d", invalid_result);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x2);
  wire_doc *d;
  cr_assert_eq(wire_doc_new(&d), 0);
  const wire_value *v;
  cr_assert_eq(wire_decode(d, WIRE_CODEC_MSGPACK, m.data, m.len, 0, &v, NULL), 0);
  const wire_value *kind = wire_value_get(v, "error", 5);
  cr_assert_str_eq(wire_value_string(kind, NULL), "unknown_message");
  cr_assert_null(wire_value_get(v, "path", 4));
  wire_doc_free(d);
  wt_msg_free(&m);
  close(fd);
}

Test(rules, invalid_with_the_close_policy_closes_1007_or_1008) {
  wire_endpoint_options eo = {0};
  eo.invalid_policy = WIRE_INVALID_CLOSE;
  invalid_code = WIRE_EDESERIALIZE;
  int fd = start(&eo);
  send_and_wait(fd, "x", 1);
  cr_assert_eq(read_close(fd), 1007);
  close(fd);
  fx_stop(&F);
  setup();
  invalid_code = WIRE_EUNKNOWN_MESSAGE;
  fd = start(&eo);
  send_and_wait(fd, "y", 1);
  cr_assert_eq(read_close(fd), 1008);
  close(fd);
}

Test(rules, invalid_handled_by_on_error_sends_nothing) {
  invalid_code = WIRE_EDESERIALIZE;
  F.error_verdict = 1;
  F.echo = 1;
  int fd = start(NULL);
  send_and_wait(fd, "z", 1);
  cr_assert_eq(invalid_result, 1);
  wt_msg m; /* only the echo arrives */
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_str_eq((char *)m.data, "z");
  wt_msg_free(&m);
  close(fd);
}

Test(rules, invalid_refuses_codes_that_are_not_message_errors) {
  invalid_code = WIRE_EHANDLER;
  int fd = start(NULL);
  send_and_wait(fd, "x", 1);
  cr_assert_eq(invalid_result, WIRE_EINVAL);
  cr_assert_eq(F.n_error, 0);
  cr_assert_eq(wire_conn_invalid(F.conn, NULL), WIRE_EINVAL);
  close(fd);
}

/* ---- error categories ----------------------------------------------------------------- */

Test(rules, every_code_has_a_category_and_a_class) {
  int seen = 0;
#define CHECK(name, num, cat, msg)                                                                 \
  do {                                                                                             \
    cr_assert_eq(wire_err_category(num), WIRE_ERRCAT_##cat);                                       \
    cr_assert_not_null(wire_errcat_class(wire_err_category(num)));                                 \
    cr_assert_str_eq(wire_err_name(num), #name);                                                   \
    seen++;                                                                                        \
  } while (0);
  WIRE_ERRNO_MAP(CHECK)
#undef CHECK
  cr_assert_eq(seen, 23);
  cr_assert_str_eq(wire_errcat_class(wire_err_category(WIRE_ETOOBIG)), "MessageTooBigError");
  cr_assert_str_eq(wire_errcat_class(wire_err_category(WIRE_EUTF8)), "ProtocolError");
  cr_assert_str_eq(wire_errcat_class(wire_err_category(WIRE_ECODEC)), "DeserializationError");
  cr_assert_str_eq(wire_errcat_class(wire_err_category(WIRE_ESCHEMA)), "ConfigError");
  cr_assert_str_eq(wire_errcat_class(wire_err_category(WIRE_ECLOSED)), "ConnectionClosedError");
  cr_assert_str_eq(wire_errcat_name(WIRE_ERRCAT_UNKNOWN_MESSAGE), "unknown_message");
  cr_assert_null(wire_errcat_name(WIRE_ERRCAT_COUNT));
  cr_assert_null(wire_errcat_class((wire_errcat)-1));
  cr_assert_eq(wire_err_category(-12), WIRE_ERRCAT_INTERNAL);
  cr_assert_str_eq(wire_err_name(-12), "EUNKNOWN"); /* retired numbers stay unused */
  cr_assert_str_eq(wire_err_name(-13), "EUNKNOWN");
  cr_assert_str_eq(wire_err_name(-22), "EUNKNOWN");
}

Test(rules, version_is_0_2) {
  cr_assert_eq(WIRECORE_VERSION_MINOR, 2);
  cr_assert_eq(wire_version_hex(), WIRECORE_VERSION_HEX);
}
