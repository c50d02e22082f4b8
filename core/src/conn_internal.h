/*
 * conn_internal.h -- the connection engine's private layout: the server, its
 * endpoints, connections, the pooled wslay contexts and the deadline lists.
 * Shared by server.c (listen, accept, shutdown), handshake.c (the upgrade
 * phase), timer.c (deadlines), conn.c (framing, close, pause), send.c (output
 * queue), pipeline.c (decode, dispatch) and loop.c (the three ways to run).
 * Never installed.
 */
#ifndef WIRE_CONN_INTERNAL_H
#define WIRE_CONN_INTERNAL_H

#include "deflate.h"
#include "client_limits.h"
#include "http.h"
#include "internal.h"
#include "metrics.h"
#include "topics.h"
#include "transport.h"

#include <signal.h>
#include <uv.h>
#include <wslay/wslay.h>

#define WIRE__READ_BUF_SIZE 65536u
#define WIRE__SLOT_POOL_MAX 64u   /* clean wslay contexts kept for reuse */
#define WIRE__SLOT_MSG_KEEP 4096u /* hardening: message buffer a pooled context keeps */
#define WIRE__DEFAULT_SHUTDOWN_MS 5000u
#define WIRE__MAX_IOV 64u /* buffers per transport write */

/* ---- deadline lists ------------------------------------------------------ */

/* Connections waiting for the same kind of deadline with the same duration,
 * kept in deadline order by appending (the duration is constant per list), so
 * the head is always the next to expire and a touch is O(1). */
typedef struct wire__tlist {
  wire_conn *head, *tail;
  uint64_t duration; /* ms; < 2^31, or UINT32_MAX for never */
  uint8_t kind;      /* WIRE__T_* */
} wire__tlist;

enum {
  WIRE__T_HANDSHAKE = 1, /* handshake (or rejection linger) took too long: drop */
  WIRE__T_IDLE,          /* silence: send a ping */
  WIRE__T_PONG,          /* no answer to our ping: drop with 1006 */
  WIRE__T_CLOSE,         /* no answer to our close: drop */
  WIRE__T_STALL,         /* hardening: output made no progress (send_timeout_ms): close 1008 */
  WIRE__T_PARKED         /* not read for the application (paused): is the peer still there? */
};

/* How often a connection that is not being read (a busy or hung handler)
 * has its peer checked for a FIN or a reset. */
#define WIRE__PARKED_PROBE_MS 1000u

/* ---- pooled wslay contexts ---------------------------------------------- */

/* A wslay event context and the small state that lives only while frames are
 * in flight. wslay's user_data is the slot (fixed at init), so a slot can be
 * lent to any connection by swapping `conn`. */
typedef struct wire__slot {
  wslay_event_context_ptr ctx;
  wire_conn *conn;
  struct wire__slot *next; /* pool free list */
  const uint8_t *pre;      /* hardening: held header bytes, served before feed */
  size_t pre_len;
  const uint8_t *feed; /* bytes not yet handed to wslay */
  size_t feed_len;
  uint32_t utf8;     /* incremental UTF-8 state of the text message in flight */
  uint8_t text;      /* the data message in flight is text */
  uint8_t ctrl;      /* the frame being received is a control frame */
  uint8_t failed;    /* a fail-fast check closed the connection: drop the rest */
  uint8_t ctrl_op;   /* opcode of the control frame being received */
  uint8_t ctrl_seen; /* its payload bytes seen so far */
  uint32_t cutf8;    /* UTF-8 state of a close frame's reason */
  /* hardening: the data message in flight, coalesced from its fragments into
   * one buffer (wslay buffers nothing), so its cost follows its payload. */
  uint8_t *msg;
  size_t msg_len, msg_cap;
  /* permessage-deflate (deflate.c): the data message in flight is
   * compressed; it is inflated into zbuf, which then trades places with msg. */
  uint8_t z;
  uint8_t *zbuf;
  size_t zcap;
  uint32_t frags;  /* frames of the message in flight (max_message_fragments) */
  uint64_t msg_t0; /* loop ms when the fragmented message in flight began */
  uint8_t late;    /* it outlived message_timeout_ms: our 1008 is queued */
  uint8_t zbad;    /* its compressed data did not inflate: our 1007 is queued */
  uint8_t reason_len;
  char reason[124]; /* close reason received (or sent), for on_close */
} wire__slot;

