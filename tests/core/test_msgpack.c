/*
 * test_msgpack.c -- the MessagePack codec: every format family in and out,
 * round trips with JSON and with msgpack-c's own packer/unpacker, and every
 * error path (truncation, ext, non-string keys, depth, bad UTF-8).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <msgpack.h>
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

TestSuite(msgpack, .init = setup, .fini = teardown);

static const wire_value *mp(const void *buf, size_t len) {
  const wire_value *v = NULL;
  wire_error err = {0};
  int rc = wire_decode(doc, WIRE_CODEC_MSGPACK, buf, len, 0, &v, &err);
  cr_assert_eq(rc, 0, "decode: %s", err.message);
  return v;
}
#define MP(lit) mp(lit, sizeof(lit) - 1)

static int mp_err(const void *buf, size_t len, unsigned depth, wire_error *err) {
  const wire_value *v = NULL;
  memset(err, 0, sizeof *err);
  return wire_decode(doc, WIRE_CODEC_MSGPACK, buf, len, depth, &v, err);
}

static void expect_reject(const char *buf, size_t len, int code, size_t off, const char *why) {
  wire_error err;
  int rc = mp_err(buf, len, 0, &err);
  cr_assert_eq(rc, code, "rc %d (%s)", rc, err.message);
  cr_assert_eq(err.code, code);
  cr_assert_eq(err.offset, off, "offset %zu, want %zu (%s)", err.offset, off, err.message);
  cr_assert(strstr(err.message, why) != NULL, "'%s' lacks '%s'", err.message, why);
}
#define REJECT(lit, code, off, why) expect_reject(lit, sizeof(lit) - 1, code, off, why)

static const wire_value *json(const char *s) {
  const wire_value *v = NULL;
  wire_error err;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, s, strlen(s), 0, &v, &err), 0, "%s", s);
  return v;
}

static void expect_bytes(const wire_value *v, const char *want, size_t want_len) {
  const uint8_t *out;
  size_t len;
  wire_error err = {0};
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_MSGPACK, v, &out, &len, &err), 0, "%s", err.message);
  cr_assert_eq(len, want_len, "length %zu, want %zu", len, want_len);
  cr_assert(memcmp(out, want, len) == 0);
}
#define BYTES(v, lit) expect_bytes(v, lit, sizeof(lit) - 1)

/* ---- decoding ---------------------------------------------------------- */

Test(msgpack, decodes_nil_booleans_and_every_integer_width) {
  cr_assert_eq(wire_value_type(MP("\xc0")), WIRE_NULL);
  cr_assert_eq(wire_value_bool(MP("\xc3")), 1);
  cr_assert_eq(wire_value_type(MP("\xc2")), WIRE_BOOL);
  cr_assert_eq(wire_value_int(MP("\x7f")), 127);
  cr_assert_eq(wire_value_int(MP("\xe0")), -32);
  cr_assert_eq(wire_value_int(MP("\xcc\xff")), 255);
  cr_assert_eq(wire_value_int(MP("\xcd\xff\xff")), 65535);
  cr_assert_eq(wire_value_int(MP("\xce\xff\xff\xff\xff")), 4294967295);
  cr_assert_eq(wire_value_int(MP("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff")), INT64_MAX);
  const wire_value *u = MP("\xcf\xff\xff\xff\xff\xff\xff\xff\xff");
  cr_assert_eq(wire_value_type(u), WIRE_UINT);
  cr_assert_eq(wire_value_uint(u), UINT64_MAX);
  cr_assert_eq(wire_value_int(MP("\xd0\x80")), -128);
  cr_assert_eq(wire_value_int(MP("\xd1\x80\x00")), -32768);
  cr_assert_eq(wire_value_int(MP("\xd2\x80\x00\x00\x00")), INT32_MIN);
  cr_assert_eq(wire_value_int(MP("\xd3\x80\x00\x00\x00\x00\x00\x00\x00")), INT64_MIN);
  /* a positive value in a signed format is still an integer */
  cr_assert_eq(wire_value_int(MP("\xd0\x05")), 5);
}

Test(msgpack, decodes_floats_as_doubles) {
  const wire_value *f = MP("\xca\x3f\xc0\x00\x00");
  cr_assert_eq(wire_value_type(f), WIRE_DOUBLE);
  cr_assert_eq(wire_value_double(f), 1.5);
  cr_assert_eq(wire_value_double(MP("\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18")), 3.141592653589793);
  /* NaN decodes (MessagePack allows it) even though JSON cannot carry it */
  cr_assert(isnan(wire_value_double(MP("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"))));
}

