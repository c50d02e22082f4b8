/*
 * rb_ext.c -- entry point of the Ruby extension (wirecore/wirecore_ext): the
 * Wirecore::Native module, the Wirecore::Error hierarchy and the mapping
 * from WIRE_E* codes to those classes.
 */
#include "rb_wirecore.h"

#include <string.h>

/* Written once by Init_wirecore_ext (Ruby has one VM per process) and only
 * read afterwards; every VALUE in it is registered with the GC. */
rbw_classes rbw;

/* Error classes by code; anything not listed is a plain Wirecore::Error. */
static const char *error_class_name(int code) {
  switch (code) {
  case WIRE_EVALIDATION:
    return "ValidationError";
  case WIRE_EUNKNOWN_MESSAGE:
    return "UnknownMessageError";
  case WIRE_EDESERIALIZE:
  case WIRE_EDEPTH:
  case WIRE_ECODEC:
    return "DeserializationError";
  case WIRE_ESERIALIZE:
    return "SerializationError";
  case WIRE_ECLOSED:
    return "ConnectionClosedError";
  case WIRE_EBACKPRESSURE:
    return "BackpressureError";
  case WIRE_ETOOBIG:
    return "MessageTooBigError";
  case WIRE_EPROTOCOL:
  case WIRE_EUTF8:
    return "ProtocolError";
  case WIRE_ESCHEMA:
    return "SchemaError";
  case WIRE_EROUTE:
    return "RouteError";
  case WIRE_EADDRINUSE:
  case WIRE_ELISTEN:
    return "ListenError";
  default:
    return "Error";
  }
}

VALUE rbw_error_new(int code, const wire_error *err, const char *what) {
  VALUE klass = rb_const_get(rbw.mWirecore, rb_intern(error_class_name(code)));
  VALUE msg;
  if (err != NULL && err->message[0] != '\0')
    msg = rb_utf8_str_new_cstr(err->message);
  else
    msg = rb_utf8_str_new_cstr(wire_strerror(code));
  if (what != NULL)
    msg = rb_sprintf("%s: %" PRIsVALUE, what, msg);
  if (err != NULL && code == WIRE_EVALIDATION)
    msg = rb_sprintf("%" PRIsVALUE " (at \"%s\", keyword \"%s\")", msg, err->path, err->keyword);
  VALUE exc = rb_exc_new_str(klass, msg);
  rb_ivar_set(exc, rb_intern("@code"), ID2SYM(rb_intern(wire_err_name(code))));
  if (err != NULL) {
    rb_ivar_set(exc, rb_intern("@path"), rb_utf8_str_new_cstr(err->path));
    rb_ivar_set(exc, rb_intern("@keyword"), rb_utf8_str_new_cstr(err->keyword));
    rb_ivar_set(exc, rb_intern("@schema_path"), rb_utf8_str_new_cstr(err->schema_path));
    rb_ivar_set(exc, rb_intern("@offset"), SIZET2NUM(err->offset));
  }
  return exc;
}

void rbw_raise(int code, const wire_error *err, const char *what) {
  if (code == WIRE_ENOMEM)
    rb_memerror();
  rb_exc_raise(rbw_error_new(code, err, what));
}

/* Native.version -> the core's version string. */
static VALUE native_version(VALUE mod) {
  return rb_str_new_cstr(wire_version());
}

/* Native.error_name(code) -> "EVALIDATION". */
static VALUE native_error_name(VALUE mod, VALUE code) {
  return rb_str_new_cstr(wire_err_name(NUM2INT(code)));
}

static VALUE define_error(const char *name, VALUE super) {
  return rb_define_class_under(rbw.mWirecore, name, super);
}

RUBY_FUNC_EXPORTED void Init_wirecore_ext(void) {
#ifdef HAVE_RB_EXT_RACTOR_SAFE
  rb_ext_ractor_safe(false);
#endif
  rbw.mWirecore = rb_define_module("Wirecore");
  rbw.mNative = rb_define_module_under(rbw.mWirecore, "Native");
  rb_gc_register_mark_object(rbw.mWirecore);
  rb_gc_register_mark_object(rbw.mNative);

  rbw.eError = define_error("Error", rb_eStandardError);
  rb_gc_register_mark_object(rbw.eError);
  static const char *const names[] = {
      "ValidationError",       "UnknownMessageError", "DeserializationError", "SerializationError",
      "ConnectionClosedError", "BackpressureError",   "MessageTooBigError",   "ProtocolError",
      "SchemaError",           "RouteError",          "ListenError"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    define_error(names[i], rbw.eError);

  rb_define_module_function(rbw.mNative, "version", native_version, 0);
  rb_define_module_function(rbw.mNative, "error_name", native_error_name, 1);
  rbw_init_value();
  rbw_init_server();
  rbw_init_conn();
}
