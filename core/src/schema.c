/*
 * schema.c -- the JSON Schema 2020-12 compiler: documents, base URIs,
 * $id/$anchor/$dynamicAnchor indexing, $ref resolution (bundled meta-schemas,
 * then the caller's resolver, never the network) and keyword compilation into
 * the node array of schema_internal.h. Validation is in schema_validate.c.
 */
#include "schema_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting of schemas (including $ref chains) the compiler follows; each level
 * takes about 1 KiB of stack, and real schemas stay far below. */
#define MAX_COMPILE_DEPTH 256
#define MAX_DOCUMENTS 256

/* Dialect bits: how a schema document's keywords are read. */
enum {
  D_NO_VALIDATION = 1u << 0, /* $vocabulary without the validation vocabulary */
  D_FORMAT_ASSERT = 1u << 1, /* format-assertion vocabulary */
  D_OLD_ITEMS = 1u << 2,     /* draft 2019-09 and older: items array, additionalItems */
  D_REF_ALONE = 1u << 3,     /* draft-07 and older: $ref hides its siblings */
  D_NO_UNEVAL_PREFIX = 1u << 4,
};

/* What the indexing walk learnt about one schema value. */
typedef struct vinfo {
  const wire_value *v;
  const char *base; /* base URI in effect inside this schema */
  const char *path; /* for error messages */
  int32_t res;
  int32_t node; /* -1 until compiled */
  unsigned dialect;
} vinfo;

typedef struct anchor {
  const char *uri; /* resource URI */
  const char *name;
  const wire_value *v;
} anchor;

typedef struct cc {
  wire_schema *S;
  wire_error *err;
  wire_schema_resolve_cb resolve;
  void *resolve_data;
  vinfo *map; /* open addressing on the value pointer */
  size_t map_cap, map_len;
  anchor *anchors;
  size_t n_anchors, cap_anchors;
  const char **docs; /* URIs of loaded documents (also failed ones) */
  size_t n_docs;
  const char **dynnames; /* anchor names used by $dynamicRef */
  size_t n_dynnames;
  size_t cap_nodes;
  unsigned depth;
} cc;

/* ---- small helpers ---------------------------------------------------- */