Test(msgpack, decodes_strings_and_binaries_of_every_width) {
  size_t n;
  cr_assert_str_eq(wire_value_string(MP("\xa3"
                                        "abc"),
                                     &n),
                   "abc");
  cr_assert_str_eq(wire_value_string(MP("\xa0"), &n), "");
  cr_assert_str_eq(wire_value_string(MP("\xd9\x02"
                                        "hi"),
                                     &n),
                   "hi");
  cr_assert_str_eq(wire_value_string(MP("\xda\x00\x02"
                                        "hi"),
                                     &n),
                   "hi");
  cr_assert_str_eq(wire_value_string(MP("\xdb\x00\x00\x00\x03"
                                        "h\xc3\xa9"),
                                     &n),
                   "h\xc3\xa9");
  const wire_value *s = MP("\xa3"
                           "a\0b");
  wire_value_string(s, &n);
  cr_assert_eq(n, 3);
  const uint8_t *b = wire_value_binary(MP("\xc4\x03\x00\xff\x80"), &n);
  cr_assert_eq(n, 3);
  cr_assert_eq(b[1], 0xff);
  cr_assert_eq(b[3], 0); /* NUL-terminated even for binary */
  cr_assert_eq(wire_value_type(MP("\xc5\x00\x00")), WIRE_BINARY);
  cr_assert_eq(wire_value_type(MP("\xc6\x00\x00\x00\x01"
                                  "x")),
               WIRE_BINARY);
}

Test(msgpack, decodes_arrays_and_maps_of_every_width_in_order) {
  const wire_value *v = MP("\x82\xa1"
                           "b\x93\x01\xc0\xa1x\xa1"
                           "a\x80");
  cr_assert_eq(wire_value_type(v), WIRE_OBJECT);
  wire_str k;
  wire_value_member(v, 0, &k);
  cr_assert_str_eq(k.ptr, "b");
  const wire_value *arr = wire_value_get(v, "b", 1);
  cr_assert_eq(wire_value_size(arr), 3);
  cr_assert_str_eq(wire_value_string(wire_value_at(arr, 2), NULL), "x");
  cr_assert_eq(wire_value_size(wire_value_get(v, "a", 1)), 0);
  cr_assert_eq(wire_value_size(MP("\xdc\x00\x02\x01\x02")), 2);
  cr_assert_eq(wire_value_size(MP("\xdd\x00\x00\x00\x01\x01")), 1);
  cr_assert_eq(wire_value_size(MP("\xde\x00\x01\xa1k\x01")), 1);
  cr_assert_eq(wire_value_size(MP("\xdf\x00\x00\x00\x01\xa1k\x01")), 1);
  cr_assert_eq(wire_value_size(MP("\x90")), 0);
}

Test(msgpack, duplicate_map_keys_are_kept_and_lookup_returns_the_last) {
  const wire_value *v = MP("\x82\xa1"
                           "a\x01\xa1"
                           "a\x02");
  cr_assert_eq(wire_value_size(v), 2);
  cr_assert_eq(wire_value_int(wire_value_get(v, "a", 1)), 2);
}

Test(msgpack, decodes_what_msgpack_c_packs) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str_with_body(&pk, "n", 1);
  msgpack_pack_int64(&pk, -123456789012);
  msgpack_pack_str_with_body(&pk, "f", 1);
  msgpack_pack_float(&pk, 0.25f);
  msgpack_pack_str_with_body(&pk, "l", 1);
  msgpack_pack_array(&pk, 300);
  for (int i = 0; i < 300; i++)
    msgpack_pack_int(&pk, i);
  const wire_value *v = mp(sb.data, sb.size);
  cr_assert_eq(wire_value_int(wire_value_get(v, "n", 1)), -123456789012);
  cr_assert_eq(wire_value_double(wire_value_get(v, "f", 1)), 0.25);
  cr_assert_eq(wire_value_int(wire_value_at(wire_value_get(v, "l", 1), 299)), 299);
  msgpack_sbuffer_destroy(&sb);
}

/* ---- errors ------------------------------------------------------------ */

Test(msgpack, rejects_empty_and_truncated_input) {
  REJECT("", WIRE_EDESERIALIZE, 0, "empty input");
  REJECT("\xcd\x01", WIRE_EDESERIALIZE, 0, "truncated value");
  REJECT("\xa5"
         "abc",
         WIRE_EDESERIALIZE, 0, "truncated value");
  REJECT("\xda\x00", WIRE_EDESERIALIZE, 0, "truncated header");
  REJECT("\x92\x01", WIRE_EDESERIALIZE, 0, "truncated container");
  REJECT("\x91\x91\x91", WIRE_EDESERIALIZE, 2, "truncated container");
  REJECT("\x81\xa1k", WIRE_EDESERIALIZE, 3, "truncated input");
}