/* ---- output -------------------------------------------------------------- */

/* One queued piece of output: a whole frame (header + payload) or raw HTTP. */
typedef struct wire__ochunk {
  struct wire__ochunk *next;
  size_t len, off;    /* off: bytes already written (partial try_write) */
  wire__sbuf *shared; /* topics: a published frame, not data[] (see wire__ochunk_bytes) */
  uint8_t data[];
} wire__ochunk;

/* A write in flight and the chunks it owns. */
struct wire__wreq {
  wire__ochunk *chunks;
  size_t bytes;
  size_t done; /* TCP: bytes the socket took so far */
};

/* A message received while paused, delivered on resume. */
typedef struct wire__pmsg {
  struct wire__pmsg *next;
  size_t len;
  uint8_t kind;
  uint8_t data[];
} wire__pmsg;

/* ---- endpoint ------------------------------------------------------------ */

struct wire_endpoint {
  wire_server *server;
  struct wire_endpoint *next;
  char *pattern;
  wire__route *route;
  wire_endpoint_options opts; /* resolved defaults; arrays deep-copied */
  char *strings;              /* one block owning every copied option string */
  wire_callbacks cb;
  void *user_data;
  wire__tlist idle, pong, closing;
  wire__tlist stall; /* hardening: over max_backpressure, waiting for output progress */
  /* message pipeline (pipeline.c) */
  wire_schema **schemas;
  size_t n_schemas;
  wire_dispatcher *dispatcher;
  wire_schema *response_schema;
  wire__mep *m; /* metrics: this endpoint's counters */
};

/* ---- connection ---------------------------------------------------------- */

enum {
  WIRE__S_HANDSHAKE = 0, /* reading the upgrade request */
  WIRE__S_DEFERRED,      /* on_connect said WIRE_CONNECT_DEFER */
  WIRE__S_REJECTING,     /* an HTTP error response is leaving; then close */
  WIRE__S_OPEN,          /* 101 sent */
  WIRE__S_CLOSING,       /* close frame sent or received */
  WIRE__S_CLOSED         /* uv_close called */
};

/* Flags (wire_conn.flags). */
#define WIRE__F_READING 0x0001u /* uv_read_start is in effect */
#define WIRE__F_FRAG 0x0002u    /* a fragmented data message is open */
#define WIRE__F_DIRTY 0x0004u   /* on server->dirty, waiting to flush */
#define WIRE__F_CLOSE_SENT 0x0008u
#define WIRE__F_CLOSE_RECV 0x0010u
#define WIRE__F_IN_FEED 0x0020u    /* inside wslay_event_recv */
#define WIRE__F_DELIVERING 0x0040u /* draining the paused-message queue */
#define WIRE__F_SHUT_WR 0x0080u    /* uv_shutdown issued, waiting for EOF */
#define WIRE__F_READ_DONE 0x0100u  /* wslay stopped reading (error or close) */
#define WIRE__F_ACCEPTED 0x0200u   /* on_close is owed */
#define WIRE__F_NOTIFIED 0x0400u   /* on_close has run */
#define WIRE__F_DEFER_REF 0x0800u  /* deferred: the app owes accept/reject */
#define WIRE__F_PING_SENT 0x1000u
#define WIRE__F_HCLOSED 0x2000u /* uv close callback has run */
#define WIRE__F_WRITING 0x4000u /* a transport write is in flight */
#define WIRE__F_EOF 0x8000u     /* the peer's FIN (or a read error) arrived */

