/*
 * rb_metrics.c -- the Ruby glue of metrics, health and logs:
 * Server#set_metrics(metrics_path, health_path), #listen_metrics(host, port),
 * #metrics_port, #metrics(format) (the rendered text), #set_log(callable,
 * min_level) (log events become callable.call(level, event, fields) calls,
 * the callable kept in an instance variable so the GC sees it), and the
 * handler timing around a message (wire_server_observe), finished at resume
 * for a handler that paused its connection.
 */
#include "rb_wirecore.h"

#include <time.h>

static ID id_log_cb, id_call;

double rbw_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void rbw_observe_resumed(rbw_conn *w) {
  if (!w->timing_paused || w->conn == NULL)
    return;
  w->timing_paused = 0;
  wire_server_observe(wire_conn_server(w->conn), wire_conn_endpoint(w->conn),
                      rbw_now() - w->t_handler);
}

/* set_metrics(metrics_path, health_path): nil or "" turns a path off. */
static VALUE server_set_metrics(VALUE self, VALUE mp, VALUE hp) {
  rbw_server *s = rbw_server_get(self);
  int rc = wire_server_set_metrics(s->srv, NIL_P(mp) ? NULL : StringValueCStr(mp),
                                   NIL_P(hp) ? NULL : StringValueCStr(hp));
  if (rc != 0)
    rbw_raise(rc, NULL, "metrics path");
  return Qnil;
}

/* listen_metrics(host, port) -> the bound port */
static VALUE server_listen_metrics(VALUE self, VALUE host, VALUE port) {
  rbw_server *s = rbw_server_get(self);
  int rc = wire_server_listen_metrics(s->srv, StringValueCStr(host), NUM2INT(port));
  if (rc != 0)
    rbw_raise(rc, NULL, "listen_metrics");
  return INT2NUM(wire_server_metrics_port(s->srv));
}

static VALUE server_metrics_port(VALUE self) {
  return INT2NUM(wire_server_metrics_port(rbw_server_get(self)->srv));
}

/* metrics(format) -> String: 0 Prometheus text, 1 JSON */
static VALUE server_metrics(VALUE self, VALUE format) {
  rbw_server *s = rbw_server_get(self);
  int f = NUM2INT(format);
  int64_t n = wire_server_metrics_render(s->srv, f, NULL, 0);
  if (n < 0)
    rbw_raise((int)n, NULL, "metrics");
  VALUE str = rb_str_buf_new((long)n + 1);
  int64_t m = wire_server_metrics_render(s->srv, f, RSTRING_PTR(str), (size_t)n + 1);
  if (m < 0)
    rbw_raise((int)m, NULL, "metrics");
  rb_str_set_len(str, (long)(m < n ? m : n));
  rb_enc_associate(str, rb_utf8_encoding());
  return str;
}

static VALUE call_log(VALUE args) {
  VALUE *a = (VALUE *)args;
  return rb_funcall(a[0], id_call, 3, a[1], a[2], a[3]);
}

static VALUE sym_str(const char *s) {
  return rb_utf8_str_new_cstr(s);
}

/* From inside #process: callable.call(level, event, fields). An exception
 * in it is reported as a warning, never raised into the core. */
static void on_log(const wire_log_event *ev, void *ud) {
  rbw_server *s = ud;
  VALUE cb = rb_ivar_get(s->self, id_log_cb);
  if (NIL_P(cb))
    return;
  VALUE h = rb_hash_new();
  rb_hash_aset(h, ID2SYM(rb_intern("conn")), ULL2NUM(ev->conn_id));
  rb_hash_aset(h, ID2SYM(rb_intern("remote")), sym_str(ev->remote));
  rb_hash_aset(h, ID2SYM(rb_intern("port")), INT2NUM(ev->remote_port));
  rb_hash_aset(h, ID2SYM(rb_intern("path")), sym_str(ev->path));
  rb_hash_aset(h, ID2SYM(rb_intern("status")), INT2NUM(ev->status));
  rb_hash_aset(h, ID2SYM(rb_intern("code")), INT2NUM(ev->close_code));
  rb_hash_aset(h, ID2SYM(rb_intern("error")), sym_str(ev->error ? wire_err_name(ev->error) : ""));
  rb_hash_aset(h, ID2SYM(rb_intern("message")), sym_str(ev->message));
  rb_hash_aset(h, ID2SYM(rb_intern("duration")), DBL2NUM(ev->duration));
  rb_hash_aset(h, ID2SYM(rb_intern("bytes_in")), ULL2NUM(ev->bytes_in));
  rb_hash_aset(h, ID2SYM(rb_intern("bytes_out")), ULL2NUM(ev->bytes_out));
  VALUE args[4] = {cb, INT2NUM(ev->level), sym_str(ev->event), h};
  int failed = 0;
  rb_protect(call_log, (VALUE)args, &failed);
  if (failed) {
    rb_set_errinfo(Qnil);
    rb_warn("wirecore: the log callback raised");
  }
}

/* set_log(callable | nil, min_level) */
static VALUE server_set_log(VALUE self, VALUE cb, VALUE level) {
  rbw_server *s = rbw_server_get(self);
  rb_ivar_set(self, id_log_cb, cb);
  wire_server_set_log(s->srv, NIL_P(cb) ? NULL : on_log, s, NUM2INT(level));
  return Qnil;
}

void rbw_init_metrics(void) {
  id_log_cb = rb_intern("@log_cb");
  id_call = rb_intern("call");
  rb_define_method(rbw.cServer, "set_metrics", server_set_metrics, 2);
  rb_define_method(rbw.cServer, "listen_metrics", server_listen_metrics, 2);
  rb_define_method(rbw.cServer, "metrics_port", server_metrics_port, 0);
  rb_define_method(rbw.cServer, "metrics", server_metrics, 1);
  rb_define_method(rbw.cServer, "set_log", server_set_log, 2);
}