Test(msgpack, rejects_every_truncation_of_a_valid_document) {
  const wire_value *src = json("{\"type\":\"chat\",\"id\":1234567,\"tags\":[\"a\",null,true,1.5],"
                               "\"big\":18446744073709551615,\"n\":-100000,\"o\":{\"k\":{}}}");
  const uint8_t *out;
  size_t len;
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_MSGPACK, src, &out, &len, NULL), 0);
  for (size_t cut = 0; cut < len; cut++) {
    uint8_t *exact = malloc(cut ? cut : 1);
    memcpy(exact, out, cut);
    wire_error err;
    cr_assert_eq(mp_err(exact, cut, 0, &err), WIRE_EDESERIALIZE, "prefix %zu accepted", cut);
    free(exact);
  }
}

Test(msgpack, refuses_huge_counts_without_allocating_for_them) {
  REJECT("\xdd\xff\xff\xff\xff\x01", WIRE_EDESERIALIZE, 0, "truncated container");
  REJECT("\xdf\x7f\xff\xff\xff\xa1k", WIRE_EDESERIALIZE, 0, "truncated container");
  REJECT("\xc6\xff\xff\xff\xff", WIRE_EDESERIALIZE, 0, "truncated value");
  REJECT("\xdb\xff\xff\xff\xff"
         "a",
         WIRE_EDESERIALIZE, 0, "truncated value");
}

Test(msgpack, rejects_trailing_bytes_and_the_reserved_byte) {
  REJECT("\x01\x02", WIRE_EDESERIALIZE, 1, "unexpected data after the value");
  REJECT("\xc1", WIRE_EDESERIALIZE, 0, "reserved byte 0xc1");
  REJECT("\x92\x01\xc1", WIRE_EDESERIALIZE, 2, "reserved byte 0xc1");
}

Test(msgpack, rejects_ext_types_with_a_clear_message) {
  REJECT("\xd4\x01\x00", WIRE_EDESERIALIZE, 0, "ext types are not supported");
  REJECT("\x91\xd8\x01"
         "0123456789abcdef",
         WIRE_EDESERIALIZE, 1, "ext types are not supported");
  REJECT("\xc7\x01\x05x", WIRE_EDESERIALIZE, 0, "ext types are not supported");
  /* the timestamp extension (-1) is an ext type too */
  REJECT("\xd6\xff\x00\x00\x00\x01", WIRE_EDESERIALIZE, 0, "ext types are not supported");
}

Test(msgpack, rejects_map_keys_that_are_not_strings) {
  REJECT("\x81\x01\x02", WIRE_EDESERIALIZE, 1, "map key is not a string");
  REJECT("\x81\xc4\x01k\x02", WIRE_EDESERIALIZE, 1, "map key is not a string");
  REJECT("\x81\x90\x02", WIRE_EDESERIALIZE, 1, "map key is not a string");
  REJECT("\x82\xa1k\x01\xc0\x02", WIRE_EDESERIALIZE, 4, "map key is not a string");
  REJECT("\x91\x81\xc3\x01", WIRE_EDESERIALIZE, 2, "map key is not a string");
}

Test(msgpack, rejects_invalid_utf8_in_strings_and_keys_but_not_in_binary) {
  REJECT("\xa2\xc3\x28", WIRE_EDESERIALIZE, 1, "invalid UTF-8");
  REJECT("\x81\xa1\xff\x01", WIRE_EDESERIALIZE, 2, "invalid UTF-8");
  REJECT("\x92\x01\xa3\xed\xa0\x80", WIRE_EDESERIALIZE, 3, "invalid UTF-8");
  cr_assert_eq(wire_value_type(MP("\xc4\x02\xc3\x28")), WIRE_BINARY);
}

