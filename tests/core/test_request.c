/*
 * test_request.c -- the upgrade request parser (request.c): every syntax and
 * RFC 6455 §4.2.1 rule, the decoded path and query, and the accessors.
 * Inputs end at a guard page, so an over-read crashes the test.
 */
#include "http_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static void assert_str(wire_str s, const char *want) {
  cr_assert_not_null(s.ptr, "expected \"%s\", got NULL", want);
  cr_assert_eq(s.len, strlen(want), "expected \"%s\", got \"%.*s\"", want, (int)s.len, s.ptr);
  cr_assert(memcmp(s.ptr, want, s.len) == 0, "expected \"%s\", got \"%.*s\"", want, (int)s.len,
            s.ptr);
  cr_assert_eq(s.ptr[s.len], 0, "not NUL-terminated");
}

/* ---- a valid request ----------------------------------------------------- */

Test(request, parses_minimal_upgrade_request_and_returns_head_length) {
  const char *s = GET("/chat") "\r\n";
  wire_request *req = accepted(s);
  assert_str(req->method, "GET");
  assert_str(wire_request_target(req), "/chat");
  assert_str(wire_request_path(req), "/chat");
  cr_assert_eq(wire_request_header_count(req), 5);
  cr_assert_null(wire_request_subprotocol(req).ptr);
  cr_assert_eq(wire_request_param_count(req), 0);
  wire__request_free(req);
}

Test(request, head_length_excludes_bytes_after_blank_line) {
  const char *s = GET("/") "\r\n\x81\x85 frame bytes";
  wire_request *req;
  int status;
  const char *why;
  int rc = parse_guarded(s, &req, &status, &why);
  cr_assert_eq(rc, (int)(strstr(s, "\r\n\r\n") - s) + 4);
  wire__request_free(req);
}

Test(request, returns_partial_for_every_prefix_of_the_head) {
  const char *s = GET("/a?b=c") "Origin: http://x\r\n\r\n";
  size_t len = strlen(s);
  for (size_t n = 0; n < len; n++) {
    char *p = guard_copy(s, n);
    wire_request *req = (wire_request *)1;
    int status = 0;
    const char *why = NULL;
    cr_assert_eq(wire__request_parse(p, n, &req, &status, &why), -2, "prefix %zu", n);
    cr_assert_null(req);
    guard_free(p, n);
  }
}

Test(request, returns_partial_for_empty_input_even_without_a_buffer) {
  wire_request *req = (wire_request *)1;
  int status = 0;
  const char *why = NULL;
  cr_assert_eq(wire__request_parse(NULL, 0, &req, &status, &why), -2);
  cr_assert_null(req);
}

Test(request, keeps_header_names_as_sent_and_values_trimmed_in_order) {
  wire_request *req = accepted(GET("/") "X-Custom:  \t spaced value\t \r\nx-empty:\r\n\r\n");
  wire_str name, value;
  cr_assert_eq(wire_request_header_count(req), 7);
  cr_assert_eq(wire_request_header_at(req, 0, &name, &value), 0);
  assert_str(name, "Host");
  assert_str(value, "example.com");
  cr_assert_eq(wire_request_header_at(req, 5, &name, &value), 0);
  assert_str(name, "X-Custom");
  assert_str(value, "spaced value");
  cr_assert_eq(wire_request_header_at(req, 6, &name, &value), 0);
  assert_str(name, "x-empty");
  assert_str(value, "");
  cr_assert_eq(wire_request_header_at(req, 7, &name, &value), WIRE_ENOTFOUND);
  wire__request_free(req);
}

Test(request, header_lookup_is_case_insensitive_and_returns_the_first) {
  wire_request *req = accepted(GET("/") "X-A: one\r\nx-a: two\r\n\r\n");
  assert_str(wire_request_header(req, "x-A"), "one");
  assert_str(wire_request_header(req, "SEC-WEBSOCKET-KEY"), RFC_KEY);
  cr_assert_null(wire_request_header(req, "missing").ptr);
  wire__request_free(req);
}

Test(request, accepts_obs_text_in_header_values) {
  wire_request *req = accepted(GET("/") "X-Name: caf\xc3\xa9\r\n\r\n");
  assert_str(wire_request_header(req, "x-name"), "caf\xc3\xa9");
  wire__request_free(req);
}

/* ---- request line -------------------------------------------------------- */

Test(request, rejects_post_with_405) {
  cr_assert_eq(refusal("POST / HTTP/1.1\r\n" UPGRADE_HEADERS "\r\n"), 405);
}

