/*
 * test_history_redis.c -- topic history shared through Redis Streams
 * (history.c's shared part, broker_redis.c's publish script and fetches):
 * real servers (each on its own thread and loop) on one real redis-server,
 * real WebSocket clients. One position sequence per topic across servers,
 * recovery on another server, a hole refetched, "epoch" after Redis lost
 * everything, "too_old" past n with MAXLEN kept in Redis, "unavailable"
 * while Redis is away, catch-up after a reconnect and a restart with an
 * append-only file.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A server: /h/{room}?since=P subscribes with the position and keeps what
 * it found; a text message from a client is published to the room. */
typedef struct hsrv {
  wire_server *s;
  pthread_t th;
  int port;
  volatile int up, n_up;
  pthread_mutex_t mu;
  wire_recovery rec; /* of the last subscribe */
  int sub_rc;
} hsrv;

static int h_connect(wire_conn *c, const wire_request *req, void *ud) {
  hsrv *t = ud;
  wire_str room = wire_request_param(req, "room");
  wire_str since = wire_request_query(req, "since");
  wire_recovery rec;
  int r = wire_conn_subscribe_since(c, room.ptr, room.len, since.ptr, since.len, &rec);
  pthread_mutex_lock(&t->mu);
  t->rec = rec;
  t->sub_rc = r;
  pthread_mutex_unlock(&t->mu);
  return r == 0 ? 0 : 500;
}

static void h_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  wire_str room = wire_request_param(wire_conn_request(c), "room");
  wire_server_publish(wire_conn_server(c), room.ptr, room.len, m->kind, m->data, m->len, NULL);
}

static void h_state(wire_server *s, wire_broker_state st, const char *msg, void *ud) {
  hsrv *t = ud;
  (void)s;
  (void)msg;
  t->up = st == WIRE_BROKER_UP;
  if (st == WIRE_BROKER_UP)
    t->n_up++;
}

static void *h_run(void *arg) {
  wire_server_run(((hsrv *)arg)->s);
  return NULL;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Bounded in time (the condition may itself be slow: redis-cli). */
#define WAIT_UNTIL(cond, ms)                                                                       \
  do {                                                                                             \
    for (uint64_t end_ = wt_now_ms() + (ms); !(cond) && wt_now_ms() < end_;)                       \
      sleep_ms(5);                                                                                 \
  } while (0)

static char url[128];

/* History for "h:*" (n) and "s:*" (5 kept), Redis at url. */
static void hsrv_start(hsrv *t, unsigned n, unsigned reconnect_min_ms) {
  memset(t, 0, sizeof *t);
  pthread_mutex_init(&t->mu, NULL);
  cr_assert_eq(wire_server_new(NULL, &t->s), 0);
  wire_callbacks cb = {h_connect, h_message, NULL, NULL};
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_RAW;
  cr_assert_eq(wire_endpoint_add(t->s, "/h/{room}", &eo, &cb, t, NULL, NULL), 0);
  cr_assert_eq(wire_server_topic_history(t->s, "h:*", 3, n, 0), 0);
  cr_assert_eq(wire_server_topic_history(t->s, "s:*", 3, 5, 0), 0);
  cr_assert_eq(wire_server_topic_history(t->s, "t:*", 3, 5, 60000), 0);
  wire_redis_options ro = {0};
  ro.reconnect_min_ms = reconnect_min_ms;
  ro.reconnect_max_ms = reconnect_min_ms;
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_server_use_redis(t->s, url, &ro, &err), 0, "%s", err.message);
  cr_assert_eq(wire_server_on_broker_state(t->s, h_state, t), 0);
  cr_assert_eq(wire_server_listen(t->s, "127.0.0.1", 0), 0);
  t->port = wire_server_port(t->s);
  cr_assert_eq(pthread_create(&t->th, NULL, h_run, t), 0);
  WAIT_UNTIL(t->up, 5000);
  cr_assert(t->up, "the server did not reach Redis");
}

