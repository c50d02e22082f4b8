/*
 * test_json.c -- the JSON codec: decoding rules, every error path, the
 * encoder's output form, round trips, and the JSONTestSuite corpus.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "wirecore.h"

static wire_doc *doc;

static void setup(void) {
  cr_assert_eq(wire_doc_new(&doc), 0);
}
static void teardown(void) {
  wire_doc_free(doc);
}

TestSuite(json, .init = setup, .fini = teardown);

static const wire_value *dec(const char *s) {
  const wire_value *v = NULL;
  wire_error err = {0};
  int rc = wire_decode(doc, WIRE_CODEC_JSON, s, strlen(s), 0, &v, &err);
  cr_assert_eq(rc, 0, "decoding %s: %s", s, err.message);
  return v;
}

static int dec_err(const char *s, size_t len, wire_error *err) {
  const wire_value *v = NULL;
  memset(err, 0, sizeof *err);
  return wire_decode(doc, WIRE_CODEC_JSON, s, len, 0, &v, err);
}

static void expect_reject(const char *s, size_t off, const char *why) {
  wire_error err;
  int rc = dec_err(s, strlen(s), &err);
  cr_assert_eq(rc, WIRE_EDESERIALIZE, "%s should be rejected, got %d", s, rc);
  cr_assert_eq(err.code, WIRE_EDESERIALIZE);
  cr_assert_eq(err.offset, off, "%s: offset %zu, want %zu (%s)", s, err.offset, off, err.message);
  cr_assert(strstr(err.message, why) != NULL, "%s: message '%s' lacks '%s'", s, err.message, why);
}

static const char *enc(const wire_value *v) {
  const uint8_t *out;
  size_t len;
  wire_error err = {0};
  int rc = wire_encode(doc, WIRE_CODEC_JSON, v, &out, &len, &err);
  cr_assert_eq(rc, 0, "encode: %s", err.message);
  char *s = wire__arena_alloc(&doc->arena, len + 1);
  memcpy(s, out, len);
  s[len] = 0;
  return s;
}

/* ---- decoding ---------------------------------------------------------- */

Test(json, decodes_scalars_with_surrounding_whitespace) {
  cr_assert_eq(wire_value_type(dec(" null ")), WIRE_NULL);
  cr_assert_eq(wire_value_bool(dec("\ttrue\n")), 1);
  cr_assert_eq(wire_value_type(dec("false")), WIRE_BOOL);
  cr_assert_eq(wire_value_bool(dec("false")), 0);
  cr_assert_eq(wire_value_int(dec("\r42")), 42);
  size_t n;
  cr_assert_str_eq(wire_value_string(dec("\"hi\""), &n), "hi");
  cr_assert_eq(n, 2);
}

Test(json, keeps_object_members_in_input_order) {
  const wire_value *v = dec("{\"b\":1,\"a\":2,\"c\":{\"x\":[]}}");
  cr_assert_eq(wire_value_type(v), WIRE_OBJECT);
  cr_assert_eq(wire_value_size(v), 3);
  wire_str k;
  wire_value_member(v, 0, &k);
  cr_assert_str_eq(k.ptr, "b");
  wire_value_member(v, 1, &k);
  cr_assert_str_eq(k.ptr, "a");
  wire_value_member(v, 2, &k);
  cr_assert_str_eq(k.ptr, "c");
  cr_assert_eq(wire_value_int(wire_value_get(v, "a", 1)), 2);
  cr_assert_eq(wire_value_size(wire_value_get(wire_value_get(v, "c", 1), "x", 1)), 0);
}

Test(json, duplicate_keys_are_kept_and_lookup_returns_the_last) {
  const wire_value *v = dec("{\"a\":1,\"a\":2,\"b\":3,\"a\":4}");
  cr_assert_eq(wire_value_size(v), 4);
  cr_assert_eq(wire_value_int(wire_value_get(v, "a", 1)), 4);
  cr_assert_eq(wire_value_int(wire_value_member(v, 0, NULL)), 1);
}

