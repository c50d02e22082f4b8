/*
 * server.c -- servers and endpoints: options and defaults, listeners, accept,
 * the shared read buffer, finding connections (through the loop's handle
 * list), and graceful shutdown. The upgrade phase is handshake.c's, the
 * deadlines timer.c's.
 */
#include "broker.h"
#include "conn_internal.h"
#include "tls.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* ---- server -------------------------------------------------------------- */

/* Deadlines are kept in 32 bits and compared wrap-safely, so a duration
 * must stay under 2^31 ms (24 days); UINT32_MAX keeps meaning "never". */
static uint64_t clamp_ms(unsigned ms) {
  if (ms == UINT32_MAX)
    return UINT32_MAX;
  return ms > 0x7fffffffu ? 0x7fffffffu : ms;
}

/* hardening: connection limits from the descriptor limit, so the server
 * answers 503 instead of running out of descriptors. */
static void fd_limits(wire_server *s, unsigned max_connections) {
  struct rlimit rl;
  rlim_t n = 0;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 32)
    n = rl.rlim_cur;
  s->max_sockets = n ? (size_t)n - 16 : 0;
  if (max_connections == 0)
    max_connections = n == 0 ? UINT_MAX : n >= 128 ? (unsigned)(n - 64) : (unsigned)(n / 2);
  s->max_connections = max_connections;
  s->stats.max_connections = max_connections;
}

/* Public (wirecore.h). The loop is borrowed or embedded; nothing else is
 * allocated until it is needed (docs lazily, the timer at the first listen). */
int wire_server_new(const wire_server_options *opts, wire_server **out) {
  if (out == NULL)
    return WIRE_EINVAL;
  *out = NULL;
  wire_server *s = calloc(1, sizeof *s);
  if (s == NULL)
    return WIRE_ENOMEM;
  wire_server_options o = {0};
  if (opts != NULL)
    o = *opts;
  int r = wire__climits_new(s, &o); /* client limits */
  if (r != 0) {
    wire__climits_free(s);
    free(s);
    return r;
  }
  if (o.uv_loop != NULL) {
    s->loop = o.uv_loop;
  } else {
    if (uv_loop_init(&s->own_loop) != 0) {
      wire__climits_free(s);
      free(s);
      return WIRE_EUV;
    }
    s->loop = &s->own_loop;
    s->owns_loop = 1;
  }
  s->max_handshake = o.max_handshake_size ? o.max_handshake_size : WIRE_DEFAULT_MAX_HANDSHAKE;
  s->handshake_timeout_ms =
      o.handshake_timeout_ms ? o.handshake_timeout_ms : WIRE_DEFAULT_HANDSHAKE_TIMEOUT_MS;
  fd_limits(s, o.max_connections);
  wire__budget_init(s, o.max_buffered_bytes);
  s->handshake.duration = clamp_ms(s->handshake_timeout_ms);
  s->handshake.kind = WIRE__T_HANDSHAKE;
  s->parked.duration = WIRE__PARKED_PROBE_MS;
  s->parked.kind = WIRE__T_PARKED;
  s->next_id = 1;
  wire__topics_init(s, o.max_topics_per_conn); /* topics */
  s->m = wire__metrics_new();                  /* metrics */
  if (s->m == NULL) {
    wire__topics_free(s);
    if (s->owns_loop)
      uv_loop_close(&s->own_loop);
    free(s);
    return WIRE_ENOMEM;
  }
  *out = s;
  return 0;
}

/* Frees an endpoint and everything it compiled or copied. */
static void endpoint_free(wire_endpoint *ep) {
  wire__pipeline_free(ep);
  wire__route_free(ep->route);
  free(ep->pattern);
  free(ep->strings);
  free(ep);
}

/* Frees everything once no handle of ours is left on the loop. A server that
 * listened must have finished its shutdown. */
int wire_server_free(wire_server *s) {
  if (s == NULL)
    return 0;
  wire__broker_close_unlistened(s); /* broker */
  if (s->state == WIRE__SV_LISTENING || s->state == WIRE__SV_SHUTTING || s->n_sockets > 0 ||
      s->n_handles > 0)
    return WIRE_EBUSY;
  while (s->zombies != NULL) {
    wire_conn *c = s->zombies;
    s->zombies = c->tnext;
    wire__conn_free(c);
  }
  while (s->endpoints != NULL) {
    wire_endpoint *ep = s->endpoints;
    s->endpoints = ep->next;
    endpoint_free(ep);
  }
  while (s->pool != NULL) {
    wire__slot *slot = s->pool;
    s->pool = slot->next;
    wire__slot_free(slot);
  }
  if (s->owns_loop) {
    uv_run(&s->own_loop, UV_RUN_NOWAIT); /* close callbacks still pending */
    uv_loop_close(&s->own_loop);
  }
  /* client limits */
  wire__climits_free(s);
  wire__pipeline_server_free(s);
  wire__broker_free(s);     /* broker */
  wire__topics_free(s);     /* topics */
  wire__pmd_server_free(s); /* permessage-deflate */
  wire__metrics_free(s->m); /* metrics */
  free(s->metrics_path);
  free(s->health_path);
  free(s->rbuf);
  wire__tls_set_free(s->tls);
  free(s);
  return 0;
}