static char *adup(wire__arena *a, const char *s, size_t n) {
  char *p = wire__arena_alloc(a, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

static int oom(cc *c) {
  return wire__error_set(c->err, WIRE_ENOMEM, "out of memory compiling schema");
}

/* Report an invalid schema at `path`/`kw`. Returns WIRE_ESCHEMA. */
__attribute__((format(printf, 4, 5))) static int serr(cc *c, const char *path, const char *kw,
                                                      const char *fmt, ...) {
  if (c->err == NULL)
    return WIRE_ESCHEMA;
  c->err->code = WIRE_ESCHEMA;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
  va_end(ap);
  snprintf(c->err->schema_path, sizeof c->err->schema_path, "%s%s%s", path ? path : "",
           kw ? "/" : "", kw ? kw : "");
  snprintf(c->err->keyword, sizeof c->err->keyword, "%s", kw ? kw : "");
  c->err->path[0] = 0;
  return WIRE_ESCHEMA;
}

static const wire_value *obj_get_n(const wire_value *o, const char *key, size_t n) {
  if (o->type != WIRE_OBJECT)
    return NULL;
  for (size_t i = o->u.o.len; i-- > 0;) {
    const wire__member *m = &o->u.o.items[i];
    if (m->key_len == n && memcmp(m->key, key, n) == 0)
      return &m->value;
  }
  return NULL;
}

static const wire_value *obj_get(const wire_value *o, const char *key) {
  return obj_get_n(o, key, strlen(key));
}

/* A repeated key counts once, with its last value (as wire_value_get). */
static bool shadowed(const wire_value *o, const wire__member *m) {
  return obj_get_n(o, m->key, m->key_len) != &m->value;
}

static bool is_str(const wire_value *v, const char *s) {
  return v && v->type == WIRE_STRING && v->u.s.len == strlen(s) &&
         memcmp(v->u.s.ptr, s, v->u.s.len) == 0;
}

/* path + "/" + key with ~ and / escaped (RFC 6901), in the arena. */
static const char *path_join(cc *c, const char *path, const char *key, size_t n) {
  size_t pl = strlen(path), extra = 0;
  for (size_t i = 0; i < n; i++)
    extra += key[i] == '~' || key[i] == '/';
  char *p = wire__arena_alloc(&c->S->arena, pl + n + extra + 2);
  if (p == NULL)
    return NULL;
  memcpy(p, path, pl);
  size_t o = pl;
  p[o++] = '/';
  for (size_t i = 0; i < n; i++) {
    if (key[i] == '~') {
      p[o++] = '~';
      p[o++] = '0';
    } else if (key[i] == '/') {
      p[o++] = '~';
      p[o++] = '1';
    } else {
      p[o++] = key[i];
    }
  }
  p[o] = 0;
  return p;
}

static const char *path_index(cc *c, const char *path, size_t i) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%zu", i);
  return path_join(c, path, tmp, (size_t)n);
}

/* The URI without its fragment, in the arena. */
static char *strip_fragment(cc *c, const char *uri) {
  return adup(&c->S->arena, uri, strcspn(uri, "#"));
}

/* ---- value map -------------------------------------------------------- */

static size_t ptr_hash(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  return (size_t)x;
}

static vinfo *map_find(cc *c, const wire_value *v) {
  if (c->map_cap == 0)
    return NULL;
  for (size_t i = ptr_hash(v) & (c->map_cap - 1);; i = (i + 1) & (c->map_cap - 1)) {
    if (c->map[i].v == v)
      return &c->map[i];
    if (c->map[i].v == NULL)
      return NULL;
  }
}

/* Insert (or find) `v`; NULL when memory runs out. */
static vinfo *map_put(cc *c, const wire_value *v, bool *fresh) {
  if ((c->map_len + 1) * 2 > c->map_cap) {
    size_t ncap = c->map_cap ? c->map_cap * 2 : 256;
    vinfo *nm = calloc(ncap, sizeof *nm);
    if (nm == NULL)
      return NULL;
    for (size_t i = 0; i < c->map_cap; i++) {
      if (c->map[i].v == NULL)
        continue;
      size_t j = ptr_hash(c->map[i].v) & (ncap - 1);
      while (nm[j].v)
        j = (j + 1) & (ncap - 1);
      nm[j] = c->map[i];
    }
    free(c->map);
    c->map = nm;
    c->map_cap = ncap;
  }
  size_t i = ptr_hash(v) & (c->map_cap - 1);
  while (c->map[i].v && c->map[i].v != v)
    i = (i + 1) & (c->map_cap - 1);
  *fresh = c->map[i].v == NULL;
  if (*fresh) {
    c->map[i].v = v;
    c->map[i].node = -1;
    c->map_len++;
  }
  return &c->map[i];
}

/* ---- resources and anchors ------------------------------------------- */

static int32_t find_resource(cc *c, const char *uri) {
  for (uint32_t i = 0; i < c->S->n_resources; i++)
    if (strcmp(c->S->resources[i].uri, uri) == 0)
      return (int32_t)i;
  return -1;
}

/* Register resource `uri` rooted at `v` (first registration wins). Returns
 * its index or -1 when memory runs out. */
static int32_t add_resource(cc *c, const char *uri, const wire_value *v) {
  int32_t r = find_resource(c, uri);
  if (r >= 0)
    return r;
  wire_schema *S = c->S;
  ws_resource *nr = realloc(S->resources, (S->n_resources + 1) * sizeof *nr);
  if (nr == NULL)
    return -1;
  S->resources = nr;
  memset(&nr[S->n_resources], 0, sizeof nr[0]);
  nr[S->n_resources].uri = uri;
  nr[S->n_resources].value = v;
  return (int32_t)S->n_resources++;
}

static int add_anchor(cc *c, const char *uri, const char *name, const wire_value *v) {
  for (size_t i = 0; i < c->n_anchors; i++)
    if (strcmp(c->anchors[i].uri, uri) == 0 && strcmp(c->anchors[i].name, name) == 0)
      return 0;
  if (c->n_anchors == c->cap_anchors) {
    size_t ncap = c->cap_anchors ? c->cap_anchors * 2 : 16;
    anchor *na = realloc(c->anchors, ncap * sizeof *na);
    if (na == NULL)
      return WIRE_ENOMEM;
    c->anchors = na;
    c->cap_anchors = ncap;
  }
  c->anchors[c->n_anchors++] = (anchor){uri, name, v};
  return 0;
}

static int add_dynanchor(cc *c, int32_t res, const char *name, const wire_value *v) {
  ws_resource *r = &c->S->resources[res];
  for (uint32_t i = 0; i < r->n_dynanchors; i++)
    if (strcmp(r->dynanchors[i].name, name) == 0)
      return 0;
  if (r->n_dynanchors == r->cap_dynanchors) {
    uint32_t ncap = r->cap_dynanchors ? r->cap_dynanchors * 2 : 4;
    ws_anchor *na = realloc(r->dynanchors, ncap * sizeof *na);
    if (na == NULL)
      return WIRE_ENOMEM;
    r->dynanchors = na;
    r->cap_dynanchors = ncap;
  }
  /* node < 0 until compiled; the value is kept through the anchor list */
  r->dynanchors[r->n_dynanchors++] = (ws_anchor){name, -1};
  return add_anchor(c, r->uri, name, v) == 0 ? 0 : WIRE_ENOMEM;
}

static const wire_value *find_anchor(cc *c, const char *uri, const char *name) {
  for (size_t i = 0; i < c->n_anchors; i++)
    if (strcmp(c->anchors[i].uri, uri) == 0 && strcmp(c->anchors[i].name, name) == 0)
      return c->anchors[i].v;
  return NULL;
}

/* ---- documents -------------------------------------------------------- */

static int index_schema(cc *c, const wire_value *v, const char *base, int32_t res, const char *path,
                        unsigned dialect, unsigned depth);
static int load_document(cc *c, const char *uri, bool *found);

/* The dialect a `$schema` value selects. Loads a custom meta-schema (through
 * the bundle or the resolver) to read its $vocabulary. */
static int dialect_of(cc *c, const wire_value *sv, const char *path, unsigned *out) {
  if (sv->type != WIRE_STRING)
    return serr(c, path, "$schema", "$schema must be a string");
  const char *s = sv->u.s.ptr;
  if (strstr(s, "json-schema.org/draft/2020-12/schema")) {
    *out = 0;
    return 0;
  }
  if (strstr(s, "json-schema.org/draft/2019-09/schema")) {
    *out = D_OLD_ITEMS;
    return 0;
  }
  if (strstr(s, "json-schema.org/draft-0")) {
    *out = D_OLD_ITEMS | D_REF_ALONE;
    return 0;
  }
  char *uri = strip_fragment(c, s);
  if (uri == NULL)
    return oom(c);
  int32_t r = find_resource(c, uri);
  if (r < 0) {
    bool found;
    int rc = load_document(c, uri, &found);
    if (rc)
      return rc;
    r = find_resource(c, uri);
    if (r < 0)
      return serr(c, path, "$schema", "unknown meta-schema %s", uri);
  }
  const wire_value *voc = obj_get(c->S->resources[r].value, "$vocabulary");
  unsigned d = 0;
  if (voc && voc->type == WIRE_OBJECT) {
    bool validation = false;
    for (size_t i = 0; i < voc->u.o.len; i++) {
      const wire__member *m = &voc->u.o.items[i];
      if (strstr(m->key, "/vocab/validation"))
        validation = true;
      else if (strstr(m->key, "/vocab/format-assertion"))
        d |= D_FORMAT_ASSERT;
      else if (!strstr(m->key, "json-schema.org/draft/2020-12/vocab/") &&
               m->value.type == WIRE_BOOL && m->value.u.b)
        return serr(c, path, "$schema", "meta-schema %s requires unknown vocabulary %s", uri,
                    m->key);
    }
    if (!validation)
      d |= D_NO_VALIDATION;
  }
  *out = d;
  return 0;
}

/* Decode a document's text into the schema arena and index it under `uri`. */
static int add_document(cc *c, const char *uri, const char *text, size_t len) {
  const wire_value *root;
  wire_error derr;
  int rc = wire__json_decode(&c->S->arena, text, len, 0, &root, &derr);
  if (rc == WIRE_ENOMEM)
    return oom(c);
  if (rc)
    return serr(c, uri, NULL, "document %s is not JSON: %s", uri, derr.message);
  int32_t res = add_resource(c, uri, root);
  if (res < 0)
    return oom(c);
  char *path = wire__arena_alloc(&c->S->arena, strlen(uri) + 2);
  if (path == NULL)
    return oom(c);
  sprintf(path, "%s#", uri);
  return index_schema(c, root, uri, res, path, 0, 0);
}

/* Fetch document `uri` (no fragment) from the bundled meta-schemas or the
 * resolver. *found says whether it was there; an absent document is not an
 * error here (the reference that needed it reports it). */
static int load_document(cc *c, const char *uri, bool *found) {
  *found = false;
  for (size_t i = 0; i < c->n_docs; i++)
    if (strcmp(c->docs[i], uri) == 0)
      return 0;
  if (c->n_docs == MAX_DOCUMENTS)
    return serr(c, uri, NULL, "too many referenced documents");
  c->docs[c->n_docs++] = uri;
  size_t len = 0;
  const char *text = wire__metaschema_lookup(uri, &len);
  if (text == NULL && c->resolve)
    text = c->resolve(uri, &len, c->resolve_data);
  if (text == NULL)
    return 0;
  *found = true;
  return add_document(c, uri, text, len);
}

/* Subschema-holding keywords, for the indexing walk. */
static const char *const kw_one[] = {"additionalProperties",
                                     "propertyNames",
                                     "items",
                                     "contains",
                                     "not",
                                     "if",
                                     "then",
                                     "else",
                                     "unevaluatedItems",
                                     "unevaluatedProperties",
                                     "additionalItems",
                                     NULL};
static const char *const kw_map[] = {"properties",  "patternProperties", "$defs",
                                     "definitions", "dependentSchemas",  "dependencies",
                                     NULL};
static const char *const kw_arr[] = {"allOf", "anyOf", "oneOf", "prefixItems", "items", NULL};

static bool in_list(const char *const *list, const char *k) {
  for (; *list; list++)
    if (strcmp(*list, k) == 0)
      return true;
  return false;
}

/* Record base URI, resource, path and dialect of schema `v` and of every
 * subschema under it; register $id resources and anchors. */
static int index_schema(cc *c, const wire_value *v, const char *base, int32_t res, const char *path,
                        unsigned dialect, unsigned depth) {
  if (v->type != WIRE_OBJECT && v->type != WIRE_BOOL)
    return 0;
  if (depth > MAX_COMPILE_DEPTH)
    return serr(c, path, NULL, "schema nesting too deep");
  bool fresh;
  vinfo *vi = map_put(c, v, &fresh);
  if (vi == NULL)
    return oom(c);
  if (!fresh)
    return 0;
  if (v->type == WIRE_BOOL) {
    vi->base = base, vi->res = res, vi->path = path, vi->dialect = dialect;
    return 0;
  }
  const wire_value *sv = obj_get(v, "$schema");
  if (sv) {
    int rc = dialect_of(c, sv, path, &dialect);
    if (rc)
      return rc;
    vi = map_find(c, v); /* the map may have grown */
  }
  const wire_value *id = obj_get(v, "$id");
  if (id && id->type == WIRE_STRING && !((dialect & D_REF_ALONE) && obj_get(v, "$ref"))) {
    if (id->u.s.ptr[0] == '#' && (dialect & D_OLD_ITEMS)) {
      if (id->u.s.len > 1 && add_anchor(c, base, id->u.s.ptr + 1, v))
        return oom(c);
    } else {
      char *abs = wire__uri_resolve(&c->S->arena, base, id->u.s.ptr);
      char *nb = abs ? strip_fragment(c, abs) : NULL;
      if (nb == NULL)
        return oom(c);
      base = nb;
      res = add_resource(c, nb, v);
      if (res < 0)
        return oom(c);
    }
  }
  vi = map_find(c, v);
  vi->base = base, vi->res = res, vi->path = path, vi->dialect = dialect;
  const wire_value *an = obj_get(v, "$anchor");
  if (an && an->type == WIRE_STRING && add_anchor(c, base, an->u.s.ptr, v))
    return oom(c);
  const wire_value *dan = obj_get(v, "$dynamicAnchor");
  if (dan && dan->type == WIRE_STRING && add_dynanchor(c, res, dan->u.s.ptr, v))
    return oom(c);
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    const wire_value *mv = &m->value;
    const char *kp = NULL;
    if (in_list(kw_one, m->key) || in_list(kw_map, m->key) || in_list(kw_arr, m->key)) {
      kp = path_join(c, path, m->key, m->key_len);
      if (kp == NULL)
        return oom(c);
    }
    int rc = 0;
    if (in_list(kw_one, m->key) && (mv->type == WIRE_OBJECT || mv->type == WIRE_BOOL)) {
      rc = index_schema(c, mv, base, res, kp, dialect, depth + 1);
    } else if (in_list(kw_map, m->key) && mv->type == WIRE_OBJECT) {
      for (size_t j = 0; j < mv->u.o.len && rc == 0; j++) {
        const wire__member *e = &mv->u.o.items[j];
        const char *ep = path_join(c, kp, e->key, e->key_len);
        if (ep == NULL)
          return oom(c);
        rc = index_schema(c, &e->value, base, res, ep, dialect, depth + 1);
      }
    } else if (in_list(kw_arr, m->key) && mv->type == WIRE_ARRAY) {
      for (size_t j = 0; j < mv->u.a.len && rc == 0; j++) {
        const char *ep = path_index(c, kp, j);
        if (ep == NULL)
          return oom(c);
        rc = index_schema(c, &mv->u.a.items[j], base, res, ep, dialect, depth + 1);
      }
    }
    if (rc)
      return rc;
  }
  return 0;
}

