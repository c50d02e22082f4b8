/*
 * metrics.c -- the server's counters and what reads them: the per-worker
 * slots shared before forking, the sync of gauges into a slot, summing the
 * slots, the Prometheus text exposition (format 0.0.4) and the JSON stats,
 * the health verdict, the handler latency histogram (wire_server_observe),
 * and the plain-HTTP answers for the metrics and health paths.
 */
#include "metrics.h"

#include "broker.h"
#include "conn_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- slots ----------------------------------------------------------------- */

static wire__mslot *g_slots; /* shared region (MAP_SHARED, before the forks) */
static unsigned g_n_slots;
static int g_slot_taken; /* this process's slot went to a server */

int wire__metrics_share(unsigned workers) {
  if (g_slots != NULL || workers == 0)
    return g_slots ? 0 : -1;
  size_t size = sizeof(wire__mslot) * workers;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -1;
  g_slots = p; /* zero-filled */
  g_n_slots = workers;
  return 0;
}

/* A new worker takes over its index's slot: the counters go on from the
 * worker it replaces, its connections are gone. */
wire__mslot *wire__metrics_new(void) {
  int idx = wire_worker_index();
  if (g_slots != NULL && !g_slot_taken && idx >= 0 && (unsigned)idx < g_n_slots) {
    g_slot_taken = 1;
    wire__mslot *m = &g_slots[idx];
    for (unsigned i = 0; i < WIRE__M_EPS; i++)
      WIRE__M_ADD(m->ep[i].closed, m->ep[i].opened - m->ep[i].closed);
    __atomic_store_n(&m->used, 1, __ATOMIC_RELEASE);
    return m;
  }
  wire__mslot *m = calloc(1, sizeof *m);
  if (m != NULL)
    m->used = 1;
  return m;
}

int wire__metrics_shared(const wire__mslot *m) {
  return g_slots != NULL && m >= g_slots && m < g_slots + g_n_slots;
}

void wire__metrics_free(wire__mslot *m) {
  if (m == NULL)
    return;
  if (wire__metrics_shared(m))
    g_slot_taken = 0; /* the slot stays: the supervisor's region */
  else
    free(m);
}

/* ---- sync and sum ---------------------------------------------------------------- */

/* Copy what other files keep (limit stats, broker, topic gauges) into the
 * slot, bracketed by an odd sequence so a reader in another worker retries
 * rather than reading half of it. */
