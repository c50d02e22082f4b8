/*
 * schema_validate.c -- runs a compiled schema (schema_internal.h) over a
 * value. No allocation on the hot path: instance paths and the dynamic scope
 * are linked lists of stack frames, evaluated-property/item sets (only for
 * unevaluatedProperties/unevaluatedItems) are stack bitsets of 256 entries and
 * fall back to the heap only for larger objects and arrays, and regex matches
 * reuse the schema's match data.
 */
#include "schema_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVAL_DEPTH 512
#define EV_INLINE_WORDS 4

typedef struct ipath {
  const struct ipath *up;
  const char *key; /* NULL: array index */
  size_t len;      /* key length or index */
} ipath;

typedef struct scope {
  const struct scope *up;
  int32_t res;
} scope;

/* Evaluated members (objects) or items (arrays) of one instance. */
typedef struct evset {
  uint64_t *bits;
  size_t n;
  uint64_t inl[EV_INLINE_WORDS];
} evset;

typedef struct vctx {
  const wire_schema *S;
  wire_error *err; /* NULL while a combinator evaluates quietly */
  int fatal;       /* WIRE_ENOMEM seen */
  unsigned depth;
  bool explaining; /* inside fail_branches' second look at a branch */
} vctx;

/* ---- numbers ---------------------------------------------------------- */

static int sign(double d) {
  return (d > 0) - (d < 0);
}

/* Compare an int64 with a double exactly. */
static int cmp_i_d(int64_t i, double d) {
  if (d != d)
    return -1;
  if (d >= 9223372036854775808.0)
    return -1;
  if (d < -9223372036854775808.0)
    return 1;
  double t = trunc(d);
  int64_t ti = (int64_t)t;
  if (i != ti)
    return i < ti ? -1 : 1;
  return -sign(d - t);
}

static int cmp_u_d(uint64_t u, double d) {
  if (d != d)
    return -1;
  if (d < 0)
    return 1;
  if (d >= 18446744073709551616.0)
    return -1;
  double t = trunc(d);
  uint64_t tu = (uint64_t)t;
  if (u != tu)
    return u < tu ? -1 : 1;
  return -sign(d - t);
}

int wire__num_cmp(const wire_value *a, const wire_value *b) {
  switch (a->type * 16 + b->type) {
  case WIRE_INT * 16 + WIRE_INT:
    return (a->u.i > b->u.i) - (a->u.i < b->u.i);
  case WIRE_INT * 16 + WIRE_UINT:
    return -1;
  case WIRE_UINT * 16 + WIRE_INT:
    return 1;
  case WIRE_UINT * 16 + WIRE_UINT:
    return (a->u.u > b->u.u) - (a->u.u < b->u.u);
  case WIRE_INT * 16 + WIRE_DOUBLE:
    return cmp_i_d(a->u.i, b->u.d);
  case WIRE_DOUBLE * 16 + WIRE_INT:
    return -cmp_i_d(b->u.i, a->u.d);
  case WIRE_UINT * 16 + WIRE_DOUBLE:
    return cmp_u_d(a->u.u, b->u.d);
  case WIRE_DOUBLE * 16 + WIRE_UINT:
    return -cmp_u_d(b->u.u, a->u.d);
  default:
    return (a->u.d > b->u.d) - (a->u.d < b->u.d);
  }
}

static double as_double(const wire_value *v) {
  return v->type == WIRE_INT ? (double)v->u.i : v->type == WIRE_UINT ? (double)v->u.u : v->u.d;
}

static bool is_multiple(const wire_value *v, const wire_value *m) {
  if ((v->type == WIRE_INT || v->type == WIRE_UINT) &&
      (m->type == WIRE_INT || m->type == WIRE_UINT)) {
    uint64_t mag =
        v->type == WIRE_INT ? (v->u.i < 0 ? 0 - (uint64_t)v->u.i : (uint64_t)v->u.i) : v->u.u;
    uint64_t mm = m->type == WIRE_INT ? (uint64_t)m->u.i : m->u.u;
    return mag % mm == 0;
  }
  double x = as_double(v), d = as_double(m);
  double q = x / d;
  if (isfinite(q))
    return q == floor(q);
  /* The quotient overflowed: fmod is exact, so ask it instead. */
  return fmod(x, d) == 0.0;
}