/* ---- $ref resolution -------------------------------------------------- */

static int hexv(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Percent-decode s in place. */
static void pct_decode(char *s) {
  char *o = s;
  for (; *s; s++) {
    if (s[0] == '%' && hexv(s[1]) >= 0 && hexv(s[2]) >= 0) {
      *o++ = (char)(hexv(s[1]) * 16 + hexv(s[2]));
      s += 2;
    } else {
      *o++ = *s;
    }
  }
  *o = 0;
}

/* Follow JSON Pointer `ptr` (already percent-decoded) from `v`. Keeps track of
 * the nearest indexed schema so an unindexed target gets a base URI. */
static const wire_value *follow_pointer(cc *c, const wire_value *v, const char *ptr,
                                        const vinfo **near) {
  *near = map_find(c, v);
  while (*ptr == '/') {
    ptr++;
    size_t n = strcspn(ptr, "/");
    char tok[512];
    size_t tl = 0;
    for (size_t i = 0; i < n && tl < sizeof tok - 1; i++) {
      if (ptr[i] == '~' && i + 1 < n && (ptr[i + 1] == '0' || ptr[i + 1] == '1')) {
        tok[tl++] = ptr[i + 1] == '0' ? '~' : '/';
        i++;
      } else {
        tok[tl++] = ptr[i];
      }
    }
    tok[tl] = 0;
    ptr += n;
    if (v->type == WIRE_OBJECT) {
      const wire_value *next = NULL;
      for (size_t i = v->u.o.len; i-- > 0;) {
        if (v->u.o.items[i].key_len == tl && memcmp(v->u.o.items[i].key, tok, tl) == 0) {
          next = &v->u.o.items[i].value;
          break;
        }
      }
      v = next;
    } else if (v->type == WIRE_ARRAY) {
      char *endp;
      unsigned long long idx = strtoull(tok, &endp, 10);
      if (tl == 0 || *endp || idx >= v->u.a.len)
        return NULL;
      v = &v->u.a.items[idx];
    } else {
      return NULL;
    }
    if (v == NULL)
      return NULL;
    const vinfo *vi = map_find(c, v);
    if (vi)
      *near = vi;
  }
  return v;
}

/* Resolve reference `ref` found at `path` (keyword `kw`) against `base` to a
 * schema value, indexing it when it was not reached by the walk. */
static int resolve_ref(cc *c, const char *base, const char *ref, const char *path, const char *kw,
                       const wire_value **out, const char **frag_out) {
  char *abs = wire__uri_resolve(&c->S->arena, base, ref);
  if (abs == NULL)
    return oom(c);
  char *hash = strchr(abs, '#');
  char *frag = "";
  if (hash) {
    *hash = 0;
    frag = hash + 1;
    pct_decode(frag);
  }
  *frag_out = frag;
  int32_t r = find_resource(c, abs);
  if (r < 0) {
    bool found;
    char *doc = adup(&c->S->arena, abs, strlen(abs));
    if (doc == NULL)
      return oom(c);
    int rc = load_document(c, doc, &found);
    if (rc)
      return rc;
    r = find_resource(c, abs);
    if (r < 0)
      return serr(c, path, kw, "cannot resolve reference %s: unknown document %s", ref, abs);
  }
  const wire_value *root = c->S->resources[r].value;
  const wire_value *t;
  if (frag[0] == 0) {
    t = root;
  } else if (frag[0] == '/') {
    const vinfo *near;
    t = follow_pointer(c, root, frag, &near);
    if (t == NULL)
      return serr(c, path, kw, "cannot resolve reference %s: no such location", ref);
    if (map_find(c, t) == NULL && (t->type == WIRE_OBJECT || t->type == WIRE_BOOL)) {
      const char *tp = path_join(c, near ? near->path : "", frag + 1, strlen(frag + 1));
      if (tp == NULL)
        return oom(c);
      int rc = index_schema(c, t, near ? near->base : abs, near ? near->res : r, tp,
                            near ? near->dialect : 0, 0);
      if (rc)
        return rc;
    }
  } else {
    t = find_anchor(c, abs, frag);
    if (t == NULL)
      return serr(c, path, kw, "cannot resolve reference %s: no anchor \"%s\" in %s", ref, frag,
                  abs);
  }
  if (t->type != WIRE_OBJECT && t->type != WIRE_BOOL)
    return serr(c, path, kw, "reference %s does not point to a schema", ref);
  *out = t;
  return 0;
}

/* ---- keyword compilation --------------------------------------------- */

static int compile_node(cc *c, const wire_value *v, int32_t *out);

static bool is_number(const wire_value *v) {
  return v->type == WIRE_INT || v->type == WIRE_UINT || v->type == WIRE_DOUBLE;
}

/* A non-negative integer keyword (1.0 counts as an integer). */
static int get_count(cc *c, const char *path, const char *kw, const wire_value *v, uint64_t *out) {
  if (v->type == WIRE_INT && v->u.i >= 0) {
    *out = (uint64_t)v->u.i;
  } else if (v->type == WIRE_UINT) {
    *out = v->u.u;
  } else if (v->type == WIRE_DOUBLE && v->u.d >= 0 && v->u.d == floor(v->u.d) && isfinite(v->u.d)) {
    *out = v->u.d >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)v->u.d;
  } else {
    return serr(c, path, kw, "%s must be a non-negative integer", kw);
  }
  return 0;
}

