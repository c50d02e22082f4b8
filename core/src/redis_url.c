/*
 * redis_url.c -- parsing broker URLs: redis://[[user]:password@]host[:port][/db],
 * with percent-decoded user and password, IPv6 hosts in brackets, and every
 * malformed part refused with a message saying which. Allocates one block
 * for the strings; reads nothing past the NUL.
 */
#include "broker.h"

#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decode [p, p+n) into out (room for n + 1). Returns the decoded
 * length, or -1 for a bad or %00 escape. */
static long pct_decode(const char *p, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '%') {
      out[o++] = p[i];
      continue;
    }
    if (n - i < 3)
      return -1;
    int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
      return -1;
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[o] = 0;
  return (long)o;
}

/* A decimal number in [p, p+n) within [lo, hi]; -1 otherwise. */
static long dec_in(const char *p, size_t n, long lo, long hi) {
  if (n == 0 || n > 9)
    return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v < lo || v > hi ? -1 : v;
}

static int bad(wire_error *err, const char *what) {
  return wire__error_set(err, WIRE_EINVAL, "bad broker URL: %s", what);
}

/* Split the authority [p, end) into userinfo, host and port. */
static int parse_authority(const char *p, const char *end, wire__redis_url *u, char *block,
                           wire_error *err) {
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@')
      at = q; /* the last '@': a password may contain an encoded one only */
  char *cur = block;
  if (at != NULL) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL)
      return bad(err, "userinfo needs ':' before the password (redis://:password@host)");
    if (colon > p) {
      long n = pct_decode(p, (size_t)(colon - p), cur);
      if (n < 0)
        return bad(err, "bad %-escape in the user name");
      u->user = cur;
      cur += n + 1;
    }
    long n = pct_decode(colon + 1, (size_t)(at - colon - 1), cur);
    if (n < 0)
      return bad(err, "bad %-escape in the password");
    u->password = cur;
    cur += n + 1;
    p = at + 1;
  }
  const char *hend = end, *port = NULL;
  if (p < end && *p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (rb == NULL || rb == p + 1)
      return bad(err, "unterminated IPv6 address");
    hend = rb;
    p++;
    if (rb + 1 < end) {
      if (rb[1] != ':')
        return bad(err, "junk after the IPv6 address");
      port = rb + 2;
    }
  } else {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon != NULL) {
      hend = colon;
      port = colon + 1;
    }
  }
  if (hend == p)
    return bad(err, "no host");
  for (const char *q = p; q < hend; q++)
    if (*q == '%' || *q == '/' || *q == '?' || *q == '#' || (unsigned char)*q <= ' ')
      return bad(err, "bad character in the host");
  memcpy(cur, p, (size_t)(hend - p));
  cur[hend - p] = 0;
  u->host = cur;
  u->port = 6379;
  if (port != NULL && (u->port = (int)dec_in(port, (size_t)(end - port), 1, 65535)) < 0)
    return bad(err, "the port is not a number in 1..65535");
  return 0;
}

int wire__redis_url_parse(const char *url, wire__redis_url *u, wire_error *err) {
  memset(u, 0, sizeof *u);
  static const char scheme[] = "redis://";
  if (url == NULL || strncmp(url, scheme, sizeof scheme - 1) != 0)
    return bad(err, "it must start with redis://");
  const char *p = url + sizeof scheme - 1;
  size_t n = strlen(p);
  const char *end = p + n, *slash = memchr(p, '/', n);
  const char *aend = slash ? slash : end;
  if (memchr(p, '?', n) || memchr(p, '#', n))
    return bad(err, "query strings and fragments are not supported");
  char *block = malloc(n + 3); /* every string decodes to no more than its source */
  if (block == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  int r = parse_authority(p, aend, u, block, err);
  if (r == 0 && slash != NULL && slash + 1 < end &&
      (u->db = (int)dec_in(slash + 1, (size_t)(end - slash - 1), 0, 1 << 20)) < 0)
    r = bad(err, "the database index is not a number");
  if (r != 0) {
    free(block);
    memset(u, 0, sizeof *u);
    return r;
  }
  u->block_ = block; /* host, user and password all live in it */
  return 0;
}

void wire__redis_url_free(wire__redis_url *u) {
  free(u->block_);
  memset(u, 0, sizeof *u);
}