static void fmt_num(char *buf, size_t n, const wire_value *v) {
  if (v->type == WIRE_INT)
    snprintf(buf, n, "%lld", (long long)v->u.i);
  else if (v->type == WIRE_UINT)
    snprintf(buf, n, "%llu", (unsigned long long)v->u.u);
  else
    snprintf(buf, n, "%.17g", v->u.d);
}

/* ---- instance types --------------------------------------------------- */

static uint32_t type_bits(const wire_value *v) {
  switch (v->type) {
  case WIRE_NULL:
    return WS_T_NULL;
  case WIRE_BOOL:
    return WS_T_BOOLEAN;
  case WIRE_INT:
  case WIRE_UINT:
    return WS_T_INTEGER | WS_T_NUMBER;
  case WIRE_DOUBLE:
    return isfinite(v->u.d) && v->u.d == floor(v->u.d) ? WS_T_INTEGER | WS_T_NUMBER : WS_T_NUMBER;
  case WIRE_STRING:
    return WS_T_STRING;
  case WIRE_ARRAY:
    return WS_T_ARRAY;
  case WIRE_OBJECT:
    return WS_T_OBJECT;
  default:
    return 0; /* binary: no JSON Schema type */
  }
}

static const char *type_word(const wire_value *v) {
  switch (v->type) {
  case WIRE_NULL:
    return "null";
  case WIRE_BOOL:
    return "boolean";
  case WIRE_INT:
  case WIRE_UINT:
    return "integer";
  case WIRE_DOUBLE:
    return "number";
  case WIRE_STRING:
    return "string";
  case WIRE_ARRAY:
    return "array";
  case WIRE_OBJECT:
    return "object";
  default:
    return "binary";
  }
}

static void types_text(char *buf, size_t n, uint32_t bits) {
  static const char *const names[] = {"null",   "boolean", "integer", "number",
                                      "string", "array",   "object"};
  size_t o = 0;
  buf[0] = 0;
  for (int i = 0; i < 7; i++) {
    if (!(bits & (1u << i)))
      continue;
    int w = snprintf(buf + o, n - o, "%s%s", o ? " or " : "", names[i]);
    if (w < 0 || (size_t)w >= n - o)
      break;
    o += (size_t)w;
  }
}

/* ---- error reporting -------------------------------------------------- */

static size_t put_path(char *buf, size_t cap, const ipath *ip) {
  if (ip == NULL) {
    buf[0] = 0;
    return 0;
  }
  size_t o = put_path(buf, cap, ip->up);
  char tmp[32];
  const char *s = ip->key;
  size_t n = ip->len;
  if (s == NULL) {
    n = (size_t)snprintf(tmp, sizeof tmp, "%zu", ip->len);
    s = tmp;
  }
  if (o + 1 < cap)
    buf[o++] = '/';
  for (size_t i = 0; i < n && o + 2 < cap; i++) {
    if (s[i] == '~' || s[i] == '/') {
      buf[o++] = '~';
      buf[o++] = s[i] == '~' ? '0' : '1';
    } else {
      buf[o++] = s[i];
    }
  }
  buf[o] = 0;
  return o;
}

/* Record the failure (when reporting) and return 1 ("invalid"). */
__attribute__((format(printf, 5, 6))) static int fail(vctx *c, const ws_node *n, const ipath *ip,
                                                      const char *kw, const char *fmt, ...) {
  wire_error *e = c->err;
  if (e == NULL)
    return 1;
  e->code = WIRE_EVALIDATION;
  put_path(e->path, sizeof e->path, ip);
  snprintf(e->keyword, sizeof e->keyword, "%s", kw);
  snprintf(e->schema_path, sizeof e->schema_path, "%s%s%s", n->path, kw[0] ? "/" : "", kw);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  c->err = NULL; /* first failure wins */
  return 1;
}

/* ---- evaluated sets --------------------------------------------------- */

