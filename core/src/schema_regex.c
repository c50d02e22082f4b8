/*
 * schema_regex.c -- ECMA-262 regular expressions (`pattern`,
 * `patternProperties`, format "regex") on top of PCRE2.
 *
 * The pattern is rewritten so PCRE2 gives ECMA's answers where the two
 * dialects differ: \d \w \s \b and their negations keep ECMA's ASCII / fixed
 * meaning under PCRE2_UCP, `.` excludes ECMA's line terminators, \v is the
 * vertical-tab character, \uXXXX (with surrogate pairs) and \u{...} become
 * code points, and escapes ECMA's unicode mode rejects are rejected.
 * docs/schema.md lists what remains different.
 */
#include "schema_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORD_CLASS "A-Za-z0-9_"
#define NOT_WORD_CLASS "\\x{0}-\\x{2f}\\x{3a}-\\x{40}\\x{5b}-\\x{5e}\\x{60}\\x{7b}-\\x{10ffff}"
#define DIGIT_CLASS "0-9"
#define NOT_DIGIT_CLASS "\\x{0}-\\x{2f}\\x{3a}-\\x{10ffff}"
/* ECMA WhiteSpace + LineTerminator. */
#define SPACE_CLASS                                                                                \
  "\\x{9}-\\x{d}\\x{20}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}"    \
  "\\x{3000}\\x{feff}"
#define NOT_SPACE_CLASS                                                                            \
  "\\x{0}-\\x{8}\\x{e}-\\x{1f}\\x{21}-\\x{9f}\\x{a1}-\\x{167f}\\x{1681}-\\x{1fff}"                 \
  "\\x{200b}-\\x{2027}\\x{202a}-\\x{202e}\\x{2030}-\\x{205e}\\x{2060}-\\x{2fff}"                   \
  "\\x{3001}-\\x{fefe}\\x{ff00}-\\x{10ffff}"
#define WORD_BOUNDARY                                                                              \
  "(?:(?<=[" WORD_CLASS "])(?![" WORD_CLASS "])|(?<![" WORD_CLASS "])(?=[" WORD_CLASS "]))"
#define NOT_WORD_BOUNDARY                                                                          \
  "(?:(?<=[" WORD_CLASS "])(?=[" WORD_CLASS "])|(?<![" WORD_CLASS "])(?![" WORD_CLASS "]))"

typedef struct obuf {
  char *p;
  size_t len, cap;
  int oom;
} obuf;

