/*
 * client_limits.c -- per-client limits: the remote address behind trusted
 * proxies (X-Forwarded-For, Forwarded: for=), connections and upgrade
 * requests per remote address (a seeded hash table, bounded, entries freed
 * once idle), and the message and byte token buckets of each connection.
 * Nothing here runs unless an option turns it on.
 */
#include "client_limits.h"
#include "conn_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One address (IPv6 keyed by its /64): its connections and its upgrade
 * bucket (thousandths of a request). */
struct wire__addr {
  struct wire__addr *next;
  uint8_t key[16];
  uint32_t conns;
  uint64_t tokens, last; /* handshake bucket, refilled at `last` (loop ms) */
};

typedef struct wire__cidr {
  uint8_t key[16];
  unsigned bits;
} wire__cidr;

struct wire__climits {
  wire__addr **tab;
  size_t n, cap; /* entries, buckets (a power of two) */
  uint64_t seed;
  uint64_t last_sweep;
  unsigned per_addr, hs_rate, hs_burst;
  wire__cidr *proxies;
  size_t n_proxies;
};

/* One connection's share: its address's entry (NULL when not counted),
 * and, when `rated`, its buckets in thousandths of a message and of a byte,
 * refilled at `last` (loop ms). Allocated only when a limit applies. */
struct wire__client {
  wire__addr *addr;
  uint64_t msgs, bytes, last;
  int rated;
};

#define MILLI 1000u
#define HOPS_MAX 32 /* forwarded hops examined, rightmost first */

/* ---- token buckets ---------------------------------------------------------- */

/* Refill (rate per second, capacity burst, both whole units) up to now, then
 * take cost units if they are there. Returns 1 when taken. */
static int bucket_take(uint64_t *tokens, uint64_t *last, uint64_t now, uint64_t rate,
                       uint64_t burst, uint64_t cost) {
  uint64_t cap = burst * MILLI;
  if (now > *last) {
    uint64_t add = (now - *last) * rate; /* rate per s = rate milli-units per ms */
    *tokens = add >= cap - *tokens ? cap : *tokens + add;
    *last = now;
  }
  if (*tokens < cost * MILLI)
    return 0;
  *tokens -= cost * MILLI;
  return 1;
}

/* Byte counts are kept under 2^40 so thousandths fit in 64 bits. */
static uint64_t clamp40(uint64_t v) {
  return v > ((uint64_t)1 << 40) ? (uint64_t)1 << 40 : v;
}

/* ---- addresses ----------------------------------------------------------- */

int wire__cidr_parse(const char *text, size_t len, uint8_t key[16], unsigned *bits) {
  char buf[64];
  if (len == 0 || len >= sizeof buf)
    return WIRE_EINVAL;
  memcpy(buf, text, len);
  buf[len] = 0;
  char *slash = strchr(buf, '/');
  long prefix = -1;
  if (slash) {
    char *end;
    *slash = 0;
    prefix = strtol(slash + 1, &end, 10);
    if (slash[1] < '0' || slash[1] > '9' || *end || prefix < 0 || prefix > 128)
      return WIRE_EINVAL;
  }
  char *a = buf;
  size_t al = strlen(a);
  if (al >= 2 && a[0] == '[' && a[al - 1] == ']') {
    a[al - 1] = 0;
    a++;
  }
  memset(key, 0, 16);
  if (inet_pton(AF_INET, a, key + 12) == 1) {
    key[10] = key[11] = 0xff;
    if (prefix > 32)
      return WIRE_EINVAL;
    *bits = prefix < 0 ? 128 : 96 + (unsigned)prefix;
    return 0;
  }
  if (inet_pton(AF_INET6, a, key) != 1)
    return WIRE_EINVAL;
  *bits = prefix < 0 ? 128 : (unsigned)prefix;
  return 0;
}

/* Does key fall in the network? */
static int cidr_has(const wire__cidr *n, const uint8_t key[16]) {
  unsigned full = n->bits / 8, rest = n->bits % 8;
  if (memcmp(n->key, key, full) != 0)
    return 0;
  if (rest == 0)
    return 1;
  uint8_t mask = (uint8_t)(0xff00u >> rest);
  return (n->key[full] & mask) == (key[full] & mask);
}

static int trusted(const wire__climits *cl, const uint8_t key[16]) {
  for (size_t i = 0; i < cl->n_proxies; i++)
    if (cidr_has(&cl->proxies[i], key))
      return 1;
  return 0;
}