static bool ev_init(vctx *c, evset *e, size_t n) {
  size_t w = (n + 63) / 64;
  e->n = n;
  e->bits = e->inl;
  if (w > EV_INLINE_WORDS) {
    e->bits = calloc(w, sizeof(uint64_t));
    if (e->bits == NULL) {
      c->fatal = WIRE_ENOMEM;
      return false;
    }
  } else {
    memset(e->inl, 0, sizeof e->inl);
  }
  return true;
}
static void ev_free(evset *e) {
  if (e->bits != e->inl)
    free(e->bits);
}
static inline void ev_set(evset *e, size_t i) {
  if (e)
    e->bits[i >> 6] |= UINT64_C(1) << (i & 63);
}
static inline bool ev_has(const evset *e, size_t i) {
  return (e->bits[i >> 6] >> (i & 63)) & 1;
}
static void ev_merge(evset *dst, const evset *src) {
  if (dst)
    for (size_t i = 0; i < (src->n + 63) / 64; i++)
      dst->bits[i] |= src->bits[i];
}
static void ev_all(evset *e) {
  if (e)
    for (size_t i = 0; i < e->n; i++)
      ev_set(e, i);
}

/* The size an evaluated set for v needs (0 when v is no container). */
static size_t ev_size(const wire_value *v) {
  return v->type == WIRE_OBJECT ? v->u.o.len : v->type == WIRE_ARRAY ? v->u.a.len : 0;
}

/* ---- the evaluator ---------------------------------------------------- */

static int v_node(vctx *c, int32_t ni, const wire_value *v, const ipath *ip, const scope *sc,
                  evset *ev);

/* Evaluate quietly (no error report), optionally collecting into a fresh
 * evaluated set `tmp` (when `want` is set). Returns 0 when valid. */
static int v_quiet(vctx *c, int32_t ni, const wire_value *v, const ipath *ip, const scope *sc,
                   evset *tmp, bool want) {
  wire_error *saved = c->err;
  c->err = NULL;
  int r;
  if (want) {
    if (!ev_init(c, tmp, ev_size(v))) {
      c->err = saved;
      return 1;
    }
    r = v_node(c, ni, v, ip, sc, tmp);
  } else {
    r = v_node(c, ni, v, ip, sc, NULL);
  }
  c->err = saved;
  return r;
}

static size_t utf8_count(const char *s, size_t n) {
  size_t cps = 0;
  for (size_t i = 0; i < n; i++)
    cps += ((unsigned char)s[i] & 0xC0) != 0x80;
  return cps;
}

static int v_number(vctx *c, const ws_node *n, const wire_value *v, const ipath *ip) {
  uint64_t kw = n->kw;
  char a[40], b[40];
  if ((kw & WS_BIT(WS_K_MAXIMUM)) && wire__num_cmp(v, &n->maximum) > 0) {
    fmt_num(a, sizeof a, v), fmt_num(b, sizeof b, &n->maximum);
    return fail(c, n, ip, "maximum", "%s is greater than the maximum %s", a, b);
  }
  if ((kw & WS_BIT(WS_K_EXMAXIMUM)) && wire__num_cmp(v, &n->exmaximum) >= 0) {
    fmt_num(a, sizeof a, v), fmt_num(b, sizeof b, &n->exmaximum);
    return fail(c, n, ip, "exclusiveMaximum", "%s is not less than %s", a, b);
  }
  if ((kw & WS_BIT(WS_K_MINIMUM)) && wire__num_cmp(v, &n->minimum) < 0) {
    fmt_num(a, sizeof a, v), fmt_num(b, sizeof b, &n->minimum);
    return fail(c, n, ip, "minimum", "%s is less than the minimum %s", a, b);
  }
  if ((kw & WS_BIT(WS_K_EXMINIMUM)) && wire__num_cmp(v, &n->exminimum) <= 0) {
    fmt_num(a, sizeof a, v), fmt_num(b, sizeof b, &n->exminimum);
    return fail(c, n, ip, "exclusiveMinimum", "%s is not greater than %s", a, b);
  }
  if ((kw & WS_BIT(WS_K_MULTIPLEOF)) && !is_multiple(v, &n->multipleof)) {
    fmt_num(a, sizeof a, v), fmt_num(b, sizeof b, &n->multipleof);
    return fail(c, n, ip, "multipleOf", "%s is not a multiple of %s", a, b);
  }
  return 0;
}

