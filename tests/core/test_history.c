/*
 * test_history.c -- topic history in the process (history.c and its hooks in
 * topics.c and handshake.c): positions, envelopes, recovery through real
 * sockets on 127.0.0.1 (open and deferred connections, JSON and MessagePack
 * endpoints), truncation reports, the limits n and ttl, and memory with many
 * topics.
 */
#include "conn_internal.h"
#include "history.h"
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- positions ----------------------------------------------------------------- */

TestSuite(position, .timeout = 30);

Test(position, parses_what_the_server_writes_and_nothing_else) {
  uint64_t e, q;
  cr_assert_eq(wire_position_parse("00000000000000ff:0", 18, &e, &q), 0);
  cr_assert_eq(e, 0xff);
  cr_assert_eq(q, 0);
  const char *max = "ffffffffffffffff:18446744073709551615";
  cr_assert_eq(wire_position_parse(max, strlen(max), &e, &q), 0);
  cr_assert_eq(e, UINT64_MAX);
  cr_assert_eq(q, UINT64_MAX);
  const char *bad[] = {"",
                       "ff:1",
                       "00000000000000ff:",
                       "00000000000000fF:1",
                       "00000000000000ff-1",
                       "00000000000000ff:01",
                       "00000000000000ff:1x",
                       "00000000000000ff:-1",
                       "ffffffffffffffff:18446744073709551616",
                       "00000000000000ff:1 ",
                       "0000000000000g00:1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(wire_position_parse(bad[i], strlen(bad[i]), &e, &q), WIRE_EINVAL, "accepted %s",
                 bad[i]);
  cr_assert_eq(wire_position_parse(NULL, 0, &e, &q), WIRE_EINVAL);
}

/* ---- a server with history endpoints -------------------------------------------- */

/* /h/{room}?since=P&defer=1: on_connect subscribes with the position (none
 * without `since`) and records what it found; `defer` answers later. */
typedef struct hs {
  wire_recovery rec;
  int sub_rc;
  wire_conn *deferred;
  wire_conn *last;
} hs;

static fx F;
static hs H;

static int h_connect(wire_conn *c, const wire_request *req, void *ud) {
  hs *h = ud;
  wire_str room = wire_request_param(req, "room");
  wire_str since = wire_request_query(req, "since");
  h->sub_rc = wire_conn_subscribe_since(c, room.ptr, room.len, since.ptr, since.len, &h->rec);
  if (h->sub_rc != 0)
    return 500;
  h->last = c;
  if (wire_request_query(req, "announce").len > 0) /* to the others: not replayed to c */
    wire_server_publish(wire_conn_server(c), room.ptr, room.len, WIRE_MSG_TEXT, "\"hi\"", 4, c);
  if (wire_request_query(req, "defer").len > 0) {
    wire_conn_ref(c);
    h->deferred = c;
    return WIRE_CONNECT_DEFER;
  }
  return 0;
}

static const wire_callbacks h_callbacks = {h_connect, NULL, NULL, NULL};

static void setup(void) {
  memset(&F, 0, sizeof F);
  memset(&H, 0, sizeof H);
  signal(SIGPIPE, SIG_IGN);
}

static void teardown(void) {
  if (H.deferred)
    wire_conn_unref(H.deferred);
  fx_stop(&F);
}

TestSuite(history, .init = setup, .fini = teardown, .timeout = 60);

static void start(void) {
  fx_start(&F, NULL, NULL, "/fx");
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_RAW;
  cr_assert_eq(wire_endpoint_add(F.server, "/h/{room}", &eo, &h_callbacks, &H, NULL, NULL), 0);
  eo.codec = WIRE_CODEC_MSGPACK;
  cr_assert_eq(wire_endpoint_add(F.server, "/m/{room}", &eo, &h_callbacks, &H, NULL, NULL), 0);
}

static int publish(const char *topic, const char *text) {
  return wire_server_publish(F.server, topic, strlen(topic), WIRE_MSG_TEXT, text, strlen(text),
                             NULL);
}

