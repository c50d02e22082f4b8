/*
 * deflate.c -- permessage-deflate (RFC 7692): parsing the client's offers,
 * choosing one per the endpoint's mode, the 101's answer, inflating a
 * received message in bounded steps, and compressing outgoing frames.
 *
 * Shared mode (the default) answers server_no_context_takeover and
 * client_no_context_takeover, so every message is compressed by one deflate
 * stream per server (per window size) and inflated by one inflate stream per
 * server, each reset per message: an idle connection keeps no zlib state.
 * Dedicated mode gives a connection its own streams (made at first use),
 * kept between messages for a better ratio.
 */
#include "deflate.h"

#include "conn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* The per-server streams, made on first use. */
typedef struct wire__pmds {
  z_stream *def[16]; /* by window bits (9..15) */
  z_stream *inf;
} wire__pmds;

/* A dedicated connection's streams, each made on first use. */
struct wire__pmdc {
  z_stream *def, *inf;
};

static const uint8_t tail4[4] = {0x00, 0x00, 0xff, 0xff};

/* ---- the offer parser ---------------------------------------------------- */

static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static size_t skip_ows(const char *v, size_t n, size_t i) {
  while (i < n && (v[i] == ' ' || v[i] == '\t'))
    i++;
  return i;
}

/* A token at v[i]: its end, or i when there is none. */
static size_t token_end(const char *v, size_t n, size_t i) {
  while (i < n && is_tchar((unsigned char)v[i]))
    i++;
  return i;
}

/* A parameter value (token or quoted string) at v[*i] unquoted into out
 * (at most cap - 1 bytes kept, the rest counted in *len). Returns 0 or -1
 * on a syntax error. */
static int param_value(const char *v, size_t n, size_t *i, char *out, size_t cap, size_t *len) {
  size_t k = *i, m = 0;
  if (k < n && v[k] == '"') {
    for (k++; k < n && v[k] != '"'; k++) {
      if (v[k] == '\\' && ++k >= n)
        return -1;
      if (m + 1 < cap)
        out[m] = v[k];
      m++;
    }
    if (k >= n)
      return -1;
    k++;
  } else {
    size_t e = token_end(v, n, k);
    if (e == k)
      return -1;
    for (; k < e; k++, m++)
      if (m + 1 < cap)
        out[m] = v[k];
  }
  out[m < cap ? m : cap - 1] = 0;
  *len = m;
  *i = k;
  return 0;
}

/* "8".."15" without leading zeros, else 0. */
static uint8_t window_bits(const char *s, size_t len) {
  if (len == 1 && s[0] == '8')
    return 8;
  if (len == 1 && s[0] == '9')
    return 9;
  if (len == 2 && s[0] == '1' && s[1] >= '0' && s[1] <= '5')
    return (uint8_t)(10 + s[1] - '0');
  return 0;
}

/* Apply one parameter to the offer; 0, or -1 when it makes the offer
 * unacceptable (unknown, repeated, or a bad value). */
static int offer_param(wire__pmd_offer *o, unsigned *seen, const char *name, size_t nlen,
                       int has_val, const char *val, size_t vlen) {
  static const char *const names[] = {"server_no_context_takeover", "client_no_context_takeover",
                                      "server_max_window_bits", "client_max_window_bits"};
  int k = 0;
  while (k < 4 && !(strlen(names[k]) == nlen && strncasecmp(names[k], name, nlen) == 0))
    k++;
  if (k == 4 || (*seen & (1u << k)))
    return -1;
  *seen |= 1u << k;
  uint8_t bits = has_val ? window_bits(val, vlen) : 0;
  switch (k) {
  case 0:
  case 1:
    if (has_val)
      return -1;
    if (k == 0)
      o->snct = 1;
    else
      o->cnct = 1;
    return 0;
  case 2:
    if (bits == 0)
      return -1;
    o->swb = bits;
    return 0;
  default:
    if (has_val && bits == 0)
      return -1;
    o->cwb_set = 1;
    o->cwb = bits;
    return 0;
  }
}

