/*
 * test_conn.c -- one connection after the upgrade (conn.c, send.c): framing
 * through scripted client bytes on 127.0.0.1, close codes, ping/pong and the
 * idle deadline, pause/resume order, backpressure, batching, references and
 * deferred accept.
 */
#include "support/fixture.h"

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

TestSuite(conn, .init = setup, .fini = teardown, .timeout = 30);

static int start_echo(const wire_endpoint_options *eo) {
  F.echo = 1;
  fx_start(&F, NULL, eo, "/echo");
  int fd = wt_open(&F.pump, F.port, "/echo");
  cr_assert_geq(fd, 0, "handshake failed");
  return fd;
}

static void expect_frame(int fd, int opcode, const char *payload, size_t len) {
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0, "no frame");
  cr_assert_eq(m.opcode, opcode, "opcode %d, expected %d", m.opcode, opcode);
  cr_assert(m.fin);
  cr_assert_eq(m.len, len);
  cr_assert_eq(memcmp(m.data, payload, len), 0);
  wt_msg_free(&m);
}

static int expect_close(int fd) {
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0, "no close frame");
  cr_assert_eq(m.opcode, 0x8, "expected close, got opcode %d", m.opcode);
  int code = m.close_code;
  wt_msg_free(&m);
  return code;
}

/* Pump until on_close ran (or 3 s). */
static void wait_closed(void) {
  uint64_t end = wt_now_ms() + 3000;
  while (F.n_close == 0 && wt_now_ms() < end)
    wt_pump_once(&F.pump, 5);
}

Test(conn, echoes_text_and_binary_with_their_kind) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x1, "hello", 5);
  expect_frame(fd, 0x1, "hello", 5);
  cr_assert_eq(F.last_kind, WIRE_MSG_TEXT);
  cr_assert_eq(F.last_handler, -1);
  wt_send_frame(&F.pump, fd, 1, 0x2, "\x00\xff\x01", 3);
  expect_frame(fd, 0x2, "\x00\xff\x01", 3);
  cr_assert_eq(F.last_kind, WIRE_MSG_BINARY);
  wt_send_frame(&F.pump, fd, 1, 0x1, "", 0);
  expect_frame(fd, 0x1, "", 0);
  close(fd);
}

Test(conn, delivers_every_message_of_one_read_in_order) {
  int fd = start_echo(NULL);
  uint8_t buf[256];
  size_t n = 0;
  const char *words[] = {"a", "bb", "ccc", "dddd"};
  for (int i = 0; i < 4; i++)
    n += wt_frame(buf + n, 1, 0x1, words[i], strlen(words[i]), 1);
  wt_write(&F.pump, fd, buf, n);
  for (int i = 0; i < 4; i++)
    expect_frame(fd, 0x1, words[i], strlen(words[i]));
  cr_assert_str_eq(F.log, "a|bb|ccc|dddd");
  close(fd);
}

Test(conn, reassembles_a_frame_that_arrives_one_byte_at_a_time) {
  int fd = start_echo(NULL);
  char payload[300];
  memset(payload, 'x', sizeof payload);
  uint8_t buf[400];
  size_t n = wt_frame(buf, 1, 0x1, payload, sizeof payload, 1);
  for (size_t i = 0; i < n; i++) {
    wt_write(&F.pump, fd, buf + i, 1);
    wt_pump_for(&F.pump, 1);
  }
  expect_frame(fd, 0x1, payload, sizeof payload);
  cr_assert_eq(F.n_message, 1);
  close(fd);
}

Test(conn, reassembles_fragments_and_answers_a_ping_sent_between_them) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 0, 0x1, "frag", 4);
  wt_send_frame(&F.pump, fd, 1, 0x9, "p1", 2);
  wt_send_frame(&F.pump, fd, 0, 0x0, "ment", 4);
  wt_send_frame(&F.pump, fd, 1, 0x0, "ed", 2);
  expect_frame(fd, 0xA, "p1", 2);
  expect_frame(fd, 0x1, "fragmented", 10);
  cr_assert_eq(F.n_message, 1);
  close(fd);
}

Test(conn, answers_ping_with_pong_carrying_the_same_payload) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x9, "are you there", 13);
  expect_frame(fd, 0xA, "are you there", 13);
  cr_assert_eq(F.n_message, 0);
  close(fd);
}

Test(conn, ignores_unsolicited_pong) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0xA, "x", 1);
  wt_send_frame(&F.pump, fd, 1, 0x1, "after", 5);
  expect_frame(fd, 0x1, "after", 5);
  close(fd);
}

static void expect_protocol_close(int fd, int code, int err) {
  cr_assert_eq(expect_close(fd), code);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000), "socket not closed");
  shutdown(fd, SHUT_WR); /* as a real client does after the server's FIN */
  wait_closed();
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, code);
  cr_assert_eq(F.last_error, err, "on_error got %s", wire_err_name(F.last_error));
}

Test(conn, rejects_unmasked_client_frame_with_1002) {
  int fd = start_echo(NULL);
  uint8_t buf[16];
  size_t n = wt_frame(buf, 1, 0x1, "hi", 2, 0);
  wt_write(&F.pump, fd, buf, n);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
}

