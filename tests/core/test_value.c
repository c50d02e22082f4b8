/*
 * test_value.c -- the arena, the read API, the builder and deep equality.
 */
#include <criterion/criterion.h>

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

TestSuite(value, .init = setup, .fini = teardown);

static const wire_value *json(const char *s) {
  const wire_value *v = NULL;
  wire_error err;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, s, strlen(s), 0, &v, &err), 0, "%s", s);
  return v;
}

Test(value, arena_allocations_are_aligned_and_survive_chunk_growth) {
  wire__arena a;
  wire__arena_init(&a);
  char *first = wire__arena_alloc(&a, 3);
  memcpy(first, "ab", 3);
  for (int i = 0; i < 10000; i++) {
    char *p = wire__arena_alloc(&a, (size_t)(i % 97) + 1);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 8, 0);
    memset(p, 0x5a, (size_t)(i % 97) + 1);
  }
  void *big = wire__arena_alloc(&a, 1 << 20);
  cr_assert_not_null(big);
  memset(big, 1, 1 << 20);
  cr_assert_str_eq(first, "ab");
  void *largest = a.head;
  wire__arena_reset(&a);
  /* after reset the largest chunk is reused: a big allocation fits */
  char *again = wire__arena_alloc(&a, 1 << 19);
  cr_assert_not_null(again);
  cr_assert_eq(a.head, largest);
  wire__arena_destroy(&a);
  wire__arena_destroy(&a); /* idempotent */
}

Test(value, doc_reset_keeps_memory_for_reuse) {
  json("[1,2,3]");
  void *head = doc->arena.head;
  wire_doc_reset(doc);
  cr_assert_eq(doc->arena.head, head);
  json("{\"a\":\"b\"}");
  cr_assert_eq(doc->arena.head, head);
  wire_doc_reset(NULL);
  wire_doc_free(NULL);
  cr_assert_eq(wire_doc_new(NULL), WIRE_EINVAL);
}

Test(value, type_names_follow_json_schema) {
  cr_assert_str_eq(wire_type_name(WIRE_NULL), "null");
  cr_assert_str_eq(wire_type_name(WIRE_BOOL), "boolean");
  cr_assert_str_eq(wire_type_name(WIRE_INT), "integer");
  cr_assert_str_eq(wire_type_name(WIRE_UINT), "integer");
  cr_assert_str_eq(wire_type_name(WIRE_DOUBLE), "number");
  cr_assert_str_eq(wire_type_name(WIRE_STRING), "string");
  cr_assert_str_eq(wire_type_name(WIRE_BINARY), "binary");
  cr_assert_str_eq(wire_type_name(WIRE_ARRAY), "array");
  cr_assert_str_eq(wire_type_name(WIRE_OBJECT), "object");
  cr_assert_str_eq(wire_type_name((wire_type)99), "unknown");
}

Test(value, reads_of_the_wrong_type_return_zero_values) {
  const wire_value *s = json("\"x\"");
  size_t len = 77;
  cr_assert_eq(wire_value_bool(s), 0);
  cr_assert_eq(wire_value_int(s), 0);
  cr_assert_eq(wire_value_uint(s), 0);
  cr_assert_eq(wire_value_double(s), 0.0);
  cr_assert_null(wire_value_binary(s, &len));
  cr_assert_eq(len, 0);
  cr_assert_eq(wire_value_size(s), 0);
  cr_assert_null(wire_value_at(s, 0));
  wire_str k = {"junk", 4};
  cr_assert_null(wire_value_member(s, 0, &k));
  cr_assert_null(k.ptr);
  cr_assert_null(wire_value_get(s, "a", 1));
  cr_assert_null(wire_value_string(json("1"), &len));
  cr_assert_eq(wire_value_type(NULL), WIRE_NULL);
  cr_assert_eq(wire_value_size(NULL), 0);
  cr_assert_eq(wire_value_uint(json("-1")), 0);
  cr_assert_eq(wire_value_uint(json("5")), 5);
  cr_assert_eq(wire_value_double(json("5")), 5.0);
  cr_assert_eq(wire_value_double(json("18446744073709551615")), 18446744073709551615.0);
}

