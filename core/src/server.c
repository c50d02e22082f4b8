/*
 * server.c -- servers and endpoints: listeners, accept, the connection
 * registry, the HTTP upgrade phase of each connection (read the request head,
 * route, check, on_connect, 101 or an error status), deadline lists driven by
 * one server timer, and graceful shutdown.
 */
#include "conn_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- server -------------------------------------------------------------- */

/* Deadlines are kept in 32 bits and compared wrap-safely, so a duration
 * must stay under 2^31 ms (24 days); UINT32_MAX keeps meaning "never". */
static uint64_t clamp_ms(unsigned ms) {
  if (ms == UINT32_MAX)
    return UINT32_MAX;
  return ms > 0x7fffffffu ? 0x7fffffffu : ms;
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
  if (o.uv_loop != NULL) {
    s->loop = o.uv_loop;
  } else {
    if (uv_loop_init(&s->own_loop) != 0) {
      free(s);
      return WIRE_EUV;
    }
    s->loop = &s->own_loop;
    s->owns_loop = 1;
  }
  s->max_handshake = o.max_handshake_size ? o.max_handshake_size : WIRE_DEFAULT_MAX_HANDSHAKE;
  s->handshake_timeout_ms =
      o.handshake_timeout_ms ? o.handshake_timeout_ms : WIRE_DEFAULT_HANDSHAKE_TIMEOUT_MS;
  s->max_connections = o.max_connections;
  s->handshake.duration = clamp_ms(s->handshake_timeout_ms);
  s->handshake.kind = WIRE__T_HANDSHAKE;
  s->next_id = 1;
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
  wire__pipeline_server_free(s);
  free(s->rbuf);
  free(s);
  return 0;
}