static wire_broker_stats hsrv_stop(hsrv *t) {
  wire_broker_stats st;
  cr_assert_eq(wire_server_stop(t->s), 0);
  pthread_join(t->th, NULL);
  cr_assert_eq(wire_server_broker_stats(t->s, &st), 0);
  cr_assert_eq(wire_server_free(t->s), 0);
  pthread_mutex_destroy(&t->mu);
  return st;
}

static wt_pump nopump = {NULL, NULL};

/* A client on /h/<room>[?since=P]; the recovery the server found in *rec. */
static int join(hsrv *t, const char *room, const char *since, wire_recovery *rec) {
  char path[256];
  snprintf(path, sizeof path, "/h/%s%s%s", room, since ? "?since=" : "", since ? since : "");
  int fd = wt_open(&nopump, t->port, path);
  cr_assert(fd >= 0, "cannot open %s", path);
  pthread_mutex_lock(&t->mu);
  if (rec)
    *rec = t->rec;
  cr_assert_eq(t->sub_rc, 0);
  pthread_mutex_unlock(&t->mu);
  return fd;
}

static void say(int fd, const char *text) {
  wt_send_frame(&nopump, fd, 1, 1, text, strlen(text));
}

/* One delivered frame: its seq, epoch (16 hex + NUL) and data, or the
 * truncated report (seq 0, *truncated = 1). -1 on timeout. */
typedef struct got {
  uint64_t seq;
  char epoch[17];
  char data[256];
  int truncated;
} got;

static int next(int fd, got *g, int ms) {
  memset(g, 0, sizeof *g);
  wt_msg m;
  if (wt_read_frame(&nopump, fd, &m, ms) != 0)
    return -1;
  const char *s = (const char *)m.data;
  const char *off = strstr(s, "\"offset\":\"");
  cr_assert_not_null(off, "no offset in %s", s);
  off += 10;
  memcpy(g->epoch, off, 16);
  g->seq = strtoull(off + 17, NULL, 10);
  g->truncated = strstr(s, "\"type\":\"truncated\"") != NULL;
  const char *d = strstr(s, "\"data\":\"");
  if (d != NULL) {
    d += 8;
    const char *e = strchr(d, '"');
    snprintf(g->data, sizeof g->data, "%.*s", (int)(e - d), d);
  }
  wt_msg_free(&m);
  return 0;
}

/* The next frame is publication seq with data want (epoch into ep when not
 * NULL). */
#define expect(fd, seq, want, ep) expect_at(__LINE__, fd, seq, want, ep)
#define expect_truncated(fd) expect_truncated_at(__LINE__, fd)

static void expect_at(int line, int fd, uint64_t seq, const char *want, char *ep) {
  got g;
  cr_assert_eq(next(fd, &g, 3000), 0, "line %d: nothing arrived, expected %llu", line,
               (unsigned long long)seq);
  cr_assert_eq(g.truncated, 0, "line %d: truncated instead of %llu", line, (unsigned long long)seq);
  cr_assert_eq(g.seq, seq, "line %d: got %llu (%s), expected %llu", line, (unsigned long long)g.seq,
               g.data, (unsigned long long)seq);
  cr_assert_str_eq(g.data, want);
  if (ep)
    memcpy(ep, g.epoch, 17);
}

static void expect_truncated_at(int line, int fd) {
  got g;
  cr_assert_eq(next(fd, &g, 3000), 0, "line %d: no truncated report", line);
  cr_assert_eq(g.truncated, 1, "line %d: got %llu instead of a truncated report", line,
               (unsigned long long)g.seq);
}

static void expect_nothing(int fd) {
  got g;
  cr_assert_eq(next(fd, &g, 200), -1, "unexpected %llu %s", (unsigned long long)g.seq, g.data);
}

static void pos(char *buf, const char *epoch, uint64_t seq) {
  snprintf(buf, WIRE_POSITION_MAX, "%.16s:%llu", epoch, (unsigned long long)seq);
}

static wt_redis rd;

static void setup(void) {
  signal(SIGPIPE, SIG_IGN);
  cr_assert_eq(wt_redis_start(&rd, 0, NULL), 0);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", rd.port);
}

static void teardown(void) {
  wt_redis_kill(&rd);
}

