/*
 * test_broker.c -- brokers (broker.c, redis_url.c, broker_redis.c): Redis URL
 * parsing, the envelope, then real servers (each on its own thread and loop)
 * attached to a real redis-server on 127.0.0.1 with real WebSocket clients:
 * cross-server delivery exactly once, values across processes, plain
 * publishes from redis-cli, AUTH and SELECT, Redis killed and restarted, and
 * the bound on publish bytes waiting for a Redis that does not read.
 */
#include "broker.h"
#include "conn_internal.h"
#include "support/redis.h"
#include "support/wsclient.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- URLs -------------------------------------------------------------------- */

TestSuite(redis_url, .timeout = 30);

Test(redis_url, reads_host_port_and_db) {
  wire__redis_url u;
  cr_assert_eq(wire__redis_url_parse("redis://127.0.0.1:6380/2", &u, NULL), 0);
  cr_assert_str_eq(u.host, "127.0.0.1");
  cr_assert_eq(u.port, 6380);
  cr_assert_eq(u.db, 2);
  cr_assert_null(u.user);
  cr_assert_null(u.password);
  wire__redis_url_free(&u);
  cr_assert_eq(wire__redis_url_parse("redis://cache", &u, NULL), 0);
  cr_assert_str_eq(u.host, "cache");
  cr_assert_eq(u.port, 6379);
  cr_assert_eq(u.db, 0);
  wire__redis_url_free(&u);
  cr_assert_eq(wire__redis_url_parse("redis://[::1]:7000/", &u, NULL), 0);
  cr_assert_str_eq(u.host, "::1");
  cr_assert_eq(u.port, 7000);
  wire__redis_url_free(&u);
}

Test(redis_url, reads_password_and_user_percent_decoded) {
  wire__redis_url u;
  cr_assert_eq(wire__redis_url_parse("redis://:s%40cret@h:1/3", &u, NULL), 0);
  cr_assert_null(u.user);
  cr_assert_str_eq(u.password, "s@cret");
  cr_assert_str_eq(u.host, "h");
  cr_assert_eq(u.db, 3);
  wire__redis_url_free(&u);
  cr_assert_eq(wire__redis_url_parse("redis://app%2Fone:p%3Aw@h", &u, NULL), 0);
  cr_assert_str_eq(u.user, "app/one");
  cr_assert_str_eq(u.password, "p:w");
  wire__redis_url_free(&u);
}

Test(redis_url, refuses_malformed_urls_with_a_reason) {
  const char *bad[] = {
      "http://h",       "redis://",       "redis://h:0",    "redis://h:65536",   "redis://h:x",
      "redis://h/x",    "redis://user@h", "redis://:%zz@h", "redis://:%00@h",    "redis://[::1",
      "redis://h?db=1", "redis://:",      "redis://[::1]x", "redis://h:6379/-1", NULL};
  for (int i = 0; bad[i]; i++) {
    wire__redis_url u;
    wire_error err;
    memset(&err, 0, sizeof err);
    cr_assert_eq(wire__redis_url_parse(bad[i], &u, &err), WIRE_EINVAL, "%s", bad[i]);
    cr_assert(strstr(err.message, "bad broker URL") != NULL, "%s: %s", bad[i], err.message);
  }
  cr_assert_eq(wire__redis_url_parse(NULL, &(wire__redis_url){0}, NULL), WIRE_EINVAL);
}

/* ---- envelopes ---------------------------------------------------------------- */

TestSuite(envelope, .timeout = 30);

Test(envelope, round_trips_kind_origin_and_payload) {
  uint8_t buf[WIRE__ENV_HEADER + 5];
  wire__envelope_header(buf, WIRE__ENV_BINARY, 0x0102030405060708ull);
  memcpy(buf + WIRE__ENV_HEADER,
         "\x00\xff\x01"
         "ab",
         5);
  cr_assert_eq(buf[0], 0xFF);
  cr_assert_eq(buf[1], 'W');
  cr_assert_eq(buf[2], 1);
  cr_assert_eq(buf[3], 2);
  cr_assert_eq(buf[4], 1);
  cr_assert_eq(buf[11], 8);
  wire__envelope e;
  cr_assert_eq(wire__envelope_parse(buf, sizeof buf, &e), 0);
  cr_assert_eq(e.kind, WIRE__ENV_BINARY);
  cr_assert_eq(e.plain, 0);
  cr_assert_eq(e.origin, 0x0102030405060708ull);
  cr_assert_eq(e.len, 5);
  cr_assert_eq(memcmp(e.payload,
                      "\x00\xff\x01"
                      "ab",
                      5),
               0);
}