Test(request, rejects_lowercase_get_with_405) {
  cr_assert_eq(refusal("get / HTTP/1.1\r\n" UPGRADE_HEADERS "\r\n"), 405);
}

Test(request, rejects_http_1_0_with_505) {
  cr_assert_eq(refusal("GET / HTTP/1.0\r\n" UPGRADE_HEADERS "\r\n"), 505);
}

Test(request, rejects_http_2_0_with_505) {
  cr_assert_eq(refusal("GET / HTTP/2.0\r\n" UPGRADE_HEADERS "\r\n"), 505);
}

Test(request, rejects_malformed_version_with_400) {
  cr_assert_eq(refusal("GET / HTTP/1.1x\r\n" UPGRADE_HEADERS "\r\n"), 400);
  cr_assert_eq(refusal("GET / http/1.1\r\n" UPGRADE_HEADERS "\r\n"), 400);
  cr_assert_eq(refusal("GET / HTTP/11\r\n" UPGRADE_HEADERS "\r\n"), 400);
}

Test(request, rejects_double_space_in_request_line_with_400) {
  cr_assert_eq(refusal("GET  / HTTP/1.1\r\n" UPGRADE_HEADERS "\r\n"), 400);
  cr_assert_eq(refusal("GET / HTTP/1.1 \r\n" UPGRADE_HEADERS "\r\n"), 400);
}

Test(request, rejects_leading_empty_line_with_400) {
  cr_assert_eq(refusal("\r\nGET / HTTP/1.1\r\n" UPGRADE_HEADERS "\r\n"), 400);
}

Test(request, rejects_absolute_form_target_with_400) {
  cr_assert_eq(refusal(GET("http://example.com/") "\r\n"), 400);
}

Test(request, rejects_asterisk_target_with_400) {
  cr_assert_eq(refusal(GET("*") "\r\n"), 400);
}

Test(request, rejects_characters_outside_rfc_3986_in_target_with_400) {
  cr_assert_eq(refusal(GET("/a\"b") "\r\n"), 400);
  cr_assert_eq(refusal(GET("/a{b}") "\r\n"), 400);
  cr_assert_eq(refusal(GET("/a#frag") "\r\n"), 400);
  cr_assert_eq(refusal(GET("/caf\xc3\xa9") "\r\n"), 400);
}

/* ---- line endings and header syntax ------------------------------------- */

Test(request, rejects_bare_lf_with_400) {
  cr_assert_eq(refusal("GET / HTTP/1.1\nHost: x\n\n"), 400);
  cr_assert_eq(refusal(GET("/") "X: y\n\r\n"), 400);
}

Test(request, rejects_bare_cr_with_400) {
  cr_assert_eq(refusal(GET("/") "X: a\rb\r\n\r\n"), 400);
}

Test(request, fails_fast_on_bad_header_before_blank_line) {
  cr_assert_eq(refusal("GET / HTTP/1.1\r\nBad Header: x\r\nHost: still-coming"), 400);
  cr_assert_eq(refusal("GET / HTTP/1.0\r\n"), 505);
}

Test(request, rejects_obs_fold_with_400) {
  cr_assert_eq(refusal(GET("/") "X-Long: part one\r\n  part two\r\n\r\n"), 400);
  cr_assert_eq(refusal(GET("/") "X-Long: part one\r\n\tpart two\r\n\r\n"), 400);
}

Test(request, rejects_whitespace_before_colon_with_400) {
  cr_assert_eq(refusal(GET("/") "X-Name : v\r\n\r\n"), 400);
}

Test(request, rejects_non_token_header_name_with_400) {
  cr_assert_eq(refusal(GET("/") "X(Name): v\r\n\r\n"), 400);
  cr_assert_eq(refusal(GET("/") ": v\r\n\r\n"), 400);
  cr_assert_eq(refusal(GET("/") "NoColon\r\n\r\n"), 400);
}

Test(request, rejects_control_character_in_header_value_with_400) {
  cr_assert_eq(refusal(GET("/") "X-Name: a\x01"
                                "b\r\n\r\n"),
               400);
  cr_assert_eq(refusal(GET("/") "X-Name: a\x7f\r\n\r\n"), 400);
}

Test(request, rejects_nul_in_header_value_with_400) {
  const char s[] = GET("/") "X: a\0b\r\n\r\n";
  size_t len = sizeof s - 1;
  char *p = guard_copy(s, len);
  wire_request *req;
  int status;
  const char *why;
  cr_assert_eq(wire__request_parse(p, len, &req, &status, &why), -1);
  cr_assert_eq(status, 400);
  guard_free(p, len);
}

