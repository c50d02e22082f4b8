/*
 * schema_idn.c -- host names for `format` (hostname, idn-hostname and the
 * domains of email / idn-email): RFC 1123 labels, Punycode A-labels (RFC
 * 3492, decoded and re-encoded), and a best-effort IDNA2008 U-label check
 * (RFC 5891/5892/5893): leading combining marks, the DISALLOWED and PVALID
 * exceptions, the CONTEXTJ/CONTEXTO rules and the Bidi rule, written as
 * PCRE2 patterns over Unicode properties. The full IDNA tables (NFC, every
 * DISALLOWED code point) are not applied; docs/schema.md says so.
 */
#include "schema_internal.h"

#include <string.h>
#include <strings.h>

#define MAX_LABEL_CPS 256

/* Virama (canonical combining class 9) code points, for ZWJ/ZWNJ. */
#define VIRAMA                                                                                     \
  "[\\x{94d}\\x{9cd}\\x{a4d}\\x{acd}\\x{b4d}\\x{bcd}\\x{c4d}\\x{ccd}\\x{d3b}\\x{d3c}\\x{d4d}"      \
  "\\x{dca}\\x{e3a}\\x{eba}\\x{f84}\\x{1039}\\x{103a}\\x{1714}\\x{1734}\\x{17d2}\\x{1a60}"         \
  "\\x{1b44}\\x{1baa}\\x{1bab}\\x{1bf2}\\x{1bf3}\\x{2d7f}\\x{a806}\\x{a8c4}\\x{a953}\\x{a9c0}"     \
  "\\x{aaf6}\\x{abed}\\x{10a3f}\\x{11046}\\x{1107f}\\x{110b9}\\x{11133}\\x{11134}\\x{111c0}"       \
  "\\x{11235}\\x{112ea}\\x{1134d}\\x{11442}\\x{114c2}\\x{115bf}\\x{1163f}\\x{116b6}\\x{1172b}"     \
  "\\x{11839}\\x{119e0}\\x{11a34}\\x{11a47}\\x{11a99}\\x{11c3f}\\x{11d44}\\x{11d45}\\x{11d97}]"
/* Scripts whose letters join (an approximation of Joining_Type D/L/R). */
#define JOINING "[\\p{Arabic}\\p{Syriac}\\p{Nko}\\p{Mandaic}\\p{Mongolian}]"

/* Any match means the U-label is invalid. */
static const char idn_bad_src[] =
    "^\\p{M}"                                                           /* leading mark */
    "|[\\x{640}\\x{7fa}\\x{302e}\\x{302f}\\x{3031}-\\x{3035}\\x{303b}]" /* DISALLOWED */
    "|[\\x{0}-\\x{2c}\\x{2e}\\x{2f}\\x{3a}-\\x{60}\\x{7b}-\\x{7f}]"     /* non-LDH ASCII */
    "|(?![\\x{b7}\\x{375}\\x{5f3}\\x{5f4}\\x{30fb}\\x{f0b}\\x{6fd}\\x{6fe}\\x{200c}\\x{200d}])"
    "(?=[^\\x{0}-\\x{7f}])[\\p{S}\\p{P}\\p{Z}\\p{C}\\p{Lu}\\p{Lt}]" /* not letters or digits */
    "|(?<!l)\\x{b7}|\\x{b7}(?!l)"                                   /* MIDDLE DOT */
    "|\\x{375}(?!\\p{sc:Greek})"                                    /* KERAIA */
    "|(?<!\\p{sc:Hebrew})[\\x{5f3}\\x{5f4}]"                        /* GERESH, GERSHAYIM */
    "|^(?=.*\\x{30fb})(?!.*[\\p{sc:Hiragana}\\p{sc:Katakana}\\p{sc:Han}])" /* KATAKANA MIDDLE DOT */
    "|[\\x{660}-\\x{669}].*[\\x{6f0}-\\x{6f9}]|[\\x{6f0}-\\x{6f9}].*[\\x{660}-\\x{669}]"
    "|(?<!" VIRAMA ")\\x{200d}"                 /* ZWJ */
    "|(?<!" VIRAMA ")(?<!" JOINING ")\\x{200c}" /* ZWNJ */
    "|(?<!" VIRAMA ")\\x{200c}(?!" JOINING ")";

