/*
 * loadgen.c -- the WebSocket load generator of the benchmark harness.
 *
 * One thread, one libuv loop, wslay on the client side. It opens N connections
 * to one server and then either plays ping-pong (one message in flight per
 * connection), floods (W messages in flight per connection) or holds the
 * connections idle (so the runner can read the server's memory per
 * connection). In fan-out mode the connections are subscribers of R rooms
 * (path + "r<k>"); the first connection of each room also publishes, and the
 * server relays each message to the whole room: it counts deliveries and the
 * publish-to-delivery latency from a timestamp in the payload. It reports messages/s, round-trip
 * latency percentiles from a log-linear histogram, and errors: human text on stderr, one JSON line
 * on stdout. With --events it also prints JSON event lines on stdout (ready, start, end) so the
 * runner can sample the server exactly around the window.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>
#include <wslay/wslay.h>

/* The RFC 6455 sample key and its accept value: no SHA-1 needed to check it. */
#define LG_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define LG_WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define LG_MAX_HANDSHAKE 8192
#define LG_READ_BUF (256 * 1024)

/* Histogram: values below 2^7 exact, above that 64 sub-buckets per power of
 * two (about 1.5 % resolution), up to 2^63 ns. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_EXACT (2u * HIST_SUB)
#define HIST_BUCKETS (HIST_EXACT + (64u - HIST_SUB_BITS - 1u) * HIST_SUB)

typedef enum lg_mode { MODE_PINGPONG, MODE_FLOOD, MODE_IDLE, MODE_FANOUT } lg_mode;
typedef enum lg_payload { PAYLOAD_TEXT, PAYLOAD_BINARY, PAYLOAD_JSON } lg_payload;
typedef enum lg_phase { PHASE_CONNECT, PHASE_WARMUP, PHASE_MEASURE, PHASE_DRAIN } lg_phase;
typedef enum lg_state { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_CLOSED } lg_state;

typedef struct lg_opts {
  const char *host;
  int port;
  const char *path;
  unsigned conns;
  size_t size;
  unsigned window;
  double duration;
  double warmup;
  double connect_timeout;
  unsigned connect_concurrency;
  lg_mode mode;
  lg_payload payload;
  const char *json_type;
  const char *label;
  int events;
  int verify;
  unsigned rooms; /* fan-out: connection i subscribes to room i % rooms */
  int sub_port;   /* fan-out: subscribers (not publishers) connect here; 0 = port */
} lg_opts;

typedef struct lg_hist {
  uint64_t counts[HIST_BUCKETS];
  uint64_t total;
  uint64_t sum;
  uint64_t max;
} lg_hist;

struct lg;

typedef struct lg_conn {
  uv_tcp_t tcp; /* first member: handle pointers cast back to the connection */
  uv_connect_t connect_req;
  struct lg *lg;
  wslay_event_context_ptr ws;
  lg_state state;
  int counted_error; /* one error per connection at most */
  char *hs;          /* handshake response bytes until the blank line */
  size_t hs_len;
  const uint8_t *in; /* the read chunk wslay's recv callback consumes */
  size_t in_len;
  uint8_t *out; /* frames wslay produced during this turn, written after it */
  size_t out_len, out_cap;
  uint64_t *sent_at; /* ring of send times, one per message in flight */
  unsigned head, inflight;
  uint32_t rng;
  unsigned room; /* fan-out */
} lg_conn;

/* Fan-out: one room's publisher and the W messages it has in flight, each
 * complete once every member got it (got[slot] == members). */
typedef struct lg_room {
  unsigned members;
  lg_conn *publisher;
  uint32_t next_seq;
  unsigned inflight;
  uint32_t *seq; /* per slot (seq % window) */
  uint32_t *got;
} lg_room;

typedef struct lg_write {
  uv_write_t req;
  uv_buf_t buf;
} lg_write;

typedef struct lg {
  lg_opts o;
  uv_loop_t *loop;
  uv_timer_t phase_timer;
  uv_timer_t connect_timer;
  uv_signal_t sigint, sigterm;
  struct sockaddr_storage addr;
  struct sockaddr_storage sub_addr; /* --sub-port */
  lg_conn *conns;
  uint8_t *payload;
  size_t payload_len;
  char *request;
  size_t request_len;
  char *read_buf;
  lg_phase phase;
  unsigned started, connecting, opened, finished;
  uint64_t errors, connect_errors, handshake_errors, closed_early, mismatches;
  uint64_t sent, received, received_total;
  uint64_t t_begin, t_connected, t_start, t_end;
  int stopping; /* SIGINT/SIGTERM: finish as soon as possible */
  int gave_up;  /* the connect phase timed out: run with what is open */
  int timers_closed;
  lg_hist hist;
  lg_room *rooms;     /* fan-out */
  uint64_t published; /* fan-out: messages every member received, in the window */
} lg;

/* ---- output ----------------------------------------------------------- */

