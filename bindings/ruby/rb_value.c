/*
 * rb_value.c -- conversion between the core's value model and Ruby objects:
 * wire_value -> nil/true/false/Integer/Float/String/Array/Hash, and back
 * through the core's builder into a wire_doc. Also Wirecore::Native.encode /
 * .decode, which run the core's codecs on Ruby objects.
 */
#include "rb_wirecore.h"

#include <math.h>
#include <string.h>

#define RBW_MAX_DEPTH 512 /* same bound as the core's decoders */

/* Convert a value tree; the core's decoders already bound the depth. */
VALUE rbw_value_to_ruby(const wire_value *v) {
  size_t n, len;
  const char *s;
  switch (wire_value_type(v)) {
  case WIRE_NULL:
    return Qnil;
  case WIRE_BOOL:
    return wire_value_bool(v) ? Qtrue : Qfalse;
  case WIRE_INT:
    return LL2NUM(wire_value_int(v));
  case WIRE_UINT:
    return ULL2NUM(wire_value_uint(v));
  case WIRE_DOUBLE:
    return DBL2NUM(wire_value_double(v));
  case WIRE_STRING:
    s = wire_value_string(v, &len);
    return rb_utf8_str_new(s, (long)len);
  case WIRE_BINARY:
    s = (const char *)wire_value_binary(v, &len);
    return rb_str_new(s, (long)len);
  case WIRE_ARRAY: {
    n = wire_value_size(v);
    VALUE ary = rb_ary_new_capa((long)n);
    for (size_t i = 0; i < n; i++)
      rb_ary_push(ary, rbw_value_to_ruby(wire_value_at(v, i)));
    return ary;
  }
  case WIRE_OBJECT: {
    n = wire_value_size(v);
    VALUE hash = rb_hash_new();
    for (size_t i = 0; i < n; i++) {
      wire_str key;
      const wire_value *item = wire_value_member(v, i, &key);
      /* Later duplicates overwrite earlier ones: the last key wins. */
      rb_hash_aset(hash, rb_utf8_str_new(key.ptr, (long)key.len), rbw_value_to_ruby(item));
    }
    return hash;
  }
  }
  return Qnil;
}

typedef struct build_ctx {
  wire_doc *doc;
  int depth;
} build_ctx;

static wire_value *build(build_ctx *c, VALUE obj);

NORETURN(static void raise_unserializable(const char *why, VALUE obj));
static void raise_unserializable(const char *why, VALUE obj) {
  wire_error err;
  memset(&err, 0, sizeof err);
  err.code = WIRE_ESERIALIZE;
  snprintf(err.message, sizeof err.message, "%s: %s", why, rb_obj_classname(obj));
  rbw_raise(WIRE_ESERIALIZE, &err, NULL);
}

static wire_value *check(wire_value *v) {
  if (v == NULL)
    rbw_raise(WIRE_ENOMEM, NULL, NULL);
  return v;
}

/* A String: UTF-8 (or US-ASCII) becomes a string after a UTF-8 check;
 * ASCII-8BIT becomes binary; other encodings are transcoded to UTF-8. */
static wire_value *build_string(build_ctx *c, VALUE str) {
  rb_encoding *enc = rb_enc_get(str);
  if (enc == rb_ascii8bit_encoding())
    return check(wire_new_binary(c->doc, RSTRING_PTR(str), (size_t)RSTRING_LEN(str)));
  if (enc != rb_utf8_encoding() && enc != rb_usascii_encoding())
    str = rb_str_export_to_enc(str, rb_utf8_encoding());
  if (rb_enc_str_coderange(str) == ENC_CODERANGE_BROKEN)
    raise_unserializable("string is not valid UTF-8", str);
  return check(wire_new_string(c->doc, RSTRING_PTR(str), (size_t)RSTRING_LEN(str)));
}

/* Integers keep their exact value while they fit int64 or uint64; larger
 * ones become doubles, as the JSON decoder does. */
static wire_value *build_integer(build_ctx *c, VALUE num) {
  if (FIXNUM_P(num))
    return check(wire_new_int(c->doc, (int64_t)FIX2LONG(num)));
  if (RTEST(rb_funcall(num, '<', 1, INT2FIX(0)))) {
    if (RTEST(rb_funcall(num, '<', 1, LL2NUM(INT64_MIN))))
      return check(wire_new_double(c->doc, rb_big2dbl(num)));
    return check(wire_new_int(c->doc, (int64_t)NUM2LL(num)));
  }
  if (RTEST(rb_funcall(num, '>', 1, ULL2NUM(UINT64_MAX))))
    return check(wire_new_double(c->doc, rb_big2dbl(num)));
  uint64_t u = NUM2ULL(num);
  return check(u <= INT64_MAX ? wire_new_int(c->doc, (int64_t)u) : wire_new_uint(c->doc, u));
}

typedef struct hash_iter {
  build_ctx *c;
  wire_value *obj;
} hash_iter;

static int build_member(VALUE key, VALUE val, VALUE arg) {
  hash_iter *it = (hash_iter *)arg;
  VALUE k;
  if (RB_TYPE_P(key, T_STRING))
    k = key;
  else if (RB_TYPE_P(key, T_SYMBOL))
    k = rb_sym2str(key);
  else
    k = rb_obj_as_string(key);
  if (rb_enc_get(k) != rb_utf8_encoding() && rb_enc_get(k) != rb_usascii_encoding())
    k = rb_str_export_to_enc(k, rb_utf8_encoding());
  if (rb_enc_str_coderange(k) == ENC_CODERANGE_BROKEN)
    raise_unserializable("object key is not valid UTF-8", k);
  wire_value *item = build(it->c, val);
  check(wire_object_set(it->c->doc, it->obj, RSTRING_PTR(k), (size_t)RSTRING_LEN(k), item));
  return ST_CONTINUE;
}