Test(value, builder_makes_every_type) {
  wire_value *o = wire_new_object(doc, 0);
  cr_assert_not_null(wire_object_set(doc, o, "n", 1, wire_new_null(doc)));
  wire_object_set(doc, o, "b", 1, wire_new_bool(doc, 7));
  wire_object_set(doc, o, "i", 1, wire_new_int(doc, -3));
  wire_object_set(doc, o, "u", 1, wire_new_uint(doc, UINT64_MAX));
  wire_object_set(doc, o, "small_u", 7, wire_new_uint(doc, 3));
  wire_object_set(doc, o, "d", 1, wire_new_double(doc, 2.5));
  wire_object_set(doc, o, "s", 1, wire_new_string(doc, "a\0b", 3));
  wire_object_set(doc, o, "x", 1, wire_new_binary(doc, "\x00\xff", 2));
  wire_value *arr = wire_object_set(doc, o, "a", 1, wire_new_array(doc, 0));
  for (int i = 0; i < 100; i++)
    cr_assert_not_null(wire_array_push(doc, arr, wire_new_int(doc, i)));
  cr_assert_eq(wire_value_size(o), 9);
  cr_assert_eq(wire_value_bool(wire_value_get(o, "b", 1)), 1);
  cr_assert_eq(wire_value_int(wire_value_get(o, "i", 1)), -3);
  cr_assert_eq(wire_value_type(wire_value_get(o, "u", 1)), WIRE_UINT);
  cr_assert_eq(wire_value_type(wire_value_get(o, "small_u", 7)), WIRE_INT);
  size_t n;
  const char *s = wire_value_string(wire_value_get(o, "s", 1), &n);
  cr_assert_eq(n, 3);
  cr_assert_eq(s[3], 0);
  const uint8_t *bin = wire_value_binary(wire_value_get(o, "x", 1), &n);
  cr_assert_eq(n, 2);
  cr_assert_eq(bin[1], 0xff);
  const wire_value *a = wire_value_get(o, "a", 1);
  cr_assert_eq(wire_value_size(a), 100);
  cr_assert_eq(wire_value_int(wire_value_at(a, 99)), 99);
  wire_value *e = wire_new_string(doc, NULL, 0);
  cr_assert_not_null(e);
  cr_assert_str_eq(wire_value_string(e, NULL), "");
}

Test(value, builder_copies_strings_and_keys) {
  char key[] = "key", text[] = "text";
  wire_value *o = wire_new_object(doc, 1);
  wire_object_set(doc, o, key, 3, wire_new_string(doc, text, 4));
  key[0] = 'X';
  text[0] = 'X';
  cr_assert_str_eq(wire_value_string(wire_value_get(o, "key", 3), NULL), "text");
}

Test(value, builder_fills_containers_after_adding_them) {
  wire_value *root = wire_new_object(doc, 0);
  wire_value *inner = wire_object_set(doc, root, "inner", 5, wire_new_object(doc, 0));
  wire_object_set(doc, inner, "k", 1, wire_new_int(doc, 1));
  const uint8_t *out;
  size_t len;
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, root, &out, &len, NULL), 0);
  cr_assert_eq(len, strlen("{\"inner\":{\"k\":1}}"));
  cr_assert(memcmp(out, "{\"inner\":{\"k\":1}}", len) == 0);
}

Test(value, builder_keeps_duplicate_keys_in_order) {
  wire_value *o = wire_new_object(doc, 0);
  wire_object_set(doc, o, "a", 1, wire_new_int(doc, 1));
  wire_object_set(doc, o, "a", 1, wire_new_int(doc, 2));
  cr_assert_eq(wire_value_size(o), 2);
  cr_assert_eq(wire_value_int(wire_value_get(o, "a", 1)), 2);
}