/* Messages that arrived before the peer's close frame and still wait in the
 * pause queue: they are delivered on resume before the connection finishes,
 * so a close right behind a burst loses none of it. */
#define WIRE__OWES_DELIVERY(c)                                                                     \
  ((c)->pq_head != NULL && (c)->state == WIRE__S_CLOSING && ((c)->flags & WIRE__F_CLOSE_RECV))

struct wire_conn {
  union {
    uv_poll_t poll; /* TCP: first, so a uv handle* is a wire_conn*; poll.data is the server */
    struct {
      void *data;  /* every transport: the server (aliases poll.data) */
      void *state; /* other transports: their own */
    } io;
  };
  wire_endpoint *ep;
  wire_request *req;
  void *data;
  uint64_t id;
  wire_conn *tprev, *tnext; /* deadline list; the server's zombie list once closed */
  wire_conn *dirty_next;
  wire__slot *slot; /* wslay context, only while frames are in flight */
  wire__ochunk *out_head, *out_tail;
  size_t out_bytes;    /* queued + in flight */
  wire__pmsg *pq_head; /* received while paused, in order */
  union {
    struct { /* WIRE__S_HANDSHAKE, WIRE__S_DEFERRED */
      char *buf;
      uint32_t len, cap;
    } hs;
    struct { /* frame boundary scanner (open and closing) */
      /* 32 bits suffice: a frame or message over max_message_size (at most
       * UINT32_MAX) is refused at its header. */
      uint32_t left; /* payload bytes of the current frame not yet seen */
      uint32_t msg;  /* payload of the fragmented message so far */
      uint8_t hdr[14];
      uint8_t have; /* header bytes collected */
      uint8_t held; /* hardening: hdr[0..have) not given to wslay yet */
    } sc;
  } u;
  uint32_t refs;
  uint32_t deadline; /* loop ms, truncated: compared wrap-safely (durations < 2^31) */
  uint16_t flags;
  uint16_t pauses;
  uint16_t close_code; /* code for on_close */
  uint8_t state;
  uint8_t tkind;       /* which deadline list (WIRE__T_*), 0 = none */
  uint8_t rules;       /* WIRE__R_* (rules.c) */
  uint8_t tpi;         /* the byte stream: WIRE__TP_* (transport.h) */
  uint16_t pq_len;     /* messages in the pause queue (one socket read's worth at most) */
  uint16_t held;       /* messages the host holds (wire_conn_hold), saturating */
  /* permessage-deflate (deflate.h): the negotiated parameters (WIRE__PMD_*,
   * 0 = none), in what was padding */
  uint16_t pmd;
  uint8_t tio;         /* TCP: WIRE__TIO_* (transport_tcp.c) */
  wire__csubs *topics; /* topics.c: subscriptions, NULL when none */
  struct wire__cx *x;  /* what few connections need, NULL until used (wire__cx) */
};

/* The state only some connections need, in one block allocated on first use
 * (wire__conn_extras) and freed with the connection: an idle connection with
 * logging, dedicated deflate and per-client limits off has none. */
typedef struct wire__cx {
  struct wire__pmdc *zc; /* deflate.c: a dedicated connection's zlib streams */
  wire__client *client;  /* client_limits.c: its share and buckets */
  uint64_t bin, bout;    /* log.c: data payload bytes received, queued */
  uint32_t t_open;       /* log.c: loop ms (truncated) when counting began */
  uint8_t counted;       /* log.c: t_open, bin and bout are kept */
  struct wire__wreq *tw; /* transport_tcp.c: a write waiting for the socket to take it */
} wire__cx;

/* conn.c: c's extras block, made on first use; NULL when memory runs out. */
WIRE_HIDDEN wire__cx *wire__conn_extras(wire_conn *c);
/* log.c: start the close event's duration and byte counts for c. Returns 0
 * or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__log_count(wire_conn *c);

#define WIRE__MAX_QUEUED 32768u /* max_queued_messages is clamped to this */