static int sub(cc *c, const char *path, const char *kw, const wire_value *v, int32_t *out) {
  if (v->type != WIRE_OBJECT && v->type != WIRE_BOOL)
    return serr(c, path, kw, "%s must be a schema (object or boolean)", kw);
  return compile_node(c, v, out);
}

static int sub_list(cc *c, const char *path, const char *kw, const wire_value *v, ws_list *out) {
  if (v->type != WIRE_ARRAY || v->u.a.len == 0)
    return serr(c, path, kw, "%s must be a non-empty array of schemas", kw);
  out->items = wire__arena_alloc(&c->S->arena, v->u.a.len * sizeof(int32_t));
  if (out->items == NULL)
    return oom(c);
  out->len = (uint32_t)v->u.a.len;
  for (size_t i = 0; i < v->u.a.len; i++) {
    const wire_value *e = &v->u.a.items[i];
    if (e->type != WIRE_OBJECT && e->type != WIRE_BOOL)
      return serr(c, path, kw, "%s[%zu] must be a schema", kw, i);
    int rc = compile_node(c, e, &out->items[i]);
    if (rc)
      return rc;
  }
  return 0;
}

/* An object of schemas (properties, dependentSchemas). */
static int sub_map(cc *c, const char *path, const char *kw, const wire_value *v,
                   const ws_prop **out, uint32_t *n) {
  if (v->type != WIRE_OBJECT)
    return serr(c, path, kw, "%s must be an object of schemas", kw);
  ws_prop *p = wire__arena_alloc(&c->S->arena, (v->u.o.len + 1) * sizeof *p);
  if (p == NULL)
    return oom(c);
  size_t k = 0;
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    if (shadowed(v, m))
      continue;
    p[k].key = m->key;
    p[k].len = m->key_len;
    int rc = sub(c, path, kw, &m->value, &p[k].node);
    if (rc)
      return rc;
    k++;
  }
  *out = p;
  *n = (uint32_t)k;
  return 0;
}

static int string_array(cc *c, const char *path, const char *kw, const wire_value *v) {
  if (v->type != WIRE_ARRAY)
    return serr(c, path, kw, "%s must be an array of strings", kw);
  for (size_t i = 0; i < v->u.a.len; i++) {
    if (v->u.a.items[i].type != WIRE_STRING)
      return serr(c, path, kw, "%s must be an array of strings", kw);
    for (size_t j = 0; j < i; j++)
      if (wire__value_equal(&v->u.a.items[i], &v->u.a.items[j]))
        return serr(c, path, kw, "%s must not repeat \"%s\"", kw, v->u.a.items[i].u.s.ptr);
  }
  return 0;
}

static int type_bit(const wire_value *v, uint32_t *bit) {
  static const struct {
    const char *name;
    uint32_t bit;
  } names[] = {{"null", WS_T_NULL},     {"boolean", WS_T_BOOLEAN}, {"integer", WS_T_INTEGER},
               {"number", WS_T_NUMBER}, {"string", WS_T_STRING},   {"array", WS_T_ARRAY},
               {"object", WS_T_OBJECT}};
  if (v->type != WIRE_STRING)
    return -1;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (is_str(v, names[i].name)) {
      *bit = names[i].bit;
      return 0;
    }
  }
  return -1;
}

static int compile_type(cc *c, ws_node *n, const char *path, const wire_value *v) {
  uint32_t bit;
  if (v->type == WIRE_STRING) {
    if (type_bit(v, &bit))
      return serr(c, path, "type", "unknown type \"%s\"", v->u.s.ptr);
    n->types = bit;
  } else if (v->type == WIRE_ARRAY) {
    n->types = 0;
    for (size_t i = 0; i < v->u.a.len; i++) {
      if (type_bit(&v->u.a.items[i], &bit))
        return serr(c, path, "type", "type must list known type names");
      n->types |= bit;
    }
  } else {
    return serr(c, path, "type", "type must be a string or an array of strings");
  }
  n->kw |= WS_BIT(WS_K_TYPE);
  return 0;
}

static int compile_regex(cc *c, ws_regex *re, const char *path, const char *kw,
                         const wire_value *v) {
  char msg[256];
  if (v->type != WIRE_STRING)
    return serr(c, path, kw, "%s must be a string", kw);
  if (wire__regex_compile(re, v->u.s.ptr, v->u.s.len, msg, sizeof msg)) {
    re->code = NULL;
    return serr(c, path, kw, "%s \"%s\": %s", kw, v->u.s.ptr, msg);
  }
  re->source = v->u.s.ptr;
  return 0; /* freed by wire_schema_free, which walks the nodes */
}

static int compile_required(cc *c, ws_node *n, const char *path, const wire_value *v) {
  int rc = string_array(c, path, "required", v);
  if (rc)
    return rc;
  ws_prop *r = wire__arena_alloc(&c->S->arena, (v->u.a.len + 1) * sizeof *r);
  if (r == NULL)
    return oom(c);
  for (size_t i = 0; i < v->u.a.len; i++)
    r[i] = (ws_prop){v->u.a.items[i].u.s.ptr, v->u.a.items[i].u.s.len, -1};
  n->required = r;
  n->n_required = (uint32_t)v->u.a.len;
  n->kw |= WS_BIT(WS_K_REQUIRED);
  return 0;
}

