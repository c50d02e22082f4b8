/*
 * history.c -- topic history in the process: the rules (exact names and
 * prefixes), positions ("<epoch>:<seq>", parsed and written here), one ring
 * of retained JSON envelope frames per topic (shared with the publish that
 * made them), their expiry, and recovery: wire_conn_subscribe_since replays
 * what a subscriber missed (transcoded for MessagePack endpoints) or tells
 * it that it cannot.
 */
#include "history.h"
#include "broker.h"
#include "conn_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- positions ---------------------------------------------------------------- */

int wire_position_parse(const char *s, size_t len, uint64_t *epoch, uint64_t *seq) {
  if (s == NULL || len < 18 || len > 16 + 1 + 20 || s[16] != ':')
    return WIRE_EINVAL;
  uint64_t e = 0, q = 0;
  for (size_t i = 0; i < 16; i++) {
    char ch = s[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (d < 0)
      return WIRE_EINVAL;
    e = e << 4 | (uint64_t)d;
  }
  if (len > 18 && s[17] == '0') /* one spelling per number */
    return WIRE_EINVAL;
  for (size_t i = 17; i < len; i++) {
    if (s[i] < '0' || s[i] > '9' || q > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
      return WIRE_EINVAL;
    q = q * 10 + (uint64_t)(s[i] - '0');
  }
  if (epoch)
    *epoch = e;
  if (seq)
    *seq = q;
  return 0;
}

/* Write "<epoch>:<seq>" into buf (WIRE_POSITION_MAX bytes); returns its length. */
static int position_write(char *buf, uint64_t epoch, uint64_t seq) {
  return snprintf(buf, WIRE_POSITION_MAX, "%016llx:%llu", (unsigned long long)epoch,
                  (unsigned long long)seq);
}

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}

/* ---- rules ------------------------------------------------------------------ */

/* The rule for a topic: exact first, then the longest prefix; NULL: none. */
static wire__hrule *rule_for(const wire__history *H, const char *name, size_t len) {
  wire__hrule *best = NULL;
  for (size_t i = 0; i < H->n_rules; i++) {
    wire__hrule *r = H->rules[i];
    if (!r->prefix) {
      if (r->len == len && memcmp(r->pattern, name, len) == 0)
        return r;
    } else if (r->len <= len && memcmp(r->pattern, name, r->len) == 0 &&
               (best == NULL || r->len > best->len)) {
      best = r;
    }
  }
  return best;
}

int wire_server_topic_history(wire_server *s, const char *pattern, size_t len, unsigned n,
                              uint64_t ttl_ms) {
  if (s == NULL || pattern == NULL || len == 0 || len > WIRE_MAX_TOPIC_LENGTH || n == 0 ||
      n > WIRE_MAX_HISTORY)
    return WIRE_EINVAL;
  wire__topics *T = &s->topics;
  if (T->hist == NULL && (T->hist = calloc(1, sizeof *T->hist)) == NULL)
    return WIRE_ENOMEM;
  wire__history *H = T->hist;
  int prefix = pattern[len - 1] == '*';
  size_t plen = len - (size_t)prefix;
  for (size_t i = 0; i < H->n_rules; i++)
    if (H->rules[i]->prefix == prefix && H->rules[i]->len == plen &&
        memcmp(H->rules[i]->pattern, pattern, plen) == 0)
      return WIRE_ESTATE;
  if (H->n_rules == WIRE__HIST_MAX_RULES)
    return WIRE_ENOMEM;
  wire__hrule *r = calloc(1, sizeof *r);
  if (r == NULL)
    return WIRE_ENOMEM;
  memcpy(r->pattern, pattern, plen);
  r->len = plen;
  r->prefix = prefix;
  r->n = n;
  r->ttl_ms = ttl_ms;
  H->rules[H->n_rules++] = r;
  return 0;
}

/* ---- one topic's history -------------------------------------------------------- */

static wire__hentry *entry_at(const wire__hist *h, uint32_t i) {
  return &h->ring[(h->head + i) % h->cap];
}

/* The oldest retained seq (h->seq + 1 when nothing is retained). */
static uint64_t first_seq(const wire__hist *h) {
  return h->seq - h->count + 1;
}

static void drop_oldest(wire__hist *h) {
  wire__sbuf_release(h->ring[h->head].frame);
  h->head = (h->head + 1) % h->cap;
  h->count--;
}

/* Drop the entries older than the rule's ttl. */
static void drop_expired(wire__hist *h, uint64_t now) {
  uint64_t ttl = h->rule->ttl_ms;
  while (ttl > 0 && h->count > 0 && now - h->ring[h->head].at_ms >= ttl)
    drop_oldest(h);
}

static void lru_unlink(wire__hist *h) {
  wire__hrule *r = h->rule;
  if (h->prev)
    h->prev->next = h->next;
  else
    r->oldest = h->next;
  if (h->next)
    h->next->prev = h->prev;
  else
    r->newest = h->prev;
  h->prev = h->next = NULL;
}

static void lru_append(wire__hist *h) {
  wire__hrule *r = h->rule;
  h->prev = r->newest;
  h->next = NULL;
  if (r->newest)
    r->newest->next = h;
  else
    r->oldest = h;
  r->newest = h;
}

/* Free a history; `channel`: tell the broker when no subscriber keeps the
 * topic's channel either. */
static void hist_free(wire_server *s, wire__hist *h, int channel) {
  wire__history *H = s->topics.hist;
  while (h->count > 0)
    drop_oldest(h);
  lru_unlink(h);
  wire__htab_remove(&H->topics, &h->h);
  if (channel && wire__topics_subscribers(s, h->name, h->len) == 0)
    wire__broker_topic(s, h->name, h->len, 0);
  free(h->origins);
  free(h->ring);
  free(h);
}

/* Free the histories published to last more than ttl ago, unless their topic
 * has subscribers here (those keep their epoch; their entries still expire). */
static void sweep(wire_server *s, uint64_t now) {
  wire__history *H = s->topics.hist;
  if (H->busy > 0)
    return;
  for (size_t i = 0; i < H->n_rules; i++) {
    wire__hrule *r = H->rules[i];
    for (int k = 0; k < 1024 && r->ttl_ms > 0 && r->oldest && now - r->oldest->last_ms >= r->ttl_ms;
         k++) {
      wire__hist *h = r->oldest;
      if (wire__topics_subscribers(s, h->name, h->len) > 0) {
        drop_expired(h, now);
        h->last_ms = now;
        lru_unlink(h);
        lru_append(h);
      } else {
        hist_free(s, h, 1);
      }
    }
  }
}

static wire__hist *hist_find(const wire__history *H, const char *name, size_t len, uint64_t hash) {
  for (wire__hnode *n = wire__htab_chain(&H->topics, hash); n; n = n->next) {
    wire__hist *h = (wire__hist *)n;
    if (n->hash == hash && h->len == len && memcmp(h->name, name, len) == 0)
      return h;
  }
  return NULL;
}

/* A new history (a random epoch); it keeps the broker's channel of the
 * topic, so publications from other processes reach it with or without
 * local subscribers. */
static wire__hist *hist_new(wire_server *s, wire__hrule *r, const char *name, size_t len,
                            uint64_t hash, uint64_t now) {
  wire__history *H = s->topics.hist;
  if (wire__htab_reserve(&H->topics) != 0)
    return NULL;
  wire__hist *h = calloc(1, sizeof *h + len + 1);
  if (h == NULL)
    return NULL;
  h->h.hash = hash;
  h->rule = r;
  if (uv_random(NULL, NULL, &h->epoch, sizeof h->epoch, 0, NULL) != 0)
    h->epoch = uv_hrtime() ^ ((uint64_t)(uintptr_t)h << 16);
  h->last_ms = now;
  h->len = (uint32_t)len;
  memcpy(h->name, name, len);
  h->name[len] = 0;
  wire__htab_insert(&H->topics, &h->h);
  lru_append(h);
  if (wire__topics_subscribers(s, name, len) == 0)
    wire__broker_topic(s, name, len, 1);
  return h;
}

int wire__history_get(wire_server *s, const char *name, size_t len, int create, wire__hist **out) {
  *out = NULL;
  wire__history *H = s->topics.hist;
  if (H == NULL || H->n_rules == 0)
    return 0;
  uint64_t now = now_ms();
  sweep(s, now);
  uint64_t hash = wire__hash_bytes(s->topics.seed, name, len);
  wire__hist *h = hist_find(H, name, len, hash);
  if (h == NULL) {
    wire__hrule *r = rule_for(H, name, len);
    if (r == NULL || !create)
      return 0;
    if ((h = hist_new(s, r, name, len, hash, now)) == NULL)
      return WIRE_ENOMEM;
  }
  drop_expired(h, now);
  *out = h;
  return 0;
}

/* ---- publishing ---------------------------------------------------------------- */

static wire_doc *hdoc(wire__history *H) {
  if (H->doc == NULL && wire_doc_new(&H->doc) != 0)
    return NULL;
  return H->doc;
}

/* Add key = string to obj. NULL when memory runs out. */
static wire_value *set_str(wire_doc *d, wire_value *obj, const char *key, const char *s, size_t n) {
  wire_value *v = wire_new_string(d, s, n);
  return v ? wire_object_set(d, obj, key, strlen(key), v) : NULL;
}

wire_value *wire__history_envelope(wire_server *s, wire__hist *h, const wire_value *v) {
  wire_doc *d = hdoc(s->topics.hist);
  if (d == NULL)
    return NULL;
  char pos[WIRE_POSITION_MAX];
  int n = position_write(pos, h->epoch, h->seq + 1);
  wire_value *env = wire_new_object(d, 3);
  if (env == NULL || set_str(d, env, "topic", h->name, h->len) == NULL ||
      set_str(d, env, "offset", pos, (size_t)n) == NULL ||
      wire_object_set(d, env, "data", 4, v) == NULL)
    return NULL;
  return env;
}

/* Make room for one more entry: evict the oldest at n, else grow the ring.
 * Returns 0 or WIRE_ENOMEM. */
static int ring_reserve(wire__hist *h) {
  if (h->count < h->cap && h->count < h->rule->n)
    return 0;
  if (h->count >= h->rule->n) {
    drop_oldest(h);
    return 0;
  }
  uint32_t cap = h->cap ? h->cap * 2 : 8;
  if (cap > h->rule->n)
    cap = h->rule->n;
  wire__hentry *nr = malloc(cap * sizeof *nr);
  if (nr == NULL)
    return WIRE_ENOMEM;
  for (uint32_t i = 0; i < h->count; i++)
    nr[i] = *entry_at(h, i);
  free(h->ring);
  h->ring = nr;
  h->cap = cap;
  h->head = 0;
  return 0;
}

int wire__history_record(wire_server *s, wire__hist *h, wire__sbuf *frame) {
  if (ring_reserve(h) != 0)
    return WIRE_ENOMEM;
  uint64_t now = now_ms();
  wire__hentry *e = &h->ring[(h->head + h->count) % h->cap];
  e->seq = ++h->seq;
  e->at_ms = now;
  e->frame = frame;
  frame->refs++;
  h->count++;
  h->last_ms = now;
  lru_unlink(h);
  lru_append(h);
  (void)s;
  return 0;
}

void wire__history_done(wire_server *s) {
  wire__history *H = s->topics.hist;
  if (H != NULL && H->busy == 0 && H->doc != NULL)
    wire_doc_reset(H->doc);
}

/* ---- recovery ------------------------------------------------------------------ */

/* The payload of a shared frame (after its header). */
static const uint8_t *frame_payload(const wire__sbuf *b, size_t *n) {
  uint8_t l = b->data[1] & 0x7f;
  size_t hl = l == 126 ? 4 : l == 127 ? 10 : 2;
  *n = b->len - hl;
  return b->data + hl;
}

/* A MessagePack frame of a JSON envelope frame. NULL when it cannot be made. */
static wire__sbuf *transcode(wire_server *s, const wire__sbuf *json) {
  wire_doc *d = hdoc(s->topics.hist);
  if (d == NULL)
    return NULL;
  size_t n;
  const uint8_t *p = frame_payload(json, &n), *out;
  const wire_value *v;
  wire__sbuf *b = NULL;
  if (wire_decode(d, WIRE_CODEC_JSON, p, n, 0, &v, NULL) == 0 &&
      wire_encode(d, WIRE_CODEC_MSGPACK, v, &out, &n, NULL) == 0)
    b = wire__sbuf_frame(&s->topics, WSLAY_BINARY_FRAME, out, n);
  wire_doc_reset(d);
  return b;
}

/* Queue entries after `from` for c (one subscription, codec `codec`), in
 * order, stopping if c stops being open. Returns the number queued. */
static uint64_t replay(wire_server *s, wire_conn *c, uint8_t codec, wire__hist *h, uint64_t from,
                       uint64_t skip) {
  uint64_t sent = 0;
  for (uint64_t q = from + 1; q <= h->seq && c->state == WIRE__S_OPEN; q++) {
    if (q == skip)
      continue;
    if (q < first_seq(h))
      break; /* evicted meanwhile (a callback published): cannot happen within one call */
    wire__sbuf *b = entry_at(h, (uint32_t)(q - first_seq(h)))->frame;
    if (codec == WIRE_CODEC_MSGPACK) {
      wire__sbuf *m = transcode(s, b);
      if (m == NULL) {
        wire_conn_close(c, 1011, "history replay failed", 21);
        break;
      }
      sent += (uint64_t)wire__topics_deliver_one(s, c, m);
      wire__sbuf_release(m);
    } else {
      sent += (uint64_t)wire__topics_deliver_one(s, c, b);
    }
  }
  return sent;
}

/* The frame of {"topic","type":"truncated","offset":current} in codec cc
 * (JSON or MessagePack). NULL when memory runs out. */
static wire__sbuf *truncated_frame(wire_server *s, wire__hist *h, wire_codec cc) {
  wire_doc *d = hdoc(s->topics.hist);
  char pos[WIRE_POSITION_MAX];
  int n = position_write(pos, h->epoch, h->seq);
  wire_value *o = d ? wire_new_object(d, 3) : NULL;
  const uint8_t *out;
  size_t len;
  wire__sbuf *b = NULL;
  if (o && set_str(d, o, "topic", h->name, h->len) && set_str(d, o, "type", "truncated", 9) &&
      set_str(d, o, "offset", pos, (size_t)n) && wire_encode(d, cc, o, &out, &len, NULL) == 0)
    b = wire__sbuf_frame(&s->topics, cc == WIRE_CODEC_JSON ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
                         out, len);
  if (d)
    wire_doc_reset(d);
  return b;
}

/* Send {"topic","type":"truncated","offset"} to c in its codec. */
static void send_truncated(wire_server *s, wire_conn *c, uint8_t codec, wire__hist *h) {
  wire__sbuf *b =
      truncated_frame(s, h, codec == WIRE_CODEC_MSGPACK ? WIRE_CODEC_MSGPACK : WIRE_CODEC_JSON);
  if (b == NULL) {
    wire_conn_close(c, 1011, "history report failed", 21);
    return;
  }
  wire__topics_deliver_one(s, c, b);
  wire__sbuf_release(b);
}

/* Why `since` cannot be recovered against h (NULL: it can), *from = its seq. */
static const char *check_since(wire__hist *h, const char *since, size_t n, uint64_t *from) {
  uint64_t e, q;
  *from = h->seq;
  if (since == NULL || n == 0)
    return NULL;
  if (wire_position_parse(since, n, &e, &q) != 0)
    return "invalid";
  if (e != h->epoch)
    return "epoch";
  if (q > h->seq)
    return "invalid";
  if (q + 1 < first_seq(h))
    return "too_old";
  *from = q;
  return NULL;
}

/* Replay (leaving out `skip`, 0: none) or report on an open connection,
 * within one enter/leave. */
static uint64_t recover_now(wire_server *s, wire_conn *c, uint8_t codec, wire__hist *h,
                            const char *reason, uint64_t from, uint64_t skip) {
  uint64_t n = 0;
  wire__enter(s);
  s->topics.hist->busy++;
  if (reason)
    send_truncated(s, c, codec, h);
  else
    n = replay(s, c, codec, h, from, skip);
  s->topics.hist->busy--;
  wire__leave(s);
  return n;
}

static int shared_prepare(wire_server *s, wire__hist *h, const char *since, size_t n);

int wire_conn_subscribe_since(wire_conn *c, const char *name, size_t len, const char *since,
                              size_t since_len, wire_recovery *out) {
  if (out)
    memset(out, 0, sizeof *out);
  if (c == NULL || name == NULL || len == 0 || len > WIRE_MAX_TOPIC_LENGTH ||
      (since == NULL && since_len > 0))
    return WIRE_EINVAL;
  wire_server *s = WIRE__SRV(c);
  wire__hist *h;
  int r = wire__history_get(s, name, len, 1, &h);
  if (r != 0)
    return r;
  if (h == NULL)
    return WIRE_EINVAL;
  int had = wire__topics_conn_sub(c, name, len) != NULL;
  /* a shared history answers from Redis's numbers: loaded or caught up first */
  int unavailable = !had && wire__history_shared(s) && shared_prepare(s, h, since, since_len) != 0;
  if (!had && (r = wire_conn_subscribe(c, name, len)) != 0)
    return r;
  wire__sub *sub = wire__topics_conn_sub(c, name, len);
  uint64_t from = h->seq;
  const char *reason = had           ? NULL
                       : unavailable ? "unavailable"
                                     : check_since(h, since, since_len, &from);
  if (out) {
    out->recovered = reason == NULL;
    out->reason = reason;
    position_write(out->position, h->epoch, h->seq);
    out->replayed = had || reason ? 0 : h->seq - from;
  }
  if (had)
    return 0;
  if (c->state == WIRE__S_OPEN) {
    recover_now(s, c, sub->codec, h, reason, from, 0);
  } else {
    sub->pend = reason ? 2 : 1;
    sub->pend_epoch = h->epoch;
    sub->pend_seq = from;
    sub->pend_skip = 0;
  }
  return 0;
}

int wire_server_topic_position(wire_server *s, const char *name, size_t len, char *buf,
                               size_t cap) {
  if (s == NULL || name == NULL || len == 0 || len > WIRE_MAX_TOPIC_LENGTH || buf == NULL ||
      cap < WIRE_POSITION_MAX)
    return WIRE_EINVAL;
  wire__hist *h;
  int r = wire__history_get(s, name, len, 1, &h);
  if (r != 0)
    return r;
  if (h == NULL)
    return WIRE_EINVAL;
  if (wire__history_shared(s))
    (void)shared_prepare(s, h, NULL, 0); /* not loaded yet: Redis's position */
  return position_write(buf, h->epoch, h->seq);
}

void wire__history_subscribed(wire_conn *c, wire__sub *sub) {
  wire__hist *h;
  const wire__topic *t = sub->topic;
  if (wire__history_get(WIRE__SRV(c), t->name, t->len, 1, &h) != 0 || h == NULL)
    return;
  if (wire__history_shared(WIRE__SRV(c)))
    (void)shared_prepare(WIRE__SRV(c), h, NULL, 0);
  sub->pend = 1;
  sub->pend_epoch = h->epoch;
  sub->pend_seq = h->seq;
  sub->pend_skip = 0;
}

void wire__history_excluded(wire_conn *c, wire__hist *h) {
  wire__sub *sub = wire__topics_conn_sub(c, h->name, h->len);
  if (sub == NULL || sub->pend != 1 || sub->pend_epoch != h->epoch)
    return;
  if (sub->pend_seq + 1 == h->seq && sub->pend_skip == 0)
    sub->pend_seq = h->seq; /* the usual case: an announcement right after subscribing */
  else if (sub->pend_skip == 0)
    sub->pend_skip = h->seq;
  else /* a second one in the middle: no replay, an explicit report instead */
    sub->pend = 2;
}

void wire__history_conn_open(wire_conn *c) {
  wire_server *s = WIRE__SRV(c);
  for (uint32_t i = 0; c->topics != NULL && i < c->topics->n; i++) {
    wire__sub *sub = c->topics->items[i];
    if (sub->pend == 0)
      continue;
    int pend = sub->pend;
    sub->pend = 0;
    wire__hist *h;
    if (wire__history_get(s, sub->topic->name, sub->topic->len, 1, &h) != 0 || h == NULL) {
      wire_conn_close(c, 1011, "history unavailable", 19);
      return;
    }
    const char *reason = pend == 2 || h->epoch != sub->pend_epoch ? "epoch"
                         : sub->pend_seq + 1 < first_seq(h)       ? "too_old"
                                                                  : NULL;
    recover_now(s, c, sub->codec, h, reason, sub->pend_seq, sub->pend_skip);
  }
}

/* Drop what h keeps and give it a new epoch: positions of the old one are
 * reported as "epoch" from now on. */
static void new_epoch(wire__hist *h) {
  while (h->count > 0)
    drop_oldest(h);
  uint64_t old = h->epoch;
  if (uv_random(NULL, NULL, &h->epoch, sizeof h->epoch, 0, NULL) != 0 || h->epoch == old)
    h->epoch = old ^ uv_hrtime() ^ 0x9e3779b97f4a7c15ull;
  h->seq = 0;
}

/* Send the truncated message to every open subscriber of h's topic. Without
 * memory for it the new epoch still turns every old position into an
 * "epoch" report at the next subscribe. */
static void report_truncated(wire_server *s, wire__hist *h) {
  wire__sbuf *json = truncated_frame(s, h, WIRE_CODEC_JSON);
  wire__sbuf *mp = truncated_frame(s, h, WIRE_CODEC_MSGPACK);
  if (json != NULL && mp != NULL)
    wire__topics_deliver_codecs(s, h->name, h->len, json, mp);
  if (json)
    wire__sbuf_release(json);
  if (mp)
    wire__sbuf_release(mp);
}

void wire__history_lost(wire_server *s) {
  wire__history *H = s->topics.hist;
  if (H == NULL || H->topics.n == 0)
    return;
  /* First every history gets its new epoch, then the reports go out: a
   * callback they run (a close) may publish and reorder the lists. */
  wire__hist **all = malloc(H->topics.n * sizeof *all);
  size_t n = 0;
  H->busy++;
  for (size_t i = 0; i < H->n_rules; i++)
    for (wire__hist *h = H->rules[i]->oldest; h != NULL; h = h->next) {
      new_epoch(h);
      if (all != NULL)
        all[n++] = h;
    }
  for (size_t i = 0; i < n; i++)
    report_truncated(s, all[i]);
  free(all);
  H->busy--;
}

int wire__history_has(const wire_server *s, const char *name, size_t len) {
  const wire__history *H = s->topics.hist;
  return H != NULL && H->topics.n > 0 &&
         hist_find(H, name, len, wire__hash_bytes(s->topics.seed, name, len)) != NULL;
}

uint64_t wire__history_own_seq(wire_server *s, wire__hist *h) {
  return s->broker != NULL ? ++h->own_seq : 0;
}

#define MAX_ORIGINS 64u /* other processes tracked per topic */

void wire__history_seen(wire_server *s, const char *name, size_t len, uint64_t origin,
                        uint64_t seq) {
  wire__hist *h;
  if (wire__history_get(s, name, len, 1, &h) != 0 || h == NULL)
    return;
  for (uint32_t i = 0; i < h->n_origins; i++) {
    wire__horigin *o = &h->origins[i];
    if (o->origin != origin)
      continue;
    uint64_t last = o->last;
    o->last = seq;
    if (seq != last + 1) {
      s->topics.hist->busy++;
      new_epoch(h);
      report_truncated(s, h);
      s->topics.hist->busy--;
    }
    return;
  }
  /* The first publication seen from that process: nothing to compare with
   * (the history starts with this process's own view). Processes come and
   * go (restarts make new origins): past MAX_ORIGINS the longest known one
   * is forgotten, and is taken as new should it publish again. */
  if (h->n_origins == MAX_ORIGINS) {
    memmove(h->origins, h->origins + 1, (MAX_ORIGINS - 1) * sizeof *h->origins);
    h->n_origins--;
  }
  wire__horigin *no = realloc(h->origins, (h->n_origins + 1) * sizeof *no);
  if (no == NULL)
    return;
  h->origins = no;
  h->origins[h->n_origins].origin = origin;
  h->origins[h->n_origins].last = seq;
  h->n_origins++;
}

void wire__history_free(wire_server *s) {
  wire__history *H = s->topics.hist;
  if (H == NULL)
    return;
  for (size_t i = 0; i < H->n_rules; i++) {
    while (H->rules[i]->oldest)
      hist_free(s, H->rules[i]->oldest, 0);
    free(H->rules[i]);
  }
  wire__htab_free(&H->topics);
  wire_doc_free(H->doc);
  wire_doc_free(H->fdoc);
  free(H);
  s->topics.hist = NULL;
}

/* ---- shared history: Redis Streams through the broker's wire__hops ------------- */

int wire__history_shared(const wire_server *s) {
  return s->broker != NULL && s->broker->hops != NULL && !s->broker->closed;
}

int wire__history_send(wire_server *s, wire__hist *h, const wire_value *v, wire_error *err) {
  wire__broker *b = s->broker;
  wire_doc *d = hdoc(s->topics.hist);
  if (d == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  const uint8_t *json;
  size_t n;
  int r = wire_encode(d, WIRE_CODEC_JSON, v, &json, &n, err);
  if (r != 0) {
    wire__history_done(s);
    return r == WIRE_ENOMEM ? r : wire__error_set(err, WIRE_ESERIALIZE, "not JSON");
  }
  r = b->hops->publish(b->impl, h->name, h->len, json, n, h->rule->n, h->rule->ttl_ms);
  wire__history_done(s);
  if (r != 0) {
    b->stats.dropped++;
    return wire__error_set(err, r, "the shared history cannot take the publish: %s",
                           wire_strerror(r));
  }
  b->stats.published++;
  return 0;
}

/* Nothing is kept from before seq + 1: the ring restarts there and the
 * subscribers here are told (the truncated message). */
static void gap(wire_server *s, wire__hist *h, uint64_t seq) {
  while (h->count > 0)
    drop_oldest(h);
  h->seq = seq;
  s->topics.hist->busy++;
  report_truncated(s, h);
  s->topics.hist->busy--;
}

/* The topic's shared history is now `epoch`: a different one than h had
 * (Redis lost it, or it expired) empties h; subscribers who got anything
 * of the old one are told. */
static void adopt_epoch(wire_server *s, wire__hist *h, uint64_t epoch) {
  if (h->epoch == epoch)
    return;
  int told = h->synced && (h->seq > 0 || h->count > 0);
  h->epoch = epoch;
  if (told)
    gap(s, h, 0);
  else
    h->seq = 0;
}

/* Decode a stored entry's JSON into the feed doc. NULL: not JSON. */
static const wire_value *entry_value(wire__history *H, const char *json, size_t n) {
  const wire_value *v;
  if (H->fdoc == NULL && wire_doc_new(&H->fdoc) != 0)
    return NULL;
  return wire_decode(H->fdoc, WIRE_CODEC_JSON, json, n, 0, &v, NULL) == 0 ? v : NULL;
}

/* Keep entry seq (h->seq + 1 or later) without delivering it: a load. */
static void keep_silently(wire_server *s, wire__hist *h, const wire__hitem *it) {
  wire__history *H = s->topics.hist;
  if (it->seq != h->seq + 1)
    while (h->count > 0)
      drop_oldest(h); /* the ring holds consecutive numbers only */
  h->seq = it->seq - 1;
  const wire_value *v = entry_value(H, it->json, it->len);
  wire_doc *d = hdoc(H);
  wire_value *env = v && d ? wire__history_envelope(s, h, v) : NULL;
  const uint8_t *out;
  size_t n;
  wire__sbuf *f = NULL;
  if (env != NULL && wire_encode(d, WIRE_CODEC_JSON, env, &out, &n, NULL) == 0)
    f = wire__sbuf_frame(&s->topics, WSLAY_TEXT_FRAME, out, n);
  if (f == NULL || wire__history_record(s, h, f) != 0) {
    while (h->count > 0)
      drop_oldest(h);
    h->seq = it->seq;
  }
  if (f)
    wire__sbuf_release(f);
  if (H->fdoc)
    wire_doc_reset(H->fdoc);
  wire__history_done(s);
}

/* Deliver and keep entry h->seq + 1. A value that is not JSON cannot be
 * delivered: reported as truncated. Returns the number queued (>= 0) or
 * WIRE_EDESERIALIZE. */
static int deliver_next(wire_server *s, wire__hist *h, const char *json, size_t n) {
  wire__history *H = s->topics.hist;
  uint64_t seq = h->seq + 1;
  const wire_value *v = entry_value(H, json, n);
  int r = v ? wire__publish_value_local(s, h->name, h->len, v, NULL, NULL) : WIRE_EDESERIALIZE;
  if (H->fdoc)
    wire_doc_reset(H->fdoc);
  if (h->seq != seq) { /* not kept (no memory, not JSON): never a silent gap */
    gap(s, h, seq);
    return r < 0 ? r : WIRE_EDESERIALIZE;
  }
  return r;
}

static int feed(wire_server *s, wire__hist *h, uint64_t epoch, uint64_t seq, const char *json,
                size_t n);

/* Fetch what the shared history has after h->seq (all of a new epoch) and
 * deliver it in order; a range Redis no longer has is reported as
 * truncated. Returns 0 or WIRE_ECLOSED / WIRE_ENOMEM (nothing fetched). */
static int catch_up(wire_server *s, wire__hist *h) {
  wire__broker *b = s->broker;
  wire__history *H = s->topics.hist;
  wire__hfetch f;
  int r = b->hops->fetch(b->impl, h->name, h->len, h->epoch, h->seq, 0, h->rule->ttl_ms, &f);
  if (r != 0)
    return r;
  H->fetching++;
  H->busy++;
  adopt_epoch(s, h, f.epoch);
  for (size_t i = 0; i < f.n; i++)
    feed(s, h, f.epoch, f.items[i].seq, f.items[i].json, f.items[i].len);
  if (f.seq > h->seq) /* numbers Redis gave that its stream no longer has */
    gap(s, h, f.seq);
  H->busy--;
  H->fetching--;
  b->hops->fetch_free(&f);
  wire__history_done(s);
  return 0;
}

/* Load the newest n entries of the shared history into h without
 * delivering them (nothing here followed the topic before). */
static int load(wire_server *s, wire__hist *h) {
  wire__broker *b = s->broker;
  wire__history *H = s->topics.hist;
  wire__hfetch f;
  int r = b->hops->fetch(b->impl, h->name, h->len, 0, 0, h->rule->n, h->rule->ttl_ms, &f);
  if (r != 0)
    return r;
  H->busy++;
  while (h->count > 0)
    drop_oldest(h);
  h->epoch = f.epoch;
  h->seq = 0;
  for (size_t i = 0; i < f.n; i++)
    if (f.items[i].seq > h->seq)
      keep_silently(s, h, &f.items[i]);
  if (f.seq > h->seq) {
    while (h->count > 0)
      drop_oldest(h);
    h->seq = f.seq;
  }
  h->synced = 1;
  H->busy--;
  b->hops->fetch_free(&f);
  wire__history_done(s);
  return 0;
}

/* One entry of the shared history, from an announcement or a fetch: older
 * ones are duplicates, the next one is delivered, a later one first fetches
 * the hole (what Redis no longer has is reported as truncated). */
static int feed(wire_server *s, wire__hist *h, uint64_t epoch, uint64_t seq, const char *json,
                size_t n) {
  adopt_epoch(s, h, epoch);
  if (seq <= h->seq)
    return 0;
  if (seq > h->seq + 1 && !s->topics.hist->fetching) {
    catch_up(s, h);
    if (seq <= h->seq || h->epoch != epoch)
      return 0;
  }
  if (seq > h->seq + 1)
    gap(s, h, seq - 1);
  return deliver_next(s, h, json, n);
}

int wire__history_announced(wire_server *s, const char *name, size_t len, uint64_t epoch,
                            uint64_t seq, const uint8_t *json, size_t n) {
  wire__hist *h;
  int r = wire__history_get(s, name, len, 1, &h);
  if (r != 0)
    return r;
  if (h == NULL) { /* no history rule for it here: a plain delivery of its data */
    wire__history tmp = {0};
    const wire_value *v = entry_value(&tmp, (const char *)json, n);
    r = v ? wire__publish_value_local(s, name, len, v, NULL, NULL) : WIRE_EDESERIALIZE;
    wire_doc_free(tmp.fdoc);
    return r;
  }
  if (!h->synced) { /* not loaded (Redis did not answer the load): follow from here */
    while (h->count > 0)
      drop_oldest(h);
    h->epoch = epoch;
    h->seq = seq - 1;
    h->synced = 1;
  }
  s->topics.hist->busy++;
  r = feed(s, h, epoch, seq, (const char *)json, n);
  s->topics.hist->busy--;
  wire__history_done(s);
  return r;
}

void wire__history_channel(wire_server *s, const char *name, size_t len) {
  wire__hist *h;
  if (wire__history_get(s, name, len, 1, &h) != 0 || h == NULL)
    return;
  if (h->synced)
    catch_up(s, h);
  else
    load(s, h);
}

/* subscribe(since) on a shared history: make h truthful for `since` first
 * (load it, or fetch what the position is ahead of it). Returns 0, or
 * WIRE_ECLOSED when Redis cannot answer and h cannot either. */
static int shared_prepare(wire_server *s, wire__hist *h, const char *since, size_t n) {
  uint64_t e = 0, q = 0;
  int pos = since != NULL && n > 0 && wire_position_parse(since, n, &e, &q) == 0;
  if (h->synced && (!pos || (e == h->epoch && q <= h->seq)))
    return 0;
  int r = h->synced ? catch_up(s, h) : load(s, h);
  /* without a position nothing is to be recovered: not loaded, h's position
   * is reported (its epoch is then not Redis's: "epoch" if given back) */
  return r == 0 || since == NULL || n == 0 ? 0 : WIRE_ECLOSED;
}

void wire__history_each(wire_server *s, void (*fn)(void *ud, const char *name, size_t len),
                        void *ud) {
  wire__history *H = s->topics.hist;
  for (size_t i = 0; H != NULL && i < H->n_rules; i++)
    for (wire__hist *h = H->rules[i]->oldest; h != NULL; h = h->next)
      fn(ud, h->name, h->len);
}
