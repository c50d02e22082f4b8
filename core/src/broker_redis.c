/*
 * broker_redis.c -- Redis as the broker's backplane: two TCP connections on
 * the server's own libuv loop (one SUBSCRIBEs, one PUBLISHes), commands
 * written in RESP2 and replies read with hiredis' reply parser, AUTH and
 * SELECT from the URL, subscriptions only for topics with local subscribers,
 * reconnection with capped exponential backoff (re-subscribing by itself),
 * a bound on publish bytes waiting for Redis, and one state report per
 * change.
 *
 * Why not hiredis' async context: 0.14 has no reconnect, its per-channel
 * callback table loses a channel whose UNSUBSCRIBE reply crosses a new
 * SUBSCRIBE, and its output buffer cannot be measured to bound memory. Here
 * the connections are plain uv_tcp_t handles (so the same code runs on a
 * borrowed loop, Node's), and hiredis parses the replies.
 */
#include "broker.h"
#include "conn_internal.h"
#include "history.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_RBUF 16384u
#define SUB_BATCH 256u              /* channels per SUBSCRIBE when re-subscribing */
#define DEFAULT_PENDING (16u << 20) /* publish bytes waiting for Redis */
#define CONNECT_TIMEOUT_MS 3000u
#define FETCH_TIMEOUT_MS 500u /* a blocking history fetch (load, hole, catch-up) */
#define MAX_REPLY (64u << 20) /* one reply larger than this drops the connection */

/* Publish to a history topic: one number per topic in the meta hash (a new
 * epoch when it has none: Redis lost it or it expired), the entry under that
 * number in the stream, both expiring together, and the announcement
 * "\xFFH<epoch>:<seq> <json>" on the topic's channel, all atomically.
 * A publish sent again after a reconnect (its reply was lost with the
 * connection; ARGV[8] = 1) is applied once: the meta hash keeps the highest
 * counter applied per process (field "o<origin>"), and a resent one not
 * above it returns 0 without effect. (A publish sent again with EVAL after
 * NOSCRIPT was not applied: no check.)
 * KEYS: stream, meta. ARGV: json, maxlen, ttl ms (0: none), channel, fresh
 * epoch, origin (hex), counter, resent. */
static const char PUBLISH_LUA[] =
    "local e = redis.call('HGET', KEYS[2], 'e')\n"
    "if not e then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  e = ARGV[5]\n"
    "  redis.call('HSET', KEYS[2], 'e', e)\n"
    "end\n"
    "local o = 'o' .. ARGV[6]\n"
    "local last = tonumber(redis.call('HGET', KEYS[2], o) or '0')\n"
    "if ARGV[8] == '1' and tonumber(ARGV[7]) <= last then\n"
    "  return 0\n"
    "end\n"
    "if tonumber(ARGV[7]) > last then redis.call('HSET', KEYS[2], o, ARGV[7]) end\n"
    "local q = redis.call('HINCRBY', KEYS[2], 'q', 1)\n"
    "local id = string.format('%d', q)\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], id .. '-1', 'd', ARGV[1])\n"
    "if ARGV[3] ~= '0' then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "  redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[4], '\\255H' .. e .. ':' .. id .. ' ' .. ARGV[1])\n"
    "return q\n";

/* Read a history topic: its epoch (made when it has none), its last number,
 * and the newest ARGV[3] entries (newest first) when that is not 0, else
 * the entries from id ARGV[2] on when ARGV[1] is the current epoch, else
 * all. Redis behind a process in the same epoch (its last seq below
 * ARGV[6], what that process delivered: a restart that lost the last
 * writes) would number new publications with seqs already used: the
 * history starts a new epoch instead.
 * KEYS: stream, meta. ARGV: epoch, start id, count, ttl ms, fresh, after. */
static const char FETCH_LUA[] =
    "local e = redis.call('HGET', KEYS[2], 'e')\n"
    "if not e then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  e = ARGV[5]\n"
    "  redis.call('HSET', KEYS[2], 'e', e, 'q', 0)\n"
    "  if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end\n"
    "end\n"
    "if e == ARGV[1] and tonumber(redis.call('HGET', KEYS[2], 'q') or '0') < tonumber(ARGV[6]) "
    "then\n"
    "  redis.call('DEL', KEYS[1], KEYS[2])\n"
    "  e = ARGV[5]\n"
    "  redis.call('HSET', KEYS[2], 'e', e, 'q', 0)\n"
    "  if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end\n"
    "end\n"
    "local q = redis.call('HGET', KEYS[2], 'q') or '0'\n"
    "local r\n"
    "if ARGV[3] ~= '0' then\n"
    "  r = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[3])\n"
    "elseif e == ARGV[1] then\n"
    "  r = redis.call('XRANGE', KEYS[1], ARGV[2], '+')\n"
    "else\n"
    "  r = redis.call('XRANGE', KEYS[1], '-', '+')\n"
    "end\n"
    "return {e, q, r}\n";

/* A history publish waiting for its reply: what EVAL needs should Redis
 * answer NOSCRIPT (its script cache was emptied). */
typedef struct hpub {
  struct hpub *next;
  uint64_t idx; /* the command's place among the publish connection's commands */
  unsigned maxlen;
  int resent; /* sent again after a reconnect: the script applies it at most once */
  uint64_t ttl_ms, fresh, ctr; /* ctr: this process's publish counter (applied once) */
  size_t tlen, jlen;
  char data[]; /* topic, then json */
} hpub;

typedef struct redis_impl redis_impl;

