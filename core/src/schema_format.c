/*
 * schema_format.c -- `format` assertions (used only with
 * WIRE_SCHEMA_FORMAT_ASSERT or the format-assertion vocabulary).
 *
 * Dates and times follow RFC 3339, email RFC 5321/5322 (addr-spec with
 * dot-atom or quoted local part, domain or address literal), hostnames RFC
 * 1123, IP addresses RFC 2673/4291, URIs and IRIs RFC 3986/3987, UUIDs RFC
 * 4122, JSON Pointers RFC 6901 and the relative JSON Pointer draft. The idn-*
 * formats are checked structurally only (docs/schema.md).
 */
#include "schema_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  ws_format f;
} names[] = {
    {"date-time", WS_F_DATE_TIME},
    {"date", WS_F_DATE},
    {"time", WS_F_TIME},
    {"duration", WS_F_DURATION},
    {"email", WS_F_EMAIL},
    {"idn-email", WS_F_IDN_EMAIL},
    {"hostname", WS_F_HOSTNAME},
    {"idn-hostname", WS_F_IDN_HOSTNAME},
    {"ipv4", WS_F_IPV4},
    {"ipv6", WS_F_IPV6},
    {"uri", WS_F_URI},
    {"uri-reference", WS_F_URI_REFERENCE},
    {"iri", WS_F_IRI},
    {"iri-reference", WS_F_IRI_REFERENCE},
    {"uri-template", WS_F_URI_TEMPLATE},
    {"uuid", WS_F_UUID},
    {"json-pointer", WS_F_JSON_POINTER},
    {"relative-json-pointer", WS_F_RELATIVE_JSON_POINTER},
    {"regex", WS_F_REGEX},
};

ws_format wire__format_lookup(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0)
      return names[i].f;
  return WS_F_UNKNOWN;
}

static bool digit(char c) {
  return c >= '0' && c <= '9';
}
static bool alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool hexdig(char c) {
  return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* n ASCII digits at s as a number, or -1. */
static int num(const char *s, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!digit(s[i]))
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* ---- dates and times (RFC 3339 §5.6) ---------------------------------- */

static bool leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool full_date(const char *s, size_t n) {
  if (n != 10 || s[4] != '-' || s[7] != '-')
    return false;
  int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 0 || m < 1 || m > 12 || d < 1)
    return false;
  int max = days[m - 1] + (m == 2 && leap(y));
  return d <= max;
}

static bool full_time(const char *s, size_t n) {
  if (n < 9 || s[2] != ':' || s[5] != ':')
    return false;
  int h = num(s, 2), mi = num(s + 3, 2), se = num(s + 6, 2);
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
    return false;
  size_t i = 8;
  if (s[i] == '.') {
    i++;
    size_t st = i;
    while (i < n && digit(s[i]))
      i++;
    if (i == st)
      return false;
  }
  if (i >= n)
    return false;
  int off = 0; /* minutes east of UTC */
  if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
    off = 0;
  } else if ((s[i] == '+' || s[i] == '-') && n - i == 6 && s[i + 3] == ':') {
    int oh = num(s + i + 1, 2), om = num(s + i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59)
      return false;
    off = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
  } else {
    return false;
  }
  if (se == 60) {
    int utc = ((h * 60 + mi - off) % 1440 + 1440) % 1440;
    if (utc != 23 * 60 + 59)
      return false;
  }
  return true;
}

static bool date_time(const char *s, size_t n) {
  if (n < 20 || (s[10] != 'T' && s[10] != 't'))
    return false;
  return full_date(s, 10) && full_time(s + 11, n - 11);
}

