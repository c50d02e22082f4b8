/*
 * test_router.c -- router.c: pattern compilation (valid and invalid
 * patterns) and matching of parsed requests, with the captured parameters.
 */
#include "http_fixture.h"

#include <stdio.h>

static wire__route *compile(const char *pattern) {
  wire__route *r = NULL;
  cr_assert_eq(wire__route_compile(pattern, &r), 0, "pattern %s", pattern);
  return r;
}

/* Does `pattern` match a request for `target`? Parameters stay in *out when
 * out is given (free it), else the request is freed. */
static int match(const char *pattern, const char *target, wire_request **out) {
  char s[1024];
  snprintf(s, sizeof s, "GET %s HTTP/1.1\r\n" UPGRADE_HEADERS "\r\n", target);
  wire_request *req = accepted(s);
  wire__route *r = compile(pattern);
  int rc = wire__route_match(r, req);
  wire__route_free(r);
  if (out)
    *out = req;
  else
    wire__request_free(req);
  return rc;
}

static void assert_param(const wire_request *req, const char *name, const char *want) {
  wire_str v = wire_request_param(req, name);
  cr_assert_not_null(v.ptr, "no parameter %s", name);
  cr_assert_eq(v.len, strlen(want), "%s: got \"%.*s\"", name, (int)v.len, v.ptr);
  cr_assert(memcmp(v.ptr, want, v.len) == 0 && v.ptr[v.len] == 0, "%s: got \"%.*s\"", name,
            (int)v.len, v.ptr);
}

/* ---- literals ------------------------------------------------------------ */

Test(router, matches_identical_literal_path) {
  cr_assert_eq(match("/chat/lobby", "/chat/lobby", NULL), 1);
  cr_assert_eq(match("/chat/lobby", "/chat/other", NULL), 0);
  cr_assert_eq(match("/chat/lobby", "/chat", NULL), 0);
  cr_assert_eq(match("/chat", "/chat/lobby", NULL), 0);
}

Test(router, matches_root_only_for_root) {
  cr_assert_eq(match("/", "/", NULL), 1);
  cr_assert_eq(match("/", "/a", NULL), 0);
}

Test(router, treats_trailing_slash_as_significant) {
  cr_assert_eq(match("/chat/", "/chat/", NULL), 1);
  cr_assert_eq(match("/chat/", "/chat", NULL), 0);
  cr_assert_eq(match("/chat", "/chat/", NULL), 0);
}

Test(router, compares_literals_with_the_decoded_path) {
  cr_assert_eq(match("/caf\xc3\xa9", "/caf%C3%A9", NULL), 1);
  cr_assert_eq(match("/a b", "/a%20b", NULL), 1);
}

Test(router, ignores_the_query_string) {
  cr_assert_eq(match("/chat", "/chat?room=1", NULL), 1);
}

/* ---- parameters ---------------------------------------------------------- */

Test(router, captures_a_segment_parameter) {
  wire_request *req;
  cr_assert_eq(match("/chat/{room}", "/chat/lobby", &req), 1);
  cr_assert_eq(wire_request_param_count(req), 1);
  wire_str name, value;
  cr_assert_eq(wire_request_param_at(req, 0, &name, &value), 0);
  cr_assert_str_eq(name.ptr, "room");
  cr_assert_str_eq(value.ptr, "lobby");
  cr_assert_eq(wire_request_param_at(req, 1, &name, &value), WIRE_ENOTFOUND);
  cr_assert_null(wire_request_param(req, "other").ptr);
  wire__request_free(req);
}

Test(router, segment_parameter_needs_a_non_empty_segment) {
  cr_assert_eq(match("/chat/{room}", "/chat/", NULL), 0);
  cr_assert_eq(match("/chat/{room}", "/chat", NULL), 0);
  cr_assert_eq(match("/chat/{room}", "/chat/a/b", NULL), 0);
}

Test(router, decodes_parameters_and_keeps_encoded_slash_inside) {
  wire_request *req;
  cr_assert_eq(match("/chat/{room}", "/chat/a%2Fb%20c", &req), 1);
  assert_param(req, "room", "a/b c");
  wire__request_free(req);
}

Test(router, captures_several_parameters_in_order) {
  wire_request *req;
  cr_assert_eq(match("/u/{user}/posts/{post}", "/u/ada/posts/p1", &req), 1);
  wire_str name;
  cr_assert_eq(wire_request_param_at(req, 1, &name, NULL), 0);
  cr_assert_str_eq(name.ptr, "post");
  assert_param(req, "user", "ada");
  assert_param(req, "post", "p1");
  wire__request_free(req);
}