/* Publish the JSON numbers from..to as values. */
static void publish_numbers(const char *topic, int from, int to) {
  wire_doc *d;
  cr_assert_eq(wire_doc_new(&d), 0);
  for (int i = from; i <= to; i++) {
    wire_value *v = wire_new_int(d, i);
    cr_assert_geq(wire_server_publish_value(F.server, topic, strlen(topic), v, NULL, NULL), 0);
  }
  wire_doc_free(d);
}

static void position(const char *topic, char *buf) {
  int n = wire_server_topic_position(F.server, topic, strlen(topic), buf, WIRE_POSITION_MAX);
  cr_assert_gt(n, 17, "no position for %s: %d", topic, n);
}

/* The position seq of the topic's epoch. */
static void position_at(const char *topic, uint64_t seq, char *buf) {
  char cur[WIRE_POSITION_MAX];
  position(topic, cur);
  snprintf(buf, WIRE_POSITION_MAX, "%.16s:%llu", cur, (unsigned long long)seq);
}

static void expect_text(int fd, const char *want) {
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0, "no frame, expected %s", want);
  cr_assert_eq(m.opcode, 1);
  cr_assert_str_eq((const char *)m.data, want);
  wt_msg_free(&m);
}

/* Expect the envelope of JSON number i at seq i on topic. */
static void expect_number(int fd, const char *topic, int i) {
  char pos[WIRE_POSITION_MAX], want[512];
  position_at(topic, (uint64_t)i, pos);
  snprintf(want, sizeof want, "{\"topic\":\"%s\",\"offset\":\"%s\",\"data\":%d}", topic, pos, i);
  expect_text(fd, want);
}

static void expect_truncated(int fd, const char *topic) {
  char pos[WIRE_POSITION_MAX], want[512];
  position(topic, pos);
  snprintf(want, sizeof want, "{\"topic\":\"%s\",\"type\":\"truncated\",\"offset\":\"%s\"}", topic,
           pos);
  expect_text(fd, want);
}

static void expect_nothing(int fd) {
  wt_msg m;
  cr_assert_neq(wt_read_frame(&F.pump, fd, &m, 100), 0, "unexpected frame %s", m.data);
}

static int open_path(const char *fmt, const char *a, const char *b) {
  char path[512];
  snprintf(path, sizeof path, fmt, a, b);
  int fd = wt_open(&F.pump, F.port, path);
  cr_assert_geq(fd, 0, "handshake on %s failed", path);
  return fd;
}

Test(history, publications_carry_their_position_in_an_envelope) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "room:*", 6, 100, 0), 0);
  char pos[WIRE_POSITION_MAX];
  position("room:1", pos);
  cr_assert_eq(strcmp(pos + 16, ":0"), 0, "before any publication: %s", pos);
  int fd = open_path("/h/%s%s", "room:1", "");
  cr_assert_eq(H.rec.recovered, 1);
  cr_assert_eq(publish("room:1", "hi \"you\""), 1);
  char want[256];
  position_at("room:1", 1, pos);
  snprintf(want, sizeof want,
           "{\"topic\":\"room:1\",\"offset\":\"%s\",\"data\":\"hi \\\"you\\\"\"}", pos);
  expect_text(fd, want);
  publish_numbers("room:1", 2, 3);
  expect_number(fd, "room:1", 2);
  expect_number(fd, "room:1", 3);
  /* topics outside the rule are untouched */
  int other = open_path("/fx%s%s", "", "");
  (void)other;
  cr_assert_eq(wire_server_topic_position(F.server, "lobby", 5, pos, sizeof pos), WIRE_EINVAL);
  close(fd);
  close(other);
}