size_t wire_server_connection_count(const wire_server *s) {
  return s ? s->n_sockets : 0;
}

int wire_server_stats_get(const wire_server *s, wire_server_stats *out) {
  if (s == NULL || out == NULL)
    return WIRE_EINVAL;
  *out = s->stats;
  for (size_t i = 0; i < WIRE__M_EPS; i++) { /* metrics */
    const wire__mep *e = &s->m->ep[i];
    out->connections_total += e->opened;
    out->messages_in += e->msgs_in;
    out->bytes_in += e->bytes_in;
    out->messages_out += e->msgs_out;
    out->bytes_out += e->bytes_out;
  }
  return 0;
}

/* ---- endpoints ----------------------------------------------------------- */

/* Copy two string arrays into one block: both pointer arrays, then the
 * strings. Returns 0, WIRE_EINVAL (a NULL string) or WIRE_ENOMEM. */
static int copy_strings(wire_endpoint *ep, const wire_endpoint_options *o) {
  const char *const *v[2] = {o->subprotocols, o->allowed_origins};
  size_t n[2] = {v[0] ? o->n_subprotocols : 0, v[1] ? o->n_allowed_origins : 0};
  size_t bytes = (n[0] + n[1]) * sizeof(char *);
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < n[k]; i++) {
      if (v[k][i] == NULL)
        return WIRE_EINVAL;
      bytes += strlen(v[k][i]) + 1;
    }
  ep->opts.subprotocols = ep->opts.allowed_origins = NULL;
  ep->opts.n_subprotocols = n[0];
  ep->opts.n_allowed_origins = n[1];
  if (bytes == 0)
    return 0;
  char *block = malloc(bytes);
  if (block == NULL)
    return WIRE_ENOMEM;
  char **ptrs = (char **)block;
  char *cur = block + (n[0] + n[1]) * sizeof(char *);
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < n[k]; i++) {
      size_t len = strlen(v[k][i]) + 1;
      memcpy(cur, v[k][i], len);
      *ptrs++ = cur;
      cur += len;
    }
  ep->strings = block;
  ep->opts.subprotocols = (const char *const *)block;
  ep->opts.allowed_origins = (const char *const *)block + n[0];
  return 0;
}

/* Copy the options and fill in defaults; the deadline lists take their
 * durations from them. */
static void endpoint_resolve(wire_endpoint *ep, const wire_endpoint_options *o) {
  ep->opts = *o;
  if (ep->opts.max_message_size == 0)
    ep->opts.max_message_size = WIRE_DEFAULT_MAX_MESSAGE;
  if (ep->opts.max_message_size > UINT32_MAX)
    ep->opts.max_message_size = UINT32_MAX; /* the frame scanner counts in 32 bits */
  if (ep->opts.max_backpressure == 0)
    ep->opts.max_backpressure = WIRE_DEFAULT_MAX_BACKPRESSURE;
  if (ep->opts.idle_timeout_ms == 0)
    ep->opts.idle_timeout_ms = WIRE_DEFAULT_IDLE_TIMEOUT_MS;
  if (ep->opts.pong_timeout_ms == 0)
    ep->opts.pong_timeout_ms = WIRE_DEFAULT_PONG_TIMEOUT_MS;
  ep->idle.duration = clamp_ms(ep->opts.idle_timeout_ms);
  ep->idle.kind = WIRE__T_IDLE;
  ep->pong.duration = clamp_ms(ep->opts.pong_timeout_ms);
  ep->pong.kind = WIRE__T_PONG;
  /* A peer that never answers our close is given as long as one that never
   * answers our ping. */
  ep->closing.duration = clamp_ms(ep->opts.pong_timeout_ms);
  ep->closing.kind = WIRE__T_CLOSE;
  /* hardening */
  if (ep->opts.send_timeout_ms == 0)
    ep->opts.send_timeout_ms = WIRE_DEFAULT_SEND_TIMEOUT_MS;
  if (ep->opts.max_message_fragments == 0)
    ep->opts.max_message_fragments = WIRE_DEFAULT_MAX_FRAGMENTS;
  if (ep->opts.message_timeout_ms == 0)
    ep->opts.message_timeout_ms = WIRE_DEFAULT_MESSAGE_TIMEOUT_MS;
  else if (ep->opts.message_timeout_ms != UINT32_MAX)
    ep->opts.message_timeout_ms = (unsigned)clamp_ms(ep->opts.message_timeout_ms);
  ep->stall.duration = clamp_ms(ep->opts.send_timeout_ms);
  ep->stall.kind = WIRE__T_STALL;
  /* client limits: a bucket holds one second's worth unless told */
  if (ep->opts.message_burst == 0)
    ep->opts.message_burst = ep->opts.message_rate;
  if (ep->opts.byte_burst == 0)
    ep->opts.byte_burst = ep->opts.byte_rate;
  wire__rules_resolve(ep);
  wire__pmd_resolve(&ep->opts); /* permessage-deflate */
}

