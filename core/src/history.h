/*
 * history.h -- the private layout of topic history (history.c): the rules
 * set by wire_server_topic_history, one ring of published JSON envelope
 * frames per topic with its epoch and sequence, and the calls topics.c makes
 * when it publishes to, subscribes to or opens a connection on a history
 * topic. Never installed.
 */
#ifndef WIRE_HISTORY_H
#define WIRE_HISTORY_H

#include "topics.h"

typedef struct wire__hrule wire__hrule;

/* One retained publication: its number, when it was published (ms, monotonic)
 * and the JSON envelope frame live subscribers got (one reference). */
typedef struct wire__hentry {
  uint64_t seq, at_ms;
  wire__sbuf *frame;
} wire__hentry;

/* One topic's history: entries seq-(count-1) .. seq in a ring that grows up
 * to its rule's n; in its rule's list, least recently published first. */
/* The last number seen from one other process (broker envelopes). */
typedef struct wire__horigin {
  uint64_t origin, last;
} wire__horigin;

typedef struct wire__hist {
  wire__hnode h;
  wire__hrule *rule;
  struct wire__hist *prev, *next;
  uint64_t epoch, seq, last_ms;
  uint64_t own_seq; /* this process's publications to the topic (broker envelopes) */
  wire__horigin *origins;
  uint32_t n_origins;
  wire__hentry *ring;
  uint32_t head, count, cap;
  uint32_t len;
  uint8_t synced; /* shared history: epoch and seq are Redis's (loaded or followed) */
  char name[];    /* NUL-terminated */
} wire__hist;

struct wire__hrule {
  char pattern[WIRE_MAX_TOPIC_LENGTH + 1]; /* without the final '*' of a prefix */
  size_t len;
  int prefix;
  uint32_t n;
  uint64_t ttl_ms;
  wire__hist *oldest, *newest;
};

#define WIRE__HIST_MAX_RULES 256u

/* The server's history (wire__topics.hist): made by the first rule. */
typedef struct wire__history {
  wire__htab topics; /* wire__hist by name, same seed as the topic table */
  wire__hrule *rules[WIRE__HIST_MAX_RULES];
  size_t n_rules;
  wire_doc *doc;  /* builds envelopes, transcodes replays */
  uint32_t busy;  /* replays or publishes in progress: no freeing of histories */
  wire_doc *fdoc; /* shared history: decodes the entries that arrive */
  int fetching;   /* shared history: a fetch is being applied (no nested fetch) */
} wire__history;

/* The history of a topic when a rule matches it: *out set (NULL: no rule).
 * create: make it when missing. Returns 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__history_get(wire_server *s, const char *name, size_t len, int create,
                                  wire__hist **out);
/* A publication on h: the envelope value {"topic","offset","data":v}
 * (shallow: v must outlive its use), in the history's doc. NULL: no memory. */
WIRE_HIDDEN wire_value *wire__history_envelope(wire_server *s, wire__hist *h, const wire_value *v);
/* Keep the JSON envelope frame of publication h->seq + 1 (takes a
 * reference) and make it the current one. Returns 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__history_record(wire_server *s, wire__hist *h, wire__sbuf *frame);
/* Publication h->seq excluded c: when c is still in on_connect with a replay
 * noted for h's topic, leave that publication out of it. */
WIRE_HIDDEN void wire__history_excluded(wire_conn *c, wire__hist *h);
/* After a publish: reset the history's doc (not while nested). */
WIRE_HIDDEN void wire__history_done(wire_server *s);
/* wire_conn_subscribe made sub on a connection still in on_connect: note
 * the current position so what is published until it opens is replayed. */
WIRE_HIDDEN void wire__history_subscribed(wire_conn *c, wire__sub *sub);
/* The connection was just opened: replays noted while it was deferred. */
WIRE_HIDDEN void wire__history_conn_open(wire_conn *c);
/* Whether the topic has a history in the process now (no sweep, no rule
 * lookup): it keeps the broker's channel while it does. */
WIRE_HIDDEN int wire__history_has(const wire_server *s, const char *name, size_t len);
/* The number of this process's next publication to h, for the broker (0
 * without a broker). */
WIRE_HIDDEN uint64_t wire__history_own_seq(wire_server *s, wire__hist *h);
/* The broker delivered publication `seq` of `origin` on a topic: when it is
 * not the one after the last seen from that origin, publications were lost
 * (a full publish queue, a channel not yet subscribed): the topic's history
 * starts a new epoch and its subscribers get a truncated message. */
WIRE_HIDDEN void wire__history_seen(wire_server *s, const char *name, size_t len, uint64_t origin,
                                    uint64_t seq);
/* The broker is back after an outage: publications from other processes
 * may be lost. Every history starts a new epoch (empty) and its subscribers
 * get a truncated message, so nothing is missed silently. */
WIRE_HIDDEN void wire__history_lost(wire_server *s);
/* ---- shared history (a broker with wire__hops: Redis Streams) ---- */

/* Whether history topics are stored by the broker (shared by every process). */
WIRE_HIDDEN int wire__history_shared(const wire_server *s);
/* Publish v on h through the broker's shared history (delivered here when it
 * comes back, in position order). Returns 0, WIRE_ESERIALIZE (v is not
 * JSON), or the engine's refusal (counted as dropped): WIRE_ECLOSED,
 * WIRE_EBACKPRESSURE, WIRE_ENOMEM. */
WIRE_HIDDEN int wire__history_send(wire_server *s, wire__hist *h, const wire_value *v,
                                   wire_error *err);
/* Publication `seq` of the topic's shared history in `epoch` was announced:
 * deliver it in order (a hole is fetched first; what cannot be fetched is
 * reported as truncated). Returns >= 0, WIRE_EDESERIALIZE or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__history_announced(wire_server *s, const char *name, size_t len,
                                        uint64_t epoch, uint64_t seq, const uint8_t *json,
                                        size_t n);
/* The broker's channel of a topic is subscribed (again): load its shared
 * history, or deliver what was published since the last one seen here. */
WIRE_HIDDEN void wire__history_channel(wire_server *s, const char *name, size_t len);
/* For each history kept here (the broker re-subscribes their channels). */
WIRE_HIDDEN void wire__history_each(wire_server *s,
                                    void (*fn)(void *ud, const char *name, size_t len), void *ud);

/* wire_server_free: free every history and rule. */
WIRE_HIDDEN void wire__history_free(wire_server *s);

/* topics.c for history.c: a shared frame for one subscriber (1 queued, 0
 * refused), a new shared frame, and c's subscription to a topic. */
WIRE_HIDDEN int wire__topics_deliver_one(wire_server *s, wire_conn *c, wire__sbuf *b);
WIRE_HIDDEN wire__sbuf *wire__sbuf_frame(wire__topics *T, int opcode, const void *data, size_t len);
WIRE_HIDDEN wire__sub *wire__topics_conn_sub(const wire_conn *c, const char *name, size_t len);
WIRE_HIDDEN size_t wire__topics_subscribers(const wire_server *s, const char *name, size_t len);
/* Deliver one frame per codec (json also to RAW) to every open subscriber
 * of a topic. Returns the number queued. */
WIRE_HIDDEN int wire__topics_deliver_codecs(wire_server *s, const char *name, size_t len,
                                            wire__sbuf *json, wire__sbuf *msgpack);

#endif /* WIRE_HISTORY_H */