Test(json, decodes_nested_arrays_contiguously) {
  const wire_value *v = dec("[1,[2,[3,[]]],{\"k\":[4,5]},\"s\"]");
  cr_assert_eq(wire_value_size(v), 4);
  cr_assert_eq(wire_value_int(wire_value_at(v, 0)), 1);
  const wire_value *in = wire_value_at(v, 1);
  cr_assert_eq(wire_value_int(wire_value_at(in, 0)), 2);
  cr_assert_eq(wire_value_int(wire_value_at(wire_value_at(in, 1), 0)), 3);
  cr_assert_eq(wire_value_size(wire_value_at(wire_value_at(in, 1), 1)), 0);
  cr_assert_eq(wire_value_int(wire_value_at(wire_value_get(wire_value_at(v, 2), "k", 1), 1)), 5);
  cr_assert_null(wire_value_at(v, 4));
}

Test(json, decodes_large_containers_beyond_the_scratch_stack) {
  char *s = malloc(400000);
  size_t n = 0;
  s[n++] = '[';
  for (int i = 0; i < 20000; i++)
    n += (size_t)sprintf(s + n, "%s{\"i\":%d}", i ? "," : "", i);
  s[n++] = ']';
  s[n] = 0;
  const wire_value *v = dec(s);
  cr_assert_eq(wire_value_size(v), 20000);
  cr_assert_eq(wire_value_int(wire_value_get(wire_value_at(v, 19999), "i", 1)), 19999);
  free(s);
}

Test(json, integers_fit_int64_then_uint64_then_become_doubles) {
  const wire_value *v = dec("9223372036854775807");
  cr_assert_eq(wire_value_type(v), WIRE_INT);
  cr_assert_eq(wire_value_int(v), INT64_MAX);
  v = dec("-9223372036854775808");
  cr_assert_eq(wire_value_type(v), WIRE_INT);
  cr_assert_eq(wire_value_int(v), INT64_MIN);
  v = dec("9223372036854775808");
  cr_assert_eq(wire_value_type(v), WIRE_UINT);
  cr_assert_eq(wire_value_uint(v), 9223372036854775808ull);
  v = dec("18446744073709551615");
  cr_assert_eq(wire_value_type(v), WIRE_UINT);
  cr_assert_eq(wire_value_uint(v), UINT64_MAX);
  v = dec("18446744073709551616");
  cr_assert_eq(wire_value_type(v), WIRE_DOUBLE);
  cr_assert_eq(wire_value_double(v), 18446744073709551616.0);
  v = dec("-9223372036854775809");
  cr_assert_eq(wire_value_type(v), WIRE_DOUBLE);
  cr_assert_eq(wire_value_double(v), -9223372036854775808.0);
  v = dec("123456789012345678901234567890");
  cr_assert_eq(wire_value_type(v), WIRE_DOUBLE);
  cr_assert_eq(wire_value_double(v), 1.2345678901234568e29);
  v = dec("-0");
  cr_assert_eq(wire_value_type(v), WIRE_INT);
  cr_assert_eq(wire_value_int(v), 0);
}

Test(json, fractions_and_exponents_are_doubles_correctly_rounded) {
  struct {
    const char *in;
    double want;
  } cases[] = {
      {"1.0", 1.0},
      {"-0.0", -0.0},
      {"0.1", 0.1},
      {"3.141592653589793", 3.141592653589793},
      {"1e3", 1000.0},
      {"1E+3", 1000.0},
      {"25e-1", 2.5},
      {"0.000001", 1e-6},
      {"2.2250738585072014e-308", 2.2250738585072014e-308},
      {"4.9e-324", 4.9e-324},
      {"1.7976931348623157e308", 1.7976931348623157e308},
      {"9007199254740993.0", 9007199254740992.0},
      {"0.30000000000000004", 0.30000000000000004},
      {"123456789012345678901234567890.5e-10", 1.2345678901234568e19},
      {"1e-400", 0.0},
      {"0.0000000000000000000000000000000000000000001", 1e-43},
      {"2.4703282292062328e-324", 5e-324},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const wire_value *v = dec(cases[i].in);
    cr_assert_eq(wire_value_type(v), WIRE_DOUBLE, "%s", cases[i].in);
    double d = wire_value_double(v);
    cr_assert(memcmp(&d, &cases[i].want, sizeof d) == 0, "%s -> %.17g, want %.17g", cases[i].in, d,
              cases[i].want);
  }
}

