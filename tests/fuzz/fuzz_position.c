/*
 * fuzz_position.c -- libFuzzer target for positions ("<epoch>:<seq>", the
 * opaque strings clients send back to recover a topic's history): whatever
 * wire_position_parse accepts must print back to exactly the same bytes, so
 * every position has one spelling and nothing else is taken for one.
 */
#include <wirecore.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t epoch, seq;
  if (wire_position_parse((const char *)data, size, &epoch, &seq) != 0)
    return 0;
  char back[WIRE_POSITION_MAX];
  int n = snprintf(back, sizeof back, "%016llx:%llu", (unsigned long long)epoch,
                   (unsigned long long)seq);
  if (n < 0 || (size_t)n != size || memcmp(back, data, size) != 0)
    abort(); /* one spelling per position */
  return 0;
}