Test(value, builder_rejects_misuse_with_null) {
  wire_value *arr = wire_new_array(doc, 0), *obj = wire_new_object(doc, 0);
  wire_value *one = wire_new_int(doc, 1);
  cr_assert_null(wire_array_push(doc, obj, one));
  cr_assert_null(wire_array_push(doc, one, one));
  cr_assert_null(wire_array_push(doc, arr, NULL));
  cr_assert_null(wire_array_push(NULL, arr, one));
  cr_assert_null(wire_object_set(doc, arr, "k", 1, one));
  cr_assert_null(wire_object_set(doc, obj, NULL, 1, one));
  cr_assert_null(wire_object_set(doc, obj, "k", 1, NULL));
  cr_assert_null(wire_new_int(NULL, 1));
  cr_assert_null(wire_new_string(doc, NULL, 3));
  cr_assert_null(wire_new_array(doc, SIZE_MAX));
  cr_assert_eq(wire_value_size(arr), 0);
  cr_assert_eq(wire_value_size(obj), 0);
}

Test(value, pushing_an_element_of_the_same_array_copies_it_safely) {
  wire_value *arr = wire_new_array(doc, 1);
  wire_array_push(doc, arr, wire_new_string(doc, "x", 1));
  for (int i = 0; i < 10; i++)
    cr_assert_not_null(wire_array_push(doc, arr, wire_value_at(arr, 0)));
  cr_assert_eq(wire_value_size(arr), 11);
  cr_assert_str_eq(wire_value_string(wire_value_at(arr, 10), NULL), "x");
}

Test(value, equality_compares_numbers_by_value) {
  cr_assert(wire__value_equal(json("1"), json("1.0")));
  cr_assert(wire__value_equal(json("-0.0"), json("0")));
  cr_assert(!wire__value_equal(json("1"), json("1.5")));
  cr_assert(wire__value_equal(json("18446744073709551615"), json("18446744073709551615")));
  cr_assert(wire__value_equal(json("9223372036854775808"), json("9223372036854775808.0")));
  cr_assert(!wire__value_equal(json("9223372036854775807"), json("9223372036854775808")));
  cr_assert(!wire__value_equal(json("-1"), json("18446744073709551615")));
  cr_assert(!wire__value_equal(json("1e300"), json("1")));
  cr_assert(!wire__value_equal(json("1"), json("true")));
  cr_assert(!wire__value_equal(json("0"), json("null")));
}

Test(value, equality_ignores_member_order_but_not_array_order) {
  cr_assert(wire__value_equal(json("{\"a\":1,\"b\":[1,2]}"), json("{\"b\":[1,2.0],\"a\":1}")));
  cr_assert(!wire__value_equal(json("{\"a\":1}"), json("{\"a\":1,\"b\":2}")));
  cr_assert(!wire__value_equal(json("{\"a\":1,\"c\":2}"), json("{\"a\":1,\"b\":2}")));
  cr_assert(!wire__value_equal(json("[1,2]"), json("[2,1]")));
  cr_assert(!wire__value_equal(json("[1]"), json("[1,1]")));
  cr_assert(wire__value_equal(json("\"a\\u0000\""), json("\"a\\u0000\"")));
  cr_assert(!wire__value_equal(json("\"ab\""), json("\"abc\"")));
  cr_assert(!wire__value_equal(json("{}"), json("[]")));
  wire_value *b1 = wire_new_binary(doc, "ab", 2), *b2 = wire_new_binary(doc, "ab", 2);
  cr_assert(wire__value_equal(b1, b2));
  cr_assert(!wire__value_equal(b1, wire_new_string(doc, "ab", 2)));
}

