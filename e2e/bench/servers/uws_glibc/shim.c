/*
 * shim.c -- the C23 entry points of three libc functions (glibc 2.38 names
 * them __isoc23_*), for running the prebuilt uWebSockets.js binary of the
 * fan-out benchmark on an older glibc. Built and linked in by
 * e2e/bench/install.sh --fanout-peers only when the binary does not load.
 * The C23 variants differ only in accepting "0b" binary prefixes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int __isoc23_sscanf(const char *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = vsscanf(s, fmt, ap);
  va_end(ap);
  return r;
}

long __isoc23_strtol(const char *s, char **end, int base) {
  return strtol(s, end, base);
}

unsigned long __isoc23_strtoul(const char *s, char **end, int base) {
  return strtoul(s, end, base);
}
