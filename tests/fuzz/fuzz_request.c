/*
 * fuzz_request.c -- libFuzzer target for the handshake path: parse any bytes
 * as an upgrade request; on success run the endpoint checks, build the 101
 * response and match a few routes, so every string the parser kept is read.
 * Then the compact view an open connection keeps must answer every accessor
 * as the parsed view did (less the handshake-only headers).
 */
#include "http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void exercise(wire_request *req) {
  static const char *const origins[] = {"https://a.example", "http://localhost:8080"};
  static const char *const protocols[] = {"chat", "json.v1"};
  static const char *const patterns[] = {"/", "/chat/{room}", "/u/{id:int}/x",
                                         "/files/{rest:path}"};
  const char *why = NULL;
  char buf[1024];
  wire__handshake_check(req, origins, 2, protocols, 2, &why);
  wire__handshake_check(req, NULL, 0, protocols, 2, &why);
  wire__handshake_response(req, buf, sizeof buf);
  for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
    wire__route *r = NULL;
    if (wire__route_compile(patterns[i], &r) == 0) {
      wire__route_match(r, req);
      wire__route_free(r);
    }
  }
  for (size_t i = 0; i < wire_request_param_count(req); i++) {
    wire_str n, v;
    wire_request_param_at(req, i, &n, &v);
    if (n.ptr[n.len] != 0 || v.ptr[v.len] != 0)
      abort();
  }
  for (size_t i = 0; i < wire_request_query_count(req); i++) {
    wire_str k, v;
    wire_request_query_at(req, i, &k, &v);
    if (k.ptr[k.len] != 0 || v.ptr[v.len] != 0)
      abort();
  }
  wire_request_header(req, "host");
}

static void same_str(wire_str a, wire_str b) {
  if ((a.ptr == NULL) != (b.ptr == NULL) || a.len != b.len ||
      (a.len && memcmp(a.ptr, b.ptr, a.len) != 0) || (b.ptr && b.ptr[b.len] != 0))
    abort();
}

typedef size_t (*count_fn)(const wire_request *);
typedef int (*at_fn)(const wire_request *, size_t, wire_str *, wire_str *);

static void same_pairs(const wire_request *a, const wire_request *b, count_fn count, at_fn at) {
  if (count(a) != count(b))
    abort();
  for (size_t i = 0; i < count(a); i++) {
    wire_str an, av, bn, bv;
    at(a, i, &an, &av);
    at(b, i, &bn, &bv);
    same_str(an, bn);
    same_str(av, bv);
  }
}

/* req and twin parsed from the same bytes (and exercised alike): compact the
 * twin and compare it with req. The compact view's headers are req's in
 * order, some left out. Consumes twin. */
static void check_compact(const wire_request *req, wire_request *twin) {
  wire_request *b = wire__request_compact(twin);
  same_str(wire_request_path(req), wire_request_path(b));
  same_str(wire_request_target(req), wire_request_target(b));
  same_str(wire_request_subprotocol(req), wire_request_subprotocol(b));
  same_str(wire_request_remote_addr(req), wire_request_remote_addr(b));
  if (wire_request_remote_port(req) != wire_request_remote_port(b))
    abort();
  same_pairs(req, b, wire_request_param_count, wire_request_param_at);
  same_pairs(req, b, wire_request_query_count, wire_request_query_at);
  size_t j = 0, n = wire_request_header_count(req);
  for (size_t i = 0; i < wire_request_header_count(b); i++, j++) {
    wire_str bn, bv, an, av;
    wire_request_header_at(b, i, &bn, &bv);
    for (;; j++) {
      if (j >= n)
        abort(); /* a header the request did not have, or out of order */
      wire_request_header_at(req, j, &an, &av);
      if (an.len == bn.len && memcmp(an.ptr, bn.ptr, an.len) == 0)
        break;
    }
    same_str(av, bv);
  }
  wire__request_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly `size` bytes so ASan catches a read past the end. */
  char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  wire_request *req = NULL;
  int status = 0;
  const char *why = NULL;
  int rc = wire__request_parse(buf, size, &req, &status, &why);
  if (rc >= 0) {
    if (!req || (size_t)rc > size)
      abort();
    exercise(req);
    wire_request *twin = NULL;
    if (wire__request_parse(buf, size, &twin, &status, &why) != rc || twin == NULL)
      abort(); /* the same bytes parse the same way */
    exercise(twin);
    check_compact(req, twin);
    wire__request_free(req);
  } else if (rc == -1) {
    char out[512];
    if (status < 400 || status > 599 || !why || req)
      abort();
    wire__http_error_response(status, why, out, sizeof out);
  } else if (rc != -2 || req) {
    abort();
  }
  /* The pattern compiler is fuzzed with the same bytes. */
  char *pat = malloc(size + 1);
  if (pat) {
    memcpy(pat, data, size);
    pat[size] = 0;
    wire__route *r = NULL;
    if (wire__route_compile(pat, &r) == 0)
      wire__route_free(r);
    free(pat);
  }
  free(buf);
  return 0;
}