/* A label with right-to-left content makes the whole name a Bidi domain. */
static const char idn_rtl_src[] = "[\\p{bc:R}\\p{bc:AL}\\p{bc:AN}]";

/* RFC 5893 §2 rules 1-6; any match breaks the Bidi rule. */
static const char idn_bidi_src[] =
    "^(?![\\p{bc:L}\\p{bc:R}\\p{bc:AL}])"
    "|^[\\p{bc:R}\\p{bc:AL}](?:"
    ".*[^\\p{bc:R}\\p{bc:AL}\\p{bc:AN}\\p{bc:EN}\\p{bc:ES}\\p{bc:CS}\\p{bc:ET}\\p{bc:ON}"
    "\\p{bc:BN}\\p{bc:NSM}]"
    "|.*[^\\p{bc:R}\\p{bc:AL}\\p{bc:EN}\\p{bc:AN}\\p{bc:NSM}]\\p{bc:NSM}*$"
    "|.*\\p{bc:EN}.*\\p{bc:AN}|.*\\p{bc:AN}.*\\p{bc:EN})"
    "|^\\p{bc:L}(?:"
    ".*[^\\p{bc:L}\\p{bc:EN}\\p{bc:ES}\\p{bc:CS}\\p{bc:ET}\\p{bc:ON}\\p{bc:BN}\\p{bc:NSM}]"
    "|.*[^\\p{bc:L}\\p{bc:EN}\\p{bc:NSM}]\\p{bc:NSM}*$)";

int wire__idn_init(wire_schema *S) {
  const char *srcs[3] = {idn_bad_src, idn_rtl_src, idn_bidi_src};
  for (int i = 0; i < 3; i++) {
    if (S->idn[i])
      continue;
    int e;
    PCRE2_SIZE off;
    S->idn[i] = pcre2_compile((PCRE2_SPTR)srcs[i], PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_DOTALL, &e, &off, NULL);
    if (S->idn[i] == NULL)
      return WIRE_ENOMEM; /* the patterns are fixed: only memory can fail */
    (void)pcre2_jit_compile(S->idn[i], PCRE2_JIT_COMPLETE);
  }
  return 0;
}

void wire__idn_free(wire_schema *S) {
  for (int i = 0; i < 3; i++) {
    if (S->idn[i])
      pcre2_code_free(S->idn[i]);
    S->idn[i] = NULL;
  }
}

/* ---- Punycode (RFC 3492) ---------------------------------------------- */

enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700 };

static uint32_t adapt(uint32_t delta, uint32_t points, bool first) {
  delta = first ? delta / DAMP : delta / 2;
  delta += delta / points;
  uint32_t k = 0;
  while (delta > ((BASE - TMIN) * TMAX) / 2) {
    delta /= BASE - TMIN;
    k += BASE;
  }
  return k + (BASE - TMIN + 1) * delta / (delta + SKEW);
}

static int digit_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0' + 26;
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  return BASE;
}

static uint32_t threshold(uint32_t k, uint32_t bias) {
  return k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
}