/* Print one JSON event line on stdout and flush it so the runner sees it now. */
static void lg_event(lg *g, const char *fmt, ...) {
  if (!g->o.events)
    return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

static void lg_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

/* ---- histogram -------------------------------------------------------- */

static unsigned hist_index(uint64_t v) {
  if (v < HIST_EXACT)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - HIST_SUB_BITS;
  unsigned sub = (unsigned)(v >> shift) - HIST_SUB; /* 0..HIST_SUB-1 */
  return HIST_EXACT + (msb - HIST_SUB_BITS - 1u) * HIST_SUB + sub;
}

/* The middle of bucket i's value range. */
static double hist_value(unsigned i) {
  if (i < HIST_EXACT)
    return (double)i;
  unsigned k = i - HIST_EXACT;
  unsigned shift = k / HIST_SUB + 1u;
  uint64_t lo = ((uint64_t)(HIST_SUB + k % HIST_SUB)) << shift;
  return (double)lo + (double)((uint64_t)1 << shift) / 2.0;
}

static void hist_add(lg_hist *h, uint64_t v) {
  h->counts[hist_index(v)]++;
  h->total++;
  h->sum += v;
  if (v > h->max)
    h->max = v;
}

/* The q-quantile (0..1) in nanoseconds, 0 when empty. */
static double hist_quantile(const lg_hist *h, double q) {
  if (h->total == 0)
    return 0;
  uint64_t rank = (uint64_t)(q * (double)h->total + 0.5);
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) {
      double v = hist_value(i);
      return v > (double)h->max ? (double)h->max : v;
    }
  }
  return (double)h->max;
}

/* ---- connection bookkeeping -------------------------------------------- */

static void lg_maybe_finish(lg *g);
static void lg_connect_next(lg *g);
static void lg_send_one(lg_conn *c);

static void on_closed(uv_handle_t *h) {
  lg_conn *c = (lg_conn *)h;
  lg *g = c->lg;
  if (c->ws)
    wslay_event_context_free(c->ws);
  c->ws = NULL;
  free(c->hs);
  c->hs = NULL;
  free(c->out);
  c->out = NULL;
  c->out_cap = c->out_len = 0;
  g->finished++;
  lg_maybe_finish(g);
}

/* Count one error for the connection (only its first) and close its socket. */
static void conn_fail(lg_conn *c, uint64_t *counter) {
  lg *g = c->lg;
  if (!c->counted_error && g->phase != PHASE_DRAIN) {
    c->counted_error = 1;
    g->errors++;
    if (counter)
      (*counter)++;
  }
  if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
    g->connecting--;
    lg_connect_next(g);
  }
  if (c->state != ST_CLOSED) {
    c->state = ST_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  }
}

/* Close the socket without counting an error (end of run). */
static void conn_drop(lg_conn *c) {
  if (c->state == ST_CLOSED)
    return;
  if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
    c->lg->connecting--;
  }
  c->state = ST_CLOSED;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---- writing ----------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  lg_write *w = (lg_write *)req;
  lg_conn *c = (lg_conn *)req->handle;
  free(w->buf.base);
  free(w);
  if (status < 0 && status != UV_ECANCELED && c->state != ST_CLOSED) {
    conn_fail(c, &c->lg->closed_early);
  }
}

/* Write bytes now if the socket takes them, queue the rest (copied).
 * Returns 0, or -1 after failing the connection. */
static int conn_write(lg_conn *c, const void *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0) {
    conn_fail(c, &c->lg->closed_early);
    return -1;
  }
  if ((size_t)n == len)
    return 0;
  lg_write *w = malloc(sizeof *w);
  char *copy = malloc(len - (size_t)n);
  if (!w || !copy)
    lg_die("out of memory");
  memcpy(copy, (const char *)data + n, len - (size_t)n);
  w->buf = uv_buf_init(copy, (unsigned)(len - (size_t)n));
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_write) < 0) {
    free(copy);
    free(w);
    conn_fail(c, &c->lg->closed_early);
    return -1;
  }
  return 0;
}

/* Let wslay serialize what is queued, then write it out in one go. */
static void conn_flush(lg_conn *c) {
  if (c->state == ST_CLOSED || !c->ws)
    return;
  if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
    conn_fail(c, &c->lg->closed_early);
    return;
  }
  if (c->out_len) {
    size_t n = c->out_len;
    c->out_len = 0;
    conn_write(c, c->out, n);
  }
}

/* ---- wslay callbacks ------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud) {
  lg_conn *c = ud;
  if (c->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < c->in_len ? len : c->in_len;
  memcpy(buf, c->in, n);
  c->in += n;
  c->in_len -= n;
  return (ssize_t)n;
}

/* Frames are appended to the connection's out buffer and written after
 * wslay_event_send returns: one write per turn instead of one per frame. */
static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  lg_conn *c = ud;
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 256;
    while (cap < c->out_len + len)
      cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p) {
      wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
    c->out = p;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
  return (ssize_t)len;
}

static int ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud) {
  lg_conn *c = ud;
  for (size_t i = 0; i < len; i++) {
    c->rng ^= c->rng << 13; /* xorshift32: masks need not be secret here */
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    buf[i] = (uint8_t)c->rng;
  }
  return 0;
}

