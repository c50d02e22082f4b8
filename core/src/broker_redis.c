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

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_RBUF 16384u
#define SUB_BATCH 256u              /* channels per SUBSCRIBE when re-subscribing */
#define DEFAULT_PENDING (16u << 20) /* publish bytes waiting for Redis */
#define CONNECT_TIMEOUT_MS 3000u

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
  size_t pending = PUB(r)->out_len + PUB(r)->inflight;
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

/* After a (re)connect: subscribe to every topic that has local subscribers. */
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
}

/* ---- connection lifecycle -------------------------------------------------- */

static void connect_all(redis_impl *r);

static void link_close_cb(uv_handle_t *h) {
  rlink *l = h->data;
  l->open = 0;
  wire_broker_release(l->r->s);
}

static void link_close(rlink *l) {
  l->connected = l->ready = 0;
  l->setup_left = 0;
  l->out_len = 0;
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
      rep->element[2]->type == REDIS_REPLY_INTEGER)
    stats(r)->channels = (uint64_t)rep->element[2]->integer;
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
      maybe_up(r);
    }
    return 0;
  }
  if (l->is_sub && rep->type == REDIS_REPLY_ARRAY)
    on_push(r, rep);
  else if (rep->type == REDIS_REPLY_ERROR)
    stats(r)->dropped += l->is_sub ? 0 : 1; /* a PUBLISH Redis refused */
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

static int r_publish(void *impl, const char *topic, size_t len, const void *env, size_t n) {
  redis_impl *r = impl;
  rlink *l = PUB(r);
  if (r->closing || !l->connected)
    return WIRE_ECLOSED;
  if (l->out_len + l->inflight + n > r->max_pending) {
    if (!r->overflow) {
      r->overflow = 1;
      r->drops_at = stats(r)->dropped;
      report(r, stats(r)->state,
             "publish queue to Redis is over %zu bytes (Redis reads too slowly): publishes "
             "to other processes are dropped and counted until it drains",
             r->max_pending);
    }
    return WIRE_EBACKPRESSURE;
  }
  const char *a[3] = {"PUBLISH", r->prefix, env};
  size_t na[3] = {7, r->prefix_len, n};
  const char *b[3] = {NULL, topic, NULL};
  size_t nb[3] = {0, len, 0};
  if (out_cmd(l, 3, a, na, b, nb) != 0)
    return WIRE_ENOMEM;
  update_pending(r);
  schedule_flush(r);
  return 0;
}

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
  }
  wire__redis_url_free(&r->url);
  free(r->prefix);
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
  if (e == 0 && (r->prefix = strdup(prefix)) == NULL)
    e = wire__error_set(err, WIRE_ENOMEM, "out of memory");
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
  if (redis_handles(r) != 0) {
    r_close(r);
    return wire__error_set(err, WIRE_EUV, "cannot create the broker's loop handles");
  }
  wire__enter(s);
  connect_all(r);
  wire__leave(s);
  return 0;
}
