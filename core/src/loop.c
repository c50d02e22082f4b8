/*
 * loop.c -- the three ways to run a server: wire_server_run on its own loop,
 * a borrowed uv_loop_t (the host runs it), and host-driven (a pollable fd, a
 * timeout, a process-once call). Also the callback bracket that batches
 * output, and the read start/stop decision for a connection.
 */
#include "conn_internal.h"

void wire__enter(wire_server *s) {
  s->depth++;
}

/* The outermost leave writes every connection that queued output meanwhile:
 * one write per connection per callback, however many frames. */
void wire__leave(wire_server *s) {
  if (s->depth > 1) {
    s->depth--;
    return;
  }
  while (s->dirty != NULL) {
    wire_conn *c = s->dirty;
    s->dirty = c->dirty_next;
    c->dirty_next = NULL;
    c->flags &= ~WIRE__F_DIRTY;
    wire__out_flush(c); /* depth is still 1: callbacks it causes queue more */
    wire__conn_release(c);
  }
  s->depth--;
}

/* Reading is on unless: paused with a message already waiting (pause itself
 * is lazy), over the backpressure limit, at the queued-message bound
 * (rules.c), or a deferred handshake has buffered
 * enough. Changes mark the host's timeout 0 so libuv applies them. */
void wire__update_reading(wire_conn *c) {
  int want;
  switch (c->state) {
  case WIRE__S_HANDSHAKE:
  case WIRE__S_REJECTING:
  case WIRE__S_CLOSING:
    want = !(c->flags & WIRE__F_EOF);
    break;
  case WIRE__S_DEFERRED:
    want = c->u.hs.len <= WIRE__SRV(c)->max_handshake + WIRE__READ_BUF_SIZE;
    break;
  case WIRE__S_OPEN:
    want = c->pq_head == NULL && c->out_bytes <= c->ep->opts.max_backpressure &&
           !(c->rules & WIRE__R_QFULL);
    break;
  default:
    return;
  }
  int on = (c->flags & WIRE__F_READING) != 0;
  if (want == on)
    return;
  if (c->state == WIRE__S_OPEN) {
    /* Silence is only the peer's fault while we read: no pings (whose pong
     * we could not see) while paused or over the backpressure limit. */
    if (want)
      wire__tlist_put(c, &c->ep->idle);
    else
      wire__tlist_remove(c);
  }
  if (want) {
    if (uv_read_start((uv_stream_t *)&c->tcp, wire__server_alloc_cb, wire__server_read_cb) != 0)
      return;
    c->flags |= WIRE__F_READING;
  } else {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->flags &= ~WIRE__F_READING;
  }
  WIRE__SRV(c)->kick = 1;
}

int wire_server_run(wire_server *s) {
  if (s == NULL)
    return WIRE_EINVAL;
  if (!s->owns_loop)
    return WIRE_ESTATE;
  if (uv_run(s->loop, UV_RUN_DEFAULT) < 0)
    return WIRE_EUV;
  return 0;
}

int wire_server_fd(const wire_server *s) {
  return s ? uv_backend_fd(s->loop) : -1;
}

/* libuv may have work that does not make the backend fd readable: callbacks
 * of completed writes, closing handles, and watchers changed outside uv_run
 * (a new connection, a read start, a queued write) that epoll learns of only
 * at the next poll. For all of those the answer is 0: process again now. */
int wire_server_timeout(const wire_server *s) {
  if (s == NULL || s->state == WIRE__SV_DONE)
    return -1;
  if (s->kick)
    return 0;
  if (!uv_loop_alive(s->loop))
    return -1;
  return uv_backend_timeout(s->loop);
}

int wire_server_process(wire_server *s) {
  if (s == NULL)
    return WIRE_EINVAL;
  if (!s->owns_loop)
    return WIRE_ESTATE;
  if (s->state == WIRE__SV_DONE)
    return 0;
  s->kick = 0;
  uv_run(s->loop, UV_RUN_NOWAIT);
  return s->state == WIRE__SV_DONE ? 0 : 1;
}