Test(conn, rejects_reserved_opcode_with_1002) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x3, "x", 1);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
}

Test(conn, rejects_rsv_bits_without_extension_with_1002) {
  int fd = start_echo(NULL);
  uint8_t buf[16];
  size_t n = wt_frame(buf, 1, 0x1, "x", 1, 1);
  buf[0] |= 0x40;
  wt_write(&F.pump, fd, buf, n);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
}

/* RFC 6455 §5.2: a length takes the fewest bytes it fits in; the peer sees
 * the 1002 (not a close without a code). */
Test(conn, rejects_a_length_not_in_its_shortest_form_with_1002) {
  const uint8_t in16[] = {0x81, 0xfe, 0, 1, 0, 0, 0, 0, 'x'};
  const uint8_t in64[] = {0x81, 0xff, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0};
  int fd = start_echo(NULL);
  wt_write(&F.pump, fd, in16, sizeof in16);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
  memset(&F.n_close, 0, sizeof F.n_close);
  fd = wt_open(&F.pump, F.port, "/echo");
  wt_write(&F.pump, fd, in64, sizeof in64);
  cr_assert_eq(expect_close(fd), 1002);
  close(fd);
}

Test(conn, rejects_continuation_without_a_started_message_with_1002) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x0, "x", 1);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
}

Test(conn, rejects_new_message_inside_a_fragmented_one_with_1002) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 0, 0x1, "a", 1);
  wt_send_frame(&F.pump, fd, 1, 0x1, "b", 1);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
}

Test(conn, rejects_fragmented_or_oversized_control_frame_with_1002) {
  int fd = start_echo(NULL);
  char big[126];
  memset(big, 'p', sizeof big);
  wt_send_frame(&F.pump, fd, 1, 0x9, big, sizeof big);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
}

Test(conn, rejects_invalid_utf8_text_with_1007) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x1, "ok\xc3\x28", 4);
  expect_protocol_close(fd, 1007, WIRE_EUTF8);
  close(fd);
}

Test(conn, rejects_text_ending_inside_a_utf8_sequence_with_1007) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x1, "ok\xe2\x82", 4);
  expect_protocol_close(fd, 1007, WIRE_EUTF8);
  close(fd);
}

Test(conn, rejects_utf8_surrogates_and_overlongs_with_1007) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x1, "\xed\xa0\x80", 3);
  expect_protocol_close(fd, 1007, WIRE_EUTF8);
  close(fd);
  memset(&F.n_close, 0, sizeof F.n_close);
  int fd2 = wt_open(&F.pump, F.port, "/echo");
  wt_send_frame(&F.pump, fd2, 1, 0x1, "\xc0\xaf", 2);
  cr_assert_eq(expect_close(fd2), 1007);
  close(fd2);
}

Test(conn, fails_fast_on_bad_utf8_in_the_first_fragment) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 0, 0x1, "\xff", 1); /* the message is not finished */
  expect_protocol_close(fd, 1007, WIRE_EUTF8);
  close(fd);
}

Test(conn, accepts_a_utf8_sequence_split_across_fragments) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 0, 0x1, "\xe2\x82", 2);
  wt_send_frame(&F.pump, fd, 1, 0x0, "\xac", 1);
  expect_frame(fd, 0x1, "\xe2\x82\xac", 3);
  close(fd);
}

Test(conn, closes_message_over_max_size_with_1009) {
  wire_endpoint_options eo = {0};
  eo.max_message_size = 1000;
  int fd = start_echo(&eo);
  char buf[1001];
  memset(buf, 'a', sizeof buf);
  wt_send_frame(&F.pump, fd, 1, 0x2, buf, 1000);
  expect_frame(fd, 0x2, buf, 1000);
  wt_send_frame(&F.pump, fd, 1, 0x2, buf, 1001);
  expect_protocol_close(fd, 1009, WIRE_ETOOBIG);
  cr_assert_eq(F.n_message, 1);
  close(fd);
}

Test(conn, counts_every_fragment_against_max_size) {
  wire_endpoint_options eo = {0};
  eo.max_message_size = 100;
  int fd = start_echo(&eo);
  char buf[60];
  memset(buf, 'a', sizeof buf);
  wt_send_frame(&F.pump, fd, 0, 0x2, buf, 60);
  wt_send_frame(&F.pump, fd, 1, 0x0, buf, 60);
  expect_protocol_close(fd, 1009, WIRE_ETOOBIG);
  close(fd);
}

Test(conn, accepts_a_16_mib_message_when_configured) {
  wire_endpoint_options eo = {0};
  eo.max_message_size = 16u << 20;
  int fd = start_echo(&eo);
  size_t n = 16u << 20;
  char *big = malloc(n);
  memset(big, 'z', n);
  wt_send_frame(&F.pump, fd, 1, 0x2, big, n);
  expect_frame(fd, 0x2, big, n);
  free(big);
  close(fd);
}