/* An echo came back: record its round trip and keep the window full. */
static void on_echo(lg_conn *c, const struct wslay_event_on_msg_recv_arg *arg) {
  lg *g = c->lg;
  if (c->inflight == 0) {
    g->mismatches++; /* a message nobody asked for */
    g->errors++;
    return;
  }
  uint64_t now = uv_hrtime();
  uint64_t sent = c->sent_at[c->head];
  c->head = (c->head + 1) % g->o.window;
  c->inflight--;
  g->received_total++;
  if (g->o.verify && g->o.payload != PAYLOAD_JSON &&
      (arg->msg_length != g->payload_len || memcmp(arg->msg, g->payload, g->payload_len) != 0)) {
    g->mismatches++;
    g->errors++;
  }
  if (g->phase == PHASE_MEASURE) {
    g->received++;
    hist_add(&g->hist, now - sent);
  }
  if (g->phase == PHASE_WARMUP || g->phase == PHASE_MEASURE)
    lg_send_one(c);
}

static void on_fanout(lg_conn *c, const struct wslay_event_on_msg_recv_arg *arg);

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud) {
  lg_conn *c = ud;
  if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) &&
      c->lg->o.mode == MODE_FANOUT) {
    on_fanout(c, arg);
  } else if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
    on_echo(c, arg);
  } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    /* wslay queues the close reply itself; the server closing first during
     * the run is an error, during the drain it is the expected answer. */
    if (c->lg->phase != PHASE_DRAIN)
      conn_fail(c, &c->lg->closed_early);
    else
      c->state = ST_CLOSING;
  }
}

/* ---- sending ------------------------------------------------------------ */

/* Queue one payload message and remember when it left. */
static void lg_send_one(lg_conn *c) {
  lg *g = c->lg;
  if (c->state != ST_OPEN || c->inflight >= g->o.window)
    return;
  struct wslay_event_msg m = {
      .opcode = g->o.payload == PAYLOAD_BINARY ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME,
      .msg = g->payload,
      .msg_length = g->payload_len,
  };
  if (wslay_event_queue_msg(c->ws, &m) != 0) {
    conn_fail(c, &g->closed_early);
    return;
  }
  c->sent_at[(c->head + c->inflight) % g->o.window] = uv_hrtime();
  c->inflight++;
  g->sent++;
}

/* Fill every open connection's window: the start of the load. */
static void lg_fill_all(lg *g) {
  for (unsigned i = 0; i < g->o.conns; i++) {
    lg_conn *c = &g->conns[i];
    if (c->state != ST_OPEN)
      continue;
    while (c->state == ST_OPEN && c->inflight < g->o.window)
      lg_send_one(c);
    conn_flush(c);
  }
}

/* ---- fan-out ------------------------------------------------------------ */

#define FANOUT_HEAD 35 /* "%016x %08x %08x " : send time (ns), room, sequence */

/* Publish the room's next message: the payload starts with the send time,
 * the room and the sequence number, the rest is padding. */
static void fanout_publish(lg_room *r, unsigned room) {
  lg_conn *c = r->publisher;
  lg *g = c->lg;
  if (c->state != ST_OPEN || r->inflight >= g->o.window)
    return;
  uint32_t seq = r->next_seq++;
  char head[FANOUT_HEAD + 1];
  snprintf(head, sizeof head, "%016" PRIx64 " %08x %08x ", uv_hrtime(), room, seq);
  memcpy(g->payload, head, FANOUT_HEAD);
  struct wslay_event_msg m = {WSLAY_TEXT_FRAME, g->payload, g->payload_len};
  if (wslay_event_queue_msg(c->ws, &m) != 0) { /* wslay copies the message */
    conn_fail(c, &g->closed_early);
    return;
  }
  r->seq[seq % g->o.window] = seq;
  r->got[seq % g->o.window] = 0;
  r->inflight++;
  g->sent++;
}

/* Start every room: each publisher fills its window. */
static void fanout_start(lg *g) {
  for (unsigned i = 0; i < g->o.conns; i++)
    if (g->conns[i].state == ST_OPEN)
      g->rooms[g->conns[i].room].members++;
  for (unsigned i = 0; i < g->o.conns; i++) {
    lg_conn *c = &g->conns[i];
    lg_room *r = &g->rooms[c->room];
    if (c->state == ST_OPEN && r->publisher == NULL)
      r->publisher = c;
  }
  for (unsigned k = 0; k < g->o.rooms; k++) {
    lg_room *r = &g->rooms[k];
    if (r->publisher == NULL)
      continue;
    while (r->publisher->state == ST_OPEN && r->inflight < g->o.window)
      fanout_publish(r, k);
    conn_flush(r->publisher);
  }
}

/* A relayed message: check it belongs to this connection's room, record its
 * latency, and when the whole room has it let the publisher send the next. */
static void on_fanout(lg_conn *c, const struct wslay_event_on_msg_recv_arg *arg) {
  lg *g = c->lg;
  uint64_t now = uv_hrtime();
  char head[FANOUT_HEAD + 1];
  uint64_t sent;
  unsigned room, seq;
  g->received_total++;
  if (arg->msg_length != g->payload_len) {
    g->mismatches++;
    g->errors++;
    return;
  }
  memcpy(head, arg->msg, FANOUT_HEAD);
  head[FANOUT_HEAD] = 0;
  if (sscanf(head, "%16" SCNx64 " %8x %8x", &sent, &room, &seq) != 3 || room != c->room ||
      g->rooms[room].seq[seq % g->o.window] != seq) {
    g->mismatches++;
    g->errors++;
    return;
  }
  lg_room *r = &g->rooms[room];
  if (g->phase == PHASE_MEASURE) {
    g->received++;
    if (!g->o.sub_port || c != r->publisher) /* --sub-port: only the other server's deliveries */
      hist_add(&g->hist, now - sent);
  }
  if (++r->got[seq % g->o.window] < r->members)
    return;
  r->inflight--;
  if (g->phase == PHASE_MEASURE)
    g->published++;
  if (g->phase == PHASE_WARMUP || g->phase == PHASE_MEASURE) {
    fanout_publish(r, room);
    if (r->publisher != c)
      conn_flush(r->publisher);
  }
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  lg_conn *c = (lg_conn *)h;
  /* One shared buffer: every read is consumed before the callback returns. */
  *buf = uv_buf_init(c->lg->read_buf, LG_READ_BUF);
}