TestSuite(history_redis, .init = setup, .fini = teardown, .timeout = 120);

Test(history_redis, one_sequence_across_servers_and_recovery_on_the_other) {
  hsrv a, b;
  hsrv_start(&a, 100, 100);
  hsrv_start(&b, 100, 100);
  int a1 = join(&a, "h:r", NULL, NULL), b1 = join(&b, "h:r", NULL, NULL);
  WAIT_UNTIL(wt_redis_numsub(&rd, "wirecore:h:r") == 2, 5000);
  char ep[17], p[WIRE_POSITION_MAX];
  say(a1, "m1");
  expect(a1, 1, "m1", ep);
  expect(b1, 1, "m1", NULL);
  say(b1, "m2");
  expect(a1, 2, "m2", NULL); /* (two servers: which reaches Redis first decides) */
  say(a1, "m3");
  expect(a1, 3, "m3", NULL);
  expect(b1, 2, "m2", NULL);
  expect(b1, 3, "m3", NULL);
  /* the stream and the meta hash hold the same numbers */
  cr_assert_eq(wt_redis_cli_num(&rd, "XLEN wirecore:h:h:r"), 3);
  cr_assert_eq(wt_redis_cli_num(&rd, "HGET wirecore:hm:h:r q"), 3);
  /* a client that saw 1 on a recovers the rest on b, then the live ones */
  pos(p, ep, 1);
  wire_recovery rec;
  int b2 = join(&b, "h:r", p, &rec);
  cr_assert_eq(rec.recovered, 1, "%s", rec.reason);
  cr_assert_eq(rec.replayed, 2);
  expect(b2, 2, "m2", NULL);
  expect(b2, 3, "m3", NULL);
  say(a1, "m4");
  expect(b2, 4, "m4", NULL);
  expect_nothing(b2);
  /* a server that never had the topic loads it from Redis */
  int a2 = join(&a, "h:solo", NULL, NULL);
  say(a2, "x1");
  say(a2, "x2");
  say(a2, "x3");
  expect(a2, 1, "x1", ep);
  expect(a2, 2, "x2", NULL);
  expect(a2, 3, "x3", NULL);
  pos(p, ep, 1);
  int b3 = join(&b, "h:solo", p, &rec);
  cr_assert_eq(rec.recovered, 1, "%s", rec.reason);
  expect(b3, 2, "x2", NULL);
  expect(b3, 3, "x3", NULL);
  /* a position ahead of what b has seen (b never followed h:late): fetched */
  int a3 = join(&a, "h:late", NULL, NULL);
  say(a3, "y1");
  say(a3, "y2");
  expect(a3, 1, "y1", ep);
  expect(a3, 2, "y2", NULL);
  pos(p, ep, 2);
  int b4 = join(&b, "h:late", p, &rec);
  cr_assert_eq(rec.recovered, 1, "%s", rec.reason);
  cr_assert_eq(rec.replayed, 0);
  say(a3, "y3");
  expect(b4, 3, "y3", NULL);
  expect_nothing(b4);
  int fds[] = {a1, b1, b2, a2, b3, a3, b4};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    close(fds[i]);
  wire_broker_stats sa = hsrv_stop(&a), sb = hsrv_stop(&b);
  cr_assert_eq(sa.dropped + sb.dropped, 0);
  cr_assert_eq(sa.published, 9); /* m1 m3 m4 x1-3 y1-3 */
  cr_assert_eq(sb.published, 1);
}

/* Redis commands that append publication `seq` of topic h:r as the publish
 * script does, without (announce 0) or with the announcement. */
static void inject(const char *topic, const char *data, int announce) {
  char args[1024];
  snprintf(args, sizeof args,
           "EVAL \"local q = redis.call('HINCRBY', KEYS[2], 'q', 1) "
           "local e = redis.call('HGET', KEYS[2], 'e') "
           "redis.call('XADD', KEYS[1], string.format('%%d', q) .. '-1', 'd', ARGV[1]) "
           "if ARGV[2] == '1' then redis.call('PUBLISH', ARGV[3], '\\\\255H' .. e .. ':' .. "
           "string.format('%%d', q) .. ' ' .. ARGV[1]) end return q\" 2 wirecore:h:%s "
           "wirecore:hm:%s '\"%s\"' %d wirecore:%s",
           topic, topic, data, announce, topic);
  cr_assert_gt(wt_redis_cli_num(&rd, args), 0, "inject failed");
}