static int compile_depreq(cc *c, ws_node *n, const char *path, const char *kw,
                          const wire_value *v) {
  if (v->type != WIRE_OBJECT)
    return serr(c, path, kw, "%s must be an object of string arrays", kw);
  ws_depreq *d = wire__arena_alloc(&c->S->arena, (v->u.o.len + 1) * sizeof *d);
  if (d == NULL)
    return oom(c);
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    int rc = string_array(c, path, kw, &m->value);
    if (rc)
      return rc;
    d[i] = (ws_depreq){m->key, m->key_len, &m->value};
  }
  n->depreq = d;
  n->n_depreq = (uint32_t)v->u.o.len;
  n->kw |= WS_BIT(WS_K_DEPREQUIRED);
  return 0;
}

/* `dependencies` (drafts before 2019-09, still honoured for compatibility):
 * arrays are dependentRequired, schemas are dependentSchemas. */
static int compile_dependencies(cc *c, ws_node *n, const char *path, const wire_value *v) {
  if (v->type != WIRE_OBJECT)
    return serr(c, path, "dependencies", "dependencies must be an object");
  size_t na = 0, ns = 0;
  ws_depreq *d = wire__arena_alloc(&c->S->arena, (v->u.o.len + 1) * sizeof *d);
  ws_prop *s = wire__arena_alloc(&c->S->arena, (v->u.o.len + 1) * sizeof *s);
  if (d == NULL || s == NULL)
    return oom(c);
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    int rc;
    if (m->value.type == WIRE_ARRAY) {
      rc = string_array(c, path, "dependencies", &m->value);
      d[na++] = (ws_depreq){m->key, m->key_len, &m->value};
    } else {
      s[ns] = (ws_prop){m->key, m->key_len, -1};
      rc = sub(c, path, "dependencies", &m->value, &s[ns].node);
      ns++;
    }
    if (rc)
      return rc;
  }
  if (na && !(n->kw & WS_BIT(WS_K_DEPREQUIRED))) {
    n->depreq = d, n->n_depreq = (uint32_t)na, n->kw |= WS_BIT(WS_K_DEPREQUIRED);
  }
  if (ns && !(n->kw & WS_BIT(WS_K_DEPSCHEMAS))) {
    n->depschemas = s, n->n_depschemas = (uint32_t)ns, n->kw |= WS_BIT(WS_K_DEPSCHEMAS);
  }
  return 0;
}

static int compile_patprops(cc *c, ws_node *n, const char *path, const wire_value *v) {
  if (v->type != WIRE_OBJECT)
    return serr(c, path, "patternProperties", "patternProperties must be an object of schemas");
  ws_patprop *p = wire__arena_alloc(&c->S->arena, (v->u.o.len + 1) * sizeof *p);
  if (p == NULL)
    return oom(c);
  memset(p, 0, (v->u.o.len + 1) * sizeof *p);
  /* Publish the array first so wire_schema_free finds every compiled regex
   * even when a later one fails. */
  n->patprops = p;
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    wire_value key = {.type = WIRE_STRING};
    key.u.s.ptr = m->key;
    key.u.s.len = m->key_len;
    int rc = compile_regex(c, &p[i].re, path, "patternProperties", &key);
    n->n_patprops = (uint32_t)i + (rc == 0);
    if (rc == 0)
      rc = sub(c, path, "patternProperties", &m->value, &p[i].node);
    if (rc)
      return rc;
  }
  n->kw |= WS_BIT(WS_K_PATTERNPROPS);
  return 0;
}

static void remember_dynname(cc *c, const char *name) {
  for (size_t i = 0; i < c->n_dynnames; i++)
    if (strcmp(c->dynnames[i], name) == 0)
      return;
  const char **nn = realloc(c->dynnames, (c->n_dynnames + 1) * sizeof *nn);
  if (nn == NULL)
    return; /* only an optimisation hint; finish_dynamic compiles all then */
  c->dynnames = nn;
  c->dynnames[c->n_dynnames++] = name;
}

static int compile_dynref(cc *c, ws_node *n, const vinfo *vi, const wire_value *v) {
  if (v->type != WIRE_STRING)
    return serr(c, vi->path, "$dynamicRef", "$dynamicRef must be a string");
  const wire_value *t;
  const char *frag;
  int rc = resolve_ref(c, vi->base, v->u.s.ptr, vi->path, "$dynamicRef", &t, &frag);
  if (rc)
    return rc;
  rc = compile_node(c, t, &n->dynref);
  if (rc)
    return rc;
  n->kw |= WS_BIT(WS_K_DYNREF);
  /* Dynamic only when the fragment is an anchor name and the initial target
   * is a $dynamicAnchor of that name (2020-12 §8.2.3.2). */
  const wire_value *da = obj_get(t, "$dynamicAnchor");
  if (frag[0] && frag[0] != '/' && da && da->type == WIRE_STRING &&
      strcmp(da->u.s.ptr, frag) == 0) {
    n->dynanchor = adup(&c->S->arena, frag, strlen(frag));
    if (n->dynanchor == NULL)
      return oom(c);
    remember_dynname(c, n->dynanchor);
  }
  return 0;
}

static int prop_cmp(const ws_prop *a, const ws_prop *b) {
  if (a->len != b->len)
    return a->len < b->len ? -1 : 1;
  return memcmp(a->key, b->key, a->len);
}

/* Build n->props_sorted for large `properties` (insertion sort: compile
 * time only, and property lists are short). */
static int sort_props(cc *c, ws_node *n) {
  if (n->n_props <= WS_LINEAR_PROPS)
    return 0;
  uint32_t *idx = wire__arena_alloc(&c->S->arena, n->n_props * sizeof *idx);
  if (idx == NULL)
    return oom(c);
  for (uint32_t i = 0; i < n->n_props; i++) {
    uint32_t j = i;
    while (j > 0 && prop_cmp(&n->props[idx[j - 1]], &n->props[i]) > 0) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = i;
  }
  n->props_sorted = idx;
  return 0;
}

/* Keywords of the validation vocabulary (ignored without it). */
static bool validation_kw(const char *k) {
  static const char *const list[] = {"type",
                                     "enum",
                                     "const",
                                     "multipleOf",
                                     "maximum",
                                     "exclusiveMaximum",
                                     "minimum",
                                     "exclusiveMinimum",
                                     "maxLength",
                                     "minLength",
                                     "pattern",
                                     "maxItems",
                                     "minItems",
                                     "uniqueItems",
                                     "maxContains",
                                     "minContains",
                                     "maxProperties",
                                     "minProperties",
                                     "required",
                                     "dependentRequired",
                                     NULL};
  return in_list(list, k);
}

static int compile_number_kw(cc *c, ws_node *n, const char *path, const char *k,
                             const wire_value *mv) {
  if (!is_number(mv))
    return serr(c, path, k, "%s must be a number", k);
  if (strcmp(k, "multipleOf") == 0) {
    if (wire__num_cmp(mv, &(wire_value){.type = WIRE_INT}) <= 0)
      return serr(c, path, k, "multipleOf must be greater than 0");
    n->multipleof = *mv, n->kw |= WS_BIT(WS_K_MULTIPLEOF);
  } else if (strcmp(k, "maximum") == 0) {
    n->maximum = *mv, n->kw |= WS_BIT(WS_K_MAXIMUM);
  } else if (strcmp(k, "exclusiveMaximum") == 0) {
    n->exmaximum = *mv, n->kw |= WS_BIT(WS_K_EXMAXIMUM);
  } else if (strcmp(k, "minimum") == 0) {
    n->minimum = *mv, n->kw |= WS_BIT(WS_K_MINIMUM);
  } else {
    n->exminimum = *mv, n->kw |= WS_BIT(WS_K_EXMINIMUM);
  }
  return 0;
}

