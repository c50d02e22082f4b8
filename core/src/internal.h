/*
 * internal.h -- declarations shared between core files, never installed.
 *
 * It owns the in-memory layout of values and the arena they live in, so the
 * codecs, the validator and the dispatcher can read values without a call per
 * node. Anything here may change between releases; bindings use wirecore.h.
 */
#ifndef WIRE_INTERNAL_H
#define WIRE_INTERNAL_H

#include "wirecore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WIRE_HIDDEN __attribute__((visibility("hidden")))

/* ---- arena ------------------------------------------------------------- */

/* A bump allocator made of chunks. Allocation never frees; reset keeps the
 * newest chunk (the largest: sizes double) and drops the rest, so a steady
 * stream of similar messages allocates nothing after warm-up. */
typedef struct wire__chunk wire__chunk;
typedef struct wire__arena {
  wire__chunk *head; /* current chunk (newest) */
  char *cur, *end;
} wire__arena;

WIRE_HIDDEN void wire__arena_init(wire__arena *a);
WIRE_HIDDEN void wire__arena_reset(wire__arena *a);
WIRE_HIDDEN void wire__arena_destroy(wire__arena *a);
/* 8-byte aligned; NULL when memory runs out. */
WIRE_HIDDEN void *wire__arena_alloc_slow(wire__arena *a, size_t n);
static inline void *wire__arena_alloc(wire__arena *a, size_t n) {
  n = (n + 7u) & ~(size_t)7u;
  if ((size_t)(a->end - a->cur) >= n) {
    void *p = a->cur;
    a->cur += n;
    return p;
  }
  return wire__arena_alloc_slow(a, n);
}

/* ---- values ------------------------------------------------------------ */

typedef struct wire__member wire__member;

struct wire_value {
  uint32_t type; /* wire_type */
  uint32_t pad_;
  union {
    int b;
    int64_t i;
    uint64_t u;
    double d;
    struct {
      const char *ptr;
      size_t len;
    } s; /* STRING, BINARY (ptr[len] == 0) */
    struct {
      wire_value *items;
      size_t len, cap;
    } a; /* ARRAY: contiguous */
    struct {
      wire__member *items;
      size_t len, cap;
    } o; /* OBJECT: contiguous, input order */
  } u;
};

struct wire__member {
  const char *key; /* NUL-terminated */
  size_t key_len;
  wire_value value;
};

struct wire_doc {
  wire__arena arena;
};

/* Fill `err` (may be NULL) with a code and a printf-style message. */
WIRE_HIDDEN int wire__error_set(wire_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- codecs (json.c, msgpack.c) --------------------------------------- */

WIRE_HIDDEN int wire__json_decode(wire__arena *a, const char *buf, size_t len, unsigned max_depth,
                                  const wire_value **out, wire_error *err);
WIRE_HIDDEN int wire__msgpack_decode(wire__arena *a, const uint8_t *buf, size_t len,
                                     unsigned max_depth, const wire_value **out, wire_error *err);
/* Encoders append to a growable buffer allocated in the arena. */
typedef struct wire__buf {
  wire__arena *arena;
  uint8_t *data;
  size_t len, cap;
} wire__buf;
/* Make room for n more bytes (in place when the buffer is the arena's newest
 * allocation). 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__buf_grow(wire__buf *b, size_t n);
static inline int wire__buf_reserve(wire__buf *b, size_t n) {
  return n <= b->cap - b->len ? 0 : wire__buf_grow(b, n);
}
WIRE_HIDDEN int wire__json_encode(wire__buf *b, const wire_value *v, wire_error *err);
WIRE_HIDDEN int wire__msgpack_encode(wire__buf *b, const wire_value *v, wire_error *err);

/* UTF-8 check (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
WIRE_HIDDEN bool wire__utf8_valid(const uint8_t *s, size_t len);
/* Length of the valid multi-byte sequence starting at s (s[0] >= 0x80), or 0
 * when it is invalid or runs past `end`. */
WIRE_HIDDEN size_t wire__utf8_seq(const uint8_t *s, const uint8_t *end);

/* Incremental UTF-8 validation (utf8.c): feed bytes in any pieces; the state
 * is WIRE__UTF8_OK when complete, WIRE__UTF8_BAD once rejected (sticky). */
WIRE_HIDDEN uint32_t wire__utf8_step(uint32_t state, const uint8_t *s, size_t len);
#define WIRE__UTF8_OK 0u
#define WIRE__UTF8_BAD 1u

/* Deep equality as JSON Schema defines it (1 == 1.0, objects unordered). */
WIRE_HIDDEN bool wire__value_equal(const wire_value *a, const wire_value *b);
/* A hash that equal values (wire__value_equal) share. */
WIRE_HIDDEN uint64_t wire__value_hash(const wire_value *v);
/* Whether two of the len items are equal; if so *first < *second are the
 * pair a pairwise scan (second ascending, then first) meets first. */
WIRE_HIDDEN bool wire__array_duplicate(const wire_value *items, size_t len, size_t *first,
                                       size_t *second);

/* The channel between wire_supervise and each worker (supervisor.c,
 * workers.c): a SOCK_SEQPACKET socketpair, one message per datagram. A
 * worker asks for a listening socket (WIRE__CH_LISTEN, the address) and gets
 * back an int (0 or -errno) with the socket as SCM_RIGHTS when 0; it says
 * once that it listens (WIRE__CH_READY, value = its pid). */
/* workers.c: a socket with SO_REUSEADDR and SO_REUSEPORT bound to addr
 * (close-on-exec, not listening yet): the descriptor or -errno. */
WIRE_HIDDEN int wire__reuseport_socket(const struct sockaddr *addr, socklen_t len);
#define WIRE__CH_READY 1
#define WIRE__CH_LISTEN 2
typedef struct wire__ch_msg {
  int32_t type;
  int32_t value;
  uint32_t addrlen;
  struct sockaddr_storage addr;
} wire__ch_msg;

#endif /* WIRE_INTERNAL_H */
