/*
 * fuzz_schema.c -- libFuzzer target for the schema compiler and validator.
 * The input is a schema and an instance separated by the first NUL byte
 * (no NUL: the input is both). Whatever compiles is run over the instance,
 * with and without an error report and with format assertion, and the two
 * answers must agree. A resolver serves one fixed remote document.
 * Build: cmake -DWIRE_BUILD_FUZZ=ON -DCMAKE_C_COMPILER=clang (tests/fuzz/CMakeLists.txt),
 *   or clang -fsanitize=fuzzer,address,undefined -Icore/include -Icore/src with every
 *   core/src .c file, linking pcre2-8 msgpackc uv wslay crypto m.
 */
#include "wirecore.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *resolve(const char *uri, size_t *len, void *user_data) {
  (void)user_data;
  static const char remote[] =
      "{\"$defs\":{\"s\":{\"type\":\"string\"}},\"items\":{\"$ref\":\"#/$defs/s\"}}";
  if (strcmp(uri, "http://localhost:1234/r.json") != 0)
    return NULL;
  *len = sizeof remote - 1;
  return remote;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t slen = nul ? (size_t)(nul - data) : size;
  const char *inst = nul ? (const char *)nul + 1 : (const char *)data;
  size_t ilen = nul ? size - slen - 1 : size;
  wire_doc *doc;
  if (wire_doc_new(&doc))
    return 0;
  const wire_value *v;
  if (wire_decode(doc, WIRE_CODEC_JSON, inst, ilen, 0, &v, NULL) == 0) {
    for (unsigned flags = 0; flags <= WIRE_SCHEMA_FORMAT_ASSERT; flags++) {
      wire_schema_options opts = {flags, resolve, NULL};
      wire_schema *s;
      wire_error err;
      if (wire_schema_compile((const char *)data, slen, &opts, &s, &err) != 0)
        continue;
      int a = wire_schema_validate(s, v, &err);
      int b = wire_schema_validate(s, v, NULL);
      if (a != b)
        abort();
      const wire_schema *list[2] = {s, s};
      wire_dispatcher *d;
      if (wire_dispatcher_new(list, 2, &d) == 0) {
        size_t idx;
        wire_dispatch(d, v, &idx, &err);
        wire_dispatcher_free(d);
      }
      wire_schema_free(s);
    }
  }
  wire_doc_free(doc);
  return 0;
}