static int compile_count_kw(cc *c, ws_node *n, const char *path, const char *k,
                            const wire_value *mv) {
  static const struct {
    const char *name;
    size_t off;
    int bit;
  } counts[] = {
      {"maxLength", offsetof(ws_node, maxlength), WS_K_MAXLENGTH},
      {"minLength", offsetof(ws_node, minlength), WS_K_MINLENGTH},
      {"maxItems", offsetof(ws_node, maxitems), WS_K_MAXITEMS},
      {"minItems", offsetof(ws_node, minitems), WS_K_MINITEMS},
      {"maxContains", offsetof(ws_node, maxcontains), -1},
      {"minContains", offsetof(ws_node, mincontains), -1},
      {"maxProperties", offsetof(ws_node, maxprops), WS_K_MAXPROPERTIES},
      {"minProperties", offsetof(ws_node, minprops), WS_K_MINPROPERTIES},
  };
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    if (strcmp(k, counts[i].name) != 0)
      continue;
    uint64_t val = 0; /* set by get_count on success; the zero quiets -O3's maybe-uninitialized */
    int rc = get_count(c, path, k, mv, &val);
    if (rc)
      return rc;
    memcpy((char *)n + counts[i].off, &val, sizeof val);
    if (counts[i].bit >= 0)
      n->kw |= WS_BIT(counts[i].bit);
    return 0;
  }
  return 1; /* not a count keyword */
}

/* ---- keyword table ------------------------------------------------------ */

/* What a keyword handler sees besides its own value. */
typedef struct kwctx {
  const vinfo *vi;
  const wire_value *obj;         /* the schema object */
  const wire_value *maxc, *minc; /* contains bounds: applied once contains is known */
} kwctx;

typedef struct kwdef kwdef;
/* Compile one keyword's value into the node: 0 or WIRE_ESCHEMA / WIRE_ENOMEM. */
typedef int (*kw_fn)(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv);
struct kwdef {
  const char *name;
  kw_fn fn;
  size_t off; /* the node field a generic handler (sub, list) fills */
  int bit;    /* WS_K_* to set, -1 for none */
};

static void kw_mark(ws_node *n, const kwdef *d) {
  if (d->bit >= 0)
    n->kw |= WS_BIT(d->bit);
}

static int kw_type(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  return compile_type(c, n, x->vi->path, mv);
}

static int kw_enum(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if (mv->type != WIRE_ARRAY)
    return serr(c, x->vi->path, d->name, "enum must be an array");
  n->enum_ = mv, n->kw |= WS_BIT(WS_K_ENUM);
  return 0;
}

static int kw_const(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  n->const_ = mv, n->kw |= WS_BIT(WS_K_CONST);
  return 0;
}

static int kw_number(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  return compile_number_kw(c, n, x->vi->path, d->name, mv);
}

/* Counts; maxContains/minContains are also remembered for after the loop. */
static int kw_count(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  int rc = compile_count_kw(c, n, x->vi->path, d->name, mv);
  if (strcmp(d->name, "maxContains") == 0)
    x->maxc = mv;
  else if (strcmp(d->name, "minContains") == 0)
    x->minc = mv;
  return rc;
}

static int kw_pattern(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  int rc = compile_regex(c, &n->pattern, x->vi->path, d->name, mv);
  if (rc == 0)
    n->kw |= WS_BIT(WS_K_PATTERN);
  return rc;
}

/* format asserts only with the option or a dialect that says so; unknown
 * formats are annotations. */
static int kw_format(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if (mv->type != WIRE_STRING)
    return serr(c, x->vi->path, d->name, "format must be a string");
  n->format_name = mv->u.s.ptr;
  n->format = wire__format_lookup(mv->u.s.ptr, mv->u.s.len);
  if (n->format != WS_F_UNKNOWN &&
      ((c->S->flags & WIRE_SCHEMA_FORMAT_ASSERT) || (x->vi->dialect & D_FORMAT_ASSERT))) {
    n->kw |= WS_BIT(WS_K_FORMAT);
    if ((n->format == WS_F_HOSTNAME || n->format == WS_F_IDN_HOSTNAME || n->format == WS_F_EMAIL ||
         n->format == WS_F_IDN_EMAIL) &&
        wire__idn_init(c->S))
      return oom(c);
  }
  return 0;
}

static int kw_unique(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if (mv->type != WIRE_BOOL)
    return serr(c, x->vi->path, d->name, "uniqueItems must be a boolean");
  if (mv->u.b)
    n->kw |= WS_BIT(WS_K_UNIQUEITEMS);
  return 0;
}

static int kw_required(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  return compile_required(c, n, x->vi->path, mv);
}

static int kw_depreq(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  return compile_depreq(c, n, x->vi->path, d->name, mv);
}

static int kw_dependencies(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  return compile_dependencies(c, n, x->vi->path, mv);
}

static int kw_properties(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  int rc = sub_map(c, x->vi->path, d->name, mv, &n->props, &n->n_props);
  if (rc == 0)
    rc = sort_props(c, n);
  n->kw |= WS_BIT(WS_K_PROPERTIES);
  return rc;
}

static int kw_patprops(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  return compile_patprops(c, n, x->vi->path, mv);
}

static int kw_depschemas(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  int rc = sub_map(c, x->vi->path, d->name, mv, &n->depschemas, &n->n_depschemas);
  n->kw |= WS_BIT(WS_K_DEPSCHEMAS);
  return rc;
}

/* One subschema into the int32_t node field at d->off. */
static int kw_sub(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  int rc = sub(c, x->vi->path, d->name, mv, (int32_t *)((char *)n + d->off));
  kw_mark(n, d);
  return rc;
}

/* An array of subschemas into the ws_list node field at d->off. */
static int kw_list(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  int rc = sub_list(c, x->vi->path, d->name, mv, (ws_list *)((char *)n + d->off));
  kw_mark(n, d);
  return rc;
}

/* prefixItems exists from 2020-12 on; older dialects ignore it. */
static int kw_prefixitems(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if (x->vi->dialect & D_OLD_ITEMS)
    return 0;
  return kw_list(c, n, x, d, mv);
}

/* items: one schema, or in older dialects an array (today's prefixItems). */
static int kw_items(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if ((x->vi->dialect & D_OLD_ITEMS) && mv->type == WIRE_ARRAY) {
    n->kw |= WS_BIT(WS_K_PREFIXITEMS);
    return sub_list(c, x->vi->path, d->name, mv, &n->prefixitems);
  }
  n->kw |= WS_BIT(WS_K_ITEMS);
  return sub(c, x->vi->path, d->name, mv, &n->items);
}