Test(json, number_parsing_ignores_the_process_locale) {
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8") == NULL && setlocale(LC_NUMERIC, "fr_FR.UTF-8") == NULL)
    cr_skip_test("no comma-decimal locale installed");
  const wire_value *v = dec("1.2345678901234567890123e5");
  cr_assert_eq(wire_value_double(v), 123456.78901234567890123);
  cr_assert_str_eq(enc(wire_new_double(doc, 0.1)), "0.1");
  setlocale(LC_NUMERIC, "C");
}

Test(json, decodes_escapes_and_surrogate_pairs) {
  size_t n;
  const char *s = wire_value_string(dec("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\""), &n);
  cr_assert_eq(n, 12);
  cr_assert(memcmp(s, "a\"b\\c/d\b\f\n\r\t", 12) == 0);
  s = wire_value_string(dec("\"\\u00e9\\u20AC\\ud83d\\ude00\""), &n);
  cr_assert_str_eq(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  s = wire_value_string(dec("\"x\\u0000y\""), &n);
  cr_assert_eq(n, 3);
  cr_assert_eq(s[1], 0);
  cr_assert_eq(s[3], 0);
}

Test(json, passes_valid_multibyte_utf8_through) {
  size_t n;
  const char *s = wire_value_string(dec("\"h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80"
                                        " and a long ascii tail to use the wide scan\""),
                                    &n);
  cr_assert(strncmp(s, "h\xc3\xa9llo", 6) == 0);
  cr_assert_eq(n, strlen(s));
}

Test(json, rejects_truncated_input_with_offset) {
  expect_reject("", 0, "empty input");
  expect_reject("   ", 3, "empty input");
  expect_reject("[1,2", 4, "unexpected end");
  expect_reject("{\"a\":", 5, "unexpected end");
  expect_reject("{\"a\"", 4, "expected ':'");
  expect_reject("\"abc", 4, "unterminated string");
  expect_reject("\"ab\\", 4, "unterminated string");
  expect_reject("tru", 0, "invalid literal");
  expect_reject("-", 1, "invalid number");
  expect_reject("1.", 2, "expected digit after decimal point");
  expect_reject("1e", 2, "expected digit in exponent");
  expect_reject("[", 1, "unexpected end");
}

Test(json, rejects_trailing_garbage_and_second_values) {
  expect_reject("{} x", 3, "unexpected data after the value");
  expect_reject("1 2", 2, "unexpected data after the value");
  expect_reject("[1]]", 3, "unexpected data after the value");
}

Test(json, rejects_syntax_errors) {
  expect_reject("[1,]", 3, "unexpected character");
  expect_reject("{\"a\":1,}", 7, "expected string key");
  expect_reject("{a:1}", 1, "expected string key");
  expect_reject("[1 2]", 3, "expected ',' or ']'");
  expect_reject("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
  expect_reject("[1}", 2, "expected ',' or ']'");
  expect_reject("NaN", 0, "unexpected character");
  expect_reject("+1", 0, "unexpected character");
  expect_reject("01", 0, "leading zero");
  expect_reject(".5", 0, "unexpected character");
  expect_reject("nul", 0, "invalid literal");
  expect_reject("[true false]", 6, "expected ','");
  expect_reject("/* c */ 1", 0, "unexpected character");
  expect_reject("1e999", 0, "out of double range");
}

Test(json, rejects_bad_escapes_and_lone_surrogates) {
  expect_reject("\"\\x\"", 1, "invalid escape");
  expect_reject("\"\\u12\"", 1, "invalid \\u escape");
  expect_reject("\"\\u12G4\"", 1, "invalid \\u escape");
  expect_reject("\"\\ud800\"", 1, "lone high surrogate");
  expect_reject("\"\\ud800\\u0041\"", 1, "lone high surrogate");
  expect_reject("\"\\udc00\"", 1, "lone low surrogate");
  expect_reject("\"a\tb\"", 2, "control character");
  expect_reject("\"ab\\n\x01\"", 5, "control character");
}

Test(json, rejects_invalid_utf8_in_strings) {
  expect_reject("\"\xff\"", 1, "invalid UTF-8");
  expect_reject("\"abc\xc0\xaf\"", 4, "invalid UTF-8");               /* overlong '/' */
  expect_reject("\"\xed\xa0\x80\"", 1, "invalid UTF-8");              /* surrogate */
  expect_reject("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8");          /* > U+10FFFF */
  expect_reject("\"\xe2\x82\"", 1, "invalid UTF-8");                  /* truncated */
  expect_reject("\"a\\n\x80\"", 4, "invalid UTF-8");                  /* slow path */
  expect_reject("\"0123456789abcdefghij\x80\"", 21, "invalid UTF-8"); /* wide scan */
}

Test(json, rejects_nesting_deeper_than_the_limit) {
  char buf[1100];
  memset(buf, '[', 513);
  memset(buf + 513, ']', 513);
  wire_error err;
  const wire_value *v;
  int rc = wire_decode(doc, WIRE_CODEC_JSON, buf, 1026, 0, &v, &err);
  cr_assert_eq(rc, WIRE_EDEPTH, "%s", err.message);
  cr_assert_eq(err.offset, 512);
  rc = wire_decode(doc, WIRE_CODEC_JSON, buf + 1, 1024, 0, &v, &err);
  cr_assert_eq(rc, 0, "512 levels must pass: %s", err.message);
  rc = wire_decode(doc, WIRE_CODEC_JSON, "[[[1]]]", 7, 2, &v, &err);
  cr_assert_eq(rc, WIRE_EDEPTH);
  rc = wire_decode(doc, WIRE_CODEC_JSON, "{\"a\":{\"b\":1}}", 13, 2, &v, &err);
  cr_assert_eq(rc, 0);
}

Test(json, deep_nesting_within_a_raised_limit_uses_no_c_stack) {
  size_t depth = 200000;
  char *buf = malloc(2 * depth);
  memset(buf, '[', depth);
  memset(buf + depth, ']', depth);
  const wire_value *v;
  wire_error err;
  int rc = wire_decode(doc, WIRE_CODEC_JSON, buf, 2 * depth, (unsigned)depth, &v, &err);
  cr_assert_eq(rc, 0, "%s", err.message);
  free(buf);
}

Test(json, never_reads_past_the_given_length) {
  /* "123" followed by digits that must not be consumed */
  const wire_value *v;
  wire_error err;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, "1234", 2, 0, &v, &err), 0);
  cr_assert_eq(wire_value_int(v), 12);
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, "truex", 4, 0, &v, &err), 0);
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, "\"ab\"", 3, 0, &v, &err), WIRE_EDESERIALIZE);
}

