/*
 * conn.c -- one WebSocket connection after the upgrade: the wslay glue (a
 * pooled event context lent only while frames are in flight), a frame-boundary
 * scanner that also rejects malformed headers with 1002, fail-fast UTF-8
 * checks on text (1007), the close handshake and its timeouts, pause/resume
 * with in-order delivery, references, and the per-connection accessors.
 */
#include "conn_internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- wslay callbacks (user_data is the slot) ----------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud) {
  wire__slot *slot = ud;
  (void)flags;
  size_t p = 0; /* held header bytes first (wire__conn_feed), in the same call:
                  wslay takes a short read as the end of the input */
  if (slot->pre_len > 0) {
    p = slot->pre_len < len ? slot->pre_len : len;
    memcpy(buf, slot->pre, p);
    slot->pre += p;
    slot->pre_len -= p;
  }
  size_t n = slot->feed_len < len - p ? slot->feed_len : len - p;
  if (p + n == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (n > 0)
    memcpy(buf + p, slot->feed, n);
  slot->feed += n;
  slot->feed_len -= n;
  return (ssize_t)(p + n);
}

/* wslay writes only control frames it answers by itself (pong, close). */
static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  wire__slot *slot = ud;
  (void)flags;
  if (wire__out_raw(slot->conn, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

/* Close with `code` from inside wslay_event_recv and stop parsing. */
static void slot_fail(wire__slot *slot, uint16_t code) {
  slot->failed = 1;
  wslay_event_queue_close(slot->ctx, code, NULL, 0);
  wslay_event_shutdown_read(slot->ctx);
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *ud) {
  wire__slot *slot = ud;
  (void)ctx;
  slot->ctrl = (arg->opcode & 0x8) != 0;
  if (slot->ctrl) {
    slot->ctrl_op = arg->opcode;
    slot->ctrl_seen = 0;
    slot->cutf8 = WIRE__UTF8_OK;
  } else if (arg->opcode == WSLAY_TEXT_FRAME) {
    slot->text = 1;
    slot->utf8 = WIRE__UTF8_OK;
    slot->z = (arg->rsv & WSLAY_RSV1_BIT) != 0; /* the scanner allowed it */
  } else if (arg->opcode == WSLAY_BINARY_FRAME) {
    slot->text = 0;
    slot->z = (arg->rsv & WSLAY_RSV1_BIT) != 0;
  }
}

/* hardening: append a data frame's payload to the message in flight, growing
 * its one buffer geometrically (never past max_message_size, which the
 * scanner enforced at the header). Returns 0 or WIRE_ENOMEM. */
static int msg_append(wire__slot *slot, const uint8_t *data, size_t len) {
  if (len == 0)
    return 0;
  size_t need = slot->msg_len + len;
  if (need > slot->msg_cap) {
    size_t cap = slot->msg_cap ? slot->msg_cap * 2 : 256;
    size_t max = slot->conn->ep->opts.max_message_size;
    if (cap < need)
      cap = need;
    if (cap > max && need <= max)
      cap = max;
    uint8_t *p = realloc(slot->msg, cap);
    if (p == NULL)
      return WIRE_ENOMEM;
    wire__budget_add(WIRE__SRV(slot->conn), cap - slot->msg_cap);
    slot->msg = p;
    slot->msg_cap = cap;
  }
  memcpy(slot->msg + slot->msg_len, data, len);
  slot->msg_len = need;
  return 0;
}

/* Text is checked as it arrives, so a bad byte fails fast even in a large or
 * fragmented message. Data payloads are coalesced into slot->msg. */
static void ws_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *ud) {
  wire__slot *slot = ud;
  (void)ctx;
  if (slot->failed)
    return;
  if (slot->ctrl) { /* a close reason is UTF-8 too (after the 2-byte code) */
    if (slot->ctrl_op != WSLAY_CONNECTION_CLOSE)
      return;
    size_t skip = slot->ctrl_seen < 2 ? 2u - slot->ctrl_seen : 0;
    if (skip > arg->data_length)
      skip = arg->data_length;
    slot->ctrl_seen = (uint8_t)(slot->ctrl_seen + arg->data_length);
    slot->cutf8 = wire__utf8_step(slot->cutf8, arg->data + skip, arg->data_length - skip);
    if (slot->cutf8 == WIRE__UTF8_BAD)
      slot_fail(slot, 1007);
    return;
  }
  if (msg_append(slot, arg->data, arg->data_length) != 0) {
    slot_fail(slot, 1011);
    return;
  }
  if (!slot->text || slot->z) /* compressed text is checked once inflated */
    return;
  slot->utf8 = wire__utf8_step(slot->utf8, arg->data, arg->data_length);
  if (slot->utf8 == WIRE__UTF8_BAD)
    slot_fail(slot, 1007);
}

static void ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud) {
  wire__slot *slot = ud;
  wire_conn *c = slot->conn;
  /* What wslay queued so far (a pong, a close) goes out before anything this
   * message makes the application send. */
  wslay_event_send(ctx);
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME:
    if (slot->failed)
      return;
    if (arg->opcode == WSLAY_TEXT_FRAME && slot->utf8 != WIRE__UTF8_OK) {
      slot_fail(slot, 1007); /* ends inside a multi-byte sequence */
      return;
    }
    if (slot->z) { /* permessage-deflate: inflate (bounded), then check the text */
      int code = wire__pmd_inflate(c, slot);
      if (code == 0 && arg->opcode == WSLAY_TEXT_FRAME &&
          wire__utf8_step(WIRE__UTF8_OK, slot->msg, slot->msg_len) != WIRE__UTF8_OK)
        code = 1007;
      slot->z = 0;
      if (code != 0) {
        slot->msg_len = 0;
        slot_fail(slot, (uint16_t)code);
        return;
      }
    }
    if (c->state == WIRE__S_OPEN) {
      /* reset first: the buffer is ours again once delivery returns */
      size_t len = slot->msg_len;
      slot->msg_len = 0;
      slot->frags = 0;
      if (c->x != NULL && c->x->client != NULL && !wire__rate_admit(c, len))
        return; /* client limits: dropped, or closing with 1008 */
      wire__conn_deliver(c, arg->opcode == WSLAY_TEXT_FRAME ? WIRE_MSG_TEXT : WIRE_MSG_BINARY,
                         slot->msg, len);
    }
    return;
  case WSLAY_CONNECTION_CLOSE: {
    c->flags |= WIRE__F_CLOSE_RECV;
    if (slot->failed)
      return; /* its reason was not UTF-8: our 1007 answers it */
    c->close_code = arg->status_code ? arg->status_code : 1005;
    if (wire__m_code(c->close_code) >= 0) /* metrics */
      WIRE__M_INC(c->ep->m->close_recv[wire__m_code(c->close_code)]);
    size_t rlen = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
    if (rlen > sizeof slot->reason - 1)
      rlen = sizeof slot->reason - 1;
    if (rlen)
      memcpy(slot->reason, arg->msg + 2, rlen);
    slot->reason[rlen] = 0;
    slot->reason_len = (uint8_t)rlen;
    if (c->state == WIRE__S_OPEN) {
      c->state = WIRE__S_CLOSING;
      wire__tlist_put(c, &c->ep->closing);
    }
    return;
  }
  default:
    return; /* ping (wslay answers) and pong: activity was noted on read */
  }
}

