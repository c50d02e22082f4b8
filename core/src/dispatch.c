/*
 * dispatch.c -- picks, for a message, the first of N compiled schemas it
 * satisfies. When every schema requires one common property pinned to a
 * distinct string by `const` (or a one-value `enum`), the dispatcher keeps a
 * sorted table of those strings and dispatch is one lookup plus one
 * validation.
 */
#include "schema_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct disc_entry {
  const char *value;
  size_t len;
  size_t index;
} disc_entry;

struct wire_dispatcher {
  const wire_schema **schemas; /* our copy of the caller's array; the schemas are borrowed */
  size_t n;
  char *disc; /* discriminator property name, or NULL */
  size_t disc_len;
  disc_entry *table; /* sorted by (len, bytes) */
};

/* The string a schema pins property `name` to, when its root node requires
 * that property and constrains it to one string. Follows a root that is only
 * a $ref (or an allOf of one) to its target. */
static bool pinned_value(const wire_schema *s, const char *name, size_t len, const char **val,
                         size_t *val_len) {
  const ws_node *n = wire__schema_node(s, s->root);
  for (int hops = 0; hops < 8; hops++) {
    bool required = false;
    for (uint32_t i = 0; i < n->n_required; i++)
      if (n->required[i].len == len && memcmp(n->required[i].key, name, len) == 0)
        required = true;
    if (required && (n->kw & WS_BIT(WS_K_PROPERTIES))) {
      for (uint32_t i = 0; i < n->n_props; i++) {
        if (n->props[i].len != len || memcmp(n->props[i].key, name, len) != 0)
          continue;
        const ws_node *p = wire__schema_node(s, n->props[i].node);
        const wire_value *c = NULL;
        if (p->kw & WS_BIT(WS_K_CONST))
          c = p->const_;
        else if ((p->kw & WS_BIT(WS_K_ENUM)) && p->enum_->u.a.len == 1)
          c = &p->enum_->u.a.items[0];
        if (c == NULL || c->type != WIRE_STRING)
          return false;
        *val = c->u.s.ptr;
        *val_len = c->u.s.len;
        return true;
      }
    }
    if (n->kw == WS_BIT(WS_K_REF))
      n = wire__schema_node(s, n->ref);
    else
      return false;
  }
  return false;
}

static int entry_cmp(const void *a, const void *b) {
  const disc_entry *x = a, *y = b;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return memcmp(x->value, y->value, x->len);
}

/* Try property `name` as the discriminator; on success fill d->table. */
static int try_discriminator(wire_dispatcher *d, const char *name, size_t len, bool *ok) {
  *ok = false;
  disc_entry *t = malloc(d->n * sizeof *t);
  if (t == NULL)
    return WIRE_ENOMEM;
  for (size_t i = 0; i < d->n; i++) {
    if (!pinned_value(d->schemas[i], name, len, &t[i].value, &t[i].len)) {
      free(t);
      return 0;
    }
    t[i].index = i;
  }
  qsort(t, d->n, sizeof *t, entry_cmp);
  for (size_t i = 1; i < d->n; i++) {
    if (entry_cmp(&t[i - 1], &t[i]) == 0) {
      free(t);
      return 0;
    }
  }
  d->disc = malloc(len + 1);
  if (d->disc == NULL) {
    free(t);
    return WIRE_ENOMEM;
  }
  memcpy(d->disc, name, len);
  d->disc[len] = 0;
  d->disc_len = len;
  d->table = t;
  *ok = true;
  return 0;
}

