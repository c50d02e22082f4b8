/*
 * topics.c -- publish once, deliver to every subscriber: the topic table (a
 * chained hash table keyed by name), the subscription table (keyed by topic
 * and connection, so subscribe, unsubscribe and membership are O(1)), each
 * connection's array of subscriptions, and publishing: one frame built into
 * a reference-counted buffer that every subscriber's output queue points at,
 * with the backpressure rule of wire_conn_send_* applied per subscriber.
 */
#include "broker.h"
#include "conn_internal.h"
#include "history.h"

#include <string.h>

/* ---- hashing --------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1;                                                                                      \
    v1 = ROTL(v1, 13);                                                                             \
    v1 ^= v0;                                                                                      \
    v0 = ROTL(v0, 32);                                                                             \
    v2 += v3;                                                                                      \
    v3 = ROTL(v3, 16);                                                                             \
    v3 ^= v2;                                                                                      \
    v0 += v3;                                                                                      \
    v3 = ROTL(v3, 21);                                                                             \
    v3 ^= v0;                                                                                      \
    v2 += v1;                                                                                      \
    v1 = ROTL(v1, 17);                                                                             \
    v1 ^= v2;                                                                                      \
    v2 = ROTL(v2, 32);                                                                             \
  } while (0)

/* SipHash-1-3 with the key (seed, ~seed): topic names come from peers (a room
 * in the URL), so the chains must not be steerable by an attacker who cannot
 * see the server's random seed. */
uint64_t wire__hash_bytes(uint64_t seed, const void *p, size_t len) {
  const uint8_t *s = p;
  uint64_t k0 = seed, k1 = ~seed;
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  uint64_t b = (uint64_t)len << 56;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t m;
    memcpy(&m, s + i, 8); /* little-endian hosts; the value only has to be stable */
    v3 ^= m;
    SIPROUND;
    v0 ^= m;
  }
  for (size_t j = 0; i + j < len; j++)
    b |= (uint64_t)s[i + j] << (8 * j);
  v3 ^= b;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- hash table ------------------------------------------------------------ */

#define HTAB_MIN 16u

/* Move every node into a new bucket array of `cap` (a power of two).
 * Returns 0 or WIRE_ENOMEM (the table is unchanged). */
static int htab_resize(wire__htab *t, size_t cap) {
  wire__hnode **nb = calloc(cap, sizeof *nb);
  if (nb == NULL)
    return WIRE_ENOMEM;
  for (size_t i = 0; i < t->cap; i++) {
    wire__hnode *n = t->b[i];
    while (n != NULL) {
      wire__hnode *next = n->next;
      wire__hnode **slot = &nb[n->hash & (cap - 1)];
      n->next = *slot;
      *slot = n;
      n = next;
    }
  }
  free(t->b);
  t->b = nb;
  t->cap = cap;
  return 0;
}

int wire__htab_reserve(wire__htab *t) {
  if (t->cap == 0)
    return htab_resize(t, HTAB_MIN);
  if (t->n + 1 > t->cap)
    (void)htab_resize(t, t->cap * 2); /* on failure chains grow a little */
  return 0;
}

void wire__htab_insert(wire__htab *t, wire__hnode *n) {
  wire__hnode **slot = &t->b[n->hash & (t->cap - 1)];
  n->next = *slot;
  *slot = n;
  t->n++;
}

void wire__htab_remove(wire__htab *t, wire__hnode *n) {
  wire__hnode **pp = &t->b[n->hash & (t->cap - 1)];
  while (*pp != n)
    pp = &(*pp)->next;
  *pp = n->next;
  n->next = NULL;
  t->n--;
  if (t->n == 0) {
    wire__htab_free(t); /* an empty table keeps nothing */
  } else if (t->cap > HTAB_MIN && t->n < t->cap / 8) {
    (void)htab_resize(t, t->cap / 2);
  }
}

void wire__htab_free(wire__htab *t) {
  free(t->b);
  t->b = NULL;
  t->cap = t->n = 0;
}

/* ---- lookups --------------------------------------------------------------- */

static wire__topic *topic_find(const wire__topics *T, const char *name, size_t len, uint64_t hash) {
  for (wire__hnode *n = wire__htab_chain(&T->names, hash); n; n = n->next) {
    wire__topic *t = (wire__topic *)n;
    if (n->hash == hash && t->len == len && memcmp(t->name, name, len) == 0)
      return t;
  }
  return NULL;
}