Test(history, a_subscriber_coming_back_gets_exactly_what_it_missed_then_live) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "chat", 4, 1000, 0), 0);
  publish_numbers("chat", 1, 10); /* nobody subscribed: kept all the same */
  char since[WIRE_POSITION_MAX];
  position_at("chat", 4, since);
  int fd = open_path("/h/chat?since=%s%s", since, "");
  cr_assert_eq(H.rec.recovered, 1);
  cr_assert_null(H.rec.reason);
  cr_assert_eq(H.rec.replayed, 6);
  for (int i = 5; i <= 10; i++)
    expect_number(fd, "chat", i);
  publish_numbers("chat", 11, 12);
  expect_number(fd, "chat", 11);
  expect_number(fd, "chat", 12);
  expect_nothing(fd);
  /* the current position replays nothing */
  char cur[WIRE_POSITION_MAX];
  position("chat", cur);
  int fd2 = open_path("/h/chat?since=%s%s", cur, "");
  cr_assert_eq(H.rec.recovered, 1);
  cr_assert_eq(H.rec.replayed, 0);
  cr_assert_str_eq(H.rec.position, cur);
  expect_nothing(fd2);
  close(fd);
  close(fd2);
}

Test(history, publications_while_on_connect_defers_are_replayed_at_open) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "d", 1, 100, 0), 0);
  publish_numbers("d", 1, 3);
  char since[WIRE_POSITION_MAX];
  position_at("d", 2, since);
  int fd = wt_connect(F.port);
  cr_assert_geq(fd, 0);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /h/d?since=%s&defer=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   since);
  wt_write(&F.pump, fd, req, (size_t)n);
  FX_PUMP_UNTIL(&F, H.deferred != NULL);
  cr_assert_not_null(H.deferred);
  cr_assert_eq(H.rec.recovered, 1);
  publish_numbers("d", 4, 5); /* not open yet: nothing is sent, the history keeps them */
  cr_assert_eq(wire_conn_accept(H.deferred), 0);
  cr_assert_eq(wt_read_http(&F.pump, fd, NULL, 0, 3000), 101);
  for (int i = 3; i <= 5; i++)
    expect_number(fd, "d", i);
  publish_numbers("d", 6, 6);
  expect_number(fd, "d", 6);
  expect_nothing(fd);
  close(fd);
}

Test(history, a_subscriber_that_subscribes_when_open_gets_the_replay_before_live) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "late", 4, 100, 0), 0);
  publish_numbers("late", 1, 5);
  int fd = open_path("/fx%s%s", "", "");
  cr_assert_geq(fd, 0);
  wire_conn *c = F.conn;
  char msg[64] = "since:";
  position_at("late", 1, msg + 6);
  cr_assert_eq(wire_conn_subscribe_since(c, "late", 4, msg + 6, strlen(msg + 6), &H.rec), 0);
  cr_assert_eq(H.rec.replayed, 4);
  publish_numbers("late", 6, 6);
  for (int i = 2; i <= 6; i++)
    expect_number(fd, "late", i);
  /* again: already subscribed, nothing twice */
  cr_assert_eq(wire_conn_subscribe_since(c, "late", 4, msg + 6, strlen(msg + 6), &H.rec), 0);
  cr_assert_eq(H.rec.recovered, 1);
  cr_assert_eq(H.rec.replayed, 0);
  expect_nothing(fd);
  close(fd);
}

Test(history, positions_that_cannot_be_recovered_are_reported_never_skipped_silently) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "t*", 2, 3, 0), 0);
  publish_numbers("t1", 1, 10); /* keeps 8, 9, 10 */
  char since[WIRE_POSITION_MAX];
  position_at("t1", 7, since); /* 8.. retained: fine */
  int fd = open_path("/h/t1?since=%s%s", since, "");
  cr_assert_eq(H.rec.recovered, 1);
  for (int i = 8; i <= 10; i++)
    expect_number(fd, "t1", i);
  close(fd);
  position_at("t1", 6, since); /* 7 is gone */
  fd = open_path("/h/t1?since=%s%s", since, "");
  cr_assert_eq(H.rec.recovered, 0);
  cr_assert_str_eq(H.rec.reason, "too_old");
  expect_truncated(fd, "t1");
  expect_nothing(fd);
  publish_numbers("t1", 11, 11); /* the subscription started all the same */
  expect_number(fd, "t1", 11);
  close(fd);
  fd = open_path("/h/t1?since=0123456789abcdef:3%s%s", "", "");
  cr_assert_str_eq(H.rec.reason, "epoch");
  expect_truncated(fd, "t1");
  close(fd);
  fd = open_path("/h/t1?since=garbage%s%s", "", "");
  cr_assert_str_eq(H.rec.reason, "invalid");
  expect_truncated(fd, "t1");
  close(fd);
  position_at("t1", 99, since); /* from the future */
  fd = open_path("/h/t1?since=%s%s", since, "");
  cr_assert_str_eq(H.rec.reason, "invalid");
  expect_truncated(fd, "t1");
  close(fd);
}