Test(history_redis, a_hole_in_the_announcements_is_fetched_before_newer_ones) {
  hsrv a;
  hsrv_start(&a, 100, 100);
  int a1 = join(&a, "h:gap", NULL, NULL);
  say(a1, "g1");
  expect(a1, 1, "g1", NULL);
  inject("h:gap", "lost2", 0); /* in the stream, its announcement lost */
  inject("h:gap", "lost3", 0);
  say(a1, "g4");
  expect(a1, 2, "lost2", NULL);
  expect(a1, 3, "lost3", NULL);
  expect(a1, 4, "g4", NULL);
  /* an announcement from outside in the same format is delivered once */
  inject("h:gap", "ext5", 1);
  expect(a1, 5, "ext5", NULL);
  expect_nothing(a1);
  close(a1);
  hsrv_stop(&a);
}

Test(history_redis, old_positions_after_redis_lost_everything_are_epoch) {
  hsrv a;
  hsrv_start(&a, 100, 100);
  int a1 = join(&a, "h:e", NULL, NULL);
  char ep[17], ep2[17], p[WIRE_POSITION_MAX];
  say(a1, "e1");
  expect(a1, 1, "e1", ep);
  cr_assert_eq(wt_redis_cli_num(&rd, "FLUSHALL >/dev/null && echo 1"), 1);
  say(a1, "e2"); /* a new epoch in Redis: the subscriber is told */
  expect_truncated(a1);
  expect(a1, 1, "e2", ep2);
  cr_assert_str_neq(ep, ep2);
  pos(p, ep, 1);
  wire_recovery rec;
  int a2 = join(&a, "h:e", p, &rec);
  cr_assert_eq(rec.recovered, 0);
  cr_assert_str_eq(rec.reason, "epoch");
  expect_truncated(a2);
  /* Redis restarted without persistence: the same after the reconnect */
  int port = rd.port;
  wt_redis_kill(&rd);
  WAIT_UNTIL(!a.up, 5000);
  cr_assert_eq(wt_redis_start(&rd, port, NULL), 0);
  WAIT_UNTIL(a.n_up == 2, 5000);
  cr_assert_eq(a.n_up, 2);
  expect_truncated(a1); /* the catch-up found a new epoch */
  expect_truncated(a2);
  say(a1, "e3");
  got g;
  cr_assert_eq(next(a1, &g, 3000), 0);
  cr_assert_eq(g.seq, 1);
  cr_assert_str_neq(g.epoch, ep2);
  pos(p, ep2, 1);
  int a3 = join(&a, "h:e", p, &rec);
  cr_assert_str_eq(rec.reason, "epoch");
  close(a1);
  close(a2);
  close(a3);
  hsrv_stop(&a);
}