static uint64_t sub_hash(const wire__topics *T, const wire__topic *t, const wire_conn *c) {
  uintptr_t key[2] = {(uintptr_t)t, (uintptr_t)c};
  return wire__hash_bytes(T->seed, key, sizeof key);
}

static wire__sub *sub_find(const wire__topics *T, const wire__topic *t, const wire_conn *c) {
  uint64_t hash = sub_hash(T, t, c);
  for (wire__hnode *n = wire__htab_chain(&T->subs, hash); n; n = n->next) {
    wire__sub *sub = (wire__sub *)n;
    if (n->hash == hash && sub->topic == t && sub->conn == c)
      return sub;
  }
  return NULL;
}

/* The subscription of c to a topic name, or NULL. */
wire__sub *wire__topics_conn_sub(const wire_conn *c, const char *name, size_t len) {
  if (c == NULL || name == NULL || c->topics == NULL)
    return NULL;
  const wire__topics *T = &WIRE__SRV(c)->topics;
  wire__topic *t = topic_find(T, name, len, wire__hash_bytes(T->seed, name, len));
  return t ? sub_find(T, t, c) : NULL;
}

static int topic_name_ok(const char *name, size_t len) {
  return name != NULL && len > 0 && len <= WIRE_MAX_TOPIC_LENGTH;
}

/* ---- server lifetime ------------------------------------------------------- */

void wire__topics_init(wire_server *s, unsigned max_per_conn) {
  wire__topics *T = &s->topics;
  T->max_per_conn = max_per_conn ? max_per_conn : WIRE_DEFAULT_MAX_TOPICS_PER_CONN;
  if (uv_random(NULL, NULL, &T->seed, sizeof T->seed, 0, NULL) != 0)
    T->seed = uv_hrtime() ^ (uint64_t)(uintptr_t)s; /* still differs per server */
}

/* Every connection has dropped its subscriptions by now (at its close), so
 * the tables are empty; anything left is freed all the same. */
void wire__topics_free(wire_server *s) {
  wire__topics *T = &s->topics;
  for (size_t i = 0; i < T->names.cap; i++)
    for (wire__hnode *n = T->names.b[i], *next; n; n = next) {
      next = n->next;
      wire__topic *t = (wire__topic *)n;
      for (wire__sub *sub = t->head, *snext; sub; sub = snext) {
        snext = sub->next; /* every subscription, live or removed, is in a topic's list */
        free(sub);
      }
      free(t);
    }
  wire__htab_free(&T->subs);
  wire__htab_free(&T->names);
  wire__history_free(s);
  wire_doc_free(T->doc);
  T->doc = NULL;
  while (T->free_nodes != NULL) {
    wire__ochunk *ch = T->free_nodes;
    T->free_nodes = ch->next;
    free(ch);
  }
  T->n_free_nodes = 0;
}

/* ---- subscribe and unsubscribe ---------------------------------------------- */

/* A new, empty topic in the table. NULL when memory runs out. */
static wire__topic *topic_new(wire__topics *T, const char *name, size_t len, uint64_t hash) {
  if (wire__htab_reserve(&T->names) != 0)
    return NULL;
  wire__topic *t = calloc(1, sizeof *t + len + 1);
  if (t == NULL)
    return NULL;
  t->h.hash = hash;
  t->len = (uint32_t)len;
  memcpy(t->name, name, len);
  t->name[len] = 0;
  wire__htab_insert(&T->names, &t->h);
  return t;
}

/* Free a topic once nothing references it: no subscribers, no publish
 * walking it. */
static void topic_maybe_free(wire__topics *T, wire__topic *t) {
  if (t->n > 0 || t->busy > 0)
    return;
  wire__htab_remove(&T->names, &t->h);
  free(t);
}

/* Room for one more subscription in c's array. 0 or WIRE_ENOMEM. */
static int csubs_reserve(wire_conn *c) {
  wire__csubs *cs = c->topics;
  if (cs != NULL && cs->n < cs->cap)
    return 0;
  uint32_t cap = cs ? cs->cap * 2 : 4;
  wire__csubs *ncs = realloc(cs, sizeof *ncs + cap * sizeof ncs->items[0]);
  if (ncs == NULL)
    return WIRE_ENOMEM;
  if (cs == NULL)
    ncs->n = 0;
  ncs->cap = cap;
  c->topics = ncs;
  return 0;
}