int wire__pmd_offers(const char *v, size_t n, int (*fn)(const wire__pmd_offer *o, void *ud),
                     void *ud) {
  size_t i = 0;
  for (;;) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    if (i >= n)
      return 0;
    size_t e = token_end(v, n, i);
    if (e == i)
      return 0;
    int ours = e - i == 18 && strncasecmp(v + i, "permessage-deflate", 18) == 0;
    wire__pmd_offer o = {0};
    unsigned seen = 0;
    int bad = 0;
    i = skip_ows(v, n, e);
    while (i < n && v[i] == ';') {
      i = skip_ows(v, n, i + 1);
      size_t pe = token_end(v, n, i);
      if (pe == i)
        return 0;
      const char *pname = v + i;
      size_t plen = pe - i;
      i = skip_ows(v, n, pe);
      char val[8];
      size_t vlen = 0;
      int has_val = 0;
      if (i < n && v[i] == '=') {
        i = skip_ows(v, n, i + 1);
        if (param_value(v, n, &i, val, sizeof val, &vlen) != 0)
          return 0;
        has_val = 1;
        i = skip_ows(v, n, i);
      }
      if (ours && !bad && offer_param(&o, &seen, pname, plen, has_val, val, vlen) != 0)
        bad = 1;
    }
    if (i < n && v[i] != ',')
      return 0; /* junk after an extension */
    if (ours && !bad) {
      int r = fn(&o, ud);
      if (r != 0)
        return r;
    }
  }
}

/* ---- negotiation ----------------------------------------------------------- */

typedef struct choice {
  const wire_endpoint_options *opts;
  uint16_t pmd;
} choice;

/* Accept an offer under the endpoint's mode, or pass (0). */
static int choose(const wire__pmd_offer *o, void *ud) {
  choice *ch = ud;
  if (ch->opts->compression == WIRE_COMPRESSION_DEDICATED) {
    unsigned w = ch->opts->compression_window_bits;
    unsigned swb = o->swb && o->swb < w ? o->swb : w;
    if (swb < 9)
      return 0; /* zlib's raw deflate has no 256-byte window */
    uint16_t pmd = (uint16_t)(WIRE__PMD_ON | WIRE__PMD_DEDICATED | swb);
    if (o->swb)
      pmd |= WIRE__PMD_ECHO_SWB;
    if (o->snct)
      pmd |= WIRE__PMD_SNCT;
    if (o->cnct)
      pmd |= WIRE__PMD_CNCT;
    if (o->cwb_set) {
      unsigned cwb = o->cwb && o->cwb < w ? o->cwb : w;
      pmd |= (uint16_t)(cwb << 4);
    }
    ch->pmd = pmd;
    return 1;
  }
  /* shared: no context either way; any client window inflates with 15 */
  if (o->swb == 8)
    return 0;
  uint16_t pmd =
      (uint16_t)(WIRE__PMD_ON | WIRE__PMD_SNCT | WIRE__PMD_CNCT | (o->swb ? o->swb : 15));
  if (o->swb)
    pmd |= WIRE__PMD_ECHO_SWB;
  ch->pmd = pmd;
  return 1;
}

uint16_t wire__pmd_negotiate(const wire_request *req, const wire_endpoint *ep) {
  if (ep->opts.compression == WIRE_COMPRESSION_OFF)
    return 0;
  choice ch = {&ep->opts, 0};
  for (size_t i = 0; wire__request_find_header(req, "sec-websocket-extensions", &i); i++) {
    wire_str v = req->headers[i].value;
    if (wire__pmd_offers(v.ptr, v.len, choose, &ch))
      return ch.pmd;
  }
  return 0;
}

int wire__pmd_response(uint16_t pmd, char *buf, int n, size_t cap) {
  if (!(pmd & WIRE__PMD_ON))
    return n;
  char ext[192];
  int k = snprintf(ext, sizeof ext, "Sec-WebSocket-Extensions: permessage-deflate%s%s",
                   (pmd & WIRE__PMD_SNCT) ? "; server_no_context_takeover" : "",
                   (pmd & WIRE__PMD_CNCT) ? "; client_no_context_takeover" : "");
  if (pmd & WIRE__PMD_ECHO_SWB)
    k += snprintf(ext + k, sizeof ext - (size_t)k, "; server_max_window_bits=%u",
                  (unsigned)(pmd & WIRE__PMD_SWB));
  if (pmd & WIRE__PMD_CWB)
    k += snprintf(ext + k, sizeof ext - (size_t)k, "; client_max_window_bits=%u",
                  (unsigned)((pmd & WIRE__PMD_CWB) >> 4));
  k += snprintf(ext + k, sizeof ext - (size_t)k, "\r\n\r\n");
  if (n < 2 || (size_t)n - 2 + (size_t)k >= cap)
    return -1;
  memcpy(buf + n - 2, ext, (size_t)k + 1);
  return n - 2 + k;
}

