/*
 * request.c -- the HTTP/1.1 upgrade request: a strict parser of the request
 * head (request line, header fields, origin-form target, percent-decoded path,
 * query string), the WebSocket checks of RFC 6455 §4.2.1, and the public
 * wire_request_* accessors.
 *
 * The parser reads the caller's buffer in place, never past len, and allocates
 * nothing per token: it validates and counts in one pass, then copies every
 * string it keeps into one malloc'd block (see docs/architecture.md).
 */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Memory handed out by wire__request_alloc: a list freed with the request. */
typedef struct extra_block {
  struct extra_block *next;
  max_align_t data[];
} extra_block;

/* The public view first, so a wire_request* is a request_block*. */
typedef struct request_block {
  struct wire_request pub;
  extra_block *extra;
} request_block;

/* Where a parsing step failed: the HTTP status and a short reason. */
typedef struct parse_error {
  int status;
  const char *why;
} parse_error;

static int fail(parse_error *e, int status, const char *why) {
  e->status = status;
  e->why = why;
  return -1;
}

/* ---- character classes (RFC 9110 §5.6.2, RFC 3986 §2-3) ---------------- */

static bool is_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_tchar(unsigned char c) {
  switch (c) {
  case '!':
  case '#':
  case '$':
  case '%':
  case '&':
  case '\'':
  case '*':
  case '+':
  case '-':
  case '.':
  case '^':
  case '_':
  case '`':
  case '|':
  case '~':
    return true;
  }
  return is_alnum(c);
}

static bool is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(unsigned char c) {
  if (c <= '9')
    return c - '0';
  return (c | 0x20) - 'a' + 10;
}

/* pchar minus '%' (checked separately), plus '/' and '?' (both legal in the
 * query; '?' ends the path). */
static bool is_uri_char(unsigned char c) {
  switch (c) {
  case '-':
  case '.':
  case '_':
  case '~':
  case '!':
  case '$':
  case '&':
  case '\'':
  case '(':
  case ')':
  case '*':
  case '+':
  case ',':
  case ';':
  case '=':
  case ':':
  case '@':
  case '/':
  case '?':
    return true;
  }
  return is_alnum(c);
}

/* field-value bytes: VCHAR, obs-text, SP, HTAB (no other controls). */
static bool is_field_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool ieq(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen)
    return false;
  for (size_t i = 0; i < alen; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z')
      x |= 0x20;
    if (y >= 'A' && y <= 'Z')
      y |= 0x20;
    if (x != y)
      return false;
  }
  return true;
}

/* ---- scanning ---------------------------------------------------------- */

/* One line of the head, without its CRLF. */
typedef struct span {
  const char *p;
  size_t n;
} span;

/* The next CRLF-terminated line at buf[*pos..len). Returns 1 and advances
 * *pos past the CRLF, 0 when the line is not complete yet, or -1 (400) on a
 * bare CR or a bare LF: only CRLF ends a line (RFC 9112 §2.2 lets a server
 * accept a bare LF; we do not, so framing has one reading). */
static int next_line(const char *buf, size_t len, size_t *pos, span *out, parse_error *e) {
  const char *start = buf + *pos, *end = buf + len;
  const char *cr = memchr(start, '\r', (size_t)(end - start));
  if (memchr(start, '\n', (size_t)((cr ? cr : end) - start)))
    return fail(e, 400, "bare LF in request head");
  if (!cr || cr + 1 == end)
    return 0;
  if (cr[1] != '\n')
    return fail(e, 400, "bare CR in request head");
  out->p = start;
  out->n = (size_t)(cr - start);
  *pos = (size_t)(cr + 2 - buf);
  return 1;
}

/* Validates %XX escapes in s; %00 is refused in both path and query so a
 * decoded string never holds a NUL. Returns the decoded length or -1. */