int wire_conn_subscribe(wire_conn *c, const char *name, size_t len) {
  if (c == NULL || !topic_name_ok(name, len))
    return WIRE_EINVAL;
  if (c->state != WIRE__S_OPEN && c->state != WIRE__S_DEFERRED)
    return WIRE_ECLOSED;
  wire__topics *T = &WIRE__SRV(c)->topics;
  uint64_t hash = wire__hash_bytes(T->seed, name, len);
  wire__topic *t = topic_find(T, name, len, hash);
  if (t != NULL && sub_find(T, t, c) != NULL)
    return 0;
  if (c->topics != NULL && c->topics->n >= T->max_per_conn)
    return WIRE_ETOOMANY;
  if (t == NULL && (t = topic_new(T, name, len, hash)) == NULL)
    return WIRE_ENOMEM;
  wire__sub *sub = NULL;
  if (csubs_reserve(c) != 0 || wire__htab_reserve(&T->subs) != 0 ||
      (sub = calloc(1, sizeof *sub)) == NULL) {
    topic_maybe_free(T, t);
    return WIRE_ENOMEM;
  }
  sub->h.hash = sub_hash(T, t, c);
  sub->topic = t;
  sub->conn = c;
  sub->codec = (uint8_t)c->ep->opts.codec;
  wire__htab_insert(&T->subs, &sub->h);
  sub->next = t->head; /* at the head: a publish in progress does not reach it */
  if (t->head)
    t->head->prev = sub;
  t->head = sub;
  t->n++;
  t->by_codec[sub->codec]++;
  sub->cidx = c->topics->n;
  c->topics->items[c->topics->n++] = sub;
  /* broker hook: the first local subscriber (a history keeps the channel too) */
  if (t->n == 1 && !wire__history_has(WIRE__SRV(c), t->name, t->len))
    wire__broker_topic(WIRE__SRV(c), t->name, t->len, 1);
  if (T->hist != NULL && c->state == WIRE__S_DEFERRED) /* history: replay at open */
    wire__history_subscribed(c, sub);
  return 0;
}

/* Unlink a subscription from the topic's list and free it. */
static void sub_unlink_free(wire__topic *t, wire__sub *sub) {
  if (sub->prev)
    sub->prev->next = sub->next;
  else
    t->head = sub->next;
  if (sub->next)
    sub->next->prev = sub->prev;
  free(sub);
}

/* End one subscription. While a publish walks the topic the node stays linked
 * (conn NULL) so the walk can step over it; the last walker frees it. */
static void sub_remove(wire__topics *T, wire__sub *sub) {
  wire_conn *c = sub->conn;
  wire__topic *t = sub->topic;
  wire__csubs *cs = c->topics;
  wire__htab_remove(&T->subs, &sub->h);
  wire__sub *last = cs->items[--cs->n];
  cs->items[sub->cidx] = last;
  last->cidx = sub->cidx;
  if (cs->n == 0) {
    free(cs);
    c->topics = NULL;
  }
  t->n--;
  t->by_codec[sub->codec]--;
  /* broker hook: the last local subscriber left (a history keeps the channel) */
  if (t->n == 0 && !wire__history_has(WIRE__SRV(c), t->name, t->len))
    wire__broker_topic(WIRE__SRV(c), t->name, t->len, 0);
  if (t->busy > 0) {
    sub->conn = NULL;
    t->dead++;
    return;
  }
  sub_unlink_free(t, sub);
  topic_maybe_free(T, t);
}

int wire_conn_unsubscribe(wire_conn *c, const char *name, size_t len) {
  if (c == NULL || name == NULL)
    return WIRE_EINVAL;
  wire__sub *sub = wire__topics_conn_sub(c, name, len);
  if (sub == NULL)
    return WIRE_ENOTFOUND;
  sub_remove(&WIRE__SRV(c)->topics, sub);
  return 0;
}

void wire__topics_conn_drop(wire_conn *c) {
  wire__topics *T = &WIRE__SRV(c)->topics;
  while (c->topics != NULL)
    sub_remove(T, c->topics->items[c->topics->n - 1]);
}