Test(msgpack, rejects_nesting_beyond_msgpack_c_limit_and_max_depth) {
  char buf[64];
  memset(buf, 0x91, 40);
  buf[40] = 0x01;
  wire_error err;
  cr_assert_eq(mp_err(buf + 8, 33, 0, &err), 0, "32 levels: %s", err.message);
  cr_assert_eq(mp_err(buf + 7, 34, 0, &err), WIRE_EDEPTH);
  cr_assert_eq(err.offset, 32);
  cr_assert(strstr(err.message, "msgpack-c") != NULL, "%s", err.message);
  cr_assert_eq(mp_err("\x91\x91\x91\x01", 4, 2, &err), WIRE_EDEPTH);
  cr_assert_eq(err.offset, 2);
  cr_assert(strstr(err.message, "deeper than 2") != NULL, "%s", err.message);
  cr_assert_eq(mp_err("\x91\x91\x01", 3, 2, &err), 0);
  /* an empty container is a level too, as in JSON */
  cr_assert_eq(mp_err("\x91\x91\x90", 3, 2, &err), WIRE_EDEPTH);
  cr_assert_eq(mp_err("\x91\x90", 2, 2, &err), 0);
  /* 32 open arrays around an empty one: msgpack-c's stack is full */
  memset(buf, 0x91, 32);
  buf[32] = (char)0x90;
  cr_assert_eq(mp_err(buf, 33, 0, &err), WIRE_EDEPTH, "%s", err.message);
  buf[31] = (char)0x90;
  cr_assert_eq(mp_err(buf, 32, 0, &err), 0, "%s", err.message);
}

/* ---- encoding ---------------------------------------------------------- */

Test(msgpack, encodes_integers_in_the_smallest_form) {
  BYTES(wire_new_int(doc, 0), "\x00");
  BYTES(wire_new_int(doc, 127), "\x7f");
  BYTES(wire_new_int(doc, 128), "\xcc\x80");
  BYTES(wire_new_int(doc, 256), "\xcd\x01\x00");
  BYTES(wire_new_int(doc, 65536), "\xce\x00\x01\x00\x00");
  BYTES(wire_new_int(doc, 4294967296), "\xcf\x00\x00\x00\x01\x00\x00\x00\x00");
  BYTES(wire_new_int(doc, -1), "\xff");
  BYTES(wire_new_int(doc, -32), "\xe0");
  BYTES(wire_new_int(doc, -33), "\xd0\xdf");
  BYTES(wire_new_int(doc, -129), "\xd1\xff\x7f");
  BYTES(wire_new_int(doc, -32769), "\xd2\xff\xff\x7f\xff");
  BYTES(wire_new_int(doc, INT64_MIN), "\xd3\x80\x00\x00\x00\x00\x00\x00\x00");
  BYTES(wire_new_uint(doc, UINT64_MAX), "\xcf\xff\xff\xff\xff\xff\xff\xff\xff");
}

Test(msgpack, encodes_scalars_strings_binaries_and_containers) {
  BYTES(wire_new_null(doc), "\xc0");
  BYTES(wire_new_bool(doc, 1), "\xc3");
  BYTES(wire_new_bool(doc, 0), "\xc2");
  BYTES(wire_new_double(doc, 1.5), "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00");
  BYTES(wire_new_string(doc, "abc", 3), "\xa3"
                                        "abc");
  BYTES(wire_new_binary(doc, "\x01", 1), "\xc4\x01\x01");
  BYTES(json("[]"), "\x90");
  BYTES(json("{\"a\":[1,{}]}"), "\x81\xa1"
                                "a\x92\x01\x80");
  char s32[40], want[50];
  memset(s32, 'x', 32);
  memcpy(want, "\xd9\x20", 2);
  memset(want + 2, 'x', 32);
  expect_bytes(wire_new_string(doc, s32, 32), want, 34);
  wire_value *arr = wire_new_array(doc, 0);
  for (int i = 0; i < 16; i++)
    wire_array_push(doc, arr, wire_new_null(doc));
  expect_bytes(arr, "\xdc\x00\x10\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0\xc0",
               19);
}

Test(msgpack, large_strings_and_containers_use_the_wide_headers_and_round_trip) {
  size_t n = 70000;
  char *big = malloc(n);
  memset(big, 'q', n);
  wire_value *o = wire_new_object(doc, 0);
  wire_object_set(doc, o, "s", 1, wire_new_string(doc, big, n));
  wire_object_set(doc, o, "b", 1, wire_new_binary(doc, big, 300));
  wire_value *arr = wire_object_set(doc, o, "a", 1, wire_new_array(doc, 0));
  for (int i = 0; i < 70000; i++)
    wire_array_push(doc, arr, wire_new_int(doc, i));
  const uint8_t *out;
  size_t len;
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_MSGPACK, o, &out, &len, NULL), 0);
  const wire_value *back = mp(out, len);
  cr_assert(wire__value_equal(o, back));
  cr_assert_eq(wire_value_size(wire_value_get(back, "a", 1)), 70000);
  free(big);
}