/* Decode s[0..n) into out (at most MAX_LABEL_CPS); -1 on bad input. */
static int puny_decode(const char *s, size_t n, uint32_t *out) {
  size_t b = 0;
  for (size_t j = 0; j < n; j++)
    if (s[j] == '-')
      b = j;
  size_t len = 0, in = 0;
  if (b > 0 || (n > 0 && s[0] == '-')) {
    for (size_t j = 0; j < b; j++) {
      if ((unsigned char)s[j] >= 0x80 || len == MAX_LABEL_CPS)
        return -1;
      out[len++] = (unsigned char)s[j];
    }
    in = b + 1;
  }
  uint32_t cp = 128, i = 0, bias = 72;
  while (in < n) {
    uint32_t oldi = i, w = 1;
    for (uint32_t k = BASE;; k += BASE) {
      if (in >= n)
        return -1;
      int d = digit_value(s[in++]);
      if (d >= BASE || (uint32_t)d > (UINT32_MAX - i) / w)
        return -1;
      i += (uint32_t)d * w;
      uint32_t t = threshold(k, bias);
      if ((uint32_t)d < t)
        break;
      if (w > UINT32_MAX / (BASE - t))
        return -1;
      w *= BASE - t;
    }
    bias = adapt(i - oldi, (uint32_t)len + 1, oldi == 0);
    if (i / (len + 1) > 0x10FFFF - cp)
      return -1;
    cp += i / (uint32_t)(len + 1);
    i %= (uint32_t)(len + 1);
    if (len == MAX_LABEL_CPS || (cp >= 0xD800 && cp <= 0xDFFF))
      return -1;
    memmove(out + i + 1, out + i, (len - i) * sizeof *out);
    out[i++] = cp;
    len++;
  }
  return (int)len;
}

/* Encode cps into out (capacity cap, NUL-terminated); length or -1. */
static int puny_encode(const uint32_t *cps, size_t n, char *out, size_t cap) {
  size_t o = 0, h = 0;
  for (size_t j = 0; j < n; j++) {
    if (cps[j] < 0x80) {
      if (o + 1 >= cap)
        return -1;
      out[o++] = (char)cps[j];
      h++;
    }
  }
  size_t b = h;
  if (b > 0) {
    if (o + 1 >= cap)
      return -1;
    out[o++] = '-';
  }
  uint32_t cp = 128, delta = 0, bias = 72;
  while (h < n) {
    uint32_t m = UINT32_MAX;
    for (size_t j = 0; j < n; j++)
      if (cps[j] >= cp && cps[j] < m)
        m = cps[j];
    delta += (m - cp) * (uint32_t)(h + 1);
    cp = m;
    for (size_t j = 0; j < n; j++) {
      if (cps[j] < cp)
        delta++;
      if (cps[j] != cp)
        continue;
      uint32_t q = delta;
      for (uint32_t k = BASE;; k += BASE) {
        uint32_t t = threshold(k, bias);
        if (q < t)
          break;
        uint32_t d = t + (q - t) % (BASE - t);
        if (o + 1 >= cap)
          return -1;
        out[o++] = (char)(d < 26 ? 'a' + d : '0' + d - 26);
        q = (q - t) / (BASE - t);
      }
      if (o + 1 >= cap)
        return -1;
      out[o++] = (char)(q < 26 ? 'a' + q : '0' + q - 26);
      bias = adapt(delta, (uint32_t)h + 1, h == b);
      delta = 0;
      h++;
    }
    delta++;
    cp++;
  }
  out[o] = 0;
  return (int)o;
}

/* ---- labels ------------------------------------------------------------ */

static size_t utf8_decode(const char *s, size_t n, uint32_t *out, size_t cap) {
  size_t len = 0;
  for (size_t i = 0; i < n && len < cap;) {
    unsigned char c = (unsigned char)s[i];
    uint32_t cp;
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    cp = extra == 0 ? c : extra == 1 ? c & 0x1F : extra == 2 ? c & 0x0F : c & 0x07;
    for (int k = 1; k <= extra && i + (size_t)k < n; k++)
      cp = (cp << 6) | ((unsigned char)s[i + (size_t)k] & 0x3F);
    out[len++] = cp;
    i += (size_t)extra + 1;
  }
  return len;
}

static size_t utf8_encode(const uint32_t *cps, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = cps[i];
    if (c < 0x80) {
      out[o++] = (char)c;
    } else if (c < 0x800) {
      out[o++] = (char)(0xC0 | (c >> 6));
      out[o++] = (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out[o++] = (char)(0xE0 | (c >> 12));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
      out[o++] = (char)(0x80 | (c & 0x3F));
    } else {
      out[o++] = (char)(0xF0 | (c >> 18));
      out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
      out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
      out[o++] = (char)(0x80 | (c & 0x3F));
    }
  }
  out[o] = 0;
  return o;
}