Test(history_redis, n_holds_in_redis_and_older_positions_are_too_old) {
  hsrv a;
  hsrv_start(&a, 100, 100);
  int a1 = join(&a, "s:t", NULL, NULL);
  char ep[17], p[WIRE_POSITION_MAX], text[16];
  for (int i = 1; i <= 400; i++) {
    snprintf(text, sizeof text, "t%d", i);
    say(a1, text);
  }
  for (int i = 1; i <= 400; i++) {
    snprintf(text, sizeof text, "t%d", i);
    expect(a1, (uint64_t)i, text, i == 1 ? ep : NULL);
  }
  long xlen = wt_redis_cli_num(&rd, "XLEN wirecore:h:s:t");
  cr_assert(xlen >= 5 && xlen <= 200, "MAXLEN ~ 5 kept %ld", xlen);
  cr_assert_eq(wt_redis_cli_num(&rd, "PTTL wirecore:h:s:t"), -1, "no ttl: no expiry");
  /* a ttl: both keys expire that long after the last publish */
  int a3 = join(&a, "t:x", NULL, NULL);
  say(a3, "x1");
  expect(a3, 1, "x1", NULL);
  long pttl = wt_redis_cli_num(&rd, "PTTL wirecore:h:t:x");
  cr_assert(pttl > 50000 && pttl <= 60000, "stream PTTL %ld", pttl);
  pttl = wt_redis_cli_num(&rd, "PTTL wirecore:hm:t:x");
  cr_assert(pttl > 50000 && pttl <= 60000, "meta PTTL %ld", pttl);
  close(a3);
  wire_recovery rec;
  pos(p, ep, 1);
  int a2 = join(&a, "s:t", p, &rec);
  cr_assert_str_eq(rec.reason, "too_old");
  expect_truncated(a2);
  /* another server loads the newest 5 */
  hsrv b;
  hsrv_start(&b, 100, 100);
  pos(p, ep, 395);
  int b1 = join(&b, "s:t", p, &rec);
  cr_assert_eq(rec.recovered, 1, "%s", rec.reason);
  for (int i = 396; i <= 400; i++) {
    snprintf(text, sizeof text, "t%d", i);
    expect(b1, (uint64_t)i, text, NULL);
  }
  pos(p, ep, 394);
  int b2 = join(&b, "s:t", p, &rec);
  cr_assert_str_eq(rec.reason, "too_old");
  close(a1);
  close(a2);
  close(b1);
  close(b2);
  hsrv_stop(&a);
  hsrv_stop(&b);
}

Test(history_redis, unavailable_while_redis_is_away_then_caught_up) {
  hsrv a, b;
  hsrv_start(&a, 100, 100);
  hsrv_start(&b, 100, 100);
  int a1 = join(&a, "h:u", NULL, NULL);
  int b1 = join(&b, "h:u", NULL, NULL);
  WAIT_UNTIL(wt_redis_numsub(&rd, "wirecore:h:u") == 2, 5000);
  char ep[17], p[WIRE_POSITION_MAX];
  say(a1, "u1");
  expect(a1, 1, "u1", ep);
  expect(b1, 1, "u1", NULL);
  int port = rd.port;
  wt_redis_kill(&rd);
  WAIT_UNTIL(!a.up && !b.up, 5000);
  /* b cannot know whether 2 exists: it says so rather than guess */
  pos(p, ep, 2);
  wire_recovery rec;
  int b2 = join(&b, "h:u", p, &rec);
  cr_assert_eq(rec.recovered, 0);
  cr_assert_str_eq(rec.reason, "unavailable");
  expect_truncated(b2);
  /* what b has still answers */
  pos(p, ep, 0);
  int b3 = join(&b, "h:u", p, &rec);
  cr_assert_eq(rec.recovered, 1, "%s", rec.reason);
  expect(b3, 1, "u1", NULL);
  close(b2);
  close(b3);
  hsrv_stop(&b);
  hsrv_stop(&a);
  (void)port;
}