/* additionalItems (older dialects only) acts after an items array. */
static int kw_additionalitems(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if (!(x->vi->dialect & D_OLD_ITEMS))
    return 0;
  const wire_value *items = obj_get(x->obj, "items");
  if (!items || items->type != WIRE_ARRAY)
    return 0;
  n->kw |= WS_BIT(WS_K_ITEMS);
  return sub(c, x->vi->path, d->name, mv, &n->items);
}

static int kw_ref(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if (mv->type != WIRE_STRING)
    return serr(c, x->vi->path, d->name, "$ref must be a string");
  const wire_value *t;
  const char *frag;
  int rc = resolve_ref(c, x->vi->base, mv->u.s.ptr, x->vi->path, d->name, &t, &frag);
  if (rc == 0)
    rc = compile_node(c, t, &n->ref);
  n->kw |= WS_BIT(WS_K_REF);
  return rc;
}

static int kw_dynref(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  return compile_dynref(c, n, x->vi, mv);
}

/* Identifiers were used by the indexing walk; here they only must be strings. */
static int kw_string(cc *c, ws_node *n, kwctx *x, const kwdef *d, const wire_value *mv) {
  if (mv->type != WIRE_STRING)
    return serr(c, x->vi->path, d->name, "%s must be a string", d->name);
  return 0;
}

#define KW(name, fn)                                                                               \
  { name, fn, 0, -1 }
#define KW_SUB(name, field, bit)                                                                   \
  { name, kw_sub, offsetof(ws_node, field), bit }
#define KW_LIST(name, fn, field, bit)                                                              \
  { name, fn, offsetof(ws_node, field), bit }

/* Every keyword the compiler knows; others are annotations and ignored. */
static const kwdef keywords[] = {
    KW("type", kw_type),
    KW("enum", kw_enum),
    KW("const", kw_const),
    KW("multipleOf", kw_number),
    KW("maximum", kw_number),
    KW("exclusiveMaximum", kw_number),
    KW("minimum", kw_number),
    KW("exclusiveMinimum", kw_number),
    KW("maxLength", kw_count),
    KW("minLength", kw_count),
    KW("maxItems", kw_count),
    KW("minItems", kw_count),
    KW("maxContains", kw_count),
    KW("minContains", kw_count),
    KW("maxProperties", kw_count),
    KW("minProperties", kw_count),
    KW("pattern", kw_pattern),
    KW("format", kw_format),
    KW("uniqueItems", kw_unique),
    KW("required", kw_required),
    KW("dependentRequired", kw_depreq),
    KW("dependencies", kw_dependencies),
    KW("properties", kw_properties),
    KW("patternProperties", kw_patprops),
    KW_SUB("additionalProperties", additional, WS_K_ADDITIONALPROPS),
    KW_SUB("propertyNames", propnames, WS_K_PROPERTYNAMES),
    KW("dependentSchemas", kw_depschemas),
    KW_LIST("prefixItems", kw_prefixitems, prefixitems, WS_K_PREFIXITEMS),
    KW("items", kw_items),
    KW("additionalItems", kw_additionalitems),
    KW_SUB("contains", contains, WS_K_CONTAINS),
    KW_LIST("allOf", kw_list, allof, WS_K_ALLOF),
    KW_LIST("anyOf", kw_list, anyof, WS_K_ANYOF),
    KW_LIST("oneOf", kw_list, oneof, WS_K_ONEOF),
    KW_SUB("not", not_, WS_K_NOT),
    KW_SUB("if", if_, WS_K_IF),
    KW_SUB("then", then_, -1),
    KW_SUB("else", else_, -1),
    KW_SUB("unevaluatedItems", unevalitems, WS_K_UNEVALITEMS),
    KW_SUB("unevaluatedProperties", unevalprops, WS_K_UNEVALPROPS),
    KW("$ref", kw_ref),
    KW("$dynamicRef", kw_dynref),
    KW("$id", kw_string),
    KW("$anchor", kw_string),
    KW("$dynamicAnchor", kw_string),
    KW("$schema", kw_string),
};

static const kwdef *keyword_find(const char *k) {
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (strcmp(k, keywords[i].name) == 0)
      return &keywords[i];
  return NULL;
}

/* Compile the keywords of schema object `v` into `n`. */
static int compile_keywords(cc *c, ws_node *n, const vinfo *vi, const wire_value *v) {
  const char *path = vi->path;
  unsigned d = vi->dialect;
  const wire_value *ref = obj_get(v, "$ref");
  bool ref_alone = ref && (d & D_REF_ALONE);
  n->mincontains = 1;
  n->maxcontains = UINT64_MAX;
  kwctx x = {vi, v, NULL, NULL};
  for (size_t i = 0; i < v->u.o.len; i++) {
    const wire__member *m = &v->u.o.items[i];
    const char *k = m->key;
    if (ref_alone && strcmp(k, "$ref") != 0)
      continue;
    if (shadowed(v, m))
      continue;
    if ((d & D_NO_VALIDATION) && validation_kw(k))
      continue;
    const kwdef *def = keyword_find(k);
    int rc = def ? def->fn(c, n, &x, def, &m->value) : 0;
    if (rc)
      return rc;
  }
  const wire_value *maxc = x.maxc, *minc = x.minc;
  if (n->kw & WS_BIT(WS_K_CONTAINS)) {
    if (minc && get_count(c, path, "minContains", minc, &n->mincontains))
      return WIRE_ESCHEMA;
    if (maxc && get_count(c, path, "maxContains", maxc, &n->maxcontains))
      return WIRE_ESCHEMA;
  }
  /* then/else without if, and contains bounds without contains, do nothing. */
  /* required names that are also properties are checked from the properties
   * pass (bit per property) instead of a second lookup. */
  for (uint32_t i = 0; i < n->n_required; i++) {
    for (uint32_t j = 0; j < n->n_props && j < 64; j++) {
      if (n->props[j].len == n->required[i].len &&
          memcmp(n->props[j].key, n->required[i].key, n->required[i].len) == 0) {
        ((ws_prop *)n->required)[i].node = (int32_t)j;
        break;
      }
    }
  }
  return 0;
}

/* Compile schema value `v` (indexed already) into a node; memoised, so
 * recursive references terminate. */
static int compile_node(cc *c, const wire_value *v, int32_t *out) {
  vinfo *vi = map_find(c, v);
  if (vi == NULL) {
    /* every value handed here was indexed by the walk or by resolve_ref */
    return serr(c, "", NULL, "internal error: unindexed subschema");
  }
  if (vi->node >= 0) {
    *out = vi->node;
    return 0;
  }
  if (c->depth > MAX_COMPILE_DEPTH)
    return serr(c, vi->path, NULL, "schema nesting too deep");
  wire_schema *S = c->S;
  if (S->n_nodes == c->cap_nodes) {
    size_t ncap = c->cap_nodes ? c->cap_nodes * 2 : 16;
    ws_node *nn = realloc(S->nodes, ncap * sizeof *nn);
    if (nn == NULL)
      return oom(c);
    S->nodes = nn;
    c->cap_nodes = ncap;
  }
  int32_t idx = (int32_t)S->n_nodes++;
  memset(&S->nodes[idx], 0, sizeof S->nodes[idx]);
  vi->node = idx;
  *out = idx;
  ws_node n;
  memset(&n, 0, sizeof n);
  n.resource = vi->res;
  n.path = vi->path;
  n.additional = n.propnames = n.items = n.contains = n.not_ = n.if_ = n.then_ = n.else_ = -1;
  n.unevalitems = n.unevalprops = n.ref = n.dynref = -1;
  int rc = 0;
  if (v->type == WIRE_BOOL) {
    if (!v->u.b)
      n.kw = WS_BIT(WS_K_FALSE);
  } else {
    vinfo copy = *vi; /* the map may move while children compile */
    c->depth++;
    rc = compile_keywords(c, &n, &copy, v);
    c->depth--;
  }
  S->nodes[idx] = n; /* stored even on failure so free() finds its regexes */
  return rc;
}