Test(value, equality_counts_the_last_member_of_a_duplicate_key) {
  cr_assert(wire__value_equal(json("{\"a\":1,\"a\":2}"), json("{\"a\":2}")));
  cr_assert(!wire__value_equal(json("{\"a\":1,\"a\":2}"), json("{\"a\":1}")));
  cr_assert(
      wire__value_equal(json("{\"a\":1,\"b\":3,\"a\":2}"), json("{\"b\":3,\"a\":0,\"a\":2}")));
  cr_assert(!wire__value_equal(json("{\"a\":1,\"a\":1}"), json("{\"a\":1,\"b\":1}")));
  /* more than eight members: the sorted comparison */
  const char *big = "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,"
                    "\"k8\":8,\"k9\":9,\"k1\":10}";
  cr_assert(wire__value_equal(json(big), json("{\"k9\":9,\"k8\":8.0,\"k7\":7,\"k6\":6,\"k5\":5,"
                                              "\"k4\":4,\"k3\":3,\"k2\":2,\"k1\":10,\"k0\":0}")));
  cr_assert(!wire__value_equal(json(big), json("{\"k9\":9,\"k8\":8,\"k7\":7,\"k6\":6,\"k5\":5,"
                                               "\"k4\":4,\"k3\":3,\"k2\":2,\"k1\":1,\"k0\":0}")));
  cr_assert(!wire__value_equal(json(big), json("{\"k9\":9,\"k8\":8,\"k7\":7,\"k6\":6,\"k5\":5,"
                                               "\"k4\":4,\"k3\":3,\"k2\":2,\"k1\":10,\"kx\":0}")));
  cr_assert(wire__value_equal(json(big), json("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,"
                                              "\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
                                              "\"k1\":10}")));
  /* a big object and a small one with the same members that count */
  cr_assert(wire__value_equal(json("{\"a\":1,\"a\":1,\"a\":1,\"a\":1,\"a\":1,\"a\":1,\"a\":1,"
                                   "\"a\":1,\"a\":1,\"b\":2}"),
                              json("{\"b\":2,\"a\":1}")));
}

/* Each level holds the key twice, the nested object last. Comparing every
 * member instead of the one that counts compares the nested object twice
 * per level: 2^40 comparisons for these few hundred bytes. */
static const wire_value *nested_duplicates(int depth, int members) {
  size_t cap = (size_t)depth * (16 + 8 * (size_t)members) + 8;
  char *s = malloc(cap), *p = s;
  for (int i = 0; i < depth; i++) {
    *p++ = '{';
    for (int m = 0; m + 1 < members; m++)
      p += sprintf(p, "\"k\":%d,", m);
    p += sprintf(p, "\"k\":");
  }
  p += sprintf(p, "null");
  for (int i = 0; i < depth; i++)
    *p++ = '}';
  *p = 0;
  const wire_value *v = json(s);
  free(s);
  return v;
}

Test(value, equality_and_hash_of_nested_duplicate_keys_look_at_each_value_once) {
  const wire_value *a = nested_duplicates(40, 2), *b = nested_duplicates(40, 2);
  cr_assert(wire__value_equal(a, b));
  cr_assert_eq(wire__value_hash(a), wire__value_hash(b));
  const wire_value *c = nested_duplicates(30, 12), *d = nested_duplicates(30, 12);
  cr_assert(wire__value_equal(c, d));
  cr_assert_eq(wire__value_hash(c), wire__value_hash(d));
  cr_assert(!wire__value_equal(a, c));
}

Test(value, equal_values_hash_alike) {
  static const char *pairs[][2] = {
      {"1", "1.0"},
      {"-0.0", "0"},
      {"-5", "-5.0"},
      {"9223372036854775808", "9223372036854775808.0"},
      {"18446744073709551615", "18446744073709551615"},
      {"[1,{\"a\":2}]", "[1.0,{\"a\":2.0}]"},
      {"{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}"},
      {"{\"a\":1,\"a\":2}", "{\"a\":2}"},
      {"{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k1\":"
       "9}",
       "{\"k8\":8,\"k7\":7,\"k6\":6,\"k5\":5,\"k4\":4,\"k3\":3,\"k2\":2,\"k1\":9,\"k0\":0}"},
      {"\"a longer string than eight bytes\"", "\"a longer string than eight bytes\""},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    const wire_value *a = json(pairs[i][0]), *b = json(pairs[i][1]);
    cr_assert(wire__value_equal(a, b), "%s = %s", pairs[i][0], pairs[i][1]);
    cr_assert_eq(wire__value_hash(a), wire__value_hash(b), "%s and %s", pairs[i][0], pairs[i][1]);
  }
  /* different values: different hashes here (not promised in general) */
  cr_assert_neq(wire__value_hash(json("1")), wire__value_hash(json("2")));
  cr_assert_neq(wire__value_hash(json("\"ab\"")), wire__value_hash(json("\"ba\"")));
  cr_assert_neq(wire__value_hash(json("[1,2]")), wire__value_hash(json("[2,1]")));
  cr_assert_neq(wire__value_hash(json("{\"a\":1}")), wire__value_hash(json("{\"a\":1,\"b\":1}")));
}