Test(msgpack, msgpack_c_reads_what_we_encode) {
  const wire_value *v = json("{\"k\":[1,-2,3.5,\"s\",null,true,18446744073709551615]}");
  const uint8_t *out;
  size_t len;
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_MSGPACK, v, &out, &len, NULL), 0);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  cr_assert_eq(msgpack_unpack_next(&u, (const char *)out, len, &off), MSGPACK_UNPACK_SUCCESS);
  cr_assert_eq(off, len);
  cr_assert_eq(u.data.type, MSGPACK_OBJECT_MAP);
  msgpack_object arr = u.data.via.map.ptr[0].val;
  cr_assert_eq(arr.via.array.size, 7);
  cr_assert_eq(arr.via.array.ptr[1].via.i64, -2);
  cr_assert_eq(arr.via.array.ptr[2].via.f64, 3.5);
  cr_assert_eq(arr.via.array.ptr[6].via.u64, UINT64_MAX);
  msgpack_unpacked_destroy(&u);
}

Test(msgpack, refuses_to_encode_invalid_utf8) {
  const uint8_t *out;
  size_t len;
  wire_error err;
  cr_assert_eq(
      wire_encode(doc, WIRE_CODEC_MSGPACK, wire_new_string(doc, "\xff", 1), &out, &len, &err),
      WIRE_ESERIALIZE);
  cr_assert(strstr(err.message, "UTF-8") != NULL);
  wire_value *o = wire_new_object(doc, 0);
  wire_object_set(doc, o, "\xc3", 1, wire_new_null(doc));
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_MSGPACK, o, &out, &len, &err), WIRE_ESERIALIZE);
}

Test(msgpack, nan_and_infinity_survive_a_msgpack_round_trip) {
  wire_value *arr = wire_new_array(doc, 0);
  wire_array_push(doc, arr, wire_new_double(doc, INFINITY));
  wire_array_push(doc, arr, wire_new_double(doc, NAN));
  const uint8_t *out;
  size_t len;
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_MSGPACK, arr, &out, &len, NULL), 0);
  const wire_value *back = mp(out, len);
  cr_assert(isinf(wire_value_double(wire_value_at(back, 0))));
  cr_assert(isnan(wire_value_double(wire_value_at(back, 1))));
}

Test(msgpack, json_and_msgpack_round_trips_agree) {
  const char *docs[] = {
      "null",
      "[]",
      "{}",
      "0",
      "-1",
      "1.25",
      "\"\"",
      "\"\\u0000\"",
      "{\"type\":\"chat\",\"room\":\"g\\u00e9n\",\"n\":[1,2.5,-3,null,false],\"o\":{\"a\":{}}}",
      "[9223372036854775807,-9223372036854775808,18446744073709551615,1e300,-0.0]",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    const wire_value *a = json(docs[i]);
    const uint8_t *m;
    size_t mlen;
    cr_assert_eq(wire_encode(doc, WIRE_CODEC_MSGPACK, a, &m, &mlen, NULL), 0);
    const wire_value *b = mp(m, mlen);
    cr_assert(wire__value_equal(a, b), "%s", docs[i]);
    cr_assert_eq(wire_value_type(a), wire_value_type(b));
    const uint8_t *j1, *j2;
    size_t l1, l2;
    cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, a, &j1, &l1, NULL), 0);
    cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, b, &j2, &l2, NULL), 0);
    cr_assert(l1 == l2 && memcmp(j1, j2, l1) == 0, "%s", docs[i]);
  }
}

Test(msgpack, strings_are_terminated_without_touching_the_callers_buffer) {
  static const char src[] = "\x84\xa1"
                            "a\xa2"
                            "bb\xa1"
                            "c\xa0\xa1"
                            "d\xc4\x01"
                            "x\xa1"
                            "e\x92\xa1"
                            "f\xa1"
                            "g";
  char buf[sizeof src];
  memcpy(buf, src, sizeof src);
  const wire_value *v = mp(buf, sizeof src - 1);
  cr_assert(memcmp(buf, src, sizeof src) == 0, "input modified");
  size_t n;
  cr_assert_str_eq(wire_value_string(wire_value_get(v, "a", 1), &n), "bb");
  cr_assert_str_eq(wire_value_string(wire_value_get(v, "c", 1), &n), "");
  const uint8_t *b = wire_value_binary(wire_value_get(v, "d", 1), &n);
  cr_assert_eq(n, 1);
  cr_assert_eq(b[0], 'x');
  cr_assert_eq(b[1], 0);
  const wire_value *arr = wire_value_get(v, "e", 1);
  cr_assert_str_eq(wire_value_string(wire_value_at(arr, 0), NULL), "f");
  cr_assert_str_eq(wire_value_string(wire_value_at(arr, 1), NULL), "g");
}