Test(envelope, reads_plain_payloads_as_text_or_binary) {
  wire__envelope e;
  cr_assert_eq(wire__envelope_parse((const uint8_t *)"hello", 5, &e), 0);
  cr_assert(e.plain);
  cr_assert_eq(e.kind, WIRE__ENV_TEXT);
  cr_assert_eq(e.origin, 0);
  cr_assert_eq(e.len, 5);
  cr_assert_eq(wire__envelope_parse((const uint8_t *)"", 0, &e), 0);
  cr_assert_eq(e.kind, WIRE__ENV_TEXT);
  cr_assert_eq(wire__envelope_parse((const uint8_t *)"\xc3\x28", 2, &e), 0);
  cr_assert_eq(e.kind, WIRE__ENV_BINARY);
  cr_assert_eq(wire__envelope_parse((const uint8_t *)"\xff", 1, &e), 0);
  cr_assert_eq(e.kind, WIRE__ENV_BINARY);
}

Test(envelope, refuses_other_versions_kinds_and_short_headers) {
  uint8_t buf[WIRE__ENV_HEADER];
  wire__envelope e;
  wire__envelope_header(buf, WIRE__ENV_TEXT, 9);
  cr_assert_eq(wire__envelope_parse(buf, 11, &e), WIRE_EDESERIALIZE);
  buf[2] = 2;
  cr_assert_eq(wire__envelope_parse(buf, sizeof buf, &e), WIRE_EDESERIALIZE);
  buf[2] = 1;
  buf[3] = 4;
  cr_assert_eq(wire__envelope_parse(buf, sizeof buf, &e), WIRE_EDESERIALIZE);
  buf[3] = 0;
  cr_assert_eq(wire__envelope_parse(buf, sizeof buf, &e), WIRE_EDESERIALIZE);
}

/* ---- servers on a real Redis ---------------------------------------------------- */

enum { M_ROOM = 1, M_PUB, M_VALUE, M_MP };

typedef struct tsrv {
  wire_server *s;
  pthread_t th;
  int port;
  volatile int state, n_up, n_down, n_reports, n_full;
  char last_msg[512];
  char full_msg[512]; /* the first "queue full" report: a drain may follow it at once */
  wire_broker_stats st; /* read after the server stopped */
} tsrv;

static int modes[5] = {0, M_ROOM, M_PUB, M_VALUE, M_MP};

static int t_connect(wire_conn *c, const wire_request *req, void *ud) {
  int mode = *(int *)ud;
  wire_str room = wire_request_param(req, "room");
  if (mode == M_ROOM || mode == M_MP)
    return wire_conn_subscribe(c, room.ptr, room.len) == 0 ? 0 : 503;
  return 0;
}

static void t_message(wire_conn *c, const wire_message *m, void *ud) {
  int mode = *(int *)ud;
  wire_str room = wire_request_param(wire_conn_request(c), "room");
  if (mode == M_VALUE)
    wire_server_publish_value(wire_conn_server(c), room.ptr, room.len, m->value, NULL, NULL);
  else
    wire_server_publish(wire_conn_server(c), room.ptr, room.len, m->kind, m->data, m->len, NULL);
}

static void t_state(wire_server *s, wire_broker_state st, const char *msg, void *ud) {
  tsrv *t = ud;
  (void)s;
  t->state = st;
  t->n_reports++;
  if (st == WIRE_BROKER_UP)
    t->n_up++;
  else if (st == WIRE_BROKER_DOWN)
    t->n_down++;
  if (msg && strstr(msg, "over ") != NULL && t->n_full++ == 0)
    snprintf(t->full_msg, sizeof t->full_msg, "%s", msg);
  snprintf(t->last_msg, sizeof t->last_msg, "%s", msg ? msg : "");
}