int wire_conn_is_subscribed(const wire_conn *c, const char *name, size_t len) {
  return wire__topics_conn_sub(c, name, len) != NULL;
}

size_t wire_conn_topic_count(const wire_conn *c) {
  return c && c->topics ? c->topics->n : 0;
}

wire_str wire_conn_topic_at(const wire_conn *c, size_t i) {
  wire_str r = {NULL, 0};
  if (c == NULL || c->topics == NULL || i >= c->topics->n)
    return r;
  const wire__topic *t = c->topics->items[i]->topic;
  r.ptr = t->name;
  r.len = t->len;
  return r;
}

size_t wire_server_subscriber_count(const wire_server *s, const char *name, size_t len) {
  if (s == NULL || !topic_name_ok(name, len))
    return 0;
  const wire__topic *t =
      topic_find(&s->topics, name, len, wire__hash_bytes(s->topics.seed, name, len));
  return t ? t->n : 0;
}

size_t wire__topics_subscribers(const wire_server *s, const char *name, size_t len) {
  return wire_server_subscriber_count(s, name, len);
}

size_t wire_server_topic_count(const wire_server *s) {
  return s ? s->topics.names.n : 0;
}

uint64_t wire_server_publish_drops(const wire_server *s) {
  return s ? s->topics.drops : 0;
}

/* ---- publishing ------------------------------------------------------------- */

#define NODE_POOL_MAX 16384u /* queue nodes kept for reuse: 512 KiB at most */

/* A queue node for a shared frame: reused (the common case: the last
 * publish's writes gave theirs back) or new. NULL when memory runs out. */
static wire__ochunk *node_get(wire__topics *T) {
  wire__ochunk *ch = T->free_nodes;
  if (ch == NULL)
    return malloc(sizeof *ch);
  T->free_nodes = ch->next;
  T->n_free_nodes--;
  return ch;
}

/* A shared frame's node left the output queue (written or discarded). */
void wire__topics_node_free(wire__ochunk *ch) {
  wire__sbuf *b = ch->shared;
  wire__topics *T = b->owner;
  if (T->n_free_nodes < NODE_POOL_MAX) {
    ch->next = T->free_nodes;
    T->free_nodes = ch;
    T->n_free_nodes++;
  } else {
    free(ch);
  }
  wire__sbuf_release(b);
}

/* One frame in a shared buffer (one reference, the publisher's). */
wire__sbuf *wire__sbuf_frame(wire__topics *T, int opcode, const void *data, size_t len) {
  uint8_t h[10];
  size_t hl = wire__frame_header(h, opcode, len);
  wire__sbuf *b = malloc(sizeof *b + hl + len);
  if (b == NULL)
    return NULL;
  b->refs = 1;
  b->len = hl + len;
  b->owner = T;
  b->alt = NULL;
  b->zplain = 0;
  b->zbits = 0;
  memcpy(b->data, h, hl);
  if (len)
    memcpy(b->data + hl, data, len);
  return b;
}

/* Queue a shared frame for one open subscriber, or refuse it as
 * wire__send_frame would: over the backpressure limit the connection is
 * closed with 1008. Returns 1 when queued, 0 when refused (counted). */
int wire__topics_deliver_one(wire_server *s, wire_conn *c, wire__sbuf *b) {
  size_t limit = c->ep->opts.max_backpressure;
  if (c->out_bytes > limit) {
    s->topics.drops++;
    wire_conn_close(c, 1008, "send buffer limit exceeded", 26);
    return 0;
  }
  /* permessage-deflate: the frame compressed once for all, or (NULL) for
   * this connection alone when it keeps streams of its own */
  wire__sbuf *z = wire__pmd_variant(c, b);
  if (z == NULL) {
    uint8_t l7 = b->data[1] & 0x7f;
    size_t hl = l7 == 127 ? 10 : l7 == 126 ? 4 : 2;
    if (wire__pmd_send(c, b->data[0] & 0x0f, b->data + hl, b->len - hl) != 1) {
      s->topics.drops++;
      return 0;
    }
    wire__out_schedule(c);
    if (c->out_bytes > limit)
      wire__update_reading(c);
    return 1;
  }
  b = z;
  wire__ochunk *ch = node_get(&s->topics);
  if (ch == NULL) {
    s->topics.drops++;
    return 0;
  }
  ch->next = NULL;
  ch->len = b->len;
  ch->off = 0;
  ch->shared = b;
  b->refs++;
  wire__out_append(c, ch);
  wire__out_queued(c, b->len - (b->data[1] == 127 ? 10u : b->data[1] == 126 ? 4u : 2u));
  return 1;
}