static long check_escapes(const char *s, size_t n) {
  long out = 0;
  for (size_t i = 0; i < n; i++, out++) {
    if (s[i] != '%')
      continue;
    if (i + 2 >= n || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
      return -1;
    if (s[i + 1] == '0' && s[i + 2] == '0')
      return -1;
    i += 2;
  }
  return out;
}

/* Percent-decodes s (already checked) into out; plus_space maps '+' to ' '
 * (query strings only). Writes a NUL; returns the decoded length. */
static size_t decode(const char *s, size_t n, bool plus_space, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      out[o++] = (char)(hex_val((unsigned char)s[i + 1]) * 16 + hex_val((unsigned char)s[i + 2]));
      i += 2;
    } else {
      out[o++] = (plus_space && s[i] == '+') ? ' ' : s[i];
    }
  }
  out[o] = 0;
  return o;
}

/* The parsed request line: views into the caller's buffer. */
typedef struct request_line {
  span method, target, path, query;
  bool has_query;
} request_line;

/* method SP origin-form SP HTTP/1.1, single spaces (RFC 9112 §3). */
static int parse_request_line(span l, request_line *rl, parse_error *e) {
  size_t i = 0;
  while (i < l.n && is_tchar((unsigned char)l.p[i]))
    i++;
  if (i == 0 || i >= l.n || l.p[i] != ' ')
    return fail(e, 400, "malformed request line");
  rl->method = (span){l.p, i};
  size_t t = ++i;
  while (i < l.n && l.p[i] != ' ')
    i++;
  if (i >= l.n || i == t)
    return fail(e, 400, "malformed request line");
  rl->target = (span){l.p + t, i - t};
  span v = {l.p + i + 1, l.n - i - 1};
  if (v.n != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[5] < '0' || v.p[5] > '9' || v.p[6] != '.' ||
      v.p[7] < '0' || v.p[7] > '9')
    return fail(e, 400, "malformed HTTP version");
  if (memcmp(v.p, "HTTP/1.1", 8) != 0)
    return fail(e, 505, "only HTTP/1.1 can be upgraded");
  if (rl->target.p[0] != '/')
    return fail(e, 400, "request target is not in origin-form");
  for (size_t k = 0; k < rl->target.n; k++) {
    unsigned char c = (unsigned char)rl->target.p[k];
    if (c != '%' && !is_uri_char(c))
      return fail(e, 400, "invalid character in request target");
  }
  const char *q = memchr(rl->target.p, '?', rl->target.n);
  rl->has_query = q != NULL;
  rl->path = (span){rl->target.p, q ? (size_t)(q - rl->target.p) : rl->target.n};
  rl->query =
      q ? (span){q + 1, rl->target.n - rl->path.n - 1} : (span){rl->target.p + rl->target.n, 0};
  if (check_escapes(rl->path.p, rl->path.n) < 0)
    return fail(e, 400, "invalid percent-encoding in path");
  if (check_escapes(rl->query.p, rl->query.n) < 0)
    return fail(e, 400, "invalid percent-encoding in query");
  return 0;
}

/* A header line split into a name and a value trimmed of OWS. */
static int split_header(span l, span *name, span *value, parse_error *e) {
  size_t i = 0;
  if (l.n > 0 && (l.p[0] == ' ' || l.p[0] == '\t'))
    return fail(e, 400, "obsolete line folding");
  while (i < l.n && is_tchar((unsigned char)l.p[i]))
    i++;
  if (i == 0 || i >= l.n || l.p[i] != ':')
    return fail(e, 400, "malformed header field");
  *name = (span){l.p, i};
  size_t b = i + 1, end = l.n;
  for (size_t k = b; k < end; k++)
    if (!is_field_char((unsigned char)l.p[k]))
      return fail(e, 400, "control character in header value");
  while (b < end && (l.p[b] == ' ' || l.p[b] == '\t'))
    b++;
  while (end > b && (l.p[end - 1] == ' ' || l.p[end - 1] == '\t'))
    end--;
  *value = (span){l.p + b, end - b};
  return 0;
}