/* Hand bytes to wslay, then write whatever it queued in reply. */
static void conn_feed(lg_conn *c, const uint8_t *data, size_t len) {
  c->in = data;
  c->in_len = len;
  if (wslay_event_recv(c->ws) != 0) {
    conn_fail(c, &c->lg->closed_early);
    return;
  }
  if (c->state == ST_CLOSED)
    return;
  conn_flush(c);
  if (c->state == ST_CLOSING && c->ws && !wslay_event_want_write(c->ws) &&
      wslay_event_get_close_sent(c->ws) && wslay_event_get_close_received(c->ws)) {
    conn_drop(c);
  }
}

static void conn_opened(lg_conn *c);

/* Accumulate the 101 response; the bytes after it are already frames. */
static void conn_handshake_read(lg_conn *c, const char *data, size_t len) {
  if (c->hs_len + len > LG_MAX_HANDSHAKE) {
    conn_fail(c, &c->lg->handshake_errors);
    return;
  }
  if (!c->hs && !(c->hs = malloc(LG_MAX_HANDSHAKE + 1)))
    lg_die("out of memory");
  memcpy(c->hs + c->hs_len, data, len);
  c->hs_len += len;
  c->hs[c->hs_len] = '\0';
  char *end = strstr(c->hs, "\r\n\r\n");
  if (!end)
    return;
  size_t head = (size_t)(end - c->hs) + 4;
  if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0 || !strstr(c->hs, LG_WS_ACCEPT)) {
    if (!c->counted_error && c->lg->handshake_errors < 3) {
      char *eol = strstr(c->hs, "\r\n");
      fprintf(stderr, "loadgen: handshake refused: %.*s\n", (int)(eol - c->hs), c->hs);
    }
    conn_fail(c, &c->lg->handshake_errors);
    return;
  }
  size_t rest = c->hs_len - head;
  char *tail = NULL;
  if (rest) {
    tail = malloc(rest);
    if (!tail)
      lg_die("out of memory");
    memcpy(tail, c->hs + head, rest);
  }
  free(c->hs);
  c->hs = NULL;
  c->hs_len = 0;
  conn_opened(c);
  if (rest && c->state == ST_OPEN)
    conn_feed(c, (const uint8_t *)tail, rest);
  free(tail);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  lg_conn *c = (lg_conn *)s;
  if (n == 0)
    return;
  if (n < 0) {
    if (c->lg->phase == PHASE_DRAIN)
      conn_drop(c);
    else
      conn_fail(c, &c->lg->closed_early);
    return;
  }
  if (c->state == ST_HANDSHAKE)
    conn_handshake_read(c, buf->base, (size_t)n);
  else if (c->state == ST_OPEN || c->state == ST_CLOSING)
    conn_feed(c, (const uint8_t *)buf->base, (size_t)n);
}

/* ---- connecting ---------------------------------------------------------- */

static const struct wslay_event_callbacks lg_ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .genmask_callback = ws_genmask,
    .on_msg_recv_callback = ws_on_msg,
};

static void lg_all_connected(lg *g);

/* The 101 arrived: set up wslay and, once every connection is settled, start. */
static void conn_opened(lg_conn *c) {
  lg *g = c->lg;
  if (wslay_event_context_client_init(&c->ws, &lg_ws_callbacks, c) != 0)
    lg_die("out of memory");
  wslay_event_config_set_max_recv_msg_length(c->ws, (uint64_t)g->payload_len * 2 + (1u << 20));
  c->state = ST_OPEN;
  g->connecting--;
  g->opened++;
  if (g->phase == PHASE_CONNECT) {
    lg_connect_next(g);
  } else if ((g->phase == PHASE_WARMUP || g->phase == PHASE_MEASURE) && g->o.mode != MODE_FANOUT) {
    while (c->state == ST_OPEN && c->inflight < g->o.window)
      lg_send_one(c);
    conn_flush(c);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  lg_conn *c = req->data;
  if (c->state == ST_CLOSED)
    return;
  if (status < 0) {
    if (!c->counted_error && c->lg->connect_errors < 3)
      fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(status));
    conn_fail(c, &c->lg->connect_errors);
    return;
  }
  c->state = ST_HANDSHAKE;
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
    conn_fail(c, &c->lg->connect_errors);
    return;
  }
  lg *g = c->lg;
  if (g->o.mode == MODE_FANOUT) { /* the room is the last path segment */
    char head[2048];
    int n = snprintf(head, sizeof head, g->request, c->room);
    conn_write(c, head, (size_t)n);
    return;
  }
  conn_write(c, g->request, g->request_len);
}