/* ---- streams ---------------------------------------------------------------- */

static wire__pmds *server_streams(wire_server *s) {
  if (s->pmd == NULL)
    s->pmd = calloc(1, sizeof(wire__pmds));
  return s->pmd;
}

/* A raw deflate stream with `bits` of window (memLevel follows it). */
static z_stream *deflater(unsigned bits) {
  z_stream *z = calloc(1, sizeof *z);
  int mem = bits >= 15 ? 8 : (int)bits - 7;
  if (z != NULL && deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)bits, mem < 1 ? 1 : mem,
                                Z_DEFAULT_STRATEGY) != Z_OK) {
    free(z);
    z = NULL;
  }
  return z;
}

static z_stream *inflater(unsigned bits) {
  z_stream *z = calloc(1, sizeof *z);
  if (z != NULL && inflateInit2(z, -(int)bits) != Z_OK) {
    free(z);
    z = NULL;
  }
  return z;
}

static void zfree(z_stream *z, int def) {
  if (z == NULL)
    return;
  if (def)
    deflateEnd(z);
  else
    inflateEnd(z);
  free(z);
}

void wire__pmd_server_free(wire_server *s) {
  wire__pmds *p = s->pmd;
  if (p == NULL)
    return;
  for (int i = 0; i < 16; i++)
    zfree(p->def[i], 1);
  zfree(p->inf, 0);
  free(p);
  s->pmd = NULL;
}

void wire__pmd_conn_free(wire_conn *c) {
  struct wire__pmdc *zc = c->x ? c->x->zc : NULL;
  if (zc == NULL)
    return;
  zfree(zc->def, 1);
  zfree(zc->inf, 0);
  free(zc);
  c->x->zc = NULL;
}

/* The dedicated streams of c, made on first use; NULL when out of memory. */
static struct wire__pmdc *conn_streams(wire_conn *c) {
  wire__cx *x = wire__conn_extras(c);
  if (x != NULL && x->zc == NULL)
    x->zc = calloc(1, sizeof *x->zc);
  return x ? x->zc : NULL;
}

/* ---- receiving ----------------------------------------------------------------- */

/* The inflate stream for c's message, or NULL (out of memory). */
static z_stream *inflate_stream(wire_conn *c) {
  if (c->pmd & WIRE__PMD_DEDICATED) {
    struct wire__pmdc *zc = conn_streams(c);
    unsigned cwb = (c->pmd & WIRE__PMD_CWB) >> 4;
    if (zc != NULL && zc->inf == NULL)
      zc->inf = inflater(cwb == 0 ? 15 : cwb < 9 ? 9 : cwb);
    return zc ? zc->inf : NULL;
  }
  wire__pmds *p = server_streams(WIRE__SRV(c));
  if (p != NULL && p->inf == NULL)
    p->inf = inflater(15);
  return p ? p->inf : NULL;
}

/* Grow slot->zbuf to at least `need` bytes (never past limit). 0 or -1. */
static int zbuf_grow(wire__slot *slot, size_t need, size_t limit) {
  size_t cap = slot->zcap ? slot->zcap * 2 : 1024;
  if (cap < need)
    cap = need;
  if (cap > limit)
    cap = limit;
  uint8_t *p = realloc(slot->zbuf, cap);
  if (p == NULL)
    return -1;
  slot->zbuf = p;
  slot->zcap = cap;
  return 0;
}

/* Run the input through z into slot->zbuf from *have on, growing it in
 * steps up to limit bytes. 0, or a close code. */