/* ---- semantic checks on the raw head ------------------------------------- */

/* Header lines of a complete, syntax-checked head. */
typedef struct header_iter {
  const char *buf;
  size_t len, pos;
} header_iter;

/* Splits a line scan() has already checked: no validation again, so the
 * later passes cost a memchr and a trim per header. */
static bool header_next(header_iter *it, span *name, span *value) {
  span l;
  parse_error e;
  if (next_line(it->buf, it->len, &it->pos, &l, &e) != 1 || l.n == 0)
    return false;
  const char *colon = memchr(l.p, ':', l.n);
  *name = (span){l.p, (size_t)(colon - l.p)};
  const char *b = colon + 1, *end = l.p + l.n;
  while (b < end && (*b == ' ' || *b == '\t'))
    b++;
  while (end > b && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  *value = (span){b, (size_t)(end - b)};
  return true;
}

/* Does the comma-separated list (RFC 9110 §5.6.1) hold `token`? */
static bool list_has(span v, const char *token) {
  size_t i = 0;
  while (i <= v.n) {
    size_t j = i;
    while (j < v.n && v.p[j] != ',')
      j++;
    size_t b = i, end = j;
    while (b < end && (v.p[b] == ' ' || v.p[b] == '\t'))
      b++;
    while (end > b && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
      end--;
    if (ieq(v.p + b, end - b, token))
      return true;
    i = j + 1;
  }
  return false;
}

/* Sec-WebSocket-Key must be base64 of 16 bytes: 22 alphabet chars and "==". */
static bool key_valid(span v) {
  static const char alphabet[] = WIRE__BASE64;
  if (v.n != 24 || v.p[22] != '=' || v.p[23] != '=')
    return false;
  for (size_t i = 0; i < 22; i++)
    if (v.p[i] == 0 || !memchr(alphabet, v.p[i], sizeof alphabet - 1))
      return false;
  return true;
}

/* What the checks found; counts let duplicates be refused. */
typedef struct upgrade_facts {
  size_t n_headers, n_host, n_key, n_version;
  bool upgrade_ws, conn_upgrade, version_ok;
  span key;
  size_t header_bytes; /* names + values + NULs */
} upgrade_facts;

static void collect(const char *buf, size_t head_len, size_t first, upgrade_facts *f) {
  header_iter it = {buf, head_len, first};
  span n, v;
  memset(f, 0, sizeof *f);
  while (header_next(&it, &n, &v)) {
    f->n_headers++;
    f->header_bytes += n.n + v.n + 2;
    if (ieq(n.p, n.n, "host")) {
      f->n_host += v.n > 0 ? 1 : 2; /* an empty Host is as bad as two */
    } else if (ieq(n.p, n.n, "upgrade")) {
      f->upgrade_ws |= list_has(v, "websocket");
    } else if (ieq(n.p, n.n, "connection")) {
      f->conn_upgrade |= list_has(v, "upgrade");
    } else if (ieq(n.p, n.n, "sec-websocket-key")) {
      f->n_key++;
      f->key = v;
    } else if (ieq(n.p, n.n, "sec-websocket-version")) {
      f->n_version++;
      f->version_ok = v.n == 2 && memcmp(v.p, "13", 2) == 0;
    }
  }
}

/* RFC 6455 §4.2.1 in order: is it an upgrade at all, then the version (426
 * lets a client retry with 13), then the key. */
static int check_upgrade(const request_line *rl, const upgrade_facts *f, parse_error *e) {
  if (rl->method.n != 3 || memcmp(rl->method.p, "GET", 3) != 0)
    return fail(e, 405, "method must be GET");
  if (f->n_host != 1)
    return fail(e, 400, "exactly one non-empty Host header is required");
  if (!f->upgrade_ws)
    return fail(e, 400, "Upgrade header must contain websocket");
  if (!f->conn_upgrade)
    return fail(e, 400, "Connection header must contain upgrade");
  if (f->n_version > 1)
    return fail(e, 400, "duplicate Sec-WebSocket-Version");
  if (!f->version_ok)
    return fail(e, 426, "Sec-WebSocket-Version must be 13");
  if (f->n_key != 1)
    return fail(e, 400, f->n_key ? "duplicate Sec-WebSocket-Key" : "missing Sec-WebSocket-Key");
  if (!key_valid(f->key))
    return fail(e, 400, "Sec-WebSocket-Key must be base64 of 16 bytes");
  return 0;
}

/* ---- building the request ------------------------------------------------ */

/* Count of non-empty '&'-separated pairs and their decoded bytes (+NULs). */
static size_t query_pairs(span q, size_t *bytes) {
  size_t n = 0;
  *bytes = 0;
  for (size_t i = 0; i < q.n;) {
    size_t j = i;
    while (j < q.n && q.p[j] != '&')
      j++;
    if (j > i) {
      n++;
      *bytes += (j - i) + 2;
    }
    i = j + 1;
  }
  return n;
}

/* Copies s into the string area at *cur, NUL-terminated. */
static wire_str put(char **cur, const char *s, size_t n) {
  char *p = *cur;
  if (n)
    memcpy(p, s, n);
  p[n] = 0;
  *cur += n + 1;
  return (wire_str){p, n};
}

static wire_str put_decoded(char **cur, const char *s, size_t n, bool plus_space) {
  char *p = *cur;
  size_t len = decode(s, n, plus_space, p);
  *cur += len + 1;
  return (wire_str){p, len};
}

static void fill_query(wire_request *r, span q, char **cur) {
  size_t k = 0;
  for (size_t i = 0; i < q.n;) {
    size_t j = i;
    while (j < q.n && q.p[j] != '&')
      j++;
    if (j > i) {
      const char *eq = memchr(q.p + i, '=', j - i);
      size_t kn = eq ? (size_t)(eq - (q.p + i)) : j - i;
      r->query[k].name = put_decoded(cur, q.p + i, kn, true);
      r->query[k].value =
          eq ? put_decoded(cur, eq + 1, (size_t)(q.p + j - eq - 1), true) : put(cur, "", 0);
      k++;
    }
    i = j + 1;
  }
  r->n_query = k;
}

/* One malloc holds the struct, both kv arrays and every string. Returns NULL
 * when memory runs out. */
static wire_request *build(const char *buf, size_t head_len, size_t first, const request_line *rl,
                           const upgrade_facts *f) {
  size_t qbytes, nq = query_pairs(rl->query, &qbytes);
  size_t strings =
      rl->method.n + rl->target.n + rl->path.n + rl->query.n + 4 + qbytes + f->header_bytes;
  size_t size = sizeof(request_block) + (f->n_headers + nq) * sizeof(wire__kv) + strings;
  request_block *b = calloc(1, size);
  if (!b)
    return NULL;
  wire_request *r = &b->pub;
  r->headers = (wire__kv *)(b + 1);
  r->query = r->headers + f->n_headers;
  char *cur = (char *)(r->query + nq);
  r->method = put(&cur, rl->method.p, rl->method.n);
  r->target = put(&cur, rl->target.p, rl->target.n);
  r->path = put_decoded(&cur, rl->path.p, rl->path.n, false);
  r->query_string = put(&cur, rl->query.p, rl->query.n);
  header_iter it = {buf, head_len, first};
  span n, v;
  while (header_next(&it, &n, &v)) {
    r->headers[r->n_headers].name = put(&cur, n.p, n.n);
    r->headers[r->n_headers].value = put(&cur, v.p, v.n);
    r->n_headers++;
  }
  fill_query(r, rl->query, &cur);
  return r;
}

/* Syntax pass over the head as far as it has arrived. Returns the head length,
 * -2 (incomplete) or -1. Complete lines are checked as they arrive, so a bad
 * request fails before its blank line. */
static int scan(const char *buf, size_t len, request_line *rl, size_t *first, parse_error *e) {
  size_t pos = 0;
  span l, n, v;
  int r = next_line(buf, len, &pos, &l, e);
  if (r <= 0)
    return r < 0 ? -1 : -2;
  if (l.n == 0)
    return fail(e, 400, "empty request line");
  if (parse_request_line(l, rl, e) < 0)
    return -1;
  *first = pos;
  for (;;) {
    r = next_line(buf, len, &pos, &l, e);
    if (r <= 0)
      return r < 0 ? -1 : -2;
    if (l.n == 0)
      break;
    if (split_header(l, &n, &v, e) < 0)
      return -1;
  }
  if (pos > (size_t)0x7fffffff)
    return fail(e, 431, "request head too large");
  return (int)pos;
}

int wire__request_parse(const char *buf, size_t len, wire_request **out, int *status,
                        const char **why) {
  parse_error e = {0, NULL};
  request_line rl;
  upgrade_facts f;
  size_t first = 0;
  *out = NULL;
  if (len == 0)
    return -2; /* nothing read yet (buf may even be NULL) */
  int head = scan(buf, len, &rl, &first, &e);
  if (head == -2)
    return -2;
  if (head >= 0) {
    collect(buf, (size_t)head, first, &f);
    if (check_upgrade(&rl, &f, &e) < 0)
      head = -1;
  }
  if (head < 0) {
    *status = e.status;
    *why = e.why;
    return -1;
  }
  *out = build(buf, (size_t)head, first, &rl, &f);
  if (!*out) {
    *status = 500;
    *why = "out of memory";
    return -1;
  }
  return head;
}

void wire__request_free(wire_request *req) {
  if (!req)
    return;
  request_block *b = (request_block *)req;
  if (!req->compact) /* the compact view is one block */
    for (extra_block *x = b->extra, *next; x; x = next) {
      next = x->next;
      free(x);
    }
  free(b);
}

void *wire__request_alloc(wire_request *req, size_t n) {
  request_block *b = (request_block *)req;
  extra_block *x = malloc(sizeof *x + n);
  if (!x)
    return NULL;
  x->next = b->extra;
  b->extra = x;
  return x->data;
}

void wire__request_set_peer(wire_request *req, const struct sockaddr *sa) {
  req->remote_addr[0] = 0;
  req->remote_port = 0;
  if (!sa)
    return;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, req->remote_addr, sizeof req->remote_addr);
    req->remote_port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, req->remote_addr, sizeof req->remote_addr);
    req->remote_port = ntohs(in6->sin6_port);
  }
}