static void out(obuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}
static void outs(obuf *b, const char *s) {
  out(b, s, strlen(s));
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Parse exactly 4 hex digits at s (within end); -1 when not there. */
static long hex4(const char *s, const char *end) {
  if (end - s < 4)
    return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(s[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static void out_cp(obuf *b, long cp) {
  char tmp[24];
  snprintf(tmp, sizeof tmp, "\\x{%lx}", cp);
  outs(b, tmp);
}

/* Unicode property names PCRE2 10.42 does not know under their long
 * (ECMA) spelling: General_Category values and the gc=/sc=/scx= forms. */
static void property_name(obuf *b, const char *name, size_t n) {
  static const char *const gc[][2] = {
      {"letter", "L"},
      {"casedletter", "L&"},
      {"uppercaseletter", "Lu"},
      {"lowercaseletter", "Ll"},
      {"titlecaseletter", "Lt"},
      {"modifierletter", "Lm"},
      {"otherletter", "Lo"},
      {"mark", "M"},
      {"combiningmark", "M"},
      {"nonspacingmark", "Mn"},
      {"spacingmark", "Mc"},
      {"enclosingmark", "Me"},
      {"number", "N"},
      {"decimalnumber", "Nd"},
      {"digit", "Nd"},
      {"letternumber", "Nl"},
      {"othernumber", "No"},
      {"punctuation", "P"},
      {"punct", "P"},
      {"connectorpunctuation", "Pc"},
      {"dashpunctuation", "Pd"},
      {"openpunctuation", "Ps"},
      {"closepunctuation", "Pe"},
      {"initialpunctuation", "Pi"},
      {"finalpunctuation", "Pf"},
      {"otherpunctuation", "Po"},
      {"symbol", "S"},
      {"mathsymbol", "Sm"},
      {"currencysymbol", "Sc"},
      {"modifiersymbol", "Sk"},
      {"othersymbol", "So"},
      {"separator", "Z"},
      {"spaceseparator", "Zs"},
      {"lineseparator", "Zl"},
      {"paragraphseparator", "Zp"},
      {"other", "C"},
      {"control", "Cc"},
      {"cntrl", "Cc"},
      {"format", "Cf"},
      {"surrogate", "Cs"},
      {"privateuse", "Co"},
      {"unassigned", "Cn"},
  };
  const char *eq = memchr(name, '=', n);
  if (eq) {
    size_t kl = (size_t)(eq - name);
    const char *val = eq + 1;
    size_t vl = n - kl - 1;
    if ((kl == 2 && memcmp(name, "gc", 2) == 0) ||
        (kl == 16 && memcmp(name, "General_Category", 16) == 0)) {
      name = val, n = vl; /* fall through to the value lookup */
    } else if ((kl == 2 && memcmp(name, "sc", 2) == 0) ||
               (kl == 6 && memcmp(name, "Script", 6) == 0)) {
      outs(b, "sc:");
      out(b, val, vl);
      return;
    } else {
      outs(b, "scx:");
      out(b, val, vl);
      return;
    }
  }
  char key[64];
  size_t kn = 0;
  for (size_t i = 0; i < n && kn < sizeof key - 1; i++) {
    char ch = name[i];
    if (ch == '_' || ch == '-' || ch == ' ')
      continue;
    key[kn++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
  }
  key[kn] = 0;
  for (size_t i = 0; i < sizeof gc / sizeof gc[0]; i++) {
    if (strcmp(gc[i][0], key) == 0) {
      outs(b, gc[i][1]);
      return;
    }
  }
  out(b, name, n);
}

/* Rewrite ECMA source into PCRE2 source. Returns NULL (and a message) on a
 * construct ECMA's unicode mode rejects. */
static char *translate(const char *src, size_t len, char *msg, size_t msg_len) {
  obuf b = {0};
  const char *s = src, *end = src + len;
  int in_class = 0;
  while (s < end) {
    char c = *s;
    if (c != '\\') {
      if (in_class) {
        /* With PCRE2_ALLOW_EMPTY_CLASS a ']' always closes, as in ECMA. */
        if (c == ']')
          in_class = 0;
        out(&b, s, 1);
      } else if (c == '[') {
        in_class = 1;
        out(&b, s, 1);
        if (s + 1 < end && s[1] == '^') {
          out(&b, "^", 1);
          s++;
        }
      } else if (c == '(' && s + 1 < end && s[1] == '?') {
        /* ECMA groups: (?: (?= (?! (?<= (?<! (?<name> -- nothing else */
        const char *g = s + 2;
        bool ok = g < end && (*g == ':' || *g == '=' || *g == '!' ||
                              (*g == '<' && g + 1 < end && g[1] != 'P'));
        if (!ok) {
          snprintf(msg, msg_len, "group syntax \"(?%c\" is not ECMA-262", g < end ? *g : ' ');
          free(b.p);
          return NULL;
        }
        out(&b, s, 1);
      } else if (c == '.') {
        outs(&b, "[^\\n\\r\\x{2028}\\x{2029}]");
      } else {
        out(&b, s, 1);
      }
      s++;
      continue;
    }
    if (s + 1 >= end) {
      snprintf(msg, msg_len, "pattern ends with a lone backslash");
      free(b.p);
      return NULL;
    }
    char e = s[1];
    const char *next = s + 2;
    switch (e) {
    case 'd':
      outs(&b, in_class ? DIGIT_CLASS : "[" DIGIT_CLASS "]");
      break;
    case 'D':
      outs(&b, in_class ? NOT_DIGIT_CLASS : "[^" DIGIT_CLASS "]");
      break;
    case 'w':
      outs(&b, in_class ? WORD_CLASS : "[" WORD_CLASS "]");
      break;
    case 'W':
      outs(&b, in_class ? NOT_WORD_CLASS : "[^" WORD_CLASS "]");
      break;
    case 's':
      outs(&b, in_class ? SPACE_CLASS : "[" SPACE_CLASS "]");
      break;
    case 'S':
      outs(&b, in_class ? NOT_SPACE_CLASS : "[^" SPACE_CLASS "]");
      break;
    case 'b':
      outs(&b, in_class ? "\\x{8}" : WORD_BOUNDARY);
      break;
    case 'B':
      if (in_class)
        goto bad;
      outs(&b, NOT_WORD_BOUNDARY);
      break;
    case 'v':
      outs(&b, "\\x{b}");
      break;
    case 'f':
    case 'n':
    case 'r':
    case 't':
      out(&b, s, 2);
      break;
    case '0':
      if (next < end && *next >= '0' && *next <= '9')
        goto bad;
      outs(&b, "\\x{0}");
      break;
    case 'c':
      if (next < end && ((*next >= 'a' && *next <= 'z') || (*next >= 'A' && *next <= 'Z'))) {
        out_cp(&b, *next % 32);
        next++;
      } else {
        goto bad;
      }
      break;
    case 'x':
      if (end - next >= 2 && hexval(next[0]) >= 0 && hexval(next[1]) >= 0) {
        out_cp(&b, hexval(next[0]) * 16 + hexval(next[1]));
        next += 2;
      } else {
        goto bad;
      }
      break;
    case 'u': {
      if (next < end && *next == '{') {
        const char *q = next + 1;
        long v = 0;
        while (q < end && hexval(*q) >= 0 && v <= 0x10ffff)
          v = v * 16 + hexval(*q++);
        if (q == next + 1 || q >= end || *q != '}' || v > 0x10ffff)
          goto bad;
        out_cp(&b, v);
        next = q + 1;
        break;
      }
      long v = hex4(next, end);
      if (v < 0)
        goto bad;
      next += 4;
      if (v >= 0xd800 && v <= 0xdbff && end - next >= 6 && next[0] == '\\' && next[1] == 'u') {
        long lo = hex4(next + 2, end);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
          next += 6;
        }
      }
      if (v >= 0xd800 && v <= 0xdfff)
        goto bad; /* a lone surrogate cannot occur in UTF-8 text */
      out_cp(&b, v);
      break;
    }
    case 'p':
    case 'P': {
      const char *close =
          next < end && *next == '{' ? memchr(next, '}', (size_t)(end - next)) : NULL;
      if (close == NULL)
        goto bad;
      out(&b, s, 3);
      property_name(&b, next + 1, (size_t)(close - next - 1));
      outs(&b, "}");
      next = close + 1;
      break;
    }
    case 'k':
      out(&b, s, 2);
      break;
    default:
      if (e >= '1' && e <= '9') {
        out(&b, s, 2); /* back reference */
      } else if (strchr("^$\\.*+?()[]{}|/-", e) != NULL) {
        out(&b, s, 2);
      } else {
        goto bad;
      }
    }
    s = next;
    continue;
  bad:
    snprintf(msg, msg_len, "invalid escape \\%c in regular expression", e);
    free(b.p);
    return NULL;
  }
  if (b.oom || b.p == NULL) {
    if (!b.oom && b.p == NULL) {
      b.p = malloc(1);
      if (b.p)
        b.p[0] = 0;
    }
    if (b.oom || b.p == NULL) {
      free(b.p);
      snprintf(msg, msg_len, "out of memory");
      return NULL;
    }
  }
  return b.p;
}

int wire__regex_compile(ws_regex *re, const char *src, size_t len, char *msg, size_t msg_len) {
  re->code = NULL;
  char *pat = translate(src, len, msg, msg_len);
  if (pat == NULL)
    return WIRE_ESCHEMA;
  int errcode;
  PCRE2_SIZE erroff;
  re->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS,
                           &errcode, &erroff, NULL);
  free(pat);
  if (re->code == NULL) {
    char emsg[160];
    pcre2_get_error_message(errcode, (PCRE2_UCHAR *)emsg, sizeof emsg);
    snprintf(msg, msg_len, "invalid regular expression: %s", emsg);
    return WIRE_ESCHEMA;
  }
  /* JIT is an optimisation only: without it (unsupported CPU) matching is
   * slower but the same. */
  re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
  return 0;
}

void wire__regex_free(ws_regex *re) {
  if (re->code)
    pcre2_code_free(re->code);
  re->code = NULL;
}

/* 1 when s[0..len) is all ASCII (then trivially valid UTF-8). */
static bool all_ascii(const char *s, size_t len) {
  uint64_t acc = 0, w;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    memcpy(&w, s + i, 8);
    acc |= w;
  }
  for (; i < len; i++)
    acc |= (unsigned char)s[i];
  return (acc & UINT64_C(0x8080808080808080)) == 0;
}

int wire__regex_search(const ws_regex *re, pcre2_match_data *md, const char *s, size_t len) {
  int rc;
  /* pcre2_jit_match skips pcre2_match's checks, including the UTF-8 one,
   * so invalid text (a builder value, say) must be caught here first. */
  if (re->jit && (all_ascii(s, len) || wire__utf8_valid((const uint8_t *)s, len)))
    rc = pcre2_jit_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
  else
    rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
  if (rc >= 0)
    return 1;
  if (rc == PCRE2_ERROR_NOMATCH)
    return 0;
  return -1;
}
