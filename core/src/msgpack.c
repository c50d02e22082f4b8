/*
 * msgpack.c -- the MessagePack codec: decoding through msgpack-c into the
 * arena value model, and a direct encoder from values into a wire__buf.
 *
 * Before msgpack-c sees the input, a structural pre-scan (no allocation)
 * checks it completely: truncation, reserved bytes, ext types, non-string map
 * keys, nesting depth and trailing bytes, each with the byte offset. That
 * gives exact error positions and also guards msgpack-c, which trusts the
 * element counts in headers (an array32 header claiming 2^32 elements would
 * otherwise make it allocate gigabytes before noticing the input is short).
 */
#include "internal.h"

#include <msgpack.h>
#include <msgpack/unpack_define.h>
#include <string.h>

/* msgpack-c's unpacker keeps a fixed stack of MSGPACK_EMBED_STACK_SIZE (32)
 * containers and fails deeper input, so that is our hard limit too. */
#define WIRE__MSGPACK_MAX_DEPTH MSGPACK_EMBED_STACK_SIZE
#define WIRE__ENCODE_MAX_DEPTH 4096

/* ---- structural pre-scan ----------------------------------------------- */

static uint64_t load_be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

static int scan_fail(wire_error *err, int code, size_t off, const char *why) {
  if (err)
    err->offset = off;
  return wire__error_set(err, code, "MessagePack: %s at byte %zu", why, off);
}

/* Walk the whole input once; 0 when it is exactly one complete value that
 * the value model can hold, else the first problem with its offset.
 * *zone_need gets the bytes msgpack-c's zone will need for the containers,
 * so the zone can be created with one chunk. */
static int prescan(const uint8_t *buf, size_t len, unsigned max_depth, size_t *zone_need,
                   wire_error *err) {
  struct {
    uint64_t rem; /* items left (2 per map pair) */
    bool map;
  } stk[WIRE__MSGPACK_MAX_DEPTH];
  unsigned top = 0;
  size_t p = 0;
  unsigned limit = max_depth < WIRE__MSGPACK_MAX_DEPTH ? max_depth : WIRE__MSGPACK_MAX_DEPTH;
  for (;;) {
    if (p >= len)
      return scan_fail(err, WIRE_EDESERIALIZE, p, p ? "truncated input" : "empty input");
    size_t at = p;
    uint8_t c = buf[p++];
    bool is_key = top > 0 && stk[top - 1].map && stk[top - 1].rem % 2 == 0;
    bool is_str = false;
    uint64_t skip = 0;  /* payload bytes after the header */
    uint64_t count = 0; /* container items */
    int container = 0;  /* 1 array, 2 map */
    unsigned hdr = 0;   /* length bytes following c */
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
      /* fixint, nil, bool */
    } else if (c >= 0xa0 && c <= 0xbf) {
      is_str = true;
      skip = c & 0x1f;
    } else if (c >= 0x90 && c <= 0x9f) {
      container = 1;
      count = c & 0x0f;
    } else if (c >= 0x80 && c <= 0x8f) {
      container = 2;
      count = c & 0x0f;
    } else {
      switch (c) {
      case 0xc1:
        return scan_fail(err, WIRE_EDESERIALIZE, at, "reserved byte 0xc1");
      case 0xc4:
      case 0xc5:
      case 0xc6:
        hdr = 1u << (c - 0xc4);
        break;
      case 0xc7:
      case 0xc8:
      case 0xc9:
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        return scan_fail(err, WIRE_EDESERIALIZE, at, "ext types are not supported");
      case 0xca:
        skip = 4;
        break;
      case 0xcb:
        skip = 8;
        break;
      case 0xcc:
      case 0xd0:
        skip = 1;
        break;
      case 0xcd:
      case 0xd1:
        skip = 2;
        break;
      case 0xce:
      case 0xd2:
        skip = 4;
        break;
      case 0xcf:
      case 0xd3:
        skip = 8;
        break;
      case 0xd9:
      case 0xda:
      case 0xdb:
        is_str = true;
        hdr = 1u << (c - 0xd9);
        break;
      case 0xdc:
      case 0xdd:
        container = 1;
        hdr = c == 0xdc ? 2 : 4;
        break;
      default: /* 0xde, 0xdf */
        container = 2;
        hdr = c == 0xde ? 2 : 4;
        break;
      }
      if (hdr) {
        if (len - p < hdr)
          return scan_fail(err, WIRE_EDESERIALIZE, at, "truncated header");
        uint64_t n = load_be(buf + p, hdr);
        p += hdr;
        if (container)
          count = n;
        else
          skip = n;
      }
    }
    if (is_key && !is_str)
      return scan_fail(err, WIRE_EDESERIALIZE, at, "map key is not a string");
    if (skip > len - p)
      return scan_fail(err, WIRE_EDESERIALIZE, at, "truncated value");
    p += (size_t)skip;
    /* An empty container is a level too (as in JSON), and msgpack-c's own
     * stack check fires on it, so it is checked before the count. */
    if (container && top >= limit) {
      if (err)
        err->offset = at;
      return wire__error_set(err, WIRE_EDEPTH, "MessagePack: nesting deeper than %u at byte %zu%s",
                             limit, at, limit < max_depth ? " (msgpack-c's limit)" : "");
    }
    if (container && count) {
      if (container == 2)
        count *= 2;
      if (count > len - p) /* every item takes at least one byte */
        return scan_fail(err, WIRE_EDESERIALIZE, at, "truncated container");
      /* count <= len, so this cannot overflow for any real buffer */
      *zone_need += (size_t)count * sizeof(msgpack_object) + 16;
      stk[top].rem = count;
      stk[top].map = container == 2;
      top++;
      continue;
    }
    while (top > 0 && --stk[top - 1].rem == 0)
      top--;
    if (top == 0)
      break;
  }
  if (p != len)
    return scan_fail(err, WIRE_EDESERIALIZE, p, "unexpected data after the value");
  return 0;
}