/* One connection to Redis. */
typedef struct rlink {
  uv_tcp_t tcp; /* data: the link (never the server: server.c walks its own TCP handles) */
  uv_connect_t creq;
  redis_impl *r;
  redisReader *reader;
  char *out; /* commands not yet handed to the socket */
  size_t out_len, out_cap;
  size_t inflight; /* bytes in uv_write requests not yet completed */
  int open;        /* handle initialised, close callback not yet run */
  int connected;   /* TCP is up: commands may be queued */
  int ready;       /* every setup reply (AUTH, SELECT, PING) came back OK */
  int setup_left;  /* setup replies outstanding */
  int is_sub;
  uint64_t sent, got; /* publish connection: commands after the setup, replies to them */
  hpub *hq, *hq_tail; /* history publishes waiting for their replies, oldest first */
  char rbuf[LINK_RBUF];
} rlink;

typedef struct rwrite {
  uv_write_t req;
  rlink *link;
  char *buf;
  size_t len;
} rwrite;

struct redis_impl {
  wire_server *s;
  uv_loop_t *loop;
  wire__redis_url url;
  char *prefix;
  char *hkey, *mkey;      /* prefix "h:" (streams) and prefix "hm:" (their meta hashes) */
  char sha[41];           /* of PUBLISH_LUA */
  uint64_t epochs;        /* fresh epochs made */
  uint64_t hctr;          /* history publishes made */
  hpub *wait, *wait_tail; /* history publishes to send once connected, oldest first */
  size_t wait_bytes;
  redisContext *sync; /* blocking connection for history fetches (NULL: none) */
  size_t prefix_len, max_pending;
  unsigned min_ms, max_ms, delay_ms;
  rlink links[2]; /* [0] subscribes, [1] publishes */
  uv_timer_t timer;
  uv_prepare_t prep; /* flushes what this loop turn queued, before the loop sleeps */
  int timer_open, prep_open;
  int connecting; /* the timer is the connect deadline (else: the retry delay) */
  int closing;
  int up_once;       /* reached UP before: the next UP is a reconnect */
  int is_down;       /* DOWN reported for this outage */
  int overflow;      /* publishes are being dropped for a full queue */
  uint64_t drops_at; /* stats.dropped when the outage or overflow began */
};

#define SUB(r) (&(r)->links[0])
#define PUB(r) (&(r)->links[1])

static void report(redis_impl *r, wire_broker_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(redis_impl *r, wire_broker_state st, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  wire_broker_report(r->s, st, msg);
}

static wire_broker_stats *stats(redis_impl *r) {
  return wire__broker_stats(r->s);
}

/* ---- output ---------------------------------------------------------------- */

/* Room for n more bytes in the link's output. 0 or WIRE_ENOMEM. */
static int out_reserve(rlink *l, size_t n) {
  if (l->out_cap - l->out_len >= n)
    return 0;
  size_t cap = l->out_cap ? l->out_cap : 4096;
  while (cap - l->out_len < n)
    cap *= 2;
  char *out = realloc(l->out, cap);
  if (out == NULL)
    return WIRE_ENOMEM;
  l->out = out;
  l->out_cap = cap;
  return 0;
}

static void out_bulk(rlink *l, const void *a, size_t na, const void *b, size_t nb) {
  l->out_len += (size_t)sprintf(l->out + l->out_len, "$%zu\r\n", na + nb);
  memcpy(l->out + l->out_len, a, na);
  if (nb)
    memcpy(l->out + l->out_len + na, b, nb);
  l->out_len += na + nb;
  memcpy(l->out + l->out_len, "\r\n", 2);
  l->out_len += 2;
}

/* Queue one command of argc arguments; argument i is a[i] followed by b[i]
 * (b may be NULL: the channel is prefix + topic). 0 or WIRE_ENOMEM. */
static int out_cmd(rlink *l, int argc, const char *const *a, const size_t *na, const char *const *b,
                   const size_t *nb) {
  size_t need = 16;
  for (int i = 0; i < argc; i++)
    need += 24 + na[i] + (b ? nb[i] : 0);
  if (out_reserve(l, need) != 0)
    return WIRE_ENOMEM;
  l->out_len += (size_t)sprintf(l->out + l->out_len, "*%d\r\n", argc);
  for (int i = 0; i < argc; i++)
    out_bulk(l, a[i], na[i], b ? b[i] : NULL, b ? nb[i] : 0);
  return 0;
}

/* Publish bytes waiting for Redis; the end of an overflow is reported once
 * the queue is down to half the limit. */
static void update_pending(redis_impl *r) {
  size_t pending = PUB(r)->out_len + PUB(r)->inflight + r->wait_bytes;
  stats(r)->pending_bytes = pending;
  if (r->overflow && pending <= r->max_pending / 2) {
    r->overflow = 0;
    report(r, stats(r)->state,
           "publish queue to Redis drained: %llu publishes were dropped while it was full",
           (unsigned long long)(stats(r)->dropped - r->drops_at));
  }
}

static void write_cb(uv_write_t *req, int status) {
  rwrite *w = (rwrite *)req;
  rlink *l = w->link;
  redis_impl *r = l->r;
  l->inflight -= w->len;
  free(w->buf);
  free(w);
  update_pending(r);
  (void)status; /* a failed write also fails the read side, which reports it */
}

/* Hand the queued output to the socket: what it takes now, the rest in one
 * uv_write that owns the buffer. */
static void link_flush(rlink *l) {
  if (!l->connected || l->out_len == 0)
    return;
  size_t off = 0;
  if (l->inflight == 0) {
    uv_buf_t b = uv_buf_init(l->out, (unsigned)l->out_len);
    int n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    if (n > 0)
      off = (size_t)n;
  }
  if (off == l->out_len) {
    l->out_len = 0;
    return;
  }
  rwrite *w = malloc(sizeof *w);
  if (w == NULL)
    return; /* stays queued; the next flush tries again */
  memmove(l->out, l->out + off, l->out_len - off);
  w->link = l;
  w->buf = l->out;
  w->len = l->out_len - off;
  uv_buf_t b = uv_buf_init(w->buf, (unsigned)w->len);
  if (uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, write_cb) != 0) {
    free(w);
    return;
  }
  l->inflight += w->len;
  l->out = NULL;
  l->out_len = l->out_cap = 0;
}

