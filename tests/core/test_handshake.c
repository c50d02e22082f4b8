/*
 * test_handshake.c -- handshake.c: Sec-WebSocket-Accept, the Origin
 * allow-list, subprotocol choice, and the exact bytes of the 101 response
 * and of every rejection.
 */
#include "http_fixture.h"

static void assert_response(int n, const char *buf, const char *want) {
  cr_assert_eq(n, (int)strlen(want), "length %d, want %zu; got:\n%s", n, strlen(want), buf);
  cr_assert_str_eq(buf, want);
}

Test(handshake, accept_key_of_rfc_6455_example) {
  char out[29];
  cr_assert_eq(wire__accept_key(RFC_KEY, strlen(RFC_KEY), out), 0);
  cr_assert_str_eq(out, RFC_ACCEPT);
}

/* The accept key's own SHA-1 against hashlib's digests: one block (a key of
 * up to 19 bytes), the boundary (19, 20), two blocks, and the longest key. */
Test(handshake, accept_key_matches_sha1_on_both_sides_of_the_block_boundary) {
  static const char *const v[][2] = {
      {"", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="},
      {"abc", "zwKd5BnoWxQ6GxTxxSmBSHGHX9M="},
      {"0123456789abcdefghi", "FegIp3bXJhJaqH8QGyZ2Uh2VvYA="},
      {"0123456789abcdefghij", "OeG2pkBduPyswM65OjWo8yPzBhc="},
      {"xxxxxxxxxxxxxxxxxxxxxxxxxxxx", "atUL8kQGe4qplhq19Y5TKRw/Uj4="},
      {"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
       "HpZZBMVUBxsWH0sIrvqa7M512Q4="},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char out[29];
    cr_assert_eq(wire__accept_key(v[i][0], strlen(v[i][0]), out), 0);
    cr_assert_str_eq(out, v[i][1], "key \"%s\"", v[i][0]);
  }
  char out[29];
  cr_assert_eq(wire__accept_key("z", 65, out), -1); /* longer than any valid key */
}

/* Any length: FIPS 180 examples, 1,000,000 'a' (many blocks), and lengths
 * around the padding boundary of the last block. */
Test(handshake, sha1_of_any_length) {
  static const char *const v[][2] = {
      {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
      {"The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"},
  };
  uint8_t md[20];
  char hex[41];
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    wire__sha1(v[i][0], strlen(v[i][0]), md);
    for (int k = 0; k < 20; k++)
      snprintf(hex + 2 * k, 3, "%02x", md[k]);
    cr_assert_str_eq(hex, v[i][1], "\"%s\"", v[i][0]);
  }
  char *a = malloc(1000000);
  cr_assert_not_null(a);
  memset(a, 'a', 1000000);
  wire__sha1(a, 1000000, md);
  for (int k = 0; k < 20; k++)
    snprintf(hex + 2 * k, 3, "%02x", md[k]);
  cr_assert_str_eq(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  /* 55, 56, 63, 64, 65 and 119 bytes of 'a', against hashlib */
  static const struct {
    size_t n;
    const char *hex;
  } b[] = {{55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
           {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
           {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
           {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
           {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
           {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"}};
  for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
    wire__sha1(a, b[i].n, md);
    for (int k = 0; k < 20; k++)
      snprintf(hex + 2 * k, 3, "%02x", md[k]);
    cr_assert_str_eq(hex, b[i].hex, "%zu bytes", b[i].n);
  }
  free(a);
}

Test(handshake, builds_exact_101_response) {
  wire_request *req = accepted(GET("/chat") "\r\n");
  const char *why = NULL;
  cr_assert_eq(wire__handshake_check(req, NULL, 0, NULL, 0, &why), 0);
  char buf[512];
  int n = wire__handshake_response(req, buf, sizeof buf);
  assert_response(n, buf,
                  "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                  "\r\n");
  wire__request_free(req);
}

Test(handshake, response_fails_when_buffer_too_small) {
  wire_request *req = accepted(GET("/") "\r\n");
  char buf[64];
  cr_assert_eq(wire__handshake_response(req, buf, sizeof buf), -1);
  wire__request_free(req);
}

/* ---- subprotocols -------------------------------------------------------- */

static wire_request *negotiate(const char *protocol_headers, const char *const *prefs, size_t n) {
  char s[1024];
  snprintf(s, sizeof s, "%s%s\r\n", GET("/"), protocol_headers);
  wire_request *req = accepted(s);
  const char *why = NULL;
  cr_assert_eq(wire__handshake_check(req, NULL, 0, prefs, n, &why), 0);
  return req;
}

Test(handshake, chooses_first_server_preference_the_client_offered) {
  const char *prefs[] = {"v2.chat", "v1.chat"};
  wire_request *req = negotiate("Sec-WebSocket-Protocol: v1.chat, v2.chat\r\n", prefs, 2);
  wire_str p = wire_request_subprotocol(req);
  cr_assert_str_eq(p.ptr, "v2.chat");
  cr_assert_eq(p.len, 7);
  char buf[512];
  int n = wire__handshake_response(req, buf, sizeof buf);
  assert_response(n, buf,
                  "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                  "Sec-WebSocket-Protocol: v2.chat\r\n"
                  "\r\n");
  wire__request_free(req);
}

Test(handshake, reads_offers_across_several_protocol_headers) {
  const char *prefs[] = {"mqtt", "wamp"};
  wire_request *req = negotiate(
      "Sec-WebSocket-Protocol: soap,  chat\r\nSec-WebSocket-Protocol: wamp\r\n", prefs, 2);
  cr_assert_str_eq(wire_request_subprotocol(req).ptr, "wamp");
  wire__request_free(req);
}

Test(handshake, chooses_no_subprotocol_when_none_matches) {
  const char *prefs[] = {"a", "b"};
  wire_request *req = negotiate("Sec-WebSocket-Protocol: c, d\r\n", prefs, 2);
  cr_assert_null(wire_request_subprotocol(req).ptr);
  char buf[512];
  wire__handshake_response(req, buf, sizeof buf);
  cr_assert_null(strstr(buf, "Sec-WebSocket-Protocol"));
  wire__request_free(req);
}

Test(handshake, matches_subprotocols_case_sensitively) {
  const char *prefs[] = {"Chat"};
  wire_request *req = negotiate("Sec-WebSocket-Protocol: chat\r\n", prefs, 1);
  cr_assert_null(wire_request_subprotocol(req).ptr);
  wire__request_free(req);
}

Test(handshake, chooses_no_subprotocol_when_client_offers_none) {
  const char *prefs[] = {"a"};
  wire_request *req = negotiate("", prefs, 1);
  cr_assert_null(wire_request_subprotocol(req).ptr);
  wire__request_free(req);
}

/* ---- origins ------------------------------------------------------------- */

static int origin_status(const char *origin_headers, const char *const *allowed, size_t n) {
  char s[1024];
  snprintf(s, sizeof s, "%s%s\r\n", GET("/"), origin_headers);
  wire_request *req = accepted(s);
  const char *why = NULL;
  int rc = wire__handshake_check(req, allowed, n, NULL, 0, &why);
  if (rc)
    cr_assert_not_null(why);
  wire__request_free(req);
  return rc;
}

static const char *const allowed[] = {"https://app.example.com", "http://localhost:8080"};

Test(handshake, accepts_allowed_origin) {
  cr_assert_eq(origin_status("Origin: http://localhost:8080\r\n", allowed, 2), 0);
}

Test(handshake, accepts_allowed_origin_in_other_case) {
  cr_assert_eq(origin_status("Origin: HTTPS://App.Example.COM\r\n", allowed, 2), 0);
}

Test(handshake, rejects_other_origin_with_403) {
  cr_assert_eq(origin_status("Origin: https://evil.example.com\r\n", allowed, 2), 403);
  cr_assert_eq(origin_status("Origin: https://app.example.com:443\r\n", allowed, 2), 403);
  cr_assert_eq(origin_status("Origin: null\r\n", allowed, 2), 403);
}

Test(handshake, rejects_missing_origin_with_403_when_list_is_set) {
  cr_assert_eq(origin_status("", allowed, 2), 403);
}

Test(handshake, rejects_two_origin_headers_with_403) {
  cr_assert_eq(origin_status("Origin: http://localhost:8080\r\nOrigin: http://localhost:8080\r\n",
                             allowed, 2),
               403);
}

Test(handshake, accepts_any_origin_without_a_list) {
  cr_assert_eq(origin_status("Origin: https://anything.example\r\n", NULL, 0), 0);
  cr_assert_eq(origin_status("", NULL, 0), 0);
}

/* ---- rejections ---------------------------------------------------------- */

Test(handshake, builds_exact_400_response_with_body) {
  char buf[512];
  int n = wire__http_error_response(400, "missing Sec-WebSocket-Key", buf, sizeof buf);
  assert_response(n, buf,
                  "HTTP/1.1 400 Bad Request\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: 25\r\n"
                  "Connection: close\r\n"
                  "\r\n"
                  "missing Sec-WebSocket-Key");
}

Test(handshake, builds_426_response_naming_version_13) {
  char buf[512];
  int n = wire__http_error_response(426, "Sec-WebSocket-Version must be 13", buf, sizeof buf);
  assert_response(n, buf,
                  "HTTP/1.1 426 Upgrade Required\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: 32\r\n"
                  "Connection: close, Upgrade\r\n"
                  "Upgrade: websocket\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "\r\n"
                  "Sec-WebSocket-Version must be 13");
}

Test(handshake, builds_405_response_with_allow_get) {
  char buf[512];
  int n = wire__http_error_response(405, NULL, buf, sizeof buf);
  assert_response(n, buf,
                  "HTTP/1.1 405 Method Not Allowed\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: 18\r\n"
                  "Connection: close\r\n"
                  "Allow: GET\r\n"
                  "\r\n"
                  "Method Not Allowed");
}

Test(handshake, uses_reason_phrase_as_body_when_none_given) {
  char buf[512];
  int n = wire__http_error_response(404, NULL, buf, sizeof buf);
  assert_response(n, buf,
                  "HTTP/1.1 404 Not Found\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Length: 9\r\n"
                  "Connection: close\r\n"
                  "\r\n"
                  "Not Found");
}

Test(handshake, names_every_handshake_status) {
  static const struct {
    int status;
    const char *line;
  } cases[] = {
      {400, "HTTP/1.1 400 Bad Request\r\n"},
      {403, "HTTP/1.1 403 Forbidden\r\n"},
      {404, "HTTP/1.1 404 Not Found\r\n"},
      {405, "HTTP/1.1 405 Method Not Allowed\r\n"},
      {408, "HTTP/1.1 408 Request Timeout\r\n"},
      {426, "HTTP/1.1 426 Upgrade Required\r\n"},
      {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
      {500, "HTTP/1.1 500 Internal Server Error\r\n"},
      {503, "HTTP/1.1 503 Service Unavailable\r\n"},
      {505, "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
      {499, "HTTP/1.1 499 Client Error\r\n"},
      {599, "HTTP/1.1 599 Server Error\r\n"},
  };
  char buf[512];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cr_assert_gt(wire__http_error_response(cases[i].status, NULL, buf, sizeof buf), 0);
    cr_assert(strncmp(buf, cases[i].line, strlen(cases[i].line)) == 0, "%s", buf);
  }
}

Test(handshake, refuses_status_outside_100_to_599) {
  char buf[512];
  cr_assert_eq(wire__http_error_response(99, NULL, buf, sizeof buf), -1);
  cr_assert_eq(wire__http_error_response(600, NULL, buf, sizeof buf), -1);
}

Test(handshake, error_response_fails_when_buffer_too_small) {
  char buf[40];
  cr_assert_eq(wire__http_error_response(400, "body", buf, sizeof buf), -1);
}

/* The parser's refusal feeds the error response: a 426 end to end. */
Test(handshake, version_8_request_gets_426_response_bytes) {
  wire_request *req;
  int status;
  const char *why;
  const char *s = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n";
  cr_assert_eq(parse_guarded(s, &req, &status, &why), -1);
  char buf[512];
  int n = wire__http_error_response(status, why, buf, sizeof buf);
  cr_assert_gt(n, 0);
  cr_assert(strncmp(buf, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
  cr_assert_not_null(strstr(buf, "\r\nSec-WebSocket-Version: 13\r\n"));
}

/* RFC 6455 §1.2's example request, answered with its example response. */
Test(handshake, answers_rfc_6455_opening_handshake_example) {
  wire_request *req = accepted("GET /chat HTTP/1.1\r\n"
                               "Host: server.example.com\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Origin: http://example.com\r\n"
                               "Sec-WebSocket-Protocol: chat, superchat\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "\r\n");
  const char *origins[] = {"http://example.com"}, *protocols[] = {"chat"};
  const char *why = NULL;
  cr_assert_eq(wire__handshake_check(req, origins, 1, protocols, 1, &why), 0);
  char buf[512];
  int n = wire__handshake_response(req, buf, sizeof buf);
  assert_response(n, buf,
                  "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                  "Sec-WebSocket-Protocol: chat\r\n"
                  "\r\n");
  wire__request_free(req);
}