static bool matches(const wire_schema *S, int which, const char *s, size_t n) {
  return pcre2_match(S->idn[which], (PCRE2_SPTR)s, n, 0, 0, S->match, NULL) >= 0;
}

static bool ascii_ldh_label(const char *s, size_t n) {
  if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return true;
}

/* Turn a label into its U-label form in `u` (UTF-8). Returns false when the
 * label is invalid on its own. */
static bool label_uform(const wire_schema *S, const char *s, size_t n, bool idn, char *u,
                        size_t *ul, size_t *alen) {
  uint32_t cps[MAX_LABEL_CPS + 1];
  bool ascii = true;
  for (size_t i = 0; i < n; i++)
    ascii &= (unsigned char)s[i] < 0x80;
  size_t len;
  if (ascii) {
    if (!ascii_ldh_label(s, n))
      return false;
    bool alabel =
        n >= 4 && (s[0] | 0x20) == 'x' && (s[1] | 0x20) == 'n' && s[2] == '-' && s[3] == '-';
    *alen = n;
    if (!alabel) {
      if (n >= 4 && s[2] == '-' && s[3] == '-')
        return false;
      memcpy(u, s, n);
      u[n] = 0;
      *ul = n;
      return true;
    }
    int d = puny_decode(s + 4, n - 4, cps);
    if (d <= 0)
      return false;
    len = (size_t)d;
    bool any = false;
    for (size_t i = 0; i < len; i++)
      any |= cps[i] >= 0x80;
    char again[128];
    int e = puny_encode(cps, len, again, sizeof again);
    if (!any || e < 0 || (size_t)e != n - 4 || strncasecmp(again, s + 4, n - 4) != 0)
      return false;
  } else {
    if (!idn)
      return false;
    len = utf8_decode(s, n, cps, MAX_LABEL_CPS + 1);
    char enc[128];
    if (len > MAX_LABEL_CPS || puny_encode(cps, len, enc, sizeof enc) < 0 || strlen(enc) + 4 > 63)
      return false;
    *alen = strlen(enc) + 4;
  }
  if (len >= 4 && cps[2] == '-' && cps[3] == '-')
    return false;
  if (cps[0] == '-' || cps[len - 1] == '-')
    return false;
  *ul = utf8_encode(cps, len, u);
  return !matches(S, 0, u, *ul);
}

/* Find the next label separator at or after i: '.', or (idn) U+3002,
 * U+FF0E, U+FF61. Returns its index and width in *w (n when none). */
static size_t next_sep(const char *s, size_t n, size_t i, bool idn, size_t *w) {
  for (; i < n; i++) {
    if (s[i] == '.') {
      *w = 1;
      return i;
    }
    if (idn && i + 2 < n) {
      const unsigned char *p = (const unsigned char *)s + i;
      if ((p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x82) ||
          (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8E) ||
          (p[0] == 0xEF && p[1] == 0xBD && p[2] == 0xA1)) {
        *w = 3;
        return i;
      }
    }
  }
  *w = 0;
  return n;
}

bool wire__hostname_check(const wire_schema *S, const char *s, size_t n, bool idn) {
  if (n == 0 || (!idn && n > 253) || S->idn[0] == NULL)
    return false;
  char u[4 * MAX_LABEL_CPS + 8];
  size_t ul, alen, total = 0;
  bool bidi = false;
  for (int pass = 0; pass < 2; pass++) {
    size_t i = 0;
    total = 0;
    for (;;) {
      size_t w;
      size_t e = next_sep(s, n, i, idn, &w);
      if (e == i || !label_uform(S, s + i, e - i, idn, u, &ul, &alen))
        return false;
      total += alen + 1;
      if (total > 254) /* 253 octets in the ASCII (A-label) form */
        return false;
      if (pass == 0) {
        bidi |= matches(S, 1, u, ul);
      } else if (matches(S, 2, u, ul)) {
        return false;
      }
      if (e == n)
        break;
      i = e + w;
      if (i == n)
        return false; /* trailing separator */
    }
    if (!bidi)
      break; /* the Bidi rule binds only names with right-to-left labels */
  }
  return true;
}
