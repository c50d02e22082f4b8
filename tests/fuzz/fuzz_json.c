/*
 * fuzz_json.c -- libFuzzer target for the JSON decoder. Whatever decodes
 * must re-encode, decode again to an equal value, encode to the same bytes,
 * and survive a MessagePack round trip; a tight depth limit is exercised on
 * every input too.
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
  int rc = wire_decode(doc, WIRE_CODEC_JSON, data, size, 0, &v, &err);
  CHECK(rc == 0 || rc == WIRE_EDESERIALIZE || rc == WIRE_EDEPTH);
  if (rc != 0) {
    CHECK(err.code == rc && err.offset <= size);
  } else {
    const uint8_t *e1, *e2, *m;
    size_t l1, l2, ml;
    CHECK(wire_encode(doc, WIRE_CODEC_JSON, v, &e1, &l1, &err) == 0);
    const wire_value *again;
    CHECK(wire_decode(doc, WIRE_CODEC_JSON, e1, l1, 0, &again, &err) == 0);
    CHECK(wire__value_equal(v, again));
    CHECK(wire_encode(doc, WIRE_CODEC_JSON, again, &e2, &l2, &err) == 0);
    CHECK(l1 == l2 && memcmp(e1, e2, l1) == 0);
    /* MessagePack caps nesting at 32 levels; anything shallower must pass */
    CHECK(wire_encode(doc, WIRE_CODEC_MSGPACK, v, &m, &ml, &err) == 0);
    rc = wire_decode(doc, WIRE_CODEC_MSGPACK, m, ml, 0, &again, &err);
    CHECK(rc == 0 || rc == WIRE_EDEPTH);
    if (rc == 0)
      CHECK(wire__value_equal(v, again));
  }
  wire_doc_reset(doc);
  rc = wire_decode(doc, WIRE_CODEC_JSON, data, size, 3, &v, &err);
  CHECK(rc == 0 || rc == WIRE_EDESERIALIZE || rc == WIRE_EDEPTH);
  wire_doc_free(doc);
  return 0;
}
