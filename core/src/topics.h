/*
 * topics.h -- the private layout of topics (topics.c): a chained hash table
 * with intrusive nodes, topics and their subscriber lists, each connection's
 * array of subscriptions, and the reference-counted frame a publish shares
 * between every subscriber's output queue. Never installed.
 */
#ifndef WIRE_TOPICS_H
#define WIRE_TOPICS_H

#include "internal.h"

#include <stdlib.h>

/* ---- hash table ------------------------------------------------------------ */

/* Embedded first in whatever the table holds; `hash` is kept so lookups and
 * resizes never rehash keys. */
typedef struct wire__hnode {
  struct wire__hnode *next;
  uint64_t hash;
} wire__hnode;

/* Separate chaining over a power-of-two bucket array: the load stays at most
 * 1 by doubling, and shrinks (halving) below 1/8 so a table that once held
 * 100,000 keys does not keep its buckets forever. */
typedef struct wire__htab {
  wire__hnode **b;
  size_t cap; /* 0 or a power of two */
  size_t n;
} wire__htab;

/* Make room for one more node. Returns 0, or WIRE_ENOMEM only when the table
 * has no buckets at all (a failed growth just leaves longer chains). */
WIRE_HIDDEN int wire__htab_reserve(wire__htab *t);
/* Link a node whose hash is set; the caller reserved room first. */
WIRE_HIDDEN void wire__htab_insert(wire__htab *t, wire__hnode *n);
/* Unlink a node that is in the table; may shrink the bucket array. */
WIRE_HIDDEN void wire__htab_remove(wire__htab *t, wire__hnode *n);
/* The chain that holds nodes with this hash (walk ->next, compare ->hash). */
static inline wire__hnode *wire__htab_chain(const wire__htab *t, uint64_t hash) {
  return t->cap ? t->b[hash & (t->cap - 1)] : NULL;
}
/* Free the bucket array (not the nodes). */
WIRE_HIDDEN void wire__htab_free(wire__htab *t);
/* A seeded 64-bit hash of bytes. */
WIRE_HIDDEN uint64_t wire__hash_bytes(uint64_t seed, const void *p, size_t len);

/* ---- topics and subscriptions -------------------------------------------- */

typedef struct wire__topic wire__topic;

/* One connection's subscription to one topic: in the server's subscription
 * table (keyed by topic and connection), in the topic's list, and at index
 * `cidx` of the connection's array. */
typedef struct wire__sub {
  wire__hnode h;
  wire__topic *topic;
  wire_conn *conn; /* NULL: removed while a publish walked the topic (freed after) */
  struct wire__sub *prev, *next;
  uint32_t cidx;
  uint8_t codec; /* the connection's endpoint codec */
  uint8_t pend;  /* history, deferred connection: 1 replay after pend_seq at open, 2 truncated */
  uint64_t pend_epoch, pend_seq;
  uint64_t pend_skip; /* with pend 1: a publication that excluded this connection (0: none) */
} wire__sub;

struct wire__topic {
  wire__hnode h;
  wire__sub *head;    /* newest first */
  size_t n;           /* live subscribers */
  size_t by_codec[3]; /* live subscribers per endpoint codec (wire_codec) */
  uint32_t busy;      /* publishes walking the list right now */
  uint32_t dead;      /* subscriptions removed meanwhile, still linked */
  uint32_t len;
  char name[]; /* NUL-terminated */
};

/* A connection's subscriptions; allocated at its first subscribe and freed
 * with its last, so a connection without topics pays one NULL pointer. */
typedef struct wire__csubs {
  uint32_t n, cap;
  wire__sub *items[];
} wire__csubs;

typedef struct wire__topics wire__topics;

/* A frame (header + payload) shared by the output queues of every subscriber
 * it was published to; freed with its last reference. */
typedef struct wire__sbuf {
  size_t refs, len;
  wire__topics *owner; /* where the queue nodes pointing at it go back */
  /* permessage-deflate (deflate.c): compressed variants, built once per
   * window size on first need; each holds a reference to the next. */
  struct wire__sbuf *alt;
  uint16_t zplain; /* bit n: compressing with n window bits did not pay */
  uint8_t zbits;   /* a variant's window bits; 0 in the plain frame */
  uint8_t data[];
} wire__sbuf;

/* The server's topic state (wire_server.topics). */
struct wire__topics {
  wire__htab names; /* wire__topic by name */
  wire__htab subs;  /* wire__sub by (topic, connection) */
  uint64_t seed;
  uint64_t drops;   /* deliveries refused (wire_server_publish_drops) */
  uint64_t encodes; /* values encoded by wire_server_publish_value */
  unsigned max_per_conn;
  wire_doc *doc; /* encodes published values; made lazily */
  /* Output queue nodes of published frames, kept for reuse: a publish to N
   * subscribers takes N of them and the writes give them back. */
  void *free_nodes;
  size_t n_free_nodes;
  struct wire__history *hist; /* history.c: NULL until wire_server_topic_history */
};

static inline void wire__sbuf_release(wire__sbuf *b) {
  while (b != NULL && --b->refs == 0) {
    wire__sbuf *alt = b->alt;
    free(b);
    b = alt;
  }
}

#endif /* WIRE_TOPICS_H */