/* Runs before wslay echoes a close: the last chance to refuse its reason. */
static void ws_frame_end(wslay_event_context_ptr ctx, void *ud) {
  wire__slot *slot = ud;
  (void)ctx;
  if (slot->ctrl && slot->ctrl_op == WSLAY_CONNECTION_CLOSE && !slot->failed &&
      slot->cutf8 != WIRE__UTF8_OK)
    slot_fail(slot, 1007);
}

static const struct wslay_event_callbacks ws_callbacks = {
    ws_recv, ws_send, NULL, ws_frame_start, ws_frame_chunk, ws_frame_end, ws_msg,
};

/* ---- slots ----------------------------------------------------------------- */

void wire__slot_free(wire__slot *slot) {
  if (slot == NULL)
    return;
  wslay_event_context_free(slot->ctx);
  free(slot->msg);
  free(slot->zbuf);
  free(slot);
}

/* Lend c a clean wslay context (pooled or new) for the frames now arriving.
 * Returns 0 or WIRE_ENOMEM. */
static int slot_attach(wire_conn *c) {
  wire_server *s = WIRE__SRV(c);
  wire__slot *slot = s->pool;
  if (slot != NULL) {
    s->pool = slot->next;
    s->n_pool--;
  } else {
    slot = calloc(1, sizeof *slot);
    if (slot == NULL)
      return WIRE_ENOMEM;
    if (wslay_event_context_server_init(&slot->ctx, &ws_callbacks, slot) != 0) {
      free(slot);
      return WIRE_ENOMEM;
    }
    /* hardening: wslay keeps a node per fragment; we coalesce (ws_frame_chunk) */
    wslay_event_config_set_no_buffering(slot->ctx, 1);
  }
  slot->next = NULL;
  slot->conn = c;
  slot->feed = NULL;
  slot->feed_len = 0;
  slot->pre = NULL;
  slot->pre_len = 0;
  slot->utf8 = WIRE__UTF8_OK;
  slot->text = slot->ctrl = slot->failed = slot->ctrl_op = slot->ctrl_seen = 0;
  slot->cutf8 = WIRE__UTF8_OK;
  slot->reason_len = 0;
  slot->reason[0] = 0;
  slot->msg_len = 0;
  slot->frags = 0;
  slot->z = 0;
  slot->late = 0;
  slot->zbad = 0;
  wslay_event_config_set_allowed_rsv_bits(slot->ctx, c->pmd ? WSLAY_RSV1_BIT : WSLAY_RSV_NONE);
  wslay_event_config_set_max_recv_msg_length(
      slot->ctx,
      c->pmd ? wire__pmd_wire_limit(c->ep->opts.max_message_size) : c->ep->opts.max_message_size);
  c->slot = slot;
  return 0;
}

/* Give the context back. Only a context between frames, with no fragmented
 * message, nothing queued and no close is clean enough to lend again. */
