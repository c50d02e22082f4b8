/*
 * handshake.c -- the HTTP upgrade phase of one connection: collect the
 * request head (in place, or in a per-connection buffer when it arrives in
 * pieces), route it, check Origin and choose the subprotocol, enforce
 * max_connections, ask on_connect (accept, reject or defer), then send the 101
 * and hand the bytes that followed the head to the WebSocket side, or send
 * the rejection and linger until the peer's EOF.
 */
#include "conn_internal.h"
#include "history.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- endpoint checks ---------------------------------------------------------- */

/* Origins compare case-insensitively: scheme and host are, and a port is
 * digits; an allow-list entry is an exact serialized origin. */
static bool origin_eq(wire_str a, const char *b) {
  size_t n = strlen(b);
  return a.len == n && strncasecmp(a.ptr, b, n) == 0;
}

/* Forbidden unless exactly one Origin header names an allowed origin. A
 * missing Origin is refused too: a list says which pages may connect. */
static bool origin_allowed(const wire_request *req, const char *const *origins, size_t n) {
  size_t i = 0;
  const wire__kv *o = wire__request_find_header(req, "origin", &i);
  if (!o)
    return false;
  size_t j = i + 1;
  if (wire__request_find_header(req, "origin", &j))
    return false;
  for (size_t k = 0; k < n; k++)
    if (origins[k] && origin_eq(o->value, origins[k]))
      return true;
  return false;
}

/* Did the client offer `proto` in any Sec-WebSocket-Protocol header? The
 * values are comma lists; tokens compare case-sensitively (RFC 6455 §4.1). */
