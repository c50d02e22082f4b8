/*
 * utf8.c -- UTF-8 validation (RFC 3629) shared by the codecs and the frame
 * layer: no overlong forms, no surrogates, nothing above U+10FFFF. Whole
 * strings (wire__utf8_valid) and an incremental state machine that survives
 * chunk and fragment boundaries (wire__utf8_step).
 */
#include "internal.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Validate one sequence whose lead byte s[0] is >= 0x80. The second-byte
 * ranges come from RFC 3629's table and exclude overlongs and surrogates. */
static inline size_t utf8_seq(const uint8_t *s, const uint8_t *end) {
  uint8_t c = s[0];
  size_t avail = (size_t)(end - s);
  if (c < 0xC2)
    return 0; /* continuation byte or overlong 2-byte lead */
  if (c < 0xE0) {
    return avail >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  }
  if (c < 0xF0) {
    if (avail < 3 || (s[2] & 0xC0) != 0x80)
      return 0;
    uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return s[1] >= lo && s[1] <= hi ? 3 : 0;
  }
  if (c < 0xF5) {
    if (avail < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return s[1] >= lo && s[1] <= hi ? 4 : 0;
  }
  return 0;
}

size_t wire__utf8_seq(const uint8_t *s, const uint8_t *end) {
  return utf8_seq(s, end);
}

/* ASCII runs are skipped sixteen (SSE2) or eight bytes at a time. */
bool wire__utf8_valid(const uint8_t *s, size_t len) {
  if (len == 0) /* s may be NULL then (msgpack-c's empty strings) */
    return true;
  const uint8_t *end = s + len;
  while (s < end) {
#if defined(__SSE2__)
    while ((size_t)(end - s) >= 16) {
      int high = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)s));
      if (high) {
        s += __builtin_ctz((unsigned)high);
        break;
      }
      s += 16;
    }
#endif
    while ((size_t)(end - s) >= 8) {
      uint64_t w;
      memcpy(&w, s, 8);
      if (w & 0x8080808080808080ull)
        break;
      s += 8;
    }
    if (s >= end)
      break;
    if (*s < 0x80) {
      s++;
      continue;
    }
    size_t n = utf8_seq(s, end);
    if (n == 0)
      return false;
    s += n;
  }
  return true;
}

/* ---- incremental ---------------------------------------------------------- */

/* State: 0 complete, 1 rejected, else (bytes still needed << 16 | lo << 8 |
 * hi), the range the next byte must fall in (RFC 3629 table 3-7). */
uint32_t wire__utf8_step(uint32_t st, const uint8_t *s, size_t len) {
  if (st == WIRE__UTF8_BAD)
    return st;
  unsigned need = st >> 16, lo = (st >> 8) & 0xff, hi = st & 0xff;
  size_t i = 0;
  while (i < len) {
    if (need == 0) {
      while (i + 8 <= len) { /* skip ASCII eight bytes at a time */
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
          break;
        i += 8;
      }
      if (i >= len)
        break;
      uint8_t b = s[i++];
      if (b < 0x80)
        continue;
      lo = 0x80;
      hi = 0xBF;
      if (b >= 0xC2 && b <= 0xDF)
        need = 1;
      else if (b == 0xE0)
        need = 2, lo = 0xA0;
      else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
        need = 2;
      else if (b == 0xED)
        need = 2, hi = 0x9F;
      else if (b == 0xF0)
        need = 3, lo = 0x90;
      else if (b >= 0xF1 && b <= 0xF3)
        need = 3;
      else if (b == 0xF4)
        need = 3, hi = 0x8F;
      else
        return WIRE__UTF8_BAD;
    } else {
      uint8_t b = s[i++];
      if (b < lo || b > hi)
        return WIRE__UTF8_BAD;
      need--;
      lo = 0x80;
      hi = 0xBF;
    }
  }
  return need == 0 ? WIRE__UTF8_OK : (need << 16) | (lo << 8) | hi;
}