/* ---- conversion from msgpack-c objects --------------------------------- */

typedef struct converter {
  wire__arena *arena;
  uint8_t *buf; /* the arena copy msgpack-c parsed */
  size_t len;
  wire_error *err;
} converter;

static int conv_nomem(converter *C) {
  return wire__error_set(C->err, WIRE_ENOMEM, "out of memory");
}

/* NUL-terminate a str/bin payload where it lies in the arena copy. Once
 * msgpack-c has parsed everything, the byte after a payload is only the
 * next header (or the copy's spare end byte), which nothing reads again.
 * Falls back to copying if msgpack-c ever pointed elsewhere. */
static int conv_bytes(converter *C, const char *p, uint32_t n, bool text, const char **out) {
  if (text && !wire__utf8_valid((const uint8_t *)p, n)) {
    size_t off = (size_t)((const uint8_t *)p - C->buf);
    if (C->err)
      C->err->offset = off;
    return wire__error_set(C->err, WIRE_EDESERIALIZE,
                           "MessagePack: invalid UTF-8 in string at byte %zu", off);
  }
  if (n == 0) {
    *out = "";
    return 0;
  }
  uint8_t *q = (uint8_t *)p;
  if (q >= C->buf && q <= C->buf + C->len && n <= (size_t)(C->buf + C->len - q)) {
    q[n] = 0;
    *out = (const char *)q;
    return 0;
  }
  char *s = wire__arena_alloc(C->arena, (size_t)n + 1);
  if (s == NULL)
    return conv_nomem(C);
  memcpy(s, p, n);
  s[n] = 0;
  *out = s;
  return 0;
}