static int inflate_into(z_stream *z, wire__slot *slot, const uint8_t *in, size_t len, size_t *have,
                        size_t limit, int *end) {
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)len;
  while (!*end) {
    size_t top = slot->zcap < limit ? slot->zcap : limit;
    if (*have >= top) {
      if (top >= limit)
        return 1009;
      if (zbuf_grow(slot, slot->zcap + 1, limit) != 0)
        return 1011;
      top = slot->zcap < limit ? slot->zcap : limit;
    }
    size_t room = top - *have;
    if (room > UINT32_MAX)
      room = UINT32_MAX;
    z->next_out = slot->zbuf + *have;
    z->avail_out = (uInt)room;
    int r = inflate(z, Z_SYNC_FLUSH);
    *have += room - z->avail_out;
    if (r == Z_STREAM_END)
      *end = 1; /* a final block: the message ends here */
    else if (r == Z_MEM_ERROR)
      return 1011;
    else if (r != Z_OK && r != Z_BUF_ERROR)
      return 1007;
    if (z->avail_in == 0 && z->avail_out > 0)
      break;
  }
  return *end && z->avail_in > 0 ? 1007 : 0;
}

int wire__pmd_inflate(wire_conn *c, wire__slot *slot) {
  z_stream *z = inflate_stream(c);
  if (z == NULL)
    return 1011;
  /* one byte past the limit tells a message that is too large */
  size_t limit = (size_t)c->ep->opts.max_message_size + 1;
  size_t have = 0;
  int end = 0;
  int code = inflate_into(z, slot, slot->msg, slot->msg_len, &have, limit, &end);
  if (code == 0 && !end)
    code = inflate_into(z, slot, tail4, sizeof tail4, &have, limit, &end);
  if (code == 0 && have >= limit)
    code = 1009;
  if (code != 0 || end || !(c->pmd & WIRE__PMD_DEDICATED))
    inflateReset(z);
  if (code == 1007)
    slot->zbad = 1; /* reported as corrupt data, not as bad UTF-8 */
  if (code != 0)
    return code;
  uint8_t *p = slot->msg;
  size_t cap = slot->msg_cap;
  slot->msg = slot->zbuf;
  slot->msg_cap = slot->zcap;
  slot->msg_len = have;
  slot->zbuf = p;
  slot->zcap = cap;
  /* memory budget: it counts the message buffer (msg_cap), which changed */
  wire__budget_sub(WIRE__SRV(c), cap);
  wire__budget_add(WIRE__SRV(c), slot->msg_cap);
  return 0;
}

/* ---- sending ------------------------------------------------------------------ */

/* Compress data with z into a new block: `pre` bytes of room, then a final
 * frame with RSV1 (header + payload). Returns the block (*flen: the frame's
 * length) or NULL: *err = WIRE_ENOMEM, or 0 when compressing did not pay
 * and `must` is 0 (z is then left as it was after a reset). */
static uint8_t *compress_block(z_stream *z, size_t pre, int opcode, const uint8_t *data, size_t len,
                               int must, size_t *flen, int *err) {
  size_t cap = deflateBound(z, len) + 16;
  *err = 0;
  uint8_t *block = malloc(pre + 10 + cap);
  if (block == NULL) {
    *err = WIRE_ENOMEM;
    return NULL;
  }
  uint8_t *out = block + pre + 10;
  z->next_in = (Bytef *)data;
  z->avail_in = (uInt)len;
  size_t have = 0;
  for (;;) {
    z->next_out = out + have;
    z->avail_out = (uInt)(cap - have);
    deflate(z, Z_SYNC_FLUSH);
    have = cap - z->avail_out;
    if (z->avail_out > 0 || z->avail_in == 0)
      break;
    uint8_t *nb = realloc(block, pre + 10 + cap * 2); /* never with deflateBound's room */
    if (nb == NULL) {
      free(block);
      *err = WIRE_ENOMEM;
      return NULL;
    }
    block = nb;
    out = block + pre + 10;
    cap *= 2;
  }
  if (have >= 4 && memcmp(out + have - 4, tail4, 4) == 0)
    have -= 4; /* RFC 7692 §7.2.1: the flush marker is left out */
  if (!must && have >= len) {
    free(block);
    return NULL;
  }
  uint8_t h[10];
  size_t hl = wire__frame_header(h, opcode, have);
  h[0] |= 0x40; /* RSV1: a compressed message */
  memmove(block + pre + hl, out, have);
  memcpy(block + pre, h, hl);
  *flen = hl + have;
  return block;
}