/* ---- RFC 6455 §4.2.1 headers -------------------------------------------- */

Test(request, rejects_missing_host_with_400) {
  cr_assert_eq(refusal("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n"),
               400);
}

Test(request, rejects_duplicate_host_with_400) {
  cr_assert_eq(refusal(GET("/") "Host: other.example\r\n\r\n"), 400);
}

Test(request, rejects_empty_host_with_400) {
  cr_assert_eq(refusal("GET / HTTP/1.1\r\nHost:\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n"),
               400);
}

#define WITHOUT_UPGRADE(upgrade_line, connection_line)                                             \
  "GET / HTTP/1.1\r\nHost: h\r\n" upgrade_line connection_line "Sec-WebSocket-Key: " RFC_KEY       \
  "\r\nSec-WebSocket-Version: 13\r\n\r\n"

Test(request, rejects_missing_upgrade_header_with_400) {
  cr_assert_eq(refusal(WITHOUT_UPGRADE("", "Connection: Upgrade\r\n")), 400);
}

Test(request, rejects_upgrade_without_websocket_token_with_400) {
  cr_assert_eq(refusal(WITHOUT_UPGRADE("Upgrade: h2c\r\n", "Connection: Upgrade\r\n")), 400);
  cr_assert_eq(refusal(WITHOUT_UPGRADE("Upgrade: websockets\r\n", "Connection: Upgrade\r\n")), 400);
}

Test(request, accepts_upgrade_token_case_insensitively_within_a_list) {
  wire__request_free(
      accepted(WITHOUT_UPGRADE("Upgrade: WebSocket\r\n", "Connection: upgrade\r\n")));
  wire__request_free(
      accepted(WITHOUT_UPGRADE("Upgrade: h2c, WEBSOCKET\r\n", "Connection: Upgrade\r\n")));
}

Test(request, rejects_missing_connection_header_with_400) {
  cr_assert_eq(refusal(WITHOUT_UPGRADE("Upgrade: websocket\r\n", "")), 400);
}

Test(request, rejects_connection_without_upgrade_token_with_400) {
  cr_assert_eq(refusal(WITHOUT_UPGRADE("Upgrade: websocket\r\n", "Connection: keep-alive\r\n")),
               400);
  cr_assert_eq(refusal(WITHOUT_UPGRADE("Upgrade: websocket\r\n", "Connection: upgraded\r\n")), 400);
}

Test(request, accepts_upgrade_token_anywhere_in_connection_list) {
  wire__request_free(
      accepted(WITHOUT_UPGRADE("Upgrade: websocket\r\n", "Connection: keep-alive, UPGRADE\r\n")));
  wire__request_free(accepted(WITHOUT_UPGRADE(
      "Upgrade: websocket\r\n", "Connection: keep-alive\r\nConnection: Upgrade\r\n")));
}

#define WITH_KEY(key_lines)                                                                        \
  "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" key_lines           \
  "Sec-WebSocket-Version: 13\r\n\r\n"

Test(request, rejects_missing_key_with_400) {
  cr_assert_eq(refusal(WITH_KEY("")), 400);
}

Test(request, rejects_key_not_decoding_to_16_bytes_with_400) {
  cr_assert_eq(refusal(WITH_KEY("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n")), 400);
  cr_assert_eq(refusal(WITH_KEY("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n")), 400);
  cr_assert_eq(refusal(WITH_KEY("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZXg=\r\n")), 400);
  cr_assert_eq(refusal(WITH_KEY("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n")), 400);
  cr_assert_eq(refusal(WITH_KEY("Sec-WebSocket-Key: \r\n")), 400);
}

Test(request, rejects_duplicate_key_with_400) {
  cr_assert_eq(
      refusal(WITH_KEY("Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Key: " RFC_KEY "\r\n")),
      400);
}

#define WITH_VERSION(version_lines)                                                                \
  "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                     \
  "Sec-WebSocket-Key: " RFC_KEY "\r\n" version_lines "\r\n"

Test(request, rejects_version_8_with_426) {
  cr_assert_eq(refusal(WITH_VERSION("Sec-WebSocket-Version: 8\r\n")), 426);
}

Test(request, rejects_missing_version_with_426) {
  cr_assert_eq(refusal(WITH_VERSION("")), 426);
}

