/*
 * test_dispatch.c -- wire_dispatcher: first match wins, discriminator
 * detection and lookup, and the errors for unknown and invalid messages.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "wirecore.h"

static wire_doc *doc;
static wire_schema *schemas[8];
static size_t n_schemas;

static void setup(void) {
  cr_assert_eq(wire_doc_new(&doc), 0);
  n_schemas = 0;
}
static void teardown(void) {
  for (size_t i = 0; i < n_schemas; i++)
    wire_schema_free(schemas[i]);
  wire_doc_free(doc);
}

TestSuite(dispatch, .init = setup, .fini = teardown);

static void add(const char *text) {
  wire_error err;
  cr_assert_eq(wire_schema_compile(text, strlen(text), NULL, &schemas[n_schemas], &err), 0, "%s",
               err.message);
  n_schemas++;
}

static const wire_value *json(const char *text) {
  const wire_value *v;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, text, strlen(text), 0, &v, NULL), 0);
  return v;
}

static wire_dispatcher *make(void) {
  wire_dispatcher *d = NULL;
  cr_assert_eq(wire_dispatcher_new((const wire_schema *const *)schemas, n_schemas, &d), 0);
  return d;
}

static void add_tagged(void) {
  add("{\"type\":\"object\",\"required\":[\"type\",\"text\"],\"properties\":{"
      "\"type\":{\"const\":\"chat\"},\"text\":{\"type\":\"string\"}}}");
  add("{\"type\":\"object\",\"required\":[\"type\",\"room\"],\"properties\":{"
      "\"type\":{\"enum\":[\"join\"]},\"room\":{\"type\":\"string\"}}}");
  add("{\"$defs\":{\"leave\":{\"required\":[\"type\"],\"properties\":{\"type\":{\"const\":"
      "\"leave\"}}}},"
      "\"$ref\":\"#/$defs/leave\"}");
}

Test(dispatch, rejects_an_empty_schema_list) {
  wire_dispatcher *d = NULL;
  cr_assert_eq(wire_dispatcher_new(NULL, 0, &d), WIRE_EINVAL);
}

Test(dispatch, detects_a_const_discriminator) {
  add_tagged();
  wire_dispatcher *d = make();
  cr_assert_str_eq(wire_dispatcher_discriminator(d), "type");
  size_t idx = 99;
  wire_error err;
  cr_assert_eq(wire_dispatch(d, json("{\"type\":\"join\",\"room\":\"r\"}"), &idx, &err), 0);
  cr_assert_eq(idx, 1);
  cr_assert_eq(wire_dispatch(d, json("{\"type\":\"leave\"}"), &idx, &err), 0);
  cr_assert_eq(idx, 2);
  cr_assert_eq(wire_dispatch(d, json("{\"type\":\"chat\",\"text\":\"hi\"}"), &idx, NULL), 0);
  cr_assert_eq(idx, 0);
  wire_dispatcher_free(d);
}

Test(dispatch, reports_unknown_discriminator_value_as_unknown_message) {
  add_tagged();
  wire_dispatcher *d = make();
  size_t idx = 99;
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_dispatch(d, json("{\"type\":\"dance\"}"), &idx, &err), WIRE_EUNKNOWN_MESSAGE);
  cr_assert_eq(err.code, WIRE_EUNKNOWN_MESSAGE);
  cr_assert_str_eq(err.message, "unknown type \"dance\"");
  cr_assert_eq(idx, 99);
  cr_assert_eq(wire_dispatch(d, json("{\"text\":\"x\"}"), &idx, &err), WIRE_EUNKNOWN_MESSAGE);
  cr_assert(strstr(err.message, "no \"type\"") != NULL, "%s", err.message);
  cr_assert_eq(wire_dispatch(d, json("[1]"), &idx, &err), WIRE_EUNKNOWN_MESSAGE);
  wire_dispatcher_free(d);
}

Test(dispatch, reports_known_kind_that_fails_as_validation_error) {
  add_tagged();
  wire_dispatcher *d = make();
  size_t idx = 99;
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_dispatch(d, json("{\"type\":\"chat\",\"text\":5}"), &idx, &err),
               WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/text");
  cr_assert_str_eq(err.keyword, "type");
  cr_assert_str_eq(err.schema_path, "/properties/text/type");
  wire_dispatcher_free(d);
}

Test(dispatch, falls_back_to_first_match_without_discriminator) {
  add("{\"type\":\"object\",\"required\":[\"a\"]}");
  add("{\"type\":\"object\",\"required\":[\"b\"]}");
  add("{\"type\":\"object\"}");
  wire_dispatcher *d = make();
  cr_assert_null(wire_dispatcher_discriminator(d));
  size_t idx;
  cr_assert_eq(wire_dispatch(d, json("{\"b\":1}"), &idx, NULL), 0);
  cr_assert_eq(idx, 1);
  cr_assert_eq(wire_dispatch(d, json("{\"a\":1,\"b\":1}"), &idx, NULL), 0);
  cr_assert_eq(idx, 0, "the first matching schema wins");
  cr_assert_eq(wire_dispatch(d, json("{}"), &idx, NULL), 0);
  cr_assert_eq(idx, 2);
  wire_dispatcher_free(d);
}

Test(dispatch, lists_why_each_candidate_failed) {
  add("{\"type\":\"object\",\"required\":[\"a\"]}");
  add("{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"string\"}}}");
  wire_dispatcher *d = make();
  size_t idx;
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_dispatch(d, json("{\"b\":1}"), &idx, &err), WIRE_EUNKNOWN_MESSAGE);
  cr_assert_eq(err.code, WIRE_EUNKNOWN_MESSAGE);
  cr_assert_str_eq(err.message, "no handler matches: [0] missing required property \"a\"; "
                                "[1] /b: expected string, got integer");
  cr_assert_eq(wire_dispatch(d, json("3"), &idx, NULL), WIRE_EUNKNOWN_MESSAGE);
  wire_dispatcher_free(d);
}

Test(dispatch, needs_distinct_values_for_a_discriminator) {
  add("{\"required\":[\"type\"],\"properties\":{\"type\":{\"const\":\"a\"}}}");
  add("{\"required\":[\"type\"],\"properties\":{\"type\":{\"const\":\"a\"}},\"minProperties\":2}");
  wire_dispatcher *d = make();
  cr_assert_null(wire_dispatcher_discriminator(d));
  wire_dispatcher_free(d);
}

Test(dispatch, needs_the_property_required_in_every_schema) {
  add("{\"required\":[\"type\"],\"properties\":{\"type\":{\"const\":\"a\"}}}");
  add("{\"properties\":{\"type\":{\"const\":\"b\"}}}");
  wire_dispatcher *d = make();
  cr_assert_null(wire_dispatcher_discriminator(d));
  size_t idx;
  cr_assert_eq(wire_dispatch(d, json("{}"), &idx, NULL), 0);
  cr_assert_eq(idx, 1);
  wire_dispatcher_free(d);
}

Test(dispatch, picks_a_later_required_property_as_discriminator) {
  add("{\"required\":[\"id\",\"kind\"],\"properties\":{\"kind\":{\"const\":\"x\"}}}");
  add("{\"required\":[\"kind\",\"id\"],\"properties\":{\"kind\":{\"const\":\"y\"}}}");
  wire_dispatcher *d = make();
  cr_assert_str_eq(wire_dispatcher_discriminator(d), "kind");
  size_t idx;
  cr_assert_eq(wire_dispatch(d, json("{\"id\":1,\"kind\":\"y\"}"), &idx, NULL), 0);
  cr_assert_eq(idx, 1);
  wire_dispatcher_free(d);
}

Test(dispatch, keeps_its_own_copy_of_the_schema_array) {
  add_tagged();
  const wire_schema *tmp[8];
  memcpy(tmp, schemas, sizeof tmp);
  wire_dispatcher *d = NULL;
  cr_assert_eq(wire_dispatcher_new(tmp, n_schemas, &d), 0);
  memset(tmp, 0, sizeof tmp); /* the caller's array may go away after _new */
  size_t idx = 99;
  cr_assert_eq(wire_dispatch(d, json("{\"type\":\"join\",\"room\":\"r\"}"), &idx, NULL), 0);
  cr_assert_eq(idx, 1);
  cr_assert_eq(wire_dispatch(d, json("{\"type\":\"chat\",\"text\":\"hi\"}"), &idx, NULL), 0);
  cr_assert_eq(idx, 0);
  wire_dispatcher_free(d);
}