/* The deflate stream c sends with, or NULL (out of memory). */
static z_stream *deflate_stream(wire_conn *c) {
  unsigned bits = c->pmd & WIRE__PMD_SWB;
  if (c->pmd & WIRE__PMD_DEDICATED) {
    struct wire__pmdc *zc = conn_streams(c);
    if (zc != NULL && zc->def == NULL)
      zc->def = deflater(bits);
    return zc ? zc->def : NULL;
  }
  wire__pmds *p = server_streams(WIRE__SRV(c));
  if (p != NULL && p->def[bits] == NULL)
    p->def[bits] = deflater(bits);
  return p ? p->def[bits] : NULL;
}

int wire__pmd_send(wire_conn *c, int opcode, const void *data, size_t len) {
  if (!(c->pmd & WIRE__PMD_ON) || len < c->ep->opts.compression_threshold || len > UINT32_MAX)
    return 0;
  z_stream *z = deflate_stream(c);
  if (z == NULL)
    return WIRE_ENOMEM;
  /* with context kept, what went into the stream must go out compressed */
  int keep = (c->pmd & (WIRE__PMD_DEDICATED | WIRE__PMD_SNCT)) == WIRE__PMD_DEDICATED;
  size_t flen = 0;
  int err;
  uint8_t *b =
      compress_block(z, offsetof(wire__ochunk, data), opcode, data, len, keep, &flen, &err);
  if (!keep || b == NULL) /* a reset is always safe: the peer's window only holds more */
    deflateReset(z);
  if (b == NULL)
    return err;
  wire__ochunk *ch = (wire__ochunk *)b;
  ch->next = NULL;
  ch->len = flen;
  ch->off = 0;
  ch->shared = NULL;
  wire__out_append(c, ch);
  return 1;
}

/* ---- publishing ---------------------------------------------------------------- */

/* The payload of a frame we built: after its 2, 4 or 10 header bytes. */
static size_t header_len(const uint8_t *f) {
  uint8_t l = f[1] & 0x7f;
  return l == 127 ? 10 : l == 126 ? 4 : 2;
}

wire__sbuf *wire__pmd_variant(wire_conn *c, wire__sbuf *b) {
  if (!(c->pmd & WIRE__PMD_ON))
    return b;
  size_t hl = header_len(b->data);
  if (b->len - hl < c->ep->opts.compression_threshold || b->len - hl > UINT32_MAX)
    return b;
  if (c->pmd & WIRE__PMD_DEDICATED)
    return NULL;
  unsigned bits = c->pmd & WIRE__PMD_SWB;
  if (b->zplain & (1u << bits))
    return b;
  for (wire__sbuf *v = b->alt; v; v = v->alt)
    if (v->zbits == bits)
      return v;
  z_stream *z = deflate_stream(c);
  if (z == NULL)
    return b; /* out of memory: plain still works */
  size_t flen = 0;
  int err;
  uint8_t *blk = compress_block(z, offsetof(wire__sbuf, data), b->data[0] & 0x0f, b->data + hl,
                                b->len - hl, 0, &flen, &err);
  deflateReset(z);
  if (blk == NULL) {
    if (err == 0)
      b->zplain |= (uint16_t)(1u << bits);
    return b;
  }
  wire__sbuf *v = (wire__sbuf *)blk;
  v->refs = 1; /* held by b, released with it */
  v->len = flen;
  v->owner = b->owner;
  v->zbits = (uint8_t)bits;
  v->zplain = 0;
  v->alt = b->alt;
  b->alt = v;
  return v;
}

/* ---- options ----------------------------------------------------------------- */

int wire__pmd_check_options(const wire_endpoint_options *o) {
  if (o->compression > WIRE_COMPRESSION_DEDICATED)
    return WIRE_EINVAL;
  if (o->compression_window_bits != 0 &&
      (o->compression_window_bits < 9 || o->compression_window_bits > 15))
    return WIRE_EINVAL;
  return 0;
}

void wire__pmd_resolve(wire_endpoint_options *o) {
  if (o->compression_threshold == 0)
    o->compression_threshold = WIRE_DEFAULT_COMPRESSION_THRESHOLD;
  if (o->compression_window_bits == 0)
    o->compression_window_bits = 15;
}