Test(history_redis, a_restart_with_an_append_only_file_loses_nothing) {
  wt_redis_kill(&rd);
  char dir[] = "/tmp/wire-aof-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(wt_redis_start_aof(&rd, 0, dir), 0);
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", rd.port);
  hsrv a, b;
  hsrv_start(&a, 100, 100);
  hsrv_start(&b, 100, 1500); /* b comes back late: misses live announcements */
  int a1 = join(&a, "h:p", NULL, NULL);
  int b1 = join(&b, "h:p", NULL, NULL);
  WAIT_UNTIL(wt_redis_numsub(&rd, "wirecore:h:p") == 2, 5000);
  say(a1, "p1");
  expect(a1, 1, "p1", NULL);
  expect(b1, 1, "p1", NULL);
  int port = rd.port;
  wt_redis_kill(&rd);
  WAIT_UNTIL(!a.up && !b.up, 5000);
  say(a1, "p2"); /* Redis is away: it waits, and leaves once Redis is back */
  sleep_ms(100);
  cr_assert_eq(wt_redis_start_aof(&rd, port, dir), 0);
  WAIT_UNTIL(a.n_up == 2, 5000);
  cr_assert_eq(a.n_up, 2);
  expect(a1, 2, "p2", NULL);
  say(a1, "p3"); /* b is still away (1.5 s): it catches up when it is back */
  expect(a1, 3, "p3", NULL);
  WAIT_UNTIL(b.n_up == 2, 5000);
  cr_assert_eq(b.n_up, 2);
  expect(b1, 2, "p2", NULL);
  expect(b1, 3, "p3", NULL);
  say(b1, "p4");
  expect(a1, 4, "p4", NULL);
  expect(b1, 4, "p4", NULL);
  /* Redis forgot the publish script: EVALSHA's NOSCRIPT falls back to EVAL */
  cr_assert_eq(wt_redis_cli_num(&rd, "SCRIPT FLUSH >/dev/null && echo 1"), 1);
  say(a1, "p5");
  say(a1, "p6");
  expect(a1, 5, "p5", NULL);
  expect(a1, 6, "p6", NULL);
  expect(b1, 5, "p5", NULL);
  expect(b1, 6, "p6", NULL);
  expect_nothing(a1);
  expect_nothing(b1);
  close(a1);
  close(b1);
  wire_broker_stats sa = hsrv_stop(&a);
  hsrv_stop(&b);
  cr_assert_eq(sa.dropped, 0);
  cr_assert_eq(sa.published, 5);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(history_redis, redis_behind_what_was_delivered_starts_a_new_epoch) {
  hsrv a;
  hsrv_start(&a, 100, 100);
  int a1 = join(&a, "h:b", NULL, NULL);
  char ep[17], ep2[17];
  say(a1, "b1");
  say(a1, "b2");
  say(a1, "b3");
  expect(a1, 1, "b1", ep);
  expect(a1, 2, "b2", NULL);
  expect(a1, 3, "b3", NULL);
  /* as after a restart that lost the last writes: Redis's seq is back at 1 */
  cr_assert_eq(wt_redis_cli_num(&rd, "HSET wirecore:hm:h:b q 1"), 0);
  cr_assert_eq(wt_redis_cli_num(&rd, "CLIENT KILL TYPE pubsub"), 1);
  WAIT_UNTIL(a.n_up == 2, 5000);
  cr_assert_eq(a.n_up, 2);
  expect_truncated(a1); /* seqs 2 and 3 would be used again: a new epoch */
  say(a1, "b4");
  expect(a1, 1, "b4", ep2);
  cr_assert_str_neq(ep, ep2);
  close(a1);
  hsrv_stop(&a);
}

Test(history_redis, a_reply_over_64_mib_drops_the_connection_and_is_counted) {
  hsrv a;
  hsrv_start(&a, 100, 100);
  int a1 = join(&a, "h:big", NULL, NULL);
  WAIT_UNTIL(wt_redis_numsub(&rd, "wirecore:h:big") == 1, 5000);
  /* Redis would cut the subscriber itself past its pubsub buffer limit */
  cr_assert_eq(wt_redis_cli_num(&rd, "CONFIG SET client-output-buffer-limit 'pubsub 0 0 0' "
                                     ">/dev/null && echo 1"),
               1);
  char path[] = "/tmp/wire-big-XXXXXX", cmd[256];
  int fd = mkstemp(path);
  cr_assert(fd >= 0);
  cr_assert_eq(ftruncate(fd, (65 << 20) + 1), 0); /* 65 MiB of zero bytes */
  close(fd);
  snprintf(cmd, sizeof cmd, "-x PUBLISH wirecore:h:big < %s", path);
  cr_assert_eq(wt_redis_cli_num(&rd, cmd), 1);
  unlink(path);
  WAIT_UNTIL(a.n_up == 2, 10000);
  cr_assert_eq(a.n_up, 2, "the connection was not dropped and made again");
  say(a1, "after");
  expect(a1, 1, "after", NULL);
  close(a1);
  wire_broker_stats st = hsrv_stop(&a);
  cr_assert_eq(st.invalid, 1);
}