/* Start connections while fewer than connect_concurrency handshakes are in
 * progress: a burst of 10,000 SYNs would overflow the server's backlog. */
static void lg_connect_next(lg *g) {
  while (g->phase == PHASE_CONNECT && !g->stopping && !g->gave_up && g->started < g->o.conns &&
         g->connecting < g->o.connect_concurrency) {
    lg_conn *c = &g->conns[g->started++];
    c->lg = g;
    c->rng = 2463534242u ^ (uint32_t)(g->started * 2654435761u);
    c->room = (g->started - 1) % g->o.rooms;
    c->state = ST_CONNECTING;
    g->connecting++;
    uv_tcp_init(g->loop, &c->tcp);
    c->connect_req.data = c;
    /* --sub-port: the first connection of each room (its publisher) goes to
     * --port, every subscriber to the other server */
    struct sockaddr_storage *to =
        g->o.sub_port && g->started > g->o.rooms ? &g->sub_addr : &g->addr;
    int r = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)to, on_connect);
    if (r < 0) {
      if (g->connect_errors < 3)
        fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(r));
      conn_fail(c, &g->connect_errors);
    }
  }
  if (g->phase == PHASE_CONNECT && g->connecting == 0 &&
      (g->started == g->o.conns || g->stopping || g->gave_up)) {
    lg_all_connected(g);
  }
}

/* ---- phases -------------------------------------------------------------- */

static void lg_stop(lg *g);

static void on_phase_timer(uv_timer_t *t) {
  lg *g = t->data;
  if (g->phase == PHASE_WARMUP) {
    g->phase = PHASE_MEASURE;
    g->t_start = uv_hrtime();
    lg_event(g, "{\"event\":\"start\"}");
    uv_timer_start(&g->phase_timer, on_phase_timer, (uint64_t)(g->o.duration * 1000), 0);
  } else if (g->phase == PHASE_MEASURE) {
    g->t_end = uv_hrtime();
    lg_event(g, "{\"event\":\"end\",\"received\":%" PRIu64 "}", g->received);
    lg_stop(g);
  } else if (g->phase == PHASE_DRAIN) {
    /* The close handshakes did not finish in time: drop what is left. */
    for (unsigned i = 0; i < g->started; i++)
      conn_drop(&g->conns[i]);
  }
}

static void on_connect_timeout(uv_timer_t *t) {
  lg *g = t->data;
  if (g->phase != PHASE_CONNECT)
    return;
  fprintf(stderr, "loadgen: connect phase timed out (%u of %u open)\n", g->opened, g->o.conns);
  for (unsigned i = 0; i < g->started; i++) {
    lg_conn *c = &g->conns[i];
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
      conn_fail(c, &g->connect_errors);
  }
  /* The connections never started count as failed connects. */
  g->errors += g->o.conns - g->started;
  g->connect_errors += g->o.conns - g->started;
  g->gave_up = 1;
  lg_connect_next(g);
}

static void lg_all_connected(lg *g) {
  uv_timer_stop(&g->connect_timer);
  g->t_connected = uv_hrtime();
  lg_event(g, "{\"event\":\"ready\",\"connected\":%u,\"errors\":%" PRIu64 "}", g->opened,
           g->errors);
  fprintf(stderr, "loadgen: %u/%u connections open in %.2f s\n", g->opened, g->o.conns,
          (double)(g->t_connected - g->t_begin) / 1e9);
  if (g->stopping || g->opened == 0) {
    lg_stop(g);
    return;
  }
  if (g->o.mode == MODE_IDLE) {
    /* Hold: the measure phase is the holding time, no messages. */
    g->phase = PHASE_MEASURE;
    g->t_start = uv_hrtime();
    lg_event(g, "{\"event\":\"start\"}");
    uv_timer_start(&g->phase_timer, on_phase_timer, (uint64_t)(g->o.duration * 1000), 0);
    return;
  }
  g->phase = PHASE_WARMUP;
  if (g->o.mode == MODE_FANOUT)
    fanout_start(g);
  else
    lg_fill_all(g);
  uv_timer_start(&g->phase_timer, on_phase_timer, (uint64_t)(g->o.warmup * 1000), 0);
}

/* End of the run: stop sending, close every connection with 1000, and give
 * the close handshakes a moment before dropping the sockets. */
static void lg_stop(lg *g) {
  if (g->phase == PHASE_DRAIN)
    return;
  if (g->phase == PHASE_MEASURE && !g->t_end)
    g->t_end = uv_hrtime();
  g->phase = PHASE_DRAIN;
  uv_timer_stop(&g->connect_timer);
  uv_close((uv_handle_t *)&g->sigint, NULL);
  uv_close((uv_handle_t *)&g->sigterm, NULL);
  for (unsigned i = 0; i < g->started; i++) {
    lg_conn *c = &g->conns[i];
    if (c->state == ST_OPEN) {
      c->state = ST_CLOSING;
      wslay_event_queue_close(c->ws, 1000, NULL, 0);
      conn_flush(c);
    } else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
      conn_drop(c);
    }
  }
  uv_timer_start(&g->phase_timer, on_phase_timer, 2000, 0);
  lg_maybe_finish(g);
}