int wire_endpoint_add(wire_server *s, const char *pattern, const wire_endpoint_options *opts,
                      const wire_callbacks *callbacks, void *user_data, wire_endpoint **out,
                      wire_error *err) {
  if (out != NULL)
    *out = NULL;
  if (s == NULL || pattern == NULL)
    return wire__error_set(err, WIRE_EINVAL, "server and pattern are required");
  wire_endpoint_options o = {0};
  if (opts != NULL)
    o = *opts;
  if (o.codec > WIRE_CODEC_MSGPACK || o.invalid_policy > WIRE_INVALID_IGNORE ||
      (o.rate_limit_action != WIRE_RATE_DROP && o.rate_limit_action != WIRE_RATE_CLOSE) ||
      (o.n_message_schemas > 0 && o.message_schemas == NULL))
    return wire__error_set(err, WIRE_EINVAL, "invalid endpoint options");
  if (wire__pmd_check_options(&o) != 0)
    return wire__error_set(
        err, WIRE_EINVAL, "compression is off, shared or dedicated; compression_window_bits 9..15");
  wire_endpoint *ep = calloc(1, sizeof *ep);
  if (ep == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  ep->server = s;
  ep->user_data = user_data;
  size_t idx = 0; /* metrics: counters by registration order */
  for (wire_endpoint *e = s->endpoints; e; e = e->next)
    idx++;
  ep->m = &s->m->ep[idx < WIRE__M_EPS ? idx : WIRE__M_EPS - 1];
  if (callbacks != NULL)
    ep->cb = *callbacks;
  endpoint_resolve(ep, &o);
  int r = wire__route_compile(pattern, &ep->route);
  if (r != 0) {
    free(ep);
    return wire__error_set(err, r, "invalid route pattern: %s", pattern);
  }
  ep->pattern = strdup(pattern);
  r = ep->pattern ? copy_strings(ep, &o) : WIRE_ENOMEM;
  if (r != 0) {
    endpoint_free(ep);
    return wire__error_set(err, r, "bad string option");
  }
  ep->opts.message_schemas = o.message_schemas;
  ep->opts.response_schema = o.response_schema;
  r = wire__pipeline_compile(ep, err);
  ep->opts.message_schemas = NULL;
  ep->opts.response_schema = NULL;
  if (r != 0) {
    endpoint_free(ep);
    return r;
  }
  if (s->endpoints_tail)
    s->endpoints_tail->next = ep;
  else
    s->endpoints = ep;
  s->endpoints_tail = ep;
  if (out != NULL)
    *out = ep;
  return 0;
}

void *wire_endpoint_user_data(const wire_endpoint *ep) {
  return ep ? ep->user_data : NULL;
}
const char *wire_endpoint_pattern(const wire_endpoint *ep) {
  return ep ? ep->pattern : NULL;
}

/* Connections are found through the loop's handle list (a registry would
 * cost every idle connection two pointers). Ours: poll handles (TCP) and TCP
 * handles (TLS) whose data is this server (listeners keep data NULL). */
static wire_conn *conn_of(uv_handle_t *h, wire_server *s) {
  if (h->data != s || uv_is_closing(h))
    return NULL;
  if (h->type == UV_POLL)
    return (wire_conn *)h;
  return h->type == UV_TCP ? wire__tls_conn_of(h) : NULL;
}

typedef struct each_arg {
  wire_server *s;
  void (*fn)(wire_conn *c, void *arg);
  void *arg;
} each_arg;

static void each_cb(uv_handle_t *h, void *arg) {
  each_arg *e = arg;
  wire_conn *c = conn_of(h, e->s);
  if (c != NULL)
    e->fn(c, e->arg);
}

/* fn(c, arg) for every connection not closed yet: TCP ones through the
 * loop's handle list, memory ones through their own list. */
void wire__server_each_conn(wire_server *s, void (*fn)(wire_conn *c, void *arg), void *arg) {
  each_arg e = {s, fn, arg};
  uv_walk(s->loop, each_cb, &e);
  wire__mem_each(s, fn, arg);
}

static void each_conn(wire_server *s, void (*fn)(wire_conn *c, void *arg)) {
  wire__server_each_conn(s, fn, s);
}

static void force_close_one(wire_conn *c, void *arg) {
  (void)arg;
  if (c->state != WIRE__S_CLOSED)
    wire__conn_terminate(c, c->close_code ? c->close_code : 1006, NULL, 0);
}

void wire__server_force_close(wire_server *s) {
  each_conn(s, force_close_one);
}

/* ---- new connections ------------------------------------------------------------ */

/* hardening: descriptors are short, whoever holds them: more sockets than
 * RLIMIT_NOFILE minus 16, or a socket handed a descriptor number that high
 * (descriptors are allocated lowest first, so the process as a whole, files
 * and clients included, is within 16 of EMFILE). */
static int descriptors_short(wire_server *s, wire_conn *c) {
  if (s->max_sockets == 0)
    return 0;
  if (s->n_sockets > s->max_sockets)
    return 1;
  uv_os_fd_t fd;
  return c->tpi == WIRE__TP_TCP && uv_fileno((uv_handle_t *)&c->poll, &fd) == 0 &&
         (size_t)fd >= s->max_sockets;
}

/* Accepted (any transport): an id, the handshake deadline, reading on. A
 * server shutting down closes what it accepts. */
void wire__conn_start(wire_conn *c, int ok) {
  wire_server *s = WIRE__SRV(c);
  c->id = s->next_id++;
  s->n_sockets++;
  int ops_open = (c->rules & WIRE__R_OPS) && s->state == WIRE__SV_SHUTTING; /* metrics */
  if (!ok || (s->state != WIRE__SV_LISTENING && !ops_open)) {
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
  if (descriptors_short(s, c)) {
    /* hardening: keep the last descriptors for what is already open */
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)busy, sizeof busy - 1);
    (void)WIRE__TP(c)->try_write(c, &b, 1);
    s->stats.refused_sockets++;
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
  wire__tlist_put(c, &s->handshake);
  wire__update_reading(c);
}

static void listener_close_cb(uv_handle_t *h) {
  wire__listener *l = (wire__listener *)h;
  wire_server *s = l->server;
  s->n_handles--;
  free(l);
  wire__server_check_done(s);
}

/* ---- listen ---------------------------------------------------------------- */

static int map_uv_listen_error(int r) {
  if (r == UV_EADDRINUSE)
    return WIRE_EADDRINUSE;
  if (r == UV_EINVAL)
    return WIRE_EINVAL;
  return WIRE_ELISTEN;
}

/* metrics: ops = 1 for a listener that serves only the metrics and health
 * paths. */
static int listen_on(wire_server *s, const char *host, int port, uv_connection_cb on_conn,
                     int ops);

int wire_server_listen(wire_server *s, const char *host, int port) {
  return listen_on(s, host, port, wire__tcp_on_connection, 0);
}

int wire__server_listen_cb(wire_server *s, const char *host, int port, uv_connection_cb on_conn) {
  return listen_on(s, host, port, on_conn, 0);
}

int wire_server_listen_metrics(wire_server *s, const char *host, int port) {
  return listen_on(s, host, port, wire__tcp_on_connection, 1);
}

int wire_server_metrics_port(const wire_server *s) {
  for (const wire__listener *l = s ? s->listeners : NULL; l; l = l->next)
    if (l->ops)
      return l->port;
  return -1;
}

static int listen_on(wire_server *s, const char *host, int port, uv_connection_cb on_conn,
                     int ops) {
  if (s == NULL || port < 0 || port > 65535)
    return WIRE_EINVAL;
  if (s->state == WIRE__SV_SHUTTING || s->state == WIRE__SV_DONE)
    return WIRE_ESTATE;
  if (host == NULL || strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  struct sockaddr_storage ss;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return WIRE_EINVAL;
  if (wire__timer_init(s) != 0 || wire__wake_init(s) != 0)
    return WIRE_EUV;
  wire__listener *l = calloc(1, sizeof *l);
  if (l == NULL)
    return WIRE_ENOMEM;
  l->server = s;
  l->on_conn = on_conn;
  l->ops = ops;
  if (uv_tcp_init(s->loop, &l->tcp) != 0) {
    free(l);
    return WIRE_EUV;
  }
  s->n_handles++;
  int r = wire__listen_bind(&l->tcp, (struct sockaddr *)&ss); /* workers: SO_REUSEPORT */
  if (r == 0)
    r = uv_listen((uv_stream_t *)&l->tcp, 511, on_conn);
  if (r != 0) {
    uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
    if (s->owns_loop)
      uv_run(s->loop, UV_RUN_NOWAIT);
    return map_uv_listen_error(r);
  }
  struct sockaddr_storage bound;
  int bl = sizeof bound;
  if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &bl) == 0)
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
  if (s->listeners_unref)
    uv_unref((uv_handle_t *)&l->tcp);
  /* append, so the first listener stays first */
  wire__listener **pp = &s->listeners;
  while (*pp)
    pp = &(*pp)->next;
  *pp = l;
  s->state = WIRE__SV_LISTENING;
  s->kick = 1;
  wire__wake_host(s);
  if (wire__metrics_shared(s->m)) /* metrics: a worker syncs its slot every second */
    wire__timer_arm(s, uv_now(s->loop) + 1);
  if (!ops)
    wire__worker_listening(); /* workers: tell the supervisor */
  return 0;
}

