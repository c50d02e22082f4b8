/*
 * test_limits.c -- the engine's limits against hostile peers, driven through
 * the in-memory transport with scripted bytes: fragments coalesced into one
 * buffer and capped by max_message_fragments (1009), the send deadline that
 * closes a reader who stopped reading (1008), and its refresh on progress.
 */
#include "conn_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define REQUEST(path)                                                                              \
  "GET " path " HTTP/1.1\r\n"                                                                      \
  "Host: example.com\r\n"                                                                          \
  "Upgrade: websocket\r\n"                                                                         \
  "Connection: Upgrade\r\n"                                                                        \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                                \
  "Sec-WebSocket-Version: 13\r\n"                                                                  \
  "\r\n"

static struct {
  wire_server *s;
  int n_close, close_code, n_msg, n_error, last_error;
  size_t last_len;
  char last_error_msg[512];
} T;

/* Echo every message with its kind. */
static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  T.n_msg++;
  T.last_len = m->len;
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
  snprintf(T.last_error_msg, sizeof T.last_error_msg, "%s", err->message);
  return 0;
}

static const wire_callbacks CB = {
    .on_message = on_message, .on_close = on_close, .on_error = on_error};

static void setup(void) {
  memset(&T, 0, sizeof T);
  cr_assert_eq(wire_server_new(NULL, &T.s), 0);
}

static void teardown(void) {
  wire_server_shutdown(T.s, 100, NULL, NULL);
  for (int i = 0; i < 1000 && wire_server_process(T.s) == 1; i++)
    ;
  cr_assert_eq(wire_server_free(T.s), 0);
}

TestSuite(limits, .init = setup, .fini = teardown, .timeout = 60);

/* A masked client frame (payload < 64 KiB) into out; returns its length. */
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

/* An endpoint on /lim with eo, and a connection to it through its 101. */
static wire__mem *open_ws(const wire_endpoint_options *eo) {
  cr_assert_eq(wire_endpoint_add(T.s, "/lim", eo, &CB, NULL, NULL, NULL), 0);
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  cr_assert_eq(wire__mem_feed(m, REQUEST("/lim"), strlen(REQUEST("/lim"))), 0);
  wire__mem_run(m);
  size_t have;
  const uint8_t *out = wire__mem_output(m, &have);
  cr_assert(have > 12 && memcmp(out, "HTTP/1.1 101", 12) == 0, "no 101");
  wire__mem_consume(m, have);
  return m;
}

/* n one-byte fragments of a binary message (the last one final), as one
 * chunk of input. */
static void feed_fragments(wire__mem *m, unsigned n) {
  uint8_t *buf = malloc((size_t)n * 7);
  cr_assert_not_null(buf);
  size_t len = 0;
  for (unsigned i = 0; i < n; i++) {
    uint8_t b = (uint8_t)i;
    len += frame(buf + len, i + 1 == n, i == 0 ? 0x2 : 0x0, &b, 1);
  }
  cr_assert_eq(wire__mem_feed(m, buf, len), 0);
  free(buf);
}

Test(limits, a_message_of_many_one_byte_fragments_arrives_whole) {
  wire__mem *m = open_ws(NULL);
  feed_fragments(m, WIRE_DEFAULT_MAX_FRAGMENTS);
  wire__mem_run(m);
  cr_assert_eq(T.n_msg, 1);
  cr_assert_eq(T.last_len, WIRE_DEFAULT_MAX_FRAGMENTS);
  size_t have;
  const uint8_t *out = wire__mem_output(m, &have);
  cr_assert_eq(have, 4 + (size_t)WIRE_DEFAULT_MAX_FRAGMENTS, "echo of %zu bytes", have);
  for (unsigned i = 0; i < WIRE_DEFAULT_MAX_FRAGMENTS; i++)
    cr_assert_eq(out[4 + i], (uint8_t)i, "byte %u", i);
  cr_assert_eq(T.n_error, 0);
  wire__mem_free(m);
}