/* Rule flags (wire_conn.rules). */
#define WIRE__R_QFULL 0x01u   /* reading stopped by max_queued_messages */
#define WIRE__R_DRAIN 0x02u   /* wire_conn_writable said 0: on_drain is owed */
#define WIRE__R_FAILING 0x04u /* inside wire_conn_fail's on_error */
#define WIRE__R_BUDGET 0x08u  /* reading stopped by the memory budget (budget.c) */
#define WIRE__R_PEER_FIN 0x10u /* parked, and the peer sent its FIN: read what is left */
#define WIRE__R_OPS 0x20u     /* metrics: accepted by a metrics listener */

/* Memory per idle connection is a hard budget (≤ 512 bytes with its request
 * view, docs/architecture.md): keep this struct small, anything needed only
 * while frames are in flight in wire__slot, and what few connections need
 * in wire__cx. */
#define WIRE__SRV(c) ((wire_server *)(c)->io.data)

/* TCP transport state (wire_conn.tio). */
#define WIRE__TIO_READ 0x01u   /* the engine reads */
#define WIRE__TIO_POLL_R 0x02u /* the poll handle watches for input */
#define WIRE__TIO_POLL_W 0x04u /* ... and for writability */
#define WIRE__TIO_SHUT 0x08u   /* a half-close waits for the write in flight */
#define WIRE__TIO_CLOSED 0x10u /* closed: the descriptor is gone */

/* ---- server -------------------------------------------------------------- */

typedef struct wire__listener {
  uv_tcp_t tcp;
  wire_server *server;
  struct wire__listener *next;
  int port;
  uv_connection_cb on_conn; /* the accept callback: TCP or TLS */
  int ops; /* metrics: serves only the metrics and health paths */
} wire__listener;

enum { WIRE__SV_NEW = 0, WIRE__SV_LISTENING, WIRE__SV_SHUTTING, WIRE__SV_DONE };

struct wire_server {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop;
  int state;
  size_t max_handshake;
  unsigned handshake_timeout_ms;
  unsigned max_connections;
  size_t max_sockets;      /* hardening: RLIMIT_NOFILE - 16 (0 = none): 503 at accept */
  wire_server_stats stats; /* hardening */
  wire_endpoint *endpoints, *endpoints_tail;
  wire__listener *listeners;
  int listeners_unref;
  wire_conn *zombies;   /* closed, still referenced (linked by tprev/tnext) */
  wire__mem *mems;      /* open connections on the memory transport */
  size_t n_sockets;     /* conns whose uv handle is not closed yet */
  size_t n_established; /* OPEN or DEFERRED, counted for max_connections */
  uint64_t next_id;
  uv_timer_t timer;
  int timer_init;
  uint64_t timer_due; /* 0 = not armed */
  wire__tlist handshake;
  wire__tlist parked; /* open connections not read while paused (WIRE__PARKED_PROBE_MS) */
  size_t n_handles; /* listeners + timer still open (not yet close_cb'd) */
  uint8_t *rbuf;
  int rbuf_busy;
  wire__slot *pool;
  size_t n_pool;
  wire_conn *dirty;
  int depth;  /* nesting of our own loop callbacks */
  int kick;   /* watchers changed outside uv_run: the host must process now */
  int in_run; /* inside uv_run of the owned loop */
  int woken;  /* the wake handle was signalled since the last process call */
  int wake_open;
  uv_async_t wake;                /* makes the backend fd readable; carries stop requests */
  volatile sig_atomic_t stop_req; /* wire_server_stop was called */
  uint64_t shutdown_deadline;
  wire_shutdown_cb done;
  void *done_data;
  wire_doc *doc;     /* the per-message arena, reset after each on_message */
  wire_doc *out_doc; /* encoding outgoing values and error replies */
  int doc_busy, out_doc_busy;
  wire__topics topics;         /* topics.c */
  struct wire__tls_set *tls;   /* tls.c: the current TLS contexts, NULL without TLS */
  struct wire__broker *broker; /* broker.c: NULL without a broker */
  /* deflate.c: the shared zlib streams, made on first use */
  struct wire__pmds *pmd;
  /* client_limits.c: NULL when no option is on */
  wire__climits *climits;
  /* metrics, health and logs (metrics.c, log.c) */
  wire__mslot *m;
  uint64_t m_sync_due;
  char *metrics_path, *health_path; /* NULL = off */
  int draining;
  wire_log_cb log_cb;
  void *log_user;
  int log_level;
  /* memory budget (budget.c); the running total is stats.buffered_bytes */
  size_t max_buffered;        /* SIZE_MAX: none */
  uint64_t budget_next;       /* loop ms of the next check */
  uint64_t budget_over_since; /* loop ms the total went over (0: under) */
  size_t n_budget_paused;     /* connections with WIRE__R_BUDGET */
  wire_batch_cb batch_cb; /* loop.c: wire_server_set_batch_hook, NULL: none */
  void *batch_user;
};