Test(conn, echoes_peer_close_code_and_reason_and_reports_them) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x8,
                "\x0f\xa0"
                "bye",
                5); /* 4000 "bye" */
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x8);
  cr_assert_eq(m.close_code, 4000);
  wt_msg_free(&m);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000), "server keeps TCP open after the close handshake");
  wait_closed();
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 4000);
  cr_assert_str_eq(F.close_reason, "bye");
  cr_assert_eq(F.n_error, 0);
  close(fd);
}

Test(conn, reports_1005_for_a_close_without_code) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x8, "", 0);
  cr_assert_eq(expect_close(fd), 1005);
  wait_closed();
  cr_assert_eq(F.close_code, 1005);
  close(fd);
}

Test(conn, rejects_an_invalid_close_code_with_1002) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x8, "\x03\xed", 2); /* 1005 may not be sent */
  cr_assert_eq(expect_close(fd), 1002);
  close(fd);
}

Test(conn, reports_1006_when_the_peer_drops_without_close) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 0, 0x1, "half", 4);
  wt_pump_for(&F.pump, 20);
  close(fd);
  wait_closed();
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 1006);
  wt_pump_for(&F.pump, 20);
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(wire_server_connection_count(F.server), 0);
}

Test(conn, server_close_sends_code_and_reason_and_finishes_on_reply) {
  int fd = start_echo(NULL);
  cr_assert_eq(wire_conn_is_open(F.conn), 1);
  cr_assert_eq(wire_conn_close(F.conn, 4001, "done here", 9), 0);
  cr_assert_eq(wire_conn_is_open(F.conn), 0);
  cr_assert_eq(wire_conn_close(F.conn, 1000, NULL, 0), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_send_text(F.conn, "late", 4), WIRE_ECLOSED);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x8);
  cr_assert_eq(m.close_code, 4001);
  cr_assert_eq(m.len, 11);
  cr_assert_eq(memcmp(m.data + 2, "done here", 9), 0);
  wt_msg_free(&m);
  cr_assert_eq(F.n_close, 0, "on_close before the peer answered");
  wt_send_frame(&F.pump, fd, 1, 0x8, "\x0f\xa1", 2);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000));
  wait_closed();
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 4001);
  close(fd);
}

Test(conn, close_validates_code_and_reason) {
  int fd = start_echo(NULL);
  char r124[124];
  memset(r124, 'r', sizeof r124);
  cr_assert_eq(wire_conn_close(F.conn, 1005, NULL, 0), WIRE_EINVAL);
  cr_assert_eq(wire_conn_close(F.conn, 1006, NULL, 0), WIRE_EINVAL);
  cr_assert_eq(wire_conn_close(F.conn, 999, NULL, 0), WIRE_EINVAL);
  cr_assert_eq(wire_conn_close(F.conn, 5000, NULL, 0), WIRE_EINVAL);
  cr_assert_eq(wire_conn_close(F.conn, 1000, r124, 124), WIRE_EINVAL);
  cr_assert_eq(wire_conn_is_open(F.conn), 1);
  cr_assert_eq(wire_conn_close(F.conn, 1000, r124, 123), 0);
  close(fd);
}

Test(conn, drops_a_peer_that_never_answers_our_close) {
  wire_endpoint_options eo = {0};
  eo.pong_timeout_ms = 150;
  int fd = start_echo(&eo);
  uint64_t t0 = wt_now_ms();
  cr_assert_eq(wire_conn_close(F.conn, 1000, NULL, 0), 0);
  cr_assert_eq(expect_close(fd), 1000);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000));
  uint64_t dt = wt_now_ms() - t0;
  cr_assert_geq(dt, 100);
  cr_assert_lt(dt, 2000);
  wait_closed();
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 1000);
  close(fd);
}

Test(conn, pings_after_idle_timeout_and_drops_without_pong) {
  wire_endpoint_options eo = {0};
  eo.idle_timeout_ms = 100;
  eo.pong_timeout_ms = 100;
  fx_start(&F, NULL, &eo, "/echo");
  uint64_t t0 = wt_now_ms(); /* the idle clock starts at the upgrade */
  int fd = wt_open(&F.pump, F.port, "/echo");
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x9, "expected a ping");
  wt_msg_free(&m);
  cr_assert_geq(wt_now_ms() - t0, 80);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000), "no pong, yet still connected");
  wait_closed();
  cr_assert_eq(F.close_code, 1006);
  close(fd);
}

Test(conn, stays_open_while_pongs_answer_the_idle_pings) {
  wire_endpoint_options eo = {0};
  eo.idle_timeout_ms = 60;
  eo.pong_timeout_ms = 60;
  int fd = start_echo(&eo);
  for (int i = 0; i < 4; i++) {
    wt_msg m;
    cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
    cr_assert_eq(m.opcode, 0x9);
    wt_msg_free(&m);
    wt_send_frame(&F.pump, fd, 1, 0xA, "", 0);
  }
  cr_assert_eq(F.n_close, 0);
  wt_send_frame(&F.pump, fd, 1, 0x1, "still", 5);
  expect_frame(fd, 0x1, "still", 5);
  close(fd);
}