/* Free the subscriptions removed while publishes walked the topic. */
static void topic_sweep(wire__topics *T, wire__topic *t) {
  for (wire__sub *sub = t->head, *next; sub && t->dead > 0; sub = next) {
    next = sub->next;
    if (sub->conn == NULL) {
      sub_unlink_free(t, sub);
      t->dead--;
    }
  }
  topic_maybe_free(T, t);
}

/* The frames one publish hands out: one per codec, and one per endpoint
 * that encodes for itself (own[i] gets obufs[i]). */
typedef struct frames {
  wire__sbuf *by_codec[3];
  const wire_endpoint *const *own;
  wire__sbuf **obufs;
  size_t n_own;
} frames;

/* Index of ep in f->own, or n_own. */
static size_t own_index(const frames *f, const wire_endpoint *ep) {
  size_t i = 0;
  while (i < f->n_own && f->own[i] != ep)
    i++;
  return i;
}

/* Deliver to every open subscriber but `exclude` the frame of its endpoint
 * (own endpoints) or of its codec. Callbacks run by a delivery (a close that
 * fails at once) may subscribe, unsubscribe or publish: the topic stays
 * linked and removed subscriptions are stepped over. Output leaves at the
 * outermost leave. */
static int deliver(wire_server *s, wire__topic *t, const frames *f, const wire_conn *exclude) {
  int sent = 0;
  wire__enter(s);
  t->busy++;
  for (wire__sub *sub = t->head; sub; sub = sub->next) {
    wire_conn *c = sub->conn;
    if (c == NULL || c == exclude || c->state != WIRE__S_OPEN)
      continue;
    size_t i = f->n_own ? own_index(f, c->ep) : 0;
    sent += wire__topics_deliver_one(s, c, i < f->n_own ? f->obufs[i] : f->by_codec[sub->codec]);
  }
  if (--t->busy == 0)
    topic_sweep(&s->topics, t);
  wire__leave(s);
  return sent;
}

/* Arguments of a publish: 0, WIRE_EINVAL or WIRE_EUTF8. */
static int publish_check(wire_server *s, const char *name, size_t len, wire_msg_kind kind,
                         const void *data, size_t data_len) {
  if (s == NULL || !topic_name_ok(name, len) || (data == NULL && data_len > 0) ||
      (kind != WIRE_MSG_TEXT && kind != WIRE_MSG_BINARY))
    return WIRE_EINVAL;
  if (kind == WIRE_MSG_TEXT && wire__utf8_step(WIRE__UTF8_OK, data, data_len) != WIRE__UTF8_OK)
    return WIRE_EUTF8;
  return 0;
}

static int publish_local(wire_server *s, const char *name, size_t len, wire_msg_kind kind,
                         const void *data, size_t data_len, wire_conn *exclude);
static int publish_history(wire_server *s, wire__hist *h, const char *name, size_t len,
                           const wire_value *v, wire_conn *exclude, wire_error *err);

/* ---- broker hook: a publish also goes to the other processes ---- */
int wire_server_publish(wire_server *s, const char *name, size_t len, wire_msg_kind kind,
                        const void *data, size_t data_len, wire_conn *exclude) {
  int r = publish_check(s, name, len, kind, data, data_len);
  if (r != 0)
    return r;
  wire__hist *h;
  if ((r = wire__history_get(s, name, len, 1, &h)) != 0)
    return r;
  if (h != NULL && wire__history_shared(s)) { /* Redis Streams: delivered when announced */
    if (kind != WIRE_MSG_TEXT)
      return WIRE_ESERIALIZE;
    wire_value v = {0};
    v.type = WIRE_STRING;
    v.u.s.ptr = data_len ? data : "";
    v.u.s.len = data_len;
    return wire__history_send(s, h, &v, NULL);
  }
  if (h != NULL) { /* history: here first (it may refuse), then numbered to the others */
    r = publish_local(s, name, len, kind, data, data_len, exclude);
    if (r >= 0 && wire__history_get(s, name, len, 1, &h) == 0 && h != NULL)
      wire__broker_publish(s, name, len, kind, data, data_len, wire__history_own_seq(s, h));
    return r;
  }
  wire__broker_publish(s, name, len, kind, data, data_len, 0);
  return publish_local(s, name, len, kind, data, data_len, exclude);
}