/* ---- cross-file internals ----------------------------------------------- */

/* loop.c: bracket every libuv callback of ours; the outermost leave flushes
 * the output queued during the callback (one write per connection). */
WIRE_HIDDEN void wire__enter(wire_server *s);
WIRE_HIDDEN void wire__leave(wire_server *s);

/* loop.c: the wake handle (created with the timer, closed after it). */
WIRE_HIDDEN int wire__wake_init(wire_server *s);
/* Start closing it: 1 if that started now, else 0. */
WIRE_HIDDEN int wire__wake_close(wire_server *s);
/* Outside uv_run of an owned loop with watchers changed (kick): make the
 * backend fd readable, once per process call. */
WIRE_HIDDEN void wire__wake_host(wire_server *s);

/* timer.c: deadline lists and the server timer. */
WIRE_HIDDEN void wire__tlist_put(wire_conn *c, wire__tlist *l);
WIRE_HIDDEN void wire__tlist_remove(wire_conn *c);
/* Arm the server timer for loop time `due` unless it fires no later. */
WIRE_HIDDEN void wire__timer_arm(wire_server *s, uint64_t due);
/* Create the (unref'd) server timer once. Returns 0 or a libuv error. */
WIRE_HIDDEN int wire__timer_init(wire_server *s);
/* Start closing the timer: 1 if that started now, else 0. */
WIRE_HIDDEN int wire__timer_close(wire_server *s);

/* server.c */
/* When shutting down and nothing is left, close the timer, then call done. */
WIRE_HIDDEN void wire__server_check_done(wire_server *s);
/* Drop every connection still open (the shutdown deadline passed). */
WIRE_HIDDEN void wire__server_force_close(wire_server *s);
/* wire_server_listen with the listener's accept callback (TCP or TLS). */
WIRE_HIDDEN int wire__server_listen_cb(wire_server *s, const char *host, int port,
                                       uv_connection_cb on_connection);

/* Close every listener (their close callbacks may finish a shutdown). */
WIRE_HIDDEN void wire__server_close_listeners(wire_server *s);

/* workers.c: bind a listener (SO_REUSEPORT in a worker process); returns 0
 * or a libuv error. Tell the supervisor, once, that this worker listens. */
WIRE_HIDDEN int wire__listen_bind(uv_tcp_t *tcp, const struct sockaddr *addr);
WIRE_HIDDEN void wire__worker_listening(void);

/* handshake.c: request-head bytes of a connection in HANDSHAKE or DEFERRED. */
WIRE_HIDDEN void wire__handshake_read(wire_conn *c, const char *data, size_t n);

