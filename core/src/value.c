/*
 * value.c -- the per-message arena, the read API of values, the builder for
 * outgoing values, deep equality, and the codec-neutral wire_decode /
 * wire_encode entry points.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------- */

struct wire__chunk {
  wire__chunk *next; /* older chunk */
  size_t size;       /* usable bytes after the header */
  /* data follows, 8-byte aligned */
};

#define WIRE__CHUNK_HDR ((sizeof(wire__chunk) + 7u) & ~(size_t)7u)
#define WIRE__CHUNK_MIN 4096u

void wire__arena_init(wire__arena *a) {
  a->head = NULL;
  a->cur = a->end = NULL;
}

/* Free every chunk but the newest, which is the largest since chunk sizes
 * grow: a steady stream of similar messages then allocates nothing. */
void wire__arena_reset(wire__arena *a) {
  wire__chunk *c = a->head;
  if (c == NULL)
    return;
  wire__chunk *old = c->next;
  while (old != NULL) {
    wire__chunk *next = old->next;
    free(old);
    old = next;
  }
  c->next = NULL;
  a->cur = (char *)c + WIRE__CHUNK_HDR;
  a->end = a->cur + c->size;
}

void wire__arena_destroy(wire__arena *a) {
  wire__chunk *c = a->head;
  while (c != NULL) {
    wire__chunk *next = c->next;
    free(c);
    c = next;
  }
  wire__arena_init(a);
}

/* Start a new chunk at least twice the previous one and big enough for n
 * (already rounded to 8). NULL on overflow or when malloc fails. */
void *wire__arena_alloc_slow(wire__arena *a, size_t n) {
  size_t size = a->head ? a->head->size * 2 : WIRE__CHUNK_MIN;
  if (size < n)
    size = n;
  if (size > SIZE_MAX - WIRE__CHUNK_HDR)
    return NULL;
  wire__chunk *c = malloc(WIRE__CHUNK_HDR + size);
  if (c == NULL)
    return NULL;
  c->next = a->head;
  c->size = size;
  a->head = c;
  a->cur = (char *)c + WIRE__CHUNK_HDR + n;
  a->end = (char *)c + WIRE__CHUNK_HDR + size;
  return (char *)c + WIRE__CHUNK_HDR;
}

/* Grow the last allocation [p, p+old) to n bytes when it is the newest thing
 * in the current chunk; returns false when it cannot be grown in place. */
static bool arena_extend(wire__arena *a, void *p, size_t old, size_t n) {
  old = (old + 7u) & ~(size_t)7u;
  n = (n + 7u) & ~(size_t)7u;
  if ((char *)p + old != a->cur || (size_t)(a->end - (char *)p) < n)
    return false;
  a->cur = (char *)p + n;
  return true;
}

/* ---- growable byte buffer for encoders ---------------------------------- */

/* Make room for n more bytes; WIRE_ENOMEM when the arena cannot. Grows in
 * place when the buffer is the arena's newest allocation. */
int wire__buf_grow(wire__buf *b, size_t n) {
  if (n > SIZE_MAX / 2 - b->len)
    return WIRE_ENOMEM;
  size_t need = b->len + n;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap * 2 : 256;
  while (cap < need)
    cap *= 2;
  if (b->data != NULL && arena_extend(b->arena, b->data, b->cap, cap)) {
    b->cap = cap;
    return 0;
  }
  uint8_t *d = wire__arena_alloc(b->arena, cap);
  if (d == NULL)
    return WIRE_ENOMEM;
  if (b->len)
    memcpy(d, b->data, b->len);
  b->data = d;
  b->cap = cap;
  return 0;
}

/* ---- read API ------------------------------------------------------------ */

wire_type wire_value_type(const wire_value *v) {
  return v ? (wire_type)v->type : WIRE_NULL;
}