Test(json, strings_are_unescaped_without_touching_the_callers_buffer) {
  static const char src[] = "{\"k\\n\":\"a\\u00e9b\",\"x\":[\"\",\"q\"]}";
  char buf[sizeof src];
  memcpy(buf, src, sizeof src);
  const wire_value *v;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, buf, sizeof src - 1, 0, &v, NULL), 0);
  cr_assert(memcmp(buf, src, sizeof src) == 0, "input modified");
  cr_assert_str_eq(wire_value_string(wire_value_get(v, "k\n", 2), NULL), "a\xc3\xa9"
                                                                         "b");
  cr_assert_str_eq(wire_value_string(wire_value_at(wire_value_get(v, "x", 1), 0), NULL), "");
  cr_assert_str_eq(wire_value_string(wire_value_at(wire_value_get(v, "x", 1), 1), NULL), "q");
}

Test(json, raw_codec_and_null_arguments_are_invalid) {
  const wire_value *v;
  wire_error err;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_RAW, "1", 1, 0, &v, &err), WIRE_EINVAL);
  cr_assert_eq(wire_decode(NULL, WIRE_CODEC_JSON, "1", 1, 0, &v, &err), WIRE_EINVAL);
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, NULL, 1, 0, &v, &err), WIRE_EINVAL);
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, "1", 1, 0, NULL, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, "x", 1, 0, &v, NULL), WIRE_EDESERIALIZE);
}

/* ---- encoding ---------------------------------------------------------- */

Test(json, encodes_compactly_in_member_order) {
  cr_assert_str_eq(enc(dec(" { \"b\" : [ 1 , true , null ] , \"a\" : { } , \"c\" : [ ] } ")),
                   "{\"b\":[1,true,null],\"a\":{},\"c\":[]}");
  cr_assert_str_eq(enc(dec("{\"a\":1,\"a\":2}")), "{\"a\":1,\"a\":2}");
}

