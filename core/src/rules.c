/*
 * rules.c -- the connection rules every host shares: the queued-message bound
 * (max_queued_messages over the pause queue and host-held messages, with its
 * low-water mark), send flow control (send_high_water, wire_conn_writable and
 * the on_drain notification), and wire_conn_fail (on_error, else 1011).
 */
#include "conn_internal.h"

#include <string.h>

/* Fill the rule options' defaults (0 = default); the high-water mark never
 * exceeds max_backpressure. */
void wire__rules_resolve(wire_endpoint *ep) {
  if (ep->opts.max_queued_messages == 0)
    ep->opts.max_queued_messages = WIRE_DEFAULT_MAX_QUEUED;
  /* Counted in 16 bits: the bound plus what one 64 KiB read can still add
   * (at most 10923 six-byte client frames) stays below 65535. */
  if (ep->opts.max_queued_messages > WIRE__MAX_QUEUED)
    ep->opts.max_queued_messages = WIRE__MAX_QUEUED;
  if (ep->opts.send_high_water == 0)
    ep->opts.send_high_water = ep->opts.max_backpressure / 4;
  if (ep->opts.send_high_water > ep->opts.max_backpressure)
    ep->opts.send_high_water = ep->opts.max_backpressure;
}

/* ---- the queued-message bound ------------------------------------------------ */

/* Stop at the bound, resume at half of it (hysteresis: a consumer taking one
 * message at a time does not toggle reading per message). */
void wire__rules_queue_check(wire_conn *c) {
  size_t q = (size_t)c->pq_len + c->held;
  size_t max = c->ep->opts.max_queued_messages;
  if (q >= max)
    c->rules |= WIRE__R_QFULL;
  else if ((c->rules & WIRE__R_QFULL) && q <= max / 2)
    c->rules &= (uint8_t)~WIRE__R_QFULL;
}

/* Re-evaluate the bound and apply it to the socket, inside a bracket so a
 * host calling from outside a callback gets its changes applied. */
static void queue_changed(wire_conn *c) {
  uint8_t before = c->rules & WIRE__R_QFULL;
  wire__rules_queue_check(c);
  if ((c->rules & WIRE__R_QFULL) == before)
    return;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  wire__update_reading(c);
  wire__leave(s);
}

int wire_conn_hold(wire_conn *c) {
  if (c == NULL || c->state == WIRE__S_CLOSED)
    return WIRE_ECLOSED;
  if (c->held < UINT16_MAX)
    c->held++;
  queue_changed(c);
  return 0;
}

int wire_conn_consumed(wire_conn *c, size_t n) {
  if (c == NULL || c->state == WIRE__S_CLOSED)
    return WIRE_ECLOSED;
  if (n > c->held)
    return WIRE_EINVAL;
  c->held = (uint16_t)(c->held - n);
  queue_changed(c);
  return 0;
}

size_t wire_conn_queued(const wire_conn *c) {
  return c ? (size_t)c->pq_len + c->held : 0;
}

/* ---- send flow control ------------------------------------------------------- */

void wire__rules_output(wire_conn *c) {
  if (!(c->rules & WIRE__R_DRAIN) || c->out_bytes > c->ep->opts.send_high_water)
    return;
  c->rules &= (uint8_t)~WIRE__R_DRAIN;
  if (c->state == WIRE__S_OPEN && c->ep->cb.on_drain != NULL)
    c->ep->cb.on_drain(c, c->ep->user_data);
}

int wire_conn_writable(wire_conn *c) {
  if (c == NULL || c->state != WIRE__S_OPEN)
    return 0;
  if (c->out_bytes <= c->ep->opts.send_high_water)
    return 1;
  c->rules |= WIRE__R_DRAIN;
  return 0;
}

/* ---- host failures ------------------------------------------------------------- */

int wire_conn_fail(wire_conn *c, const wire_error *err) {
  if (c == NULL)
    return WIRE_EINVAL;
  if (c->state == WIRE__S_CLOSED)
    return WIRE_ECLOSED;
  if (c->state != WIRE__S_OPEN && c->state != WIRE__S_CLOSING)
    return WIRE_ESTATE;
  wire_error e;
  if (err != NULL)
    e = *err;
  else
    memset(&e, 0, sizeof e);
  if (e.code == 0)
    e.code = WIRE_EHANDLER;
  if (e.message[0] == 0)
    wire__error_set(&e, e.code, "%s", wire_strerror(e.code));
  int handled = 0;
  if (!(c->rules & WIRE__R_FAILING)) {
    c->rules |= WIRE__R_FAILING;
    handled = wire__conn_report_err(c, &e) != 0;
    c->rules &= (uint8_t)~WIRE__R_FAILING;
  }
  if (handled)
    return 1;
  if (c->state == WIRE__S_OPEN)
    wire_conn_close(c, 1011, "internal error", 14);
  return 0;
}
