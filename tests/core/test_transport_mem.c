/*
 * test_transport_mem.c -- the engine driven through the in-memory transport
 * (transport_mem.c) with scripted bytes, in the style of wslay's event tests:
 * exact input in chosen chunks, exact output bytes. The 101 for a known key,
 * echo frames, every split point of a frame sequence, partial and 1-byte
 * writes, a close in the same chunk as data, a ping between fragments, the
 * exact close frames of protocol errors, rejections and shutdown.
 */
#include "conn_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REQUEST(path)                                                                              \
  "GET " path " HTTP/1.1\r\n"                                                                      \
  "Host: example.com\r\n"                                                                          \
  "Upgrade: websocket\r\n"                                                                         \
  "Connection: Upgrade\r\n"                                                                        \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                                \
  "Sec-WebSocket-Version: 13\r\n"                                                                  \
  "\r\n"

static const char RESPONSE_101[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                   "\r\n";

static struct {
  wire_server *s;
  int n_close, close_code, n_msg, n_error, last_error;
} T;

/* Echo every message with its kind. */
static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  T.n_msg++;
  if (m->kind == WIRE_MSG_TEXT)
    wire_conn_send_text(c, (const char *)m->data, m->len);
  else
    wire_conn_send_binary(c, m->data, m->len);
}

static void on_close(wire_conn *c, int code, const char *reason, size_t rlen, void *ud) {
  (void)c, (void)reason, (void)rlen, (void)ud;
  T.n_close++;
  T.close_code = code;
}

static int on_error(wire_conn *c, const wire_error *err, void *ud) {
  (void)c, (void)ud;
  T.n_error++;
  T.last_error = err->code;
  return 0;
}

static void setup(void) {
  memset(&T, 0, sizeof T);
  cr_assert_eq(wire_server_new(NULL, &T.s), 0);
  wire_callbacks cb = {.on_message = on_message, .on_close = on_close, .on_error = on_error};
  cr_assert_eq(wire_endpoint_add(T.s, "/echo", NULL, &cb, NULL, NULL, NULL), 0);
}

/* Shut the server down and run its loop until it is done. */
static void teardown(void) {
  wire_server_shutdown(T.s, 100, NULL, NULL);
  for (int i = 0; i < 1000 && wire_server_process(T.s) == 1; i++)
    ;
  cr_assert_eq(wire_server_free(T.s), 0);
}

