/*
 * metrics.h -- the server's counters (metrics.c): one block of plain 64-bit
 * counters per server, written only by the server's loop thread, so counting
 * costs an increment and never a lock. In a worker process the block is that
 * worker's slot of a region the supervisor shared before forking, so any
 * worker can sum every worker's counters. Never installed.
 */
#ifndef WIRE_METRICS_H
#define WIRE_METRICS_H

#include "internal.h"

#include <stdint.h>

#define WIRE__M_EPS 16     /* endpoints counted apart; later ones share the last */
#define WIRE__M_CODES 17   /* close codes 1000..1015, then [16] = 3000..4999 */
#define WIRE__M_ERRS 64    /* error counts by -code (wire_errno) */
#define WIRE__M_BUCKETS 15 /* handler latency: 14 bounds, then +Inf */
#define WIRE__M_STATUS 500 /* handshake answers by status - 100 */

/* One endpoint's counters. Connections open = opened - closed. */
typedef struct wire__mep {
  uint64_t opened, closed;
  uint64_t msgs_in, bytes_in, msgs_out, bytes_out;
  uint64_t errors[WIRE__M_ERRS];
  uint64_t close_recv[WIRE__M_CODES], close_sent[WIRE__M_CODES], ended[WIRE__M_CODES];
  uint64_t lat[WIRE__M_BUCKETS];
  uint64_t lat_count, lat_sum_ns;
} wire__mep;

/* What one server (or one worker) counted. Gauges and the counters kept
 * elsewhere (stats, broker, topics) are copied in by wire__metrics_sync. */
typedef struct wire__mslot {
  uint64_t used; /* a server writes here */
  uint64_t seq;  /* odd while wire__metrics_sync copies (readers retry) */
  uint64_t status[WIRE__M_STATUS];
  uint64_t backpressure; /* sends refused over max_backpressure (closed 1008) */
  /* synced */
  wire_server_stats stats;
  wire_broker_stats broker;
  uint64_t has_broker, topics, subscriptions, publish_drops;
  uint64_t n_eps;
  wire__mep ep[WIRE__M_EPS];
} wire__mslot;

/* Count one; the single writer makes a relaxed load and store enough. */
#define WIRE__M_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define WIRE__M_INC(field) WIRE__M_ADD(field, 1)

/* The index of a close code in the close arrays, or -1 when not counted. */
static inline int wire__m_code(int code) {
  if (code >= 1000 && code <= 1015)
    return code - 1000;
  return code >= 3000 && code <= 4999 ? 16 : -1;
}

/* Take this process's worker slot (the first server of a worker) or
 * allocate a private block; NULL when memory runs out. */
WIRE_HIDDEN wire__mslot *wire__metrics_new(void);
WIRE_HIDDEN void wire__metrics_free(wire__mslot *m);
/* supervisor.c: share one slot per worker before the first fork. Returns 0
 * or -1 (then workers count privately). */
WIRE_HIDDEN int wire__metrics_share(unsigned workers);
/* Whether m is a shared worker slot (the server syncs it every second). */
WIRE_HIDDEN int wire__metrics_shared(const wire__mslot *m);

#endif /* WIRE_METRICS_H */