static void lg_maybe_finish(lg *g) {
  if (g->phase == PHASE_CONNECT) {
    lg_connect_next(g);
    return;
  }
  if (g->phase == PHASE_DRAIN && g->finished == g->started && !g->timers_closed) {
    g->timers_closed = 1;
    uv_close((uv_handle_t *)&g->phase_timer, NULL);
    uv_close((uv_handle_t *)&g->connect_timer, NULL);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  lg *g = s->data;
  g->stopping = 1;
  if (g->phase == PHASE_CONNECT) {
    lg_connect_next(g);
    return;
  }
  lg_stop(g);
}

/* ---- report ---------------------------------------------------------------- */

static const char *mode_name(lg_mode m) {
  return m == MODE_PINGPONG ? "pingpong"
         : m == MODE_FLOOD  ? "flood"
         : m == MODE_IDLE   ? "idle"
                            : "fanout";
}
static const char *payload_name(lg_payload p) {
  return p == PAYLOAD_TEXT ? "text" : p == PAYLOAD_BINARY ? "binary" : "json";
}

static void lg_report(lg *g) {
  double secs = g->t_end > g->t_start ? (double)(g->t_end - g->t_start) / 1e9 : 0;
  double rate = secs > 0 ? (double)g->received / secs : 0;
  double p50 = hist_quantile(&g->hist, 0.50) / 1e3, p99 = hist_quantile(&g->hist, 0.99) / 1e3;
  double p999 = hist_quantile(&g->hist, 0.999) / 1e3;
  double mean = g->hist.total ? (double)g->hist.sum / (double)g->hist.total / 1e3 : 0;
  double maxv = (double)g->hist.max / 1e3;
  double connect_s = g->t_connected ? (double)(g->t_connected - g->t_begin) / 1e9 : 0;
  printf("{\"event\":\"result\",\"label\":\"%s\",\"mode\":\"%s\",\"payload\":\"%s\","
         "\"connections\":%u,\"connected\":%u,\"size\":%zu,\"window\":%u,"
         "\"duration_s\":%.3f,\"connect_s\":%.3f,\"messages\":%" PRIu64
         ",\"messages_total\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"msgs_per_s\":%.1f,"
         "\"latency_us\":{\"mean\":%.1f,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
         "\"errors\":%" PRIu64 ",\"connect_errors\":%" PRIu64 ",\"handshake_errors\":%" PRIu64
         ",\"closed_early\":%" PRIu64 ",\"mismatches\":%" PRIu64
         ",\"rooms\":%u,\"published\":%" PRIu64 "}\n",
         g->o.label, mode_name(g->o.mode), payload_name(g->o.payload), g->o.conns, g->opened,
         g->payload_len, g->o.window, secs, connect_s, g->received, g->received_total, g->sent,
         rate, mean, p50, p99, p999, maxv, g->errors, g->connect_errors, g->handshake_errors,
         g->closed_early, g->mismatches, g->o.mode == MODE_FANOUT ? g->o.rooms : 0, g->published);
  fflush(stdout);
  if (g->o.mode == MODE_IDLE) {
    fprintf(stderr, "loadgen: held %u connections for %.1f s, %" PRIu64 " errors\n", g->opened,
            secs, g->errors);
    return;
  }
  if (g->o.mode == MODE_FANOUT)
    fprintf(stderr, "loadgen: fanout, %u rooms, %" PRIu64 " messages delivered to every member\n",
            g->o.rooms, g->published);
  fprintf(stderr,
          "loadgen: %s %s, %u conns x %u in flight, %zu B: %.0f msg/s over %.1f s\n"
          "loadgen: latency us  mean %.1f  p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n"
          "loadgen: errors %" PRIu64 " (connect %" PRIu64 ", handshake %" PRIu64
          ", closed early %" PRIu64 ", mismatches %" PRIu64 ")\n",
          mode_name(g->o.mode), payload_name(g->o.payload), g->opened, g->o.window, g->payload_len,
          rate, secs, mean, p50, p99, p999, maxv, g->errors, g->connect_errors, g->handshake_errors,
          g->closed_early, g->mismatches);
}

/* ---- setup -------------------------------------------------------------- */

/* Build the message every connection sends: S bytes of text, binary, or a
 * typed JSON chat message whose text field pads it to S bytes. */
static void lg_build_payload(lg *g) {
  size_t s = g->o.size;
  if (g->o.payload == PAYLOAD_JSON) {
    char head[128];
    int hn = snprintf(head, sizeof head, "{\"type\":\"%s\",\"user\":\"bench\",\"text\":\"",
                      g->o.json_type);
    if (hn < 0 || (size_t)hn >= sizeof head)
      lg_die("--json-type too long");
    size_t fixed = (size_t)hn + 2; /* closing quote and brace */
    size_t pad = s > fixed ? s - fixed : 1;
    g->payload_len = fixed + pad;
    g->payload = malloc(g->payload_len);
    if (!g->payload)
      lg_die("out of memory");
    memcpy(g->payload, head, (size_t)hn);
    for (size_t i = 0; i < pad; i++)
      g->payload[hn + i] = (uint8_t)('a' + i % 26);
    memcpy(g->payload + hn + pad, "\"}", 2);
    return;
  }
  g->payload_len = s;
  g->payload = malloc(s ? s : 1);
  if (!g->payload)
    lg_die("out of memory");
  for (size_t i = 0; i < s; i++) {
    g->payload[i] =
        g->o.payload == PAYLOAD_BINARY ? (uint8_t)(i * 131u + 7u) : (uint8_t)('a' + i % 26);
  }
}

/* In fan-out mode the request is a template whose %u is the room. */
static void lg_build_request(lg *g) {
  char buf[2048];
  int n = snprintf(buf, sizeof buf,
                   "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: " LG_WS_KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\nOrigin: http://%s:%d\r\n\r\n",
                   g->o.path, g->o.mode == MODE_FANOUT ? "r%u" : "", g->o.host, g->o.port,
                   g->o.host, g->o.port);
  if (n < 0 || (size_t)n >= sizeof buf)
    lg_die("path too long");
  g->request = strdup(buf);
  g->request_len = (size_t)n;
}

/* 10,000 sockets need more than the usual 1,024 descriptors. */
static void lg_raise_nofile(unsigned conns) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)conns + 64) {
    fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE is %llu, fewer than %u connections fit\n",
            (unsigned long long)rl.rlim_cur, conns);
  }
}