static void slot_detach(wire_conn *c, int clean) {
  wire__slot *slot = c->slot;
  wire_server *s = WIRE__SRV(c);
  if (slot == NULL)
    return;
  c->slot = NULL;
  slot->conn = NULL;
  if (clean && s->n_pool < WIRE__SLOT_POOL_MAX) {
    if (slot->msg_cap > WIRE__SLOT_MSG_KEEP) { /* pooled contexts stay small */
      wire__budget_sub(s, slot->msg_cap);
      free(slot->msg);
      slot->msg = NULL;
      slot->msg_cap = 0;
    }
    if (slot->zcap > WIRE__SLOT_MSG_KEEP) {
      free(slot->zbuf);
      slot->zbuf = NULL;
      slot->zcap = 0;
    }
    slot->next = s->pool;
    s->pool = slot;
    s->n_pool++;
  } else {
    wire__budget_sub(s, slot->msg_cap);
    wire__slot_free(slot);
  }
}

/* True when the context can go back to the pool without losing state (a
 * partial header held back from wslay is the scanner's, not wslay's). */
static int quiescent(const wire_conn *c) {
  return c->state == WIRE__S_OPEN && (c->u.sc.have == 0 || c->u.sc.held) && c->u.sc.left == 0 &&
         (c->flags & (WIRE__F_FRAG | WIRE__F_READ_DONE | WIRE__F_CLOSE_SENT | WIRE__F_CLOSE_RECV |
                      WIRE__F_IN_FEED)) == 0 &&
         !wslay_event_want_write(c->slot->ctx);
}

/* ---- frame boundary scanner ------------------------------------------------- */

static size_t header_size(const uint8_t *h, size_t have) {
  if (have < 2)
    return 2;
  size_t n = 2 + ((h[1] & 0x80) ? 4 : 0);
  uint8_t len7 = h[1] & 0x7f;
  return n + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
}

/* hardening: the fragmented message in flight began more than
 * message_timeout_ms ago (checked at each frame header of the connection). */
static int msg_overdue(const wire_conn *c) {
  unsigned limit = c->ep->opts.message_timeout_ms;
  return limit != UINT32_MAX && uv_now(WIRE__SRV(c)->loop) - c->slot->msg_t0 > limit;
}

/* A complete header: 0 when acceptable (updates fragmentation and the payload
 * length), else the close code: 1002 when the frame breaks RFC 6455 §5, 1009
 * when it announces a message over max_message_size (refused at the header,
 * before any of the payload is buffered). */
static int header_check(wire_conn *c) {
  const uint8_t *h = c->u.sc.hdr;
  int fin = h[0] & 0x80, op = h[0] & 0x0f;
  if (!(h[1] & 0x80))
    return 1002; /* unmasked client frame */
  if ((h[0] & 0x70) && ((h[0] & 0x70) != 0x40 || !c->pmd || op == 0 || op >= 0x8))
    return 1002; /* reserved bits: only RSV1, with permessage-deflate, on a message's first frame */
  uint64_t len = h[1] & 0x7f;
  if (len == 126) {
    len = ((uint64_t)h[2] << 8) | h[3];
    if (len < 126)
      return 1002; /* a length takes its shortest form (wslay would close without a code) */
  } else if (len == 127) {
    len = 0;
    for (int i = 2; i < 10; i++)
      len = (len << 8) | h[i];
    if ((len >> 63) || len <= 0xffff)
      return 1002;
  }
  if ((c->flags & WIRE__F_FRAG) && msg_overdue(c)) {
    c->slot->late = 1;
    return 1008; /* hardening: a fragmented message kept open too long */
  }
  if (op >= 0x8) {
    if (op > 0xA || !fin || len > 125 || (op == 0x8 && len == 1))
      return 1002; /* a close payload is empty or a 2-byte code first */
  } else if (op == 0 || op == 1 || op == 2) {
    if ((op == 0) != ((c->flags & WIRE__F_FRAG) != 0))
      return 1002;         /* continuation without a message, or a message inside one */
    if (op != 0 && c->pmd) /* permessage-deflate: the limit is on the inflated size */
      c->pmd = (uint16_t)((h[0] & 0x40) ? c->pmd | WIRE__PMD_IN_MSG : c->pmd & ~WIRE__PMD_IN_MSG);
    uint64_t total = (op == 0 ? c->u.sc.msg : 0) + len;
    uint64_t max = c->ep->opts.max_message_size;
    if (total > ((c->pmd & WIRE__PMD_IN_MSG) ? wire__pmd_wire_limit(max) : max))
      return 1009;
    c->slot->frags = op == 0 ? c->slot->frags + 1 : 1;
    if (c->slot->frags > c->ep->opts.max_message_fragments)
      return 1009; /* hardening: frames per message are capped too */
    if (op != 0 && !fin)
      c->slot->msg_t0 = uv_now(WIRE__SRV(c)->loop);
    c->u.sc.msg = fin ? 0 : (uint32_t)total;
    if (fin)
      c->flags &= ~WIRE__F_FRAG;
    else
      c->flags |= WIRE__F_FRAG;
  } else {
    return 1002;
  }
  c->u.sc.left = (uint32_t)len; /* len <= max_message_size or <= 125 here */
  c->u.sc.have = 0;
  return 0;
}

/* Follow frame boundaries through n new bytes. Returns how many bytes belong
 * to acceptable frames; fewer than n when a refused header starts there (its
 * close code in *code). */
