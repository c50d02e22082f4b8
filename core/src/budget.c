/*
 * budget.c -- the server-wide memory budget (max_buffered_bytes): the bytes
 * buffered across all connections (output queues, messages being
 * reassembled, messages waiting in pause queues) are counted as they change
 * (conn_internal.h); over the budget the heaviest connections stop being
 * read, and if the total stays over it past a grace period (or reaches
 * twice the budget) the heaviest are closed with 1013 "memory budget".
 */
#include "conn_internal.h"

#include <stdint.h>

#define BUDGET_PERIOD_MS 50u  /* at most one check (a walk of all connections) per period */
#define BUDGET_GRACE_MS 1000u /* over the budget this long: close, not only pause */
#define BUDGET_FLOOR ((size_t)16 << 20) /* the default never goes below 16 MiB */
#define BUDGET_PICK 64                  /* heaviest connections acted on per check */

void wire__budget_init(wire_server *s, size_t max) {
  if (max == 0) {
    /* a quarter of the memory this process may use, at most 256 MiB */
    uint64_t total = uv_get_total_memory();
    uint64_t limit = uv_get_constrained_memory();
    if (limit != 0 && limit < total)
      total = limit;
    max = WIRE_DEFAULT_MAX_BUFFERED_BYTES;
    if (total != 0 && total / 4 < max)
      max = total / 4 > BUDGET_FLOOR ? (size_t)(total / 4) : BUDGET_FLOOR;
  }
  s->max_buffered = max;
  s->stats.max_buffered_bytes = max == SIZE_MAX ? UINT64_MAX : max;
}

/* What one connection holds: its output, its pause queue, its message in
 * progress. */
static size_t weight(const wire_conn *c) {
  return c->out_bytes + wire__conn_pq_bytes(c) + (c->slot ? c->slot->msg_cap : 0);
}

/* The heaviest connections seen by one walk, heaviest first. */
typedef struct pick {
  wire_conn *c[BUDGET_PICK];
  size_t w[BUDGET_PICK];
  int n;
} pick;

static void pick_one(wire_conn *c, void *arg) {
  pick *p = arg;
  if (c->state != WIRE__S_OPEN && c->state != WIRE__S_CLOSING)
    return;
  size_t w = weight(c);
  if (w == 0 || (p->n == BUDGET_PICK && w <= p->w[BUDGET_PICK - 1]))
    return;
  int i = p->n < BUDGET_PICK ? p->n++ : BUDGET_PICK - 1;
  while (i > 0 && p->w[i - 1] < w) { /* insertion: the list is short */
    p->c[i] = p->c[i - 1];
    p->w[i] = p->w[i - 1];
    i--;
  }
  p->c[i] = c;
  p->w[i] = w;
}

/* Stop reading c until the total is back under three quarters of the
 * budget. */
static void pause_one(wire_server *s, wire_conn *c) {
  if (c->state != WIRE__S_OPEN || (c->rules & WIRE__R_BUDGET))
    return;
  c->rules |= WIRE__R_BUDGET;
  s->n_budget_paused++;
  s->stats.paused_by_budget++;
  wire__update_reading(c);
}

/* Free what c holds now and end it: the output no write has started on and
 * the pause queue go at once; then an open connection with nothing in
 * flight gets our close (1013 "memory budget"), and one with a write in
 * flight (a peer that is not reading: a close frame would wait behind it)
 * or already closing is dropped, which cancels the write and frees it. */
static void close_one(wire_server *s, wire_conn *c) {
  if (c->state == WIRE__S_CLOSED)
    return; /* an on_error earlier in this check closed it */
  s->stats.closed_by_budget++;
  if (c->state != WIRE__S_OPEN) {
    wire__conn_terminate(c, c->close_code ? c->close_code : 1006, NULL, 0);
    return;
  }
  wire__conn_report(c, WIRE_EBACKPRESSURE,
                    "server memory budget (max_buffered_bytes, %zu) exceeded", s->max_buffered);
  if (c->state != WIRE__S_OPEN)
    return;
  wire__out_trim(c);
  wire__conn_pq_free(c);
  if (c->flags & WIRE__F_WRITING)
    wire__conn_terminate(c, 1013, "memory budget", 13);
  else
    wire__conn_start_close(c, 1013, "memory budget", 13);
}

static void resume_one(wire_conn *c, void *arg) {
  wire_server *s = arg;
  if (!(c->rules & WIRE__R_BUDGET))
    return;
  c->rules &= (uint8_t)~WIRE__R_BUDGET;
  s->n_budget_paused--;
  if (c->state == WIRE__S_OPEN)
    wire__update_reading(c);
}

/* Called at the end of the outermost callback while over the budget or
 * while connections are paused by it; acts at most once per period and
 * comes back through the server timer, so a server where nothing else
 * happens still gets there. */
void wire__budget_check(wire_server *s) {
  uint64_t now = uv_now(s->loop);
  if (now < s->budget_next)
    return;
  s->budget_next = now + BUDGET_PERIOD_MS;
  size_t used = (size_t)s->stats.buffered_bytes, max = s->max_buffered;
  if (used <= max) {
    s->budget_over_since = 0;
    if (used <= max - max / 4)
      wire__server_each_conn(s, resume_one, s);
    if (s->n_budget_paused > 0)
      wire__timer_arm(s, s->budget_next);
    return;
  }
  if (s->budget_over_since == 0)
    s->budget_over_since = now;
  int closing = now - s->budget_over_since >= BUDGET_GRACE_MS || used / 2 >= max;
  pick p;
  p.n = 0;
  wire__server_each_conn(s, pick_one, &p);
  size_t excess = used - (max - max / 4);
  for (int i = 0; i < p.n && excess > 0; i++) {
    if (closing)
      close_one(s, p.c[i]);
    else
      pause_one(s, p.c[i]);
    excess = p.w[i] >= excess ? 0 : excess - p.w[i];
  }
  wire__timer_arm(s, s->budget_next);
}