Test(request, rejects_duplicate_version_with_400) {
  cr_assert_eq(refusal(WITH_VERSION("Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n")),
               400);
}

/* ---- path and query ------------------------------------------------------ */

Test(request, percent_decodes_the_path_and_keeps_the_raw_target) {
  wire_request *req = accepted(GET("/caf%C3%A9/a%2Fb%20c?x=1") "\r\n");
  assert_str(wire_request_path(req), "/caf\xc3\xa9/a/b c");
  assert_str(wire_request_target(req), "/caf%C3%A9/a%2Fb%20c?x=1");
  assert_str(req->query_string, "x=1");
  wire__request_free(req);
}

Test(request, leaves_plus_in_path_undecoded) {
  wire_request *req = accepted(GET("/a+b") "\r\n");
  assert_str(wire_request_path(req), "/a+b");
  wire__request_free(req);
}

Test(request, rejects_encoded_nul_in_path_with_400) {
  cr_assert_eq(refusal(GET("/a%00b") "\r\n"), 400);
}

Test(request, rejects_invalid_percent_escape_with_400) {
  cr_assert_eq(refusal(GET("/a%zz") "\r\n"), 400);
  cr_assert_eq(refusal(GET("/a%4") "\r\n"), 400);
  cr_assert_eq(refusal(GET("/a%") "\r\n"), 400);
  cr_assert_eq(refusal(GET("/a?q=%G1") "\r\n"), 400);
}

Test(request, parses_query_pairs_in_order_keeping_repeated_keys) {
  wire_request *req = accepted(GET("/?a=1&b=2&a=3") "\r\n");
  wire_str k, v;
  cr_assert_eq(wire_request_query_count(req), 3);
  cr_assert_eq(wire_request_query_at(req, 2, &k, &v), 0);
  assert_str(k, "a");
  assert_str(v, "3");
  assert_str(wire_request_query(req, "a"), "1");
  assert_str(wire_request_query(req, "b"), "2");
  cr_assert_null(wire_request_query(req, "c").ptr);
  cr_assert_eq(wire_request_query_at(req, 3, &k, &v), WIRE_ENOTFOUND);
  wire__request_free(req);
}

Test(request, decodes_plus_and_percent_in_query_keys_and_values) {
  wire_request *req = accepted(GET("/?full+name=Ada+L%C3%B6wen%26co&x%3Dy=%2B") "\r\n");
  assert_str(wire_request_query(req, "full name"), "Ada L\xc3\xb6wen&co");
  assert_str(wire_request_query(req, "x=y"), "+");
  wire__request_free(req);
}

Test(request, gives_keys_without_equals_an_empty_value) {
  wire_request *req = accepted(GET("/?flag&k=") "\r\n");
  cr_assert_eq(wire_request_query_count(req), 2);
  assert_str(wire_request_query(req, "flag"), "");
  assert_str(wire_request_query(req, "k"), "");
  wire__request_free(req);
}

Test(request, skips_empty_query_pairs) {
  wire_request *req = accepted(GET("/?&&a=1&&") "\r\n");
  cr_assert_eq(wire_request_query_count(req), 1);
  assert_str(wire_request_query(req, "a"), "1");
  wire__request_free(req);
}

Test(request, splits_query_at_first_question_mark_only) {
  wire_request *req = accepted(GET("/p?u=/x?y") "\r\n");
  assert_str(wire_request_path(req), "/p");
  assert_str(wire_request_query(req, "u"), "/x?y");
  wire__request_free(req);
}

Test(request, has_no_query_pairs_without_a_query) {
  wire_request *req = accepted(GET("/p?") "\r\n");
  cr_assert_eq(wire_request_query_count(req), 0);
  assert_str(req->query_string, "");
  wire__request_free(req);
}

/* ---- peer and accessors -------------------------------------------------- */

Test(request, records_ipv4_peer) {
  wire_request *req = accepted(GET("/") "\r\n");
  struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(54321)};
  inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
  wire__request_set_peer(req, (struct sockaddr *)&in);
  assert_str(wire_request_remote_addr(req), "127.0.0.1");
  cr_assert_eq(wire_request_remote_port(req), 54321);
  wire__request_free(req);
}

Test(request, records_ipv6_peer) {
  wire_request *req = accepted(GET("/") "\r\n");
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
  inet_pton(AF_INET6, "::1", &in6.sin6_addr);
  wire__request_set_peer(req, (struct sockaddr *)&in6);
  assert_str(wire_request_remote_addr(req), "::1");
  cr_assert_eq(wire_request_remote_port(req), 9);
  wire__request_free(req);
}