Test(limits, the_message_in_flight_costs_its_payload_not_a_node_per_fragment) {
  wire__mem *m = open_ws(NULL);
  uint8_t *buf = malloc(3000 * 7);
  size_t len = 0;
  for (unsigned i = 0; i < 3000; i++) /* none final: the message stays open */
    len += frame(buf + len, 0, i == 0 ? 0x2 : 0x0, "x", 1);
  cr_assert_eq(wire__mem_feed(m, buf, len), 0);
  free(buf);
  wire__mem_run(m);
  wire_conn *c = wire__mem_conn(m);
  cr_assert_not_null(c->slot);
  cr_assert_eq(T.n_msg, 0);
  cr_assert_eq(c->slot->msg_len, 3000);
  cr_assert_leq(c->slot->msg_cap, 4096, "one buffer for the payload: %zu", c->slot->msg_cap);
  wire__mem_free(m);
}

Test(limits, more_fragments_than_max_message_fragments_close_with_1009) {
  wire_endpoint_options eo = {.max_message_fragments = 8};
  wire__mem *m = open_ws(&eo);
  feed_fragments(m, 8);
  wire__mem_run(m);
  cr_assert_eq(T.n_msg, 1, "8 fragments are allowed");
  size_t have;
  wire__mem_output(m, &have);
  wire__mem_consume(m, have);
  feed_fragments(m, 9);
  wire__mem_run(m);
  cr_assert_eq(T.n_msg, 1);
  const uint8_t *out = wire__mem_output(m, &have);
  cr_assert_eq(have, 4);
  cr_assert_eq(memcmp(out, "\x88\x02\x03\xf1", 4), 0, "a 1009 close");
  cr_assert_eq(T.last_error, WIRE_ETOOBIG);
  cr_assert(strstr(T.last_error_msg, "max_message_fragments") != NULL, "%s", T.last_error_msg);
  wire_server_stats st;
  cr_assert_eq(wire_server_stats_get(T.s, &st), 0);
  cr_assert_eq(st.fragment_limits, 1);
  wire__mem_eof(m);
  wire__mem_run(m);
  cr_assert_eq(T.close_code, 1009);
  wire__mem_free(m);
}

/* Run the loop's deadlines (not the memory transport) for up to ms. */
static void run_deadlines(int ms) {
  for (int i = 0; i < ms / 5 && T.n_close == 0; i++) {
    usleep(5 * 1000);
    wire_server_process(T.s);
  }
}

Test(limits, a_reader_that_stopped_reading_is_closed_with_1008_at_the_send_deadline) {
  wire_endpoint_options eo = {.max_backpressure = 16, .send_timeout_ms = 40, .pong_timeout_ms = 40};
  wire__mem *m = open_ws(&eo);
  wire__mem_set_write_limit(m, 1); /* the peer takes one byte, then nothing */
  uint8_t in[128], payload[100] = {0};
  cr_assert_eq(wire__mem_feed(m, in, frame(in, 1, 0x2, payload, sizeof payload)), 0);
  wire__mem_step(m); /* the read: echoed, 1 byte taken, the rest over the limit */
  wire_conn *c = wire__mem_conn(m);
  cr_assert_gt(c->out_bytes, 16);
  cr_assert_eq(c->flags & WIRE__F_READING, 0, "reading stops over the limit");
  cr_assert_eq(c->tkind, WIRE__T_STALL);
  uint64_t t0 = uv_now(T.s->loop);
  run_deadlines(2000);
  cr_assert_eq(T.n_close, 1, "still open after 2 s");
  cr_assert_eq(T.close_code, 1008);
  cr_assert_eq(T.last_error, WIRE_EBACKPRESSURE);
  cr_assert(strstr(T.last_error_msg, "send_timeout_ms") != NULL, "%s", T.last_error_msg);
  cr_assert_geq(uv_now(T.s->loop) - t0, 40);
  wire_server_stats st;
  cr_assert_eq(wire_server_stats_get(T.s, &st), 0);
  cr_assert_eq(st.send_timeouts, 1);
  wire__mem_free(m);
}

Test(limits, a_slow_reader_that_keeps_making_progress_stays_open) {
  wire_endpoint_options eo = {.max_backpressure = 16, .send_timeout_ms = 60};
  wire__mem *m = open_ws(&eo);
  wire__mem_set_write_limit(m, 4);
  uint8_t in[8 * 40], payload[30] = {0};
  size_t len = 0;
  for (int i = 0; i < 8; i++)
    len += frame(in + len, 1, 0x2, payload, sizeof payload);
  for (size_t off = 0; off < len; off += 36)
    cr_assert_eq(wire__mem_feed(m, in + off, 36), 0); /* one message per read */
  /* 8 echoes of 32 bytes at 4 bytes per 10 ms: ~640 ms in all, each write
   * completing well within the 60 ms send deadline */
  for (int i = 0; i < 400 && T.n_msg < 8; i++) {
    usleep(2 * 1000);
    wire_server_process(T.s);
    wire__mem_step(m);
  }
  cr_assert_eq(T.n_msg, 8);
  cr_assert_eq(T.n_close, 0, "closed with %d", T.close_code);
  wire__mem_run(m);
  cr_assert_eq(T.n_close, 0);
  wire__mem_free(m);
}

