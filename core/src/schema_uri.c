/*
 * schema_uri.c -- RFC 3986 reference resolution for the schema compiler
 * ($id and $ref are resolved against the current base URI).
 */
#include "schema_internal.h"

#include <string.h>

/* The five components of a URI reference (§3); a NULL ptr means absent. */
typedef struct uri_parts {
  const char *scheme, *auth, *path, *query, *frag;
  size_t scheme_len, auth_len, path_len, query_len, frag_len;
} uri_parts;

/* Split `s` per the regular expression of RFC 3986 appendix B. */
static void uri_split(const char *s, uri_parts *p) {
  memset(p, 0, sizeof *p);
  const char *c = s;
  const char *colon = s + strcspn(s, ":/?#");
  if (*colon == ':' && colon > s) {
    p->scheme = s;
    p->scheme_len = (size_t)(colon - s);
    c = colon + 1;
  }
  if (c[0] == '/' && c[1] == '/') {
    p->auth = c + 2;
    p->auth_len = strcspn(p->auth, "/?#");
    c = p->auth + p->auth_len;
  }
  p->path = c;
  p->path_len = strcspn(c, "?#");
  c += p->path_len;
  if (*c == '?') {
    p->query = c + 1;
    p->query_len = strcspn(p->query, "#");
    c = p->query + p->query_len;
  }
  if (*c == '#') {
    p->frag = c + 1;
    p->frag_len = strlen(p->frag);
  }
}

/* A growable output string in the arena (sized for the worst case up front). */
typedef struct sbuf {
  char *p;
  size_t len;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

/* RFC 3986 §5.2.4: remove "." and ".." segments from path in[0..n) into out. */
static void remove_dots(sbuf *out, const char *in, size_t n) {
  size_t start = out->len;
  size_t i = 0;
  while (i < n) {
    const char *r = in + i;
    size_t left = n - i;
    if (left >= 3 && memcmp(r, "../", 3) == 0) {
      i += 3;
    } else if (left >= 2 && memcmp(r, "./", 2) == 0) {
      i += 2;
    } else if (left >= 3 && memcmp(r, "/./", 3) == 0) {
      i += 2;
    } else if (left == 2 && memcmp(r, "/.", 2) == 0) {
      i += 1;
      out->p[out->len++] = '/';
      i += 1;
    } else if ((left >= 4 && memcmp(r, "/../", 4) == 0) ||
               (left == 3 && memcmp(r, "/..", 3) == 0)) {
      /* drop the last output segment */
      while (out->len > start && out->p[out->len - 1] != '/')
        out->len--;
      if (out->len > start)
        out->len--;
      if (left == 3) {
        out->p[out->len++] = '/';
        i += 3;
      } else {
        i += 3;
      }
    } else if ((left == 1 && r[0] == '.') || (left == 2 && memcmp(r, "..", 2) == 0)) {
      i = n;
    } else {
      size_t seg = (r[0] == '/') ? 1 : 0;
      while (seg < left && r[seg] != '/')
        seg++;
      put(out, r, seg);
      i += seg;
    }
  }
}

char *wire__uri_resolve(wire__arena *a, const char *base, const char *ref) {
  uri_parts B, R;
  uri_split(base ? base : "", &B);
  uri_split(ref, &R);
  size_t cap = strlen(base ? base : "") + strlen(ref) + 8;
  sbuf out = {wire__arena_alloc(a, cap), 0};
  if (out.p == NULL)
    return NULL;
  const uri_parts *scheme_from = R.scheme ? &R : &B;
  if (scheme_from->scheme) {
    put(&out, scheme_from->scheme, scheme_from->scheme_len);
    put(&out, ":", 1);
  }
  const uri_parts *auth_from = R.scheme || R.auth ? &R : &B;
  if (auth_from->auth) {
    put(&out, "//", 2);
    put(&out, auth_from->auth, auth_from->auth_len);
  }
  const uri_parts *query_from = &R;
  if (R.scheme || R.auth) {
    remove_dots(&out, R.path, R.path_len);
  } else if (R.path_len == 0) {
    put(&out, B.path, B.path_len);
    if (!R.query)
      query_from = &B;
  } else if (R.path[0] == '/') {
    remove_dots(&out, R.path, R.path_len);
  } else {
    /* §5.2.3 merge: base path up to its last '/', then the reference path. */
    char *tmp = wire__arena_alloc(a, B.path_len + R.path_len + 2);
    if (tmp == NULL)
      return NULL;
    size_t n = 0;
    if (B.auth && B.path_len == 0) {
      tmp[n++] = '/';
    } else {
      size_t keep = B.path_len;
      while (keep > 0 && B.path[keep - 1] != '/')
        keep--;
      memcpy(tmp, B.path, keep);
      n = keep;
    }
    memcpy(tmp + n, R.path, R.path_len);
    n += R.path_len;
    remove_dots(&out, tmp, n);
  }
  if (query_from->query) {
    put(&out, "?", 1);
    put(&out, query_from->query, query_from->query_len);
  }
  if (R.frag) {
    put(&out, "#", 1);
    put(&out, R.frag, R.frag_len);
  }
  out.p[out.len] = 0;
  return out.p;
}
