/*
 * broker.h -- the private side of brokers: the server's broker state
 * (broker.c), the envelope codec, the Redis URL parser (redis_url.c) and the
 * hooks topics.c and server.c call. Never installed.
 */
#ifndef WIRE_BROKER_H
#define WIRE_BROKER_H

#include "internal.h"

/* ---- envelope -------------------------------------------------------------- */

#define WIRE__ENV_HEADER 12u
#define WIRE__ENV_VERSION 1u
enum { WIRE__ENV_TEXT = 1, WIRE__ENV_BINARY = 2, WIRE__ENV_VALUE = 3 };
/* Kind flag: 8 bytes (big-endian) after the header number the publication
 * among this origin's publications to the topic (history topics). */
#define WIRE__ENV_SEQ 0x80u

/* A parsed envelope; payload points into the parsed bytes. plain: no header
 * (a message published from outside), origin 0. */
typedef struct wire__envelope {
  int kind; /* WIRE__ENV_* */
  int plain;
  uint64_t origin;
  uint64_t seq; /* with WIRE__ENV_SEQ: the origin's number for this topic; else 0 */
  const uint8_t *payload;
  size_t len;
} wire__envelope;

/* Write the 12-byte header into h (kind may carry WIRE__ENV_SEQ). */
WIRE_HIDDEN void wire__envelope_header(uint8_t h[WIRE__ENV_HEADER], int kind, uint64_t origin);
/* Read an envelope or a plain payload (never reads past n). Returns 0 or
 * WIRE_EDESERIALIZE (an envelope of another version or an unknown kind). */
WIRE_HIDDEN int wire__envelope_parse(const uint8_t *p, size_t n, wire__envelope *out);

/* ---- Redis URLs ------------------------------------------------------------ */

typedef struct wire__redis_url {
  char *host;     /* NUL-terminated, in block_ */
  char *user;     /* decoded; NULL when absent */
  char *password; /* decoded; NULL when absent */
  char *block_;   /* owns the three strings */
  int port;
  int db;
} wire__redis_url;

/* Parse redis://[[user]:password@]host[:port][/db]; IPv6 hosts in brackets.
 * Returns 0, WIRE_EINVAL (err says why) or WIRE_ENOMEM. Free with
 * wire__redis_url_free. */
WIRE_HIDDEN int wire__redis_url_parse(const char *url, wire__redis_url *out, wire_error *err);
WIRE_HIDDEN void wire__redis_url_free(wire__redis_url *u);

/* ---- the server's broker (wire_server.broker) ------------------------------ */

/* ---- shared history (an engine that stores history topics itself) ---------- */

/* One stored publication: its number and the JSON of its data. */
typedef struct wire__hitem {
  uint64_t seq;
  const char *json;
  size_t len;
} wire__hitem;

/* What a fetch read: the topic's epoch and last number in the backplane and
 * the entries asked for, in order (pointing into own_, freed by fetch_free). */
typedef struct wire__hfetch {
  uint64_t epoch, seq;
  wire__hitem *items;
  size_t n;
  void *own_;
} wire__hfetch;

typedef struct wire__hops {
  /* Append json (the data of a publication) to the topic's shared history
   * and announce it, atomically; keep at least maxlen, expire after ttl_ms
   * (0: never) without a publish. Returns 0 or WIRE_ECLOSED (not connected),
   * WIRE_EBACKPRESSURE (queue full), WIRE_ENOMEM. */
  int (*publish)(void *impl, const char *topic, size_t len, const void *json, size_t n,
                 unsigned maxlen, uint64_t ttl_ms);
  /* Blocking, bounded by a short timeout: the topic's epoch (made when it has
   * none) and seq, and either the entries after `after` when `epoch` is the
   * current one (all of them when it is not), or with after == 0 the newest
   * `count`. Returns 0, WIRE_ECLOSED (Redis unreachable) or WIRE_ENOMEM. */
  int (*fetch)(void *impl, const char *topic, size_t len, uint64_t epoch, uint64_t after,
               unsigned count, uint64_t ttl_ms, wire__hfetch *out);
  void (*fetch_free)(wire__hfetch *f);
} wire__hops;

typedef struct wire__broker {
  wire_broker_engine engine;
  const wire__hops *hops; /* NULL: history stays in the process (per-origin numbers) */
  void *impl;
  uint64_t origin;
  wire_broker_stats stats;
  wire_broker_state_cb on_state;
  void *state_data;
  wire_doc *doc; /* values: the envelope's MessagePack, received values */
  uint8_t *env;  /* the envelope being built */
  size_t env_cap;
  int closed; /* engine.close has run */
} wire__broker;

/* topics.c calls these (they do nothing without a broker). */
/* seq: the origin's number of the publication on a history topic, or 0. */
WIRE_HIDDEN void wire__broker_publish(wire_server *s, const char *topic, size_t len, int kind,
                                      const void *data, size_t n, uint64_t seq);
WIRE_HIDDEN void wire__broker_publish_value(wire_server *s, const char *topic, size_t len,
                                            const wire_value *v, uint64_t seq);
WIRE_HIDDEN void wire__broker_topic(wire_server *s, const char *topic, size_t len, int subscribed);
/* The engine confirmed its subscription to a topic's channel: a shared
 * history loads or catches up from here on. */
WIRE_HIDDEN void wire__broker_subscribed(wire_server *s, const char *topic, size_t len);
/* server.c: at wire_server_shutdown and wire_server_free. */
WIRE_HIDDEN void wire__broker_shutdown(wire_server *s);
WIRE_HIDDEN void wire__broker_free(wire_server *s);
/* server.c, wire_server_free: a server that never listened closes its
 * broker's handles there (owned loop: at once). */
WIRE_HIDDEN void wire__broker_close_unlistened(wire_server *s);
/* The broker's stats, for its engine (NULL without a broker). */
WIRE_HIDDEN wire_broker_stats *wire__broker_stats(wire_server *s);

/* topics.c: publish to the local subscribers only (deliveries from the
 * backplane must not go back to it). */
WIRE_HIDDEN int wire__publish_local(wire_server *s, const char *name, size_t len,
                                    wire_msg_kind kind, const void *data, size_t data_len,
                                    wire_conn *exclude);
WIRE_HIDDEN int wire__publish_value_local(wire_server *s, const char *name, size_t len,
                                          const wire_value *v, wire_conn *exclude, wire_error *err);

#endif /* WIRE_BROKER_H */