static void *t_run(void *arg) {
  tsrv *t = arg;
  wire_server_run(t->s);
  return NULL;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

#define WAIT_UNTIL(cond, ms)                                                                       \
  do {                                                                                             \
    for (int w_ = 0; w_ < (ms) / 5 && !(cond); w_++)                                               \
      sleep_ms(5);                                                                                 \
  } while (0)

/* A chat-like server attached to Redis at url, running on its own thread. */
static void tsrv_start(tsrv *t, const char *url, const wire_redis_options *ro) {
  memset(t, 0, sizeof *t);
  cr_assert_eq(wire_server_new(NULL, &t->s), 0);
  wire_callbacks cb = {t_connect, t_message, NULL, NULL};
  wire_endpoint_options json = {0}, mp = {0};
  json.codec = WIRE_CODEC_JSON;
  mp.codec = WIRE_CODEC_MSGPACK;
  cr_assert_eq(wire_endpoint_add(t->s, "/room/{room}", NULL, &cb, &modes[M_ROOM], NULL, NULL), 0);
  cr_assert_eq(wire_endpoint_add(t->s, "/pub/{room}", NULL, &cb, &modes[M_PUB], NULL, NULL), 0);
  cr_assert_eq(wire_endpoint_add(t->s, "/value/{room}", &json, &cb, &modes[M_VALUE], NULL, NULL),
               0);
  cr_assert_eq(wire_endpoint_add(t->s, "/mp/{room}", &mp, &cb, &modes[M_MP], NULL, NULL), 0);
  wire_error err;
  memset(&err, 0, sizeof err);
  int r = wire_server_use_redis(t->s, url, ro, &err);
  cr_assert_eq(r, 0, "use_redis: %s", err.message);
  cr_assert_eq(wire_server_on_broker_state(t->s, t_state, t), 0);
  cr_assert_eq(wire_server_listen(t->s, "127.0.0.1", 0), 0);
  t->port = wire_server_port(t->s);
  cr_assert_eq(pthread_create(&t->th, NULL, t_run, t), 0);
}

static void tsrv_stop(tsrv *t) {
  cr_assert_eq(wire_server_stop(t->s), 0);
  pthread_join(t->th, NULL);
  cr_assert_eq(wire_server_broker_stats(t->s, &t->st), 0);
  cr_assert_eq(wire_server_free(t->s), 0);
}

static wt_pump nopump = {NULL, NULL};

static void send_text(int fd, const char *s) {
  wt_send_frame(&nopump, fd, 1, 1, s, strlen(s));
}

/* The next frame's payload as a string ("" on timeout), opcode in *op. */
static char *next_frame(int fd, int ms, int *op) {
  static char buf[4096];
  wt_msg m;
  buf[0] = 0;
  if (wt_read_frame(&nopump, fd, &m, ms) == 0) {
    snprintf(buf, sizeof buf, "%.*s", (int)m.len, (const char *)m.data);
    if (op)
      *op = m.opcode;
    wt_msg_free(&m);
  } else if (op) {
    *op = -1;
  }
  return buf;
}

static char redis_url[128];

static void url_for(const wt_redis *r, const char *auth, int db) {
  snprintf(redis_url, sizeof redis_url, "redis://%s127.0.0.1:%d/%d", auth ? auth : "", r->port, db);
}

TestSuite(broker_redis, .timeout = 120);

Test(broker_redis, delivers_across_servers_once_and_accepts_plain_publishes) {
  signal(SIGPIPE, SIG_IGN);
  wt_redis rd;
  cr_assert_eq(wt_redis_start(&rd, 0, NULL), 0);
  url_for(&rd, NULL, 0);
  tsrv a, b;
  tsrv_start(&a, redis_url, NULL);
  tsrv_start(&b, redis_url, NULL);
  WAIT_UNTIL(a.n_up && b.n_up, 5000);
  cr_assert_eq(a.n_up, 1, "a: %s", a.last_msg);
  cr_assert_eq(b.n_up, 1, "b: %s", b.last_msg);
  cr_assert(strstr(a.last_msg, "connected to Redis") != NULL, "%s", a.last_msg);
  int a1 = wt_open(&nopump, a.port, "/room/lobby");
  int b1 = wt_open(&nopump, b.port, "/room/lobby");
  cr_assert(a1 >= 0 && b1 >= 0);
  long subs = 0;
  WAIT_UNTIL((subs = wt_redis_numsub(&rd, "wirecore:lobby")) == 2, 5000);
  cr_assert_eq(subs, 2);
  send_text(b1, "hello from b");
  cr_assert_str_eq(next_frame(a1, 3000, NULL), "hello from b");
  cr_assert_str_eq(next_frame(b1, 3000, NULL), "hello from b");
  send_text(a1, "hello from a");
  cr_assert_str_eq(next_frame(b1, 3000, NULL), "hello from a");
  cr_assert_str_eq(next_frame(a1, 3000, NULL), "hello from a"); /* once: no echo from Redis */
  /* from outside, with plain Redis commands */
  cr_assert_eq(wt_redis_cli_num(&rd, "PUBLISH wirecore:lobby 'plain hello'"), 2);
  int op = 0;
  cr_assert_str_eq(next_frame(a1, 3000, &op), "plain hello");
  cr_assert_eq(op, 1, "a plain UTF-8 payload is a text frame");
  cr_assert_str_eq(next_frame(b1, 3000, NULL), "plain hello");
  cr_assert_str_eq(next_frame(a1, 300, NULL), "", "nothing more arrives");
  cr_assert_str_eq(next_frame(b1, 300, NULL), "", "nothing more arrives");
  /* the last subscriber leaving unsubscribes in Redis */
  close(a1);
  WAIT_UNTIL((subs = wt_redis_numsub(&rd, "wirecore:lobby")) == 1, 5000);
  cr_assert_eq(subs, 1);
  close(b1);
  tsrv_stop(&a);
  tsrv_stop(&b);
  cr_assert_eq(a.st.published, 1);
  cr_assert_eq(b.st.published, 1);
  cr_assert_eq(a.st.received, 2); /* b's message and the plain one */
  cr_assert_eq(b.st.received, 2);
  cr_assert_eq(a.st.dropped + b.st.dropped, 0);
  cr_assert_eq(a.n_reports, 1, "one report: %s", a.last_msg);
  wt_redis_kill(&rd);
}

Test(broker_redis, values_cross_as_messagepack_and_reach_each_codec) {
  signal(SIGPIPE, SIG_IGN);
  wt_redis rd;
  cr_assert_eq(wt_redis_start(&rd, 0, NULL), 0);
  url_for(&rd, NULL, 0);
  tsrv a, b;
  tsrv_start(&a, redis_url, NULL);
  tsrv_start(&b, redis_url, NULL);
  WAIT_UNTIL(a.n_up && b.n_up, 5000);
  int mp = wt_open(&nopump, a.port, "/mp/v");
  int js = wt_open(&nopump, a.port, "/room/v");
  int pub = wt_open(&nopump, b.port, "/value/v");
  cr_assert(mp >= 0 && js >= 0 && pub >= 0);
  WAIT_UNTIL(wt_redis_numsub(&rd, "wirecore:v") == 1, 5000);
  send_text(pub, "{\"n\":18446744073709551615,\"x\":[1.5,-2,null,true,\"\xc3\xa9\"]}");
  cr_assert_str_eq(next_frame(js, 3000, NULL),
                   "{\"n\":18446744073709551615,\"x\":[1.5,-2,null,true,\"\xc3\xa9\"]}");
  wt_msg m;
  cr_assert_eq(wt_read_frame(&nopump, mp, &m, 3000), 0);
  cr_assert_eq(m.opcode, 2);
  wire_doc *doc;
  cr_assert_eq(wire_doc_new(&doc), 0);
  const wire_value *v;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_MSGPACK, m.data, m.len, 0, &v, NULL), 0);
  cr_assert_eq(wire_value_type(wire_value_get(v, "n", 1)), WIRE_UINT);
  cr_assert_eq(wire_value_uint(wire_value_get(v, "n", 1)), UINT64_MAX);
  cr_assert_eq(wire_value_size(wire_value_get(v, "x", 1)), 5);
  wire_doc_free(doc);
  wt_msg_free(&m);
  close(mp);
  close(js);
  close(pub);
  tsrv_stop(&a);
  tsrv_stop(&b);
  cr_assert_eq(a.st.received, 1);
  wt_redis_kill(&rd);
}

