/*
 * rb_ext.c -- entry point of the Ruby extension (wirecore/wirecore_ext): the
 * Wirecore::Native module, the Wirecore::Error hierarchy (one class per core
 * error category, generated from WIRE_ERRCAT_MAP) and the mapping from
 * WIRE_E* codes to those classes.
 */
#include "rb_wirecore.h"

#include <string.h>

/* Written once by Init_wirecore_ext (Ruby has one VM per process) and only
 * read afterwards; every VALUE in it is registered with the GC. */
rbw_classes rbw;

VALUE rbw_error_new(int code, const wire_error *err, const char *what) {
  VALUE klass = rbw.eCat[wire_err_category(code)]; /* the code's category class */
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

/* Native.errors -> [[name, code, category, class_name], ...]: the core's list. */
static VALUE native_errors(VALUE mod) {
  VALUE list = rb_ary_new();
#define RBW_ERROR_ROW(name, num, cat, msg)                                                         \
  rb_ary_push(list, rb_ary_new_from_args(4, rb_str_new_cstr(#name), INT2NUM(num),                  \
                                         rb_str_new_cstr(wire_errcat_name(WIRE_ERRCAT_##cat)),     \
                                         rb_str_new_cstr(wire_errcat_class(WIRE_ERRCAT_##cat))));
  WIRE_ERRNO_MAP(RBW_ERROR_ROW)
#undef RBW_ERROR_ROW
  return list;
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
  for (int i = 0; i < WIRE_ERRCAT_COUNT; i++) {
    rbw.eCat[i] = define_error(wire_errcat_class((wire_errcat)i), rbw.eError);
    rb_gc_register_mark_object(rbw.eCat[i]);
  }

  rb_define_module_function(rbw.mNative, "version", native_version, 0);
  rb_define_module_function(rbw.mNative, "error_name", native_error_name, 1);
  rb_define_module_function(rbw.mNative, "errors", native_errors, 0);
  rb_define_const(rbw.mNative, "DEFAULT_MAX_QUEUED", INT2NUM(WIRE_DEFAULT_MAX_QUEUED));
  rbw_init_value();
  rbw_init_server();
  rbw_init_conn();
  rbw_init_topics();
  rbw_init_scaling(); /* rb_scaling.c */
  rbw_init_metrics(); /* rb_metrics.c */
}