/* The pair a pairwise scan reports: the smallest second index, then the
 * smallest first index. */
static bool pairwise(const wire_value *arr, size_t *first, size_t *second) {
  for (size_t i = 1; i < arr->u.a.len; i++)
    for (size_t j = 0; j < i; j++)
      if (wire__value_equal(&arr->u.a.items[i], &arr->u.a.items[j])) {
        *first = j;
        *second = i;
        return true;
      }
  return false;
}

Test(value, array_duplicate_finds_the_pair_a_pairwise_scan_finds) {
  static const char *arrays[] = {
      "[]",
      "[1]",
      "[1,2,3]",
      "[1,2,1.0]",
      "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,7.0,3,20]",
      "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22]",
      "[{\"a\":1},{\"b\":1},2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,{\"b\":1,\"a\":0},"
      "{\"a\":0,\"a\":1},{\"b\":1.0}]",
      "[\"x\",\"y\",\"z\",\"x\",\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\","
      "\"l\",\"m\",\"y\"]",
  };
  for (size_t k = 0; k < sizeof arrays / sizeof arrays[0]; k++) {
    const wire_value *a = json(arrays[k]);
    size_t pj = 0, pi = 0, j = 0, i = 0;
    bool want = pairwise(a, &pj, &pi);
    bool got = wire__array_duplicate(a->u.a.items, a->u.a.len, &j, &i);
    cr_assert_eq(got, want, "%s", arrays[k]);
    if (want) {
      cr_assert_eq(j, pj, "%s: first %zu, want %zu", arrays[k], j, pj);
      cr_assert_eq(i, pi, "%s: second %zu, want %zu", arrays[k], i, pi);
    }
  }
}

Test(value, array_duplicate_of_a_hundred_thousand_items) {
  size_t n = 100000;
  char *s = malloc(n * 8 + 16), *p = s;
  *p++ = '[';
  for (size_t i = 0; i < n; i++)
    p += sprintf(p, "%s%zu", i ? "," : "", i);
  strcpy(p, "]");
  const wire_value *a = json(s);
  size_t j, i;
  cr_assert(!wire__array_duplicate(a->u.a.items, a->u.a.len, &j, &i));
  /* the last item repeats an early one */
  p = s;
  *p++ = '[';
  for (size_t k = 0; k + 1 < n; k++)
    p += sprintf(p, "%zu,", k);
  strcpy(p, "7]");
  const wire_value *b = json(s);
  cr_assert(wire__array_duplicate(b->u.a.items, b->u.a.len, &j, &i));
  cr_assert_eq(j, 7);
  cr_assert_eq(i, n - 1);
  free(s);
}

Test(value, utf8_check_follows_rfc_3629) {
  const struct {
    const char *s;
    bool ok;
  } cases[] = {
      {"", true},
      {"plain ascii that is longer than eight bytes", true},
      {"\xc3\xa9", true},
      {"\xe2\x82\xac", true},
      {"\xf0\x9f\x98\x80", true},
      {"\xf4\x8f\xbf\xbf", true},
      {"\xef\xbf\xbf", true},
      {"\x80", false},
      {"\xc1\xbf", false},
      {"\xe0\x9f\xbf", false},
      {"\xed\xa0\x80", false},
      {"\xf0\x8f\xbf\xbf", false},
      {"\xf4\x90\x80\x80", false},
      {"\xf5\x80\x80\x80", false},
      {"\xc3", false},
      {"abcdefgh\xe2\x82", false},
      {"\xe2\x28\xa1", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_assert_eq(wire__utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s)), cases[i].ok,
                 "case %zu", i);
}