Test(json, escapes_quotes_backslashes_and_control_characters) {
  wire_value *s = wire_new_string(doc, "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f", 14);
  cr_assert_str_eq(enc(s), "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
  s = wire_new_string(doc, "a\0b", 3);
  cr_assert_str_eq(enc(s), "\"a\\u0000b\"");
  s = wire_new_string(doc, "\xc3\xa9\xf0\x9f\x98\x80", 6);
  cr_assert_str_eq(enc(s), "\"\xc3\xa9\xf0\x9f\x98\x80\"");
}

Test(json, encodes_integer_extremes) {
  cr_assert_str_eq(enc(wire_new_int(doc, INT64_MIN)), "-9223372036854775808");
  cr_assert_str_eq(enc(wire_new_int(doc, INT64_MAX)), "9223372036854775807");
  cr_assert_str_eq(enc(wire_new_uint(doc, UINT64_MAX)), "18446744073709551615");
  cr_assert_str_eq(enc(wire_new_int(doc, 0)), "0");
  cr_assert_str_eq(enc(wire_new_int(doc, -7)), "-7");
}

Test(json, encodes_doubles_in_the_shortest_round_trip_form) {
  struct {
    double d;
    const char *want;
  } cases[] = {
      {0.1, "0.1"},
      {1.0, "1.0"},
      {-0.0, "-0.0"},
      {-2.0, "-2.0"},
      {1e15, "1e+15"},
      {1234567890123456.0, "1234567890123456.0"},
      {0.30000000000000004, "0.30000000000000004"},
      {1e100, "1e+100"},
      {5e-324, "4.94065645841247e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {3.14, "3.14"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_assert_str_eq(enc(wire_new_double(doc, cases[i].d)), cases[i].want);
}

Test(json, doubles_stay_doubles_through_a_round_trip) {
  double ds[] = {1.0, -0.0, 1e15, 1e16, 1e300, 0.1, 123.456, 9007199254740993.0, 5e-324};
  for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
    const wire_value *v = dec(enc(wire_new_double(doc, ds[i])));
    cr_assert_eq(wire_value_type(v), WIRE_DOUBLE);
    double got = wire_value_double(v);
    cr_assert(memcmp(&got, &ds[i], sizeof got) == 0, "%.17g != %.17g", got, ds[i]);
  }
}

Test(json, random_doubles_survive_encode_and_decode_bit_for_bit) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    double d;
    if (i % 2) {
      memcpy(&d, &x, sizeof d); /* any bit pattern */
      if (!isfinite(d))
        continue;
    } else {
      static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e9, 1e12};
      d = (double)(int64_t)(x % 100000000) / scale[(x >> 40) % 10]; /* short decimals */
      if (x & (1ull << 63))
        d = -d;
    }
    wire_doc_reset(doc);
    const uint8_t *out;
    size_t len;
    cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, wire_new_double(doc, d), &out, &len, NULL), 0);
    const wire_value *v;
    cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, out, len, 0, &v, NULL), 0);
    cr_assert_eq(wire_value_type(v), WIRE_DOUBLE, "%.*s", (int)len, out);
    double back = wire_value_double(v);
    cr_assert(memcmp(&back, &d, sizeof d) == 0, "%.17g -> %.*s -> %.17g", d, (int)len, out, back);
    cr_assert_leq(len, 26);
  }
}

Test(json, refuses_to_encode_nan_infinity_binary_and_bad_utf8) {
  const uint8_t *out;
  size_t len;
  wire_error err;
  wire_value *arr = wire_new_array(doc, 0);
  wire_array_push(doc, arr, wire_new_double(doc, NAN));
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, arr, &out, &len, &err), WIRE_ESERIALIZE);
  cr_assert(strstr(err.message, "NaN") != NULL);
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, wire_new_double(doc, -INFINITY), &out, &len, &err),
               WIRE_ESERIALIZE);
  cr_assert(strstr(err.message, "infinity") != NULL);
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, wire_new_binary(doc, "ab", 2), &out, &len, &err),
               WIRE_ESERIALIZE);
  cr_assert(strstr(err.message, "binary") != NULL);
  cr_assert_eq(
      wire_encode(doc, WIRE_CODEC_JSON, wire_new_string(doc, "a\xff", 2), &out, &len, &err),
      WIRE_ESERIALIZE);
  cr_assert(strstr(err.message, "UTF-8") != NULL);
  wire_value *obj = wire_new_object(doc, 0);
  wire_object_set(doc, obj, "\xc0\x80", 2, wire_new_null(doc));
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, obj, &out, &len, &err), WIRE_ESERIALIZE);
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_RAW, obj, &out, &len, &err), WIRE_EINVAL);
}