Test(broker_redis, authenticates_and_selects_the_database) {
  signal(SIGPIPE, SIG_IGN);
  wt_redis rd;
  cr_assert_eq(wt_redis_start(&rd, 0, "s3cret"), 0);
  tsrv bad, good, user;
  url_for(&rd, ":wrong@", 0);
  tsrv_start(&bad, redis_url, NULL);
  url_for(&rd, ":s3cret@", 2);
  tsrv_start(&good, redis_url, NULL);
  url_for(&rd, "default:s3cret@", 1);
  tsrv_start(&user, redis_url, NULL);
  WAIT_UNTIL(bad.n_down && good.n_up && user.n_up, 5000);
  cr_assert_eq(bad.n_down, 1);
  cr_assert(strstr(bad.last_msg, "refused") != NULL, "%s", bad.last_msg);
  cr_assert_eq(good.n_up, 1, "%s", good.last_msg);
  cr_assert_eq(user.n_up, 1, "%s", user.last_msg);
  sleep_ms(600); /* several failed retries: still one report */
  cr_assert_eq(bad.n_reports, 1, "%s", bad.last_msg);
  tsrv_stop(&bad);
  tsrv_stop(&good);
  tsrv_stop(&user);
  wt_redis_kill(&rd);
}

Test(broker_redis, survives_redis_restart_and_resubscribes) {
  signal(SIGPIPE, SIG_IGN);
  wt_redis rd;
  cr_assert_eq(wt_redis_start(&rd, 0, NULL), 0);
  int port = rd.port;
  url_for(&rd, NULL, 0);
  wire_redis_options ro = {0};
  ro.reconnect_max_ms = 400;
  tsrv a, b;
  tsrv_start(&a, redis_url, &ro);
  tsrv_start(&b, redis_url, &ro);
  WAIT_UNTIL(a.n_up && b.n_up, 5000);
  int a1 = wt_open(&nopump, a.port, "/room/r");
  int b1 = wt_open(&nopump, b.port, "/room/r");
  WAIT_UNTIL(wt_redis_numsub(&rd, "wirecore:r") == 2, 5000);
  send_text(b1, "before");
  cr_assert_str_eq(next_frame(a1, 3000, NULL), "before");
  cr_assert_str_eq(next_frame(b1, 3000, NULL), "before");
  wt_redis_kill(&rd);
  WAIT_UNTIL(a.n_down && b.n_down, 5000);
  cr_assert_eq(b.n_down, 1);
  cr_assert(strstr(b.last_msg, "reconnecting") != NULL, "%s", b.last_msg);
  send_text(b1, "during");
  cr_assert_str_eq(next_frame(b1, 3000, NULL), "during", "local delivery goes on");
  cr_assert_str_eq(next_frame(a1, 300, NULL), "");
  sleep_ms(1000); /* a few failed attempts */
  cr_assert_eq(b.n_reports, 2, "one report per change: %s", b.last_msg);
  cr_assert_eq(wt_redis_start(&rd, port, NULL), 0);
  WAIT_UNTIL(a.n_up == 2 && b.n_up == 2, 5000);
  cr_assert_eq(b.n_up, 2, "%s", b.last_msg);
  cr_assert(strstr(b.last_msg, "1 publishes to other processes were dropped") != NULL, "%s",
            b.last_msg);
  long subs = 0;
  WAIT_UNTIL((subs = wt_redis_numsub(&rd, "wirecore:r")) == 2, 5000);
  cr_assert_eq(subs, 2, "re-subscribed by itself");
  send_text(a1, "after");
  cr_assert_str_eq(next_frame(b1, 3000, NULL), "after");
  cr_assert_str_eq(next_frame(a1, 3000, NULL), "after");
  close(a1);
  close(b1);
  tsrv_stop(&a);
  tsrv_stop(&b);
  cr_assert_eq(b.st.dropped, 1);
  cr_assert_eq(b.st.reconnects, 1);
  cr_assert_eq(a.st.reconnects, 1);
  wt_redis_kill(&rd);
}