/* A forwarded hop: "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80", maybe quoted
 * (Forwarded). Returns 0 with the key, or -1 ("unknown", "_hidden", junk). */
static int hop_parse(wire_str h, uint8_t key[16]) {
  const char *p = h.ptr;
  size_t n = h.len;
  while (n && (*p == ' ' || *p == '\t'))
    p++, n--;
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
    n--;
  if (n >= 2 && p[0] == '"' && p[n - 1] == '"')
    p++, n -= 2;
  if (n && p[0] == '[') {
    const char *close = memchr(p, ']', n);
    if (!close)
      return -1;
    n = (size_t)(close - p) + 1;
  } else {
    const char *colon = memchr(p, ':', n);
    if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - p) - 1))
      n = (size_t)(colon - p); /* IPv4 with a port */
  }
  unsigned bits;
  if (memchr(p, '/', n) || wire__cidr_parse(p, n, key, &bits) != 0)
    return -1;
  return 0;
}

/* The hops of every header `name`, split at commas, rightmost HOPS_MAX kept
 * in order; Forwarded keeps only each element's for= value. Returns the
 * count. */
static size_t collect_hops(const wire_request *req, const char *name, int fwd,
                           wire_str hops[HOPS_MAX]) {
  size_t n = 0;
  for (size_t i = 0; wire__request_find_header(req, name, &i); i++) {
    wire_str v = req->headers[i].value;
    for (size_t s = 0; s <= v.len;) {
      size_t e = s;
      while (e < v.len && v.ptr[e] != ',')
        e++;
      wire_str h = {v.ptr + s, e - s};
      s = e + 1;
      if (fwd) { /* "for=x;proto=https": find the for= pair */
        wire_str f = {NULL, 0};
        for (size_t a = 0; a < h.len;) {
          size_t b = a;
          while (b < h.len && h.ptr[b] != ';')
            b++;
          size_t k = a;
          while (k < b && (h.ptr[k] == ' ' || h.ptr[k] == '\t'))
            k++;
          if (b - k > 4 && strncasecmp(h.ptr + k, "for=", 4) == 0)
            f = (wire_str){h.ptr + k + 4, b - k - 4};
          a = b + 1;
        }
        if (f.ptr == NULL)
          continue;
        h = f;
      }
      if (n == HOPS_MAX) {
        memmove(hops, hops + 1, (HOPS_MAX - 1) * sizeof *hops);
        n--;
      }
      hops[n++] = h;
    }
  }
  return n;
}

/* Behind a trusted peer: the rightmost forwarded hop that is not a trusted
 * proxy (or the last parseable one before junk, or the leftmost) becomes the
 * remote address. key holds the peer and is updated. */
static void resolve_forwarded(const wire__climits *cl, wire_request *req, uint8_t key[16]) {
  if (!trusted(cl, key))
    return;
  wire_str hops[HOPS_MAX];
  size_t n = collect_hops(req, "x-forwarded-for", 0, hops);
  if (n == 0)
    n = collect_hops(req, "forwarded", 1, hops);
  int moved = 0;
  while (n > 0) {
    uint8_t hop[16];
    if (hop_parse(hops[--n], hop) != 0)
      break;
    memcpy(key, hop, 16);
    moved = 1;
    if (!trusted(cl, hop))
      break;
  }
  if (!moved)
    return;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(key, v4, 12) == 0) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    memcpy(&in->sin_addr, key + 12, 4);
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    memcpy(&in6->sin6_addr, key, 16);
  }
  wire__request_set_peer(req, (struct sockaddr *)&ss);
}

/* ---- the address table ----------------------------------------------------- */

static size_t slot_of(const wire__climits *cl, const uint8_t key[16]) {
  uint64_t h = cl->seed;
  for (int i = 0; i < 16; i++)
    h = (h ^ key[i]) * 0x100000001b3ull;
  h ^= h >> 29;
  return (size_t)(h & (cl->cap - 1));
}

/* An entry nobody holds whose bucket would be full now. */
static int idle(const wire__climits *cl, const wire__addr *a, uint64_t now) {
  if (a->conns > 0)
    return 0;
  if (cl->hs_rate == 0)
    return 1;
  uint64_t cap = (uint64_t)cl->hs_burst * MILLI;
  return a->tokens >= cap || (now - a->last) * cl->hs_rate >= cap - a->tokens;
}

