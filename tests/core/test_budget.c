/*
 * test_budget.c -- the server-wide memory budget (max_buffered_bytes) and the
 * message deadline (message_timeout_ms), driven through the in-memory
 * transport: the running count of buffered bytes, the heaviest connections
 * paused and then closed with 1013 over the budget, reading resumed once
 * back under it; a fragmented message kept open past its deadline (1008).
 */
#include "conn_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REQUEST                                                                                    \
  "GET /b HTTP/1.1\r\n"                                                                            \
  "Host: example.com\r\n"                                                                          \
  "Upgrade: websocket\r\n"                                                                         \
  "Connection: Upgrade\r\n"                                                                        \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                                \
  "Sec-WebSocket-Version: 13\r\n"                                                                  \
  "\r\n"

static struct {
  wire_server *s;
  int n_close, close_code[16], n_error, last_error, n_msg;
  wire_conn *closed[16];
  char last_error_msg[512];
} T;

/* Echo every message. */
static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  T.n_msg++;
  wire_conn_send_binary(c, m->data, m->len);
}

static void on_close(wire_conn *c, int code, const char *reason, size_t rlen, void *ud) {
  (void)reason, (void)rlen, (void)ud;
  if (T.n_close < 16) {
    T.closed[T.n_close] = c;
    T.close_code[T.n_close] = code;
  }
  T.n_close++;
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

static void start(size_t budget, const wire_endpoint_options *eo) {
  memset(&T, 0, sizeof T);
  wire_server_options so = {.max_buffered_bytes = budget};
  cr_assert_eq(wire_server_new(&so, &T.s), 0);
  cr_assert_eq(wire_endpoint_add(T.s, "/b", eo, &CB, NULL, NULL, NULL), 0);
}

static void teardown(void) {
  if (T.s == NULL)
    return;
  wire_server_shutdown(T.s, 100, NULL, NULL);
  for (int i = 0; i < 1000 && wire_server_process(T.s) == 1; i++)
    ;
  cr_assert_eq(wire_server_free(T.s), 0);
}

TestSuite(budget, .fini = teardown, .timeout = 60);

/* A connection through its 101. */
static wire__mem *open_ws(void) {
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  cr_assert_eq(wire__mem_feed(m, REQUEST, strlen(REQUEST)), 0);
  wire__mem_run(m);
  size_t have;
  const uint8_t *out = wire__mem_output(m, &have);
  cr_assert(have > 12 && memcmp(out, "HTTP/1.1 101", 12) == 0, "no 101");
  wire__mem_consume(m, have);
  return m;
}

/* A masked client frame into out; returns its length. */
static size_t frame(uint8_t *out, int fin, int opcode, const void *payload, size_t len) {
  static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
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

/* n binary messages of len bytes, arriving as one read. */
static void feed_messages(wire__mem *m, int n, size_t len) {
  uint8_t *payload = calloc(1, len), *buf = malloc((size_t)n * (len + 14));
  cr_assert(payload && buf);
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += frame(buf + total, 1, 0x2, payload, len);
  cr_assert_eq(wire__mem_feed(m, buf, total), 0);
  free(payload);
  free(buf);
}

/* What the engine holds, summed over the connections and the pooled
 * contexts: must equal the running count. */
static uint64_t held(wire__mem **ms, int n) {
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) {
    wire_conn *c = wire__mem_conn(ms[i]);
    if (c == NULL)
      continue;
    sum += c->out_bytes + wire__conn_pq_bytes(c) + (c->slot ? c->slot->msg_cap : 0);
  }
  for (wire__slot *p = T.s->pool; p; p = p->next)
    sum += p->msg_cap;
  return sum;
}

static wire_server_stats stats(void) {
  wire_server_stats st;
  cr_assert_eq(wire_server_stats_get(T.s, &st), 0);
  return st;
}

/* Pump the loop (deadlines, the budget's timer) for about ms. */
static void pump(int ms) {
  for (int i = 0; i < ms / 5; i++) {
    usleep(5 * 1000);
    wire_server_process(T.s);
  }
}

Test(budget, the_default_budget_is_256_mib_or_a_quarter_of_memory_and_size_max_is_none) {
  start(0, NULL);
  wire_server_stats st = stats();
  cr_assert_leq(st.max_buffered_bytes, WIRE_DEFAULT_MAX_BUFFERED_BYTES);
  cr_assert_geq(st.max_buffered_bytes, (uint64_t)16 << 20);
  cr_assert_eq(st.buffered_bytes, 0);
  cr_assert_eq(wire_server_free(T.s), 0);
  start(SIZE_MAX, NULL);
  cr_assert_eq(stats().max_buffered_bytes, UINT64_MAX);
}

Test(budget, every_buffer_is_counted_and_the_count_returns_when_it_is_freed) {
  start(SIZE_MAX, NULL);
  wire__mem *ms[3];
  for (int i = 0; i < 3; i++)
    ms[i] = open_ws();
  /* output queued behind a peer that reads nothing */
  wire__mem_set_write_limit(ms[0], 1);
  feed_messages(ms[0], 8, 1000);
  wire__mem_step(ms[0]);
  cr_assert_gt(stats().buffered_bytes, 7000);
  cr_assert_eq(stats().buffered_bytes, held(ms, 3));
  /* a message in progress (first fragment of 3000 bytes) */
  uint8_t buf[4096], payload[3000] = {0};
  cr_assert_eq(wire__mem_feed(ms[1], buf, frame(buf, 0, 0x2, payload, sizeof payload)), 0);
  wire__mem_step(ms[1]);
  cr_assert_geq(wire__mem_conn(ms[1])->slot->msg_cap, 3000);
  cr_assert_eq(stats().buffered_bytes, held(ms, 3));
  /* messages waiting while paused */
  wire_conn *c2 = wire__mem_conn(ms[2]);
  wire_conn_pause(c2);
  feed_messages(ms[2], 3, 2000);
  wire__mem_step(ms[2]);
  cr_assert_geq(wire__conn_pq_bytes(c2), 6000);
  cr_assert_eq(stats().buffered_bytes, held(ms, 3));
  uint64_t peak = stats().buffered_peak;
  cr_assert_geq(peak, stats().buffered_bytes);
  /* give everything back: resume, finish the message, let output leave */
  wire_conn_resume(c2);
  wire__mem_run(ms[2]);
  cr_assert_eq(wire__mem_feed(ms[1], buf, frame(buf, 1, 0x0, payload, 10)), 0);
  wire__mem_run(ms[1]);
  wire__mem_set_write_limit(ms[0], 0);
  wire__mem_run(ms[0]);
  cr_assert_eq(T.n_msg, 12);
  cr_assert_eq(stats().buffered_bytes, held(ms, 3));
  for (int i = 0; i < 3; i++)
    wire__mem_free(ms[i]);
  cr_assert_eq(stats().buffered_bytes, held(ms, 0), "only pooled contexts keep a buffer");
  cr_assert_leq(stats().buffered_bytes, WIRE__SLOT_POOL_MAX * WIRE__SLOT_MSG_KEEP);
  cr_assert_geq(stats().buffered_peak, peak);
}

Test(budget, over_the_budget_the_heaviest_stop_being_read_then_are_closed_with_1013) {
  start(64 * 1024, NULL);
  wire__mem *ms[4];
  for (int i = 0; i < 4; i++) {
    ms[i] = open_ws();
    wire__mem_set_write_limit(ms[i], 1); /* readers that stopped reading */
  }
  /* 32 KiB of echoes queued on each of the first three: 96 KiB > 64 KiB */
  for (int i = 0; i < 3; i++) {
    feed_messages(ms[i], 8, 4096);
    wire__mem_step(ms[i]);
  }
  wire_server_stats st = stats();
  cr_assert_gt(st.buffered_bytes, 64 * 1024);
  cr_assert_geq(st.paused_by_budget, 1, "the heaviest stopped being read");
  int paused = 0;
  for (int i = 0; i < 3; i++) {
    wire_conn *c = wire__mem_conn(ms[i]);
    if (c->rules & WIRE__R_BUDGET) {
      paused++;
      cr_assert_eq(c->flags & WIRE__F_READING, 0);
    }
  }
  cr_assert_geq(paused, 1);
  cr_assert_eq(T.n_close, 0, "a grace period before closing");
  /* the fourth, light connection is still served */
  feed_messages(ms[3], 1, 10);
  wire__mem_step(ms[3]);
  cr_assert_eq(T.n_msg, 25);
  /* still over after the grace period: the heaviest are closed, 1013 */
  for (int i = 0; i < 300 && stats().closed_by_budget == 0; i++)
    pump(10);
  st = stats();
  cr_assert_geq(st.closed_by_budget, 1);
  cr_assert_eq(T.last_error, WIRE_EBACKPRESSURE);
  cr_assert(strstr(T.last_error_msg, "max_buffered_bytes") != NULL, "%s", T.last_error_msg);
  /* their writes were in flight to peers that do not read: dropped, 1013 */
  cr_assert_geq(T.n_close, 1);
  for (int i = 0; i < T.n_close && i < 16; i++)
    cr_assert_eq(T.close_code[i], 1013);
  for (int i = 0; i < 3; i++)
    if (wire__mem_closed(ms[i]) ||
        (wire__mem_conn(ms[i]) && wire__mem_conn(ms[i])->state == WIRE__S_CLOSED))
      wire__mem_run(ms[i]); /* the close cancels the write in flight */
  cr_assert_leq(stats().buffered_bytes, 48 * 1024, "back under three quarters: %llu",
                (unsigned long long)stats().buffered_bytes);
  /* back under: reading resumes for the ones only paused */
  pump(120);
  cr_assert_eq(T.s->n_budget_paused, 0);
  for (int i = 0; i < 4; i++) {
    wire_conn *c = wire__mem_conn(ms[i]);
    if (c != NULL && c->state == WIRE__S_OPEN)
      cr_assert_eq(c->rules & WIRE__R_BUDGET, 0);
  }
  for (int i = 0; i < 4; i++)
    wire__mem_free(ms[i]);
}

Test(budget, twice_the_budget_closes_without_waiting) {
  start(16 * 1024, NULL);
  wire__mem *m = open_ws();
  wire__mem_set_write_limit(m, 1);
  feed_messages(m, 10, 4096); /* 40 KiB queued in one read */
  wire__mem_step(m);
  cr_assert_eq(stats().closed_by_budget, 1);
  cr_assert_eq(wire__mem_conn(m)->close_code, 1013);
  cr_assert_lt(stats().buffered_bytes, 8 * 1024, "the queue not yet started is dropped");
  wire__mem_set_write_limit(m, 0);
  wire__mem_run(m);
  size_t have;
  const uint8_t *out = wire__mem_output(m, &have);
  static const uint8_t close_1013[] = {0x88, 15, 0x03, 0xf5, 'm', 'e', 'm', 'o', 'r', 'y'};
  cr_assert_eq(have, 17, "only our close: %zu bytes", have);
  cr_assert_eq(memcmp(out, close_1013, sizeof close_1013), 0);
  wire__mem_free(m);
}

/* ---- message_timeout_ms ------------------------------------------------------- */

Test(budget, a_fragmented_message_kept_open_past_message_timeout_closes_with_1008) {
  wire_endpoint_options eo = {.message_timeout_ms = 60};
  start(0, &eo);
  wire__mem *m = open_ws();
  uint8_t buf[64];
  cr_assert_eq(wire__mem_feed(m, buf, frame(buf, 0, 0x2, "ab", 2)), 0);
  wire__mem_run(m);
  cr_assert_eq(wire__mem_feed(m, buf, frame(buf, 0, 0x0, "cd", 2)), 0);
  wire__mem_run(m); /* in time */
  cr_assert_eq(T.n_error, 0);
  pump(100);
  cr_assert_eq(wire__mem_feed(m, buf, frame(buf, 1, 0x0, "ef", 2)), 0);
  wire__mem_run(m);
  cr_assert_eq(T.n_msg, 0, "the late message is not delivered");
  cr_assert_eq(T.last_error, WIRE_EPROTOCOL);
  cr_assert(strstr(T.last_error_msg, "message_timeout_ms") != NULL, "%s", T.last_error_msg);
  cr_assert_eq(stats().message_timeouts, 1);
  size_t have;
  const uint8_t *out = wire__mem_output(m, &have);
  static const uint8_t close_1008[] = {0x88, 17, 0x03, 0xf0, 'm', 'e', 's', 's', 'a', 'g', 'e'};
  cr_assert_geq(have, sizeof close_1008);
  cr_assert_eq(memcmp(out, close_1008, sizeof close_1008), 0);
  wire__mem_free(m);
}

Test(budget, messages_completed_in_time_are_delivered_and_unfragmented_ones_never_expire) {
  wire_endpoint_options eo = {.message_timeout_ms = 60};
  start(0, &eo);
  wire__mem *m = open_ws();
  uint8_t buf[64];
  cr_assert_eq(wire__mem_feed(m, buf, frame(buf, 1, 0x2, "one", 3)), 0);
  wire__mem_run(m);
  pump(100);
  cr_assert_eq(wire__mem_feed(m, buf, frame(buf, 0, 0x2, "t", 1)), 0);
  wire__mem_run(m);
  cr_assert_eq(wire__mem_feed(m, buf, frame(buf, 1, 0x0, "wo", 2)), 0);
  wire__mem_run(m);
  cr_assert_eq(T.n_msg, 2);
  cr_assert_eq(T.n_error, 0);
  cr_assert_eq(stats().message_timeouts, 0);
  wire__mem_free(m);
}