Test(conn, never_pings_when_idle_timeout_is_uint32_max) {
  wire_endpoint_options eo = {0};
  eo.idle_timeout_ms = UINT32_MAX;
  int fd = start_echo(&eo);
  uint8_t b;
  cr_assert_eq(wt_read(&F.pump, fd, &b, 1, 200), 0);
  close(fd);
}

/* ---- pause / resume ---------------------------------------------------- */

static void pause_hook(fx *f, wire_conn *c, const wire_message *m) {
  (void)f;
  (void)m;
  cr_assert_eq(wire_conn_pause(c), 0);
}

Test(conn, pause_queues_messages_and_resume_delivers_them_in_order) {
  F.hook = pause_hook;
  fx_start(&F, NULL, NULL, "/p");
  int fd = wt_open(&F.pump, F.port, "/p");
  uint8_t buf[256];
  size_t n = 0;
  const char *words[] = {"m1", "m2", "m3", "m4"};
  for (int i = 0; i < 4; i++)
    n += wt_frame(buf + n, 1, 0x1, words[i], 2, 1);
  wt_write(&F.pump, fd, buf, n);
  FX_PUMP_UNTIL(&F, F.n_message >= 1);
  wt_pump_for(&F.pump, 30);
  cr_assert_str_eq(F.log, "m1");
  /* more arrives while paused: not delivered either */
  wt_send_frame(&F.pump, fd, 1, 0x1, "m5", 2);
  wt_pump_for(&F.pump, 50);
  cr_assert_str_eq(F.log, "m1");
  F.hook = NULL;
  cr_assert_eq(wire_conn_resume(F.conn), 0);
  FX_PUMP_UNTIL(&F, F.n_message >= 5);
  cr_assert_str_eq(F.log, "m1|m2|m3|m4|m5");
  close(fd);
}

/* A burst, then the peer's close, all while paused: the burst still reaches
 * the application (in order) before on_close. Optionally the peer also
 * leaves (FIN) before the resume. */
static void burst_then_close_while_paused(int fin_too) {
  F.hook = pause_hook;
  fx_start(&F, NULL, NULL, "/p");
  int fd = wt_open(&F.pump, F.port, "/p");
  uint8_t buf[256];
  size_t n = 0;
  const char *words[] = {"m1", "m2", "m3"};
  for (int i = 0; i < 3; i++)
    n += wt_frame(buf + n, 1, 0x1, words[i], 2, 1);
  n += wt_frame(buf + n, 1, 0x8, "\x03\xe8" "bye", 5, 1);
  wt_write(&F.pump, fd, buf, n);
  FX_PUMP_UNTIL(&F, F.n_message >= 1);
  cr_assert_eq(expect_close(fd), 1000, "the close is answered while paused");
  if (fin_too)
    shutdown(fd, SHUT_WR);
  wt_pump_for(&F.pump, 50);
  cr_assert_str_eq(F.log, "m1");
  cr_assert_eq(F.n_close, 0, "on_close before the queued messages were delivered");
  F.hook = NULL;
  cr_assert_eq(wire_conn_resume(F.conn), 0);
  wait_closed();
  cr_assert_str_eq(F.log, "m1|m2|m3");
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 1000);
  cr_assert_str_eq(F.close_reason, "bye");
  cr_assert_eq(wt_wait_eof(&F.pump, fd, 3000), 1, "the server did not close TCP");
  close(fd);
}

Test(conn, messages_before_the_peers_close_are_delivered_after_resume) {
  burst_then_close_while_paused(0);
}

Test(conn, messages_before_the_peers_close_survive_its_fin_while_paused) {
  burst_then_close_while_paused(1);
}

Test(conn, pauses_nest_and_each_needs_a_resume) {
  fx_start(&F, NULL, NULL, "/p");
  int fd = wt_open(&F.pump, F.port, "/p");
  cr_assert_eq(wire_conn_pause(F.conn), 0);
  cr_assert_eq(wire_conn_pause(F.conn), 0);
  wt_send_frame(&F.pump, fd, 1, 0x1, "x", 1);
  wt_pump_for(&F.pump, 30);
  cr_assert_eq(F.n_message, 0);
  cr_assert_eq(wire_conn_resume(F.conn), 0);
  wt_pump_for(&F.pump, 30);
  cr_assert_eq(F.n_message, 0);
  cr_assert_eq(wire_conn_resume(F.conn), 0);
  FX_PUMP_UNTIL(&F, F.n_message >= 1);
  cr_assert_eq(F.n_message, 1);
  cr_assert_eq(wire_conn_resume(F.conn), 0); /* extra resume is harmless */
  close(fd);
}

static int resumes_seen;
static void pause_resume_hook(fx *f, wire_conn *c, const wire_message *m) {
  (void)f;
  (void)m;
  /* an async handler that finished at once: pause, then resume in place */
  wire_conn_pause(c);
  wire_conn_resume(c);
  resumes_seen++;
}

Test(conn, pause_and_resume_inside_on_message_keep_order) {
  F.hook = pause_resume_hook;
  fx_start(&F, NULL, NULL, "/p");
  int fd = wt_open(&F.pump, F.port, "/p");
  uint8_t buf[256];
  size_t n = 0;
  for (int i = 0; i < 5; i++)
    n += wt_frame(buf + n, 1, 0x1, "abcde" + i, 1, 1);
  wt_write(&F.pump, fd, buf, n);
  FX_PUMP_UNTIL(&F, F.n_message >= 5);
  cr_assert_str_eq(F.log, "a|b|c|d|e");
  cr_assert_eq(resumes_seen, 5);
  close(fd);
}