Test(broker_redis, bounds_publish_bytes_when_redis_does_not_read) {
  signal(SIGPIPE, SIG_IGN);
  wt_redis rd;
  cr_assert_eq(wt_redis_start(&rd, 0, NULL), 0);
  url_for(&rd, NULL, 0);
  wire_redis_options ro = {0};
  ro.max_pending_bytes = 256 * 1024;
  tsrv b;
  tsrv_start(&b, redis_url, &ro);
  WAIT_UNTIL(b.n_up, 5000);
  int pub = wt_open(&nopump, b.port, "/pub/slow");
  cr_assert(pub >= 0);
  kill(rd.pid, SIGSTOP);
  static char big[100 * 1024];
  memset(big, 'x', sizeof big);
  for (int i = 0; i < 200; i++) /* 20 MB */
    wt_send_frame(&nopump, pub, 1, 1, big, sizeof big);
  WAIT_UNTIL(b.n_full >= 1, 10000);
  cr_assert(strstr(b.full_msg, "over 262144 bytes") != NULL, "%s", b.full_msg);
  /* every message reached the broker (a racy read of two counters, for the wait only) */
  wire_broker_stats st = {0};
  WAIT_UNTIL((wire_server_broker_stats(b.s, &st), st.published + st.dropped == 200), 10000);
  kill(rd.pid, SIGCONT);
  /* each time the queue filled up, one report; each time it drained, one */
  WAIT_UNTIL(b.n_reports % 2 == 1 && strstr(b.last_msg, "drained") != NULL, 10000);
  cr_assert(strstr(b.last_msg, "drained") != NULL, "%s", b.last_msg);
  cr_assert_eq(b.n_reports % 2, 1, "%d reports", b.n_reports);
  close(pub);
  tsrv_stop(&b);
  cr_assert_gt(b.st.dropped, 0);
  cr_assert_eq(b.st.published + b.st.dropped, 200);
  cr_assert_lt(b.st.pending_bytes, 256 * 1024);
  wt_redis_kill(&rd);
}

