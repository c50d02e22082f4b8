/*
 * router.c -- endpoint path patterns: compiling "/chat/{room}",
 * "/users/{id:int}", "/files/{rest:path}" into segments, and matching a
 * request's path against them, appending the captured parameters.
 *
 * Matching walks the raw (still percent-encoded) path segment by segment and
 * decodes each segment on its own, so an encoded slash (%2F) stays inside one
 * parameter instead of splitting it. Trailing slashes are significant:
 * "/chat/" and "/chat" are different routes.
 */
#include "http.h"

#include <stdlib.h>
#include <string.h>

typedef enum seg_kind { SEG_LITERAL, SEG_PARAM, SEG_INT, SEG_PATH } seg_kind;

typedef struct seg {
  seg_kind kind;
  const char *text; /* literal bytes, or the parameter's name; NUL-terminated */
  size_t len;
} seg;

struct wire__route {
  size_t n, n_params;
  char *storage; /* the pattern's bytes, split in place by NULs */
  seg segs[];
};

static bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Parses one "{name}" / "{name:int}" / "{name:path}" segment in place.
 * Returns 0 or WIRE_EROUTE. */
static int parse_param(char *s, size_t len, seg *out) {
  if (len < 3 || s[len - 1] != '}')
    return WIRE_EROUTE;
  s[len - 1] = 0;
  char *name = s + 1, *colon = strchr(name, ':');
  out->kind = SEG_PARAM;
  if (colon) {
    *colon = 0;
    if (strcmp(colon + 1, "int") == 0)
      out->kind = SEG_INT;
    else if (strcmp(colon + 1, "path") == 0)
      out->kind = SEG_PATH;
    else
      return WIRE_EROUTE;
  }
  if (!is_name_start(name[0]))
    return WIRE_EROUTE;
  for (const char *p = name; *p; p++)
    if (!is_name_char(*p))
      return WIRE_EROUTE;
  out->text = name;
  out->len = strlen(name);
  return 0;
}

/* Checks the whole pattern once compiled: a path parameter only last, no
 * name twice. */
static int check_route(const wire__route *r) {
  for (size_t i = 0; i < r->n; i++) {
    if (r->segs[i].kind == SEG_LITERAL)
      continue;
    if (r->segs[i].kind == SEG_PATH && i + 1 != r->n)
      return WIRE_EROUTE;
    for (size_t j = 0; j < i; j++)
      if (r->segs[j].kind != SEG_LITERAL && strcmp(r->segs[j].text, r->segs[i].text) == 0)
        return WIRE_EROUTE;
  }
  return 0;
}

/* Splits storage ("/a/{b}") into segments. Empty segments are refused except
 * the last one, which is how a trailing slash (or the root "/") is written. */
static int split_pattern(wire__route *r) {
  char *s = r->storage + 1;
  for (;;) {
    char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    if (slash)
      *slash = 0;
    seg *g = &r->segs[r->n++];
    if (len == 0 && slash)
      return WIRE_EROUTE;
    if (len > 0 && s[0] == '{') {
      if (parse_param(s, len, g) < 0)
        return WIRE_EROUTE;
      r->n_params++;
    } else {
      if (strpbrk(s, "{}?#"))
        return WIRE_EROUTE;
      *g = (seg){SEG_LITERAL, s, len};
    }
    if (!slash)
      return check_route(r);
    s = slash + 1;
  }
}