static void prep_cb(uv_prepare_t *p) {
  redis_impl *r = p->data;
  uv_prepare_stop(p);
  link_flush(SUB(r));
  link_flush(PUB(r));
  update_pending(r);
}

/* Flush before the loop next sleeps: every command queued in this turn
 * leaves in one write. Outside uv_run (host code), wake the host. */
static void schedule_flush(redis_impl *r) {
  if (r->prep_open && !uv_is_active((uv_handle_t *)&r->prep))
    uv_prepare_start(&r->prep, prep_cb);
  r->s->kick = 1;
  wire__wake_host(r->s);
}

/* ---- subscriptions --------------------------------------------------------- */

/* SUBSCRIBE or UNSUBSCRIBE for up to SUB_BATCH topics. */
static int sub_cmd(redis_impl *r, const char *verb, const char *const *topics, const size_t *lens,
                   size_t n) {
  const char *a[SUB_BATCH + 1], *b[SUB_BATCH + 1];
  size_t na[SUB_BATCH + 1], nb[SUB_BATCH + 1];
  a[0] = verb;
  na[0] = strlen(verb);
  b[0] = NULL;
  nb[0] = 0;
  for (size_t i = 0; i < n; i++) {
    a[i + 1] = r->prefix;
    na[i + 1] = r->prefix_len;
    b[i + 1] = topics[i];
    nb[i + 1] = lens[i];
  }
  return out_cmd(SUB(r), (int)n + 1, a, na, b, nb);
}

/* A history's channel, when no local subscriber has it subscribed already. */
static void sub_history(void *ud, const char *name, size_t len) {
  redis_impl *r = ud;
  if (wire__topics_subscribers(r->s, name, len) == 0)
    (void)sub_cmd(r, "SUBSCRIBE", &name, &len, 1);
}

/* After a (re)connect: subscribe to every topic that has local subscribers
 * or a history here. */
static void subscribe_all(redis_impl *r) {
  const wire__htab *names = &r->s->topics.names;
  const char *topics[SUB_BATCH];
  size_t lens[SUB_BATCH], n = 0;
  for (size_t i = 0; i < names->cap; i++)
    for (wire__hnode *h = names->b[i]; h; h = h->next) {
      const wire__topic *t = (const wire__topic *)h;
      if (t->n == 0)
        continue;
      topics[n] = t->name;
      lens[n++] = t->len;
      if (n == SUB_BATCH) {
        (void)sub_cmd(r, "SUBSCRIBE", topics, lens, n);
        n = 0;
      }
    }
  if (n > 0)
    (void)sub_cmd(r, "SUBSCRIBE", topics, lens, n);
  wire__history_each(r->s, sub_history, r); /* their channels without local subscribers */
}

/* ---- connection lifecycle -------------------------------------------------- */

static void connect_all(redis_impl *r);

static void link_close_cb(uv_handle_t *h) {
  rlink *l = h->data;
  l->open = 0;
  wire_broker_release(l->r->s);
}

/* The history publishes whose replies never came go back to the front of
 * the waiting list: sent again once connected (the script applies each
 * once). */
static void hq_requeue(redis_impl *r, rlink *l) {
  for (hpub *p = l->hq; p != NULL; p = p->next) {
    r->wait_bytes += p->tlen + p->jlen;
    p->resent = 1;
  }
  if (l->hq != NULL) {
    l->hq_tail->next = r->wait;
    if (r->wait == NULL)
      r->wait_tail = l->hq_tail;
    r->wait = l->hq;
  }
  l->hq = l->hq_tail = NULL;
  l->sent = l->got = 0;
}

static void link_close(rlink *l) {
  l->connected = l->ready = 0;
  l->setup_left = 0;
  l->out_len = 0;
  if (!l->is_sub)
    hq_requeue(l->r, l);
  if (l->reader != NULL) {
    redisReaderFree(l->reader);
    l->reader = NULL;
  }
  if (l->open && !uv_is_closing((uv_handle_t *)&l->tcp))
    uv_close((uv_handle_t *)&l->tcp, link_close_cb);
}

/* Something failed: drop both connections and retry after the backoff. One
 * report per outage, not per attempt. */