/* Recursion is bounded by the pre-scan's depth check (at most 32 levels). */
static int convert(converter *C, const msgpack_object *o, wire_value *v) {
  memset(v, 0, sizeof *v);
  int rc;
  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    v->type = WIRE_NULL;
    return 0;
  case MSGPACK_OBJECT_BOOLEAN:
    v->type = WIRE_BOOL;
    v->u.b = o->via.boolean;
    return 0;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (o->via.u64 <= (uint64_t)INT64_MAX) {
      v->type = WIRE_INT;
      v->u.i = (int64_t)o->via.u64;
    } else {
      v->type = WIRE_UINT;
      v->u.u = o->via.u64;
    }
    return 0;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    v->type = WIRE_INT;
    v->u.i = o->via.i64;
    return 0;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    v->type = WIRE_DOUBLE;
    v->u.d = o->via.f64;
    return 0;
  case MSGPACK_OBJECT_STR:
    v->type = WIRE_STRING;
    v->u.s.len = o->via.str.size;
    return conv_bytes(C, o->via.str.ptr, o->via.str.size, true, &v->u.s.ptr);
  case MSGPACK_OBJECT_BIN:
    v->type = WIRE_BINARY;
    v->u.s.len = o->via.bin.size;
    return conv_bytes(C, o->via.bin.ptr, o->via.bin.size, false, &v->u.s.ptr);
  case MSGPACK_OBJECT_ARRAY: {
    uint32_t n = o->via.array.size;
    v->type = WIRE_ARRAY;
    if (n == 0)
      return 0;
    wire_value *items = wire__arena_alloc(C->arena, (size_t)n * sizeof *items);
    if (items == NULL)
      return conv_nomem(C);
    for (uint32_t i = 0; i < n; i++)
      if ((rc = convert(C, &o->via.array.ptr[i], &items[i])) < 0)
        return rc;
    v->u.a.items = items;
    v->u.a.len = v->u.a.cap = n;
    return 0;
  }
  case MSGPACK_OBJECT_MAP: {
    uint32_t n = o->via.map.size;
    v->type = WIRE_OBJECT;
    if (n == 0)
      return 0;
    wire__member *items = wire__arena_alloc(C->arena, (size_t)n * sizeof *items);
    if (items == NULL)
      return conv_nomem(C);
    for (uint32_t i = 0; i < n; i++) {
      const msgpack_object_kv *kv = &o->via.map.ptr[i];
      if (kv->key.type != MSGPACK_OBJECT_STR) /* the pre-scan already refused these */
        return wire__error_set(C->err, WIRE_EDESERIALIZE, "MessagePack: map key is not a string");
      items[i].key_len = kv->key.via.str.size;
      if ((rc = conv_bytes(C, kv->key.via.str.ptr, kv->key.via.str.size, true, &items[i].key)) <
              0 ||
          (rc = convert(C, &kv->val, &items[i].value)) < 0)
        return rc;
    }
    v->u.o.items = items;
    v->u.o.len = v->u.o.cap = n;
    return 0;
  }
  default:
    return wire__error_set(C->err, WIRE_EDESERIALIZE, "MessagePack: ext types are not supported");
  }
}

int wire__msgpack_decode(wire__arena *a, const uint8_t *buf, size_t len, unsigned max_depth,
                         const wire_value **out, wire_error *err) {
  if (max_depth == 0)
    max_depth = WIRE_JSON_DEFAULT_MAX_DEPTH;
  size_t need = 64;
  int rc = prescan(buf, len, max_depth, &need, err);
  if (rc < 0)
    return rc;
  /* msgpack-c parses an arena copy so strings can be terminated in place */
  uint8_t *copy = wire__arena_alloc(a, len + 1);
  if (copy == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  memcpy(copy, buf, len);
  copy[len] = 0;
  msgpack_zone zone;
  if (!msgpack_zone_init(&zone, need))
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  msgpack_object obj;
  size_t off = 0;
  msgpack_unpack_return ur = msgpack_unpack((const char *)copy, len, &off, &zone, &obj);
  if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
    rc = wire__error_set(err, WIRE_ENOMEM, "out of memory");
  } else if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
    /* unreachable after the pre-scan, kept so a disagreement is an error */
    rc = wire__error_set(err, WIRE_EDESERIALIZE, "MessagePack: msgpack-c rejected the input (%d)",
                         (int)ur);
  } else {
    converter C = {a, copy, len, err};
    wire_value *root = wire__arena_alloc(a, sizeof *root);
    if (root == NULL)
      rc = conv_nomem(&C);
    else if ((rc = convert(&C, &obj, root)) == 0)
      *out = root;
  }
  msgpack_zone_destroy(&zone);
  return rc;
}

/* ---- encoder ----------------------------------------------------------- */

typedef struct mp_encoder {
  wire__buf *b;
  wire_error *err;
} mp_encoder;

static int mp_nomem(mp_encoder *E) {
  return wire__error_set(E->err, WIRE_ENOMEM, "out of memory");
}