size_t wire_server_connection_count(const wire_server *s) {
  return s ? s->n_sockets : 0;
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
  wire__rules_resolve(ep);
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
      (o.n_message_schemas > 0 && o.message_schemas == NULL))
    return wire__error_set(err, WIRE_EINVAL, "invalid endpoint options");
  wire_endpoint *ep = calloc(1, sizeof *ep);
  if (ep == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  ep->server = s;
  ep->user_data = user_data;
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

/* ---- deadline lists and the timer ---------------------------------------- */

/* The one server timer: expire due list heads, enforce the shutdown
 * deadline, re-arm for the earliest remaining deadline. */
static void timer_cb(uv_timer_t *t);

/* Arm the server timer for `due` unless it already fires no later. */
static void timer_arm(wire_server *s, uint64_t due) {
  if (!s->timer_init)
    return;
  if (s->timer_due != 0 && s->timer_due <= due)
    return;
  uint64_t now = uv_now(s->loop);
  uv_timer_start(&s->timer, timer_cb, due > now ? due - now : 0, 0);
  s->timer_due = due;
}

/* The list a connection's tkind names. */
static wire__tlist *tlist_of(wire_conn *c) {
  switch (c->tkind) {
  case WIRE__T_HANDSHAKE:
    return &WIRE__SRV(c)->handshake;
  case WIRE__T_IDLE:
    return &c->ep->idle;
  case WIRE__T_PONG:
    return &c->ep->pong;
  case WIRE__T_CLOSE:
    return &c->ep->closing;
  default:
    return NULL;
  }
}

void wire__tlist_remove(wire_conn *c) {
  wire__tlist *l = tlist_of(c);
  if (l == NULL)
    return;
  if (c->tprev)
    c->tprev->tnext = c->tnext;
  else
    l->head = c->tnext;
  if (c->tnext)
    c->tnext->tprev = c->tprev;
  else
    l->tail = c->tprev;
  c->tprev = c->tnext = NULL;
  c->tkind = 0;
}

/* Move c to the tail of l with a fresh deadline (l NULL: no deadline). A
 * duration of UINT32_MAX means never. */
void wire__tlist_put(wire_conn *c, wire__tlist *l) {
  wire__tlist_remove(c);
  if (l == NULL || l->duration >= UINT32_MAX)
    return;
  /* The loop's clock is only refreshed once per iteration, and a host-driven
   * host may call us long after the last one. */
  uv_update_time(WIRE__SRV(c)->loop);
  uint64_t due = uv_now(WIRE__SRV(c)->loop) + l->duration;
  c->deadline = (uint32_t)due;
  c->tkind = l->kind;
  c->tprev = l->tail;
  c->tnext = NULL;
  if (l->tail)
    l->tail->tnext = c;
  else
    l->head = c;
  l->tail = c;
  timer_arm(WIRE__SRV(c), due);
}

/* Pop every expired head of l; returns the next deadline (0 = none). */
static uint64_t tlist_sweep(wire__tlist *l, uint64_t now) {
  while (l->head != NULL && (int32_t)(l->head->deadline - (uint32_t)now) <= 0) {
    wire_conn *c = l->head;
    wire__tlist_remove(c);
    wire__conn_expired(c);
  }
  return l->head ? now + (uint32_t)(l->head->deadline - (uint32_t)now) : 0;
}

static uint64_t earliest(uint64_t a, uint64_t b) {
  if (a == 0)
    return b;
  if (b == 0)
    return a;
  return a < b ? a : b;
}

/* Connections are found through the loop's handle list (a registry would
 * cost every idle connection two pointers). Ours: TCP handles whose data is
 * this server (listeners keep data NULL). */
static wire_conn *conn_of(uv_handle_t *h, wire_server *s) {
  if (h->type != UV_TCP || h->data != s || uv_is_closing(h))
    return NULL;
  return (wire_conn *)h;
}

static void force_close_cb(uv_handle_t *h, void *arg) {
  wire_conn *c = conn_of(h, arg);
  if (c != NULL && c->state != WIRE__S_CLOSED)
    wire__conn_terminate(c, c->close_code ? c->close_code : 1006, NULL, 0);
}

static void force_close_all(wire_server *s) {
  uv_walk(s->loop, force_close_cb, s);
}

static void timer_cb(uv_timer_t *t) {
  wire_server *s = t->data;
  wire__enter(s);
  s->timer_due = 0;
  uint64_t now = uv_now(s->loop);
  uint64_t next = tlist_sweep(&s->handshake, now);
  for (wire_endpoint *ep = s->endpoints; ep; ep = ep->next) {
    next = earliest(next, tlist_sweep(&ep->idle, now));
    next = earliest(next, tlist_sweep(&ep->pong, now));
    next = earliest(next, tlist_sweep(&ep->closing, now));
  }
  if (s->state == WIRE__SV_SHUTTING) {
    if (now >= s->shutdown_deadline)
      force_close_all(s);
    else
      next = earliest(next, s->shutdown_deadline);
  }
  if (next != 0)
    timer_arm(s, next);
  wire__leave(s);
}

/* ---- accept and the handshake phase -------------------------------------- */

void wire__server_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  wire_server *s = h->data;
  (void)suggested;
  /* One buffer for the whole server: libuv reads and calls read_cb before
   * asking again, and read_cb consumes every byte, so an idle connection owns
   * no read buffer. */
  if (s->rbuf == NULL)
    s->rbuf = malloc(WIRE__READ_BUF_SIZE);
  if (s->rbuf == NULL || s->rbuf_busy) {
    buf->base = malloc(WIRE__READ_BUF_SIZE);
    buf->len = buf->base ? WIRE__READ_BUF_SIZE : 0;
    return;
  }
  s->rbuf_busy = 1;
  buf->base = (char *)s->rbuf;
  buf->len = WIRE__READ_BUF_SIZE;
}

static void release_rbuf(wire_server *s, const uv_buf_t *buf) {
  if (buf->base == NULL)
    return;
  if ((uint8_t *)buf->base == s->rbuf)
    s->rbuf_busy = 0;
  else
    free(buf->base);
}

/* Send an HTTP error and close once it has left (no on_close: never accepted). */
static void reject(wire_conn *c, int status, const char *body) {
  char resp[1024];
  int n = wire__http_error_response(status, body, resp, sizeof resp);
  if (n < 0)
    n = wire__http_error_response(status, NULL, resp, sizeof resp);
  if (c->state == WIRE__S_OPEN || c->state == WIRE__S_DEFERRED)
    WIRE__SRV(c)->n_established--;
  c->state = WIRE__S_REJECTING;
  free(c->u.hs.buf);
  c->u.hs.buf = NULL;
  c->u.hs.len = c->u.hs.cap = 0;
  if (n > 0)
    wire__out_raw(c, resp, (size_t)n);
  wire__tlist_put(c, &WIRE__SRV(c)->handshake);
  wire__out_schedule(c);
  wire__conn_progress(c);
}

