/*
 * json.c -- our strict RFC 8259 JSON codec: a single-pass decoder into the
 * arena value model and a compact encoder.
 *
 * The decoder works on an arena copy of the input (strings are unescaped
 * and NUL-terminated in place, so no string costs an allocation), is
 * iterative (an explicit frame stack: depth costs heap, not C stack), builds
 * each container's items on a scratch stack and copies them into one
 * contiguous arena block when the container closes, and never reads past
 * `len` bytes of the caller's buffer.
 */
#define _GNU_SOURCE /* strtod_l, newlocale, uselocale */
#include "internal.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HOT_INLINE static inline __attribute__((always_inline))

/* ---- shared string scanning ---------------------------------------------- */

/* Advance p to the first byte that is '"', '\\', a control character or
 * non-ASCII (or to end). Used by the decoder and the encoder alike. */
static inline const uint8_t *scan_plain(const uint8_t *p, const uint8_t *end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while ((size_t)(end - p) >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    /* signed compare: bytes >= 0x80 are negative, so this catches both
     * control characters and non-ASCII */
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmplt_epi8(v, space));
    int mask = _mm_movemask_epi8(m);
    if (mask)
      return p + __builtin_ctz((unsigned)mask);
    p += 16;
  }
#endif
  while ((size_t)(end - p) >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t m = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
    m &= highs;
    if (m)
      return p + (__builtin_ctzll(m) >> 3);
    p += 8;
  }
  while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80)
    p++;
  return p;
}

/* ---- decoder ----------------------------------------------------------- */

typedef struct frame {
  uint32_t is_object;
  size_t base; /* scratch index of the container's first item */
} frame;

typedef struct parser {
  uint8_t *start, *p, *end; /* the arena copy being parsed */
  wire__arena *arena;
  wire_error *err;
  wire__member *stk; /* scratch items of open containers */
  size_t sp, scap;
  frame *frames;
  size_t nframes, fcap;
  bool stk_heap, frames_heap;
} parser;

/* Record a syntax error at q; returns WIRE_EDESERIALIZE. */
static int fail_at(parser *P, const uint8_t *q, const char *why) {
  size_t off = (size_t)(q - P->start);
  if (P->err)
    P->err->offset = off;
  return wire__error_set(P->err, WIRE_EDESERIALIZE, "JSON: %s at byte %zu", why, off);
}

static int nomem(parser *P) {
  return wire__error_set(P->err, WIRE_ENOMEM, "out of memory");
}

/* Grow a stack that starts in caller storage and moves to the heap. */
static void *grow_stack(void *items, size_t *cap, size_t size, bool *heap) {
  size_t ncap = *cap * 2;
  if (ncap > SIZE_MAX / size)
    return NULL;
  void *n;
  if (*heap) {
    n = realloc(items, ncap * size);
  } else {
    n = malloc(ncap * size);
    if (n)
      memcpy(n, items, *cap * size);
  }
  if (n == NULL)
    return NULL;
  *heap = true;
  *cap = ncap;
  return n;
}