static size_t scan(wire_conn *c, const uint8_t *p, size_t n, int *code) {
  size_t i = 0, fstart = 0; /* fstart: 0 when the frame began in an earlier read */
  while (i < n) {
    if (c->u.sc.have == 0 && c->u.sc.left > 0) {
      size_t take = n - i;
      if (take > c->u.sc.left)
        take = (size_t)c->u.sc.left;
      c->u.sc.left -= (uint32_t)take;
      i += take;
      continue;
    }
    if (c->u.sc.have == 0)
      fstart = i;
    c->u.sc.hdr[c->u.sc.have++] = p[i++];
    if (c->u.sc.have < header_size(c->u.sc.hdr, c->u.sc.have))
      continue;
    if ((*code = header_check(c)) != 0)
      return fstart;
  }
  return n;
}

/* ---- feeding ---------------------------------------------------------------- */

static int close_error(uint16_t code) {
  switch (code) {
  case 1007:
    return WIRE_EUTF8;
  case 1009:
    return WIRE_ETOOBIG;
  default:
    return WIRE_EPROTOCOL;
  }
}

static const char *close_error_text(uint16_t code) {
  switch (code) {
  case 1007:
    return "invalid UTF-8 in a text message";
  case 1009:
    return "message larger than max_message_size";
  default:
    return "WebSocket protocol violation";
  }
}

static void drain_paused(wire_conn *c);

/* After wslay ran: push out what it queued, notice a close it started, lend
 * the context back when the connection is between frames. */