Test(conn, paused_connection_stops_reading_from_the_socket) {
  F.hook = pause_hook;
  fx_start(&F, NULL, NULL, "/p");
  int fd = wt_open(&F.pump, F.port, "/p");
  wt_send_frame(&F.pump, fd, 1, 0x1, "first", 5);
  FX_PUMP_UNTIL(&F, F.n_message >= 1);
  wt_send_frame(&F.pump, fd, 1, 0x1, "second", 6);
  wt_pump_for(&F.pump, 30);
  /* the queued message stops reading: a third frame stays in the kernel */
  wt_send_frame(&F.pump, fd, 1, 0x9, "p", 1);
  uint8_t b[8];
  cr_assert_eq(wt_read(&F.pump, fd, b, 1, 100), 0, "a paused connection answered a ping");
  F.hook = NULL;
  wire_conn_resume(F.conn);
  expect_frame(fd, 0xA, "p", 1);
  cr_assert_str_eq(F.log, "first|second");
  close(fd);
}

/* ---- sending, batching, backpressure --------------------------------------- */

static size_t batched_amount;
static void triple_send_hook(fx *f, wire_conn *c, const wire_message *m) {
  (void)f;
  (void)m;
  wire_conn_send_text(c, "one", 3);
  wire_conn_send_text(c, "two", 3);
  wire_conn_send_binary(c, "3", 1);
  batched_amount = wire_conn_buffered_amount(c);
}

Test(conn, frames_sent_in_a_callback_leave_together_when_it_returns) {
  F.hook = triple_send_hook;
  fx_start(&F, NULL, NULL, "/b");
  int fd = wt_open(&F.pump, F.port, "/b");
  wt_send_frame(&F.pump, fd, 1, 0x1, "go", 2);
  expect_frame(fd, 0x1, "one", 3);
  expect_frame(fd, 0x1, "two", 3);
  expect_frame(fd, 0x2, "3", 1);
  cr_assert_eq(batched_amount, 5 + 5 + 3, "frames were written before the callback returned");
  cr_assert_eq(wire_conn_buffered_amount(F.conn), 0);
  close(fd);
}

Test(conn, send_from_host_code_is_written_at_once) {
  fx_start(&F, NULL, NULL, "/h");
  int fd = wt_open(&F.pump, F.port, "/h");
  cr_assert_eq(wire_conn_send_text(F.conn, "now", 3), 0);
  cr_assert_eq(wire_conn_buffered_amount(F.conn), 0);
  /* no pumping: the bytes are already in the socket */
  uint8_t b[5];
  ssize_t n = 0;
  for (int i = 0; i < 100 && n < 5; i++) {
    ssize_t r = recv(fd, b + n, 5 - (size_t)n, 0);
    if (r > 0)
      n += r;
    else
      usleep(1000);
  }
  cr_assert_eq(n, 5);
  cr_assert_eq(memcmp(b, "\x81\x03now", 5), 0);
  close(fd);
}

Test(conn, send_text_rejects_invalid_utf8) {
  fx_start(&F, NULL, NULL, "/h");
  int fd = wt_open(&F.pump, F.port, "/h");
  cr_assert_eq(wire_conn_send_text(F.conn, "\xff", 1), WIRE_EUTF8);
  cr_assert_eq(wire_conn_send_binary(F.conn, "\xff", 1), 0);
  close(fd);
}

Test(conn, sends_large_frames_with_64_bit_length) {
  fx_start(&F, NULL, NULL, "/h");
  int fd = wt_open(&F.pump, F.port, "/h");
  size_t n = 70000;
  char *big = malloc(n);
  memset(big, 'q', n);
  cr_assert_eq(wire_conn_send_binary(F.conn, big, n), 0);
  expect_frame(fd, 0x2, big, n);
  free(big);
  close(fd);
}

Test(conn, send_over_backpressure_limit_fails_and_closes_with_1008) {
  wire_endpoint_options eo = {0};
  eo.max_backpressure = 64 * 1024;
  fx_start(&F, NULL, &eo, "/bp");
  int fd = wt_open(&F.pump, F.port, "/bp"); /* and never reads until the end */
  char chunk[16384];
  memset(chunk, 'b', sizeof chunk);
  int r = 0, sends = 0;
  size_t max_seen = 0;
  while (sends < 20000) {
    r = wire_conn_send_binary(F.conn, chunk, sizeof chunk);
    if (r != 0)
      break;
    sends++;
    size_t amt = wire_conn_buffered_amount(F.conn);
    if (amt > max_seen)
      max_seen = amt;
  }
  cr_assert_eq(r, WIRE_EBACKPRESSURE);
  cr_assert_gt(max_seen, eo.max_backpressure);
  cr_assert_lt(max_seen, eo.max_backpressure + 2 * sizeof chunk);
  cr_assert_eq(wire_conn_is_open(F.conn), 0);
  cr_assert_eq(wire_conn_send_binary(F.conn, "x", 1), WIRE_ECLOSED);
  /* the reader catches up and finds the close after the data */
  int code = 0;
  for (int i = 0; i < sends + 2; i++) {
    wt_msg m;
    if (wt_read_frame(&F.pump, fd, &m, 5000) != 0)
      break;
    if (m.opcode == 0x8) {
      code = m.close_code;
      wt_msg_free(&m);
      break;
    }
    wt_msg_free(&m);
  }
  cr_assert_eq(code, 1008);
  close(fd);
}

