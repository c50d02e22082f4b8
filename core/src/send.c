/*
 * send.c -- the output side of a connection: a queue of copied chunks (whole
 * frames or raw HTTP), written in batches through the connection's transport
 * (try_write first, the rest in one write with many buffers, one write in
 * flight per connection), the backpressure limit, and the public send calls.
 */
#include "conn_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the queue -------------------------------------------------------------- */

static wire__ochunk *chunk_new(size_t len) {
  wire__ochunk *ch = malloc(sizeof *ch + len);
  if (ch == NULL)
    return NULL;
  ch->next = NULL;
  ch->len = len;
  ch->off = 0;
  ch->shared = NULL;
  return ch;
}

static void chunk_append(wire_conn *c, wire__ochunk *ch) {
  if (c->out_tail)
    c->out_tail->next = ch;
  else
    c->out_head = ch;
  c->out_tail = ch;
  c->out_bytes += ch->len;
  wire__budget_add(WIRE__SRV(c), ch->len);
}

/* Queue a copy of raw bytes (HTTP responses, frames wslay wrote). */
int wire__out_raw(wire_conn *c, const void *data, size_t len) {
  wire__ochunk *ch = chunk_new(len);
  if (ch == NULL)
    return WIRE_ENOMEM;
  memcpy(ch->data, data, len);
  chunk_append(c, ch);
  return 0;
}

void wire__out_queued(wire_conn *c, size_t payload) {
  WIRE__M_INC(c->ep->m->msgs_out); /* metrics */
  WIRE__M_ADD(c->ep->m->bytes_out, payload);
  if (c->x != NULL) /* log.c: counted for the close event */
    c->x->bout += payload;
  wire__out_schedule(c);
  if (c->out_bytes > c->ep->opts.max_backpressure)
    wire__update_reading(c);
}

int wire__out_raw_now(wire_conn *c, const void *data, size_t len) {
  if (c->out_head == NULL && !(c->flags & WIRE__F_WRITING)) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int r = WIRE__TP(c)->try_write(c, &b, 1);
    if (r > 0) {
      data = (const uint8_t *)data + r;
      len -= (size_t)r;
    }
  }
  return len ? wire__out_raw(c, data, len) : 0;
}

/* The header of an unmasked final frame, in 2, 4 or 10 bytes. */
size_t wire__frame_header(uint8_t *h, int opcode, size_t len) {
  size_t hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
  h[0] = (uint8_t)(0x80 | opcode);
  if (hl == 2) {
    h[1] = (uint8_t)len;
  } else if (hl == 4) {
    h[1] = 126;
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++)
      h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
  return hl;
}

/* Queue a copy of one unmasked frame: header and payload in one chunk. */
int wire__out_frame(wire_conn *c, int opcode, const void *data, size_t len) {
  size_t hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
  wire__ochunk *ch = chunk_new(hl + len);
  if (ch == NULL)
    return WIRE_ENOMEM;
  wire__frame_header(ch->data, opcode, len);
  if (len)
    memcpy(ch->data + hl, data, len);
  chunk_append(c, ch);
  return 0;
}

/* ---- topics: a published frame shared by many queues ---------------------- */

/* Queue a node of topics.c that points at a shared frame: no copy. */
void wire__out_append(wire_conn *c, wire__ochunk *ch) {
  chunk_append(c, ch);
}

void wire__out_discard(wire_conn *c) {
  while (c->out_head != NULL) {
    wire__ochunk *ch = c->out_head;
    c->out_head = ch->next;
    c->out_bytes -= ch->len - ch->off;
    wire__budget_sub(WIRE__SRV(c), ch->len - ch->off);
    wire__ochunk_free(ch);
  }
  c->out_tail = NULL;
}

void wire__out_trim(wire_conn *c) {
  wire__ochunk **pp = &c->out_head;
  if (*pp != NULL && (*pp)->off > 0)
    pp = &(*pp)->next; /* partly written: the peer has its first bytes */
  while (*pp != NULL) {
    wire__ochunk *ch = *pp;
    *pp = ch->next;
    c->out_bytes -= ch->len;
    wire__budget_sub(WIRE__SRV(c), ch->len);
    wire__ochunk_free(ch);
  }
  c->out_tail = NULL;
  for (wire__ochunk *ch = c->out_head; ch; ch = ch->next)
    c->out_tail = ch;
}

/* Drop n written bytes from the front of the queue. */
static void consume(wire_conn *c, size_t n) {
  c->out_bytes -= n;
  wire__budget_sub(WIRE__SRV(c), n);
  while (n > 0 && c->out_head != NULL) {
    wire__ochunk *ch = c->out_head;
    size_t left = ch->len - ch->off;
    if (n < left) {
      ch->off += n;
      return;
    }
    n -= left;
    c->out_head = ch->next;
    wire__ochunk_free(ch);
  }
  if (c->out_head == NULL)
    c->out_tail = NULL;
}

/* Output is gone: reading may resume, a pending close may finish. */
static void drained(wire_conn *c) {
  wire__update_reading(c);
  wire__conn_progress(c);
  wire__rules_output(c);
}

/* A batch left (or failed): free it, then write what queued meanwhile, or
 * let the connection resume reading / finish its close. */