const wire__kv *wire__request_find_header(const wire_request *req, const char *name, size_t *i) {
  for (size_t k = *i; k < req->n_headers; k++) {
    if (ieq(req->headers[k].name.ptr, req->headers[k].name.len, name)) {
      *i = k;
      return &req->headers[k];
    }
  }
  return NULL;
}

/* ---- the compact view ---------------------------------------------------- */

/* The view an open connection keeps (wire__request_compact): every string
 * serialized once, as a length (LEB128), its bytes and a NUL, in this order:
 * method, target, path (only when it differs from the target), query string,
 * subprotocol (only when one was chosen), remote address, then the headers,
 * query pairs and path parameters, name then value. No pointers: about a
 * quarter of the parsed view's size (about 60 bytes for a bare `/idle`
 * upgrade). Accessors walk it; it is read rarely and is short. */
typedef struct compact_view {
  uint8_t compact; /* 1: aliases wire_request.compact */
  uint8_t bits;    /* CV_* */
  uint16_t port;
  uint16_t n_headers, n_query, n_params;
  char s[];
} compact_view;

#define CV_PATH 0x01u /* the path is stored apart from the target */
#define CV_SUB 0x02u  /* a subprotocol was chosen */
#define CV_MAX_KV 0xffffu
#define CV_STACK 1024u /* views up to this size are built on the stack */