Test(history, msgpack_subscribers_get_the_same_envelope_in_msgpack) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "mp", 2, 10, 0), 0);
  publish_numbers("mp", 1, 2);
  char since[WIRE_POSITION_MAX], pos[WIRE_POSITION_MAX];
  position_at("mp", 1, since);
  int fd = open_path("/m/mp?since=%s%s", since, "");
  publish_numbers("mp", 3, 3);
  wire_doc *d;
  cr_assert_eq(wire_doc_new(&d), 0);
  for (int i = 2; i <= 3; i++) {
    wt_msg m;
    cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
    cr_assert_eq(m.opcode, 2);
    const wire_value *v;
    cr_assert_eq(wire_decode(d, WIRE_CODEC_MSGPACK, m.data, m.len, 0, &v, NULL), 0);
    position_at("mp", (uint64_t)i, pos);
    cr_assert_str_eq(wire_value_string(wire_value_get(v, "topic", 5), NULL), "mp");
    cr_assert_str_eq(wire_value_string(wire_value_get(v, "offset", 6), NULL), pos);
    cr_assert_eq(wire_value_int(wire_value_get(v, "data", 4)), i);
    wt_msg_free(&m);
    wire_doc_reset(d);
  }
  wire_doc_free(d);
  close(fd);
}

Test(history, bad_arguments_get_clear_errors) {
  start();
  cr_assert_eq(wire_server_topic_history(NULL, "a", 1, 1, 0), WIRE_EINVAL);
  cr_assert_eq(wire_server_topic_history(F.server, "", 0, 1, 0), WIRE_EINVAL);
  cr_assert_eq(wire_server_topic_history(F.server, "a", 1, 0, 0), WIRE_EINVAL);
  cr_assert_eq(wire_server_topic_history(F.server, "a", 1, WIRE_MAX_HISTORY + 1, 0), WIRE_EINVAL);
  cr_assert_eq(wire_server_topic_history(F.server, "a", 1, 5, 0), 0);
  cr_assert_eq(wire_server_topic_history(F.server, "a", 1, 5, 0), WIRE_ESTATE);
  cr_assert_eq(wire_server_topic_history(F.server, "a*", 2, 5, 0), 0, "a prefix is another rule");
  /* binary cannot be kept as JSON: refused, nothing kept */
  cr_assert_eq(wire_server_publish(F.server, "a", 1, WIRE_MSG_BINARY, "\x01", 1, NULL),
               WIRE_ESERIALIZE);
  char pos[WIRE_POSITION_MAX];
  position("a", pos);
  cr_assert_eq(strcmp(pos + 16, ":0"), 0);
  int fd = open_path("/fx%s%s", "", "");
  cr_assert_eq(wire_conn_subscribe_since(F.conn, "nohistory", 9, NULL, 0, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_conn_subscribe_since(F.conn, "a", 1, NULL, 3, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_topic_position(F.server, "a", 1, pos, 8), WIRE_EINVAL);
  close(fd);
}

Test(history, n_bounds_the_entries_and_ttl_frees_idle_topics) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "n", 1, 100, 0), 0);
  publish_numbers("n", 1, 1000);
  wire__history *HS = F.server->topics.hist;
  wire__hist *h;
  cr_assert_eq(wire__history_get(F.server, "n", 1, 0, &h), 0);
  cr_assert_eq(h->count, 100);
  cr_assert_eq(h->cap, 100);
  char since[WIRE_POSITION_MAX];
  position_at("n", 900, since);
  int fd = open_path("/h/n?since=%s%s", since, "");
  cr_assert_eq(H.rec.replayed, 100);
  for (int i = 901; i <= 1000; i++)
    expect_number(fd, "n", i);
  close(fd);

  /* 10,000 topics published once with a 200 ms ttl: freed once idle */
  cr_assert_eq(wire_server_topic_history(F.server, "many:*", 6, 10, 200), 0);
  char name[32], before[WIRE_POSITION_MAX];
  position("many:0", before);
  size_t peak = 0;
  for (int i = 1; i < 10000; i++) {
    snprintf(name, sizeof name, "many:%d", i);
    cr_assert_eq(publish(name, "x"), 0);
    peak = HS->topics.n > peak ? HS->topics.n : peak;
  }
  cr_assert_geq(peak, 100, "histories were not kept: %zu", peak);
  usleep(250 * 1000);
  for (int i = 0; i < 100 && HS->topics.n > 2; i++)
    publish("many:new", "y"); /* each publish frees idle histories */
  cr_assert_leq(HS->topics.n, 2, "%zu histories left", HS->topics.n);
  /* the old position is from a history that is gone */
  char after[WIRE_POSITION_MAX];
  position("many:0", after);
  cr_assert_neq(strncmp(before, after, 16), 0, "same epoch after the history expired");
  fd = open_path("/h/many:0?since=%s%s", before, "");
  cr_assert_str_eq(H.rec.reason, "epoch");
  expect_truncated(fd, "many:0");
  close(fd);
}