int wire__publish_local(wire_server *s, const char *name, size_t len, wire_msg_kind kind,
                        const void *data, size_t data_len, wire_conn *exclude) {
  int r = publish_check(s, name, len, kind, data, data_len);
  return r != 0 ? r : publish_local(s, name, len, kind, data, data_len, exclude);
}
/* ---- end of the broker hook ---- */

/* Deliver a checked publish to this server's subscribers. */
static int publish_local(wire_server *s, const char *name, size_t len, wire_msg_kind kind,
                         const void *data, size_t data_len, wire_conn *exclude) {
  wire__hist *h;
  int r = wire__history_get(s, name, len, 1, &h);
  if (r != 0 || h != NULL) { /* a history topic: the text as a string value */
    if (r != 0 || kind != WIRE_MSG_TEXT)
      return r != 0 ? r : WIRE_ESERIALIZE;
    wire_value v = {0};
    v.type = WIRE_STRING;
    v.u.s.ptr = data_len ? data : "";
    v.u.s.len = data_len;
    return publish_history(s, h, name, len, &v, exclude, NULL);
  }
  wire__topic *t = topic_find(&s->topics, name, len, wire__hash_bytes(s->topics.seed, name, len));
  if (t == NULL || t->n == 0)
    return 0;
  wire__sbuf *b = wire__sbuf_frame(
      &s->topics, kind == WIRE_MSG_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, data, data_len);
  if (b == NULL)
    return WIRE_ENOMEM;
  frames f = {{b, b, b}, NULL, NULL, 0};
  int sent = deliver(s, t, &f, exclude);
  wire__sbuf_release(b);
  return sent;
}

/* Encode v with one codec into a shared frame. Returns 0, WIRE_ESERIALIZE or
 * WIRE_ENOMEM. */
static int encode_frame(wire__topics *T, wire_codec codec, const wire_value *v, wire__sbuf **out,
                        wire_error *err) {
  if (T->doc == NULL && wire_doc_new(&T->doc) != 0)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  const uint8_t *bytes;
  size_t n;
  int r = wire_encode(T->doc, codec, v, &bytes, &n, err);
  if (r == 0) {
    T->encodes++;
    *out = wire__sbuf_frame(T, codec == WIRE_CODEC_JSON ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
                            bytes, n);
    r = *out ? 0 : wire__error_set(err, WIRE_ENOMEM, "out of memory");
  } else if (r != WIRE_ENOMEM) {
    r = WIRE_ESERIALIZE;
    if (err != NULL)
      err->code = r;
  }
  wire_doc_reset(T->doc);
  return r;
}

/* Which frames the topic's receivers need: need[codec] for subscribers not on
 * an own endpoint, owned[i] for own[i]. Counts from the topic when there
 * are no own endpoints, else one walk over the subscribers. */
static void frames_needed(const wire__topic *t, const frames *f, const wire_conn *exclude,
                          int need[3], unsigned char *owned) {
  if (f->n_own == 0) {
    for (int c = 0; c < 3; c++)
      need[c] = t->by_codec[c] > 0;
    return;
  }
  need[0] = need[1] = need[2] = 0;
  for (const wire__sub *sub = t->head; sub; sub = sub->next) {
    const wire_conn *c = sub->conn;
    if (c == NULL || c == exclude || c->state != WIRE__S_OPEN)
      continue;
    size_t i = own_index(f, c->ep);
    if (i < f->n_own)
      owned[i] = 1;
    else
      need[sub->codec] = 1;
  }
}

/* Build the frames a publish needs (JSON also serves RAW endpoints). Returns
 * 0 or an error code; the frames built so far are released by the caller. */