void wire__metrics_sync(wire_server *s) {
  wire__mslot *m = s->m;
  uint64_t seq = m->seq;
  __atomic_store_n(&m->seq, seq + 1, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  m->stats = s->stats;
  const wire_broker_stats *b = wire__broker_stats(s);
  m->has_broker = b != NULL;
  if (b != NULL)
    m->broker = *b;
  m->topics = s->topics.names.n;
  m->subscriptions = s->topics.subs.n;
  m->publish_drops = s->topics.drops;
  size_t n = 0;
  for (wire_endpoint *ep = s->endpoints; ep; ep = ep->next)
    n++;
  m->n_eps = n;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&m->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Every second in a worker (from the server timer): returns the next time
 * it is due, or 0 when the slot is private (synced when read). */
uint64_t wire__metrics_tick(wire_server *s, uint64_t now) {
  if (!wire__metrics_shared(s->m))
    return 0;
  if (now >= s->m_sync_due) {
    wire__metrics_sync(s);
    s->m_sync_due = now + 1000;
  }
  return s->m_sync_due;
}

static void add_u64(uint64_t *dst, const uint64_t *src, size_t n) {
  for (size_t i = 0; i < n; i++) { /* saturating: UINT64_MAX means "none" (max_buffered_bytes) */
    uint64_t v = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    dst[i] = v > UINT64_MAX - dst[i] ? UINT64_MAX : dst[i] + v;
  }
}

/* Add slot `src` into `dst` (the synced part read consistently). */
static void slot_add(wire__mslot *dst, const wire__mslot *src) {
  add_u64(dst->status, src->status, WIRE__M_STATUS);
  dst->backpressure += __atomic_load_n(&src->backpressure, __ATOMIC_RELAXED);
  wire__mslot tmp;
  for (int tries = 0; tries < 100; tries++) {
    uint64_t seq = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE);
    if (seq & 1)
      continue;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memcpy(&tmp.stats, &src->stats, offsetof(wire__mslot, ep) - offsetof(wire__mslot, stats));
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&src->seq, __ATOMIC_ACQUIRE) == seq)
      break;
  }
  /* every stats field but max_connections is a 64-bit counter, those
   * appended after it included */
  add_u64((uint64_t *)&dst->stats, (const uint64_t *)&tmp.stats,
          offsetof(wire_server_stats, max_connections) / sizeof(uint64_t));
  size_t tail = (offsetof(wire_server_stats, max_connections) + sizeof(unsigned) + 7) & ~(size_t)7;
  add_u64((uint64_t *)((char *)&dst->stats + tail),
          (const uint64_t *)((const char *)&tmp.stats + tail),
          (sizeof(wire_server_stats) - tail) / sizeof(uint64_t));
  const wire_server_stats *st = &tmp.stats;
  dst->stats.max_connections = st->max_connections > UINT32_MAX - dst->stats.max_connections
                                   ? UINT32_MAX
                                   : dst->stats.max_connections + st->max_connections;
  if (tmp.has_broker) {
    dst->has_broker++;
    dst->broker.state += tmp.broker.state == WIRE_BROKER_UP; /* workers up */
    dst->broker.published += tmp.broker.published;
    dst->broker.dropped += tmp.broker.dropped;
    dst->broker.received += tmp.broker.received;
    dst->broker.invalid += tmp.broker.invalid;
    dst->broker.reconnects += tmp.broker.reconnects;
    dst->broker.channels += tmp.broker.channels;
    dst->broker.pending_bytes += tmp.broker.pending_bytes;
  }
  dst->topics += tmp.topics;
  dst->subscriptions += tmp.subscriptions;
  dst->publish_drops += tmp.publish_drops;
  add_u64((uint64_t *)dst->ep, (const uint64_t *)src->ep, sizeof(dst->ep) / (sizeof(uint64_t)));
}

/* The merged view: this server's own counters, or every worker's summed.
 * NULL when memory runs out; `workers` gets the slots summed. */
static wire__mslot *merged(wire_server *s, unsigned *workers) {
  wire__metrics_sync(s);
  wire__mslot *sum = calloc(1, sizeof *sum);
  if (sum == NULL)
    return NULL;
  *workers = 0;
  if (!wire__metrics_shared(s->m)) {
    slot_add(sum, s->m);
    *workers = 1;
    return sum;
  }
  for (unsigned i = 0; i < g_n_slots; i++) {
    if (!__atomic_load_n(&g_slots[i].used, __ATOMIC_ACQUIRE))
      continue;
    slot_add(sum, &g_slots[i]);
    (*workers)++;
  }
  return sum;
}

/* ---- output buffer ------------------------------------------------------------------ */

typedef struct obuf {
  char *p;
  size_t len, cap;
  int oom;
} obuf;

static void put(obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(obuf *b, const char *fmt, ...) {
  if (b->oom)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->p != NULL && (size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + (size_t)n + 1)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
}

/* A label value with \, " and newline escaped (exposition format), which is
 * also a valid JSON string body for route patterns (no control characters). */
static void put_escaped(obuf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"')
      put(b, "\\%c", *v);
    else if (*v == '\n')
      put(b, "\\n");
    else
      put(b, "%c", *v);
  }
}

/* ---- what is rendered ----------------------------------------------------------------- */

/* wire_server_stats counters and the reason each is rendered under as
 * wirecore_dropped_total{reason}: a counter appended to the struct gets a
 * line here. */