int wire__route_compile(const char *pattern, wire__route **out) {
  *out = NULL;
  if (!pattern || pattern[0] != '/')
    return WIRE_EROUTE;
  size_t len = strlen(pattern), n = 1;
  for (size_t i = 1; i < len; i++)
    n += pattern[i] == '/';
  wire__route *r = calloc(1, sizeof *r + n * sizeof(seg));
  if (!r || !(r->storage = malloc(len + 1))) {
    free(r);
    return WIRE_ENOMEM;
  }
  memcpy(r->storage, pattern, len + 1);
  int rc = split_pattern(r);
  if (rc < 0) {
    wire__route_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void wire__route_free(wire__route *r) {
  if (!r)
    return;
  free(r->storage);
  free(r);
}

/* ---- matching ------------------------------------------------------------ */

static int hex_val(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
    return (c | 0x20) - 'a' + 10;
  return -1;
}

/* The decoded byte at raw[*i] (a '%XX' escape or a plain byte); advances *i.
 * A malformed escape (the parser refuses those) reads as a plain '%'. */
static char next_decoded(const char *raw, size_t end, size_t *i) {
  if (raw[*i] == '%' && *i + 2 < end && hex_val(raw[*i + 1]) >= 0 && hex_val(raw[*i + 2]) >= 0) {
    char c = (char)(hex_val(raw[*i + 1]) * 16 + hex_val(raw[*i + 2]));
    *i += 3;
    return c;
  }
  return raw[(*i)++];
}

/* Decoded length of raw[b..e). */
static size_t decoded_len(const char *raw, size_t b, size_t e) {
  size_t n = 0;
  for (size_t i = b; i < e; n++)
    next_decoded(raw, e, &i);
  return n;
}

static bool seg_matches(const seg *g, const char *raw, size_t b, size_t e) {
  size_t i = b, k = 0;
  switch (g->kind) {
  case SEG_LITERAL:
    while (i < e && k < g->len)
      if (next_decoded(raw, e, &i) != g->text[k++])
        return false;
    return i == e && k == g->len;
  case SEG_PARAM:
    return e > b;
  case SEG_INT: {
    size_t digits = 0;
    for (; i < e; k++) {
      char c = next_decoded(raw, e, &i);
      if (c >= '0' && c <= '9')
        digits++;
      else if (c != '-' || k != 0)
        return false;
    }
    return digits > 0;
  }
  case SEG_PATH:
    return true;
  }
  return false;
}

/* A captured value: raw[b..e) of the request's path. */
typedef struct capture {
  size_t b, e;
} capture;

/* Appends the captures as parameters in one block owned by the request. */
static int append_params(const wire__route *r, wire_request *req, const char *raw,
                         const capture *caps) {
  size_t n = req->n_params + r->n_params, bytes = 0, k = 0;
  for (size_t i = 0; i < r->n; i++)
    if (r->segs[i].kind != SEG_LITERAL)
      bytes += r->segs[i].len + decoded_len(raw, caps[k].b, caps[k].e) + 2, k++;
  wire__kv *kv = wire__request_alloc(req, n * sizeof *kv + bytes);
  if (!kv)
    return WIRE_ENOMEM;
  if (req->n_params)
    memcpy(kv, req->params, req->n_params * sizeof *kv);
  char *cur = (char *)(kv + n);
  k = 0;
  for (size_t i = 0; i < r->n; i++) {
    const seg *g = &r->segs[i];
    if (g->kind == SEG_LITERAL)
      continue;
    wire__kv *p = &kv[req->n_params + k];
    memcpy(cur, g->text, g->len + 1);
    p->name = (wire_str){cur, g->len};
    cur += g->len + 1;
    char *v = cur;
    for (size_t j = caps[k].b; j < caps[k].e;)
      *cur++ = next_decoded(raw, caps[k].e, &j);
    *cur++ = 0;
    p->value = (wire_str){v, (size_t)(cur - v - 1)};
    k++;
  }
  req->params = kv;
  req->n_params = req->cap_params = n;
  return 1;
}

int wire__route_match(const wire__route *r, wire_request *req) {
  const char *raw = req->target.ptr;
  if (!raw || raw[0] != '/')
    return 0;
  const char *q = memchr(raw, '?', req->target.len);
  size_t end = q ? (size_t)(q - raw) : req->target.len, pos = 1, k = 0;
  bool more = true; /* is there a segment at pos (possibly empty)? */
  capture caps[r->n_params ? r->n_params : 1];
  for (size_t i = 0; i < r->n; i++) {
    const seg *g = &r->segs[i];
    if (g->kind == SEG_PATH) {
      if (!more)
        return 0; /* "/files" has no segment for "/files/{rest:path}" */
      caps[k++] = (capture){pos, end};
      more = false;
      break;
    }
    if (!more)
      return 0;
    const char *slash = memchr(raw + pos, '/', end - pos);
    size_t e = slash ? (size_t)(slash - raw) : end;
    if (!seg_matches(g, raw, pos, e))
      return 0;
    if (g->kind != SEG_LITERAL)
      caps[k++] = (capture){pos, e};
    more = slash != NULL;
    pos = e + 1;
  }
  if (more)
    return 0;
  return r->n_params ? append_params(r, req, raw, caps) : 1;
}