static int frames_build(wire_server *s, const wire__topic *t, frames *f, const wire_value *v,
                        const wire_conn *exclude, wire_publish_encode_fn encode, void *ud,
                        wire_error *err) {
  int need[3];
  unsigned char owned[WIRE_MAX_OWN_ENDPOINTS] = {0};
  frames_needed(t, f, exclude, need, owned);
  int r = 0;
  if (need[WIRE_CODEC_JSON] || need[WIRE_CODEC_RAW])
    r = encode_frame(&s->topics, WIRE_CODEC_JSON, v, &f->by_codec[WIRE_CODEC_JSON], err);
  f->by_codec[WIRE_CODEC_RAW] = f->by_codec[WIRE_CODEC_JSON];
  if (r == 0 && need[WIRE_CODEC_MSGPACK])
    r = encode_frame(&s->topics, WIRE_CODEC_MSGPACK, v, &f->by_codec[WIRE_CODEC_MSGPACK], err);
  for (size_t i = 0; r == 0 && i < f->n_own; i++) {
    if (!owned[i])
      continue;
    wire_msg_kind kind = WIRE_MSG_TEXT;
    const void *data = NULL;
    size_t n = 0;
    r = encode(ud, f->own[i], &kind, &data, &n);
    if (r == 0 && ((kind != WIRE_MSG_TEXT && kind != WIRE_MSG_BINARY) || (data == NULL && n > 0)))
      r = wire__error_set(err, WIRE_EINVAL, "encode gave no text or binary message");
    else if (r == 0 && kind == WIRE_MSG_TEXT &&
             wire__utf8_step(WIRE__UTF8_OK, data, n) != WIRE__UTF8_OK)
      r = wire__error_set(err, WIRE_EUTF8, "encode gave text that is not UTF-8");
    else if (r == 0) {
      int op = kind == WIRE_MSG_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME;
      f->obufs[i] = wire__sbuf_frame(&s->topics, op, data, n);
      r = f->obufs[i] ? 0 : wire__error_set(err, WIRE_ENOMEM, "out of memory");
    }
  }
  return r;
}

/* Deliver a published value to this server's subscribers only (the broker's
 * deliveries from other processes come here too). */
static int publish_value_local(wire_server *s, const char *name, size_t len, const wire_value *v,
                               wire_conn *exclude, const wire_endpoint *const *own, size_t n_own,
                               wire_publish_encode_fn encode, void *ud, wire_error *err) {
  if (s == NULL || v == NULL || !topic_name_ok(name, len) || n_own > WIRE_MAX_OWN_ENDPOINTS ||
      (n_own > 0 && (own == NULL || encode == NULL)))
    return wire__error_set(err, WIRE_EINVAL,
                           "server, topic (1..%u bytes) and value are required; at most %u own "
                           "endpoints, with an encode function",
                           WIRE_MAX_TOPIC_LENGTH, WIRE_MAX_OWN_ENDPOINTS);
  wire__hist *h;
  int hr = wire__history_get(s, name, len, 1, &h);
  if (hr != 0)
    return wire__error_set(err, hr, "out of memory");
  if (h != NULL)
    return publish_history(s, h, name, len, v, exclude, err);
  wire__topics *T = &s->topics;
  wire__topic *t = topic_find(T, name, len, wire__hash_bytes(T->seed, name, len));
  if (t == NULL || t->n == 0)
    return 0;
  wire__sbuf *obufs[WIRE_MAX_OWN_ENDPOINTS] = {NULL};
  frames f = {{NULL, NULL, NULL}, own, obufs, n_own};
  t->busy++; /* encode may call back into the server: the topic stays linked */
  int r = frames_build(s, t, &f, v, exclude, encode, ud, err);
  if (r == 0)
    r = deliver(s, t, &f, exclude);
  if (--t->busy == 0)
    topic_sweep(T, t);
  if (f.by_codec[WIRE_CODEC_JSON])
    wire__sbuf_release(f.by_codec[WIRE_CODEC_JSON]);
  if (f.by_codec[WIRE_CODEC_MSGPACK])
    wire__sbuf_release(f.by_codec[WIRE_CODEC_MSGPACK]);
  for (size_t i = 0; i < n_own; i++)
    if (obufs[i])
      wire__sbuf_release(obufs[i]);
  return r;
}

/* ---- history topics ---- */

/* Publish v on a history topic: one JSON envelope frame, kept in the history
 * and shared with JSON and RAW subscribers, plus a MessagePack one when a
 * subscriber needs it (endpoints with their own encoder get their codec's).
 * Returns the number queued, or WIRE_ESERIALIZE (v cannot be JSON: nothing
 * is kept or sent) or WIRE_ENOMEM. */