static int v_string(vctx *c, const ws_node *n, const wire_value *v, const ipath *ip) {
  uint64_t kw = n->kw;
  const char *s = v->u.s.ptr;
  size_t len = v->u.s.len;
  if (kw & (WS_BIT(WS_K_MAXLENGTH) | WS_BIT(WS_K_MINLENGTH))) {
    /* Lengths count code points; a code point takes 1 to 4 bytes, so the
     * byte length often decides without counting. */
    if ((kw & WS_BIT(WS_K_MAXLENGTH)) && len > n->maxlength && utf8_count(s, len) > n->maxlength)
      return fail(c, n, ip, "maxLength", "string is longer than %llu characters",
                  (unsigned long long)n->maxlength);
    if ((kw & WS_BIT(WS_K_MINLENGTH)) && (len + 3) / 4 < n->minlength &&
        utf8_count(s, len) < n->minlength)
      return fail(c, n, ip, "minLength", "string is shorter than %llu characters",
                  (unsigned long long)n->minlength);
  }
  if (kw & WS_BIT(WS_K_PATTERN)) {
    int m = wire__regex_search(&n->pattern, c->S->match, s, len);
    if (m != 1)
      return fail(c, n, ip, "pattern", "string does not match the pattern \"%s\"",
                  n->pattern.source);
  }
  if ((kw & WS_BIT(WS_K_FORMAT)) && !wire__format_check(c->S, n->format, s, len))
    return fail(c, n, ip, "format", "string is not a valid %s", n->format_name);
  return 0;
}

static int v_array(vctx *c, const ws_node *n, const wire_value *v, const ipath *ip, const scope *sc,
                   evset *ev) {
  uint64_t kw = n->kw;
  size_t len = v->u.a.len;
  const wire_value *items = v->u.a.items;
  if ((kw & WS_BIT(WS_K_MAXITEMS)) && len > n->maxitems)
    return fail(c, n, ip, "maxItems", "array has more than %llu items",
                (unsigned long long)n->maxitems);
  if ((kw & WS_BIT(WS_K_MINITEMS)) && len < n->minitems)
    return fail(c, n, ip, "minItems", "array has fewer than %llu items",
                (unsigned long long)n->minitems);
  size_t start = 0;
  if (kw & WS_BIT(WS_K_PREFIXITEMS)) {
    for (size_t i = 0; i < len && i < n->prefixitems.len; i++) {
      ipath sub = {ip, NULL, i};
      if (v_node(c, n->prefixitems.items[i], &items[i], &sub, sc, NULL))
        return 1;
      ev_set(ev, i);
    }
    start = n->prefixitems.len;
  }
  if (kw & WS_BIT(WS_K_ITEMS)) {
    const ws_node *in = &c->S->nodes[n->items];
    if ((in->kw & WS_BIT(WS_K_FALSE)) && start < len) {
      ipath sub = {ip, NULL, start};
      return fail(c, n, &sub, "items", "array has more than %zu items allowed", start);
    }
    for (size_t i = start; i < len; i++) {
      ipath sub = {ip, NULL, i};
      if (v_node(c, n->items, &items[i], &sub, sc, NULL))
        return 1;
      ev_set(ev, i);
    }
  }
  if (kw & WS_BIT(WS_K_CONTAINS)) {
    uint64_t count = 0;
    bool early = ev == NULL && n->maxcontains == UINT64_MAX;
    for (size_t i = 0; i < len; i++) {
      ipath sub = {ip, NULL, i};
      if (v_quiet(c, n->contains, &items[i], &sub, sc, NULL, false) == 0) {
        count++;
        ev_set(ev, i);
        if (early && count >= n->mincontains)
          break;
      }
    }
    if (count < n->mincontains)
      return fail(c, n, ip, n->mincontains == 1 ? "contains" : "minContains",
                  "array contains %llu matching items, fewer than %llu", (unsigned long long)count,
                  (unsigned long long)n->mincontains);
    if (count > n->maxcontains)
      return fail(c, n, ip, "maxContains", "array contains more than %llu matching items",
                  (unsigned long long)n->maxcontains);
  }
  if (kw & WS_BIT(WS_K_UNIQUEITEMS)) {
    size_t j, i;
    if (wire__array_duplicate(items, len, &j, &i))
      return fail(c, n, ip, "uniqueItems", "items %zu and %zu are equal", j, i);
  }
  return 0;
}