static void after_wslay(wire_conn *c, int r) {
  wire__slot *slot = c->slot;
  int w = wslay_event_send(slot->ctx);
  if (wslay_event_get_close_sent(slot->ctx))
    c->flags |= WIRE__F_CLOSE_SENT;
  if (r == WSLAY_ERR_NOMEM || w != 0) {
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
  if (!wslay_event_get_read_enabled(slot->ctx) || r != 0)
    c->flags |= WIRE__F_READ_DONE;
  if ((c->flags & WIRE__F_READ_DONE) && c->state == WIRE__S_OPEN &&
      (!(c->flags & WIRE__F_CLOSE_RECV) || slot->failed)) {
    /* wslay or the scanner refused the peer's data and queued a close */
    uint16_t code = wslay_event_get_status_code_sent(slot->ctx);
    if (code == 0 || code == 1005 || code == 1006)
      code = 1002;
    c->close_code = code;
    c->state = WIRE__S_CLOSING;
    wire__tlist_put(c, &c->ep->closing);
    if (code == 1008 && slot->late) {
      WIRE__SRV(c)->stats.message_timeouts++;
      wire__conn_report(c, WIRE_EPROTOCOL,
                        "fragmented message not complete within message_timeout_ms (%u ms)",
                        c->ep->opts.message_timeout_ms);
    } else if (code == 1009 && slot->frags > c->ep->opts.max_message_fragments) {
      WIRE__SRV(c)->stats.fragment_limits++;
      wire__conn_report(c, WIRE_ETOOBIG,
                        "message spans more than max_message_fragments (%u) frames",
                        c->ep->opts.max_message_fragments);
    } else if (code == 1007 && slot->zbad) {
      wire__conn_report(c, WIRE_EPROTOCOL,
                        "permessage-deflate: the compressed data is corrupt (it does not inflate)");
    } else {
      wire__conn_report(c, close_error(code), "%s", close_error_text(code));
    }
  }
  if (c->state == WIRE__S_CLOSED)
    return;
  wire__out_schedule(c);
  if (c->slot != NULL && quiescent(c))
    slot_detach(c, 1);
  if (c->pq_head != NULL && c->pauses == 0)
    drain_paused(c);
  wire__conn_progress(c);
  wire__update_reading(c);
}

/* Bytes from the socket: attach a context if needed, let the scanner vet
 * the headers, hand the acceptable bytes to wslay, then settle (after_wslay). */
void wire__conn_feed(wire_conn *c, const uint8_t *data, size_t len) {
  if (c->flags & WIRE__F_READ_DONE)
    return; /* closing after an error: discard until EOF */
  if (c->state == WIRE__S_OPEN) {
    if (c->tkind != WIRE__T_STALL)      /* hardening: unless it does not read us */
      wire__tlist_put(c, &c->ep->idle); /* any byte from the peer is life */
    c->flags &= ~WIRE__F_PING_SENT;
  }
  if (c->slot == NULL && slot_attach(c) != 0) {
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
  /* hardening: a trailing partial header is held back from wslay (its bytes
   * stay in the scanner), so an idle connection holding a few header bytes
   * can lend its context back; they are served first on the next read. */
  uint8_t pre[sizeof c->u.sc.hdr];
  size_t npre = c->u.sc.held ? c->u.sc.have : 0;
  memcpy(pre, c->u.sc.hdr, npre);
  c->u.sc.held = 0;
  int code = 0;
  size_t ok = scan(c, data, len, &code);
  size_t total = npre + ok;
  if (ok < len) {
    if (ok == 0)
      total = 0; /* the refused header began in the held bytes */
  } else if (c->u.sc.have > 0 && c->u.sc.have <= total) {
    total -= c->u.sc.have;
    c->u.sc.held = 1;
  }
  wire__slot *slot = c->slot;
  slot->pre = pre;
  slot->pre_len = total < npre ? total : npre;
  slot->feed = data;
  slot->feed_len = total - slot->pre_len;
  c->flags |= WIRE__F_IN_FEED;
  int r = wslay_event_recv(slot->ctx);
  c->flags &= ~WIRE__F_IN_FEED;
  if (c->state == WIRE__S_CLOSED)
    return;
  if (ok < len && wslay_event_get_read_enabled(slot->ctx)) {
    if (slot->late)
      wslay_event_queue_close(slot->ctx, 1008, (const uint8_t *)"message timeout", 15);
    else
      wslay_event_queue_close(slot->ctx, (uint16_t)code, NULL, 0);
    wslay_event_shutdown_read(slot->ctx);
  }
  after_wslay(c, r);
}

/* Every read of every connection: dispatch by state; a read error or EOF
 * ends the connection (1006 unless a close was already exchanged). */
void wire__conn_on_read(wire_conn *c, const char *data, ssize_t n) {
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  if (n > 0) {
    switch (c->state) {
    case WIRE__S_HANDSHAKE:
    case WIRE__S_DEFERRED:
      wire__handshake_read(c, data, (size_t)n);
      break;
    case WIRE__S_OPEN:
    case WIRE__S_CLOSING:
      wire__conn_feed(c, (const uint8_t *)data, (size_t)n);
      break;
    default:
      break; /* rejecting: discard until EOF */
    }
  } else if (n < 0 && WIRE__OWES_DELIVERY(c)) {
    c->flags |= WIRE__F_EOF; /* the closed peer left first: finish after the delivery */
    wire__update_reading(c);
  } else if (n < 0) {
    int code = c->close_code ? c->close_code : 1006;
    if (c->state == WIRE__S_CLOSING && (c->flags & WIRE__F_CLOSE_RECV) == 0 &&
        (c->flags & WIRE__F_CLOSE_SENT))
      code = c->close_code;
    wire__conn_terminate(c, code, NULL, 0);
  }
  wire__leave(s);
}

void wire__conn_opened(wire_conn *c, const uint8_t *rest, size_t len) {
  if (len > 0)
    wire__conn_feed(c, rest, len);
  else
    wire__update_reading(c);
}

/* The deadline of an open connection. hardening: while a transport write is
 * in flight the send deadline runs instead of the idle one (each completed
 * write refreshes it, send.c), so a peer that stops reading is closed
 * whether or not we still read it; a ping already out keeps its pong
 * deadline. Otherwise silence is only the peer's fault while we read: no
 * pings (whose pong we could not see) while not reading. */
static void deadline_watch(wire_conn *c, int want) {
  if (c->flags & WIRE__F_WRITING) {
    if (c->tkind != WIRE__T_STALL && c->tkind != WIRE__T_PONG)
      wire__tlist_put(c, &c->ep->stall);
  } else if (c->tkind == WIRE__T_STALL || c->tkind == WIRE__T_PARKED) {
    if (want)
      wire__tlist_put(c, &c->ep->idle);
    else if (c->tkind == WIRE__T_STALL)
      wire__tlist_put(c, &WIRE__SRV(c)->parked);
  } else if (!want) {
    /* hardening: not read, so a peer's close or reset would go unseen:
     * probe it now and then instead (wire__conn_expired) */
    wire__tlist_put(c, &WIRE__SRV(c)->parked);
  }
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
    want = (c->pq_head == NULL && c->out_bytes <= c->ep->opts.max_backpressure &&
            !(c->rules & (WIRE__R_QFULL | WIRE__R_BUDGET))) ||
           (c->rules & WIRE__R_PEER_FIN); /* what a peer that left still sent is bounded */
    break;
  default:
    return;
  }
  int on = (c->flags & WIRE__F_READING) != 0;
  if (c->state == WIRE__S_OPEN)
    deadline_watch(c, want);
  if (want == on)
    return;
  if (c->state == WIRE__S_OPEN && want && c->tkind != WIRE__T_STALL)
    wire__tlist_put(c, &c->ep->idle);
  if (want) {
    if (WIRE__TP(c)->read_start(c) != 0)
      return;
    c->flags |= WIRE__F_READING;
  } else {
    WIRE__TP(c)->read_stop(c);
    c->flags &= ~WIRE__F_READING;
  }
  WIRE__SRV(c)->kick = 1;
}

/* ---- delivery, pause, resume ------------------------------------------------ */

static void pq_free(wire_conn *c) {
  while (c->pq_head != NULL) {
    wire__pmsg *m = c->pq_head;
    c->pq_head = m->next;
    wire__budget_sub(WIRE__SRV(c), sizeof *m + m->len);
    free(m);
  }
  c->pq_len = 0;
}

void wire__conn_pq_free(wire_conn *c) {
  pq_free(c);
  wire__rules_queue_check(c);
}

size_t wire__conn_pq_bytes(const wire_conn *c) {
  size_t n = 0;
  for (const wire__pmsg *m = c->pq_head; m; m = m->next)
    n += sizeof *m + m->len;
  return n;
}

/* Deliver now, or copy into the pause queue when paused or when earlier
 * messages still wait (order is kept either way). */
void wire__conn_deliver(wire_conn *c, int kind, const uint8_t *data, size_t len) {
  WIRE__M_INC(c->ep->m->msgs_in); /* metrics */
  WIRE__M_ADD(c->ep->m->bytes_in, len);
  if (c->x != NULL) /* log.c: counted for the close event */
    c->x->bin += len;
  if (data == NULL)
    data = (const uint8_t *)""; /* empty messages still point somewhere */
  if (c->pauses == 0 && c->pq_head == NULL) {
    wire__pipeline_message(c, kind, data, len);
    return;
  }
  wire__pmsg *m = malloc(sizeof *m + len);
  if (m == NULL) {
    wire__conn_report(c, WIRE_ENOMEM, "out of memory queueing a message while paused");
    return;
  }
  m->next = NULL;
  m->len = len;
  m->kind = (uint8_t)kind;
  wire__budget_add(WIRE__SRV(c), sizeof *m + len);
  if (len)
    memcpy(m->data, data, len);
  wire__pmsg **tail = &c->pq_head; /* short: filled by at most one read */
  while (*tail != NULL)
    tail = &(*tail)->next;
  *tail = m;
  if (c->pq_len < UINT16_MAX) /* one read's worth: never near it */
    c->pq_len++;
  wire__rules_queue_check(c);
}

/* Deliver queued messages in order while not paused. Never nested: a resume
 * from inside a delivery leaves the work to the running loop. */
static void drain_paused(wire_conn *c) {
  if (c->flags & (WIRE__F_DELIVERING | WIRE__F_IN_FEED))
    return;
  c->flags |= WIRE__F_DELIVERING;
  c->refs++;
  while (c->pauses == 0 && c->pq_head != NULL &&
         (c->state == WIRE__S_OPEN || WIRE__OWES_DELIVERY(c))) {
    wire__pmsg *m = c->pq_head;
    c->pq_head = m->next;
    if (c->pq_len > 0)
      c->pq_len--;
    wire__rules_queue_check(c);
    wire__pipeline_message(c, m->kind, m->data, m->len);
    wire__budget_sub(WIRE__SRV(c), sizeof *m + m->len);
    free(m);
  }
  c->flags &= ~WIRE__F_DELIVERING;
  if (c->state == WIRE__S_OPEN)
    wire__update_reading(c);
  else if (!WIRE__OWES_DELIVERY(c)) {
    pq_free(c); /* after our own close the application wants no more */
    if (c->state == WIRE__S_CLOSING)
      wire__conn_progress(c); /* a close that waited for this delivery */
  }
  wire__conn_release(c);
}

int wire_conn_pause(wire_conn *c) {
  if (c == NULL || c->state == WIRE__S_CLOSED)
    return WIRE_ECLOSED;
  /* Cheap on purpose (async handlers pause around every message): reading
   * stops once a message arrives while paused, not here. */
  c->pauses++;
  return 0;
}

int wire_conn_resume(wire_conn *c) {
  if (c == NULL || c->state == WIRE__S_CLOSED)
    return WIRE_ECLOSED;
  if (c->pauses == 0)
    return 0;
  if (--c->pauses > 0)
    return 0;
  if (c->pq_head == NULL && (c->flags & WIRE__F_READING))
    return 0;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  drain_paused(c);
  if (c->state != WIRE__S_CLOSED)
    wire__update_reading(c);
  wire__leave(s);
  return 0;
}

/* ---- closing ------------------------------------------------------------------ */

/* metrics: count an error on its endpoint, and log it. */
static void error_seen(wire_conn *c, int code, const char *message) {
  if (c->ep != NULL && code < 0 && code > -WIRE__M_ERRS)
    WIRE__M_INC(c->ep->m->errors[-code]);
  wire_errcat cat = wire_err_category(code);
  int level = code == WIRE_EHANDLER || code == WIRE_ENOMEM ? WIRE_LOG_ERROR
              : cat == WIRE_ERRCAT_PROTOCOL || cat == WIRE_ERRCAT_TOO_BIG ||
                      cat == WIRE_ERRCAT_DESERIALIZE || cat == WIRE_ERRCAT_VALIDATION ||
                      cat == WIRE_ERRCAT_UNKNOWN_MESSAGE
                  ? WIRE_LOG_INFO /* what the peer sent: not the server's fault */
                  : WIRE_LOG_WARNING;
  if (WIRE__LOG_ON(WIRE__SRV(c), level))
    wire__log_conn(c, level, "error", 0, code, message);
}

int wire__conn_report_err(wire_conn *c, const wire_error *err) {
  error_seen(c, err->code, err->message);
  wire_endpoint *ep = c->ep;
  if (ep == NULL || ep->cb.on_error == NULL)
    return 0;
  return ep->cb.on_error(c, err, ep->user_data);
}

int wire__conn_report(wire_conn *c, int code, const char *fmt, ...) {
  wire_endpoint *ep = c->ep;
  wire_error err;
  memset(&err, 0, sizeof err);
  err.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err.message, sizeof err.message, fmt, ap);
  va_end(ap);
  error_seen(c, code, err.message);
  if (ep == NULL || ep->cb.on_error == NULL)
    return 0;
  return ep->cb.on_error(c, &err, ep->user_data);
}