static void lost(redis_impl *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void timer_cb(uv_timer_t *t);

static void lost(redis_impl *r, const char *fmt, ...) {
  if (r->closing)
    return;
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  link_close(SUB(r));
  link_close(PUB(r));
  update_pending(r);
  stats(r)->channels = 0;
  if (!r->is_down) {
    r->is_down = 1;
    r->drops_at = stats(r)->dropped;
    report(r, WIRE_BROKER_DOWN,
           "Redis at %s:%d: %s; local delivery goes on, publishes to other processes are "
           "dropped and counted until it is back; reconnecting",
           r->url.host, r->url.port, why);
  }
  r->connecting = 0;
  if (r->timer_open)
    uv_timer_start(&r->timer, timer_cb, r->delay_ms, 0);
  r->delay_ms = r->delay_ms * 2 > r->max_ms ? r->max_ms : r->delay_ms * 2;
}

static void maybe_up(redis_impl *r) {
  if (!SUB(r)->ready || !PUB(r)->ready)
    return;
  uv_timer_stop(&r->timer);
  r->connecting = 0;
  r->delay_ms = r->min_ms;
  if (r->up_once) {
    stats(r)->reconnects++;
    report(r, WIRE_BROKER_UP,
           "reconnected to Redis at %s:%d; %llu publishes to other processes were dropped "
           "while it was away",
           r->url.host, r->url.port, (unsigned long long)(stats(r)->dropped - r->drops_at));
  } else {
    report(r, WIRE_BROKER_UP, "connected to Redis at %s:%d", r->url.host, r->url.port);
  }
  r->up_once = 1;
  r->is_down = 0;
}

static void timer_cb(uv_timer_t *t) {
  redis_impl *r = t->data;
  if (r->closing)
    return;
  if (r->connecting) {
    lost(r, "no answer within %u ms", CONNECT_TIMEOUT_MS);
    return;
  }
  if (SUB(r)->open || PUB(r)->open) { /* still closing the last attempt */
    uv_timer_start(&r->timer, timer_cb, 10, 0);
    return;
  }
  connect_all(r);
}

/* ---- replies ---------------------------------------------------------------- */

static int reply_is(const redisReply *e, const char *s) {
  size_t n = strlen(s);
  return e->type == REDIS_REPLY_STRING && e->len == n && strncasecmp(e->str, s, n) == 0;
}

/* A pushed message on the SUBSCRIBE connection: deliver it, or note the
 * subscription count Redis confirmed. */
static void on_push(redis_impl *r, const redisReply *rep) {
  if (rep->elements >= 3 && reply_is(rep->element[0], "message") &&
      rep->element[1]->type == REDIS_REPLY_STRING && rep->element[2]->type == REDIS_REPLY_STRING) {
    const redisReply *ch = rep->element[1], *data = rep->element[2];
    if ((size_t)ch->len <= r->prefix_len || memcmp(ch->str, r->prefix, r->prefix_len) != 0) {
      stats(r)->invalid++;
      return;
    }
    (void)wire_broker_deliver(r->s, ch->str + r->prefix_len, (size_t)ch->len - r->prefix_len,
                              data->str, (size_t)data->len);
    return;
  }
  if (rep->elements >= 3 &&
      (reply_is(rep->element[0], "subscribe") || reply_is(rep->element[0], "unsubscribe")) &&
      rep->element[2]->type == REDIS_REPLY_INTEGER) {
    stats(r)->channels = (uint64_t)rep->element[2]->integer;
    const redisReply *ch = rep->element[1];
    if (reply_is(rep->element[0], "subscribe") && ch->type == REDIS_REPLY_STRING &&
        (size_t)ch->len > r->prefix_len && memcmp(ch->str, r->prefix, r->prefix_len) == 0)
      wire__broker_subscribed(r->s, ch->str + r->prefix_len, (size_t)ch->len - r->prefix_len);
  }
}

static int hpub_send(redis_impl *r, hpub *p, int eval);

/* The publish connection is ready: the history publishes that waited for it
 * leave, in order. */
static void send_waiting(redis_impl *r) {
  while (r->wait != NULL) {
    hpub *p = r->wait;
    hpub *nx = p->next;
    if (hpub_send(r, p, 0) != 0)
      break; /* no memory: they wait for the next connection */
    r->wait = nx;
    r->wait_bytes -= p->tlen + p->jlen;
  }
  if (r->wait == NULL)
    r->wait_tail = NULL;
  update_pending(r);
  schedule_flush(r);
}

/* A reply on the publish connection: a history publish's (NOSCRIPT: sent
 * again with EVAL) or a PUBLISH's. */
static void on_pub_reply(rlink *l, const redisReply *rep) {
  redis_impl *r = l->r;
  uint64_t k = l->got++;
  hpub *p = l->hq;
  if (p == NULL || p->idx != k) {
    if (rep->type == REDIS_REPLY_ERROR)
      stats(r)->dropped++; /* a PUBLISH Redis refused */
    return;
  }
  l->hq = p->next;
  if (l->hq == NULL)
    l->hq_tail = NULL;
  if (rep->type == REDIS_REPLY_ERROR && rep->len >= 8 && memcmp(rep->str, "NOSCRIPT", 8) == 0 &&
      hpub_send(r, p, 1) == 0) {
    schedule_flush(r);
    return; /* queued again, p with it */
  }
  if (rep->type == REDIS_REPLY_ERROR)
    stats(r)->dropped++;
  free(p);
}

/* Returns 0, or -1 when the link was dropped (stop reading replies). */
static int on_reply(rlink *l, const redisReply *rep) {
  redis_impl *r = l->r;
  if (l->setup_left > 0) {
    if (rep->type == REDIS_REPLY_ERROR) {
      lost(r, "connection setup refused: %.*s", (int)rep->len, rep->str);
      return -1;
    }
    if (--l->setup_left == 0) {
      l->ready = 1;
      if (!l->is_sub)
        send_waiting(r);
      maybe_up(r);
    }
    return 0;
  }
  if (l->is_sub && rep->type == REDIS_REPLY_ARRAY)
    on_push(r, rep);
  else if (!l->is_sub)
    on_pub_reply(l, rep);
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  rlink *l = h->data;
  (void)suggested;
  *buf = uv_buf_init(l->rbuf, LINK_RBUF);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  rlink *l = st->data;
  redis_impl *r = l->r;
  if (nread == 0)
    return;
  if (nread < 0) {
    lost(r, "%s", nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
    return;
  }
  if (redisReaderFeed(l->reader, buf->base, (size_t)nread) != REDIS_OK) {
    lost(r, "out of memory reading replies");
    return;
  }
  if (l->reader->len - l->reader->pos > MAX_REPLY) { /* memory stays bounded */
    stats(r)->invalid++;
    lost(r, "a reply over %u bytes", MAX_REPLY);
    return;
  }
  wire__enter(r->s); /* deliveries of this read leave in one write per connection */
  for (;;) {
    void *rep = NULL;
    if (redisReaderGetReply(l->reader, &rep) != REDIS_OK) {
      lost(r, "protocol error: %s", l->reader->errstr);
      break;
    }
    if (rep == NULL)
      break;
    int stop = on_reply(l, rep);
    freeReplyObject(rep);
    if (stop || l->reader == NULL) /* dropped, or closed by a callback it ran */
      break;
  }
  wire__leave(r->s);
}

/* TCP is up: authenticate, select the database, ping; the SUBSCRIBE
 * connection then subscribes to every topic with local subscribers. */
static void on_connect(uv_connect_t *req, int status) {
  rlink *l = req->data;
  redis_impl *r = l->r;
  if (status == UV_ECANCELED || r->closing)
    return;
  if (status < 0) {
    lost(r, "cannot connect: %s", uv_strerror(status));
    return;
  }
  l->connected = 1;
  uv_tcp_nodelay(&l->tcp, 1);
  if (uv_read_start((uv_stream_t *)&l->tcp, alloc_cb, read_cb) != 0) {
    lost(r, "cannot read");
    return;
  }
  const wire__redis_url *u = &r->url;
  if (u->password != NULL) {
    const char *a[3] = {"AUTH", u->user, u->password};
    size_t na[3] = {4, u->user ? strlen(u->user) : 0, strlen(u->password)};
    if (u->user == NULL) {
      a[1] = u->password;
      na[1] = na[2];
    }
    (void)out_cmd(l, u->user ? 3 : 2, a, na, NULL, NULL);
    l->setup_left++;
  }
  if (u->db != 0) {
    char db[16];
    const char *a[2] = {"SELECT", db};
    size_t na[2] = {6, (size_t)snprintf(db, sizeof db, "%d", u->db)};
    (void)out_cmd(l, 2, a, na, NULL, NULL);
    l->setup_left++;
  }
  const char *ping[1] = {"PING"};
  size_t nping[1] = {4};
  (void)out_cmd(l, 1, ping, nping, NULL, NULL);
  l->setup_left++;
  if (!l->is_sub) { /* EVALSHA finds the history script (NOSCRIPT falls back to EVAL) */
    const char *a[3] = {"SCRIPT", "LOAD", PUBLISH_LUA};
    size_t na[3] = {6, 4, sizeof PUBLISH_LUA - 1};
    (void)out_cmd(l, 3, a, na, NULL, NULL);
    l->setup_left++;
  }
  if (l->is_sub)
    subscribe_all(r);
  schedule_flush(r);
}

/* The address to connect to: IP literals and localhost directly, other
 * names through the resolver (synchronously, at each attempt). */
static int resolve(redis_impl *r, struct sockaddr_storage *ss) {
  const char *h = strcmp(r->url.host, "localhost") == 0 ? "127.0.0.1" : r->url.host;
  if (uv_ip4_addr(h, r->url.port, (struct sockaddr_in *)ss) == 0 ||
      uv_ip6_addr(h, r->url.port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  uv_getaddrinfo_t gai;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char port[8];
  snprintf(port, sizeof port, "%d", r->url.port);
  int e = uv_getaddrinfo(r->loop, &gai, NULL, r->url.host, port, &hints);
  if (e != 0)
    return e;
  memcpy(ss, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
  uv_freeaddrinfo(gai.addrinfo);
  return 0;
}

static int link_open(redis_impl *r, rlink *l, const struct sockaddr *addr) {
  l->reader = redisReaderCreate();
  if (l->reader == NULL)
    return UV_ENOMEM;
  int e = uv_tcp_init(r->loop, &l->tcp);
  if (e != 0)
    return e;
  l->tcp.data = l;
  l->open = 1;
  wire_broker_hold(r->s);
  uv_unref((uv_handle_t *)&l->tcp); /* the broker never keeps a loop alive by itself */
  l->creq.data = l;
  return uv_tcp_connect(&l->creq, &l->tcp, addr, on_connect);
}

static void connect_all(redis_impl *r) {
  struct sockaddr_storage ss;
  int e = resolve(r, &ss);
  if (e != 0) {
    lost(r, "cannot resolve the host: %s", uv_strerror(e));
    return;
  }
  for (int i = 0; i < 2; i++) {
    e = link_open(r, &r->links[i], (const struct sockaddr *)&ss);
    if (e != 0) {
      lost(r, "cannot connect: %s", uv_strerror(e));
      return;
    }
  }
  r->connecting = 1;
  uv_timer_start(&r->timer, timer_cb, CONNECT_TIMEOUT_MS, 0);
  r->s->kick = 1; /* host-driven, outside uv_run: the new watchers need a poll */
  wire__wake_host(r->s);
}

/* ---- the engine -------------------------------------------------------------- */

/* Whether n more publish bytes would pass the bound (reported once). */
static int queue_full(redis_impl *r, size_t n) {
  rlink *l = PUB(r);
  if (l->out_len + l->inflight + r->wait_bytes + n <= r->max_pending)
    return 0;
  if (!r->overflow) {
    r->overflow = 1;
    r->drops_at = stats(r)->dropped;
    report(r, stats(r)->state,
           "publish queue to Redis is over %zu bytes (Redis reads too slowly): publishes "
           "to other processes are dropped and counted until it drains",
           r->max_pending);
  }
  return 1;
}

static int r_publish(void *impl, const char *topic, size_t len, const void *env, size_t n) {
  redis_impl *r = impl;
  rlink *l = PUB(r);
  if (r->closing || !l->connected)
    return WIRE_ECLOSED;
  if (queue_full(r, n))
    return WIRE_EBACKPRESSURE;
  const char *a[3] = {"PUBLISH", r->prefix, env};
  size_t na[3] = {7, r->prefix_len, n};
  const char *b[3] = {NULL, topic, NULL};
  size_t nb[3] = {0, len, 0};
  if (out_cmd(l, 3, a, na, b, nb) != 0)
    return WIRE_ENOMEM;
  l->sent++;
  update_pending(r);
  schedule_flush(r);
  return 0;
}

/* ---- shared history -------------------------------------------------------------- */

/* A fresh epoch candidate (used only when the topic has none in Redis). */
static uint64_t fresh_epoch(redis_impl *r) {
  uint64_t z = (wire_server_origin(r->s) + 0x9e3779b97f4a7c15ull * ++r->epochs) ^ uv_hrtime();
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Queue p's EVALSHA (eval: EVAL with the script) and append p to the
 * waiting list. Returns 0 or WIRE_ENOMEM. */
static int hpub_send(redis_impl *r, hpub *p, int eval) {
  rlink *l = PUB(r);
  char maxlen[16], ttl[24], fresh[20], origin[20], ctr[24];
  const char *resent = p->resent ? "1" : "0";
  const char *topic = p->data;
  const char *a[13] = {eval ? "EVAL" : "EVALSHA",
                       eval ? PUBLISH_LUA : r->sha,
                       "2",
                       r->hkey,
                       r->mkey,
                       p->data + p->tlen,
                       maxlen,
                       ttl,
                       r->prefix,
                       fresh,
                       origin,
                       ctr,
                       resent};
  size_t na[13] = {eval ? 4u : 7u,
                   eval ? sizeof PUBLISH_LUA - 1 : 40,
                   1,
                   strlen(r->hkey),
                   strlen(r->mkey),
                   p->jlen,
                   (size_t)snprintf(maxlen, sizeof maxlen, "%u", p->maxlen),
                   (size_t)snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)p->ttl_ms),
                   r->prefix_len,
                   (size_t)snprintf(fresh, sizeof fresh, "%016llx", (unsigned long long)p->fresh),
                   (size_t)snprintf(origin, sizeof origin, "%016llx",
                                    (unsigned long long)wire_server_origin(r->s)),
                   (size_t)snprintf(ctr, sizeof ctr, "%llu", (unsigned long long)p->ctr),
                   1};
  const char *b[13] = {NULL, NULL,  NULL, topic, topic, NULL, NULL,
                       NULL, topic, NULL, NULL,  NULL,  NULL};
  size_t nb[13] = {0, 0, 0, p->tlen, p->tlen, 0, 0, 0, p->tlen, 0, 0, 0, 0};
  if (out_cmd(l, 13, a, na, b, nb) != 0)
    return WIRE_ENOMEM;
  p->idx = l->sent++;
  p->next = NULL;
  if (l->hq_tail)
    l->hq_tail->next = p;
  else
    l->hq = p;
  l->hq_tail = p;
  return 0;
}

static int r_hpublish(void *impl, const char *topic, size_t len, const void *json, size_t n,
                      unsigned maxlen, uint64_t ttl_ms) {
  redis_impl *r = impl;
  if (r->closing)
    return WIRE_ECLOSED;
  if (queue_full(r, n + len))
    return WIRE_EBACKPRESSURE;
  hpub *p = malloc(sizeof *p + len + n);
  if (p == NULL)
    return WIRE_ENOMEM;
  p->maxlen = maxlen;
  p->ttl_ms = ttl_ms;
  p->fresh = fresh_epoch(r);
  p->ctr = ++r->hctr;
  p->resent = 0;
  p->tlen = len;
  p->jlen = n;
  p->next = NULL;
  memcpy(p->data, topic, len);
  memcpy(p->data + len, json, n);
  if (!PUB(r)->ready || r->wait != NULL) { /* Redis away: sent once it is back, in order */
    if (r->wait_tail)
      r->wait_tail->next = p;
    else
      r->wait = p;
    r->wait_tail = p;
    r->wait_bytes += len + n;
    update_pending(r);
    return 0;
  }
  if (hpub_send(r, p, 0) != 0) {
    free(p);
    return WIRE_ENOMEM;
  }
  update_pending(r);
  schedule_flush(r);
  return 0;
}

/* The blocking connection for fetches, (re)made when needed; NULL while
 * Redis is away after it was up (the async connections know: no waiting on
 * a dead host). Before the first connection is up it is tried: a subscribe
 * at startup does not depend on which connects first. */
static redisContext *sync_ctx(redis_impl *r) {
  if (r->sync != NULL && r->sync->err == 0)
    return r->sync;
  if (r->sync != NULL) {
    redisFree(r->sync);
    r->sync = NULL;
  }
  if (r->closing || (r->up_once && !SUB(r)->ready && !PUB(r)->ready))
    return NULL;
  struct timeval tv = {0, FETCH_TIMEOUT_MS * 1000};
  redisContext *c = redisConnectWithTimeout(r->url.host, r->url.port, tv);
  if (c == NULL || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
    if (c)
      redisFree(c);
    return NULL;
  }
  const wire__redis_url *u = &r->url;
  redisReply *rep = NULL;
  int ok = 1;
  if (u->password != NULL) {
    rep = u->user ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                  : redisCommand(c, "AUTH %s", u->password);
    ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
    if (rep)
      freeReplyObject(rep);
  }
  if (ok && u->db != 0) {
    rep = redisCommand(c, "SELECT %d", u->db);
    ok = rep != NULL && rep->type != REDIS_REPLY_ERROR;
    if (rep)
      freeReplyObject(rep);
  }
  if (!ok) {
    redisFree(c);
    return NULL;
  }
  r->sync = c;
  return c;
}

/* "<seq>-<n>" → seq (0: not an id). */
static uint64_t id_seq(const redisReply *id) {
  uint64_t q = 0;
  if (id->type != REDIS_REPLY_STRING)
    return 0;
  for (size_t i = 0; i < id->len && id->str[i] != '-'; i++) {
    if (id->str[i] < '0' || id->str[i] > '9' || q > UINT64_MAX / 10 - 1)
      return 0;
    q = q * 10 + (uint64_t)(id->str[i] - '0');
  }
  return q;
}

/* A string or integer reply as a number in base (0 on anything else). */
static uint64_t rep_num(const redisReply *e, int base) {
  if (e->type == REDIS_REPLY_INTEGER)
    return (uint64_t)e->integer;
  if (e->type != REDIS_REPLY_STRING)
    return 0;
  char buf[32];
  snprintf(buf, sizeof buf, "%.*s", (int)e->len, e->str);
  return strtoull(buf, NULL, base);
}

/* The entries of an XRANGE reply into out (reversed: XREVRANGE). */
static int read_entries(const redisReply *arr, int reversed, wire__hfetch *out) {
  out->items = calloc(arr->elements ? arr->elements : 1, sizeof *out->items);
  if (out->items == NULL)
    return WIRE_ENOMEM;
  for (size_t i = 0; i < arr->elements; i++) {
    const redisReply *e = arr->element[reversed ? arr->elements - 1 - i : i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
      continue;
    const redisReply *kv = e->element[1];
    uint64_t seq = id_seq(e->element[0]);
    for (size_t k = 0; seq != 0 && k + 1 < kv->elements; k += 2)
      if (reply_is(kv->element[k], "d") && kv->element[k + 1]->type == REDIS_REPLY_STRING) {
        wire__hitem *it = &out->items[out->n++];
        it->seq = seq;
        it->json = kv->element[k + 1]->str;
        it->len = kv->element[k + 1]->len;
        break;
      }
  }
  return 0;
}

static void r_fetch_free(wire__hfetch *f) {
  if (f->own_)
    freeReplyObject(f->own_);
  free(f->items);
  memset(f, 0, sizeof *f);
}

static int r_fetch(void *impl, const char *topic, size_t len, uint64_t epoch, uint64_t after,
                   unsigned count, uint64_t ttl_ms, wire__hfetch *out) {
  redis_impl *r = impl;
  memset(out, 0, sizeof *out);
  redisContext *c = sync_ctx(r);
  if (c == NULL)
    return WIRE_ECLOSED;
  size_t hl = strlen(r->hkey), ml = strlen(r->mkey);
  char *keys = malloc(hl + ml + 2 * len);
  if (keys == NULL)
    return WIRE_ENOMEM;
  memcpy(keys, r->hkey, hl);
  memcpy(keys + hl, topic, len);
  memcpy(keys + hl + len, r->mkey, ml);
  memcpy(keys + hl + len + ml, topic, len);
  char ep[20], start[32], cnt[16], ttl[24], fresh[20], aft[24];
  const char *argv[11] = {"EVAL", FETCH_LUA, "2",   keys, keys + hl + len, ep, start,
                          cnt,    ttl,       fresh, aft};
  size_t lens[11] = {
      4,
      sizeof FETCH_LUA - 1,
      1,
      hl + len,
      ml + len,
      (size_t)snprintf(ep, sizeof ep, "%016llx", (unsigned long long)epoch),
      (size_t)snprintf(start, sizeof start, "%llu-0", (unsigned long long)after + 1),
      (size_t)snprintf(cnt, sizeof cnt, "%u", count),
      (size_t)snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)ttl_ms),
      (size_t)snprintf(fresh, sizeof fresh, "%016llx", (unsigned long long)fresh_epoch(r)),
      (size_t)snprintf(aft, sizeof aft, "%llu", (unsigned long long)after)};
  redisReply *rep = redisCommandArgv(c, 11, argv, lens);
  if (rep == NULL) { /* a connection from before an outage: once more on a new one */
    redisFree(r->sync);
    r->sync = NULL;
    if ((c = sync_ctx(r)) != NULL)
      rep = redisCommandArgv(c, 11, argv, lens);
  }
  free(keys);
  if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
      rep->element[2]->type != REDIS_REPLY_ARRAY) {
    if (rep)
      freeReplyObject(rep);
    else if (r->sync != NULL) { /* an I/O error or the timeout: a new connection next time */
      redisFree(r->sync);
      r->sync = NULL;
    }
    return WIRE_ECLOSED;
  }
  out->own_ = rep;
  out->epoch = rep_num(rep->element[0], 16);
  out->seq = rep_num(rep->element[1], 10);
  if (read_entries(rep->element[2], count != 0, out) != 0) {
    r_fetch_free(out);
    return WIRE_ENOMEM;
  }
  return 0;
}

static const wire__hops redis_hops = {r_hpublish, r_fetch, r_fetch_free};

static void r_topic(void *impl, const char *topic, size_t len, int subscribed) {
  redis_impl *r = impl;
  if (r->closing || !SUB(r)->connected)
    return; /* the next connection subscribes to whatever has subscribers then */
  if (sub_cmd(r, subscribed ? "SUBSCRIBE" : "UNSUBSCRIBE", &topic, &len, 1) == 0)
    schedule_flush(r);
}

static void handle_close_cb(uv_handle_t *h) {
  redis_impl *r = h->data;
  wire_broker_release(r->s);
}

static void r_close(void *impl) {
  redis_impl *r = impl;
  if (r->closing)
    return;
  link_flush(PUB(r)); /* what the socket takes now still leaves */
  r->closing = 1;
  while (r->wait != NULL) { /* history publishes that never left: dropped */
    hpub *p = r->wait;
    r->wait = p->next;
    free(p);
    stats(r)->dropped++;
  }
  r->wait_tail = NULL;
  r->wait_bytes = 0;
  link_close(SUB(r));
  link_close(PUB(r));
  if (r->timer_open) {
    r->timer_open = 0;
    uv_close((uv_handle_t *)&r->timer, handle_close_cb);
  }
  if (r->prep_open) {
    r->prep_open = 0;
    uv_close((uv_handle_t *)&r->prep, handle_close_cb);
  }
}

static void r_free(void *impl) {
  redis_impl *r = impl;
  if (r == NULL)
    return;
  for (int i = 0; i < 2; i++) {
    if (r->links[i].reader)
      redisReaderFree(r->links[i].reader);
    free(r->links[i].out);
    while (r->links[i].hq != NULL) {
      hpub *p = r->links[i].hq;
      r->links[i].hq = p->next;
      free(p);
    }
  }
  while (r->wait != NULL) {
    hpub *p = r->wait;
    r->wait = p->next;
    free(p);
  }
  if (r->sync)
    redisFree(r->sync);
  wire__redis_url_free(&r->url);
  free(r->prefix);
  free(r->hkey);
  free(r->mkey);
  free(r);
}

static const wire_broker_engine redis_engine = {r_publish, r_topic, r_close, r_free};

static int redis_new(wire_server *s, const char *url, const wire_redis_options *o, redis_impl **out,
                     wire_error *err) {
  redis_impl *r = calloc(1, sizeof *r);
  if (r == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  int e = wire__redis_url_parse(url, &r->url, err);
  const char *prefix = o && o->prefix ? o->prefix : "wirecore:";
  size_t pl = strlen(prefix);
  if (e == 0 && ((r->prefix = strdup(prefix)) == NULL || (r->hkey = malloc(pl + 3)) == NULL ||
                 (r->mkey = malloc(pl + 4)) == NULL))
    e = wire__error_set(err, WIRE_ENOMEM, "out of memory");
  if (e == 0) {
    snprintf(r->hkey, pl + 3, "%sh:", prefix);
    snprintf(r->mkey, pl + 4, "%shm:", prefix);
    uint8_t md[20]; /* EVALSHA's name of the script */
    wire__sha1(PUBLISH_LUA, sizeof PUBLISH_LUA - 1, md);
    for (int i = 0; i < 20; i++)
      snprintf(r->sha + 2 * i, 3, "%02x", md[i]);
  }
  if (e != 0) {
    r_free(r);
    return e;
  }
  r->s = s;
  r->loop = wire_server_loop(s);
  r->prefix_len = strlen(prefix);
  r->max_pending = o && o->max_pending_bytes ? o->max_pending_bytes : DEFAULT_PENDING;
  r->min_ms = o && o->reconnect_min_ms ? o->reconnect_min_ms : 100;
  r->max_ms = o && o->reconnect_max_ms ? o->reconnect_max_ms : 2000;
  if (r->max_ms < r->min_ms)
    r->max_ms = r->min_ms;
  r->delay_ms = r->min_ms;
  for (int i = 0; i < 2; i++) {
    r->links[i].r = r;
    r->links[i].is_sub = i == 0;
  }
  *out = r;
  return 0;
}

/* The timer (connect deadline, retry delay) and the flush handle; neither
 * keeps the loop alive. */
static int redis_handles(redis_impl *r) {
  if (uv_timer_init(r->loop, &r->timer) != 0)
    return WIRE_EUV;
  r->timer.data = r;
  r->timer_open = 1;
  wire_broker_hold(r->s);
  uv_unref((uv_handle_t *)&r->timer);
  if (uv_prepare_init(r->loop, &r->prep) != 0)
    return WIRE_EUV;
  r->prep.data = r;
  r->prep_open = 1;
  wire_broker_hold(r->s);
  uv_unref((uv_handle_t *)&r->prep);
  return 0;
}

int wire_server_use_redis(wire_server *s, const char *url, const wire_redis_options *opts,
                          wire_error *err) {
  if (s == NULL || url == NULL)
    return wire__error_set(err, WIRE_EINVAL, "server and URL are required");
  if (s->broker != NULL)
    return wire__error_set(err, WIRE_ESTATE, "the server has a broker already");
  redis_impl *r = NULL;
  int e = redis_new(s, url, opts, &r, err);
  if (e != 0)
    return e;
  e = wire_server_set_broker(s, &redis_engine, r);
  if (e != 0)
    return wire__error_set(err, e, "cannot attach the broker: %s", wire_strerror(e));
  s->broker->hops = &redis_hops; /* history topics live in Redis Streams */
  if (redis_handles(r) != 0) {
    r_close(r);
    return wire__error_set(err, WIRE_EUV, "cannot create the broker's loop handles");
  }
  wire__enter(s);
  connect_all(r);
  wire__leave(s);
  return 0;
}