Test(router, int_parameter_takes_optional_minus_and_digits) {
  wire_request *req;
  cr_assert_eq(match("/items/{id:int}", "/items/-42", &req), 1);
  assert_param(req, "id", "-42");
  wire__request_free(req);
  cr_assert_eq(match("/items/{id:int}", "/items/007", NULL), 1);
}

Test(router, int_parameter_rejects_non_digits) {
  cr_assert_eq(match("/items/{id:int}", "/items/12a", NULL), 0);
  cr_assert_eq(match("/items/{id:int}", "/items/-", NULL), 0);
  cr_assert_eq(match("/items/{id:int}", "/items/1-2", NULL), 0);
  cr_assert_eq(match("/items/{id:int}", "/items/+1", NULL), 0);
  cr_assert_eq(match("/items/{id:int}", "/items/%2D", NULL), 0);
  cr_assert_eq(match("/items/{id:int}", "/items/", NULL), 0);
}

Test(router, path_parameter_takes_the_rest_of_the_path) {
  wire_request *req;
  cr_assert_eq(match("/files/{rest:path}", "/files/a/b%20c/d.txt?x=1", &req), 1);
  assert_param(req, "rest", "a/b c/d.txt");
  wire__request_free(req);
}

Test(router, path_parameter_may_be_empty_after_a_slash) {
  wire_request *req;
  cr_assert_eq(match("/files/{rest:path}", "/files/", &req), 1);
  assert_param(req, "rest", "");
  wire__request_free(req);
  cr_assert_eq(match("/files/{rest:path}", "/files", NULL), 0);
}

Test(router, non_match_leaves_request_unchanged) {
  wire_request *req;
  cr_assert_eq(match("/a/{x}/c", "/a/b/d", &req), 0);
  cr_assert_eq(wire_request_param_count(req), 0);
  cr_assert_null(req->params);
  wire__request_free(req);
}

Test(router, second_match_appends_to_existing_parameters) {
  wire_request *req = accepted(GET("/a/1") "\r\n");
  wire__route *r1 = compile("/{first}/1"), *r2 = compile("/a/{second:int}");
  cr_assert_eq(wire__route_match(r1, req), 1);
  cr_assert_eq(wire__route_match(r2, req), 1);
  cr_assert_eq(wire_request_param_count(req), 2);
  assert_param(req, "first", "a");
  assert_param(req, "second", "1");
  wire__route_free(r1);
  wire__route_free(r2);
  wire__request_free(req);
}

Test(router, parameters_outlive_the_route) {
  wire_request *req = accepted(GET("/r/x") "\r\n");
  wire__route *r = compile("/r/{name}");
  cr_assert_eq(wire__route_match(r, req), 1);
  wire__route_free(r);
  assert_param(req, "name", "x");
  wire__request_free(req);
}

/* ---- bad patterns -------------------------------------------------------- */

static void assert_bad(const char *pattern) {
  wire__route *r = (wire__route *)1;
  cr_assert_eq(wire__route_compile(pattern, &r), WIRE_EROUTE, "pattern \"%s\"", pattern);
  cr_assert_null(r);
}

Test(router, rejects_pattern_without_leading_slash) {
  assert_bad("");
  assert_bad("chat");
  assert_bad(NULL);
}

Test(router, rejects_path_parameter_before_the_last_segment) {
  assert_bad("/files/{rest:path}/x");
}

Test(router, rejects_duplicate_parameter_names) {
  assert_bad("/{a}/{a:int}");
}

Test(router, rejects_unknown_parameter_type) {
  assert_bad("/{a:uuid}");
}

Test(router, rejects_parameter_that_is_not_a_whole_segment) {
  assert_bad("/room-{id}");
  assert_bad("/{id}x");
  assert_bad("/{id");
  assert_bad("/id}");
}

Test(router, rejects_invalid_parameter_names) {
  assert_bad("/{}");
  assert_bad("/{1a}");
  assert_bad("/{a-b}");
  assert_bad("/{:int}");
}

Test(router, rejects_empty_segment_inside_pattern) {
  assert_bad("/a//b");
}

Test(router, rejects_query_or_fragment_in_pattern) {
  assert_bad("/a?b");
  assert_bad("/a#b");
}

Test(router, compiles_every_documented_form) {
  const char *good[] = {"/",
                        "/chat",
                        "/chat/",
                        "/chat/{room}",
                        "/u/{id:int}/x",
                        "/files/{rest:path}",
                        "/{a}/{b}/{c:path}"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    wire__route_free(compile(good[i]));
}