/* ---- references, accessors, deferred connect -------------------------------- */

static int data_marker;

Test(conn, ref_keeps_the_handle_valid_after_close_and_calls_return_eclosed) {
  F.ref_in_connect = 1;
  fx_start(&F, NULL, NULL, "/r");
  int fd = wt_open(&F.pump, F.port, "/r");
  wire_conn *c = F.conn;
  wire_conn_set_data(c, &data_marker);
  close(fd);
  wait_closed();
  cr_assert_eq(F.n_close, 1);
  FX_PUMP_UNTIL(&F, wire_server_connection_count(F.server) == 0); /* socket closed */
  cr_assert_eq(wire_conn_get_data(c), &data_marker);
  cr_assert_eq(wire_conn_send_text(c, "x", 1), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_send_binary(c, "x", 1), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_close(c, 1000, NULL, 0), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_pause(c), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_resume(c), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_is_open(c), 0);
  cr_assert_str_eq(wire_request_path(wire_conn_request(c)).ptr, "/r");
  wire_conn_unref(c); /* frees it (ASan/valgrind would see a leak otherwise) */
}

Test(conn, ref_held_through_server_free_is_released_by_free) {
  F.ref_in_connect = 1;
  fx_start(&F, NULL, NULL, "/r");
  int fd = wt_open(&F.pump, F.port, "/r");
  close(fd);
  wait_closed();
}

Test(conn, accessors_describe_the_connection) {
  fx_start(&F, NULL, NULL, "/room/{name}");
  int fd1 = wt_open(&F.pump, F.port, "/room/blue?x=1");
  wire_conn *c1 = F.conn;
  int fd2 = wt_open(&F.pump, F.port, "/room/red");
  wire_conn *c2 = F.conn;
  cr_assert_gt(wire_conn_id(c2), wire_conn_id(c1));
  cr_assert_eq(wire_conn_server(c1), F.server);
  cr_assert_eq(wire_conn_endpoint(c1), F.ep);
  cr_assert_str_eq(wire_endpoint_pattern(F.ep), "/room/{name}");
  cr_assert_eq(wire_endpoint_user_data(F.ep), &F);
  cr_assert_str_eq(wire_request_param(wire_conn_request(c1), "name").ptr, "blue");
  cr_assert_str_eq(wire_request_query(wire_conn_request(c1), "x").ptr, "1");
  cr_assert_eq(wire_conn_get_data(c1), NULL);
  cr_assert_eq(wire_server_connection_count(F.server), 2);
  /* the view kept after the upgrade is compact: handshake-only headers go */
  const wire_request *req = wire_conn_request(c1);
  cr_assert_str_eq(wire_request_header(req, "host").ptr, "127.0.0.1");
  cr_assert_null(wire_request_header(req, "Sec-WebSocket-Key").ptr);
  cr_assert_null(wire_request_header(req, "Upgrade").ptr);
  cr_assert_str_eq(wire_request_path(req).ptr, "/room/blue");
  cr_assert_str_eq(wire_request_target(req).ptr, "/room/blue?x=1");
  cr_assert_gt(wire_request_remote_port(req), 0);
  cr_assert_str_eq(wire_request_remote_addr(req).ptr, "127.0.0.1");
  close(fd1);
  close(fd2);
}