const char *wire_type_name(wire_type t) {
  static const char *const names[] = {"null",   "boolean", "integer", "integer", "number",
                                      "string", "binary",  "array",   "object"};
  return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

int wire_value_bool(const wire_value *v) {
  return v && v->type == WIRE_BOOL ? v->u.b : 0;
}

int64_t wire_value_int(const wire_value *v) {
  return v && v->type == WIRE_INT ? v->u.i : 0;
}

uint64_t wire_value_uint(const wire_value *v) {
  if (v == NULL)
    return 0;
  if (v->type == WIRE_UINT)
    return v->u.u;
  if (v->type == WIRE_INT && v->u.i >= 0)
    return (uint64_t)v->u.i;
  return 0;
}

double wire_value_double(const wire_value *v) {
  if (v == NULL)
    return 0.0;
  switch (v->type) {
  case WIRE_INT:
    return (double)v->u.i;
  case WIRE_UINT:
    return (double)v->u.u;
  case WIRE_DOUBLE:
    return v->u.d;
  default:
    return 0.0;
  }
}

const char *wire_value_string(const wire_value *v, size_t *len) {
  if (v == NULL || v->type != WIRE_STRING) {
    if (len)
      *len = 0;
    return NULL;
  }
  if (len)
    *len = v->u.s.len;
  return v->u.s.ptr;
}

const uint8_t *wire_value_binary(const wire_value *v, size_t *len) {
  if (v == NULL || v->type != WIRE_BINARY) {
    if (len)
      *len = 0;
    return NULL;
  }
  if (len)
    *len = v->u.s.len;
  return (const uint8_t *)v->u.s.ptr;
}

size_t wire_value_size(const wire_value *v) {
  if (v == NULL)
    return 0;
  if (v->type == WIRE_ARRAY)
    return v->u.a.len;
  if (v->type == WIRE_OBJECT)
    return v->u.o.len;
  return 0;
}

const wire_value *wire_value_at(const wire_value *v, size_t i) {
  if (v == NULL || v->type != WIRE_ARRAY || i >= v->u.a.len)
    return NULL;
  return &v->u.a.items[i];
}

const wire_value *wire_value_member(const wire_value *v, size_t i, wire_str *key) {
  if (v == NULL || v->type != WIRE_OBJECT || i >= v->u.o.len) {
    if (key) {
      key->ptr = NULL;
      key->len = 0;
    }
    return NULL;
  }
  const wire__member *m = &v->u.o.items[i];
  if (key) {
    key->ptr = m->key;
    key->len = m->key_len;
  }
  return &m->value;
}

/* The last member with that key wins, matching how bindings build maps. */
const wire_value *wire_value_get(const wire_value *v, const char *key, size_t key_len) {
  if (v == NULL || v->type != WIRE_OBJECT || (key == NULL && key_len))
    return NULL;
  for (size_t i = v->u.o.len; i-- > 0;) {
    const wire__member *m = &v->u.o.items[i];
    if (m->key_len == key_len && (key_len == 0 || memcmp(m->key, key, key_len) == 0))
      return &m->value;
  }
  return NULL;
}

/* ---- docs ---------------------------------------------------------------- */

int wire_doc_new(wire_doc **out) {
  if (out == NULL)
    return WIRE_EINVAL;
  wire_doc *d = malloc(sizeof *d);
  if (d == NULL)
    return WIRE_ENOMEM;
  wire__arena_init(&d->arena);
  *out = d;
  return 0;
}

void wire_doc_reset(wire_doc *doc) {
  if (doc)
    wire__arena_reset(&doc->arena);
}

void wire_doc_free(wire_doc *doc) {
  if (doc == NULL)
    return;
  wire__arena_destroy(&doc->arena);
  free(doc);
}

/* ---- builder ------------------------------------------------------------- */

static wire_value *new_value(wire_doc *doc, wire_type t) {
  if (doc == NULL)
    return NULL;
  wire_value *v = wire__arena_alloc(&doc->arena, sizeof *v);
  if (v == NULL)
    return NULL;
  memset(v, 0, sizeof *v);
  v->type = t;
  return v;
}

wire_value *wire_new_null(wire_doc *doc) {
  return new_value(doc, WIRE_NULL);
}

wire_value *wire_new_bool(wire_doc *doc, int b) {
  wire_value *v = new_value(doc, WIRE_BOOL);
  if (v)
    v->u.b = b != 0;
  return v;
}

wire_value *wire_new_int(wire_doc *doc, int64_t i) {
  wire_value *v = new_value(doc, WIRE_INT);
  if (v)
    v->u.i = i;
  return v;
}

/* Values that fit int64 are stored as WIRE_INT so both codecs and equality
 * see one canonical form. */
wire_value *wire_new_uint(wire_doc *doc, uint64_t u) {
  if (u <= (uint64_t)INT64_MAX)
    return wire_new_int(doc, (int64_t)u);
  wire_value *v = new_value(doc, WIRE_UINT);
  if (v)
    v->u.u = u;
  return v;
}

wire_value *wire_new_double(wire_doc *doc, double d) {
  wire_value *v = new_value(doc, WIRE_DOUBLE);
  if (v)
    v->u.d = d;
  return v;
}

/* Copy len bytes plus a NUL into the arena; NULL when out of memory. */
static char *copy_bytes(wire__arena *a, const void *p, size_t len) {
  if (len == SIZE_MAX)
    return NULL;
  char *s = wire__arena_alloc(a, len + 1);
  if (s == NULL)
    return NULL;
  if (len)
    memcpy(s, p, len);
  s[len] = 0;
  return s;
}

static wire_value *new_bytes(wire_doc *doc, wire_type t, const void *p, size_t len) {
  if (doc == NULL || (p == NULL && len))
    return NULL;
  char *s = copy_bytes(&doc->arena, p, len);
  wire_value *v = s ? new_value(doc, t) : NULL;
  if (v) {
    v->u.s.ptr = s;
    v->u.s.len = len;
  }
  return v;
}

wire_value *wire_new_string(wire_doc *doc, const char *s, size_t len) {
  return new_bytes(doc, WIRE_STRING, s, len);
}

wire_value *wire_new_binary(wire_doc *doc, const void *p, size_t len) {
  return new_bytes(doc, WIRE_BINARY, p, len);
}

wire_value *wire_new_array(wire_doc *doc, size_t hint) {
  wire_value *v = new_value(doc, WIRE_ARRAY);
  if (v && hint) {
    if (hint > SIZE_MAX / sizeof(wire_value))
      return NULL;
    v->u.a.items = wire__arena_alloc(&doc->arena, hint * sizeof(wire_value));
    if (v->u.a.items == NULL)
      return NULL;
    v->u.a.cap = hint;
  }
  return v;
}

wire_value *wire_new_object(wire_doc *doc, size_t hint) {
  wire_value *v = new_value(doc, WIRE_OBJECT);
  if (v && hint) {
    if (hint > SIZE_MAX / sizeof(wire__member))
      return NULL;
    v->u.o.items = wire__arena_alloc(&doc->arena, hint * sizeof(wire__member));
    if (v->u.o.items == NULL)
      return NULL;
    v->u.o.cap = hint;
  }
  return v;
}

/* Double the capacity of a contiguous item array (in place when possible).
 * Returns the (maybe moved) items, or NULL when out of memory. */
static void *grow_items(wire__arena *a, void *items, size_t len, size_t *cap, size_t size) {
  size_t ncap = *cap ? *cap * 2 : 4;
  if (ncap > SIZE_MAX / size)
    return NULL;
  if (items && arena_extend(a, items, *cap * size, ncap * size)) {
    *cap = ncap;
    return items;
  }
  void *n = wire__arena_alloc(a, ncap * size);
  if (n == NULL)
    return NULL;
  if (len)
    memcpy(n, items, len * size);
  *cap = ncap;
  return n;
}

wire_value *wire_array_push(wire_doc *doc, wire_value *arr, const wire_value *item) {
  if (doc == NULL || arr == NULL || item == NULL || arr->type != WIRE_ARRAY)
    return NULL;
  if (arr->u.a.len == arr->u.a.cap) {
    wire_value tmp = *item; /* item may live in the array being moved */
    wire_value *n =
        grow_items(&doc->arena, arr->u.a.items, arr->u.a.len, &arr->u.a.cap, sizeof(wire_value));
    if (n == NULL)
      return NULL;
    arr->u.a.items = n;
    arr->u.a.items[arr->u.a.len] = tmp;
    return &arr->u.a.items[arr->u.a.len++];
  }
  arr->u.a.items[arr->u.a.len] = *item;
  return &arr->u.a.items[arr->u.a.len++];
}

wire_value *wire_object_set(wire_doc *doc, wire_value *obj, const char *key, size_t key_len,
                            const wire_value *item) {
  if (doc == NULL || obj == NULL || item == NULL || obj->type != WIRE_OBJECT ||
      (key == NULL && key_len))
    return NULL;
  wire_value tmp = *item;
  char *k = copy_bytes(&doc->arena, key, key_len);
  if (k == NULL)
    return NULL;
  if (obj->u.o.len == obj->u.o.cap) {
    wire__member *n =
        grow_items(&doc->arena, obj->u.o.items, obj->u.o.len, &obj->u.o.cap, sizeof(wire__member));
    if (n == NULL)
      return NULL;
    obj->u.o.items = n;
  }
  wire__member *m = &obj->u.o.items[obj->u.o.len++];
  m->key = k;
  m->key_len = key_len;
  m->value = tmp;
  return &m->value;
}

/* ---- numbers ------------------------------------------------------------- */

static bool is_number(uint32_t t) {
  return t == WIRE_INT || t == WIRE_UINT || t == WIRE_DOUBLE;
}

/* Mathematical equality of two numbers of any representation. */
static bool number_equal(const wire_value *a, const wire_value *b) {
  if (a->type == WIRE_DOUBLE && b->type == WIRE_DOUBLE)
    return a->u.d == b->u.d;
  if (a->type == WIRE_DOUBLE || b->type == WIRE_DOUBLE) {
    const wire_value *d = a->type == WIRE_DOUBLE ? a : b;
    const wire_value *n = a->type == WIRE_DOUBLE ? b : a;
    double x = d->u.d;
    if (x != x || x < -9223372036854775808.0 || x >= 18446744073709551616.0)
      return false;
    if (n->type == WIRE_INT) {
      if (x >= 9223372036854775808.0)
        return false;
      return (double)(int64_t)x == x && (int64_t)x == n->u.i;
    }
    if (x < 0)
      return false;
    return (double)(uint64_t)x == x && (uint64_t)x == n->u.u;
  }
  if (a->type == b->type)
    return a->type == WIRE_INT ? a->u.i == b->u.i : a->u.u == b->u.u;
  return false; /* INT vs UINT: a UINT is always above INT64_MAX */
}

/* ---- members that count ------------------------------------------------ */

/* With duplicate keys the last member of each key counts (wire_value_get
 * finds it). Equality and hashing look only at those members, and compare
 * each of them once: comparing every member would compare a nested value
 * once per duplicate of its key, which multiplies level by level (a few
 * hundred bytes of nested duplicates would take hours). */

#define WIRE__SMALL_OBJECT 8u /* up to this many members: scan, no sort */

static bool same_key(const wire__member *a, const wire__member *b) {
  return a->key_len == b->key_len && (a->key_len == 0 || memcmp(a->key, b->key, a->key_len) == 0);
}

/* Whether items[i] is the last member of its key. */
static bool counts(const wire__member *items, size_t len, size_t i) {
  for (size_t j = i + 1; j < len; j++)
    if (same_key(&items[i], &items[j]))
      return false;
  return true;
}

static int member_cmp(const void *pa, const void *pb) {
  const wire__member *a = *(const wire__member *const *)pa;
  const wire__member *b = *(const wire__member *const *)pb;
  size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
  int c = n ? memcmp(a->key, b->key, n) : 0;
  if (c)
    return c;
  if (a->key_len != b->key_len)
    return a->key_len < b->key_len ? -1 : 1;
  return a < b ? -1 : a > b; /* the same key: in member order */
}

/* The members of object v that count, sorted by key, into a new array
 * (free it); NULL when out of memory. */
static const wire__member **sorted_members(const wire_value *v, size_t *n_out) {
  size_t n = v->u.o.len;
  const wire__member **m = malloc((n ? n : 1) * sizeof *m);
  if (m == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    m[i] = &v->u.o.items[i];
  qsort(m, n, sizeof *m, member_cmp);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (i + 1 == n || !same_key(m[i], m[i + 1]))
      m[k++] = m[i];
  *n_out = k;
  return m;
}

/* ---- equality ------------------------------------------------------------ */

/* Objects by scanning: each member of a that counts is compared once with
 * the member of b that counts for its key. Quadratic in the member count,
 * so for small objects (or when sorting cannot get memory). */
static bool object_equal_scan(const wire_value *a, const wire_value *b) {
  size_t na = 0, nb = 0;
  for (size_t i = 0; i < a->u.o.len; i++) {
    const wire__member *m = &a->u.o.items[i];
    if (!counts(a->u.o.items, a->u.o.len, i))
      continue;
    const wire_value *y = wire_value_get(b, m->key, m->key_len);
    if (y == NULL || !wire__value_equal(&m->value, y))
      return false;
    na++;
  }
  for (size_t i = 0; i < b->u.o.len; i++)
    nb += counts(b->u.o.items, b->u.o.len, i);
  return na == nb;
}

static bool object_equal(const wire_value *a, const wire_value *b) {
  if (a->u.o.len <= WIRE__SMALL_OBJECT && b->u.o.len <= WIRE__SMALL_OBJECT)
    return object_equal_scan(a, b);
  size_t na, nb;
  const wire__member **ma = sorted_members(a, &na);
  const wire__member **mb = ma ? sorted_members(b, &nb) : NULL;
  if (mb == NULL) {
    free(ma);
    return object_equal_scan(a, b);
  }
  bool eq = na == nb;
  for (size_t i = 0; eq && i < na; i++)
    eq = same_key(ma[i], mb[i]) && wire__value_equal(&ma[i]->value, &mb[i]->value);
  free(ma);
  free(mb);
  return eq;
}

/* JSON Schema equality: numbers by value, objects ignoring member order
 * (with duplicate keys, the last member of each key counts). */
bool wire__value_equal(const wire_value *a, const wire_value *b) {
  if (is_number(a->type) && is_number(b->type))
    return number_equal(a, b);
  if (a->type != b->type)
    return false;
  switch (a->type) {
  case WIRE_NULL:
    return true;
  case WIRE_BOOL:
    return (a->u.b != 0) == (b->u.b != 0);
  case WIRE_STRING:
  case WIRE_BINARY:
    return a->u.s.len == b->u.s.len &&
           (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
  case WIRE_ARRAY:
    if (a->u.a.len != b->u.a.len)
      return false;
    for (size_t i = 0; i < a->u.a.len; i++)
      if (!wire__value_equal(&a->u.a.items[i], &b->u.a.items[i]))
        return false;
    return true;
  case WIRE_OBJECT:
    return object_equal(a, b);
  default:
    return false;
  }
}

/* ---- hashing ------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n) {
  h = mix64(h ^ (uint64_t)n);
  uint64_t w;
  for (; n >= 8; p += 8, n -= 8) {
    memcpy(&w, p, 8);
    h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
  }
  w = 0;
  if (n)
    memcpy(&w, p, n);
  return mix64(h ^ w);
}

/* Equal values (wire__value_equal) hash alike: a number by its value
 * whatever its representation, an object by the members that count, in
 * any order. */
uint64_t wire__value_hash(const wire_value *v) {
  switch (v->type) {
  case WIRE_NULL:
    return 0x6e756c6cULL;
  case WIRE_BOOL:
    return v->u.b ? 0x74727565ULL : 0x66616c73ULL;
  case WIRE_INT:
    return mix64((uint64_t)v->u.i ^ 0x4e554dULL);
  case WIRE_UINT:
    return mix64(v->u.u ^ 0x4e554dULL);
  case WIRE_DOUBLE: {
    double x = v->u.d;
    if (x == x && x >= -9223372036854775808.0 && x < 9223372036854775808.0 &&
        (double)(int64_t)x == x)
      return mix64((uint64_t)(int64_t)x ^ 0x4e554dULL);
    if (x >= 9223372036854775808.0 && x < 18446744073709551616.0 && (double)(uint64_t)x == x)
      return mix64((uint64_t)x ^ 0x4e554dULL);
    uint64_t bits;
    memcpy(&bits, &x, 8);
    return mix64(bits ^ 0x444f55ULL);
  }
  case WIRE_STRING:
    return hash_bytes(0x535452ULL, v->u.s.ptr, v->u.s.len);
  case WIRE_BINARY:
    return hash_bytes(0x42494eULL, v->u.s.ptr, v->u.s.len);
  case WIRE_ARRAY: {
    uint64_t h = mix64(0x415252ULL ^ (uint64_t)v->u.a.len);
    for (size_t i = 0; i < v->u.a.len; i++)
      h = mix64(h + wire__value_hash(&v->u.a.items[i]));
    return h;
  }
  case WIRE_OBJECT: {
    /* a sum over the members that count: the order does not matter */
    uint64_t sum = 0;
    size_t len = v->u.o.len, n = 0;
    const wire__member **m = len > WIRE__SMALL_OBJECT ? sorted_members(v, &n) : NULL;
    if (m != NULL) {
      for (size_t i = 0; i < n; i++)
        sum += mix64(hash_bytes(0x4b4559ULL, m[i]->key, m[i]->key_len) ^
                     (wire__value_hash(&m[i]->value) * 0x9e3779b97f4a7c15ULL));
      free(m);
    } else {
      for (size_t i = 0; i < len; i++) {
        const wire__member *e = &v->u.o.items[i];
        if (!counts(v->u.o.items, len, i))
          continue;
        sum += mix64(hash_bytes(0x4b4559ULL, e->key, e->key_len) ^
                     (wire__value_hash(&e->value) * 0x9e3779b97f4a7c15ULL));
        n++;
      }
    }
    return mix64(sum ^ mix64(0x4f424aULL + n));
  }
  default:
    return 0;
  }
}

/* ---- duplicates in an array ---------------------------------------------- */

typedef struct {
  uint64_t h;
  size_t i;
} hashed_item;

static int hashed_cmp(const void *pa, const void *pb) {
  const hashed_item *a = pa, *b = pb;
  if (a->h != b->h)
    return a->h < b->h ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

/* The first pair of equal items in the order a pairwise scan finds it: the
 * smallest *second index with an equal item before it, and the first such
 * item. Items are hashed and sorted, so only items with the same hash are
 * compared: n log n rather than n squared. */
bool wire__array_duplicate(const wire_value *items, size_t len, size_t *first, size_t *second) {
  if (len < 2)
    return false;
  hashed_item *hs = len > 16 ? malloc(len * sizeof *hs) : NULL;
  if (hs == NULL) {
    for (size_t i = 1; i < len; i++)
      for (size_t j = 0; j < i; j++)
        if (wire__value_equal(&items[i], &items[j])) {
          *first = j;
          *second = i;
          return true;
        }
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    hs[i].h = wire__value_hash(&items[i]);
    hs[i].i = i;
  }
  qsort(hs, len, sizeof *hs, hashed_cmp);
  bool found = false;
  size_t best_j = 0, best_i = 0;
  for (size_t s = 0; s < len;) {
    size_t e = s + 1;
    while (e < len && hs[e].h == hs[s].h)
      e++;
    /* a run of one hash, in index order */
    for (size_t x = s + 1; x < e; x++) {
      if (found && hs[x].i >= best_i)
        break;
      size_t y;
      for (y = s; y < x; y++)
        if (wire__value_equal(&items[hs[x].i], &items[hs[y].i]))
          break;
      if (y < x) {
        found = true;
        best_i = hs[x].i;
        best_j = hs[y].i;
        break;
      }
    }
    s = e;
  }
  free(hs);
  if (found) {
    *first = best_j;
    *second = best_i;
  }
  return found;
}

/* ---- codec entry points -------------------------------------------------- */

int wire_decode(wire_doc *doc, wire_codec codec, const void *buf, size_t len, unsigned max_depth,
                const wire_value **out, wire_error *err) {
  if (doc == NULL || out == NULL || (buf == NULL && len))
    return wire__error_set(err, WIRE_EINVAL, "invalid argument");
  if (max_depth == 0)
    max_depth = WIRE_JSON_DEFAULT_MAX_DEPTH;
  static const char empty[1] = {0};
  if (buf == NULL)
    buf = empty;
  if (err)
    err->offset = 0;
  switch (codec) {
  case WIRE_CODEC_JSON:
    return wire__json_decode(&doc->arena, buf, len, max_depth, out, err);
  case WIRE_CODEC_MSGPACK:
    return wire__msgpack_decode(&doc->arena, buf, len, max_depth, out, err);
  default:
    return wire__error_set(err, WIRE_EINVAL, "codec has no decoder");
  }
}

int wire_encode(wire_doc *doc, wire_codec codec, const wire_value *v, const uint8_t **out,
                size_t *out_len, wire_error *err) {
  if (doc == NULL || v == NULL || out == NULL || out_len == NULL)
    return wire__error_set(err, WIRE_EINVAL, "invalid argument");
  wire__buf b = {&doc->arena, NULL, 0, 0};
  int rc;
  switch (codec) {
  case WIRE_CODEC_JSON:
    rc = wire__json_encode(&b, v, err);
    break;
  case WIRE_CODEC_MSGPACK:
    rc = wire__msgpack_encode(&b, v, err);
    break;
  default:
    return wire__error_set(err, WIRE_EINVAL, "codec has no encoder");
  }
  if (rc < 0)
    return rc;
  if (b.data == NULL && wire__buf_grow(&b, 1) < 0)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  *out = b.data;
  *out_len = b.len;
  return 0;
}