Test(request, accessors_tolerate_null_request) {
  cr_assert_null(wire_request_path(NULL).ptr);
  cr_assert_null(wire_request_header(NULL, "host").ptr);
  cr_assert_eq(wire_request_query_count(NULL), 0);
  cr_assert_eq(wire_request_param_at(NULL, 0, NULL, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_request_remote_port(NULL), 0);
  wire__request_free(NULL);
}

Test(request, request_alloc_memory_is_freed_with_the_request) {
  wire_request *req = accepted(GET("/") "\r\n");
  for (int i = 0; i < 4; i++)
    memset(wire__request_alloc(req, 100), 0xab, 100);
  wire__request_free(req);
}

/* ---- the compact view kept after the upgrade ----------------------------- */

Test(request, compact_view_answers_every_accessor_like_the_parsed_one) {
  char big[300]; /* a value over 127 bytes: a two-byte length */
  memset(big, 'v', sizeof big - 1);
  big[sizeof big - 1] = 0;
  char head[1024];
  snprintf(head, sizeof head,
           "GET /lo%%62by/x?a=1&b=two%%20words&empty HTTP/1.1\r\nHost: h\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "X-Big: %s\r\nx-two: 2\r\n\r\n",
           big);
  wire_request *req = accepted(head);
  wire__route *route;
  cr_assert_eq(wire__route_compile("/{room}/x", &route), 0);
  cr_assert_eq(wire__route_match(route, req), 1);
  wire__route_free(route);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4321)};
  inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
  wire__request_set_peer(req, (struct sockaddr *)&sin);
  char *sub = wire__request_alloc(req, 8);
  memcpy(sub, "chat", 5);
  req->subprotocol = (wire_str){sub, 4};
  wire_request *c = wire__request_compact(req);
  cr_assert_eq(c->compact, 1);
  assert_str(wire_request_target(c), "/lo%62by/x?a=1&b=two%20words&empty");
  assert_str(wire_request_path(c), "/lobby/x");
  assert_str(wire_request_subprotocol(c), "chat");
  assert_str(wire_request_remote_addr(c), "10.1.2.3");
  cr_assert_eq(wire_request_remote_port(c), 4321);
  /* handshake-only headers left out, the rest in order */
  cr_assert_eq(wire_request_header_count(c), 3);
  wire_str n, v;
  cr_assert_eq(wire_request_header_at(c, 1, &n, &v), 0);
  assert_str(n, "X-Big");
  assert_str(v, big);
  cr_assert_eq(wire_request_header_at(c, 3, &n, &v), WIRE_ENOTFOUND);
  assert_str(wire_request_header(c, "X-TWO"), "2");
  assert_str(wire_request_header(c, "host"), "h");
  cr_assert_null(wire_request_header(c, "upgrade").ptr);
  cr_assert_eq(wire_request_query_count(c), 3);
  assert_str(wire_request_query(c, "b"), "two words");
  assert_str(wire_request_query(c, "empty"), "");
  cr_assert_eq(wire_request_query_at(c, 0, &n, &v), 0);
  assert_str(n, "a");
  assert_str(v, "1");
  cr_assert_null(wire_request_query(c, "B").ptr); /* query keys are exact */
  cr_assert_eq(wire_request_param_count(c), 1);
  assert_str(wire_request_param(c, "room"), "lobby");
  cr_assert_eq(wire_request_param_at(c, 0, &n, &v), 0);
  assert_str(n, "room");
  cr_assert_eq(wire_request_param_at(c, 1, &n, &v), WIRE_ENOTFOUND);
  cr_assert_eq(wire__request_compact(c), c); /* once only */
  wire__request_free(c);
}

Test(request, compact_view_of_a_plain_path_shares_the_target_and_has_no_subprotocol) {
  wire_request *c = wire__request_compact(accepted(GET("/idle") "\r\n"));
  cr_assert_eq(c->compact, 1);
  assert_str(wire_request_path(c), "/idle");
  assert_str(wire_request_target(c), "/idle");
  cr_assert_null(wire_request_subprotocol(c).ptr);
  assert_str(wire_request_remote_addr(c), "");
  cr_assert_eq(wire_request_header_count(c), 1);
  cr_assert_eq(wire_request_query_count(c), 0);
  cr_assert_null(wire_request_param(c, "x").ptr);
  wire__request_free(c);
}