Test(history, entries_older_than_ttl_are_not_replayed_but_subscribed_topics_keep_their_epoch) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "e", 1, 100, 60), 0);
  int live = open_path("/h/e%s%s", "", "");
  publish_numbers("e", 1, 3);
  for (int i = 1; i <= 3; i++)
    expect_number(live, "e", i);
  char since[WIRE_POSITION_MAX], pos[WIRE_POSITION_MAX];
  position_at("e", 1, since);
  position("e", pos);
  usleep(100 * 1000);
  publish_numbers("e", 4, 4);
  expect_number(live, "e", 4);
  char now[WIRE_POSITION_MAX];
  position("e", now);
  cr_assert_eq(strncmp(pos, now, 16), 0, "a topic with subscribers lost its epoch");
  int fd = open_path("/h/e?since=%s%s", since, "");
  cr_assert_str_eq(H.rec.reason, "too_old");
  expect_truncated(fd, "e");
  close(fd);
  position_at("e", 3, since);
  fd = open_path("/h/e?since=%s%s", since, "");
  cr_assert_eq(H.rec.recovered, 1);
  expect_number(fd, "e", 4);
  close(fd);
  close(live);
}

/* A backplane engine that carries nothing: it keeps the last envelope and
 * the channel changes, enough to look at what the server hands it. */
static uint8_t last_env[256];
static size_t last_env_len;
static char channels[512];

static int e_publish(void *impl, const char *t, size_t n, const void *env, size_t len) {
  (void)impl, (void)t, (void)n;
  last_env_len = len < sizeof last_env ? len : sizeof last_env;
  memcpy(last_env, env, last_env_len);
  return 0;
}
static void e_topic(void *impl, const char *t, size_t n, int subscribed) {
  (void)impl;
  size_t l = strlen(channels);
  snprintf(channels + l, sizeof channels - l, "%c%.*s ", subscribed ? '+' : '-', (int)n, t);
}
static void e_noop(void *impl) {
  (void)impl;
}
static const wire_broker_engine quiet_engine = {e_publish, e_topic, e_noop, e_noop};