HOT_INLINE void skip_ws(parser *restrict P) {
  uint8_t *p = P->p, *end = P->end;
  if (LIKELY(p<end && * p> ' ')) /* compact JSON: nothing to skip */
    return;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  P->p = p;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Read the 4 hex digits of a \u escape at q (after "\u"); -1 when invalid. */
static long read_hex4(const uint8_t *q, const uint8_t *end) {
  if (end - q < 4)
    return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(q[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static size_t put_utf8(char *o, unsigned long cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Unescape in place: the parser works on its own copy of the input, and
 * unescaped text is never longer than its source, so the writer `w` trails
 * the reader. `s` is just after the opening quote, `q` at the first
 * backslash; [s, q) has already been checked. */
static int parse_string_slow(parser *restrict P, uint8_t *s, uint8_t *q, const char **out,
                             size_t *out_len) {
  const uint8_t *end = P->end;
  uint8_t *w = q, *r = q;
  for (;;) {
    if (*r == '\\') {
      if (end - r < 2)
        return fail_at(P, end, "unterminated string");
      uint8_t e = r[1];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        *w++ = e;
        break;
      case 'b':
        *w++ = '\b';
        break;
      case 'f':
        *w++ = '\f';
        break;
      case 'n':
        *w++ = '\n';
        break;
      case 'r':
        *w++ = '\r';
        break;
      case 't':
        *w++ = '\t';
        break;
      case 'u': {
        long cp = read_hex4(r + 2, end);
        if (cp < 0)
          return fail_at(P, r, "invalid \\u escape");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
          return fail_at(P, r, "lone low surrogate escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          long lo = end - r >= 12 && r[6] == '\\' && r[7] == 'u' ? read_hex4(r + 8, end) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(P, r, "lone high surrogate escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          r += 6;
        }
        w += put_utf8((char *)w, (unsigned long)cp);
        r += 6;
        goto plain;
      }
      default:
        return fail_at(P, r, "invalid escape");
      }
      r += 2;
    }
  plain:
    for (;;) {
      uint8_t *run = (uint8_t *)scan_plain(r, end);
      memmove(w, r, (size_t)(run - r));
      w += run - r;
      r = run;
      if (UNLIKELY(r >= end))
        return fail_at(P, end, "unterminated string");
      uint8_t c = *r;
      if (c == '"') {
        *w = 0;
        *out = (const char *)s;
        *out_len = (size_t)(w - s);
        P->p = r + 1;
        return 0;
      }
      if (c == '\\')
        break;
      if (c < 0x20)
        return fail_at(P, r, "control character in string");
      size_t k = wire__utf8_seq(r, end);
      if (k == 0)
        return fail_at(P, r, "invalid UTF-8 in string");
      memmove(w, r, k);
      w += k;
      r += k;
    }
  }
}

/* P->p is just after the opening quote. On success P->p is past the closing
 * quote, which is overwritten by the NUL that ends *out (zero-copy). */
HOT_INLINE int parse_string(parser *restrict P, const char **out, size_t *out_len) {
  uint8_t *s = P->p, *q = s;
  const uint8_t *end = P->end;
  for (;;) {
    q = (uint8_t *)scan_plain(q, end);
    if (UNLIKELY(q >= end))
      return fail_at(P, end, "unterminated string");
    uint8_t c = *q;
    if (LIKELY(c == '"'))
      break;
    if (c == '\\')
      return parse_string_slow(P, s, q, out, out_len);
    if (c < 0x20)
      return fail_at(P, q, "control character in string");
    size_t k = wire__utf8_seq(q, end);
    if (k == 0)
      return fail_at(P, q, "invalid UTF-8 in string");
    q += k;
  }
  *q = 0;
  *out = (const char *)s;
  *out_len = (size_t)(q - s);
  P->p = q + 1;
  return 0;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Correctly rounded conversion of the validated number text [s, e) through
 * strtod_l in the C locale (the decimal point must not depend on setlocale). */
static int parse_double_slow(parser *P, const uint8_t *s, const uint8_t *e, double *out) {
  char local[64];
  size_t n = (size_t)(e - s);
  char *tmp = n < sizeof local ? local : wire__arena_alloc(P->arena, n + 1);
  if (tmp == NULL)
    return nomem(P);
  memcpy(tmp, s, n);
  tmp[n] = 0;
  locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  if (c == (locale_t)0)
    return nomem(P);
  *out = strtod_l(tmp, NULL, c);
  freelocale(c);
  return 0;
}

/* Parse a number at P->p into v: WIRE_INT, WIRE_UINT or WIRE_DOUBLE. */
static int parse_number(parser *restrict P, wire_value *v) {
  uint8_t *s = P->p, *p = s, *end = P->end;
  bool neg = false;
  if (*p == '-') {
    neg = true;
    p++;
  }
  if (p >= end || (unsigned)(*p - '0') > 9)
    return fail_at(P, p, "invalid number");
  uint64_t mant = 0;
  int sig = 0;     /* significant digits held in mant */
  int dropped = 0; /* integer digits that did not fit in mant */
  bool inexact = false;
  if (*p == '0') {
    p++;
    if (p < end && (unsigned)(*p - '0') <= 9)
      return fail_at(P, p - 1, "leading zero in number");
  } else {
    while (p < end && (unsigned)(*p - '0') <= 9) {
      if (sig < 19) {
        mant = mant * 10 + (unsigned)(*p - '0');
        sig++;
      } else {
        dropped += dropped < 2; /* only 0, 1 or "more" matter; no overflow */
        inexact = true;
      }
      p++;
    }
  }
  bool is_int = true;
  int exp10 = dropped;
  if (p < end && *p == '.') {
    is_int = false;
    p++;
    if (p >= end || (unsigned)(*p - '0') > 9)
      return fail_at(P, p, "expected digit after decimal point");
    while (p < end && (unsigned)(*p - '0') <= 9) {
      if (sig < 19) {
        if (mant || *p != '0')
          sig++;
        mant = mant * 10 + (unsigned)(*p - '0');
        exp10--;
      } else if (*p != '0') {
        inexact = true;
      }
      p++;
    }
  }
  if (p < end && (*p | 0x20) == 'e') {
    is_int = false;
    p++;
    bool eneg = false;
    if (p < end && (*p == '+' || *p == '-')) {
      eneg = *p == '-';
      p++;
    }
    if (p >= end || (unsigned)(*p - '0') > 9)
      return fail_at(P, p, "expected digit in exponent");
    int e = 0;
    while (p < end && (unsigned)(*p - '0') <= 9) {
      if (e < 100000)
        e = e * 10 + (*p - '0');
      p++;
    }
    exp10 += eneg ? -e : e;
  }
  P->p = p;
  if (is_int && dropped == 0) {
    /* up to 19 digits: always fits uint64 */
    if (!neg) {
      if (mant <= (uint64_t)INT64_MAX) {
        v->type = WIRE_INT;
        v->u.i = (int64_t)mant;
      } else {
        v->type = WIRE_UINT;
        v->u.u = mant;
      }
      return 0;
    }
    if (mant <= (uint64_t)INT64_MAX + 1) {
      v->type = WIRE_INT;
      v->u.i = mant == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mant;
      return 0;
    }
  } else if (is_int && dropped == 1 && !neg) {
    /* 20 digits: uint64 when it does not overflow */
    uint64_t last = (uint64_t)(p[-1] - '0'), r;
    if (!__builtin_mul_overflow(mant, 10, &r) && !__builtin_add_overflow(r, last, &r)) {
      v->type = WIRE_UINT;
      v->u.u = r;
      return 0;
    }
  }
  v->type = WIRE_DOUBLE;
  /* Clinger's fast path: both operands exact, one rounding. */
  if (!inexact && mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
    double d = (double)mant;
    d = exp10 >= 0 ? d * pow10_exact[exp10] : d / pow10_exact[-exp10];
    v->u.d = neg ? -d : d;
    return 0;
  }
  int rc = parse_double_slow(P, s, p, &v->u.d);
  if (rc < 0)
    return rc;
  if (isinf(v->u.d))
    return fail_at(P, s, "number out of double range");
  return 0;
}

static int parse_literal(parser *restrict P, const char *word, size_t n) {
  if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0)
    return fail_at(P, P->p, "invalid literal");
  P->p += n;
  return 0;
}

/* Parse an object key at P->p (which must be '"'), then the ':' after it,
 * and push a scratch slot holding the key. */
HOT_INLINE int push_key(parser *restrict P) {
  if (UNLIKELY(P->p >= P->end || *P->p != '"'))
    return fail_at(P, P->p, "expected string key");
  P->p++;
  if (UNLIKELY(P->sp == P->scap)) {
    wire__member *n = grow_stack(P->stk, &P->scap, sizeof *n, &P->stk_heap);
    if (n == NULL)
      return nomem(P);
    P->stk = n;
  }
  wire__member *m = &P->stk[P->sp];
  int rc = parse_string(P, &m->key, &m->key_len);
  if (rc < 0)
    return rc;
  P->sp++;
  skip_ws(P);
  if (UNLIKELY(P->p >= P->end || *P->p != ':'))
    return fail_at(P, P->p, "expected ':' after object key");
  P->p++;
  return 0;
}

/* Turn the scratch items of the innermost frame into a container value,
 * written to the slot the container was parsed into. */
static int close_frame(parser *restrict P, wire_value *result) {
  frame *f = &P->frames[--P->nframes];
  size_t n = P->sp - f->base;
  wire__member *src = P->stk + f->base;
  wire_value *v = f->base ? &P->stk[f->base - 1].value : result;
  if (f->is_object) {
    wire__member *items = NULL;
    if (n) {
      if ((items = wire__arena_alloc(P->arena, n * sizeof *items)) == NULL)
        return nomem(P);
      memcpy(items, src, n * sizeof *items);
    }
    v->type = WIRE_OBJECT;
    v->u.o.items = items;
    v->u.o.len = v->u.o.cap = n;
  } else {
    wire_value *items = NULL;
    if (n && (items = wire__arena_alloc(P->arena, n * sizeof *items)) == NULL)
      return nomem(P);
    for (size_t i = 0; i < n; i++)
      items[i] = src[i].value;
    v->type = WIRE_ARRAY;
    v->u.a.items = items;
    v->u.a.len = v->u.a.cap = n;
  }
  P->sp = f->base;
  return 0;
}

/* Open a container whose value goes to the current slot. Its items are
 * pushed above the slot, so base - 1 is where the container lands (base 0:
 * the top-level result). */
static int open_frame(parser *restrict P, bool is_object, unsigned max_depth) {
  if (UNLIKELY(P->nframes >= max_depth)) {
    if (P->err)
      P->err->offset = (size_t)(P->p - P->start);
    return wire__error_set(P->err, WIRE_EDEPTH, "JSON: nesting deeper than %u at byte %zu",
                           max_depth, (size_t)(P->p - P->start));
  }
  if (UNLIKELY(P->nframes == P->fcap)) {
    frame *n = grow_stack(P->frames, &P->fcap, sizeof *n, &P->frames_heap);
    if (n == NULL)
      return nomem(P);
    P->frames = n;
  }
  frame *f = &P->frames[P->nframes++];
  f->is_object = is_object;
  f->base = P->sp;
  return 0;
}

/* Values are parsed straight into their scratch slot (no temporary copy). */
static int parse(parser *restrict P, unsigned max_depth, wire_value *result) {
  wire_value *v;
  int rc;
value:
  skip_ws(P);
  if (UNLIKELY(P->p >= P->end))
    return fail_at(P, P->p, P->nframes ? "unexpected end of input" : "empty input");
  if (P->nframes == 0) {
    v = result;
  } else if (P->frames[P->nframes - 1].is_object) {
    v = &P->stk[P->sp - 1].value; /* push_key made the slot */
  } else {
    if (UNLIKELY(P->sp == P->scap)) {
      wire__member *n = grow_stack(P->stk, &P->scap, sizeof *n, &P->stk_heap);
      if (n == NULL)
        return nomem(P);
      P->stk = n;
    }
    v = &P->stk[P->sp++].value;
  }
  switch (*P->p) {
  case '"':
    P->p++;
    v->type = WIRE_STRING;
    if ((rc = parse_string(P, &v->u.s.ptr, &v->u.s.len)) < 0)
      return rc;
    break;
  case '{':
    if ((rc = open_frame(P, true, max_depth)) < 0)
      return rc;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == '}') {
      P->p++;
      if ((rc = close_frame(P, result)) < 0)
        return rc;
      break;
    }
    if ((rc = push_key(P)) < 0)
      return rc;
    goto value;
  case '[':
    if ((rc = open_frame(P, false, max_depth)) < 0)
      return rc;
    P->p++;
    skip_ws(P);
    if (P->p < P->end && *P->p == ']') {
      P->p++;
      if ((rc = close_frame(P, result)) < 0)
        return rc;
      break;
    }
    goto value;
  case 't':
    if ((rc = parse_literal(P, "true", 4)) < 0)
      return rc;
    v->type = WIRE_BOOL;
    v->u.b = 1;
    break;
  case 'f':
    if ((rc = parse_literal(P, "false", 5)) < 0)
      return rc;
    v->type = WIRE_BOOL;
    v->u.b = 0;
    break;
  case 'n':
    if ((rc = parse_literal(P, "null", 4)) < 0)
      return rc;
    v->type = WIRE_NULL;
    v->u.i = 0;
    break;
  default:
    if (*P->p != '-' && (unsigned)(*P->p - '0') > 9)
      return fail_at(P, P->p, "unexpected character");
    if ((rc = parse_number(P, v)) < 0)
      return rc;
    break;
  }
  /* a value is complete: continue the innermost container, closing as many
   * as end here */
  while (P->nframes) {
    frame *f = &P->frames[P->nframes - 1];
    skip_ws(P);
    if (UNLIKELY(P->p >= P->end))
      return fail_at(P, P->p, "unexpected end of input");
    uint8_t c = *P->p;
    if (c == ',') {
      P->p++;
      if (f->is_object) {
        skip_ws(P);
        if ((rc = push_key(P)) < 0)
          return rc;
      }
      goto value;
    }
    if (c != (f->is_object ? '}' : ']'))
      return fail_at(P, P->p, f->is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    P->p++;
    if ((rc = close_frame(P, result)) < 0)
      return rc;
  }
  return 0;
}

int wire__json_decode(wire__arena *a, const char *buf, size_t len, unsigned max_depth,
                      const wire_value **out, wire_error *err) {
  wire__member stk_local[64];
  frame frames_local[32];
  parser P; /* every field is set below (a zeroing initializer costs a rep stos) */
  /* Parse a private copy: strings are then unescaped and NUL-terminated in
   * place, with no allocation or copy per string. */
  uint8_t *copy = len < SIZE_MAX ? wire__arena_alloc(a, len + 1) : NULL;
  if (copy == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  memcpy(copy, buf, len);
  copy[len] = 0;
  P.start = P.p = copy;
  P.end = P.start + len;
  P.arena = a;
  P.err = err;
  P.stk = stk_local;
  P.scap = sizeof stk_local / sizeof stk_local[0];
  P.sp = 0;
  P.frames = frames_local;
  P.fcap = sizeof frames_local / sizeof frames_local[0];
  P.nframes = 0;
  P.stk_heap = P.frames_heap = false;
  wire_value *v = wire__arena_alloc(a, sizeof *v);
  if (v == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  int rc = parse(&P, max_depth ? max_depth : WIRE_JSON_DEFAULT_MAX_DEPTH, v);
  if (rc == 0) {
    skip_ws(&P);
    if (P.p != P.end)
      rc = fail_at(&P, P.p, "unexpected data after the value");
  }
  if (rc == 0)
    *out = v;
  if (P.stk_heap)
    free(P.stk);
  if (P.frames_heap)
    free(P.frames);
  return rc;
}

/* ---- encoder ----------------------------------------------------------- */

/* Nesting limit of the encoder: built values are not depth-checked by a
 * decoder, and the encoder recurses. */
#define WIRE__ENCODE_MAX_DEPTH 4096

typedef struct encoder {
  wire__buf *b;
  wire_error *err;
  int rc;
  locale_t c_locale, saved; /* set up on the first non-integral double */
} encoder;

static int enc_nomem(encoder *E) {
  return wire__error_set(E->err, WIRE_ENOMEM, "out of memory");
}

static inline int put_raw(encoder *E, const void *p, size_t n) {
  if (wire__buf_reserve(E->b, n) < 0)
    return enc_nomem(E);
  memcpy(E->b->data + E->b->len, p, n);
  E->b->len += n;
  return 0;
}

/* Digits of u into the end of tmp[24]; returns the first digit. */
static char *u64_digits(uint64_t u, char *tmp_end) {
  static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                              "25262728293031323334353637383940414243444546474849"
                              "50515253545556575859606162636465666768697071727374"
                              "75767778798081828384858687888990919293949596979899";
  char *p = tmp_end;
  while (u >= 100) {
    unsigned r = (unsigned)(u % 100);
    u /= 100;
    p -= 2;
    memcpy(p, pairs + 2 * r, 2);
  }
  if (u >= 10) {
    p -= 2;
    memcpy(p, pairs + 2 * u, 2);
  } else {
    *--p = (char)('0' + u);
  }
  return p;
}

static int put_int(encoder *E, int64_t i) {
  char tmp[24], *end = tmp + sizeof tmp;
  uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
  char *p = u64_digits(u, end);
  if (i < 0)
    *--p = '-';
  return put_raw(E, p, (size_t)(end - p));
}

static int put_uint(encoder *E, uint64_t u) {
  char tmp[24], *end = tmp + sizeof tmp;
  char *p = u64_digits(u, end);
  return put_raw(E, p, (size_t)(end - p));
}

/* Fast path for doubles that are short decimals (most real-world values:
 * 0.1, 41.7, 1700000001.123): the smallest k <= 17 such that m = round(|d| *
 * 10^k) is below 2^53 and m / 10^k == |d|. Both operands of that division
 * are exact doubles, so it is correctly rounded and equals what any correct
 * parser reads from "m e-k": the text round-trips, and no shorter fixed-point
 * text does. Returns false when the caller must take the slow path; on true,
 * E->rc holds the put_raw result. */
static bool put_short_decimal(encoder *E, double d) {
#if FLT_EVAL_METHOD == 0
  double a = fabs(d);
  if (!(a >= 1e-7 && a < 1e15))
    return false;
  for (int k = 1; k <= 17; k++) {
    double scaled = a * pow10_exact[k];
    if (scaled >= 9007199254740992.0)
      return false;
    double m = floor(scaled + 0.5);
    if (m / pow10_exact[k] != a)
      continue;
    char digits[24], *dend = digits + sizeof digits;
    char *dp = u64_digits((uint64_t)m, dend);
    int len = (int)(dend - dp);
    char out[48], *o = out;
    if (d < 0)
      *o++ = '-';
    if (len > k) {
      memcpy(o, dp, (size_t)(len - k));
      o += len - k;
      *o++ = '.';
      memcpy(o, dp + len - k, (size_t)k);
      o += k;
    } else {
      *o++ = '0';
      *o++ = '.';
      memset(o, '0', (size_t)(k - len));
      o += k - len;
      memcpy(o, dp, (size_t)len);
      o += len;
    }
    E->rc = put_raw(E, out, (size_t)(o - out));
    return true;
  }
#else
  (void)E;
  (void)d;
#endif
  return false;
}

/* Shortest of %.15g/%.16g/%.17g that reads back to the same double, in the C
 * locale. Integral values keep a ".0" so they decode as doubles again. */
static int put_double(encoder *E, double d) {
  if (!isfinite(d))
    return wire__error_set(E->err, WIRE_ESERIALIZE, "JSON: cannot encode %s",
                           isnan(d) ? "NaN" : "infinity");
  if (fabs(d) < 1e15 && d == (double)(int64_t)d) { /* range first: the cast is UB beyond */
    char tmp[32], *end = tmp + sizeof tmp - 2;
    int64_t i = (int64_t)d;
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    char *p = u64_digits(u, end);
    if (signbit(d))
      *--p = '-';
    memcpy(end, ".0", 2);
    return put_raw(E, p, (size_t)(end + 2 - p));
  }
  if (put_short_decimal(E, d))
    return E->rc;
  if (E->c_locale == (locale_t)0) {
    E->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (E->c_locale == (locale_t)0)
      return enc_nomem(E);
    E->saved = uselocale(E->c_locale);
  }
  char tmp[40];
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof tmp - 2, "%.*g", prec, d);
    if (prec == 17 || strtod(tmp, NULL) == d)
      break;
  }
  if (n <= 0 || (size_t)n >= sizeof tmp - 2)
    return wire__error_set(E->err, WIRE_ESERIALIZE, "JSON: cannot format a double");
  if (strpbrk(tmp, ".eE") == NULL) {
    memcpy(tmp + n, ".0", 2);
    n += 2;
  }
  return put_raw(E, tmp, (size_t)n);
}

/* Quote and escape a string; invalid UTF-8 cannot be JSON text. */
static int put_string(encoder *E, const char *str, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *p = (const uint8_t *)str, *end = p + len;
  wire__buf *b = E->b;
  /* Invariant: the buffer has room for the rest of the input plus the
   * closing quote; each escape reserves its extra bytes. */
  if (len > SIZE_MAX - 2 || wire__buf_reserve(b, len + 2) < 0)
    return enc_nomem(E);
  b->data[b->len++] = '"';
  for (;;) {
    const uint8_t *q = scan_plain(p, end);
    memcpy(b->data + b->len, p, (size_t)(q - p));
    b->len += (size_t)(q - p);
    if (q >= end)
      break;
    uint8_t c = *q;
    if (c >= 0x80) {
      size_t k = wire__utf8_seq(q, end);
      if (k == 0)
        return wire__error_set(E->err, WIRE_ESERIALIZE, "JSON: invalid UTF-8 in string at byte %zu",
                               (size_t)(q - (const uint8_t *)str));
      memcpy(b->data + b->len, q, k);
      b->len += k;
      p = q + k;
      continue;
    }
    if (wire__buf_reserve(b, 6 + (size_t)(end - q)) < 0)
      return enc_nomem(E);
    uint8_t *o = b->data + b->len;
    o[0] = '\\';
    switch (c) {
    case '"':
      o[1] = '"';
      b->len += 2;
      break;
    case '\\':
      o[1] = '\\';
      b->len += 2;
      break;
    case '\n':
      o[1] = 'n';
      b->len += 2;
      break;
    case '\r':
      o[1] = 'r';
      b->len += 2;
      break;
    case '\t':
      o[1] = 't';
      b->len += 2;
      break;
    case '\b':
      o[1] = 'b';
      b->len += 2;
      break;
    case '\f':
      o[1] = 'f';
      b->len += 2;
      break;
    default:
      memcpy(o + 1, "u00", 3);
      o[4] = (uint8_t)hex[c >> 4];
      o[5] = (uint8_t)hex[c & 15];
      b->len += 6;
    }
    p = q + 1;
  }
  b->data[b->len++] = '"';
  return 0;
}

static int encode_value(encoder *E, const wire_value *v, unsigned depth) {
  int rc;
  switch (v->type) {
  case WIRE_NULL:
    return put_raw(E, "null", 4);
  case WIRE_BOOL:
    return v->u.b ? put_raw(E, "true", 4) : put_raw(E, "false", 5);
  case WIRE_INT:
    return put_int(E, v->u.i);
  case WIRE_UINT:
    return put_uint(E, v->u.u);
  case WIRE_DOUBLE:
    return put_double(E, v->u.d);
  case WIRE_STRING:
    return put_string(E, v->u.s.ptr, v->u.s.len);
  case WIRE_BINARY:
    return wire__error_set(E->err, WIRE_ESERIALIZE, "JSON: cannot encode binary data");
  case WIRE_ARRAY:
  case WIRE_OBJECT:
    break;
  default:
    return wire__error_set(E->err, WIRE_ESERIALIZE, "JSON: unknown value type %u", v->type);
  }
  if (depth >= WIRE__ENCODE_MAX_DEPTH)
    return wire__error_set(E->err, WIRE_ESERIALIZE, "JSON: nesting deeper than %d",
                           WIRE__ENCODE_MAX_DEPTH);
  if (v->type == WIRE_ARRAY) {
    if ((rc = put_raw(E, "[", 1)) < 0)
      return rc;
    for (size_t i = 0; i < v->u.a.len; i++) {
      if (i && (rc = put_raw(E, ",", 1)) < 0)
        return rc;
      if ((rc = encode_value(E, &v->u.a.items[i], depth + 1)) < 0)
        return rc;
    }
    return put_raw(E, "]", 1);
  }
  if ((rc = put_raw(E, "{", 1)) < 0)
    return rc;
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    if (i && (rc = put_raw(E, ",", 1)) < 0)
      return rc;
    if ((rc = put_string(E, m->key, m->key_len)) < 0 || (rc = put_raw(E, ":", 1)) < 0)
      return rc;
    if ((rc = encode_value(E, &m->value, depth + 1)) < 0)
      return rc;
  }
  return put_raw(E, "}", 1);
}

int wire__json_encode(wire__buf *b, const wire_value *v, wire_error *err) {
  encoder E = {b, err, 0, (locale_t)0, (locale_t)0};
  size_t start = b->len;
  int rc = encode_value(&E, v, 0);
  if (E.c_locale != (locale_t)0) {
    uselocale(E.saved);
    freelocale(E.c_locale);
  }
  if (rc < 0)
    b->len = start;
  return rc;
}