static void usage(FILE *f) {
  fputs(
      "usage: loadgen [options]\n"
      "  --host H            server address (default 127.0.0.1)\n"
      "  --port P            server port (default 8080)\n"
      "  --path /P           request path (default /)\n"
      "  -c, --conns N       connections (default 100; idle mode: 10000)\n"
      "  -s, --size S        message size in bytes (default 32)\n"
      "  -w, --window W      messages in flight per connection (default 1 = ping-pong;\n"
      "                      more than 1 selects flood)\n"
      "  -d, --duration T    measured seconds (idle: holding seconds; default 5)\n"
      "  --warmup T          unmeasured seconds before the window (default 1)\n"
      "  --mode M            pingpong | flood | idle | fanout\n"
      "  --sub-port P        fanout: subscribers connect to this port, publishers to --port\n"
      "                      (two servers on one broker; latency: the other server's only)\n"
      "  --rooms R           fanout: connections join rooms path + \"r0\" .. \"r<R-1>\" in turn;\n"
      "                      the first of each room publishes W messages in flight, each\n"
      "                      relayed by the server to the whole room (default 1 room)\n"
      "  --text | --binary | --json   payload kind (default text)\n"
      "  --json-type NAME    the type field of JSON messages (default chat)\n"
      "  --connect-concurrency K   handshakes in progress at once (default 256)\n"
      "  --connect-timeout T       seconds for the connect phase (default 60)\n"
      "  --verify            compare every echo with the message sent\n"
      "  --events            print JSON event lines (ready, start, end) on stdout\n"
      "  --label NAME        copied into the result line\n"
      "Output: human text on stderr, one JSON result line on stdout.\n"
      "Exit status: 0 when no error happened, 1 otherwise, 2 on bad usage.\n",
      f);
}

static double parse_num(const char *opt, const char *v) {
  char *end;
  errno = 0;
  double d = strtod(v ? v : "", &end);
  if (!v || errno || *end || d < 0)
    lg_die("bad value for %s: %s", opt, v ? v : "(none)");
  return d;
}

static void parse_args(lg_opts *o, int argc, char **argv) {
  int conns_set = 0, mode_set = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(name) (strcmp(a, name) == 0 && (i++, 1))
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      exit(0);
    } else if (TAKE("--host"))
      o->host = v;
    else if (TAKE("--port"))
      o->port = (int)parse_num(a, v);
    else if (TAKE("--path"))
      o->path = v;
    else if (TAKE("-c") || TAKE("--conns"))
      o->conns = (unsigned)parse_num(a, v), conns_set = 1;
    else if (TAKE("-s") || TAKE("--size"))
      o->size = (size_t)parse_num(a, v);
    else if (TAKE("-w") || TAKE("--window"))
      o->window = (unsigned)parse_num(a, v);
    else if (TAKE("-d") || TAKE("--duration"))
      o->duration = parse_num(a, v);
    else if (TAKE("--warmup"))
      o->warmup = parse_num(a, v);
    else if (TAKE("--json-type"))
      o->json_type = v;
    else if (TAKE("--label"))
      o->label = v;
    else if (TAKE("--sub-port"))
      o->sub_port = (int)parse_num(a, v);
    else if (TAKE("--rooms"))
      o->rooms = (unsigned)parse_num(a, v);
    else if (TAKE("--connect-concurrency"))
      o->connect_concurrency = (unsigned)parse_num(a, v);
    else if (TAKE("--connect-timeout"))
      o->connect_timeout = parse_num(a, v);
    else if (TAKE("--mode")) {
      mode_set = 1;
      if (v && strcmp(v, "pingpong") == 0)
        o->mode = MODE_PINGPONG;
      else if (v && strcmp(v, "flood") == 0)
        o->mode = MODE_FLOOD;
      else if (v && strcmp(v, "idle") == 0)
        o->mode = MODE_IDLE;
      else if (v && strcmp(v, "fanout") == 0)
        o->mode = MODE_FANOUT;
      else
        lg_die("bad --mode: %s", v ? v : "(none)");
    } else if (strcmp(a, "--text") == 0)
      o->payload = PAYLOAD_TEXT;
    else if (strcmp(a, "--binary") == 0)
      o->payload = PAYLOAD_BINARY;
    else if (strcmp(a, "--json") == 0)
      o->payload = PAYLOAD_JSON;
    else if (strcmp(a, "--verify") == 0)
      o->verify = 1;
    else if (strcmp(a, "--events") == 0)
      o->events = 1;
    else {
      usage(stderr);
      lg_die("unknown option %s", a);
    }