/* Send the 101 and switch to WebSocket framing. rest: bytes that followed
 * the request head (in the read buffer or in the handshake buffer). */
static void accept_upgrade(wire_conn *c, const char *rest, size_t rest_len) {
  char resp[2048];
  int n = wire__handshake_response(c->req, resp, sizeof resp);
  if (n < 0 || wire__out_raw_now(c, resp, (size_t)n) != 0) {
    reject(c, 500, NULL);
    return;
  }
  /* The connection keeps a compact view: it is most of an idle connection's
   * memory. */
  c->req = wire__request_compact(c->req);
  char *buf = c->u.hs.buf; /* may hold rest: freed after the feed */
  memset(&c->u, 0, sizeof c->u);
  c->state = WIRE__S_OPEN;
  c->flags |= WIRE__F_ACCEPTED;
  wire__tlist_put(c, &c->ep->idle);
  wire__out_schedule(c);
  wire__conn_opened(c, (const uint8_t *)rest, rest_len);
  free(buf);
}

/* Keep bytes in the connection's handshake buffer (they are in the read
 * buffer, which the next read reuses). Returns 0 or WIRE_ENOMEM. */
static int hs_keep(wire_conn *c, const char *data, size_t n) {
  size_t need = (size_t)c->u.hs.len + n;
  if (need > UINT32_MAX / 2)
    return WIRE_ENOMEM;
  if (need > c->u.hs.cap) {
    size_t cap = c->u.hs.cap ? c->u.hs.cap : 512;
    while (cap < need)
      cap *= 2;
    char *nb = realloc(c->u.hs.buf, cap);
    if (nb == NULL)
      return WIRE_ENOMEM;
    c->u.hs.buf = nb;
    c->u.hs.cap = (uint32_t)cap;
  }
  if (n)
    memmove(c->u.hs.buf + c->u.hs.len, data, n);
  c->u.hs.len += (uint32_t)n;
  return 0;
}

/* The head parsed: route, check, ask on_connect. */
static void handshake_done(wire_conn *c, const char *rest, size_t rest_len) {
  wire_server *s = WIRE__SRV(c);
  uv_tcp_t *t = &c->tcp;
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &sl) == 0)
    wire__request_set_peer(c->req, (struct sockaddr *)&ss);
  wire_endpoint *ep = NULL;
  for (wire_endpoint *e = s->endpoints; e; e = e->next) {
    int m = wire__route_match(e->route, c->req);
    if (m < 0) {
      reject(c, 500, NULL);
      return;
    }
    if (m == 1) {
      ep = e;
      break;
    }
  }
  if (ep == NULL) {
    reject(c, 404, NULL);
    return;
  }
  c->ep = ep;
  const char *why = NULL;
  int st = wire__handshake_check(c->req, ep->opts.allowed_origins, ep->opts.n_allowed_origins,
                                 ep->opts.subprotocols, ep->opts.n_subprotocols, &why);
  if (st != 0) {
    reject(c, st, why);
    return;
  }
  if (s->max_connections != 0 && s->n_established >= s->max_connections) {
    reject(c, 503, NULL);
    return;
  }
  if (s->state != WIRE__SV_LISTENING) {
    reject(c, 503, NULL);
    return;
  }
  s->n_established++;
  c->state = WIRE__S_DEFERRED; /* counted; on_connect decides */
  wire__tlist_remove(c);
  int verdict = ep->cb.on_connect ? ep->cb.on_connect(c, c->req, ep->user_data) : 0;
  if (c->state != WIRE__S_DEFERRED)
    return; /* the peer left or the server shut down meanwhile */
  if (verdict == WIRE_CONNECT_ACCEPT) {
    accept_upgrade(c, rest, rest_len);
  } else if (verdict == WIRE_CONNECT_DEFER) {
    c->flags |= WIRE__F_DEFER_REF;
    c->refs++;
    /* Only the bytes after the head stay: they belong to the WebSocket. */
    if (c->u.hs.buf != NULL && rest >= c->u.hs.buf && rest <= c->u.hs.buf + c->u.hs.len) {
      memmove(c->u.hs.buf, rest, rest_len);
      c->u.hs.len = (uint32_t)rest_len;
    } else {
      c->u.hs.len = 0;
      if (hs_keep(c, rest, rest_len) != 0)
        wire__conn_terminate(c, 1006, NULL, 0);
    }
  } else {
    reject(c, verdict >= 400 && verdict <= 599 ? verdict : 500, NULL);
  }
}

