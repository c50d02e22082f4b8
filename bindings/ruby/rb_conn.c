/*
 * rb_conn.c -- Wirecore::Native::Conn: one accepted connection. It holds a
 * wire_conn_ref from the handshake until on_close, then forgets the handle,
 * so a Ruby object kept past the close raises ConnectionClosedError instead
 * of touching freed memory.
 */
#include "rb_wirecore.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static void conn_mark(void *p) {
  rb_gc_mark_movable(((rbw_conn *)p)->server);
  rb_gc_mark_movable(((rbw_conn *)p)->data);
  rb_gc_mark(((rbw_conn *)p)->failing);
}

static void conn_compact(void *p) {
  rbw_conn *w = p;
  w->self = rb_gc_location(w->self);
  w->server = rb_gc_location(w->server);
  w->data = rb_gc_location(w->data);
}

/* The handle's reference is released by on_close. A wrapper still holding
 * one here belongs to a server that never shut down, whose memory stays
 * allocated (see server_free): dropping the reference would reach into it. */
static void conn_free(void *p) {
  xfree(p);
}

static size_t conn_size(const void *p) {
  return sizeof(rbw_conn);
}

static const rb_data_type_t conn_type = {
    .wrap_struct_name = "Wirecore::Native::Conn",
    .function = {.dmark = conn_mark,
                 .dfree = conn_free,
                 .dsize = conn_size,
                 .dcompact = conn_compact},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

VALUE rbw_conn_wrap(rbw_server *s, rbw_endpoint *ep, wire_conn *conn) {
  rbw_conn *w;
  VALUE self = TypedData_Make_Struct(rbw.cConn, rbw_conn, &conn_type, w);
  w->self = self;
  w->server = s->self;
  w->data = Qnil;
  w->failing = Qnil;
  w->ep = ep;
  w->id = wire_conn_id(conn);
  wire_conn_ref(conn);
  w->conn = conn;
  wire_conn_set_data(conn, w);
  return self;
}

static rbw_conn *conn_get(VALUE self) {
  return rb_check_typeddata(self, &conn_type);
}

rbw_conn *rbw_conn_get(VALUE self) {
  return conn_get(self);
}

static wire_conn *open_conn(VALUE self) {
  rbw_conn *w = conn_get(self);
  if (w->conn == NULL)
    rbw_raise(WIRE_ECLOSED, NULL, NULL);
  return w->conn;
}

static VALUE check_send(int rc, const wire_error *err) {
  if (rc < 0)
    rbw_raise(rc, err, NULL);
  return Qnil;
}

/* #send_text(str): a text frame (must be valid UTF-8). */
static VALUE conn_send_text(VALUE self, VALUE str) {
  wire_conn *c = open_conn(self);
  StringValue(str);
  return check_send(wire_conn_send_text(c, RSTRING_PTR(str), (size_t)RSTRING_LEN(str)), NULL);
}

/* #send_binary(str): a binary frame of str's bytes. */
static VALUE conn_send_binary(VALUE self, VALUE str) {
  wire_conn *c = open_conn(self);
  StringValue(str);
  return check_send(wire_conn_send_binary(c, RSTRING_PTR(str), (size_t)RSTRING_LEN(str)), NULL);
}

typedef struct send_value_call {
  rbw_conn *w;
  wire_doc *doc;
  int borrowed;
  VALUE obj;
} send_value_call;

static VALUE do_send_value(VALUE p) {
  send_value_call *c = (send_value_call *)p;
  const wire_value *v = rbw_value_from_ruby(c->doc, c->obj);
  if (c->w->conn == NULL) /* a to_h call closed it */
    rbw_raise(WIRE_ECLOSED, NULL, NULL);
  wire_error err;
  memset(&err, 0, sizeof err);
  return check_send(wire_conn_send_value(c->w->conn, v, &err), &err);
}

static VALUE release_doc(VALUE p) {
  send_value_call *c = (send_value_call *)p;
  rbw_server_doc_release(rbw_server_get(c->w->server), c->doc, c->borrowed);
  return Qnil;
}

/* #send_value(obj): encode with the endpoint's codec after the response
 * schema check. Raises ValidationError / SerializationError (nothing sent). */
static VALUE conn_send_value(VALUE self, VALUE obj) {
  open_conn(self);
  rbw_conn *w = conn_get(self);
  send_value_call c = {w, NULL, 0, obj};
  c.doc = rbw_server_doc_acquire(rbw_server_get(w->server), &c.borrowed);
  return rb_ensure(do_send_value, (VALUE)&c, release_doc, (VALUE)&c);
}

/* #close(code, reason): start the close handshake. Closing a closed
 * connection is a no-op. */
static VALUE conn_close(VALUE self, VALUE code, VALUE reason) {
  rbw_conn *w = conn_get(self);
  if (w->conn == NULL)
    return Qnil;
  StringValue(reason);
  int rc =
      wire_conn_close(w->conn, NUM2INT(code), RSTRING_PTR(reason), (size_t)RSTRING_LEN(reason));
  if (rc < 0 && rc != WIRE_ECLOSED)
    rbw_raise(rc, NULL, "close");
  return Qnil;
}

static VALUE conn_pause(VALUE self) {
  rbw_conn *w = conn_get(self);
  if (w->in_handler) /* metrics: the handler goes on later; time it until resume */
    w->timing_paused = 1;
  return check_send(wire_conn_pause(open_conn(self)), NULL);
}
static VALUE conn_resume(VALUE self) {
  rbw_observe_resumed(conn_get(self)); /* metrics */
  return check_send(wire_conn_resume(open_conn(self)), NULL);
}

/* A wire_error for a Ruby exception: code, its message, and the details a
 * Wirecore::Error carries (path, keyword, schema_path). */
static void error_from_exception(wire_error *err, int code, VALUE exc) {
  memset(err, 0, sizeof *err);
  err->code = code;
  if (NIL_P(exc))
    return;
  VALUE msg = rb_check_funcall(exc, rb_intern("message"), 0, NULL);
  if (RB_TYPE_P(msg, T_STRING))
    snprintf(err->message, sizeof err->message, "%.*s", (int)RSTRING_LEN(msg), RSTRING_PTR(msg));
  static const struct {
    const char *ivar;
    size_t off, cap;
  } fields[] = {{"@path", offsetof(wire_error, path), sizeof err->path},
                {"@keyword", offsetof(wire_error, keyword), sizeof err->keyword},
                {"@schema_path", offsetof(wire_error, schema_path), sizeof err->schema_path}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    VALUE v = rb_attr_get(exc, rb_intern(fields[i].ivar));
    if (RB_TYPE_P(v, T_STRING))
      snprintf((char *)err + fields[i].off, fields[i].cap, "%.*s", (int)RSTRING_LEN(v),
               RSTRING_PTR(v));
  }
}

int rbw_conn_fail(rbw_conn *w, VALUE exc) {
  if (w == NULL || w->conn == NULL)
    return WIRE_ECLOSED;
  wire_error err;
  error_from_exception(&err, WIRE_EHANDLER, exc);
  VALUE outer = w->failing;
  w->failing = exc;
  int rc = wire_conn_fail(w->conn, &err);
  w->failing = outer;
  return rc;
}

/* #fail(exc = nil) -> true (_error handled it) or false (closing with 1011,
 * or already closed): a failure of the Ruby code for this connection. */
static VALUE conn_fail(int argc, VALUE *argv, VALUE self) {
  VALUE exc = Qnil;
  rb_scan_args(argc, argv, "01", &exc);
  int rc = rbw_conn_fail(conn_get(self), exc);
  if (rc < 0 && rc != WIRE_ECLOSED)
    rbw_raise(rc, NULL, "fail");
  return rc == 1 ? Qtrue : Qfalse;
}

/* #invalid(exc) -> true (_error handled it) or false (the endpoint's invalid
 * policy acted): a message a Ruby codec refused. exc is a
 * DeserializationError, ValidationError or UnknownMessageError. */
static VALUE conn_invalid(VALUE self, VALUE exc) {
  int code = 0;
  if (rb_obj_is_kind_of(exc, rbw.eCat[WIRE_ERRCAT_VALIDATION]))
    code = WIRE_EVALIDATION;
  else if (rb_obj_is_kind_of(exc, rbw.eCat[WIRE_ERRCAT_UNKNOWN_MESSAGE]))
    code = WIRE_EUNKNOWN_MESSAGE;
  else if (rb_obj_is_kind_of(exc, rbw.eCat[WIRE_ERRCAT_DESERIALIZE]))
    code = WIRE_EDESERIALIZE;
  else
    rb_raise(rb_eTypeError,
             "invalid takes a DeserializationError, ValidationError or UnknownMessageError");
  rbw_conn *w = conn_get(self);
  if (w->conn == NULL)
    return Qfalse;
  wire_error err;
  error_from_exception(&err, code, exc);
  VALUE outer = w->failing;
  w->failing = exc;
  int rc = wire_conn_invalid(w->conn, &err);
  w->failing = outer;
  if (rc < 0 && rc != WIRE_ECLOSED)
    rbw_raise(rc, NULL, "invalid");
  return rc == 1 ? Qtrue : Qfalse;
}

/* #hold: the Ruby layer keeps the message it was given in its own inbox;
 * the core stops reading at max_queued_messages. */
static VALUE conn_hold(VALUE self) {
  rbw_conn *w = conn_get(self);
  if (w->conn != NULL)
    wire_conn_hold(w->conn);
  return Qnil;
}

/* #consumed(n = 1): n held messages were taken out of the inbox. Raises
 * ArgumentError for more than are held. */
static VALUE conn_consumed(int argc, VALUE *argv, VALUE self) {
  VALUE n = Qnil;
  rb_scan_args(argc, argv, "01", &n);
  long count = NIL_P(n) ? 1 : NUM2LONG(n);
  if (count < 0)
    rb_raise(rb_eArgError, "consumed(n) takes a count >= 0");
  rbw_conn *w = conn_get(self);
  if (w->conn == NULL)
    return Qnil;
  if (wire_conn_consumed(w->conn, (size_t)count) == WIRE_EINVAL)
    rb_raise(rb_eArgError, "consumed more messages than are held");
  return Qnil;
}

/* #queued -> received messages waiting (paused or held). */
static VALUE conn_queued(VALUE self) {
  rbw_conn *w = conn_get(self);
  return SIZET2NUM(w->conn ? wire_conn_queued(w->conn) : 0);
}

/* #writable? -> open and at or below send_high_water; false promises one
 * _drain(conn) unless the connection closes first. */
static VALUE conn_writable_p(VALUE self) {
  rbw_conn *w = conn_get(self);
  return w->conn != NULL && wire_conn_writable(w->conn) ? Qtrue : Qfalse;
}

static VALUE conn_id(VALUE self) {
  return ULL2NUM(conn_get(self)->id);
}

static VALUE conn_open_p(VALUE self) {
  rbw_conn *w = conn_get(self);
  return w->conn != NULL && wire_conn_is_open(w->conn) ? Qtrue : Qfalse;
}

static VALUE conn_closed_p(VALUE self) {
  return conn_get(self)->conn == NULL ? Qtrue : Qfalse;
}

static VALUE conn_buffered_amount(VALUE self) {
  rbw_conn *w = conn_get(self);
  return SIZET2NUM(w->conn ? wire_conn_buffered_amount(w->conn) : 0);
}

static VALUE conn_data(VALUE self) {
  return conn_get(self)->data;
}
static VALUE conn_set_data(VALUE self, VALUE data) {
  conn_get(self)->data = data;
  return data;
}

void rbw_init_conn(void) {
  rbw.cConn = rb_define_class_under(rbw.mNative, "Conn", rb_cObject);
  rb_gc_register_mark_object(rbw.cConn);
  rb_undef_alloc_func(rbw.cConn);
  rb_define_method(rbw.cConn, "send_text", conn_send_text, 1);
  rb_define_method(rbw.cConn, "send_binary", conn_send_binary, 1);
  rb_define_method(rbw.cConn, "send_value", conn_send_value, 1);
  rb_define_method(rbw.cConn, "close", conn_close, 2);
  rb_define_method(rbw.cConn, "pause", conn_pause, 0);
  rb_define_method(rbw.cConn, "resume", conn_resume, 0);
  rb_define_method(rbw.cConn, "id", conn_id, 0);
  rb_define_method(rbw.cConn, "open?", conn_open_p, 0);
  rb_define_method(rbw.cConn, "closed?", conn_closed_p, 0);
  rb_define_method(rbw.cConn, "buffered_amount", conn_buffered_amount, 0);
  rb_define_method(rbw.cConn, "fail", conn_fail, -1);
  rb_define_method(rbw.cConn, "invalid", conn_invalid, 1);
  rb_define_method(rbw.cConn, "hold", conn_hold, 0);
  rb_define_method(rbw.cConn, "consumed", conn_consumed, -1);
  rb_define_method(rbw.cConn, "queued", conn_queued, 0);
  rb_define_method(rbw.cConn, "writable?", conn_writable_p, 0);
  rb_define_method(rbw.cConn, "data", conn_data, 0);
  rb_define_method(rbw.cConn, "data=", conn_set_data, 1);
}