int wire_server_port(const wire_server *s) {
  for (const wire__listener *l = s ? s->listeners : NULL; l; l = l->next)
    if (!l->ops)
      return l->port;
  return -1;
}

void wire_server_ref(wire_server *s) {
  if (s == NULL)
    return;
  s->listeners_unref = 0;
  for (wire__listener *l = s->listeners; l; l = l->next)
    uv_ref((uv_handle_t *)&l->tcp);
}

void wire_server_unref(wire_server *s) {
  if (s == NULL)
    return;
  s->listeners_unref = 1;
  for (wire__listener *l = s->listeners; l; l = l->next)
    uv_unref((uv_handle_t *)&l->tcp);
}

/* ---- shutdown ---------------------------------------------------------------- */

/* Metrics listeners stay open through a drain and the graceful shutdown, so
 * health checks see the 503; wire__server_check_done closes them once every
 * connection is gone. */
void wire__server_close_listeners(wire_server *s) {
  wire__listener **pp = &s->listeners;
  while (*pp != NULL) {
    wire__listener *l = *pp;
    if (l->ops && (s->state == WIRE__SV_LISTENING || s->state == WIRE__SV_SHUTTING)) {
      pp = &l->next;
      continue;
    }
    *pp = l->next;
    uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
  }
}

/* When the last socket and listener are gone, close the timer; its close
 * callback finishes the shutdown. */