Test(json, refuses_to_encode_pathologically_deep_built_values) {
  wire_value *root = wire_new_array(doc, 1), *cur = root;
  for (int i = 0; i < 5000; i++)
    cur = wire_array_push(doc, cur, wire_new_array(doc, 1));
  const uint8_t *out;
  size_t len;
  wire_error err;
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, root, &out, &len, &err), WIRE_ESERIALIZE);
  cr_assert(strstr(err.message, "nesting") != NULL);
}

Test(json, round_trips_a_realistic_document) {
  const char *src = "{\"type\":\"chat\",\"id\":123456789,\"room\":\"g\\u00e9n\\u00e9ral\","
                    "\"text\":\"line1\\nline2 \\\"quoted\\\" \\\\ \\ud83d\\ude00\","
                    "\"score\":-12.5,\"big\":18446744073709551615,\"tags\":[\"a\",\"b\",null],"
                    "\"meta\":{\"ok\":true,\"ratio\":0.1,\"n\":[1.5e300,-0.0]}}";
  const wire_value *a = dec(src);
  const char *once = enc(a);
  const wire_value *b = dec(once);
  cr_assert(wire__value_equal(a, b));
  cr_assert_str_eq(enc(b), once);
}

/* ---- JSONTestSuite ----------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  *len = got;
  return buf;
}

Test(json, passes_every_jsontestsuite_parsing_case) {
  /* <repo>/../shared/testdata, or $WIRE_TESTDATA when the checkout lives elsewhere */
  char dir[1024];
  const char *root = getenv("WIRE_TESTDATA");
  snprintf(dir, sizeof dir, "%s/jsontestsuite/test_parsing",
           root && *root ? root : WIRE_SOURCE_DIR "/../shared/testdata");
  DIR *d = opendir(dir);
  if (d == NULL)
    cr_skip_test("JSONTestSuite not found at %s", dir);
  int y = 0, y_ok = 0, n = 0, n_ok = 0, i = 0, i_acc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (strlen(name) < 3 || name[1] != '_')
      continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *buf = read_file(path, &len);
    cr_assert_not_null(buf, "%s", path);
    /* exact-size heap copy so ASan catches any read past the end */
    char *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    wire_doc_reset(doc);
    const wire_value *v = NULL;
    wire_error err = {0};
    int rc = wire_decode(doc, WIRE_CODEC_JSON, exact, len, 0, &v, &err);
    if (rc == 0) {
      /* whatever is accepted must round-trip */
      const uint8_t *out;
      size_t olen;
      cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, v, &out, &olen, &err), 0, "%s: %s", name,
                   err.message);
      const wire_value *again;
      cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, out, olen, 0, &again, &err), 0, "%s", name);
      cr_assert(wire__value_equal(v, again), "%s does not round-trip", name);
    } else {
      cr_assert(rc == WIRE_EDESERIALIZE || rc == WIRE_EDEPTH, "%s: rc %d", name, rc);
    }
    switch (name[0]) {
    case 'y':
      y++;
      y_ok += rc == 0;
      cr_expect_eq(rc, 0, "%s should be accepted: %s", name, err.message);
      break;
    case 'n':
      n++;
      n_ok += rc != 0;
      cr_expect_neq(rc, 0, "%s should be rejected", name);
      break;
    default:
      i++;
      i_acc += rc == 0;
    }
    free(exact);
    free(buf);
  }
  closedir(d);
  printf("JSONTestSuite: y %d/%d accepted, n %d/%d rejected, i %d run (%d accepted, %d rejected)\n",
         y_ok, y, n_ok, n, i, i_acc, i - i_acc);
  cr_assert_gt(y + n + i, 300);
}