static inline bool same_bytes(const char *a, const char *b, size_t n) {
  /* keys are short: word loads beat a call to memcmp */
  uint64_t x, y;
  for (; n >= 8; a += 8, b += 8, n -= 8) {
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y)
      return false;
  }
  if (n >= 4) {
    uint32_t p, q, r, t;
    memcpy(&p, a, 4);
    memcpy(&q, b, 4);
    memcpy(&r, a + n - 4, 4);
    memcpy(&t, b + n - 4, 4);
    return p == q && r == t;
  }
  for (; n > 0; n--)
    if (*a++ != *b++)
      return false;
  return true;
}

/* Index of property `key` in n->props, or -1. Short lists are scanned
 * from *hint (one past the previous hit), because messages tend to list
 * their members in the schema's order: then the first comparison hits. */
static int find_prop(const ws_node *n, const char *key, size_t len, uint32_t *hint) {
  const ws_prop *p = n->props;
  if (n->props_sorted) {
    size_t lo = 0, hi = n->n_props;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      const ws_prop *m = &p[n->props_sorted[mid]];
      int d = m->len != len ? (m->len < len ? -1 : 1) : memcmp(m->key, key, len);
      if (d == 0)
        return (int)n->props_sorted[mid];
      if (d < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    return -1;
  }
  uint32_t np = n->n_props, i = *hint < np ? *hint : 0;
  for (uint32_t k = 0; k < np; k++, i = i + 1 == np ? 0 : i + 1) {
    if (p[i].len == len && same_bytes(p[i].key, key, len)) {
      *hint = i + 1;
      return (int)i;
    }
  }
  return -1;
}

static const wire_value *member(const wire_value *v, const char *key, size_t len) {
  for (size_t i = v->u.o.len; i-- > 0;) {
    const wire__member *m = &v->u.o.items[i];
    if (m->key_len == len && memcmp(m->key, key, len) == 0)
      return &m->value;
  }
  return NULL;
}

static int v_object(vctx *c, const ws_node *n, const wire_value *v, const ipath *ip,
                    const scope *sc, evset *ev) {
  uint64_t kw = n->kw;
  size_t len = v->u.o.len;
  const wire__member *ms = v->u.o.items;
  if ((kw & WS_BIT(WS_K_MAXPROPERTIES)) && len > n->maxprops)
    return fail(c, n, ip, "maxProperties", "object has more than %llu properties",
                (unsigned long long)n->maxprops);
  if ((kw & WS_BIT(WS_K_MINPROPERTIES)) && len < n->minprops)
    return fail(c, n, ip, "minProperties", "object has fewer than %llu properties",
                (unsigned long long)n->minprops);
  uint64_t seen = 0;
  uint32_t hint = 0;
  if (kw & (WS_BIT(WS_K_PROPERTIES) | WS_BIT(WS_K_PATTERNPROPS) | WS_BIT(WS_K_ADDITIONALPROPS) |
            WS_BIT(WS_K_PROPERTYNAMES))) {
    for (size_t i = 0; i < len; i++) {
      const wire__member *m = &ms[i];
      ipath sub = {ip, m->key, m->key_len};
      bool hit = false;
      if (kw & WS_BIT(WS_K_PROPERTIES)) {
        int p = find_prop(n, m->key, m->key_len, &hint);
        if (p >= 0) {
          hit = true;
          if (p < 64)
            seen |= UINT64_C(1) << p;
          if (v_node(c, n->props[p].node, &m->value, &sub, sc, NULL))
            return 1;
        }
      }
      if (kw & WS_BIT(WS_K_PATTERNPROPS)) {
        for (uint32_t j = 0; j < n->n_patprops; j++) {
          if (wire__regex_search(&n->patprops[j].re, c->S->match, m->key, m->key_len) == 1) {
            hit = true;
            if (v_node(c, n->patprops[j].node, &m->value, &sub, sc, NULL))
              return 1;
          }
        }
      }
      if (!hit && (kw & WS_BIT(WS_K_ADDITIONALPROPS))) {
        if (c->S->nodes[n->additional].kw & WS_BIT(WS_K_FALSE))
          return fail(c, n, &sub, "additionalProperties", "property \"%s\" is not allowed", m->key);
        if (v_node(c, n->additional, &m->value, &sub, sc, NULL))
          return 1;
        hit = true;
      }
      if (hit)
        ev_set(ev, i);
      if (kw & WS_BIT(WS_K_PROPERTYNAMES)) {
        wire_value name = {.type = WIRE_STRING};
        name.u.s.ptr = m->key;
        name.u.s.len = m->key_len;
        if (v_node(c, n->propnames, &name, &sub, sc, NULL))
          return 1;
      }
    }
  }
  if (kw & WS_BIT(WS_K_REQUIRED)) {
    for (uint32_t i = 0; i < n->n_required; i++) {
      const ws_prop *r = &n->required[i];
      if (r->node >= 0 && (kw & WS_BIT(WS_K_PROPERTIES))) {
        if (seen & (UINT64_C(1) << r->node))
          continue;
      } else if (member(v, r->key, r->len)) {
        continue;
      }
      return fail(c, n, ip, "required", "missing required property \"%s\"", r->key);
    }
  }
  if (kw & WS_BIT(WS_K_DEPREQUIRED)) {
    for (uint32_t i = 0; i < n->n_depreq; i++) {
      const ws_depreq *d = &n->depreq[i];
      if (!member(v, d->key, d->len))
        continue;
      for (size_t j = 0; j < d->names->u.a.len; j++) {
        const wire_value *nm = &d->names->u.a.items[j];
        if (!member(v, nm->u.s.ptr, nm->u.s.len))
          return fail(c, n, ip, "dependentRequired", "property \"%s\" requires property \"%s\"",
                      d->key, nm->u.s.ptr);
      }
    }
  }
  if (kw & WS_BIT(WS_K_DEPSCHEMAS)) {
    for (uint32_t i = 0; i < n->n_depschemas; i++) {
      const ws_prop *d = &n->depschemas[i];
      if (member(v, d->key, d->len) && v_node(c, d->node, v, ip, sc, ev))
        return 1;
    }
  }
  return 0;
}

/* Report that no branch of anyOf/oneOf matched, quoting why the first one
 * failed (evaluated again, only when a report is wanted). */
static int fail_branches(vctx *c, const ws_node *n, const wire_value *v, const ipath *ip,
                         const scope *sc, const char *kw, const ws_list *branches) {
  if (c->err == NULL)
    return 1;
  if (c->explaining) /* one level of explanation: keeps the stack flat */
    return fail(c, n, ip, kw, "value matches none of the %s schemas", kw);
  wire_error first;
  memset(&first, 0, sizeof first);
  vctx sub = *c;
  sub.err = &first;
  sub.explaining = true;
  v_node(&sub, branches->items[0], v, ip, sc, NULL);
  if (sub.fatal)
    c->fatal = sub.fatal;
  return fail(c, n, ip, kw, "value matches none of the %s schemas (the first fails: %s%s%s)", kw,
              first.path, first.path[0] ? ": " : "", first.message);
}

static int v_inplace(vctx *c, const ws_node *n, const wire_value *v, const ipath *ip,
                     const scope *sc, evset *ev) {
  uint64_t kw = n->kw;
  if (kw & WS_BIT(WS_K_REF)) {
    if (v_node(c, n->ref, v, ip, sc, ev))
      return 1;
  }
  if (kw & WS_BIT(WS_K_DYNREF)) {
    int32_t target = n->dynref;
    if (n->dynanchor) {
      /* The outermost resource in the dynamic scope with this anchor wins. */
      for (const scope *s = sc; s; s = s->up) {
        const ws_resource *r = &c->S->resources[s->res];
        for (uint32_t i = 0; i < r->n_dynanchors; i++)
          if (r->dynanchors[i].node >= 0 && strcmp(r->dynanchors[i].name, n->dynanchor) == 0)
            target = r->dynanchors[i].node;
      }
    }
    if (v_node(c, target, v, ip, sc, ev))
      return 1;
  }
  if (kw & WS_BIT(WS_K_ALLOF)) {
    for (uint32_t i = 0; i < n->allof.len; i++)
      if (v_node(c, n->allof.items[i], v, ip, sc, ev))
        return 1;
  }
  if (kw & WS_BIT(WS_K_ANYOF)) {
    bool any = false;
    for (uint32_t i = 0; i < n->anyof.len; i++) {
      evset tmp;
      if (v_quiet(c, n->anyof.items[i], v, ip, sc, &tmp, ev != NULL) == 0) {
        any = true;
        if (ev)
          ev_merge(ev, &tmp);
      }
      if (ev)
        ev_free(&tmp);
      if (any && ev == NULL)
        break;
    }
    if (!any)
      return fail_branches(c, n, v, ip, sc, "anyOf", &n->anyof);
  }
  if (kw & WS_BIT(WS_K_ONEOF)) {
    int count = 0;
    uint32_t first = 0;
    for (uint32_t i = 0; i < n->oneof.len; i++) {
      evset tmp;
      if (v_quiet(c, n->oneof.items[i], v, ip, sc, &tmp, ev != NULL) == 0) {
        if (count++ == 0) {
          first = i;
          if (ev)
            ev_merge(ev, &tmp);
        }
      }
      if (ev)
        ev_free(&tmp);
      if (count > 1)
        return fail(c, n, ip, "oneOf", "value matches oneOf schemas %u and %u, not just one", first,
                    i);
    }
    if (count == 0)
      return fail_branches(c, n, v, ip, sc, "oneOf", &n->oneof);
  }
  if (kw & WS_BIT(WS_K_NOT)) {
    if (v_quiet(c, n->not_, v, ip, sc, NULL, false) == 0)
      return fail(c, n, ip, "not", "value must not match the \"not\" schema");
  }
  if (kw & WS_BIT(WS_K_IF)) {
    evset tmp;
    int r = v_quiet(c, n->if_, v, ip, sc, &tmp, ev != NULL);
    if (r == 0 && ev)
      ev_merge(ev, &tmp);
    if (ev)
      ev_free(&tmp);
    int32_t branch = r == 0 ? n->then_ : n->else_;
    if (branch >= 0 && v_node(c, branch, v, ip, sc, ev))
      return 1;
  }
  return 0;
}

static int v_uneval(vctx *c, const ws_node *n, const wire_value *v, const ipath *ip,
                    const scope *sc, evset *own) {
  if ((n->kw & WS_BIT(WS_K_UNEVALPROPS)) && v->type == WIRE_OBJECT) {
    bool is_false = c->S->nodes[n->unevalprops].kw & WS_BIT(WS_K_FALSE);
    for (size_t i = 0; i < v->u.o.len; i++) {
      if (ev_has(own, i))
        continue;
      const wire__member *m = &v->u.o.items[i];
      ipath sub = {ip, m->key, m->key_len};
      if (is_false)
        return fail(c, n, &sub, "unevaluatedProperties", "property \"%s\" is not allowed", m->key);
      if (v_node(c, n->unevalprops, &m->value, &sub, sc, NULL))
        return 1;
    }
  }
  if ((n->kw & WS_BIT(WS_K_UNEVALITEMS)) && v->type == WIRE_ARRAY) {
    bool is_false = c->S->nodes[n->unevalitems].kw & WS_BIT(WS_K_FALSE);
    for (size_t i = 0; i < v->u.a.len; i++) {
      if (ev_has(own, i))
        continue;
      ipath sub = {ip, NULL, i};
      if (is_false)
        return fail(c, n, &sub, "unevaluatedItems", "item %zu is not allowed", i);
      if (v_node(c, n->unevalitems, &v->u.a.items[i], &sub, sc, NULL))
        return 1;
    }
  }
  return 0;
}

/* Evaluate node `ni` against v. Returns 0 when valid, 1 when not. `ev` (may
 * be NULL) collects which members/items of v got evaluated. */
static int v_node(vctx *c, int32_t ni, const wire_value *v, const ipath *ip, const scope *sc,
                  evset *ev) {
  const ws_node *n = &c->S->nodes[ni];
  uint64_t kw = n->kw;
  if (kw == 0)
    return 0;
  if (kw & WS_BIT(WS_K_FALSE))
    return fail(c, n, ip, "", "no value is allowed here (schema false)");
  if (kw & WS_BIT(WS_K_TYPE)) {
    if (!(type_bits(v) & n->types)) {
      char want[80];
      types_text(want, sizeof want, n->types);
      return fail(c, n, ip, "type", "expected %s, got %s", want, type_word(v));
    }
  }
  if (kw & WS_BIT(WS_K_CONST)) {
    const wire_value *k = n->const_;
    if (k->type == WIRE_STRING && v->type == WIRE_STRING
            ? !(k->u.s.len == v->u.s.len && same_bytes(k->u.s.ptr, v->u.s.ptr, k->u.s.len))
            : !wire__value_equal(v, k))
      return fail(c, n, ip, "const", "value does not equal the const value");
  }
  if (kw & WS_BIT(WS_K_ENUM)) {
    bool found = false;
    for (size_t i = 0; i < n->enum_->u.a.len && !found; i++) {
      const wire_value *k = &n->enum_->u.a.items[i];
      if (k->type == WIRE_STRING && v->type == WIRE_STRING)
        found = k->u.s.len == v->u.s.len && same_bytes(k->u.s.ptr, v->u.s.ptr, k->u.s.len);
      else
        found = wire__value_equal(v, k);
    }
    if (!found)
      return fail(c, n, ip, "enum", "value is not one of the enum values");
  }
  if (!(kw & WS_SUBSCHEMA_KW)) {
    /* A leaf: no subschemas, so no scope, depth or annotations to track. */
    switch (v->type) {
    case WIRE_INT:
    case WIRE_UINT:
    case WIRE_DOUBLE:
      return (kw & WS_NUMBER_KW) ? v_number(c, n, v, ip) : 0;
    case WIRE_STRING:
      return (kw & (WS_STRING_KW | WS_BIT(WS_K_FORMAT))) ? v_string(c, n, v, ip) : 0;
    case WIRE_ARRAY:
      return (kw & WS_ARRAY_KW) ? v_array(c, n, v, ip, sc, NULL) : 0;
    case WIRE_OBJECT:
      return (kw & WS_OBJECT_KW) ? v_object(c, n, v, ip, sc, NULL) : 0;
    default:
      return 0;
    }
  }
  if (c->depth >= MAX_EVAL_DEPTH)
    return fail(c, n, ip, "", "schema evaluation nested too deeply");
  scope frame;
  if (sc == NULL || sc->res != n->resource) {
    frame.up = sc;
    frame.res = n->resource;
    sc = &frame;
  }
  c->depth++;
  evset own, *e = ev;
  bool uneval = (kw & (WS_BIT(WS_K_UNEVALPROPS) | WS_BIT(WS_K_UNEVALITEMS))) &&
                (v->type == WIRE_OBJECT || v->type == WIRE_ARRAY);
  int r = 0;
  if (uneval) {
    /* Only this schema's own subschemas count for its unevaluated*. */
    if (!ev_init(c, &own, ev_size(v))) {
      c->depth--;
      return fail(c, n, ip, "", "out of memory");
    }
    e = &own;
  }
  switch (v->type) {
  case WIRE_INT:
  case WIRE_UINT:
  case WIRE_DOUBLE:
    if (kw & WS_NUMBER_KW)
      r = v_number(c, n, v, ip);
    break;
  case WIRE_STRING:
    if (kw & (WS_STRING_KW | WS_BIT(WS_K_FORMAT)))
      r = v_string(c, n, v, ip);
    break;
  case WIRE_ARRAY:
    if (kw & WS_ARRAY_KW)
      r = v_array(c, n, v, ip, sc, e);
    break;
  case WIRE_OBJECT:
    if (kw & WS_OBJECT_KW)
      r = v_object(c, n, v, ip, sc, e);
    break;
  default:
    break;
  }
  if (r == 0 && (kw & WS_INPLACE_KW))
    r = v_inplace(c, n, v, ip, sc, e);
  if (uneval) {
    if (r == 0)
      r = v_uneval(c, n, v, ip, sc, &own);
    if (r == 0)
      ev_all(ev); /* everything is evaluated now */
    ev_free(&own);
  }
  c->depth--;
  return r;
}

int wire_schema_validate(const wire_schema *schema, const wire_value *v, wire_error *err) {
  if (schema == NULL || v == NULL)
    return wire__error_set(err, WIRE_EINVAL, "invalid argument");
  vctx c = {schema, err, 0, 0, false};
  int r = v_node(&c, schema->root, v, NULL, NULL, NULL);
  if (c.fatal)
    return wire__error_set(err, c.fatal, "out of memory during validation");
  return r ? WIRE_EVALIDATION : 0;
}