TestSuite(transport_mem, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------- */

/* A masked client frame into out; returns its length. */
static size_t frame(uint8_t *out, int fin, int opcode, const void *payload, size_t len) {
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t n = 0;
  out[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  if (len < 126) {
    out[n++] = (uint8_t)(0x80 | len);
  } else {
    out[n++] = 0x80 | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  }
  memcpy(out + n, mask, 4);
  n += 4;
  for (size_t i = 0; i < len; i++)
    out[n + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
  return n + len;
}

/* An unmasked server frame into out; returns its length. */
static size_t sframe(uint8_t *out, int opcode, const void *payload, size_t len) {
  size_t n = 0;
  out[n++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  }
  memcpy(out + n, payload, len);
  return n + len;
}

static void feed(wire__mem *m, const void *data, size_t len) {
  cr_assert_eq(wire__mem_feed(m, data, len), 0);
}

/* The output so far must start with want (all of it when `all`); the
 * matched bytes are consumed. */
static void expect_prefix(wire__mem *m, const void *want, size_t len, int all) {
  size_t have;
  const uint8_t *out = wire__mem_output(m, &have);
  if (all)
    cr_assert_eq(have, len, "output is %zu bytes, expected %zu", have, len);
  else
    cr_assert_geq(have, len, "output is %zu bytes, expected at least %zu", have, len);
  for (size_t i = 0; i < len; i++)
    cr_assert_eq(out[i], ((const uint8_t *)want)[i], "byte %zu is %02x, expected %02x", i, out[i],
                 ((const uint8_t *)want)[i]);
  wire__mem_consume(m, len);
}

/* The output so far must be exactly want; it is consumed. */
static void expect_out(wire__mem *m, const void *want, size_t len) {
  expect_prefix(m, want, len, 1);
}

/* A fresh connection through its 101. */
static wire__mem *open_ws(void) {
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  feed(m, REQUEST("/echo"), strlen(REQUEST("/echo")));
  wire__mem_run(m);
  expect_out(m, RESPONSE_101, strlen(RESPONSE_101));
  return m;
}

/* The close frame with `code` and no reason. */
static size_t close_frame(uint8_t *out, int code) {
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  return sframe(out, 0x8, p, 2);
}

/* After our close for a protocol error: FIN, then the peer's EOF ends it. */
static void expect_error_close(wire__mem *m, int code, int error) {
  uint8_t want[8];
  expect_out(m, want, close_frame(want, code));
  cr_assert(wire__mem_fin(m), "no FIN after the close");
  cr_assert_eq(T.n_error, 1);
  cr_assert_eq(T.last_error, error);
  wire__mem_eof(m);
  wire__mem_run(m);
  cr_assert(wire__mem_closed(m));
  cr_assert_eq(T.n_close, 1);
  cr_assert_eq(T.close_code, code);
}

/* ---- handshake ----------------------------------------------------------- */

Test(transport_mem, answers_the_rfc_key_with_the_exact_101) {
  wire__mem *m = open_ws();
  cr_assert_not_null(wire__mem_conn(m));
  cr_assert(wire_conn_is_open(wire__mem_conn(m)));
  wire__mem_free(m);
  cr_assert_eq(T.n_close, 1);
  cr_assert_eq(T.close_code, 1006);
}

Test(transport_mem, request_split_at_every_byte_gives_the_same_101) {
  const char *req = REQUEST("/echo");
  size_t len = strlen(req);
  for (size_t k = 1; k < len; k++) {
    wire__mem *m;
    cr_assert_eq(wire__mem_open(T.s, &m), 0);
    feed(m, req, k);
    feed(m, req + k, len - k);
    wire__mem_run(m);
    expect_out(m, RESPONSE_101, strlen(RESPONSE_101));
    wire__mem_free(m);
  }
}

Test(transport_mem, unknown_path_gets_404_then_fin_and_closes_on_eof) {
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  feed(m, REQUEST("/nope"), strlen(REQUEST("/nope")));
  wire__mem_run(m);
  const char *want = "HTTP/1.1 404 Not Found\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: 9\r\n"
                     "Connection: close\r\n"
                     "\r\n"
                     "Not Found";
  expect_out(m, want, strlen(want));
  cr_assert(wire__mem_fin(m));
  cr_assert_not(wire__mem_closed(m));
  wire__mem_eof(m);
  wire__mem_run(m);
  cr_assert(wire__mem_closed(m));
  cr_assert_eq(T.n_close, 0, "a rejected connection gets no on_close");
  wire__mem_free(m);
}

Test(transport_mem, eof_during_the_handshake_closes_without_output) {
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  feed(m, "GET /echo HTTP/1.1\r\n", 20);
  wire__mem_eof(m);
  wire__mem_run(m);
  expect_out(m, "", 0);
  cr_assert(wire__mem_closed(m));
  wire__mem_free(m);
}

Test(transport_mem, frames_pipelined_behind_the_request_are_echoed_after_the_101) {
  uint8_t buf[512];
  size_t n = strlen(REQUEST("/echo"));
  memcpy(buf, REQUEST("/echo"), n);
  n += frame(buf + n, 1, 0x1, "early", 5);
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  feed(m, buf, n);
  wire__mem_run(m);
  uint8_t want[256];
  size_t w = strlen(RESPONSE_101);
  memcpy(want, RESPONSE_101, w);
  w += sframe(want + w, 0x1, "early", 5);
  expect_out(m, want, w);
  wire__mem_free(m);
}

/* ---- frames -------------------------------------------------------------- */

Test(transport_mem, echoes_text_and_binary_frames_exactly) {
  wire__mem *m = open_ws();
  uint8_t in[64], want[64];
  feed(m, in, frame(in, 1, 0x1, "hello", 5));
  wire__mem_run(m);
  expect_out(m, want, sframe(want, 0x1, "hello", 5));
  feed(m, in, frame(in, 1, 0x2, "\x00\xff", 2));
  wire__mem_run(m);
  expect_out(m, want, sframe(want, 0x2, "\x00\xff", 2));
  wire__mem_free(m);
}

/* Text, a 16-bit-length binary frame, a ping, and a fragmented text message:
 * every way of splitting the bytes into two reads, and one byte per read,
 * gives the same output. */
Test(transport_mem, a_frame_sequence_split_at_every_point_gives_the_same_output) {
  uint8_t big[200];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (uint8_t)(i * 7);
  uint8_t in[512], want[512];
  size_t n = 0, w = 0;
  n += frame(in + n, 1, 0x1, "hello", 5);
  n += frame(in + n, 1, 0x2, big, sizeof big);
  n += frame(in + n, 1, 0x9, "p", 1);
  n += frame(in + n, 0, 0x1, "fra", 3);
  n += frame(in + n, 1, 0x0, "gment", 5);
  w += sframe(want + w, 0x1, "hello", 5);
  w += sframe(want + w, 0x2, big, sizeof big);
  w += sframe(want + w, 0xA, "p", 1);
  w += sframe(want + w, 0x1, "fragment", 8);
  for (size_t k = 0; k <= n; k++) {
    wire__mem *m = open_ws();
    if (k == n) { /* one byte per read */
      for (size_t i = 0; i < n; i++)
        feed(m, in + i, 1);
    } else {
      feed(m, in, k);
      feed(m, in + k, n - k);
    }
    wire__mem_run(m);
    expect_out(m, want, w);
    wire__mem_free(m);
  }
  cr_assert_eq(T.n_error, 0);
}

Test(transport_mem, a_ping_between_fragments_is_answered_before_the_echo) {
  wire__mem *m = open_ws();
  uint8_t in[64], want[64];
  size_t n = 0, w = 0;
  n += frame(in + n, 0, 0x1, "hel", 3);
  n += frame(in + n, 1, 0x9, "ping", 4);
  n += frame(in + n, 1, 0x0, "lo", 2);
  feed(m, in, n);
  wire__mem_run(m);
  w += sframe(want + w, 0xA, "ping", 4);
  w += sframe(want + w, 0x1, "hello", 5);
  expect_out(m, want, w);
  wire__mem_free(m);
}

Test(transport_mem, a_close_in_the_same_chunk_as_data_echoes_then_answers_and_closes) {
  wire__mem *m = open_ws();
  uint8_t in[64], want[64];
  size_t n = 0, w = 0;
  n += frame(in + n, 1, 0x1, "bye", 3);
  n += frame(in + n, 1, 0x8, "\x03\xe8ok", 4);
  feed(m, in, n);
  wire__mem_run(m);
  w += sframe(want + w, 0x1, "bye", 3);
  w += sframe(want + w, 0x8, "\x03\xe8ok", 4); /* wslay echoes code and reason */
  expect_out(m, want, w);
  cr_assert(wire__mem_closed(m), "the server closes TCP once its reply left");
  cr_assert_eq(T.n_msg, 1);
  cr_assert_eq(T.n_close, 1);
  cr_assert_eq(T.close_code, 1000);
  wire__mem_free(m);
}

/* ---- partial writes ------------------------------------------------------- */

Test(transport_mem, writes_taking_seven_bytes_at_a_time_deliver_everything_in_order) {
  wire__mem *m = open_ws();
  uint8_t payload[300];
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t)('a' + i % 26);
  uint8_t in[400], want[400];
  wire__mem_set_write_limit(m, 7);
  feed(m, in, frame(in, 1, 0x1, payload, sizeof payload));
  cr_assert(wire__mem_step(m)); /* the read: one try-write takes 7 bytes */
  size_t have;
  wire__mem_output(m, &have);
  cr_assert_eq(have, 7);
  cr_assert_eq(wire_conn_buffered_amount(wire__mem_conn(m)), 4 + sizeof payload - 7);
  size_t steps = wire__mem_run(m);
  cr_assert_eq(steps, (4 + sizeof payload - 7 + 6) / 7, "one step per 7 bytes");
  cr_assert_eq(wire_conn_buffered_amount(wire__mem_conn(m)), 0);
  expect_out(m, want, sframe(want, 0x1, payload, sizeof payload));
  wire__mem_free(m);
}

Test(transport_mem, a_socket_taking_one_byte_at_a_time_gets_the_101_and_the_echoes) {
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  wire__mem_set_write_limit(m, 1);
  feed(m, REQUEST("/echo"), strlen(REQUEST("/echo")));
  wire__mem_run(m);
  expect_out(m, RESPONSE_101, strlen(RESPONSE_101));
  uint8_t in[128], want[128];
  size_t n = 0, w = 0;
  n += frame(in + n, 1, 0x1, "one", 3);
  n += frame(in + n, 1, 0x1, "two", 3);
  feed(m, in, n);
  feed(m, in, frame(in, 1, 0x1, "three", 5));
  wire__mem_run(m);
  w += sframe(want + w, 0x1, "one", 3);
  w += sframe(want + w, 0x1, "two", 3);
  w += sframe(want + w, 0x1, "three", 5);
  expect_out(m, want, w);
  wire__mem_free(m);
}

/* ---- protocol errors: exact close frames ----------------------------------- */

Test(transport_mem, an_unmasked_frame_gets_1002) {
  wire__mem *m = open_ws();
  feed(m, "\x81\x02hi", 4);
  wire__mem_run(m);
  expect_error_close(m, 1002, WIRE_EPROTOCOL);
  wire__mem_free(m);
}

Test(transport_mem, frames_before_a_bad_one_are_still_echoed) {
  wire__mem *m = open_ws();
  uint8_t in[64], want[64];
  size_t n = frame(in, 1, 0x1, "ok", 2);
  n += frame(in + n, 1, 0x3, "x", 1); /* reserved opcode */
  feed(m, in, n);
  wire__mem_run(m);
  expect_prefix(m, want, sframe(want, 0x1, "ok", 2), 0);
  expect_error_close(m, 1002, WIRE_EPROTOCOL);
  wire__mem_free(m);
}

Test(transport_mem, header_violations_each_get_1002) {
  uint8_t in[200] = {0};
  uint8_t cases[5][200];
  size_t lens[5];
  lens[0] = frame(cases[0], 1, 0x1, "x", 1);
  cases[0][0] |= 0x40;                        /* RSV1 without an extension */
  lens[1] = frame(cases[1], 0, 0x9, "p", 1);  /* fragmented ping */
  lens[2] = frame(cases[2], 1, 0x0, "x", 1);  /* continuation of nothing */
  lens[3] = frame(cases[3], 1, 0x9, in, 126); /* control frame over 125 bytes */
  lens[4] = frame(cases[4], 0, 0x1, "a", 1);  /* new message inside a fragmented one */
  lens[4] += frame(cases[4] + lens[4], 1, 0x1, "b", 1);
  for (int i = 0; i < 5; i++) {
    T.n_close = T.close_code = T.n_msg = T.n_error = T.last_error = 0;
    wire__mem *m = open_ws();
    feed(m, cases[i], lens[i]);
    wire__mem_run(m);
    expect_error_close(m, 1002, WIRE_EPROTOCOL);
    wire__mem_free(m);
  }
}

Test(transport_mem, invalid_utf8_gets_1007) {
  wire__mem *m = open_ws();
  uint8_t in[64];
  feed(m, in, frame(in, 1, 0x1, "\xc3\x28", 2));
  wire__mem_run(m);
  expect_error_close(m, 1007, WIRE_EUTF8);
  wire__mem_free(m);
}

/* ---- deadlines: the server's loop still runs them ---------------------------- */

/* Run the server's loop until the memory connection is closed (or 3 s). */
static void run_until_closed(wire__mem *m) {
  for (int i = 0; i < 300 && !wire__mem_closed(m); i++) {
    usleep(10 * 1000);
    wire_server_process(T.s);
    wire__mem_run(m);
  }
}

Test(transport_mem, an_idle_connection_gets_a_ping_then_1006_without_a_pong) {
  wire_endpoint_options eo = {.idle_timeout_ms = 30, .pong_timeout_ms = 30};
  wire_callbacks cb = {.on_close = on_close};
  cr_assert_eq(wire_endpoint_add(T.s, "/quiet", &eo, &cb, NULL, NULL, NULL), 0);
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  feed(m, REQUEST("/quiet"), strlen(REQUEST("/quiet")));
  wire__mem_run(m);
  expect_out(m, RESPONSE_101, strlen(RESPONSE_101));
  run_until_closed(m);
  expect_out(m, "\x89\x00", 2);
  cr_assert(wire__mem_closed(m));
  cr_assert_eq(T.close_code, 1006);
  wire__mem_free(m);
}

Test(transport_mem, a_request_that_never_completes_is_dropped_at_the_handshake_deadline) {
  wire_server_free(T.s);
  wire_server_options so = {.handshake_timeout_ms = 30};
  cr_assert_eq(wire_server_new(&so, &T.s), 0);
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  feed(m, "GET /echo HTTP/1.1\r\n", 20);
  run_until_closed(m);
  cr_assert(wire__mem_closed(m));
  expect_out(m, "", 0);
  wire__mem_free(m);
}

/* ---- shutdown ------------------------------------------------------------- */

Test(transport_mem, shutdown_sends_1001_to_a_memory_connection) {
  wire__mem *m = open_ws();
  cr_assert_eq(wire_server_shutdown(T.s, 1000, NULL, NULL), 0);
  uint8_t want[64];
  const char payload[] = "\x03\xe9server shutting down";
  expect_out(m, want, sframe(want, 0x8, payload, sizeof payload - 1));
  uint8_t in[16];
  feed(m, in, frame(in, 1, 0x8, "\x03\xe9", 2));
  wire__mem_run(m);
  cr_assert(wire__mem_closed(m));
  cr_assert_eq(T.close_code, 1001);
  wire__mem_free(m);
  cr_assert_eq(wire__mem_open(T.s, &m), WIRE_ESTATE);
}