Test(history, a_broker_outage_starts_new_epochs_and_tells_every_subscriber) {
  start();
  cr_assert_eq(wire_server_set_broker(F.server, &quiet_engine, NULL), 0);
  wire_broker_report(F.server, WIRE_BROKER_UP, "up");
  cr_assert_eq(wire_server_topic_history(F.server, "b*", 2, 100, 0), 0);
  int js = open_path("/h/b1%s%s", "", "");
  int mp = open_path("/m/b1%s%s", "", "");
  publish_numbers("b1", 1, 2);
  expect_number(js, "b1", 1);
  expect_number(js, "b1", 2);
  char old[WIRE_POSITION_MAX];
  position("b1", old);
  wire_broker_report(F.server, WIRE_BROKER_DOWN, "down");
  publish_numbers("b1", 3, 3); /* local delivery goes on */
  expect_number(js, "b1", 3);
  expect_nothing(js);
  wire_broker_report(F.server, WIRE_BROKER_UP, "back");
  char now[WIRE_POSITION_MAX];
  position("b1", now);
  cr_assert_neq(strncmp(old, now, 16), 0, "the epoch did not change");
  cr_assert_eq(strcmp(now + 16, ":0"), 0);
  expect_truncated(js, "b1");
  wt_msg m;
  for (int i = 0; i < 3; i++) { /* the MessagePack subscriber: 1..3, then the report */
    cr_assert_eq(wt_read_frame(&F.pump, mp, &m, 3000), 0);
    wt_msg_free(&m);
  }
  cr_assert_eq(wt_read_frame(&F.pump, mp, &m, 3000), 0);
  cr_assert_eq(m.opcode, 2);
  wire_doc *d;
  cr_assert_eq(wire_doc_new(&d), 0);
  const wire_value *v;
  cr_assert_eq(wire_decode(d, WIRE_CODEC_MSGPACK, m.data, m.len, 0, &v, NULL), 0);
  cr_assert_str_eq(wire_value_string(wire_value_get(v, "type", 4), NULL), "truncated");
  cr_assert_str_eq(wire_value_string(wire_value_get(v, "offset", 6), NULL), now);
  wire_doc_free(d);
  wt_msg_free(&m);
  /* a position from before the outage is from another epoch now */
  int again = open_path("/h/b1?since=%s%s", old, "");
  cr_assert_str_eq(H.rec.reason, "epoch");
  expect_truncated(again, "b1");
  close(again);
  close(js);
  close(mp);
}

/* An envelope of a value (the MessagePack of integer i) from `origin`,
 * numbered seq (0: without a number). */
static size_t envelope(uint8_t *out, uint64_t origin, uint64_t seq, int i) {
  size_t n = 0;
  out[n++] = 0xFF;
  out[n++] = 'W';
  out[n++] = 1;
  out[n++] = (uint8_t)(3 | (seq ? 0x80 : 0));
  for (int k = 0; k < 8; k++)
    out[n++] = (uint8_t)(origin >> (56 - 8 * k));
  for (int k = 0; seq && k < 8; k++)
    out[n++] = (uint8_t)(seq >> (56 - 8 * k));
  out[n++] = (uint8_t)i; /* positive fixint */
  return n;
}