/* ISO 8601 duration as RFC 3339 appendix A writes it. */
static bool duration(const char *s, size_t n) {
  if (n < 2 || s[0] != 'P')
    return false;
  size_t i = 1;
  static const char date_units[] = "YMD", time_units[] = "HMS";
  int last = -1;
  bool any = false, in_time = false;
  while (i < n) {
    if (s[i] == 'T') {
      if (in_time)
        return false;
      in_time = true;
      last = -1;
      i++;
      if (i == n)
        return false;
      continue;
    }
    size_t st = i;
    while (i < n && digit(s[i]))
      i++;
    if (i == st || i == n)
      return false;
    char u = s[i++];
    if (u == 'W') {
      if (any || in_time || i != n)
        return false;
      return true;
    }
    const char *units = in_time ? time_units : date_units;
    const char *p = strchr(units, u);
    if (p == NULL || u == 0)
      return false;
    int idx = (int)(p - units);
    /* components in order and without gaps (dur-year [dur-month [dur-day]]) */
    if (idx <= last || (last >= 0 && idx != last + 1))
      return false;
    last = idx;
    any = true;
  }
  return any;
}

/* ---- hostnames, addresses ---------------------------------------------- */

static bool ipv4(const char *s, size_t n) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    size_t st = i;
    while (i < n && digit(s[i]) && i - st < 4)
      i++;
    size_t len = i - st;
    if (len == 0 || len > 3 || (len > 1 && s[st] == '0') || num(s + st, len) > 255)
      return false;
    if (part < 3) {
      if (i >= n || s[i] != '.')
        return false;
      i++;
    }
  }
  return i == n;
}

static bool ipv6(const char *s, size_t n) {
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (n >= 2 && s[0] == ':' && s[1] == ':') {
    compressed = true;
    i = 2;
    if (i == n)
      return true;
  } else if (n > 0 && s[0] == ':') {
    return false;
  }
  while (i < n) {
    size_t st = i;
    while (i < n && hexdig(s[i]))
      i++;
    size_t len = i - st;
    if (i < n && s[i] == '.') {
      /* trailing IPv4 */
      if (!ipv4(s + st, n - st) || groups > 6)
        return false;
      groups += 2;
      i = n;
      break;
    }
    if (len == 0 || len > 4)
      return false;
    groups++;
    if (i == n)
      break;
    if (s[i] != ':')
      return false;
    i++;
    if (i < n && s[i] == ':') {
      if (compressed)
        return false;
      compressed = true;
      i++;
      if (i == n)
        break;
    } else if (i == n) {
      return false;
    }
  }
  return compressed ? groups < 8 : groups == 8;
}

/* ---- email (RFC 5321 mailbox) ----------------------------------------- */

static bool atext(unsigned char c, bool idn) {
  return alpha((char)c) || digit((char)c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
         (idn && c >= 0x80);
}

static bool email(const wire_schema *S, const char *s, size_t n, bool idn) {
  const char *at = NULL;
  size_t i = 0;
  if (n > 0 && s[0] == '"') {
    for (i = 1; i < n && s[i] != '"'; i++)
      if (s[i] == '\\')
        i++;
    if (i >= n || i + 1 >= n || s[i + 1] != '@')
      return false;
    at = s + i + 1;
  } else {
    at = memchr(s, '@', n);
    if (at == NULL || at == s)
      return false;
    /* the last '@' separates the domain */
    for (const char *p = at; p && p < s + n; p = memchr(p + 1, '@', (size_t)(s + n - p - 1)))
      at = p;
    size_t ll = (size_t)(at - s);
    if (s[0] == '.' || s[ll - 1] == '.')
      return false;
    for (size_t j = 0; j < ll; j++) {
      if (s[j] == '.') {
        if (s[j + 1] == '.')
          return false;
      } else if (!atext((unsigned char)s[j], idn)) {
        return false;
      }
    }
  }
  const char *d = at + 1;
  size_t dn = (size_t)(s + n - d);
  if (dn >= 2 && d[0] == '[' && d[dn - 1] == ']') {
    if (dn > 7 && memcmp(d + 1, "IPv6:", 5) == 0)
      return ipv6(d + 6, dn - 7);
    return ipv4(d + 1, dn - 2);
  }
  return wire__hostname_check(S, d, dn, idn);
}

/* ---- URIs and IRIs (RFC 3986 / 3987) ---------------------------------- */

static bool unreserved(unsigned char c) {
  return alpha((char)c) || digit((char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}
static bool subdelim(unsigned char c) {
  return strchr("!$&'()*+,;=", c) != NULL && c;
}

/* Characters allowed in a component (pchar plus `extra`); percent escapes are
 * checked; `iri` admits any non-ASCII byte (ucschar, UTF-8 already valid). */
static bool chars_ok(const char *s, size_t n, const char *extra, bool iri) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n + 0 && !(i + 2 < n))
        return false;
      if (!hexdig(s[i + 1]) || !hexdig(s[i + 2]))
        return false;
      i += 2;
    } else if (!(unreserved(c) || subdelim(c) || c == ':' || c == '@' || (c && strchr(extra, c)) ||
                 (iri && c >= 0x80))) {
      return false;
    }
  }
  return true;
}

/* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
static bool ipvfuture(const char *s, size_t n) {
  if (n < 4 || (s[0] != 'v' && s[0] != 'V'))
    return false;
  size_t i = 1;
  while (i < n && hexdig(s[i]))
    i++;
  if (i == 1 || i >= n || s[i] != '.' || i + 1 >= n)
    return false;
  for (i++; i < n; i++)
    if (!(unreserved((unsigned char)s[i]) || subdelim((unsigned char)s[i]) || s[i] == ':'))
      return false;
  return true;
}

static bool authority(const char *s, size_t n, bool iri) {
  const char *at = memchr(s, '@', n);
  if (at) {
    if (!chars_ok(s, (size_t)(at - s), "", iri))
      return false;
    n -= (size_t)(at + 1 - s);
    s = at + 1;
  }
  size_t hl = n;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (close == NULL ||
        !(ipv6(s + 1, (size_t)(close - s - 1)) || ipvfuture(s + 1, (size_t)(close - s - 1))))
      return false;
    hl = (size_t)(close - s + 1);
  } else {
    const char *colon = memchr(s, ':', n);
    hl = colon ? (size_t)(colon - s) : n;
    for (size_t i = 0; i < hl; i++) {
      unsigned char c = (unsigned char)s[i];
      if (!(unreserved(c) || subdelim(c) || c == '%' || (iri && c >= 0x80)))
        return false;
    }
  }
  if (hl < n) {
    if (s[hl] != ':')
      return false;
    for (size_t i = hl + 1; i < n; i++)
      if (!digit(s[i]))
        return false;
  }
  return true;
}

static bool uri_ref(const char *s, size_t n, bool absolute, bool iri) {
  size_t i = 0;
  /* scheme */
  size_t sc = 0;
  while (sc < n && (alpha(s[sc]) || (sc > 0 && (digit(s[sc]) || strchr("+-.", s[sc])))))
    sc++;
  bool has_scheme = sc > 0 && sc < n && s[sc] == ':';
  if (absolute && !has_scheme)
    return false;
  if (has_scheme)
    i = sc + 1;
  size_t rest = n - i;
  const char *p = s + i;
  size_t pl = strcspn(p, "?#");
  if (pl > rest)
    pl = rest;
  if (pl >= 2 && p[0] == '/' && p[1] == '/') {
    size_t al = 2;
    while (al < pl && p[al] != '/')
      al++;
    if (!authority(p + 2, al - 2, iri))
      return false;
    if (!chars_ok(p + al, pl - al, "/", iri))
      return false;
  } else {
    /* a relative reference's first segment cannot hold ':' */
    if (!has_scheme) {
      size_t seg = strcspn(p, "/?#");
      if (memchr(p, ':', seg < pl ? seg : pl))
        return false;
    }
    if (!chars_ok(p, pl, "/", iri))
      return false;
  }
  const char *q = p + pl;
  size_t ql = rest - pl;
  if (ql > 0 && q[0] == '?') {
    size_t qe = strcspn(q + 1, "#");
    if (!chars_ok(q + 1, qe, "/?", iri))
      return false;
    q += 1 + qe;
    ql -= 1 + qe;
  }
  if (ql > 0 && q[0] == '#')
    return chars_ok(q + 1, ql - 1, "/?", iri);
  return ql == 0;
}