static const struct {
  const char *reason;
  size_t off;
} k_stats[] = {
    {"accept_failed", offsetof(wire_server_stats, accept_failed)},
    {"refused_socket", offsetof(wire_server_stats, refused_sockets)},
    {"refused_connection", offsetof(wire_server_stats, refused_connections)},
    {"send_timeout", offsetof(wire_server_stats, send_timeouts)},
    {"fragment_limit", offsetof(wire_server_stats, fragment_limits)},
    {"per_address", offsetof(wire_server_stats, refused_per_address)},
    {"handshake_rate", offsetof(wire_server_stats, refused_handshake_rate)},
    {"rate_limited", offsetof(wire_server_stats, rate_limited_dropped)},
    {"rate_limit_close", offsetof(wire_server_stats, rate_limited_closed)},
    {"memory_budget", offsetof(wire_server_stats, closed_by_budget)},
    {"message_timeout", offsetof(wire_server_stats, message_timeouts)},
};

static const double k_bounds[WIRE__M_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

static uint64_t stat_at(const wire_server_stats *st, size_t off) {
  uint64_t v;
  memcpy(&v, (const char *)st + off, sizeof v);
  return v;
}

/* The label an endpoint's counters carry: its pattern, or "(other)" for the
 * last slot when more endpoints than slots share it. */
static const char *ep_label(const wire_server *s, size_t i, const wire_endpoint **ep_out) {
  size_t k = 0, n = 0;
  const wire_endpoint *found = NULL;
  for (const wire_endpoint *ep = s->endpoints; ep; ep = ep->next, n++)
    if (k++ == i)
      found = ep;
  *ep_out = found;
  if (found == NULL)
    return NULL;
  return i == WIRE__M_EPS - 1 && n > WIRE__M_EPS ? "(other)" : found->pattern;
}

/* "validation" for WIRE_EVALIDATION: the code's name, lowercased, no E. */
static void err_label(int code, char out[32]) {
  const char *name = wire_err_name(code);
  size_t i = 0;
  if (name[0] == 'E')
    name++;
  for (; name[i] && i < 31; i++)
    out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  out[i] = 0;
}

static void code_label(int i, char out[16]) {
  if (i == WIRE__M_CODES - 1)
    memcpy(out, "app", 4);
  else
    snprintf(out, 16, "%d", 1000 + i);
}

static void head(obuf *b, const char *name, const char *type, const char *help) {
  put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void line_path(obuf *b, const char *name, const char *path, const char *extra_k,
                      const char *extra_v, uint64_t v) {
  put(b, "%s{path=\"", name);
  put_escaped(b, path);
  if (extra_k)
    put(b, "\",%s=\"%s", extra_k, extra_v);
  put(b, "\"} %llu\n", (unsigned long long)v);
}

/* One per-endpoint counter family (field at offset `off` of wire__mep). */
static void family_ep(obuf *b, const wire_server *s, const wire__mslot *m, const char *name,
                      const char *type, const char *help, size_t off) {
  head(b, name, type, help);
  const wire_endpoint *ep;
  for (size_t i = 0; i < WIRE__M_EPS && ep_label(s, i, &ep); i++) {
    uint64_t v;
    memcpy(&v, (const char *)&m->ep[i] + off, sizeof v);
    line_path(b, name, ep_label(s, i, &ep), NULL, NULL, v);
  }
}

/* Close-code families: one line per endpoint and code seen. */
static void family_codes(obuf *b, const wire_server *s, const wire__mslot *m, const char *name,
                         const char *help, size_t off) {
  head(b, name, "counter", help);
  const wire_endpoint *ep;
  for (size_t i = 0; i < WIRE__M_EPS && ep_label(s, i, &ep); i++) {
    const uint64_t *codes = (const uint64_t *)((const char *)&m->ep[i] + off);
    for (int k = 0; k < WIRE__M_CODES; k++) {
      char cl[16];
      code_label(k, cl);
      if (codes[k])
        line_path(b, name, ep_label(s, i, &ep), "code", cl, codes[k]);
    }
  }
}

static void render_histogram(obuf *b, const wire_server *s, const wire__mslot *m) {
  const char *name = "wirecore_handler_duration_seconds";
  head(b, name, "histogram", "Handler run time reported by the packages (wire_server_observe).");
  const wire_endpoint *ep;
  for (size_t i = 0; i < WIRE__M_EPS && ep_label(s, i, &ep); i++) {
    const wire__mep *e = &m->ep[i];
    const char *path = ep_label(s, i, &ep);
    uint64_t cum = 0;
    for (int k = 0; k < WIRE__M_BUCKETS; k++) {
      cum += e->lat[k];
      char le[24];
      if (k == WIRE__M_BUCKETS - 1)
        memcpy(le, "+Inf", 5);
      else
        snprintf(le, sizeof le, "%g", k_bounds[k]);
      put(b, "%s_bucket{path=\"", name);
      put_escaped(b, path);
      put(b, "\",le=\"%s\"} %llu\n", le, (unsigned long long)cum);
    }
    put(b, "%s_sum{path=\"", name);
    put_escaped(b, path);
    put(b, "\"} %.9f\n", (double)e->lat_sum_ns / 1e9);
    put(b, "%s_count{path=\"", name);
    put_escaped(b, path);
    put(b, "\"} %llu\n", (unsigned long long)e->lat_count);
  }
}

#define EPOFF(f) offsetof(wire__mep, f)

static void render_prometheus(obuf *b, const wire_server *s, const wire__mslot *m,
                              unsigned workers) {
  head(b, "wirecore_workers", "gauge", "Processes whose counters this view sums.");
  put(b, "wirecore_workers %u\n", workers);
  head(b, "wirecore_connections_open", "gauge", "Open WebSocket connections.");
  const wire_endpoint *ep;
  for (size_t i = 0; i < WIRE__M_EPS && ep_label(s, i, &ep); i++)
    line_path(b, "wirecore_connections_open", ep_label(s, i, &ep), NULL, NULL,
              m->ep[i].opened - m->ep[i].closed);
  family_ep(b, s, m, "wirecore_connections_total", "counter", "WebSocket connections accepted.",
            EPOFF(opened));
  family_codes(b, s, m, "wirecore_connections_closed_total",
               "Connections ended, by the code on_close saw (1006: dropped, no close frame).",
               EPOFF(ended));
  head(b, "wirecore_handshakes_total", "counter",
       "Answers to upgrade requests by HTTP status (101: upgraded).");
  for (int k = 0; k < WIRE__M_STATUS; k++)
    if (m->status[k])
      put(b, "wirecore_handshakes_total{status=\"%d\"} %llu\n", k + 100,
          (unsigned long long)m->status[k]);
  family_ep(b, s, m, "wirecore_messages_received_total", "counter",
            "Data messages received (complete messages, any frame count).", EPOFF(msgs_in));
  family_ep(b, s, m, "wirecore_received_bytes_total", "counter",
            "Payload bytes of the data messages received.", EPOFF(bytes_in));
  family_ep(b, s, m, "wirecore_messages_sent_total", "counter",
            "Data messages queued for sending (direct sends and topic deliveries).",
            EPOFF(msgs_out));
  family_ep(b, s, m, "wirecore_sent_bytes_total", "counter",
            "Payload bytes of the data messages queued for sending.", EPOFF(bytes_out));
  head(b, "wirecore_errors_total", "counter",
       "Errors reported on connections, by kind (validation, unknown_message, deserialize...).");
  for (size_t i = 0; i < WIRE__M_EPS && ep_label(s, i, &ep); i++)
    for (int k = 1; k < WIRE__M_ERRS; k++)
      if (m->ep[i].errors[k]) {
        char el[32];
        err_label(-k, el);
        line_path(b, "wirecore_errors_total", ep_label(s, i, &ep), "error", el, m->ep[i].errors[k]);
      }
  family_codes(b, s, m, "wirecore_close_frames_received_total", "Close frames received, by code.",
               EPOFF(close_recv));
  family_codes(b, s, m, "wirecore_close_frames_sent_total",
               "Close handshakes the server started, by code.", EPOFF(close_sent));
  head(b, "wirecore_dropped_total", "counter",
       "Connections, sends and publishes refused or cut, by reason.");
  put(b, "wirecore_dropped_total{reason=\"backpressure\"} %llu\n",
      (unsigned long long)m->backpressure);
  for (size_t k = 0; k < sizeof k_stats / sizeof k_stats[0]; k++)
    put(b, "wirecore_dropped_total{reason=\"%s\"} %llu\n", k_stats[k].reason,
        (unsigned long long)stat_at(&m->stats, k_stats[k].off));
  put(b, "wirecore_dropped_total{reason=\"publish\"} %llu\n", (unsigned long long)m->publish_drops);
  put(b, "wirecore_dropped_total{reason=\"broker\"} %llu\n", (unsigned long long)m->broker.dropped);
  head(b, "wirecore_max_connections", "gauge",
       "The effective connection limit (summed over workers).");
  put(b, "wirecore_max_connections %u\n", m->stats.max_connections);
  head(b, "wirecore_buffered_bytes", "gauge",
       "Bytes buffered across all connections (the memory budget's total).");
  put(b, "wirecore_buffered_bytes %llu\n", (unsigned long long)m->stats.buffered_bytes);
  head(b, "wirecore_budget_pauses_total", "counter",
       "Times a connection stopped being read over the memory budget.");
  put(b, "wirecore_budget_pauses_total %llu\n", (unsigned long long)m->stats.paused_by_budget);
  head(b, "wirecore_topics", "gauge", "Topics with local subscribers.");
  put(b, "wirecore_topics %llu\n", (unsigned long long)m->topics);
  head(b, "wirecore_subscriptions", "gauge", "Subscriptions (connection, topic).");
  put(b, "wirecore_subscriptions %llu\n", (unsigned long long)m->subscriptions);
  if (m->has_broker) {
    head(b, "wirecore_broker_up", "gauge", "Processes whose broker connection is up.");
    put(b, "wirecore_broker_up %u\n", (unsigned)m->broker.state);
    static const char *const names[] = {"published", "received", "invalid", "reconnects"};
    const uint64_t vals[] = {m->broker.published, m->broker.received, m->broker.invalid,
                             m->broker.reconnects};
    for (int k = 0; k < 4; k++) {
      char n[64];
      snprintf(n, sizeof n, "wirecore_broker_%s_total", names[k]);
      head(b, n, "counter", "Broker (backplane) activity, see wire_broker_stats.");
      put(b, "%s %llu\n", n, (unsigned long long)vals[k]);
    }
  }
  render_histogram(b, s, m);
}

static void json_ep(obuf *b, const wire_server *s, const wire__mslot *m) {
  put(b, "\"endpoints\":{");
  const wire_endpoint *ep;
  for (size_t i = 0; i < WIRE__M_EPS && ep_label(s, i, &ep); i++) {
    const wire__mep *e = &m->ep[i];
    put(b, "%s\"", i ? "," : "");
    put_escaped(b, ep_label(s, i, &ep));
    put(b,
        "\":{\"connections\":%llu,\"connections_total\":%llu,\"messages_in\":%llu,"
        "\"bytes_in\":%llu,\"messages_out\":%llu,\"bytes_out\":%llu,\"errors\":{",
        (unsigned long long)(e->opened - e->closed), (unsigned long long)e->opened,
        (unsigned long long)e->msgs_in, (unsigned long long)e->bytes_in,
        (unsigned long long)e->msgs_out, (unsigned long long)e->bytes_out);
    int first = 1;
    for (int k = 1; k < WIRE__M_ERRS; k++)
      if (e->errors[k]) {
        char el[32];
        err_label(-k, el);
        put(b, "%s\"%s\":%llu", first ? "" : ",", el, (unsigned long long)e->errors[k]);
        first = 0;
      }
    put(b, "},\"close_codes\":{");
    first = 1;
    for (int k = 0; k < WIRE__M_CODES; k++)
      if (e->ended[k]) {
        char cl[16];
        code_label(k, cl);
        put(b, "%s\"%s\":%llu", first ? "" : ",", cl, (unsigned long long)e->ended[k]);
        first = 0;
      }
    put(b, "},\"handler_count\":%llu,\"handler_seconds\":%.9f}", (unsigned long long)e->lat_count,
        (double)e->lat_sum_ns / 1e9);
  }
  put(b, "}");
}

static void render_json(obuf *b, const wire_server *s, const wire__mslot *m, unsigned workers) {
  uint64_t open = 0, total = 0, mi = 0, bi = 0, mo = 0, bo = 0;
  for (int i = 0; i < WIRE__M_EPS; i++) {
    open += m->ep[i].opened - m->ep[i].closed;
    total += m->ep[i].opened;
    mi += m->ep[i].msgs_in;
    bi += m->ep[i].bytes_in;
    mo += m->ep[i].msgs_out;
    bo += m->ep[i].bytes_out;
  }
  put(b,
      "{\"workers\":%u,\"connections\":%llu,\"connections_total\":%llu,\"messages_in\":%llu,"
      "\"bytes_in\":%llu,\"messages_out\":%llu,\"bytes_out\":%llu,\"topics\":%llu,"
      "\"subscriptions\":%llu,\"max_connections\":%u,\"handshakes\":{",
      workers, (unsigned long long)open, (unsigned long long)total, (unsigned long long)mi,
      (unsigned long long)bi, (unsigned long long)mo, (unsigned long long)bo,
      (unsigned long long)m->topics, (unsigned long long)m->subscriptions,
      m->stats.max_connections);
  int first = 1;
  for (int k = 0; k < WIRE__M_STATUS; k++)
    if (m->status[k]) {
      put(b, "%s\"%d\":%llu", first ? "" : ",", k + 100, (unsigned long long)m->status[k]);
      first = 0;
    }
  put(b, "},\"dropped\":{\"backpressure\":%llu", (unsigned long long)m->backpressure);
  for (size_t k = 0; k < sizeof k_stats / sizeof k_stats[0]; k++)
    put(b, ",\"%s\":%llu", k_stats[k].reason,
        (unsigned long long)stat_at(&m->stats, k_stats[k].off));
  put(b, ",\"publish\":%llu,\"broker\":%llu},", (unsigned long long)m->publish_drops,
      (unsigned long long)m->broker.dropped);
  if (m->has_broker)
    put(b,
        "\"broker\":{\"up\":%u,\"published\":%llu,\"received\":%llu,\"invalid\":%llu,"
        "\"reconnects\":%llu},",
        (unsigned)m->broker.state, (unsigned long long)m->broker.published,
        (unsigned long long)m->broker.received, (unsigned long long)m->broker.invalid,
        (unsigned long long)m->broker.reconnects);
  else
    put(b, "\"broker\":null,");
  json_ep(b, s, m);
  put(b, "}");
}

int64_t wire_server_metrics_render(wire_server *s, int format, char *buf, size_t cap) {
  if (s == NULL || (buf == NULL && cap > 0) ||
      (format != WIRE_METRICS_PROMETHEUS && format != WIRE_METRICS_JSON))
    return WIRE_EINVAL;
  unsigned workers = 0;
  wire__mslot *m = merged(s, &workers);
  if (m == NULL)
    return WIRE_ENOMEM;
  obuf b = {0};
  if (format == WIRE_METRICS_PROMETHEUS)
    render_prometheus(&b, s, m, workers);
  else
    render_json(&b, s, m, workers);
  free(m);
  if (b.oom) {
    free(b.p);
    return WIRE_ENOMEM;
  }
  if (cap > 0) {
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    memcpy(buf, b.p, n);
    buf[n] = 0;
  }
  free(b.p);
  return (int64_t)b.len;
}

/* ---- latency ------------------------------------------------------------------------- */

int wire_server_observe(wire_server *s, const wire_endpoint *ep, double seconds) {
  if (s == NULL || ep == NULL || ep->server != s || !(seconds >= 0))
    return WIRE_EINVAL;
  wire__mep *e = ep->m;
  int k = 0;
  while (k < WIRE__M_BUCKETS - 1 && seconds > k_bounds[k])
    k++;
  WIRE__M_INC(e->lat[k]);
  WIRE__M_INC(e->lat_count);
  WIRE__M_ADD(e->lat_sum_ns, (uint64_t)(seconds * 1e9));
  return 0;
}

/* ---- health and the HTTP answers -------------------------------------------------------- */

/* 200 while accepting (and the broker, if any, is up), else 503; the JSON
 * body goes to b. */
static int health(wire_server *s, obuf *b) {
  const wire_broker_stats *bs = wire__broker_stats(s);
  const char *broker = bs == NULL                      ? "none"
                       : bs->state == WIRE_BROKER_UP   ? "up"
                       : bs->state == WIRE_BROKER_DOWN ? "down"
                                                       : "connecting";
  const char *status = "ok";
  if (s->state != WIRE__SV_LISTENING)
    status = "shutting_down";
  else if (s->draining)
    status = "draining";
  else if (bs != NULL && bs->state != WIRE_BROKER_UP)
    status = "broker_down";
  put(b, "{\"status\":\"%s\",\"connections\":%zu,\"broker\":\"%s\"}\n", status, s->n_established,
      broker);
  return strcmp(status, "ok") == 0 ? 200 : 503;
}

/* Does the request line start "GET <path>" followed by a space or '?'? */
static int is_get(const char *buf, size_t len, const char *path) {
  size_t n = path ? strlen(path) : 0;
  if (n == 0 || len < 5 + n || memcmp(buf, "GET ", 4) != 0 || memcmp(buf + 4, path, n) != 0)
    return 0;
  return buf[4 + n] == ' ' || buf[4 + n] == '?';
}

int wire__metrics_want(const wire_server *s, const char *buf, size_t len, int ops) {
  const char *mp = s->metrics_path, *hp = s->health_path;
  if (ops) {
    mp = mp ? mp : "/metrics";
    hp = hp ? hp : "/health";
  }
  return is_get(buf, len, mp) ? 1 : is_get(buf, len, hp) ? 2 : 0;
}

int wire__metrics_http(wire_server *s, int want, char **resp, size_t *rlen) {
  obuf body = {0};
  int status = 200;
  const char *ctype = "application/json";
  if (want == 1) {
    int64_t n = wire_server_metrics_render(s, WIRE_METRICS_PROMETHEUS, NULL, 0);
    if (n >= 0) {
      body.p = malloc((size_t)n + 1);
      body.oom = body.p == NULL;
      if (body.p != NULL)
        body.len =
            (size_t)wire_server_metrics_render(s, WIRE_METRICS_PROMETHEUS, body.p, (size_t)n + 1);
    } else {
      body.oom = 1;
    }
    ctype = "text/plain; version=0.0.4; charset=utf-8";
  } else {
    status = health(s, &body);
  }
  obuf out = {0};
  if (!body.oom)
    put(&out,
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        status, status == 200 ? "OK" : "Service Unavailable", ctype, body.len);
  if (!body.oom && !out.oom && body.len > 0)
    put(&out, "%.*s", (int)body.len, body.p);
  free(body.p);
  if (body.oom || out.oom) {
    free(out.p);
    return -1;
  }
  *resp = out.p;
  *rlen = out.len;
  return 0;
}

/* Copy a path option: NULL for off, else it must look like a path. */
static int path_copy(const char *p, char **out) {
  *out = NULL;
  if (p == NULL || *p == 0)
    return 0;
  if (*p != '/')
    return WIRE_EINVAL;
  for (const char *q = p; *q; q++)
    if ((unsigned char)*q <= ' ' || *q == '?' || *q == 0x7f)
      return WIRE_EINVAL;
  *out = strdup(p);
  return *out ? 0 : WIRE_ENOMEM;
}

int wire_server_set_metrics(wire_server *s, const char *metrics_path, const char *health_path) {
  if (s == NULL)
    return WIRE_EINVAL;
  char *mp, *hp;
  int r = path_copy(metrics_path, &mp);
  if (r != 0)
    return r;
  r = path_copy(health_path, &hp);
  if (r != 0) {
    free(mp);
    return r;
  }
  free(s->metrics_path);
  free(s->health_path);
  s->metrics_path = mp;
  s->health_path = hp;
  return 0;
}