/* Handshake bytes arrived. The usual request comes whole in one read and is
 * parsed in place; only a partial head is copied into a per-connection
 * buffer. */
static void handshake_read(wire_conn *c, const char *data, size_t n) {
  wire_server *s = WIRE__SRV(c);
  if (c->state == WIRE__S_DEFERRED) {
    if (hs_keep(c, data, n) != 0)
      wire__conn_terminate(c, 1006, NULL, 0);
    else if (c->u.hs.len > s->max_handshake + WIRE__READ_BUF_SIZE)
      wire__update_reading(c);
    return;
  }
  const char *buf = data;
  size_t len = n;
  if (c->u.hs.len > 0) {
    if (hs_keep(c, data, n) != 0) {
      wire__conn_terminate(c, 1006, NULL, 0);
      return;
    }
    buf = c->u.hs.buf;
    len = c->u.hs.len;
  }
  int status = 0;
  const char *why = NULL;
  wire_request *req = NULL;
  int r = wire__request_parse(buf, len < s->max_handshake ? len : s->max_handshake, &req, &status,
                              &why);
  if (r == -2) {
    if (len >= s->max_handshake)
      reject(c, 431, "request head too large");
    else if (buf == data && hs_keep(c, data, n) != 0)
      wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
  if (r < 0) {
    reject(c, status ? status : 400, why);
    return;
  }
  c->req = req;
  handshake_done(c, buf + r, len - (size_t)r);
}

/* Every read of every connection: dispatch by state; a read error or EOF
 * ends the connection (1006 unless a close was already exchanged). */
void wire__server_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  wire_conn *c = (wire_conn *)st;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  if (nread > 0) {
    switch (c->state) {
    case WIRE__S_HANDSHAKE:
    case WIRE__S_DEFERRED:
      handshake_read(c, buf->base, (size_t)nread);
      break;
    case WIRE__S_OPEN:
    case WIRE__S_CLOSING:
      wire__conn_feed(c, (const uint8_t *)buf->base, (size_t)nread);
      break;
    default:
      break; /* rejecting: discard until EOF */
    }
  } else if (nread < 0 && WIRE__OWES_DELIVERY(c)) {
    c->flags |= WIRE__F_EOF; /* the closed peer left first: finish after the delivery */
    wire__update_reading(c);
  } else if (nread < 0) {
    int code = c->close_code ? c->close_code : 1006;
    if (c->state == WIRE__S_CLOSING && (c->flags & WIRE__F_CLOSE_RECV) == 0 &&
        (c->flags & WIRE__F_CLOSE_SENT))
      code = c->close_code;
    wire__conn_terminate(c, code, NULL, 0);
  }
  release_rbuf(s, buf);
  wire__leave(s);
}

static void listener_close_cb(uv_handle_t *h) {
  wire__listener *l = (wire__listener *)h;
  wire_server *s = l->server;
  s->n_handles--;
  free(l);
  wire__server_check_done(s);
}

/* Accept: a zeroed wire_conn (the uv handle first), the handshake deadline,
 * reading on. A server shutting down closes what it accepts. */
static void on_connection(uv_stream_t *ls, int status) {
  wire__listener *l = (wire__listener *)ls;
  wire_server *s = l->server;
  if (status < 0)
    return;
  wire__enter(s);
  wire_conn *c = calloc(1, sizeof *c);
  if (c == NULL || uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    wire__leave(s);
    return;
  }
  c->tcp.data = s;
  c->id = s->next_id++;
  s->n_sockets++;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 || s->state != WIRE__SV_LISTENING) {
    wire__conn_terminate(c, 1006, NULL, 0);
    wire__leave(s);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  wire__tlist_put(c, &s->handshake);
  wire__update_reading(c);
  wire__leave(s);
}