/* RFC 6570 level 4 syntax. */
static bool uri_template(const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    if (c == '{') {
      i++;
      if (i < n && strchr("+#./;?&", s[i]) && s[i])
        i++;
      for (;;) { /* varspec */
        size_t st = i;
        bool dot_ok = false;
        while (i < n) {
          if (alpha(s[i]) || digit(s[i]) || s[i] == '_') {
            i++;
            dot_ok = true;
          } else if (s[i] == '%' && i + 2 < n && hexdig(s[i + 1]) && hexdig(s[i + 2])) {
            i += 3;
            dot_ok = true;
          } else if (s[i] == '.' && dot_ok && i + 1 < n && s[i + 1] != '.' && s[i + 1] != '}' &&
                     s[i + 1] != ',') {
            i++;
            dot_ok = false;
          } else {
            break;
          }
        }
        if (i == st || i >= n)
          return false;
        if (s[i] == ':') {
          size_t ds = ++i;
          while (i < n && digit(s[i]))
            i++;
          if (i == ds || i - ds > 4 || s[ds] == '0')
            return false;
        } else if (s[i] == '*') {
          i++;
        }
        if (i >= n)
          return false;
        if (s[i] == ',') {
          i++;
          continue;
        }
        if (s[i] != '}')
          return false;
        i++;
        break;
      }
    } else if (c == '%') {
      if (i + 2 >= n || !hexdig(s[i + 1]) || !hexdig(s[i + 2]))
        return false;
      i += 3;
    } else if (c <= 0x20 || c == 0x7f || strchr("\"<>\\^`|}", c)) {
      return false;
    } else {
      i++;
    }
  }
  return true;
}

/* ---- the rest ---------------------------------------------------------- */

static bool uuid(const char *s, size_t n) {
  if (n != 36)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return false;
    } else if (!hexdig(s[i])) {
      return false;
    }
  }
  return true;
}

static bool json_pointer(const char *s, size_t n) {
  if (n > 0 && s[0] != '/')
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
      return false;
  return true;
}

static bool relative_json_pointer(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && digit(s[i]))
    i++;
  if (i == 0 || (i > 1 && s[0] == '0'))
    return false;
  if (i < n && (s[i] == '+' || s[i] == '-')) {
    size_t st = ++i;
    while (i < n && digit(s[i]))
      i++;
    if (i == st || (i - st > 1 && s[st] == '0') || (i - st == 1 && s[st] == '0'))
      return false;
  }
  if (i == n)
    return true;
  if (s[i] == '#')
    return i + 1 == n;
  return json_pointer(s + i, n - i);
}

static bool regex(const char *s, size_t n) {
  ws_regex re;
  char msg[128];
  if (wire__regex_compile(&re, s, n, msg, sizeof msg))
    return false;
  wire__regex_free(&re);
  return true;
}

int wire__format_check(const wire_schema *S, ws_format f, const char *s, size_t n) {
  switch (f) {
  case WS_F_DATE_TIME:
    return date_time(s, n);
  case WS_F_DATE:
    return full_date(s, n);
  case WS_F_TIME:
    return full_time(s, n);
  case WS_F_DURATION:
    return duration(s, n);
  case WS_F_EMAIL:
    return email(S, s, n, false);
  case WS_F_IDN_EMAIL:
    return email(S, s, n, true);
  case WS_F_HOSTNAME:
    return wire__hostname_check(S, s, n, false);
  case WS_F_IDN_HOSTNAME:
    return wire__hostname_check(S, s, n, true);
  case WS_F_IPV4:
    return ipv4(s, n);
  case WS_F_IPV6:
    return ipv6(s, n);
  case WS_F_URI:
    return uri_ref(s, n, true, false);
  case WS_F_URI_REFERENCE:
    return uri_ref(s, n, false, false);
  case WS_F_IRI:
    return uri_ref(s, n, true, true);
  case WS_F_IRI_REFERENCE:
    return uri_ref(s, n, false, true);
  case WS_F_URI_TEMPLATE:
    return uri_template(s, n);
  case WS_F_UUID:
    return uuid(s, n);
  case WS_F_JSON_POINTER:
    return json_pointer(s, n);
  case WS_F_RELATIVE_JSON_POINTER:
    return relative_json_pointer(s, n);
  case WS_F_REGEX:
    return regex(s, n);
  default:
    return 1;
  }
}