TestSuite(broker_api, .timeout = 30);

Test(broker_api, refuses_bad_arguments_and_a_second_broker) {
  wire_server *s;
  cr_assert_eq(wire_server_new(NULL, &s), 0);
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_server_use_redis(s, "http://x", NULL, &err), WIRE_EINVAL);
  cr_assert(strstr(err.message, "redis://") != NULL, "%s", err.message);
  wire_broker_stats st;
  cr_assert_eq(wire_server_broker_stats(s, &st), WIRE_ENOTFOUND);
  cr_assert_eq(wire_server_origin(s), 0);
  /* nothing listens on port 1: the attach still succeeds, the connection fails later */
  cr_assert_eq(wire_server_use_redis(s, "redis://127.0.0.1:1", NULL, &err), 0);
  cr_assert_eq(wire_server_use_redis(s, "redis://127.0.0.1:1", NULL, &err), WIRE_ESTATE);
  cr_assert_neq(wire_server_origin(s), 0);
  cr_assert_eq(wire_server_broker_stats(s, &st), 0);
  /* a publish with the broker down is counted, and local delivery is unaffected */
  cr_assert_eq(wire_server_publish(s, "t", 1, WIRE_MSG_TEXT, "x", 1, NULL), 0);
  cr_assert_eq(wire_server_broker_stats(s, &st), 0);
  cr_assert_eq(st.dropped, 1);
  cr_assert_eq(wire_broker_deliver(s, "t", 1,
                                   "\xff"
                                   "W\x09",
                                   12),
               WIRE_EDESERIALIZE);
  cr_assert_eq(wire_server_broker_stats(s, &st), 0);
  cr_assert_eq(st.invalid, 1);
  cr_assert_eq(wire_server_free(s), 0, "a server that never listened frees its broker");
}