static wire_value *build_hash(build_ctx *c, VALUE hash) {
  hash_iter it = {c, check(wire_new_object(c->doc, (size_t)RHASH_SIZE(hash)))};
  rb_hash_foreach(hash, build_member, (VALUE)&it);
  return it.obj;
}

static wire_value *build_array(build_ctx *c, VALUE ary) {
  long n = RARRAY_LEN(ary);
  wire_value *arr = check(wire_new_array(c->doc, (size_t)n));
  for (long i = 0; i < RARRAY_LEN(ary); i++)
    check(wire_array_push(c->doc, arr, build(c, RARRAY_AREF(ary, i))));
  return arr;
}

/* Build one object; containers recurse with a depth bound so a cyclic
 * structure fails with SerializationError instead of overflowing. */
static wire_value *build(build_ctx *c, VALUE obj) {
  if (++c->depth > RBW_MAX_DEPTH)
    raise_unserializable("nesting too deep (or cyclic)", obj);
  wire_value *out;
  switch (rb_type(obj)) {
  case T_NIL:
    out = check(wire_new_null(c->doc));
    break;
  case T_TRUE:
    out = check(wire_new_bool(c->doc, 1));
    break;
  case T_FALSE:
    out = check(wire_new_bool(c->doc, 0));
    break;
  case T_FIXNUM:
  case T_BIGNUM:
    out = build_integer(c, obj);
    break;
  case T_FLOAT:
    out = check(wire_new_double(c->doc, RFLOAT_VALUE(obj)));
    break;
  case T_STRING:
    out = build_string(c, obj);
    break;
  case T_SYMBOL:
    out = build_string(c, rb_sym2str(obj));
    break;
  case T_ARRAY:
    out = build_array(c, obj);
    break;
  case T_HASH:
    out = build_hash(c, obj);
    break;
  default:
    if (rb_respond_to(obj, rb_intern("to_h"))) {
      VALUE h = rb_funcall(obj, rb_intern("to_h"), 0);
      Check_Type(h, T_HASH);
      out = build_hash(c, h);
    } else if (rb_obj_is_kind_of(obj, rb_cNumeric)) {
      out = check(wire_new_double(c->doc, NUM2DBL(obj)));
    } else {
      raise_unserializable("cannot serialize", obj);
    }
  }
  c->depth--;
  return out;
}

const wire_value *rbw_value_from_ruby(wire_doc *doc, VALUE obj) {
  build_ctx c = {doc, 0};
  return build(&c, obj);
}

static wire_codec codec_arg(VALUE sym) {
  ID id = SYM2ID(sym);
  if (id == rb_intern("json"))
    return WIRE_CODEC_JSON;
  if (id == rb_intern("msgpack"))
    return WIRE_CODEC_MSGPACK;
  rb_raise(rb_eArgError, "unknown serializer %" PRIsVALUE " (use :json or :msgpack)", sym);
}

typedef struct codec_call {
  wire_doc *doc;
  wire_codec codec;
  VALUE arg;
} codec_call;

static VALUE do_encode(VALUE p) {
  codec_call *cc = (codec_call *)p;
  const wire_value *v = rbw_value_from_ruby(cc->doc, cc->arg);
  const uint8_t *out;
  size_t len;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_encode(cc->doc, cc->codec, v, &out, &len, &err);
  if (rc < 0)
    rbw_raise(rc, &err, NULL);
  if (cc->codec == WIRE_CODEC_JSON)
    return rb_utf8_str_new((const char *)out, (long)len);
  return rb_str_new((const char *)out, (long)len);
}

static VALUE do_decode(VALUE p) {
  codec_call *cc = (codec_call *)p;
  const wire_value *v;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_decode(cc->doc, cc->codec, RSTRING_PTR(cc->arg), (size_t)RSTRING_LEN(cc->arg), 0,
                       &v, &err);
  if (rc < 0)
    rbw_raise(rc, &err, NULL);
  return rbw_value_to_ruby(v);
}

static VALUE free_doc(VALUE p) {
  wire_doc_free(((codec_call *)p)->doc);
  return Qnil;
}

static VALUE with_doc(VALUE (*fn)(VALUE), codec_call *cc) {
  if (wire_doc_new(&cc->doc) < 0)
    rbw_raise(WIRE_ENOMEM, NULL, NULL);
  return rb_ensure(fn, (VALUE)cc, free_doc, (VALUE)cc);
}

/* Native.encode(obj, :json|:msgpack) -> String (JSON: UTF-8, MessagePack:
 * ASCII-8BIT). Raises Wirecore::SerializationError. */
static VALUE native_encode(VALUE mod, VALUE obj, VALUE codec) {
  codec_call cc = {NULL, codec_arg(codec), obj};
  return with_doc(do_encode, &cc);
}

/* Native.decode(string, :json|:msgpack) -> Object. Raises
 * Wirecore::DeserializationError. */
static VALUE native_decode(VALUE mod, VALUE str, VALUE codec) {
  StringValue(str);
  codec_call cc = {NULL, codec_arg(codec), str};
  return with_doc(do_decode, &cc);
}

void rbw_init_value(void) {
  rb_define_module_function(rbw.mNative, "encode", native_encode, 2);
  rb_define_module_function(rbw.mNative, "decode", native_decode, 2);
}