void wire__conn_on_closed(wire_conn *c) {
  wire_server *s = WIRE__SRV(c);
  s->n_sockets--;
  c->flags |= WIRE__F_HCLOSED;
  if (c->refs == 0) {
    wire__conn_free(c);
  } else { /* referenced: park it where wire_server_free can find it */
    c->tprev = NULL;
    c->tnext = s->zombies;
    if (s->zombies)
      s->zombies->tprev = c;
    s->zombies = c;
  }
  wire__server_check_done(s);
}

wire__cx *wire__conn_extras(wire_conn *c) {
  if (c->x == NULL)
    c->x = calloc(1, sizeof *c->x);
  return c->x;
}

void wire__conn_free(wire_conn *c) {
  wire__request_free(c->req);
  free(c->x); /* its zlib streams and client share went at termination */
  free(c);
}

void wire__conn_release(wire_conn *c) {
  if (--c->refs > 0 || !(c->flags & WIRE__F_HCLOSED))
    return;
  wire_server *s = WIRE__SRV(c);
  if (c->tprev)
    c->tprev->tnext = c->tnext;
  else
    s->zombies = c->tnext;
  if (c->tnext)
    c->tnext->tprev = c->tprev;
  wire__conn_free(c);
}

/* The single exit: on_close once (if the connection was accepted), free the
 * per-connection state, close the transport; the memory goes in
 * wire__conn_on_closed unless references hold it. */