/* Free every idle entry. */
static void sweep(wire__climits *cl, uint64_t now) {
  cl->last_sweep = now;
  for (size_t i = 0; i < cl->cap; i++)
    for (wire__addr **pp = &cl->tab[i]; *pp;) {
      wire__addr *a = *pp;
      if (idle(cl, a, now)) {
        *pp = a->next;
        free(a);
        cl->n--;
      } else {
        pp = &a->next;
      }
    }
}

/* Double the buckets (best effort: a failed grow keeps longer chains). */
static void grow(wire__climits *cl) {
  size_t ncap = cl->cap * 2;
  wire__addr **nt = calloc(ncap, sizeof *nt);
  if (nt == NULL)
    return;
  wire__addr **old = cl->tab;
  size_t ocap = cl->cap;
  cl->tab = nt;
  cl->cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    while (old[i]) {
      wire__addr *a = old[i];
      old[i] = a->next;
      size_t k = slot_of(cl, a->key);
      a->next = nt[k];
      nt[k] = a;
    }
  free(old);
}

/* Find or add the entry for key (IPv6 already cut to its /64). NULL when
 * the table is full of live entries or memory ran out (*full says which). */
static wire__addr *lookup(wire__climits *cl, const uint8_t key[16], uint64_t now, int *full) {
  *full = 0;
  for (wire__addr *a = cl->tab[slot_of(cl, key)]; a; a = a->next)
    if (memcmp(a->key, key, 16) == 0)
      return a;
  if (cl->n >= WIRE__ADDR_MAX || now - cl->last_sweep >= 1000)
    sweep(cl, now);
  if (cl->n >= WIRE__ADDR_MAX) {
    *full = 1;
    return NULL;
  }
  if (cl->n >= cl->cap)
    grow(cl);
  wire__addr *a = calloc(1, sizeof *a);
  if (a == NULL)
    return NULL;
  memcpy(a->key, key, 16);
  a->tokens = (uint64_t)cl->hs_burst * MILLI;
  a->last = now;
  size_t k = slot_of(cl, key);
  a->next = cl->tab[k];
  cl->tab[k] = a;
  cl->n++;
  return a;
}

static void entry_free(wire__climits *cl, wire__addr *a) {
  for (wire__addr **pp = &cl->tab[slot_of(cl, a->key)]; *pp; pp = &(*pp)->next)
    if (*pp == a) {
      *pp = a->next;
      free(a);
      cl->n--;
      return;
    }
}

/* ---- server ---------------------------------------------------------------- */

int wire__climits_new(wire_server *s, const wire_server_options *o) {
  size_t np = o->trusted_proxies ? o->n_trusted_proxies : 0;
  if (o->max_connections_per_address == 0 && o->handshake_rate == 0 && np == 0)
    return 0;
  wire__climits *cl = calloc(1, sizeof *cl);
  if (cl == NULL)
    return WIRE_ENOMEM;
  cl->cap = 64;
  cl->tab = calloc(cl->cap, sizeof *cl->tab);
  cl->proxies = np ? calloc(np, sizeof *cl->proxies) : NULL;
  s->climits = cl;
  if (cl->tab == NULL || (np && cl->proxies == NULL))
    return WIRE_ENOMEM;
  for (size_t i = 0; i < np; i++) {
    const char *t = o->trusted_proxies[i];
    if (t == NULL || wire__cidr_parse(t, strlen(t), cl->proxies[i].key, &cl->proxies[i].bits))
      return WIRE_EINVAL;
  }
  cl->n_proxies = np;
  cl->per_addr = o->max_connections_per_address;
  cl->hs_rate = o->handshake_rate;
  cl->hs_burst = o->handshake_burst ? o->handshake_burst : o->handshake_rate;
  cl->seed = 0xcbf29ce484222325ull ^ uv_hrtime() ^ (uint64_t)(uintptr_t)cl;
  return 0;
}

size_t wire__climits_tracked(const wire_server *s) {
  return s->climits ? s->climits->n : 0;
}

void wire__climits_free(wire_server *s) {
  wire__climits *cl = s->climits;
  if (cl == NULL)
    return;
  for (size_t i = 0; cl->tab && i < cl->cap; i++)
    while (cl->tab[i]) {
      wire__addr *a = cl->tab[i];
      cl->tab[i] = a->next;
      free(a);
    }
  free(cl->tab);
  free(cl->proxies);
  free(cl);
  s->climits = NULL;
}

