/*
 * msgpack.c -- MessagePack codec (placeholder until the msgpack-c decoder lands).
 */
#include "internal.h"

int wire__msgpack_decode(wire__arena *a, const uint8_t *buf, size_t len, unsigned max_depth,
                         const wire_value **out, wire_error *err) {
  return wire__error_set(err, WIRE_EINVAL, "MessagePack: not implemented yet");
}

int wire__msgpack_encode(wire__buf *b, const wire_value *v, wire_error *err) {
  return wire__error_set(err, WIRE_EINVAL, "MessagePack: not implemented yet");
}