Test(history, publications_cross_numbered_and_a_hole_from_another_process_is_reported) {
  start();
  cr_assert_eq(wire_server_set_broker(F.server, &quiet_engine, NULL), 0);
  wire_broker_report(F.server, WIRE_BROKER_UP, "up");
  channels[0] = 0;
  cr_assert_eq(wire_server_topic_history(F.server, "n*", 2, 100, 0), 0);
  /* a history keeps the channel even without subscribers */
  publish_numbers("n1", 1, 1);
  cr_assert_str_eq(channels, "+n1 ");
  cr_assert_eq(last_env_len, 21);
  cr_assert_eq(last_env[3], 0x83, "kind %#x", last_env[3]);
  cr_assert_eq(last_env[19], 1, "the first publication is number 1");
  publish("n1", "two");
  cr_assert_eq(last_env[3], 0x81);
  cr_assert_eq(last_env[19], 2);
  int js = open_path("/h/n1%s%s", "", "");
  cr_assert_str_eq(channels, "+n1 ", "a subscriber does not subscribe the channel twice");
  uint8_t env[64];
  uint64_t other = 0x1234;
  for (int q = 1; q <= 2; q++)
    cr_assert_eq(
        wire_broker_deliver(F.server, "n1", 2, env, envelope(env, other, (uint64_t)q, 10 + q)), 1);
  char pos[WIRE_POSITION_MAX], want[256];
  position_at("n1", 3, pos); /* positions 3 and 4 here hold 11 and 12 */
  snprintf(want, sizeof want, "{\"topic\":\"n1\",\"offset\":\"%s\",\"data\":11}", pos);
  expect_text(js, want);
  position_at("n1", 4, pos);
  snprintf(want, sizeof want, "{\"topic\":\"n1\",\"offset\":\"%s\",\"data\":12}", pos);
  expect_text(js, want);
  char old[WIRE_POSITION_MAX];
  position("n1", old);
  /* number 3 of that process never came: reported before number 4 */
  cr_assert_eq(wire_broker_deliver(F.server, "n1", 2, env, envelope(env, other, 4, 14)), 1);
  char now[WIRE_POSITION_MAX];
  position("n1", now);
  cr_assert_neq(strncmp(old, now, 16), 0, "the epoch did not change");
  snprintf(want, sizeof want, "{\"topic\":\"n1\",\"type\":\"truncated\",\"offset\":\"%.16s:0\"}",
           now);
  expect_text(js, want);
  snprintf(want, sizeof want, "{\"topic\":\"n1\",\"offset\":\"%.16s:1\",\"data\":14}", now);
  expect_text(js, want);
  cr_assert_eq(wire_broker_deliver(F.server, "n1", 2, env, envelope(env, other, 5, 15)), 1);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, js, &m, 3000), 0);
  cr_assert(strstr((const char *)m.data, "\"data\":15") != NULL, "%s", m.data);
  wt_msg_free(&m);
  expect_nothing(js);
  /* numbered 0, or cut inside the number: not an envelope */
  wire_broker_stats st;
  size_t n = envelope(env, other, 1, 1);
  memset(env + 12, 0, 8);
  cr_assert_eq(wire_broker_deliver(F.server, "n1", 2, env, n), WIRE_EDESERIALIZE);
  cr_assert_eq(wire_broker_deliver(F.server, "n1", 2, env, 15), WIRE_EDESERIALIZE);
  cr_assert_eq(wire_server_broker_stats(F.server, &st), 0);
  cr_assert_eq(st.invalid, 2);
  /* processes come and go: what is kept about them stays bounded */
  for (uint64_t o = 100; o < 300; o++)
    cr_assert_eq(wire_broker_deliver(F.server, "n1", 2, env, envelope(env, o, 1, 1)), 1);
  wire__hist *h;
  cr_assert_eq(wire__history_get(F.server, "n1", 2, 0, &h), 0);
  cr_assert_leq(h->n_origins, 64);
  close(js);
}

Test(history, publications_that_excluded_a_connection_in_on_connect_are_not_replayed_to_it) {
  start();
  cr_assert_eq(wire_server_topic_history(F.server, "x", 1, 100, 0), 0);
  publish_numbers("x", 1, 3);
  int fd = wt_connect(F.port);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /h/x?announce=1&defer=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n");
  wt_write(&F.pump, fd, req, (size_t)n);
  FX_PUMP_UNTIL(&F, H.deferred != NULL);
  cr_assert_not_null(H.deferred); /* its announcement is number 4 */
  publish_numbers("x", 5, 5);
  cr_assert_eq(wire_server_publish(F.server, "x", 1, WIRE_MSG_TEXT, "\"not you\"", 9, H.deferred),
               0);
  publish_numbers("x", 7, 7);
  cr_assert_eq(wire_conn_accept(H.deferred), 0);
  cr_assert_eq(wt_read_http(&F.pump, fd, NULL, 0, 3000), 101);
  expect_number(fd, "x", 5);
  expect_number(fd, "x", 7);
  expect_nothing(fd);
  close(fd);
}