/* ---- listen ---------------------------------------------------------------- */

static int map_uv_listen_error(int r) {
  if (r == UV_EADDRINUSE)
    return WIRE_EADDRINUSE;
  if (r == UV_EINVAL)
    return WIRE_EINVAL;
  return WIRE_ELISTEN;
}

static void timer_close_cb(uv_handle_t *h) {
  wire_server *s = h->data;
  s->n_handles--;
  s->timer_init = 0;
  wire__server_check_done(s);
}

int wire_server_listen(wire_server *s, const char *host, int port) {
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
  if (!s->timer_init) {
    if (uv_timer_init(s->loop, &s->timer) != 0)
      return WIRE_EUV;
    s->timer.data = s;
    s->timer_init = 1;
    /* The timer only serves connections, which keep the loop alive by
     * themselves; a stale deadline must not hold a Node process open after
     * the last connection of an unref'd server is gone. */
    uv_unref((uv_handle_t *)&s->timer);
    s->n_handles++;
  }
  wire__listener *l = calloc(1, sizeof *l);
  if (l == NULL)
    return WIRE_ENOMEM;
  l->server = s;
  if (uv_tcp_init(s->loop, &l->tcp) != 0) {
    free(l);
    return WIRE_EUV;
  }
  s->n_handles++;
  int r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
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
  return 0;
}

int wire_server_port(const wire_server *s) {
  return s && s->listeners ? s->listeners->port : -1;
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

/* When the last socket and listener are gone, close the timer; its close
 * callback finishes the shutdown. */
void wire__server_check_done(wire_server *s) {
  if (s->state != WIRE__SV_SHUTTING || s->n_sockets > 0 || s->listeners != NULL)
    return;
  if (s->timer_init && !uv_is_closing((uv_handle_t *)&s->timer)) {
    uv_close((uv_handle_t *)&s->timer, timer_close_cb);
    return;
  }
  if (s->n_handles > 0)
    return;
  s->state = WIRE__SV_DONE;
  if (s->done != NULL)
    s->done(s, s->done_data);
}

/* Shutdown, per connection: 1001 to the open ones, drop handshakes. */
static void shutdown_conn_cb(uv_handle_t *h, void *arg) {
  wire_conn *c = conn_of(h, arg);
  if (c == NULL)
    return;
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
  while (s->listeners != NULL) {
    wire__listener *l = s->listeners;
    s->listeners = l->next;
    uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
  }
  uv_walk(s->loop, shutdown_conn_cb, s);
  timer_arm(s, s->shutdown_deadline);
  wire__server_check_done(s);
  s->kick = 1;
  wire__leave(s);
  return 0;
}

/* ---- deferred decisions ----------------------------------------------------- */

/* Common checks; on success the deferred reference is handed to the caller,
 * who drops it with wire__conn_release when done. */
static int take_deferred(wire_conn *c) {
  if (c == NULL)
    return WIRE_EINVAL;
  if (!(c->flags & WIRE__F_DEFER_REF))
    return WIRE_ESTATE;
  c->flags &= ~WIRE__F_DEFER_REF;
  if (c->state != WIRE__S_DEFERRED) {
    wire__conn_release(c); /* the peer left or the server shut down */
    return WIRE_ECLOSED;
  }
  return 0;
}

int wire_conn_accept(wire_conn *c) {
  int r = take_deferred(c);
  if (r != 0)
    return r;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  accept_upgrade(c, c->u.hs.buf, c->u.hs.len);
  wire__leave(s);
  wire__conn_release(c);
  return 0;
}

int wire_conn_reject(wire_conn *c, int status, const char *body) {
  if (c != NULL && (status < 400 || status > 599))
    return WIRE_EINVAL;
  int r = take_deferred(c);
  if (r != 0)
    return r;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  reject(c, status, body);
  wire__update_reading(c);
  wire__leave(s);
  wire__conn_release(c);
  return 0;
}