/* Write a type byte followed by n big-endian bytes of v. */
static int put_hdr(mp_encoder *E, uint8_t type, uint64_t v, unsigned n) {
  if (wire__buf_reserve(E->b, 1 + n) < 0)
    return mp_nomem(E);
  uint8_t *o = E->b->data + E->b->len;
  o[0] = type;
  for (unsigned i = 0; i < n; i++)
    o[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  E->b->len += 1 + n;
  return 0;
}

static int put_uint(mp_encoder *E, uint64_t u) {
  if (u < 0x80)
    return put_hdr(E, (uint8_t)u, 0, 0);
  if (u <= UINT8_MAX)
    return put_hdr(E, 0xcc, u, 1);
  if (u <= UINT16_MAX)
    return put_hdr(E, 0xcd, u, 2);
  if (u <= UINT32_MAX)
    return put_hdr(E, 0xce, u, 4);
  return put_hdr(E, 0xcf, u, 8);
}

static int put_int(mp_encoder *E, int64_t i) {
  if (i >= 0)
    return put_uint(E, (uint64_t)i);
  if (i >= -32)
    return put_hdr(E, (uint8_t)(int8_t)i, 0, 0);
  if (i >= INT8_MIN)
    return put_hdr(E, 0xd0, (uint8_t)(int8_t)i, 1);
  if (i >= INT16_MIN)
    return put_hdr(E, 0xd1, (uint16_t)(int16_t)i, 2);
  if (i >= INT32_MIN)
    return put_hdr(E, 0xd2, (uint32_t)(int32_t)i, 4);
  return put_hdr(E, 0xd3, (uint64_t)i, 8);
}

/* str (text) or bin header, then the bytes; lengths above 2^32-1 do not fit. */
static int put_bytes(mp_encoder *E, const char *p, size_t n, bool text) {
  int rc;
  if (n > UINT32_MAX)
    return wire__error_set(E->err, WIRE_ESERIALIZE, "MessagePack: %s longer than 4 GiB",
                           text ? "string" : "binary");
  if (text && !wire__utf8_valid((const uint8_t *)p, n))
    return wire__error_set(E->err, WIRE_ESERIALIZE, "MessagePack: invalid UTF-8 in string");
  if (text && n < 32)
    rc = put_hdr(E, (uint8_t)(0xa0 | n), 0, 0);
  else if (n <= UINT8_MAX)
    rc = put_hdr(E, text ? 0xd9 : 0xc4, n, 1);
  else if (n <= UINT16_MAX)
    rc = put_hdr(E, text ? 0xda : 0xc5, n, 2);
  else
    rc = put_hdr(E, text ? 0xdb : 0xc6, n, 4);
  if (rc < 0)
    return rc;
  if (wire__buf_reserve(E->b, n) < 0)
    return mp_nomem(E);
  if (n)
    memcpy(E->b->data + E->b->len, p, n);
  E->b->len += n;
  return 0;
}

static int put_container(mp_encoder *E, size_t n, bool map) {
  if (n > UINT32_MAX)
    return wire__error_set(E->err, WIRE_ESERIALIZE, "MessagePack: container too large");
  if (n < 16)
    return put_hdr(E, (uint8_t)((map ? 0x80 : 0x90) | n), 0, 0);
  if (n <= UINT16_MAX)
    return put_hdr(E, map ? 0xde : 0xdc, n, 2);
  return put_hdr(E, map ? 0xdf : 0xdd, n, 4);
}

static int mp_encode_value(mp_encoder *E, const wire_value *v, unsigned depth) {
  int rc;
  switch (v->type) {
  case WIRE_NULL:
    return put_hdr(E, 0xc0, 0, 0);
  case WIRE_BOOL:
    return put_hdr(E, v->u.b ? 0xc3 : 0xc2, 0, 0);
  case WIRE_INT:
    return put_int(E, v->u.i);
  case WIRE_UINT:
    return put_uint(E, v->u.u);
  case WIRE_DOUBLE: {
    uint64_t bits;
    memcpy(&bits, &v->u.d, 8);
    return put_hdr(E, 0xcb, bits, 8);
  }
  case WIRE_STRING:
    return put_bytes(E, v->u.s.ptr, v->u.s.len, true);
  case WIRE_BINARY:
    return put_bytes(E, v->u.s.ptr, v->u.s.len, false);
  case WIRE_ARRAY:
  case WIRE_OBJECT:
    break;
  default:
    return wire__error_set(E->err, WIRE_ESERIALIZE, "MessagePack: unknown value type %u", v->type);
  }
  if (depth >= WIRE__ENCODE_MAX_DEPTH)
    return wire__error_set(E->err, WIRE_ESERIALIZE, "MessagePack: nesting deeper than %d",
                           WIRE__ENCODE_MAX_DEPTH);
  if (v->type == WIRE_ARRAY) {
    if ((rc = put_container(E, v->u.a.len, false)) < 0)
      return rc;
    for (size_t i = 0; i < v->u.a.len; i++)
      if ((rc = mp_encode_value(E, &v->u.a.items[i], depth + 1)) < 0)
        return rc;
    return 0;
  }
  if ((rc = put_container(E, v->u.o.len, true)) < 0)
    return rc;
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    if ((rc = put_bytes(E, m->key, m->key_len, true)) < 0 ||
        (rc = mp_encode_value(E, &m->value, depth + 1)) < 0)
      return rc;
  }
  return 0;
}

int wire__msgpack_encode(wire__buf *b, const wire_value *v, wire_error *err) {
  mp_encoder E = {b, err};
  size_t start = b->len;
  int rc = mp_encode_value(&E, v, 0);
  if (rc < 0)
    b->len = start;
  return rc;
}