/* Compile every $dynamicAnchor whose name some $dynamicRef looks up, in every
 * resource known so far, until no new one appears. */
static int finish_dynamic(cc *c) {
  bool again = true;
  while (again) {
    again = false;
    for (uint32_t r = 0; r < c->S->n_resources; r++) {
      for (uint32_t i = 0; i < c->S->resources[r].n_dynanchors; i++) {
        ws_anchor *a = &c->S->resources[r].dynanchors[i];
        if (a->node >= 0)
          continue;
        bool used = false;
        for (size_t j = 0; j < c->n_dynnames && !used; j++)
          used = strcmp(c->dynnames[j], a->name) == 0;
        if (!used)
          continue;
        const wire_value *v = find_anchor(c, c->S->resources[r].uri, a->name);
        int32_t node;
        int rc = v ? compile_node(c, v, &node) : WIRE_ESCHEMA;
        if (rc)
          return rc == WIRE_ESCHEMA && !v ? serr(c, "", NULL, "dangling $dynamicAnchor") : rc;
        c->S->resources[r].dynanchors[i].node = node; /* resources may have moved */
        again = true;
      }
    }
  }
  return 0;
}

/* ---- public API ------------------------------------------------------- */

void wire_schema_free(wire_schema *s) {
  if (s == NULL)
    return;
  for (uint32_t i = 0; i < s->n_nodes; i++) {
    ws_node *n = &s->nodes[i];
    wire__regex_free(&n->pattern);
    for (uint32_t j = 0; j < n->n_patprops; j++)
      wire__regex_free(&((ws_patprop *)n->patprops)[j].re);
  }
  for (uint32_t i = 0; i < s->n_resources; i++)
    free(s->resources[i].dynanchors);
  free(s->resources);
  free(s->nodes);
  if (s->match)
    pcre2_match_data_free(s->match);
  wire__idn_free(s);
  wire__arena_destroy(&s->arena);
  free(s);
}

/* Deep-copy a value into the arena (schemas keep their enum/const values and
 * key strings after the caller's doc is gone). */
static wire_value *copy_value(wire__arena *a, const wire_value *v, wire_value *dst) {
  *dst = *v;
  switch (v->type) {
  case WIRE_STRING:
  case WIRE_BINARY:
    if ((dst->u.s.ptr = adup(a, v->u.s.ptr, v->u.s.len)) == NULL)
      return NULL;
    break;
  case WIRE_ARRAY:
    dst->u.a.cap = v->u.a.len;
    dst->u.a.items = wire__arena_alloc(a, (v->u.a.len + 1) * sizeof(wire_value));
    if (dst->u.a.items == NULL)
      return NULL;
    for (size_t i = 0; i < v->u.a.len; i++)
      if (!copy_value(a, &v->u.a.items[i], &dst->u.a.items[i]))
        return NULL;
    break;
  case WIRE_OBJECT:
    dst->u.o.cap = v->u.o.len;
    dst->u.o.items = wire__arena_alloc(a, (v->u.o.len + 1) * sizeof(wire__member));
    if (dst->u.o.items == NULL)
      return NULL;
    for (size_t i = 0; i < v->u.o.len; i++) {
      wire__member *m = &dst->u.o.items[i];
      m->key_len = v->u.o.items[i].key_len;
      if ((m->key = adup(a, v->u.o.items[i].key, m->key_len)) == NULL)
        return NULL;
      if (!copy_value(a, &v->u.o.items[i].value, &m->value))
        return NULL;
    }
    break;
  default:
    break;
  }
  return dst;
}

/* Compile `root` (already in S->arena). */
static int compile_root(wire_schema *S, const wire_value *root, const wire_schema_options *opts,
                        wire_error *err) {
  if (root->type != WIRE_OBJECT && root->type != WIRE_BOOL) {
    if (err) {
      err->path[0] = err->schema_path[0] = err->keyword[0] = 0;
    }
    return wire__error_set(err, WIRE_ESCHEMA, "a schema must be an object or a boolean");
  }
  cc c;
  memset(&c, 0, sizeof c);
  c.S = S;
  c.err = err;
  c.resolve = opts ? opts->resolve : NULL;
  c.resolve_data = opts ? opts->resolve_data : NULL;
  const char *docs[MAX_DOCUMENTS];
  c.docs = docs;
  int rc = 0;
  int32_t res = add_resource(&c, "", root);
  if (res < 0)
    rc = oom(&c);
  if (rc == 0)
    rc = index_schema(&c, root, "", res, "", 0, 0);
  if (rc == 0)
    rc = compile_node(&c, root, &S->root);
  if (rc == 0)
    rc = finish_dynamic(&c);
  if (rc == 0) {
    S->match = pcre2_match_data_create(1, NULL);
    if (S->match == NULL)
      rc = oom(&c);
  }
  free(c.map);
  free(c.anchors);
  free(c.dynnames);
  if (rc == 0 && err) {
    err->code = 0;
    err->message[0] = 0;
  }
  return rc;
}

static int schema_new(const wire_schema_options *opts, wire_schema **out) {
  wire_schema *S = calloc(1, sizeof *S);
  if (S == NULL)
    return WIRE_ENOMEM;
  wire__arena_init(&S->arena);
  S->flags = opts ? opts->flags : 0;
  *out = S;
  return 0;
}

int wire_schema_compile(const char *json, size_t len, const wire_schema_options *opts,
                        wire_schema **out, wire_error *err) {
  if (out == NULL || (json == NULL && len > 0))
    return wire__error_set(err, WIRE_EINVAL, "invalid argument");
  *out = NULL;
  wire_schema *S;
  if (schema_new(opts, &S))
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  const wire_value *root;
  int rc = wire__json_decode(&S->arena, json ? json : "", len, 0, &root, err);
  if (rc == 0)
    rc = compile_root(S, root, opts, err);
  if (rc) {
    wire_schema_free(S);
    return rc;
  }
  *out = S;
  return 0;
}

int wire_schema_compile_value(const wire_value *schema, const wire_schema_options *opts,
                              wire_schema **out, wire_error *err) {
  if (out == NULL || schema == NULL)
    return wire__error_set(err, WIRE_EINVAL, "invalid argument");
  *out = NULL;
  wire_schema *S;
  if (schema_new(opts, &S))
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  wire_value *root = wire__arena_alloc(&S->arena, sizeof *root);
  int rc = root && copy_value(&S->arena, schema, root) ? 0 : WIRE_ENOMEM;
  if (rc)
    wire__error_set(err, rc, "out of memory");
  else
    rc = compile_root(S, root, opts, err);
  if (rc) {
    wire_schema_free(S);
    return rc;
  }
  *out = S;
  return 0;
}