Test(conn, delivers_frames_sent_right_behind_the_handshake_request) {
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/e");
  int fd = wt_connect(F.port);
  char req[512];
  int n =
      snprintf(req, sizeof req,
               "GET /e HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  n += (int)wt_frame((uint8_t *)req + n, 1, 0x1, "early", 5, 1);
  wt_write(&F.pump, fd, req, (size_t)n);
  cr_assert_eq(wt_read_http(&F.pump, fd, NULL, 0, 3000), 101);
  expect_frame(fd, 0x1, "early", 5);
  close(fd);
}

Test(conn, deferred_connect_is_accepted_later) {
  F.connect_verdict = WIRE_CONNECT_DEFER;
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/d");
  int fd = wt_connect(F.port);
  char req[512];
  int n =
      snprintf(req, sizeof req,
               "GET /d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  n += (int)wt_frame((uint8_t *)req + n, 1, 0x1, "queued", 6, 1);
  wt_write(&F.pump, fd, req, (size_t)n);
  FX_PUMP_UNTIL(&F, F.n_connect == 1);
  cr_assert_eq(F.n_connect, 1);
  uint8_t b;
  cr_assert_eq(wt_read(&F.pump, fd, &b, 1, 50), 0, "answered before the decision");
  cr_assert_eq(wire_conn_is_open(F.conn), 0);
  cr_assert_eq(wire_conn_accept(F.conn), 0);
  cr_assert_eq(wire_conn_accept(F.conn), WIRE_ESTATE);
  cr_assert_eq(wt_read_http(&F.pump, fd, NULL, 0, 3000), 101);
  expect_frame(fd, 0x1, "queued", 6);
  close(fd);
  wait_closed();
  cr_assert_eq(F.close_code, 1006);
}

#define DEFER_REQ                                                                                  \
  "GET /d HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                    \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

Test(conn, deferred_connect_is_rejected_later_with_a_status) {
  F.connect_verdict = WIRE_CONNECT_DEFER;
  fx_start(&F, NULL, NULL, "/d");
  int fd = wt_connect(F.port);
  wt_write(&F.pump, fd, DEFER_REQ, strlen(DEFER_REQ));
  FX_PUMP_UNTIL(&F, F.n_connect == 1);
  cr_assert_eq(wire_conn_reject(F.conn, 200, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_conn_reject(F.conn, 401, "who are you"), 0);
  char head[1024];
  cr_assert_eq(wt_read_http(&F.pump, fd, head, sizeof head, 3000), 401);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000));
  wt_pump_for(&F.pump, 20);
  cr_assert_eq(F.n_close, 0, "on_close for a connection never accepted");
  close(fd);
}

Test(conn, deferred_connect_reports_eclosed_when_the_peer_left) {
  F.connect_verdict = WIRE_CONNECT_DEFER;
  fx_start(&F, NULL, NULL, "/d");
  int fd = wt_connect(F.port);
  wt_write(&F.pump, fd, DEFER_REQ, strlen(DEFER_REQ));
  FX_PUMP_UNTIL(&F, F.n_connect == 1);
  cr_assert_eq(F.n_connect, 1);
  close(fd);
  FX_PUMP_UNTIL(&F, wire_server_connection_count(F.server) == 0);
  cr_assert_eq(wire_server_connection_count(F.server), 0);
  cr_assert_eq(wire_conn_accept(F.conn), WIRE_ECLOSED);
  cr_assert_eq(F.n_close, 0);
}

Test(conn, accept_on_a_connection_not_deferred_is_estate) {
  fx_start(&F, NULL, NULL, "/a");
  int fd = wt_open(&F.pump, F.port, "/a");
  cr_assert_eq(wire_conn_accept(F.conn), WIRE_ESTATE);
  cr_assert_eq(wire_conn_reject(F.conn, 400, NULL), WIRE_ESTATE);
  close(fd);
}

static void close_in_hook(fx *f, wire_conn *c, const wire_message *m) {
  (void)f;
  (void)m;
  wire_conn_close(c, 1000, "enough", 6);
  wire_conn_close(c, 1000, "again", 5);
}

Test(conn, close_from_on_message_drops_later_messages_and_fires_on_close_once) {
  F.hook = close_in_hook;
  fx_start(&F, NULL, NULL, "/c");
  int fd = wt_open(&F.pump, F.port, "/c");
  uint8_t buf[64];
  size_t n = wt_frame(buf, 1, 0x1, "1", 1, 1);
  n += wt_frame(buf + n, 1, 0x1, "2", 1, 1);
  wt_write(&F.pump, fd, buf, n);
  cr_assert_eq(expect_close(fd), 1000);
  wt_send_frame(&F.pump, fd, 1, 0x8, "\x03\xe8", 2);
  cr_assert(wt_wait_eof(&F.pump, fd, 3000));
  wait_closed();
  cr_assert_str_eq(F.log, "1");
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 1000);
  close(fd);
}

Test(conn, stops_reading_while_over_the_backpressure_limit_and_resumes_when_drained) {
  wire_endpoint_options eo = {0};
  eo.max_backpressure = 64 * 1024;
  fx_start(&F, NULL, &eo, "/bp");
  int fd = wt_open(&F.pump, F.port, "/bp");
  char chunk[16384];
  memset(chunk, 'b', sizeof chunk);
  int sends = 0;
  while (wire_conn_buffered_amount(F.conn) <= eo.max_backpressure && sends < 20000) {
    cr_assert_eq(wire_conn_send_binary(F.conn, chunk, sizeof chunk), 0);
    sends++;
  }
  /* over the limit, still open: the peer's next message is not read */
  cr_assert_eq(wire_conn_is_open(F.conn), 1);
  wt_send_frame(&F.pump, fd, 1, 0x1, "later", 5);
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(F.n_message, 0, "read a message while over the backpressure limit");
  /* the peer reads everything; the queue drains and reading resumes */
  for (int i = 0; i < sends; i++) {
    wt_msg m;
    cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 5000), 0);
    wt_msg_free(&m);
  }
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  cr_assert_eq(wire_conn_buffered_amount(F.conn), 0);
  cr_assert_eq(F.n_message, 1);
  cr_assert_str_eq(F.log, "later");
  close(fd);
}

Test(conn, rejects_a_close_reason_that_is_not_utf8_with_1007) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x8, "\x03\xe8ok\xff", 5);
  expect_protocol_close(fd, 1007, WIRE_EUTF8);
  close(fd);
}