void wire__out_written(wire_conn *c, wire__wreq *w, int status) {
  while (w->chunks != NULL) {
    wire__ochunk *ch = w->chunks;
    w->chunks = ch->next;
    wire__ochunk_free(ch);
  }
  c->out_bytes -= w->bytes;
  wire__budget_sub(WIRE__SRV(c), w->bytes);
  c->flags &= ~WIRE__F_WRITING;
  free(w);
  if (c->state == WIRE__S_CLOSED)
    return;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  if (status >= 0 && c->tkind == WIRE__T_STALL)
    wire__tlist_put(c, &c->ep->stall); /* hardening: progress: a fresh send deadline */
  if (status < 0)
    wire__conn_terminate(c, c->close_code ? c->close_code : 1006, NULL, 0);
  else if (c->out_head != NULL)
    wire__out_flush(c);
  else
    drained(c);
  wire__leave(s);
}

/* Hand the queue to the transport: whatever it takes at once, then one write
 * for the rest (at most WIRE__MAX_IOV chunks; its completion continues). */
void wire__out_flush(wire_conn *c) {
  if (c->state == WIRE__S_CLOSED || (c->flags & WIRE__F_WRITING) || c->out_head == NULL)
    return;
  uv_buf_t bufs[WIRE__MAX_IOV];
  unsigned n = 0;
  for (wire__ochunk *ch = c->out_head; ch && n < WIRE__MAX_IOV; ch = ch->next)
    bufs[n++] =
        uv_buf_init((char *)wire__ochunk_bytes(ch) + ch->off, (unsigned)(ch->len - ch->off));
  int r = WIRE__TP(c)->try_write(c, bufs, n);
  if (r < 0) {
    wire__conn_terminate(c, c->close_code ? c->close_code : 1006, NULL, 0);
    return;
  }
  if (r > 0)
    consume(c, (size_t)r);
  if (c->out_head == NULL) {
    drained(c);
    return;
  }
  wire__wreq *w = calloc(1, sizeof *w);
  if (w == NULL) {
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
  n = 0;
  wire__ochunk **tail = &w->chunks;
  while (c->out_head != NULL && n < WIRE__MAX_IOV) {
    wire__ochunk *ch = c->out_head;
    c->out_head = ch->next;
    ch->next = NULL;
    bufs[n++] =
        uv_buf_init((char *)wire__ochunk_bytes(ch) + ch->off, (unsigned)(ch->len - ch->off));
    w->bytes += ch->len - ch->off;
    *tail = ch;
    tail = &ch->next;
  }
  if (c->out_head == NULL)
    c->out_tail = NULL;
  c->flags |= WIRE__F_WRITING;
  WIRE__SRV(c)->kick = 1;
  r = WIRE__TP(c)->write(c, w, bufs, n);
  if (r != 0) { /* never started: no completion will come */
    c->flags &= ~WIRE__F_WRITING;
    while (w->chunks != NULL) {
      wire__ochunk *ch = w->chunks;
      w->chunks = ch->next;
      wire__ochunk_free(ch);
    }
    c->out_bytes -= w->bytes;
    wire__budget_sub(WIRE__SRV(c), w->bytes);
    free(w);
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
  if (c->state == WIRE__S_OPEN && c->tkind != WIRE__T_STALL)
    wire__update_reading(c); /* hardening: the send deadline starts */
  wire__rules_output(c);     /* try_write alone may have brought it under the mark */
}

/* Queued output leaves when the outermost callback returns (one write for
 * everything queued meanwhile); public calls are bracketed the same way. */
void wire__out_schedule(wire_conn *c) {
  wire_server *s = WIRE__SRV(c);
  if (s->depth == 0) {
    wire__out_flush(c);
    return;
  }
  if (c->flags & WIRE__F_DIRTY)
    return;
  c->flags |= WIRE__F_DIRTY;
  c->refs++;
  c->dirty_next = s->dirty;
  s->dirty = c;
}

/* ---- public sends ------------------------------------------------------------- */

/* The public send path: state and backpressure checks, then one copied
 * frame queued for the end of the current callback. */
int wire__send_frame(wire_conn *c, int opcode, const void *data, size_t len) {
  if (c == NULL || (data == NULL && len > 0))
    return WIRE_EINVAL;
  if (c->state != WIRE__S_OPEN)
    return WIRE_ECLOSED;
  wire_server *s = WIRE__SRV(c);
  if (c->out_bytes > c->ep->opts.max_backpressure) {
    /* A consumer this slow would make us grow without bound. */
    WIRE__M_INC(s->m->backpressure); /* metrics */
    wire_conn_close(c, 1008, "send buffer limit exceeded", 26);
    return WIRE_EBACKPRESSURE;
  }
  wire__enter(s);
  int r = wire__pmd_send(c, opcode, data, len); /* permessage-deflate, when it pays */
  if (r == 0)
    r = wire__out_frame(c, opcode, data, len);
  else if (r == 1)
    r = 0;
  if (r == 0)
    wire__out_queued(c, len);
  wire__leave(s);
  return r;
}

int wire_conn_send_text(wire_conn *c, const char *data, size_t len) {
  if (c != NULL && c->state == WIRE__S_OPEN && data != NULL &&
      wire__utf8_step(WIRE__UTF8_OK, (const uint8_t *)data, len) != WIRE__UTF8_OK)
    return WIRE_EUTF8;
  return wire__send_frame(c, WSLAY_TEXT_FRAME, data, len);
}

int wire_conn_send_binary(wire_conn *c, const void *data, size_t len) {
  return wire__send_frame(c, WSLAY_BINARY_FRAME, data, len);
}
