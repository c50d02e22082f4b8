/*
 * test_schema.c -- the schema compiler and validator through the public API:
 * error reports (instance pointer, keyword, schema pointer, message), compile
 * errors, numbers, regex dialect, resolver use, and the no-allocation claim.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

static wire_doc *doc;

static void setup(void) {
  cr_assert_eq(wire_doc_new(&doc), 0);
}
static void teardown(void) {
  wire_doc_free(doc);
}

TestSuite(schema, .init = setup, .fini = teardown);

static wire_schema *compile_opts(const char *text, const wire_schema_options *opts) {
  wire_schema *s = NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_schema_compile(text, strlen(text), opts, &s, &err);
  cr_assert_eq(rc, 0, "compiling %s: %s (at %s)", text, err.message, err.schema_path);
  return s;
}

static wire_schema *compile(const char *text) {
  return compile_opts(text, NULL);
}

static const wire_value *json(const char *text) {
  const wire_value *v = NULL;
  wire_error err;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, text, strlen(text), 0, &v, &err), 0, "%s",
               err.message);
  return v;
}

/* Validate and return the code; `err` gets the details. */
static int check(const wire_schema *s, const char *instance, wire_error *err) {
  memset(err, 0, sizeof *err);
  return wire_schema_validate(s, json(instance), err);
}

static const char *chat_schema =
    "{\"type\":\"object\",\"required\":[\"type\",\"text\"],"
    "\"properties\":{\"type\":{\"const\":\"chat\"},\"text\":{\"type\":\"string\",\"maxLength\":5},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}},"
    "\"mood\":{\"enum\":[\"happy\",\"sad\"]}},\"additionalProperties\":false}";

Test(schema, accepts_a_valid_instance_and_leaves_err_untouched) {
  wire_schema *s = compile(chat_schema);
  wire_error err;
  cr_assert_eq(
      check(s, "{\"type\":\"chat\",\"text\":\"hi\",\"tags\":[\"a\"],\"mood\":\"sad\"}", &err), 0);
  cr_assert_eq(err.code, 0);
  wire_schema_free(s);
}

