/*
 * timer.c -- deadlines without a timer per connection: intrusive lists whose
 * entries share one duration (so appending keeps them sorted and a touch is
 * O(1)), and the one server timer armed for the earliest head; it expires due
 * connections and enforces the shutdown deadline.
 */
#include "conn_internal.h"

/* The one server timer: expire due list heads, enforce the shutdown
 * deadline, re-arm for the earliest remaining deadline. */
static void timer_cb(uv_timer_t *t);

/* Arm the server timer for `due` unless it already fires no later. */
void wire__timer_arm(wire_server *s, uint64_t due) {
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
  case WIRE__T_STALL:
    return &c->ep->stall;
  case WIRE__T_PARKED:
    return &WIRE__SRV(c)->parked;
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
  wire__timer_arm(WIRE__SRV(c), due);
}

/* Pop every expired head of l; returns the next deadline (0 = none). */
static uint64_t tlist_sweep(wire__tlist *l, uint64_t now) {
  while (l->head != NULL && (int32_t)(l->head->deadline - (uint32_t)now) <= 0) {
    wire_conn *c = l->head;
    int kind = c->tkind;
    wire__tlist_remove(c);
    wire__conn_expired(c, kind);
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

static void timer_cb(uv_timer_t *t) {
  wire_server *s = t->data;
  wire__enter(s);
  s->timer_due = 0;
  uint64_t now = uv_now(s->loop);
  uint64_t next = tlist_sweep(&s->handshake, now);
  next = earliest(next, tlist_sweep(&s->parked, now));
  for (wire_endpoint *ep = s->endpoints; ep; ep = ep->next) {
    next = earliest(next, tlist_sweep(&ep->idle, now));
    next = earliest(next, tlist_sweep(&ep->pong, now));
    next = earliest(next, tlist_sweep(&ep->closing, now));
    next = earliest(next, tlist_sweep(&ep->stall, now));
  }
  if (s->state == WIRE__SV_SHUTTING) {
    if (now >= s->shutdown_deadline)
      wire__server_force_close(s);
    else
      next = earliest(next, s->shutdown_deadline);
  }
  next = earliest(next, wire__metrics_tick(s, now)); /* metrics: workers' slots */
  if (next != 0)
    wire__timer_arm(s, next);
  wire__leave(s);
}

/* Create the server timer (once, at the first listen). Returns 0 or a libuv
 * error. */
int wire__timer_init(wire_server *s) {
  if (s->timer_init)
    return 0;
  int r = uv_timer_init(s->loop, &s->timer);
  if (r != 0)
    return r;
  s->timer.data = s;
  s->timer_init = 1;
  /* The timer only serves connections, which keep the loop alive by
   * themselves; a stale deadline must not hold a Node process open after the
   * last connection of an unref'd server is gone. */
  uv_unref((uv_handle_t *)&s->timer);
  s->n_handles++;
  return 0;
}

static void timer_close_cb(uv_handle_t *h) {
  wire_server *s = h->data;
  s->n_handles--;
  s->timer_init = 0;
  wire__server_check_done(s);
}

/* Start closing the timer; 1 when that started now (its close callback
 * finishes the shutdown), 0 when there is none or it is already closing. */
int wire__timer_close(wire_server *s) {
  if (!s->timer_init || uv_is_closing((uv_handle_t *)&s->timer))
    return 0;
  uv_close((uv_handle_t *)&s->timer, timer_close_cb);
  return 1;
}