int wire__climits_resolve(const wire_server *s, wire_request *req, uint8_t key[16]) {
  unsigned bits;
  if (req->remote_addr[0] == 0 ||
      wire__cidr_parse(req->remote_addr, strlen(req->remote_addr), key, &bits) != 0)
    return -1;
  if (s->climits != NULL)
    resolve_forwarded(s->climits, req, key);
  return 0;
}

/* The connection's block, allocated on first use; NULL when memory ran out. */
static wire__client *client_of(wire_conn *c) {
  wire__cx *x = wire__conn_extras(c);
  if (x != NULL && x->client == NULL)
    x->client = calloc(1, sizeof *x->client);
  return x ? x->client : NULL;
}

int wire__climits_admit(wire_conn *c, const char **why) {
  wire_server *s = WIRE__SRV(c);
  wire__climits *cl = s->climits;
  uint8_t key[16];
  if (cl == NULL || wire__climits_resolve(s, c->req, key) != 0)
    return 0; /* no limits, or no address (memory transport) */
  if (cl->per_addr == 0 && cl->hs_rate == 0)
    return 0;
  static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(key, v4, 12) != 0)
    memset(key + 8, 0, 8); /* IPv6: one /64 is one client */
  uint64_t now = uv_now(s->loop);
  int full;
  wire__addr *a = lookup(cl, key, now, &full);
  if (a == NULL) {
    if (!full)
      return 500;
    s->stats.refused_per_address++;
    *why = "too many client addresses";
    return 429;
  }
  if (cl->hs_rate && !bucket_take(&a->tokens, &a->last, now, cl->hs_rate, cl->hs_burst, 1)) {
    s->stats.refused_handshake_rate++;
    *why = "too many upgrade requests from this address";
    return 429;
  }
  if (cl->per_addr && a->conns >= cl->per_addr) {
    s->stats.refused_per_address++;
    *why = "too many connections from this address";
    return 429;
  }
  wire__client *cc = client_of(c);
  if (cc == NULL)
    return 500;
  a->conns++;
  cc->addr = a;
  return 0;
}

/* ---- per connection ------------------------------------------------------------ */

int wire__rate_attach(wire_conn *c) {
  const wire_endpoint_options *o = &c->ep->opts;
  if (o->message_rate == 0 && o->byte_rate == 0)
    return 0;
  wire__client *r = client_of(c);
  if (r == NULL)
    return WIRE_ENOMEM;
  r->msgs = (uint64_t)o->message_burst * MILLI;
  r->bytes = clamp40(o->byte_burst) * MILLI;
  r->last = uv_now(WIRE__SRV(c)->loop);
  r->rated = 1;
  return 0;
}

int wire__rate_admit(wire_conn *c, size_t len) {
  const wire_endpoint_options *o = &c->ep->opts;
  wire__client *r = c->x->client;
  if (!r->rated)
    return 1; /* counted per address only */
  wire_server *s = WIRE__SRV(c);
  uint64_t now = uv_now(s->loop), mlast = r->last, blast = r->last;
  uint64_t msgs = r->msgs, bytes = r->bytes;
  int ok = 1;
  if (o->message_rate)
    ok = bucket_take(&msgs, &mlast, now, o->message_rate, o->message_burst, 1);
  if (ok && o->byte_rate)
    ok = bucket_take(&bytes, &blast, now, clamp40(o->byte_rate), clamp40(o->byte_burst),
                     clamp40(len));
  if (ok) { /* both taken, or neither: a refused message costs nothing */
    r->msgs = msgs;
    r->bytes = bytes;
    r->last = now;
    return 1;
  }
  if (o->rate_limit_action == WIRE_RATE_CLOSE) {
    s->stats.rate_limited_closed++;
    wire_conn_close(c, 1008, "rate limit", 10);
  } else {
    s->stats.rate_limited_dropped++;
  }
  return 0;
}

void wire__climits_conn_end(wire_conn *c) {
  wire__client *cc = c->x ? c->x->client : NULL;
  if (cc == NULL)
    return;
  c->x->client = NULL;
  wire__addr *a = cc->addr;
  free(cc);
  if (a == NULL)
    return;
  wire__climits *cl = WIRE__SRV(c)->climits;
  a->conns--;
  if (idle(cl, a, uv_now(WIRE__SRV(c)->loop)))
    entry_free(cl, a);
}
