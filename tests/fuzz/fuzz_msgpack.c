/*
 * fuzz_msgpack.c -- libFuzzer target for the MessagePack decoder (msgpack-c
 * behind our pre-scan). Whatever decodes must re-encode to bytes that decode
 * and encode to the same bytes again (NaN-safe), and JSON encoding must
 * either succeed and round-trip or fail cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "wirecore.h"

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      abort();                                                                                     \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wire_doc *doc;
  if (wire_doc_new(&doc) != 0)
    return 0;
  const wire_value *v;
  wire_error err;
  int rc = wire_decode(doc, WIRE_CODEC_MSGPACK, data, size, 0, &v, &err);
  CHECK(rc == 0 || rc == WIRE_EDESERIALIZE || rc == WIRE_EDEPTH);
  if (rc != 0) {
    CHECK(err.code == rc && err.offset <= size);
  } else {
    const uint8_t *m1, *m2, *j;
    size_t l1, l2, jl;
    CHECK(wire_encode(doc, WIRE_CODEC_MSGPACK, v, &m1, &l1, &err) == 0);
    const wire_value *again;
    CHECK(wire_decode(doc, WIRE_CODEC_MSGPACK, m1, l1, 0, &again, &err) == 0);
    CHECK(wire_encode(doc, WIRE_CODEC_MSGPACK, again, &m2, &l2, &err) == 0);
    CHECK(l1 == l2 && memcmp(m1, m2, l1) == 0);
    rc = wire_encode(doc, WIRE_CODEC_JSON, v, &j, &jl, &err);
    CHECK(rc == 0 || rc == WIRE_ESERIALIZE);
    if (rc == 0) {
      CHECK(wire_decode(doc, WIRE_CODEC_JSON, j, jl, 0, &again, &err) == 0);
      CHECK(wire__value_equal(v, again));
    }
  }
  wire_doc_free(doc);
  return 0;
}