/* conn.c */
/* Start/stop reading as the connection's state, pauses and backpressure say. */
WIRE_HIDDEN void wire__update_reading(wire_conn *c);
/* Feed bytes read from the socket of an open or closing connection. */
WIRE_HIDDEN void wire__conn_feed(wire_conn *c, const uint8_t *data, size_t len);
/* Close the socket now; on_close(code) first if it is owed. */
WIRE_HIDDEN void wire__conn_terminate(wire_conn *c, int code, const char *reason, size_t rlen);
/* After output drained or state changed: finish a close that is due. */
WIRE_HIDDEN void wire__conn_progress(wire_conn *c);
/* Deliver (or queue while paused) one complete data message. */
WIRE_HIDDEN void wire__conn_deliver(wire_conn *c, int kind, const uint8_t *data, size_t len);
WIRE_HIDDEN void wire__conn_release(wire_conn *c); /* drop an internal ref */
WIRE_HIDDEN void wire__conn_free(wire_conn *c);
WIRE_HIDDEN void wire__slot_free(wire__slot *slot);
/* Start our close handshake (code 0 = none). The caller checked the state. */
WIRE_HIDDEN void wire__conn_start_close(wire_conn *c, int code, const char *reason, size_t rlen);
/* The timer's verdict for a connection whose deadline passed. */
WIRE_HIDDEN void wire__conn_expired(wire_conn *c, int kind);
/* Feed the open connection the bytes that followed the handshake head. */
WIRE_HIDDEN void wire__conn_opened(wire_conn *c, const uint8_t *rest, size_t len);
/* Report a failure to on_error; returns its verdict (nonzero = handled). */
WIRE_HIDDEN int wire__conn_report(wire_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
WIRE_HIDDEN int wire__conn_report_err(wire_conn *c, const wire_error *err);

/* send.c */
/* Queue raw bytes (copied). Returns 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__out_raw(wire_conn *c, const void *data, size_t len);
/* Write raw bytes at once when nothing is queued (no allocation when the
 * kernel takes them all); queue what is left. Returns 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__out_raw_now(wire_conn *c, const void *data, size_t len);
/* Queue one unmasked frame (copied). Returns 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__out_frame(wire_conn *c, int opcode, const void *data, size_t len);
/* Write queued output now, or mark it for the end of the current callback. */
WIRE_HIDDEN void wire__out_schedule(wire_conn *c);
/* A data message of `payload` bytes was queued on c: count it (metrics, the
 * close event's bytes out), schedule the write, and stop reading once more
 * than max_backpressure bytes wait. */
WIRE_HIDDEN void wire__out_queued(wire_conn *c, size_t payload);
WIRE_HIDDEN void wire__out_flush(wire_conn *c);
WIRE_HIDDEN void wire__out_discard(wire_conn *c);
WIRE_HIDDEN int wire__send_frame(wire_conn *c, int opcode, const void *data, size_t len);

/* rules.c */
/* Resolve the rule options' defaults at wire_endpoint_add. */
WIRE_HIDDEN void wire__rules_resolve(wire_endpoint *ep);
/* The pause queue or the held count changed: apply the queued-message bound
 * (the caller updates reading). */
WIRE_HIDDEN void wire__rules_queue_check(wire_conn *c);
/* Output left: fire an owed on_drain once at or below the mark. */
WIRE_HIDDEN void wire__rules_output(wire_conn *c);

/* budget.c: the server-wide count of buffered bytes (one add per change)
 * and its enforcement. */
static inline void wire__budget_add(wire_server *s, size_t n) {
  s->stats.buffered_bytes += n;
  if (s->stats.buffered_bytes > s->stats.buffered_peak)
    s->stats.buffered_peak = s->stats.buffered_bytes;
}
static inline void wire__budget_sub(wire_server *s, size_t n) {
  s->stats.buffered_bytes -= n;
}
/* Resolve max_buffered_bytes at wire_server_new (0: the default). */
WIRE_HIDDEN void wire__budget_init(wire_server *s, size_t max);
/* At the outermost callback's end: over the budget, stop reading the
 * heaviest connections, then close them; back under, read them again. */
static inline int wire__budget_due(const wire_server *s) {
  return s->stats.buffered_bytes > s->max_buffered || s->n_budget_paused > 0;
}
WIRE_HIDDEN void wire__budget_check(wire_server *s);
/* server.c: fn(c, arg) for every connection not closed yet. */
WIRE_HIDDEN void wire__server_each_conn(wire_server *s, void (*fn)(wire_conn *c, void *arg),
                                        void *arg);
/* send.c: drop queued output no write has started on (budget close). */
WIRE_HIDDEN void wire__out_trim(wire_conn *c);
/* conn.c: bytes of the pause queue (walks it; it is short). */
WIRE_HIDDEN size_t wire__conn_pq_bytes(const wire_conn *c);
/* conn.c: drop the pause queue. */
WIRE_HIDDEN void wire__conn_pq_free(wire_conn *c);

/* pipeline.c */
WIRE_HIDDEN int wire__pipeline_compile(wire_endpoint *ep, wire_error *err);
WIRE_HIDDEN void wire__pipeline_free(wire_endpoint *ep);
WIRE_HIDDEN void wire__pipeline_server_free(wire_server *s); /* the docs, made lazily */
WIRE_HIDDEN void wire__pipeline_message(wire_conn *c, int kind, const uint8_t *data, size_t len);

/* ---- topics (topics.c, and the shared-frame hunks of send.c) ------------- */

/* The bytes of a queued chunk: its own, or the published frame it shares. */
static inline uint8_t *wire__ochunk_bytes(wire__ochunk *ch) {
  return ch->shared ? ch->shared->data : ch->data;
}
/* topics.c: give back a node that points at a shared frame (and the
 * node's reference to the frame). */
WIRE_HIDDEN void wire__topics_node_free(wire__ochunk *ch);
/* Free a chunk of the output queue, whichever kind. */
static inline void wire__ochunk_free(wire__ochunk *ch) {
  if (ch->shared)
    wire__topics_node_free(ch);
  else
    free(ch);
}
/* send.c: write a frame header for a payload of len bytes into h (10 bytes
 * of room); returns its length. */
WIRE_HIDDEN size_t wire__frame_header(uint8_t *h, int opcode, size_t len);
/* send.c: append a chunk made by the caller to the output queue. */
WIRE_HIDDEN void wire__out_append(wire_conn *c, wire__ochunk *ch);
/* topics.c: at wire_server_new / wire_server_free. */
WIRE_HIDDEN void wire__topics_init(wire_server *s, unsigned max_per_conn);
WIRE_HIDDEN void wire__topics_free(wire_server *s);
/* topics.c: drop every subscription of a connection that is closing for good
 * (wire__conn_terminate, after on_close). */
WIRE_HIDDEN void wire__topics_conn_drop(wire_conn *c);

/* ---- metrics and logs (metrics.c, log.c) -------------------------------- */

/* Copy gauges and outside counters into the server's slot. */
WIRE_HIDDEN void wire__metrics_sync(wire_server *s);
/* The server timer: sync a worker's slot every second; the next due time or 0. */
WIRE_HIDDEN uint64_t wire__metrics_tick(wire_server *s, uint64_t now);
/* Which path a request head asks for: 1 metrics, 2 health, 0 neither
 * (ops: a metrics listener, where the default paths apply). */
WIRE_HIDDEN int wire__metrics_want(const wire_server *s, const char *buf, size_t len, int ops);
/* The whole HTTP answer for `want` in *resp (malloc'd): 0, or -1 out of
 * memory. */
WIRE_HIDDEN int wire__metrics_http(wire_server *s, int want, char **resp, size_t *rlen);
/* log.c: build and send one event (the caller checked s->log_cb and level). */
WIRE_HIDDEN void wire__log_conn(wire_conn *c, int level, const char *event, int status, int code,
                                const char *message);
#define WIRE__LOG_ON(s, lvl) ((s)->log_cb != NULL && (lvl) >= (s)->log_level)

#endif /* WIRE_CONN_INTERNAL_H */