void wire__server_check_done(wire_server *s) {
  if (s->state != WIRE__SV_SHUTTING || s->n_sockets > 0)
    return;
  while (s->listeners != NULL) { /* metrics listeners: the last to go */
    wire__listener *l = s->listeners;
    s->listeners = l->next;
    uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
  }
  if (wire__timer_close(s) || wire__wake_close(s))
    return;
  if (s->n_handles > 0)
    return;
  s->state = WIRE__SV_DONE;
  if (s->done != NULL)
    s->done(s, s->done_data);
}

/* Shutdown, per connection: 1001 to the open ones, drop handshakes. */
static void shutdown_one(wire_conn *c, void *arg) {
  (void)arg;
  if (c->state == WIRE__S_OPEN)
    wire_conn_close(c, 1001, "server shutting down", 20);
  else if (c->state == WIRE__S_HANDSHAKE || c->state == WIRE__S_DEFERRED)
    wire__conn_terminate(c, 1006, NULL, 0);
}

int wire_server_shutdown(wire_server *s, unsigned timeout_ms, wire_shutdown_cb done,
                         void *user_data) {
  if (s == NULL)
    return WIRE_EINVAL;
  if (s->state == WIRE__SV_SHUTTING || s->state == WIRE__SV_DONE)
    return WIRE_ESTATE;
  wire__enter(s);
  s->state = WIRE__SV_SHUTTING;
  s->done = done;
  s->done_data = user_data;
  uv_update_time(s->loop);
  s->shutdown_deadline = uv_now(s->loop) + (timeout_ms ? timeout_ms : WIRE__DEFAULT_SHUTDOWN_MS);
  wire__server_close_listeners(s);
  each_conn(s, shutdown_one);
  wire__broker_shutdown(s); /* broker: close its connections */
  wire__timer_arm(s, s->shutdown_deadline);
  wire__server_check_done(s);
  s->kick = 1;
  wire__leave(s);
  return 0;
}
