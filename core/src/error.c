/*
 * error.c -- error codes, their names, messages and categories, and the
 * library version.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *wire_version(void) {
#define WIRE__STR2(x) #x
#define WIRE__STR(x) WIRE__STR2(x)
  return WIRE__STR(WIRECORE_VERSION_MAJOR) "." WIRE__STR(WIRECORE_VERSION_MINOR) "." WIRE__STR(
      WIRECORE_VERSION_PATCH);
}

unsigned wire_version_hex(void) {
  return WIRECORE_VERSION_HEX;
}

const char *wire_strerror(int code) {
  switch (code) {
  case WIRE_OK:
    return "success";
#define WIRE__ERR_MSG(name, num, cat, msg)                                                         \
  case num:                                                                                        \
    return msg;
    WIRE_ERRNO_MAP(WIRE__ERR_MSG)
#undef WIRE__ERR_MSG
  }
  return "unknown error";
}

const char *wire_err_name(int code) {
  switch (code) {
  case WIRE_OK:
    return "OK";
#define WIRE__ERR_NAME(name, num, cat, msg)                                                        \
  case num:                                                                                        \
    return #name;
    WIRE_ERRNO_MAP(WIRE__ERR_NAME)
#undef WIRE__ERR_NAME
  }
  return "EUNKNOWN";
}

wire_errcat wire_err_category(int code) {
  switch (code) {
#define WIRE__ERR_CAT(name, num, cat, msg)                                                         \
  case num:                                                                                        \
    return WIRE_ERRCAT_##cat;
    WIRE_ERRNO_MAP(WIRE__ERR_CAT)
#undef WIRE__ERR_CAT
  }
  return WIRE_ERRCAT_INTERNAL;
}

const char *wire_errcat_name(wire_errcat cat) {
  static const char *const names[] = {
#define WIRE__CAT_NAME(name, str, cls, doc) str,
      WIRE_ERRCAT_MAP(WIRE__CAT_NAME)
#undef WIRE__CAT_NAME
  };
  return (unsigned)cat < WIRE_ERRCAT_COUNT ? names[cat] : NULL;
}

const char *wire_errcat_class(wire_errcat cat) {
  static const char *const classes[] = {
#define WIRE__CAT_CLASS(name, str, cls, doc) cls,
      WIRE_ERRCAT_MAP(WIRE__CAT_CLASS)
#undef WIRE__CAT_CLASS
  };
  return (unsigned)cat < WIRE_ERRCAT_COUNT ? classes[cat] : NULL;
}

/* Returns `code` so callers can write `return wire__error_set(err, ...)`.
 * Only code and message are touched; path fields are left to the caller. */
int wire__error_set(wire_error *err, int code, const char *fmt, ...) {
  if (err == NULL)
    return code;
  err->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return code;
}