Test(conn, accepts_a_utf8_close_reason) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x8,
                "\x03\xe8"
                "d\xc3\xa9j\xc3\xa0",
                8);
  cr_assert_eq(expect_close(fd), 1000);
  wait_closed();
  cr_assert_str_eq(F.close_reason, "d\xc3\xa9j\xc3\xa0");
  close(fd);
}

Test(conn, a_long_pause_does_not_trigger_the_idle_ping_deadline) {
  wire_endpoint_options eo = {0};
  eo.idle_timeout_ms = 50;
  eo.pong_timeout_ms = 50;
  F.hook = pause_hook;
  fx_start(&F, NULL, &eo, "/p");
  int fd = wt_open(&F.pump, F.port, "/p");
  wt_send_frame(&F.pump, fd, 1, 0x1, "a", 1);
  wt_send_frame(&F.pump, fd, 1, 0x1, "b", 1); /* queued: reading stops */
  wt_pump_for(&F.pump, 300);
  cr_assert_eq(F.n_close, 0, "dropped while the application held it paused");
  F.hook = NULL;
  cr_assert_eq(wire_conn_resume(F.conn), 0);
  FX_PUMP_UNTIL(&F, F.n_message == 2);
  cr_assert_str_eq(F.log, "a|b");
  close(fd);
}

Test(conn, rejects_a_close_with_a_one_byte_payload_with_1002) {
  int fd = start_echo(NULL);
  wt_send_frame(&F.pump, fd, 1, 0x8, "\x03", 1);
  expect_protocol_close(fd, 1002, WIRE_EPROTOCOL);
  close(fd);
}

Test(conn, refuses_a_header_announcing_too_much_before_the_payload_arrives) {
  wire_endpoint_options eo = {0};
  eo.max_message_size = 1000;
  int fd = start_echo(&eo);
  /* only the header of a 1 GiB frame: no payload will ever come */
  uint8_t h[14] = {0x82, 0x80 | 127, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4};
  wt_write(&F.pump, fd, h, sizeof h);
  expect_protocol_close(fd, 1009, WIRE_ETOOBIG);
  close(fd);
}

/* White-box: the memory rules of an idle connection (conn_internal.h). */
#include "conn_internal.h"

Test(conn, idle_connection_holds_no_wslay_context_and_no_buffers) {
  int fd = start_echo(NULL);
  wire_conn *c = F.conn;
  cr_assert_null(c->slot, "a fresh connection owns a wslay context");
  /* part of a header: the scanner holds those bytes, no context is lent */
  uint8_t buf[64];
  size_t n = wt_frame(buf, 1, 0x1, "0123456789", 10, 1);
  wt_write(&F.pump, fd, buf, 5);
  FX_PUMP_UNTIL(&F, c->u.sc.have == 5);
  cr_assert_eq(c->u.sc.have, 5);
  cr_assert_null(c->slot, "a partial header pins a wslay context");
  /* half a frame: the context stays lent while the payload is in flight */
  wt_write(&F.pump, fd, buf + 5, 3);
  FX_PUMP_UNTIL(&F, c->slot != NULL);
  cr_assert_not_null(c->slot);
  wt_write(&F.pump, fd, buf + 8, n - 8);
  expect_frame(fd, 0x1, "0123456789", 10);
  cr_assert_null(c->slot, "the context was not given back between frames");
  /* a fragmented message keeps it too, even between whole frames */
  wt_send_frame(&F.pump, fd, 0, 0x1, "ab", 2);
  FX_PUMP_UNTIL(&F, c->slot != NULL);
  wt_pump_for(&F.pump, 20);
  cr_assert_not_null(c->slot);
  wt_send_frame(&F.pump, fd, 1, 0x0, "cd", 2);
  expect_frame(fd, 0x1, "abcd", 4);
  cr_assert_null(c->slot);
  cr_assert_null(c->out_head);
  cr_assert_eq(c->flags & WIRE__F_WRITING, 0);
  cr_assert_null(c->pq_head);
  close(fd);
}

Test(conn, connections_with_frames_in_flight_at_once_keep_their_own_state) {
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/m");
  enum { N = 5 };
  int fds[N];
  uint8_t frames[N][64];
  size_t lens[N];
  char msg[N][8];
  for (int i = 0; i < N; i++) {
    fds[i] = wt_open(&F.pump, F.port, "/m");
    snprintf(msg[i], sizeof msg[i], "conn-%d", i);
    lens[i] = wt_frame(frames[i], 1, 0x1, msg[i], strlen(msg[i]), 1);
  }
  /* every connection gets half a frame first: N contexts lent at once */
  for (int i = 0; i < N; i++)
    wt_write(&F.pump, fds[i], frames[i], 4);
  wt_pump_for(&F.pump, 30);
  for (int i = N - 1; i >= 0; i--)
    wt_write(&F.pump, fds[i], frames[i] + 4, lens[i] - 4);
  for (int i = 0; i < N; i++) {
    expect_frame(fds[i], 0x1, msg[i], strlen(msg[i]));
    close(fds[i]);
  }
}