/* ---- the upgrade request ---------------------------------------------------- */

#define HEAD_WITH(extra)                                                                           \
  "GET /lim HTTP/1.1\r\n"                                                                          \
  "Host: example.com\r\n"                                                                          \
  "Upgrade: websocket\r\n"                                                                         \
  "Connection: Upgrade\r\n"                                                                        \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                                \
  "Sec-WebSocket-Version: 13\r\n" extra "\r\n"

/* Feed text (in pieces of `step` bytes) to a new connection on /lim; the
 * output must start with want. */
static void expect_answer(const char *text, size_t step, const char *want) {
  cr_assert_eq(wire_endpoint_add(T.s, "/lim", NULL, &CB, NULL, NULL, NULL), 0);
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  size_t len = strlen(text);
  for (size_t off = 0; off < len; off += step)
    cr_assert_eq(wire__mem_feed(m, text + off, len - off < step ? len - off : step), 0);
  wire__mem_run(m);
  size_t have;
  const uint8_t *out = wire__mem_output(m, &have);
  cr_assert(have >= strlen(want) && memcmp(out, want, strlen(want)) == 0, "answer: %.*s",
            (int)(have < 40 ? have : 40), (const char *)out);
  wire__mem_free(m);
}

Test(limits, a_pipelined_second_request_is_refused_with_400_before_the_upgrade) {
  expect_answer(HEAD_WITH("") HEAD_WITH(""), 4096, "HTTP/1.1 400");
  cr_assert_eq(T.n_close, 0, "never accepted");
}

Test(limits, an_upgrade_with_a_body_is_refused_with_400) {
  expect_answer(HEAD_WITH("Content-Length: 5\r\n") "hello", 4096, "HTTP/1.1 400");
}

Test(limits, an_upgrade_with_transfer_encoding_is_refused_with_400) {
  expect_answer(HEAD_WITH("Transfer-Encoding: chunked\r\n") "0\r\n\r\n", 4096, "HTTP/1.1 400");
}

Test(limits, content_length_0_and_a_frame_right_after_the_head_are_accepted) {
  uint8_t f[16];
  size_t n = frame(f, 1, 0x1, "hi", 2);
  char text[1024];
  snprintf(text, sizeof text, "%s%.*s", HEAD_WITH("Content-Length: 0\r\n"), (int)n, (char *)f);
  expect_answer(text, 4096, "HTTP/1.1 101");
}

Test(limits, a_head_fed_one_byte_per_read_is_upgraded) {
  expect_answer(HEAD_WITH("X-Pad: 0123456789\r\n"), 1, "HTTP/1.1 101");
}

/* ---- descriptors ------------------------------------------------------------ */

/* A server created under a soft RLIMIT_NOFILE of n; its effective limit. */
static unsigned max_connections_under(rlim_t n, unsigned asked) {
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = n;
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0); /* this test's own process */
  wire_server_options so = {.max_connections = asked};
  wire_server *s;
  cr_assert_eq(wire_server_new(&so, &s), 0);
  wire_server_stats st;
  cr_assert_eq(wire_server_stats_get(s, &st), 0);
  cr_assert_eq(st.accept_failed + st.refused_sockets + st.refused_connections, 0);
  cr_assert_eq(wire_server_free(s), 0);
  return st.max_connections;
}

Test(limits, max_connections_defaults_to_the_descriptor_limit_minus_a_margin) {
  cr_assert_eq(max_connections_under(1024, 0), 960);
  cr_assert_eq(max_connections_under(100, 0), 50);
  cr_assert_eq(max_connections_under(1024, 5000), 5000, "an explicit limit is kept");
  cr_assert_eq(wire_server_stats_get(NULL, NULL), WIRE_EINVAL);
}