static int publish_history(wire_server *s, wire__hist *h, const char *name, size_t len,
                           const wire_value *v, wire_conn *exclude, wire_error *err) {
  wire__topics *T = &s->topics;
  wire__topic *t = topic_find(T, name, len, wire__hash_bytes(T->seed, name, len));
  frames f = {{NULL, NULL, NULL}, NULL, NULL, 0};
  wire_value *env = wire__history_envelope(s, h, v);
  T->hist->busy++;
  if (t != NULL)
    t->busy++;
  int r = env ? encode_frame(T, WIRE_CODEC_JSON, env, &f.by_codec[WIRE_CODEC_JSON], err)
              : wire__error_set(err, WIRE_ENOMEM, "out of memory");
  f.by_codec[WIRE_CODEC_RAW] = f.by_codec[WIRE_CODEC_JSON];
  if (r == 0 && t != NULL && t->by_codec[WIRE_CODEC_MSGPACK] > 0)
    r = encode_frame(T, WIRE_CODEC_MSGPACK, env, &f.by_codec[WIRE_CODEC_MSGPACK], err);
  if (r == 0 && wire__history_record(s, h, f.by_codec[WIRE_CODEC_JSON]) != 0)
    r = wire__error_set(err, WIRE_ENOMEM, "out of memory");
  if (r == 0 && exclude != NULL && exclude->state == WIRE__S_DEFERRED)
    wire__history_excluded(exclude, h);
  if (r == 0 && t != NULL)
    r = deliver(s, t, &f, exclude);
  if (t != NULL && --t->busy == 0)
    topic_sweep(T, t);
  T->hist->busy--;
  wire__history_done(s);
  if (f.by_codec[WIRE_CODEC_JSON])
    wire__sbuf_release(f.by_codec[WIRE_CODEC_JSON]);
  if (f.by_codec[WIRE_CODEC_MSGPACK])
    wire__sbuf_release(f.by_codec[WIRE_CODEC_MSGPACK]);
  return r;
}

int wire__topics_deliver_codecs(wire_server *s, const char *name, size_t len, wire__sbuf *json,
                                wire__sbuf *msgpack) {
  wire__topics *T = &s->topics;
  wire__topic *t = topic_find(T, name, len, wire__hash_bytes(T->seed, name, len));
  if (t == NULL || t->n == 0)
    return 0;
  frames f = {{json, json, msgpack}, NULL, NULL, 0};
  return deliver(s, t, &f, NULL);
}

/* ---- broker hook: a published value also goes to the other processes ---- */
int wire_server_publish_value_ex(wire_server *s, const char *name, size_t len, const wire_value *v,
                                 wire_conn *exclude, const wire_endpoint *const *own, size_t n_own,
                                 wire_publish_encode_fn encode, void *ud, wire_error *err) {
  wire__hist *h = NULL;
  if (s != NULL && v != NULL && topic_name_ok(name, len) &&
      wire__history_get(s, name, len, 1, &h) == 0 && h != NULL) {
    if (wire__history_shared(s)) /* Redis Streams: delivered when announced */
      return wire__history_send(s, h, v, err);
    /* history: here first (it may refuse), then numbered to the others */
    int r = publish_value_local(s, name, len, v, exclude, own, n_own, encode, ud, err);
    if (r >= 0 && wire__history_get(s, name, len, 1, &h) == 0 && h != NULL)
      wire__broker_publish_value(s, name, len, v, wire__history_own_seq(s, h));
    return r;
  }
  if (s != NULL && v != NULL && topic_name_ok(name, len))
    wire__broker_publish_value(s, name, len, v, 0);
  return publish_value_local(s, name, len, v, exclude, own, n_own, encode, ud, err);
}
/* ---- end of the broker hook ---- */

int wire_server_publish_value(wire_server *s, const char *name, size_t len, const wire_value *v,
                              wire_conn *exclude, wire_error *err) {
  return wire_server_publish_value_ex(s, name, len, v, exclude, NULL, 0, NULL, NULL, err);
}

int wire__publish_value_local(wire_server *s, const char *name, size_t len, const wire_value *v,
                              wire_conn *exclude, wire_error *err) {
  return publish_value_local(s, name, len, v, exclude, NULL, 0, NULL, NULL, err);
}