static bool offered(const wire_request *req, const char *proto) {
  size_t plen = strlen(proto);
  for (size_t i = 0; wire__request_find_header(req, "sec-websocket-protocol", &i); i++) {
    wire_str v = req->headers[i].value;
    for (size_t s = 0; s <= v.len;) {
      size_t e = s;
      while (e < v.len && v.ptr[e] != ',')
        e++;
      size_t b = s, end = e;
      while (b < end && (v.ptr[b] == ' ' || v.ptr[b] == '\t'))
        b++;
      while (end > b && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t'))
        end--;
      if (end - b == plen && plen > 0 && memcmp(v.ptr + b, proto, plen) == 0)
        return true;
      s = e + 1;
    }
  }
  return false;
}

int wire__handshake_check(wire_request *req, const char *const *origins, size_t n_origins,
                          const char *const *protocols, size_t n_protocols, const char **why) {
  if (n_origins > 0 && !origin_allowed(req, origins, n_origins)) {
    *why = "origin not allowed";
    return 403;
  }
  req->subprotocol = (wire_str){NULL, 0};
  for (size_t k = 0; k < n_protocols; k++) {
    if (!protocols[k] || !offered(req, protocols[k]))
      continue;
    /* Copied so the view does not depend on the endpoint's lifetime. */
    size_t n = strlen(protocols[k]);
    char *copy = wire__request_alloc(req, n + 1);
    if (!copy) {
      *why = "out of memory";
      return 500;
    }
    memcpy(copy, protocols[k], n + 1);
    req->subprotocol = (wire_str){copy, n};
    break;
  }
  return 0;
}

/* ---- the upgrade phase ---------------------------------------------------------- */

/* Send an HTTP error and close once it has left (no on_close: never accepted). */
static void reject(wire_conn *c, int status, const char *body) {
  wire_server *srv = WIRE__SRV(c);
  if (status >= 100 && status < 100 + WIRE__M_STATUS)
    WIRE__M_INC(srv->m->status[status - 100]); /* metrics */
  if (WIRE__LOG_ON(srv, WIRE_LOG_INFO))
    wire__log_conn(c, WIRE_LOG_INFO, "reject", status, 0, body);
  char resp[1024];
  int n = wire__http_error_response(status, body, resp, sizeof resp);
  if (n < 0)
    n = wire__http_error_response(status, NULL, resp, sizeof resp);
  if (c->state == WIRE__S_OPEN || c->state == WIRE__S_DEFERRED)
    WIRE__SRV(c)->n_established--;
  wire__climits_conn_end(c); /* client limits: a refusal holds no share */
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

static int head_may_end(const char *buf, size_t len, size_t from);
static int hs_keep(wire_conn *c, const char *data, size_t n);

/* metrics: a GET for the metrics or health path is answered whatever its
 * headers once its head is complete; on a metrics listener anything else is
 * a 404. Returns 1 when the bytes were taken here (answered, or kept until
 * the head completes), 0 for the usual upgrade path. */
static int ops_answer(wire_conn *c, const char *buf, size_t len, const char *data, size_t n) {
  wire_server *s = WIRE__SRV(c);
  int ops = (c->rules & WIRE__R_OPS) != 0;
  int want = wire__metrics_want(s, buf, len, ops);
  if (want == 0 && !ops)
    return 0;
  if (!head_may_end(buf, len, 0)) {
    if (len >= s->max_handshake)
      reject(c, 431, "request head too large");
    else if (buf == data && hs_keep(c, data, n) != 0)
      wire__conn_terminate(c, 1006, NULL, 0);
    return 1;
  }
  char *resp = NULL;
  size_t rlen = 0;
  if (want == 0 || wire__metrics_http(s, want, &resp, &rlen) != 0) {
    reject(c, want == 0 ? 404 : 500, NULL);
    return 1;
  }
  c->state = WIRE__S_REJECTING;
  free(c->u.hs.buf);
  c->u.hs.buf = NULL;
  c->u.hs.len = c->u.hs.cap = 0;
  int r = wire__out_raw(c, resp, rlen);
  free(resp);
  if (r != 0) {
    wire__conn_terminate(c, 1006, NULL, 0);
    return 1;
  }
  wire__tlist_put(c, &s->handshake);
  wire__out_schedule(c);
  wire__conn_progress(c);
  return 1;
}

/* Send the 101 and switch to WebSocket framing. rest: bytes that followed
 * the request head (in the read buffer or in the handshake buffer). */
static void accept_upgrade(wire_conn *c, const char *rest, size_t rest_len) {
  char resp[2048];
  int n = wire__handshake_response(c->req, resp, sizeof resp);
  if (n >= 0)
    n = wire__pmd_response(c->pmd, resp, n, sizeof resp); /* permessage-deflate */
  /* log.c: the close event's duration and bytes count from here */
  int count = WIRE__SRV(c)->log_cb != NULL ? wire__log_count(c) : 0;
  if (n < 0 || count != 0 || wire__rate_attach(c) != 0 ||
      wire__out_raw_now(c, resp, (size_t)n) != 0) {
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
  wire_server *s = WIRE__SRV(c); /* metrics */
  WIRE__M_INC(s->m->status[1]);
  WIRE__M_INC(c->ep->m->opened);
  if (WIRE__LOG_ON(s, WIRE_LOG_INFO))
    wire__log_conn(c, WIRE_LOG_INFO, "open", 101, 0, NULL);
  wire__tlist_put(c, &c->ep->idle);
  wire__out_schedule(c);
  if (c->topics != NULL) /* history: replays noted while on_connect ran */
    wire__history_conn_open(c);
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

/* hardening: why a parsed head cannot be upgraded whatever the endpoint says:
 * a body (an upgrade GET has none), or bytes after the head that cannot
 * start a client frame (reserved bits set: a pipelined request). NULL if
 * neither. */
static const char *head_refused(const wire_request *req, const char *rest, size_t rest_len) {
  size_t i = 0;
  const wire__kv *cl = wire__request_find_header(req, "content-length", &i);
  if (cl != NULL && !(cl->value.len == 1 && cl->value.ptr[0] == '0'))
    return "an upgrade request has no body (Content-Length)";
  i = 0;
  if (wire__request_find_header(req, "transfer-encoding", &i) != NULL)
    return "an upgrade request has no body (Transfer-Encoding)";
  if (rest_len > 0 && ((uint8_t)rest[0] & 0x70) != 0)
    return "bytes after the request head (a pipelined request?)";
  return NULL;
}

/* The head parsed: route, check, ask on_connect. */
static void handshake_done(wire_conn *c, const char *rest, size_t rest_len) {
  wire_server *s = WIRE__SRV(c);
  const char *refused = head_refused(c->req, rest, rest_len);
  if (refused != NULL) {
    reject(c, 400, refused);
    return;
  }
  struct sockaddr_storage ss;
  if (WIRE__TP(c)->peer(c, &ss) == 0)
    wire__request_set_peer(c->req, (struct sockaddr *)&ss);
  const char *cwhy = NULL;
  int cst = wire__climits_admit(c, &cwhy); /* client limits: proxies, per address */
  if (cst != 0) {
    reject(c, cst, cwhy);
    return;
  }
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
  c->pmd = wire__pmd_negotiate(c->req, ep); /* permessage-deflate: 0 = declined */
  if (s->n_established >= s->max_connections) {
    s->stats.refused_connections++;
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

/* hardening: could the head end in buf[from - 3, len)? It ends at a blank line
 * ("\n\n" or "\n\r\n"), so a head fed a byte at a time is parsed once, not
 * once per byte. */
static int head_may_end(const char *buf, size_t len, size_t from) {
  for (size_t i = from > 3 ? from - 3 : 0; i + 1 < len; i++)
    if (buf[i] == '\n' &&
        (buf[i + 1] == '\n' || (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')))
      return 1;
  return 0;
}

/* Handshake bytes arrived. The usual request comes whole in one read and is
 * parsed in place; only a partial head is copied into a per-connection
 * buffer. */
void wire__handshake_read(wire_conn *c, const char *data, size_t n) {
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
  if (buf != data && !head_may_end(buf, len, len - n) && len < s->max_handshake)
    return; /* hardening: kept; parse once the blank line can have arrived */
  if ((s->metrics_path || s->health_path || (c->rules & WIRE__R_OPS)) &&
      ops_answer(c, buf, len, data, n))
    return; /* metrics */
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
