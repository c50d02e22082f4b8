/*
 * loop.c -- the three ways to run a server: wire_server_run on its own loop,
 * a borrowed uv_loop_t (the host runs it), and host-driven (a pollable fd, a
 * timeout, a process-once call). Also the callback bracket that batches
 * output, the wake handle that makes the backend fd readable when work
 * appears outside uv_run, and wire_server_stop.
 */
#include "conn_internal.h"

static void wake_cb(uv_async_t *a);

/* Work appeared outside uv_run of an owned loop (a host-driven send that was
 * queued, a resume): libuv applies the watcher change only at its next poll,
 * and the host polls the backend fd, so make that fd readable. Once per
 * process call, not per send. */
void wire__wake_host(wire_server *s) {
  if (!s->kick || s->in_run || s->woken || !s->owns_loop || !s->wake_open)
    return;
  s->woken = 1;
  uv_async_send(&s->wake);
}

/* The outermost enter begins the host's batch (wire_server_set_batch_hook). */
void wire__enter(wire_server *s) {
  if (s->depth++ == 0 && s->batch_cb != NULL)
    s->batch_cb(s, 1, s->batch_user);
}

/* The outermost leave ends the host's batch, then writes every connection
 * that queued output meanwhile: one write per connection per callback,
 * however many frames. */
void wire__leave(wire_server *s) {
  if (s->depth > 1) {
    s->depth--;
    return;
  }
  if (s->batch_cb != NULL) /* what the host runs now queues output for this write */
    s->batch_cb(s, 0, s->batch_user);
  if (wire__budget_due(s)) /* memory budget: one compare when under it */
    wire__budget_check(s);
  while (s->dirty != NULL) {
    wire_conn *c = s->dirty;
    s->dirty = c->dirty_next;
    c->dirty_next = NULL;
    c->flags &= ~WIRE__F_DIRTY;
    wire__out_flush(c); /* depth is still 1: callbacks it causes queue more */
    wire__conn_release(c);
  }
  s->depth--;
  wire__wake_host(s);
}

/* Set (or with fn NULL clear) the host's batch hook. */
int wire_server_set_batch_hook(wire_server *server, wire_batch_cb fn, void *user_data) {
  if (server == NULL)
    return WIRE_EINVAL;
  server->batch_cb = fn;
  server->batch_user = user_data;
  return 0;
}

/* Create the wake handle (once, with the server timer). It never keeps the
 * loop alive. Returns 0 or a libuv error. */
int wire__wake_init(wire_server *s) {
  if (s->wake_open)
    return 0;
  int r = uv_async_init(s->loop, &s->wake, wake_cb);
  if (r != 0)
    return r;
  s->wake.data = s;
  uv_unref((uv_handle_t *)&s->wake);
  s->wake_open = 1;
  s->n_handles++;
  return 0;
}

static void wake_close_cb(uv_handle_t *h) {
  wire_server *s = h->data;
  s->n_handles--;
  wire__server_check_done(s);
}

int wire__wake_close(wire_server *s) {
  if (!s->wake_open)
    return 0;
  s->wake_open = 0; /* wire_server_stop no longer touches it */
  uv_close((uv_handle_t *)&s->wake, wake_close_cb);
  return 1;
}

/* On the loop thread: a host wake-up needs nothing more (the poll that
 * delivered it applied the watchers); a stop request starts the shutdown. */
static void wake_cb(uv_async_t *a) {
  wire_server *s = a->data;
  if (!s->stop_req)
    return;
  s->stop_req = 0;
  if (s->state == WIRE__SV_LISTENING)
    wire_server_shutdown(s, 0, NULL, NULL);
}

/* Public (wirecore.h). Only a flag and uv_async_send: async-signal-safe and
 * thread-safe. */
int wire_server_stop(wire_server *s) {
  if (s == NULL)
    return WIRE_EINVAL;
  if (!s->wake_open)
    return WIRE_ESTATE;
  s->stop_req = 1;
  return uv_async_send(&s->wake) == 0 ? 0 : WIRE_EUV;
}

int wire_server_run(wire_server *s) {
  if (s == NULL)
    return WIRE_EINVAL;
  if (!s->owns_loop)
    return WIRE_ESTATE;
  s->in_run = 1;
  int r = uv_run(s->loop, UV_RUN_DEFAULT);
  s->in_run = 0;
  return r < 0 ? WIRE_EUV : 0;
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
  s->woken = 0;
  s->in_run = 1;
  uv_run(s->loop, UV_RUN_NOWAIT);
  s->in_run = 0;
  return s->state == WIRE__SV_DONE ? 0 : 1;
}