#undef TAKE
    if (!v && i >= argc)
      lg_die("%s needs a value", a);
  }
  if (!o->host || !o->path || !o->json_type || !o->label)
    lg_die("an option needs a value");
  if (!mode_set)
    o->mode = o->window > 1 ? MODE_FLOOD : MODE_PINGPONG;
  if (o->mode == MODE_PINGPONG)
    o->window = 1;
  if (o->mode == MODE_IDLE && !conns_set)
    o->conns = 10000;
  if (o->conns == 0 || o->window == 0 || o->connect_concurrency == 0)
    lg_die("N, W, K must be > 0");
  if (o->port <= 0 || o->port > 65535)
    lg_die("bad port");
  if (o->path[0] != '/' || strchr(o->path, '%'))
    lg_die("the path must start with / and hold no %%");
  if (o->mode == MODE_FANOUT) {
    if (o->rooms == 0 || o->rooms > o->conns)
      lg_die("--rooms must be between 1 and the number of connections");
    if (o->size < FANOUT_HEAD)
      o->size = FANOUT_HEAD; /* room for the timestamp, room and sequence */
    o->payload = PAYLOAD_TEXT;
  }
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  lg *g = calloc(1, sizeof *g);
  if (!g)
    lg_die("out of memory");
  g->o = (lg_opts){.host = "127.0.0.1",
                   .port = 8080,
                   .path = "/",
                   .conns = 100,
                   .size = 32,
                   .window = 1,
                   .duration = 5,
                   .warmup = 1,
                   .connect_timeout = 60,
                   .connect_concurrency = 256,
                   .json_type = "chat",
                   .label = "",
                   .rooms = 1};
  parse_args(&g->o, argc, argv);
  lg_raise_nofile(g->o.conns);

  if (uv_ip4_addr(g->o.host, g->o.port, (struct sockaddr_in *)&g->addr) != 0 &&
      uv_ip6_addr(g->o.host, g->o.port, (struct sockaddr_in6 *)&g->addr) != 0) {
    lg_die("--host must be an IPv4 or IPv6 literal: %s", g->o.host);
  }
  if (g->o.sub_port &&
      uv_ip4_addr(g->o.host, g->o.sub_port, (struct sockaddr_in *)&g->sub_addr) != 0 &&
      uv_ip6_addr(g->o.host, g->o.sub_port, (struct sockaddr_in6 *)&g->sub_addr) != 0)
    lg_die("--sub-port needs an IPv4 or IPv6 --host");
  lg_build_payload(g);
  lg_build_request(g);
  g->read_buf = malloc(LG_READ_BUF);
  g->conns = calloc(g->o.conns, sizeof *g->conns);
  uint64_t *rings = calloc((size_t)g->o.conns * g->o.window, sizeof *rings);
  if (!g->read_buf || !g->conns || !rings)
    lg_die("out of memory");
  for (unsigned i = 0; i < g->o.conns; i++)
    g->conns[i].sent_at = rings + (size_t)i * g->o.window;
  uint32_t *slots = NULL;
  if (g->o.mode == MODE_FANOUT) {
    g->rooms = calloc(g->o.rooms, sizeof *g->rooms);
    slots = calloc((size_t)g->o.rooms * g->o.window * 2, sizeof *slots);
    if (!g->rooms || !slots)
      lg_die("out of memory");
    for (unsigned k = 0; k < g->o.rooms; k++) {
      g->rooms[k].seq = slots + (size_t)k * g->o.window * 2;
      g->rooms[k].got = g->rooms[k].seq + g->o.window;
      for (unsigned w = 0; w < g->o.window; w++)
        g->rooms[k].seq[w] = UINT32_MAX; /* no message in this slot yet */
    }
  }

  g->loop = uv_default_loop();
  uv_timer_init(g->loop, &g->phase_timer);
  uv_timer_init(g->loop, &g->connect_timer);
  g->phase_timer.data = g->connect_timer.data = g;
  uv_signal_init(g->loop, &g->sigint);
  uv_signal_init(g->loop, &g->sigterm);
  g->sigint.data = g->sigterm.data = g;
  uv_signal_start(&g->sigint, on_signal, SIGINT);
  uv_signal_start(&g->sigterm, on_signal, SIGTERM);

  g->t_begin = uv_hrtime();
  g->phase = PHASE_CONNECT;
  uv_timer_start(&g->connect_timer, on_connect_timeout, (uint64_t)(g->o.connect_timeout * 1000), 0);
  lg_connect_next(g);
  uv_run(g->loop, UV_RUN_DEFAULT);

  lg_report(g);
  int failed = g->errors > 0 || g->opened == 0 ||
               (g->o.mode != MODE_IDLE && g->received == 0 && g->t_end > g->t_start);
  uv_loop_close(g->loop);
  free(rings);
  free(slots);
  free(g->rooms);
  free(g->conns);
  free(g->read_buf);
  free(g->payload);
  free(g->request);
  free(g);
  return failed ? 1 : 0;
}