void wire__conn_terminate(wire_conn *c, int code, const char *reason, size_t rlen) {
  if (c->state == WIRE__S_CLOSED)
    return;
  int prev = c->state;
  wire_server *s = WIRE__SRV(c);
  if (prev == WIRE__S_OPEN || prev == WIRE__S_DEFERRED || prev == WIRE__S_CLOSING)
    s->n_established--;
  c->state = WIRE__S_CLOSED;
  wire__tlist_remove(c);
  if (c->rules & WIRE__R_BUDGET) {
    c->rules &= (uint8_t)~WIRE__R_BUDGET;
    s->n_budget_paused--;
  }
  if (prev == WIRE__S_HANDSHAKE || prev == WIRE__S_DEFERRED) {
    free(c->u.hs.buf);
    memset(&c->u, 0, sizeof c->u);
  }
  if ((c->flags & WIRE__F_ACCEPTED) && !(c->flags & WIRE__F_NOTIFIED)) {
    c->flags |= WIRE__F_NOTIFIED;
    if (reason == NULL && c->slot != NULL &&
        (c->flags & (WIRE__F_CLOSE_SENT | WIRE__F_CLOSE_RECV))) {
      reason = c->slot->reason;
      rlen = c->slot->reason_len;
    }
    if (reason == NULL) {
      reason = "";
      rlen = 0;
    }
    WIRE__M_INC(c->ep->m->closed); /* metrics */
    if (wire__m_code(code) >= 0)
      WIRE__M_INC(c->ep->m->ended[wire__m_code(code)]);
    if (WIRE__LOG_ON(s, WIRE_LOG_INFO))
      wire__log_conn(c, WIRE_LOG_INFO, "close", 0, code, reason);
    if (c->ep->cb.on_close)
      c->ep->cb.on_close(c, code, reason, rlen, c->ep->user_data);
  }
  wire__topics_conn_drop(c); /* topics: listed during on_close, gone after */
  wire__climits_conn_end(c); /* client limits */
  slot_detach(c, 0);
  wire__pmd_conn_free(c);
  wire__out_discard(c);
  pq_free(c);
  WIRE__TP(c)->close(c);
}

/* Send our FIN and wait (reading, discarding) for the peer's. */
static void half_close(wire_conn *c) {
  c->flags |= WIRE__F_SHUT_WR;
  if (WIRE__TP(c)->shutdown(c) != 0) {
    wire__conn_terminate(c, c->close_code ? c->close_code : 1006, NULL, 0);
    return;
  }
  WIRE__SRV(c)->kick = 1;
  wire__update_reading(c);
}

/* Called whenever output drains or the state moves: finish a rejection or a
 * close handshake whose last bytes have left. */
void wire__conn_progress(wire_conn *c) {
  if (c->out_bytes != 0 || (c->flags & WIRE__F_SHUT_WR))
    return;
  if (c->state == WIRE__S_REJECTING) {
    half_close(c);
    return;
  }
  if (c->state != WIRE__S_CLOSING)
    return;
  if (WIRE__OWES_DELIVERY(c))
    return; /* resume delivers them, then comes back here; the close deadline bounds it */
  if ((c->flags & WIRE__F_CLOSE_RECV) && (c->flags & WIRE__F_CLOSE_SENT)) {
    wire__conn_terminate(c, c->close_code, NULL, 0); /* the server closes TCP first */
  } else if ((c->flags & WIRE__F_CLOSE_SENT) && (c->flags & WIRE__F_READ_DONE)) {
    half_close(c); /* we stopped parsing after an error: only EOF can end it */
  }
}

/* Queue our close frame through wslay (so it knows a close was sent) and
 * arm the close deadline. Inside a feed, the feed sends it. */