int wire_dispatcher_new(const wire_schema *const *schemas, size_t n, wire_dispatcher **out) {
  if (out == NULL || schemas == NULL || n == 0)
    return WIRE_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (schemas[i] == NULL)
      return WIRE_EINVAL;
  wire_dispatcher *d = calloc(1, sizeof *d);
  if (d == NULL)
    return WIRE_ENOMEM;
  d->schemas = malloc(n * sizeof *d->schemas);
  if (d->schemas == NULL) {
    free(d);
    return WIRE_ENOMEM;
  }
  memcpy(d->schemas, schemas, n * sizeof *d->schemas);
  d->n = n;
  /* Candidates: the required properties of the first schema (or of its
   * $ref target). A single schema needs no table. */
  const ws_node *root = wire__schema_node(schemas[0], schemas[0]->root);
  for (int hops = 0; hops < 8 && root->kw == WS_BIT(WS_K_REF); hops++)
    root = wire__schema_node(schemas[0], root->ref);
  for (uint32_t i = 0; n > 1 && i < root->n_required && d->disc == NULL; i++) {
    bool ok;
    int rc = try_discriminator(d, root->required[i].key, root->required[i].len, &ok);
    if (rc) {
      wire_dispatcher_free(d);
      return rc;
    }
  }
  *out = d;
  return 0;
}

void wire_dispatcher_free(wire_dispatcher *d) {
  if (d == NULL)
    return;
  free(d->disc);
  free(d->table);
  free(d->schemas);
  free(d);
}

const char *wire_dispatcher_discriminator(const wire_dispatcher *d) {
  return d ? d->disc : NULL;
}

static void clear_location(wire_error *err) {
  if (err)
    err->path[0] = err->keyword[0] = err->schema_path[0] = 0;
}

/* Discriminated dispatch: one lookup, one validation. */
static int dispatch_table(const wire_dispatcher *d, const wire_value *v, size_t *index,
                          wire_error *err) {
  const wire_value *tag = NULL;
  if (v->type == WIRE_OBJECT) {
    for (size_t i = v->u.o.len; i-- > 0;) {
      const wire__member *m = &v->u.o.items[i];
      if (m->key_len == d->disc_len && memcmp(m->key, d->disc, d->disc_len) == 0) {
        tag = &m->value;
        break;
      }
    }
  }
  if (tag == NULL || tag->type != WIRE_STRING) {
    clear_location(err);
    return wire__error_set(err, WIRE_EUNKNOWN_MESSAGE,
                           v->type != WIRE_OBJECT ? "message is not an object"
                           : tag == NULL          ? "message has no \"%s\" property"
                                                  : "message property \"%s\" is not a string",
                           d->disc);
  }
  disc_entry key = {tag->u.s.ptr, tag->u.s.len, 0};
  const disc_entry *hit = bsearch(&key, d->table, d->n, sizeof key, entry_cmp);
  if (hit == NULL) {
    clear_location(err);
    return wire__error_set(err, WIRE_EUNKNOWN_MESSAGE, "unknown %s \"%.200s\"", d->disc,
                           tag->u.s.ptr);
  }
  int rc = wire_schema_validate(d->schemas[hit->index], v, err);
  if (rc)
    return rc;
  *index = hit->index;
  return 0;
}

int wire_dispatch(const wire_dispatcher *d, const wire_value *v, size_t *index, wire_error *err) {
  if (d == NULL || v == NULL || index == NULL)
    return wire__error_set(err, WIRE_EINVAL, "invalid argument");
  if (d->table)
    return dispatch_table(d, v, index, err);
  for (size_t i = 0; i < d->n; i++) {
    if (wire_schema_validate(d->schemas[i], v, NULL) == 0) {
      *index = i;
      return 0;
    }
  }
  if (err == NULL)
    return WIRE_EUNKNOWN_MESSAGE;
  /* The slow path: validate again, this time collecting each reason. */
  char msg[sizeof err->message];
  size_t o = (size_t)snprintf(msg, sizeof msg, "no handler matches:");
  for (size_t i = 0; i < d->n && o < sizeof msg; i++) {
    wire_error e;
    memset(&e, 0, sizeof e);
    int rc = wire_schema_validate(d->schemas[i], v, &e);
    if (rc == WIRE_ENOMEM)
      return wire__error_set(err, rc, "out of memory");
    int w = snprintf(msg + o, sizeof msg - o, "%s [%zu] %s%s%s", i ? ";" : "", i,
                     e.path[0] ? e.path : "", e.path[0] ? ": " : "", e.message);
    if (w < 0)
      break;
    o += (size_t)w;
  }
  clear_location(err);
  return wire__error_set(err, WIRE_EUNKNOWN_MESSAGE, "%s", msg);
}
