/*
 * fuzz_request.c -- libFuzzer target for the handshake path: parse any bytes
 * as an upgrade request; on success run the endpoint checks, build the 101
 * response and match a few routes, so every string the parser kept is read.
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