void wire__conn_start_close(wire_conn *c, int code, const char *reason, size_t rlen) {
  if (c->slot == NULL && slot_attach(c) != 0) {
    wire__conn_terminate(c, code ? code : 1005, reason, rlen);
    return;
  }
  wire__slot *slot = c->slot;
  c->state = WIRE__S_CLOSING;
  c->close_code = (uint16_t)(code ? code : 1005);
  if (wire__m_code(code) >= 0) /* metrics */
    WIRE__M_INC(c->ep->m->close_sent[wire__m_code(code)]);
  memcpy(slot->reason, reason ? reason : "", rlen);
  slot->reason[rlen] = 0;
  slot->reason_len = (uint8_t)rlen;
  wslay_event_queue_close(slot->ctx, (uint16_t)code, (const uint8_t *)reason, rlen);
  wire__tlist_put(c, &c->ep->closing);
  if (c->flags & WIRE__F_IN_FEED)
    return; /* the feed sends it when wslay returns */
  if (wslay_event_send(slot->ctx) != 0) {
    wire__conn_terminate(c, c->close_code, NULL, 0);
    return;
  }
  c->flags |= WIRE__F_CLOSE_SENT;
  wire__out_schedule(c);
}

static int valid_close_code(int code) {
  if (code == 0)
    return 1;
  if (code >= 3000 && code <= 4999)
    return 1;
  return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

int wire_conn_close(wire_conn *c, int code, const char *reason, size_t reason_len) {
  if (c == NULL || !valid_close_code(code) || reason_len > 123 ||
      (reason == NULL && reason_len > 0) || (code == 0 && reason_len > 0))
    return WIRE_EINVAL;
  if (c->state != WIRE__S_OPEN)
    return WIRE_ECLOSED;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  wire__conn_start_close(c, code, reason, reason_len);
  wire__leave(s);
  return 0;
}

/* hardening: the peer of a connection we are not reading: 0 still there
 * (or not a TCP socket), 1 it sent its FIN, 2 the connection was reset. */
static int peer_state(wire_conn *c) {
#ifdef TCP_INFO
  uv_os_fd_t fd;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (c->tpi != WIRE__TP_TCP || uv_fileno((uv_handle_t *)&c->poll, &fd) != 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    return 0;
  if (ti.tcpi_state == TCP_ESTABLISHED)
    return 0;
  return ti.tcpi_state == TCP_CLOSE_WAIT ? 1 : 2;
#else
  (void)c;
  return 0;
#endif
}

/* hardening: a connection not read for the application (a busy or hung
 * handler) still notices its peer leave: a reset ends it now (1006, so the
 * package cancels the handler); after a FIN the rest of what the peer sent
 * (bounded: it can send no more) is read, so its close frame is answered and
 * the close deadline runs. */
static void parked_probe(wire_conn *c) {
  switch (peer_state(c)) {
  case 0:
    wire__tlist_put(c, &WIRE__SRV(c)->parked);
    return;
  case 1:
    c->rules |= WIRE__R_PEER_FIN;
    wire__update_reading(c);
    return;
  default:
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  }
}

/* A deadline passed (kind: the list it sat on). */
void wire__conn_expired(wire_conn *c, int kind) {
  if (kind == WIRE__T_PARKED) {
    if (c->state == WIRE__S_OPEN)
      parked_probe(c);
    return;
  }
  if (kind == WIRE__T_STALL && c->state == WIRE__S_OPEN) {
    /* hardening: a reader that stopped reading; the close deadline drops it */
    WIRE__SRV(c)->stats.send_timeouts++;
    wire__conn_report(c, WIRE_EBACKPRESSURE, "no output progress for send_timeout_ms (%u ms)",
                      c->ep->opts.send_timeout_ms);
    if (c->state == WIRE__S_OPEN)
      wire__conn_start_close(c, 1008, "send timeout", 12);
    return;
  }
  switch (c->state) {
  case WIRE__S_HANDSHAKE:
  case WIRE__S_REJECTING:
    wire__conn_terminate(c, 1006, NULL, 0);
    return;
  case WIRE__S_OPEN:
    if (c->flags & WIRE__F_PING_SENT) {
      wire__conn_terminate(c, 1006, NULL, 0); /* no pong in time */
      return;
    }
    if (wire__out_frame(c, 0x9, NULL, 0) != 0) {
      wire__conn_terminate(c, 1006, NULL, 0);
      return;
    }
    c->flags |= WIRE__F_PING_SENT;
    wire__tlist_put(c, &c->ep->pong);
    wire__out_schedule(c);
    return;
  case WIRE__S_CLOSING:
    wire__conn_terminate(c, c->close_code ? c->close_code : 1006, NULL, 0);
    return;
  default:
    return;
  }
}

/* ---- references and accessors --------------------------------------------- */

void wire_conn_ref(wire_conn *c) {
  if (c != NULL)
    c->refs++;
}

void wire_conn_unref(wire_conn *c) {
  if (c != NULL && c->refs > 0)
    wire__conn_release(c);
}

const wire_request *wire_conn_request(const wire_conn *c) {
  return c ? c->req : NULL;
}
wire_endpoint *wire_conn_endpoint(const wire_conn *c) {
  return c ? c->ep : NULL;
}
wire_server *wire_conn_server(const wire_conn *c) {
  return c ? WIRE__SRV(c) : NULL;
}
uint64_t wire_conn_id(const wire_conn *c) {
  return c ? c->id : 0;
}
void *wire_conn_get_data(const wire_conn *c) {
  return c ? c->data : NULL;
}
void wire_conn_set_data(wire_conn *c, void *data) {
  if (c != NULL)
    c->data = data;
}
int wire_conn_is_open(const wire_conn *c) {
  return c != NULL && c->state == WIRE__S_OPEN;
}
size_t wire_conn_buffered_amount(const wire_conn *c) {
  return c ? c->out_bytes : 0;
}
