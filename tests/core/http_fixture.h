/*
 * http_fixture.h -- helpers for the handshake tests: request bytes placed
 * against a guard page (so any read past the end faults, as in
 * picohttpparser's tests) and a parse wrapper.
 */
#ifndef WIRE_TEST_HTTP_FIXTURE_H
#define WIRE_TEST_HTTP_FIXTURE_H

#include "http.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A copy of s[0..len) whose last byte sits right before a PROT_NONE page.
 * Release with guard_free(p, len). */
static inline char *guard_copy(const char *s, size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t data_pages = (len + page - 1) / page + 1;
  char *base = mmap(NULL, (data_pages + 1) * page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  cr_assert(base != MAP_FAILED);
  cr_assert(mprotect(base + data_pages * page, page, PROT_NONE) == 0);
  char *p = base + data_pages * page - len;
  memcpy(p, s, len);
  return p;
}

static inline void guard_free(char *p, size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t data_pages = (len + page - 1) / page + 1;
  char *base = p + len - data_pages * page;
  munmap(base, (data_pages + 1) * page);
}

/* Parse s (NUL-terminated) from a guarded copy. */
static inline int parse_guarded(const char *s, wire_request **req, int *status, const char **why) {
  size_t len = strlen(s);
  char *p = guard_copy(s, len);
  *req = NULL;
  *status = 0;
  *why = NULL;
  int rc = wire__request_parse(p, len, req, status, why);
  guard_free(p, len);
  return rc;
}

/* The status a request is refused with (cr_asserts that it is refused). */
static inline int refusal(const char *s) {
  wire_request *req;
  int status;
  const char *why;
  int rc = parse_guarded(s, &req, &status, &why);
  cr_assert_eq(rc, -1, "expected a refusal, got %d for:\n%s", rc, s);
  cr_assert_null(req);
  cr_assert_not_null(why);
  return status;
}

/* A valid request (cr_asserts success); free with wire__request_free. */
static inline wire_request *accepted(const char *s) {
  wire_request *req;
  int status;
  const char *why;
  int rc = parse_guarded(s, &req, &status, &why);
  cr_assert_eq(rc, (int)strlen(s), "expected success, got %d (%d %s) for:\n%s", rc, status,
               why ? why : "", s);
  cr_assert_not_null(req);
  return req;
}

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* The upgrade headers every valid request carries, after the request line. */
#define UPGRADE_HEADERS                                                                            \
  "Host: example.com\r\n"                                                                          \
  "Upgrade: websocket\r\n"                                                                         \
  "Connection: Upgrade\r\n"                                                                        \
  "Sec-WebSocket-Key: " RFC_KEY "\r\n"                                                             \
  "Sec-WebSocket-Version: 13\r\n"

#define GET(target) "GET " target " HTTP/1.1\r\n" UPGRADE_HEADERS

#endif