static const wire_str no_str = {NULL, 0};

/* Bytes one string takes serialized. */
static size_t cv_size(size_t n) {
  size_t k = 1;
  for (size_t v = n; v >= 0x80; v >>= 7)
    k++;
  return k + n + 1;
}

/* Serialize s at *cur and advance. */
static void cv_put(char **cur, wire_str s) {
  uint8_t *p = (uint8_t *)*cur;
  size_t v = s.len;
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  if (s.len)
    memcpy(p, s.ptr, s.len);
  p[s.len] = 0;
  *cur = (char *)p + s.len + 1;
}

/* Read the string at *cur and advance past it. */
static wire_str cv_get(const char **cur) {
  const uint8_t *p = (const uint8_t *)*cur;
  size_t n = 0;
  for (unsigned shift = 0;; shift += 7) {
    uint8_t b = *p++;
    n |= (size_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      break;
  }
  *cur = (const char *)p + n + 1;
  return (wire_str){(const char *)p, n};
}

/* The i-th serialized string (0 = method). */
static wire_str cv_nth(const compact_view *v, size_t i) {
  const char *cur = v->s;
  wire_str s = cv_get(&cur);
  while (i-- > 0)
    s = cv_get(&cur);
  return s;
}

/* Index of the first header name among the serialized strings. */
static size_t cv_kv_base(const compact_view *v) {
  return 4u + ((v->bits & CV_PATH) != 0) + ((v->bits & CV_SUB) != 0);
}

/* Field `field` of the fixed part: 0 method, 1 target, 2 path, 3 query
 * string, 4 subprotocol, 5 remote address. */
static wire_str cv_field(const compact_view *v, unsigned field) {
  bool path = v->bits & CV_PATH, sub = v->bits & CV_SUB;
  if (field == 2 && !path)
    field = 1;
  else if (field == 4 && !sub)
    return no_str;
  size_t i = field;
  if (field > 2 && !path)
    i--;
  if (field > 4 && !sub)
    i--;
  return cv_nth(v, i);
}

/* Pair i of a kv section (first: its index among the pairs). */
static int cv_kv(const compact_view *v, size_t first, size_t n, size_t i, wire_str *name,
                 wire_str *value) {
  if (i >= n)
    return WIRE_ENOTFOUND;
  const char *cur = v->s;
  for (size_t k = cv_kv_base(v) + 2 * (first + i); k > 0; k--)
    cv_get(&cur);
  wire_str a = cv_get(&cur), b = cv_get(&cur);
  if (name)
    *name = a;
  if (value)
    *value = b;
  return 0;
}

/* First pair of a kv section whose name is `name` (exactly, or ignoring ASCII
 * case when icase). */
static wire_str cv_find(const compact_view *v, size_t first, size_t n, const char *name,
                        bool icase) {
  size_t len = name ? strlen(name) : 0;
  const char *cur = v->s;
  for (size_t k = cv_kv_base(v) + 2 * first; k > 0; k--)
    cv_get(&cur);
  for (size_t i = 0; name && i < n; i++) {
    wire_str a = cv_get(&cur), b = cv_get(&cur);
    if (icase ? ieq(a.ptr, a.len, name) : (a.len == len && memcmp(a.ptr, name, len) == 0))
      return b;
  }
  return no_str;
}

#define CV(req) ((const compact_view *)(const void *)(req))

/* ---- public accessors ---------------------------------------------------- */

static int kv_at(const wire__kv *kv, size_t n, size_t i, wire_str *name, wire_str *value) {
  if (i >= n)
    return WIRE_ENOTFOUND;
  if (name)
    *name = kv[i].name;
  if (value)
    *value = kv[i].value;
  return 0;
}

static wire_str kv_find(const wire__kv *kv, size_t n, const char *name) {
  size_t len = name ? strlen(name) : 0;
  for (size_t i = 0; name && i < n; i++)
    if (kv[i].name.len == len && memcmp(kv[i].name.ptr, name, len) == 0)
      return kv[i].value;
  return no_str;
}

wire_str wire_request_path(const wire_request *req) {
  if (req && req->compact)
    return cv_field(CV(req), 2);
  return req ? req->path : no_str;
}
wire_str wire_request_target(const wire_request *req) {
  if (req && req->compact)
    return cv_field(CV(req), 1);
  return req ? req->target : no_str;
}

size_t wire_request_param_count(const wire_request *req) {
  if (req && req->compact)
    return CV(req)->n_params;
  return req ? req->n_params : 0;
}

int wire_request_param_at(const wire_request *req, size_t i, wire_str *name, wire_str *value) {
  if (req && req->compact) {
    const compact_view *v = CV(req);
    return cv_kv(v, (size_t)v->n_headers + v->n_query, v->n_params, i, name, value);
  }
  return req ? kv_at(req->params, req->n_params, i, name, value) : WIRE_EINVAL;
}

wire_str wire_request_param(const wire_request *req, const char *name) {
  if (req && req->compact) {
    const compact_view *v = CV(req);
    return cv_find(v, (size_t)v->n_headers + v->n_query, v->n_params, name, false);
  }
  return req ? kv_find(req->params, req->n_params, name) : no_str;
}

size_t wire_request_query_count(const wire_request *req) {
  if (req && req->compact)
    return CV(req)->n_query;
  return req ? req->n_query : 0;
}

int wire_request_query_at(const wire_request *req, size_t i, wire_str *key, wire_str *value) {
  if (req && req->compact)
    return cv_kv(CV(req), CV(req)->n_headers, CV(req)->n_query, i, key, value);
  return req ? kv_at(req->query, req->n_query, i, key, value) : WIRE_EINVAL;
}

wire_str wire_request_query(const wire_request *req, const char *key) {
  if (req && req->compact)
    return cv_find(CV(req), CV(req)->n_headers, CV(req)->n_query, key, false);
  return req ? kv_find(req->query, req->n_query, key) : no_str;
}

size_t wire_request_header_count(const wire_request *req) {
  if (req && req->compact)
    return CV(req)->n_headers;
  return req ? req->n_headers : 0;
}

int wire_request_header_at(const wire_request *req, size_t i, wire_str *name, wire_str *value) {
  if (req && req->compact)
    return cv_kv(CV(req), 0, CV(req)->n_headers, i, name, value);
  return req ? kv_at(req->headers, req->n_headers, i, name, value) : WIRE_EINVAL;
}

wire_str wire_request_header(const wire_request *req, const char *name) {
  if (req && req->compact)
    return cv_find(CV(req), 0, CV(req)->n_headers, name, true);
  size_t i = 0;
  const wire__kv *kv = req && name ? wire__request_find_header(req, name, &i) : NULL;
  return kv ? kv->value : no_str;
}

wire_str wire_request_remote_addr(const wire_request *req) {
  if (req && req->compact)
    return cv_field(CV(req), 5);
  return req ? (wire_str){req->remote_addr, strlen(req->remote_addr)} : no_str;
}

int wire_request_remote_port(const wire_request *req) {
  if (req && req->compact)
    return CV(req)->port;
  return req ? req->remote_port : 0;
}

wire_str wire_request_subprotocol(const wire_request *req) {
  if (req && req->compact)
    return cv_field(CV(req), 4);
  return req ? req->subprotocol : no_str;
}

/* Headers that served only the upgrade; the view kept with an open
 * connection leaves them out. */
static bool handshake_only(const wire_str *name) {
  static const char *const names[] = {"upgrade", "connection", "sec-websocket-key",
                                      "sec-websocket-version", "sec-websocket-extensions"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (ieq(name->ptr, name->len, names[i]))
      return true;
  return false;
}

static bool same_str(wire_str a, wire_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Bytes the compact view of req takes, with *nh the headers it keeps. */
static size_t cv_bytes(const wire_request *req, bool path, size_t *nh) {
  size_t bytes = sizeof(compact_view) + cv_size(req->method.len) + cv_size(req->target.len) +
                 (path ? cv_size(req->path.len) : 0) + cv_size(req->query_string.len) +
                 (req->subprotocol.ptr ? cv_size(req->subprotocol.len) : 0) +
                 cv_size(strlen(req->remote_addr));
  *nh = 0;
  for (size_t i = 0; i < req->n_headers; i++)
    if (!handshake_only(&req->headers[i].name)) {
      ++*nh;
      bytes += cv_size(req->headers[i].name.len) + cv_size(req->headers[i].value.len);
    }
  for (size_t i = 0; i < req->n_query; i++)
    bytes += cv_size(req->query[i].name.len) + cv_size(req->query[i].value.len);
  for (size_t i = 0; i < req->n_params; i++)
    bytes += cv_size(req->params[i].name.len) + cv_size(req->params[i].value.len);
  return bytes;
}

/* Serialize req into v (cv_bytes big). */
static void cv_fill(compact_view *v, const wire_request *req, bool path, size_t nh) {
  v->compact = 1;
  v->bits = (uint8_t)((path ? CV_PATH : 0) | (req->subprotocol.ptr ? CV_SUB : 0));
  v->port = (uint16_t)req->remote_port;
  v->n_headers = (uint16_t)nh;
  v->n_query = (uint16_t)req->n_query;
  v->n_params = (uint16_t)req->n_params;
  char *cur = v->s;
  cv_put(&cur, req->method);
  cv_put(&cur, req->target);
  if (path)
    cv_put(&cur, req->path);
  cv_put(&cur, req->query_string);
  if (req->subprotocol.ptr)
    cv_put(&cur, req->subprotocol);
  cv_put(&cur, (wire_str){req->remote_addr, strlen(req->remote_addr)});
  for (size_t i = 0; i < req->n_headers; i++)
    if (!handshake_only(&req->headers[i].name)) {
      cv_put(&cur, req->headers[i].name);
      cv_put(&cur, req->headers[i].value);
    }
  for (size_t i = 0; i < req->n_query; i++) {
    cv_put(&cur, req->query[i].name);
    cv_put(&cur, req->query[i].value);
  }
  for (size_t i = 0; i < req->n_params; i++) {
    cv_put(&cur, req->params[i].name);
    cv_put(&cur, req->params[i].value);
  }
}

/* Re-pack req into the compact view (path parameters and the subprotocol
 * folded in, handshake-only headers dropped): an idle connection keeps only
 * this. Built on the stack when small, then moved into req's own block shrunk
 * in place by realloc: a fresh block would leave the parsed view's space as a
 * hole between long-lived objects. */
wire_request *wire__request_compact(wire_request *req) {
  if (req->compact || req->n_headers > CV_MAX_KV || req->n_query > CV_MAX_KV ||
      req->n_params > CV_MAX_KV)
    return req;
  bool path = !same_str(req->path, req->target);
  size_t nh, size = cv_bytes(req, path, &nh);
  _Alignas(max_align_t) char stack[CV_STACK];
  compact_view *heap = size <= sizeof stack ? NULL : malloc(size);
  compact_view *v = heap ? heap : (compact_view *)(void *)stack;
  if (size > sizeof stack && heap == NULL)
    return req;
  cv_fill(v, req, path, nh);
  request_block *old = (request_block *)req;
  extra_block *extra = old->extra; /* path parameters, subprotocol: copied into v */
  void *b = realloc(old, size);
  if (b != NULL) {
    memcpy(b, v, size);
    free(heap);
  } else { /* cannot even shrink: a block of its own */
    b = heap ? heap : malloc(size);
    if (b == NULL)
      return req;
    if (heap == NULL)
      memcpy(b, stack, size);
    free(old); /* its extra blocks go below */
  }
  for (extra_block *next; extra; extra = next) {
    next = extra->next;
    free(extra);
  }
  return b;
}