Test(schema, reports_type_failure_with_pointer_keyword_schema_path_and_message) {
  wire_schema *s = compile(chat_schema);
  wire_error err;
  cr_assert_eq(check(s, "{\"type\":\"chat\",\"text\":42}", &err), WIRE_EVALIDATION);
  cr_assert_eq(err.code, WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/text");
  cr_assert_str_eq(err.keyword, "type");
  cr_assert_str_eq(err.schema_path, "/properties/text/type");
  cr_assert_str_eq(err.message, "expected string, got integer");
  wire_schema_free(s);
}

Test(schema, reports_nested_array_item_pattern_failure) {
  wire_schema *s = compile(chat_schema);
  wire_error err;
  cr_assert_eq(check(s, "{\"type\":\"chat\",\"text\":\"x\",\"tags\":[\"ok\",\"NO\"]}", &err),
               WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/tags/1");
  cr_assert_str_eq(err.keyword, "pattern");
  cr_assert_str_eq(err.schema_path, "/properties/tags/items/pattern");
  cr_assert(strstr(err.message, "^[a-z]+$") != NULL, "%s", err.message);
  wire_schema_free(s);
}

Test(schema, reports_missing_required_property_at_the_object) {
  wire_schema *s = compile(chat_schema);
  wire_error err;
  cr_assert_eq(check(s, "{\"type\":\"chat\"}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "");
  cr_assert_str_eq(err.keyword, "required");
  cr_assert_str_eq(err.schema_path, "/required");
  cr_assert_str_eq(err.message, "missing required property \"text\"");
  wire_schema_free(s);
}

Test(schema, reports_additional_property_with_its_pointer) {
  wire_schema *s = compile(chat_schema);
  wire_error err;
  cr_assert_eq(check(s, "{\"type\":\"chat\",\"text\":\"a\",\"a/b~\":1}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/a~1b~0");
  cr_assert_str_eq(err.keyword, "additionalProperties");
  cr_assert_str_eq(err.schema_path, "/additionalProperties");
  wire_schema_free(s);
}

Test(schema, counts_code_points_for_string_length) {
  wire_schema *s = compile(chat_schema);
  wire_error err;
  /* five code points, ten bytes */
  cr_assert_eq(
      check(s, "{\"type\":\"chat\",\"text\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", &err),
      0);
  cr_assert_eq(check(s, "{\"type\":\"chat\",\"text\":\"abcdef\"}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "maxLength");
  wire_schema_free(s);
}

Test(schema, reports_enum_and_const_failures) {
  wire_schema *s = compile(chat_schema);
  wire_error err;
  cr_assert_eq(check(s, "{\"type\":\"chat\",\"text\":\"a\",\"mood\":\"meh\"}", &err),
               WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "enum");
  cr_assert_str_eq(err.path, "/mood");
  cr_assert_eq(check(s, "{\"type\":\"join\",\"text\":\"a\"}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "const");
  cr_assert_str_eq(err.schema_path, "/properties/type/const");
  wire_schema_free(s);
}

Test(schema, reports_the_referenced_schema_location_through_ref) {
  wire_schema *s = compile("{\"$defs\":{\"n\":{\"type\":\"integer\",\"minimum\":3}},"
                           "\"properties\":{\"a\":{\"$ref\":\"#/$defs/n\"}}}");
  wire_error err;
  cr_assert_eq(check(s, "{\"a\":1}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/a");
  cr_assert_str_eq(err.keyword, "minimum");
  cr_assert_str_eq(err.schema_path, "/$defs/n/minimum");
  cr_assert_str_eq(err.message, "1 is less than the minimum 3");
  wire_schema_free(s);
}

Test(schema, accepts_null_err_and_gives_the_same_answer) {
  wire_schema *s = compile(chat_schema);
  cr_assert_eq(wire_schema_validate(s, json("{\"type\":\"chat\",\"text\":1}"), NULL),
               WIRE_EVALIDATION);
  cr_assert_eq(wire_schema_validate(s, json("{\"type\":\"chat\",\"text\":\"1\"}"), NULL), 0);
  wire_schema_free(s);
}

static void expect_compile_error(const char *text, const char *schema_path, const char *needle) {
  wire_schema *s = NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_schema_compile(text, strlen(text), NULL, &s, &err);
  cr_assert_eq(rc, WIRE_ESCHEMA, "%s compiled (rc %d)", text, rc);
  cr_assert_null(s);
  cr_assert_eq(err.code, WIRE_ESCHEMA);
  cr_assert_str_eq(err.schema_path, schema_path, "%s: schema_path %s", text, err.schema_path);
  cr_assert(strstr(err.message, needle) != NULL, "%s: message \"%s\"", text, err.message);
}

Test(schema, rejects_wrong_keyword_types_at_compile_time) {
  expect_compile_error("{\"type\":\"strin\"}", "/type", "unknown type");
  expect_compile_error("{\"properties\":{\"a\":{\"minLength\":-1}}}", "/properties/a/minLength",
                       "non-negative integer");
  expect_compile_error("{\"required\":\"a\"}", "/required", "array of strings");
  expect_compile_error("{\"allOf\":[]}", "/allOf", "non-empty array");
  expect_compile_error("{\"multipleOf\":0}", "/multipleOf", "greater than 0");
  expect_compile_error("{\"items\":3}", "/items", "must be a schema");
}

Test(schema, rejects_bad_regex_at_compile_time) {
  expect_compile_error("{\"pattern\":\"(ab\"}", "/pattern", "invalid regular expression");
  expect_compile_error("{\"patternProperties\":{\"[\":true}}", "/patternProperties",
                       "invalid regular expression");
  expect_compile_error("{\"pattern\":\"\\\\a\"}", "/pattern", "invalid escape");
}

Test(schema, rejects_unresolvable_refs_at_compile_time) {
  expect_compile_error("{\"$ref\":\"#/$defs/missing\"}", "/$ref", "no such location");
  expect_compile_error("{\"$ref\":\"#nope\"}", "/$ref", "no anchor");
  expect_compile_error("{\"properties\":{\"x\":{\"$ref\":\"http://example.com/s.json\"}}}",
                       "/properties/x/$ref", "unknown document");
}

Test(schema, rejects_text_that_is_not_json_and_non_schema_roots) {
  wire_schema *s = NULL;
  wire_error err;
  cr_assert_eq(wire_schema_compile("{", 1, NULL, &s, &err), WIRE_EDESERIALIZE);
  cr_assert_eq(wire_schema_compile("3", 1, NULL, &s, &err), WIRE_ESCHEMA);
  cr_assert_null(s);
}

Test(schema, compiles_boolean_schemas) {
  wire_schema *t = compile("true"), *f = compile("false");
  wire_error err;
  cr_assert_eq(check(t, "[1,2]", &err), 0);
  cr_assert_eq(check(f, "1", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "");
  wire_schema_free(t);
  wire_schema_free(f);
}

Test(schema, compares_big_integers_exactly) {
  wire_schema *s = compile("{\"maximum\":9007199254740993}");
  wire_error err;
  /* 2^53 + 1 vs 2^53 + 2: a double would round both to the same value */
  cr_assert_eq(check(s, "9007199254740993", &err), 0);
  cr_assert_eq(check(s, "9007199254740994", &err), WIRE_EVALIDATION);
  cr_assert_eq(check(s, "9007199254740993.5", &err), WIRE_EVALIDATION);
  wire_schema_free(s);
  s = compile("{\"minimum\":18446744073709551615}");
  cr_assert_eq(check(s, "18446744073709551614", &err), WIRE_EVALIDATION);
  cr_assert_eq(check(s, "18446744073709551615", &err), 0);
  wire_schema_free(s);
}

Test(schema, treats_integral_doubles_as_integers) {
  wire_schema *s = compile("{\"type\":\"integer\",\"multipleOf\":2}");
  wire_error err;
  cr_assert_eq(check(s, "4.0", &err), 0);
  cr_assert_eq(check(s, "4.5", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.message, "expected integer, got number");
  wire_schema_free(s);
}

Test(schema, uses_ecma_meaning_of_backslash_d_and_w) {
  wire_schema *s = compile("{\"pattern\":\"^\\\\d\\\\w$\"}");
  wire_error err;
  cr_assert_eq(check(s, "\"1a\"", &err), 0);
  /* ARABIC-INDIC DIGIT ONE is a Unicode digit but not an ECMA \d */
  cr_assert_eq(check(s,
                     "\"\xd9\xa1"
                     "a\"",
                     &err),
               WIRE_EVALIDATION);
  wire_schema_free(s);
}

Test(schema, asserts_format_only_when_asked) {
  const char *text = "{\"format\":\"date\"}";
  wire_schema *annot = compile(text);
  wire_schema_options opts = {WIRE_SCHEMA_FORMAT_ASSERT, NULL, NULL};
  wire_schema *assert_ = compile_opts(text, &opts);
  wire_error err;
  cr_assert_eq(check(annot, "\"2024-02-30\"", &err), 0);
  cr_assert_eq(check(assert_, "\"2024-02-29\"", &err), 0);
  cr_assert_eq(check(assert_, "\"2023-02-29\"", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "format");
  cr_assert_str_eq(err.message, "string is not a valid date");
  wire_schema_free(annot);
  wire_schema_free(assert_);
}

static const char *remote(const char *uri, size_t *len, void *user_data) {
  int *calls = user_data;
  (*calls)++;
  if (strcmp(uri, "https://example.com/name.json") != 0)
    return NULL;
  static const char text[] = "{\"type\":\"string\",\"minLength\":2}";
  *len = sizeof text - 1;
  return text;
}

Test(schema, resolves_remote_refs_through_the_callback_only) {
  int calls = 0;
  wire_schema_options opts = {0, remote, &calls};
  wire_schema *s = compile_opts(
      "{\"$id\":\"https://example.com/root.json\",\"properties\":{\"n\":{\"$ref\":\"name.json\"}}}",
      &opts);
  cr_assert_eq(calls, 1);
  wire_error err;
  cr_assert_eq(check(s, "{\"n\":\"ab\"}", &err), 0);
  cr_assert_eq(check(s, "{\"n\":\"a\"}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.schema_path, "https://example.com/name.json#/minLength");
  wire_schema_free(s);
}

Test(schema, resolves_the_bundled_meta_schema_without_the_resolver) {
  int calls = 0;
  wire_schema_options opts = {0, remote, &calls};
  wire_schema *s =
      compile_opts("{\"$ref\":\"https://json-schema.org/draft/2020-12/schema\"}", &opts);
  cr_assert_eq(calls, 0);
  wire_error err;
  cr_assert_eq(check(s, "{\"type\":\"string\",\"minLength\":1}", &err), 0);
  cr_assert_eq(check(s, "{\"properties\":{\"a\":{\"type\":7}}}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/properties/a/type");
  wire_schema_free(s);
}

Test(schema, compiles_from_a_value_that_may_then_be_freed) {
  wire_doc *tmp;
  cr_assert_eq(wire_doc_new(&tmp), 0);
  const wire_value *v;
  const char *text = "{\"enum\":[\"a\",{\"b\":[1]}]}";
  cr_assert_eq(wire_decode(tmp, WIRE_CODEC_JSON, text, strlen(text), 0, &v, NULL), 0);
  wire_schema *s = NULL;
  cr_assert_eq(wire_schema_compile_value(v, NULL, &s, NULL), 0);
  wire_doc_free(tmp);
  wire_error err;
  cr_assert_eq(check(s, "{\"b\":[1.0]}", &err), 0);
  cr_assert_eq(check(s, "\"c\"", &err), WIRE_EVALIDATION);
  wire_schema_free(s);
}

Test(schema, tracks_unevaluated_properties_beyond_the_inline_bitset) {
  wire_schema *s = compile("{\"patternProperties\":{\"^k\":true},\"unevaluatedProperties\":false}");
  char buf[8192];
  size_t o = 0;
  o += (size_t)snprintf(buf + o, sizeof buf - o, "{");
  for (int i = 0; i < 400; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\"k%d\":%d", i ? "," : "", i, i);
  snprintf(buf + o, sizeof buf - o, "}");
  wire_error err;
  cr_assert_eq(check(s, buf, &err), 0);
  buf[strlen(buf) - 1] = 0;
  strcat(buf, ",\"x\":1}");
  cr_assert_eq(check(s, buf, &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/x");
  cr_assert_str_eq(err.keyword, "unevaluatedProperties");
  wire_schema_free(s);
}

Test(schema, stops_infinite_recursion_with_an_error) {
  wire_schema *s =
      compile("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
              "\"$ref\":\"#/$defs/a\"}");
  wire_error err;
  cr_assert_eq(check(s, "1", &err), WIRE_EVALIDATION);
  cr_assert(strstr(err.message, "too deeply") != NULL, "%s", err.message);
  wire_schema_free(s);
}

/* The no-allocation claim: count malloc calls made by validate. The counter
 * wraps the C library's malloc through the dynamic linker (skipped under
 * sanitizers, which replace malloc themselves). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WIRE_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(WIRE_TEST_ASAN)
#define WIRE_COUNT_MALLOC 0
#else
#define WIRE_COUNT_MALLOC 1
static size_t mallocs;
static bool counting;
void *malloc(size_t n) {
  static void *(*real)(size_t);
  if (real == NULL)
    real = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  if (counting)
    mallocs++;
  return real(n);
}
#endif

Test(schema, validates_without_allocating) {
#if !WIRE_COUNT_MALLOC
  cr_skip_test("malloc is the sanitizer's here");
#else
  /* the counter must see allocations (it does not under valgrind) */
  wire_doc *probe;
  mallocs = 0;
  counting = true;
  cr_assert_eq(wire_doc_new(&probe), 0);
  counting = false;
  wire_doc_free(probe);
  if (mallocs == 0)
    cr_skip_test("malloc is replaced by a tool here");
  wire_schema *s = compile(chat_schema);
  wire_schema *u = compile("{\"properties\":{\"a\":true},\"allOf\":[{\"properties\":{\"b\":true}}],"
                           "\"unevaluatedProperties\":false}");
  const wire_value *good =
      json("{\"type\":\"chat\",\"text\":\"hi\",\"tags\":[\"a\",\"b\"],\"mood\":\"sad\"}");
  const wire_value *bad = json("{\"type\":\"chat\",\"text\":\"hi\",\"tags\":[\"A\"]}");
  const wire_value *ev = json("{\"a\":1,\"b\":2}");
  wire_error err;
  /* warm up: PCRE2 keeps its backtracking frames in the match data */
  cr_assert_eq(wire_schema_validate(s, good, &err), 0);
  cr_assert_eq(wire_schema_validate(s, bad, &err), WIRE_EVALIDATION);
  mallocs = 0;
  counting = true;
  for (int i = 0; i < 100; i++) {
    wire_schema_validate(s, good, &err);
    wire_schema_validate(s, bad, &err);
    wire_schema_validate(s, bad, NULL);
    wire_schema_validate(u, ev, NULL);
  }
  counting = false;
  cr_assert_eq(mallocs, 0, "validate called malloc %zu times", mallocs);
  wire_schema_free(s);
  wire_schema_free(u);
#endif
}

static char *nested(const char *open, const char *mid, const char *close, int depth) {
  size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
  char *buf = malloc((lo + lc) * (size_t)depth + lm + 1);
  size_t o = 0;
  for (int i = 0; i < depth; i++, o += lo)
    memcpy(buf + o, open, lo);
  memcpy(buf + o, mid, lm);
  o += lm;
  for (int i = 0; i < depth; i++, o += lc)
    memcpy(buf + o, close, lc);
  buf[o] = 0;
  return buf;
}

/* uniqueItems, const and enum compare whole values: a message with nested
 * duplicate keys or a long array must not make that comparison explode. */
Test(schema, unique_items_const_and_enum_stay_fast_on_hostile_instances) {
  /* 40 levels, the key twice per level with the nested object last */
  char *obj = nested("{\"k\":1,\"k\":", "null", "}", 40);
  size_t ol = strlen(obj);
  char *arr = malloc(2 * ol + 4);
  sprintf(arr, "[%s,%s]", obj, obj);
  wire_schema *u = compile("{\"uniqueItems\":true}");
  wire_error err;
  cr_assert_eq(check(u, arr, &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.message, "items 0 and 1 are equal");
  wire_schema *c = compile("{\"items\":{\"const\":{\"k\":{\"k\":null}}}}");
  cr_assert_eq(check(c, arr, &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "const");
  /* 100,000 distinct numbers, then one more that repeats item 12 */
  size_t n = 100000;
  char *big = malloc(n * 8 + 16), *p = big;
  *p++ = '[';
  for (size_t i = 0; i < n; i++)
    p += sprintf(p, "%zu,", i);
  strcpy(p - 1, "]");
  cr_assert_eq(check(u, big, &err), 0);
  strcpy(p, "12.0]");
  p[-1] = ',';
  cr_assert_eq(check(u, big, &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.message, "items 12 and 100000 are equal");
  free(big);
  free(arr);
  free(obj);
  wire_schema_free(u);
  wire_schema_free(c);
}

Test(schema, handles_deeply_nested_instances_and_schemas) {
  wire_schema *s =
      compile("{\"items\":{\"$ref\":\"#\"},\"properties\":{\"a\":{\"$ref\":\"#\"}},"
              "\"unevaluatedProperties\":false,\"anyOf\":[true,{\"type\":\"array\"}]}");
  wire_error err;
  char *arr = nested("[", "1", "]", 500);
  const wire_value *v = json(arr);
  int rc = wire_schema_validate(s, v, &err);
  cr_assert(rc == 0 || rc == WIRE_EVALIDATION);
  char *obj = nested("{\"a\":", "1", "}", 500);
  rc = wire_schema_validate(s, json(obj), &err);
  cr_assert(rc == 0 || rc == WIRE_EVALIDATION);
  wire_schema_free(s);
  /* schemas nest up to 256 levels; deeper ones are refused, not overflowed */
  char *deep = nested("{\"items\":", "{\"type\":\"integer\"}", "}", 250);
  wire_schema *d = compile(deep);
  char *inst = nested("[", "\"x\"", "]", 250);
  cr_assert_eq(wire_schema_validate(d, json(inst), &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "type");
  wire_schema_free(d);
  char *too_deep = nested("{\"items\":", "true", "}", 400);
  wire_schema *t = NULL;
  cr_assert_eq(wire_schema_compile(too_deep, strlen(too_deep), NULL, &t, &err), WIRE_ESCHEMA);
  cr_assert(strstr(err.message, "too deep") != NULL, "%s", err.message);
  free(too_deep);
  free(arr);
  free(obj);
  free(deep);
  free(inst);
}

Test(schema, lets_the_last_of_repeated_keys_win) {
  wire_schema *s =
      compile("{\"pattern\":\"^a\",\"pattern\":\"^b\",\"properties\":{\"x\":true,\"x\":false}}");
  wire_error err;
  cr_assert_eq(check(s, "\"b\"", &err), 0);
  cr_assert_eq(check(s, "\"a\"", &err), WIRE_EVALIDATION);
  cr_assert_eq(check(s, "{\"x\":1}", &err), WIRE_EVALIDATION);
  wire_schema_free(s);
}

Test(schema, explains_anyof_failures_with_the_first_branch) {
  wire_schema *s = compile("{\"properties\":{\"n\":{\"anyOf\":[{\"type\":\"string\"},"
                           "{\"type\":\"null\"}]}}}");
  wire_error err;
  cr_assert_eq(check(s, "{\"n\":1}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.path, "/n");
  cr_assert_str_eq(err.keyword, "anyOf");
  cr_assert_str_eq(err.schema_path, "/properties/n/anyOf");
  cr_assert_str_eq(err.message, "value matches none of the anyOf schemas (the first fails: /n: "
                                "expected string, got integer)");
  wire_schema_free(s);
}

Test(schema, finds_properties_in_large_property_lists) {
  char text[4096];
  size_t o = (size_t)snprintf(text, sizeof text, "{\"properties\":{");
  for (int i = 0; i < 40; i++)
    o += (size_t)snprintf(text + o, sizeof text - o, "%s\"p%d\":{\"type\":\"integer\"}",
                          i ? "," : "", i * 7);
  snprintf(text + o, sizeof text - o,
           "},\"required\":[\"p0\",\"p273\"],\"additionalProperties\":false}");
  wire_schema *s = compile(text);
  wire_error err;
  cr_assert_eq(check(s, "{\"p0\":1,\"p273\":2,\"p14\":3}", &err), 0);
  cr_assert_eq(check(s, "{\"p0\":1,\"p273\":\"x\"}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.schema_path, "/properties/p273/type");
  cr_assert_eq(check(s, "{\"p0\":1,\"p273\":2,\"p1\":3}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "additionalProperties");
  cr_assert_eq(check(s, "{\"p273\":2}", &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "required");
  wire_schema_free(s);
}

Test(schema, fails_a_pattern_on_invalid_utf8_from_the_builder) {
  wire_schema *s = compile("{\"pattern\":\"^a+$\",\"propertyNames\":{\"pattern\":\"^k\"}}");
  wire_value *bad = wire_new_string(doc,
                                    "a\xff"
                                    "a",
                                    3);
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_schema_validate(s, bad, &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "pattern");
  cr_assert_eq(wire_schema_validate(s, wire_new_string(doc, "aaa", 3), &err), 0);
  wire_value *obj = wire_new_object(doc, 1);
  wire_object_set(doc, obj, "k\xc3", 2, wire_new_null(doc));
  cr_assert_eq(wire_schema_validate(s, obj, &err), WIRE_EVALIDATION);
  wire_schema_free(s);
}
