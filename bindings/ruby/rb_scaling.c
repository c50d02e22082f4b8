/*
 * rb_scaling.c -- the Ruby glue of the broker and the workers: forwards
 * Server#use_redis / #broker_stats / #drain to the core, the broker's state
 * reports to a Ruby callable (kept in an instance variable, so the GC sees
 * it), and Wirecore::Native.supervise / .worker_index to wire_supervise,
 * forking through Process.fork so each worker gets Ruby's after-fork work.
 */
#include "rb_wirecore.h"

#include <string.h>

static ID id_broker_cb, id_call;

static VALUE call_state(VALUE args) {
  VALUE *a = (VALUE *)args;
  return rb_funcall(a[0], id_call, 2, a[1], a[2]);
}

/* A state report, from inside #process: on_state.call(state, message). An
 * exception in it is reported as a warning, never raised into the core. */
static void on_broker_state(wire_server *srv, wire_broker_state state, const char *msg, void *ud) {
  rbw_server *s = ud;
  VALUE cb = rb_ivar_get(s->self, id_broker_cb);
  if (NIL_P(cb))
    return;
  VALUE args[3] = {cb, INT2NUM((int)state), rb_utf8_str_new_cstr(msg ? msg : "")};
  int failed = 0;
  rb_protect(call_state, (VALUE)args, &failed);
  if (failed) {
    rb_set_errinfo(Qnil);
    rb_warn("wirecore: the broker state callback raised");
  }
}

/* use_redis(url, on_state) */
static VALUE server_use_redis(VALUE self, VALUE url, VALUE on_state) {
  rbw_server *s = rbw_server_get(self);
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_use_redis(s->srv, StringValueCStr(url), NULL, &err);
  if (rc != 0)
    rbw_raise(rc, &err, "broker");
  if (!NIL_P(on_state)) {
    rb_ivar_set(self, id_broker_cb, on_state);
    wire_server_on_broker_state(s->srv, on_broker_state, s);
  }
  return Qnil;
}

static VALUE server_broker_stats(VALUE self) {
  rbw_server *s = rbw_server_get(self);
  wire_broker_stats st;
  if (wire_server_broker_stats(s->srv, &st) != 0)
    return Qnil;
  static const char *names[] = {"connecting", "up", "down"};
  VALUE h = rb_hash_new();
  rb_hash_aset(h, ID2SYM(rb_intern("state")),
               ID2SYM(rb_intern(names[st.state <= 2 ? st.state : 0])));
  rb_hash_aset(h, ID2SYM(rb_intern("published")), ULL2NUM(st.published));
  rb_hash_aset(h, ID2SYM(rb_intern("dropped")), ULL2NUM(st.dropped));
  rb_hash_aset(h, ID2SYM(rb_intern("received")), ULL2NUM(st.received));
  rb_hash_aset(h, ID2SYM(rb_intern("invalid")), ULL2NUM(st.invalid));
  rb_hash_aset(h, ID2SYM(rb_intern("reconnects")), ULL2NUM(st.reconnects));
  rb_hash_aset(h, ID2SYM(rb_intern("channels")), ULL2NUM(st.channels));
  rb_hash_aset(h, ID2SYM(rb_intern("pending_bytes")), SIZET2NUM(st.pending_bytes));
  return h;
}

/* drain(timeout_ms): stop accepting (the backlog is served), finish, then
 * shut down; #process returns false once done. */
static VALUE server_drain(VALUE self, VALUE timeout_ms) {
  rbw_server *s = rbw_server_get(self);
  int rc = wire_server_drain(s->srv, NUM2UINT(timeout_ms), NULL, NULL);
  if (rc != 0)
    rbw_raise(rc, NULL, "drain");
  return Qnil;
}

/* ---- workers ------------------------------------------------------------------ */

static VALUE call_fork(VALUE unused) {
  return rb_funcall(rb_mProcess, rb_intern("fork"), 0);
}

/* Process.fork, so the child gets Ruby's whole after-fork work (timer
 * thread, pid cache, at-fork hooks): its pid in the parent, 0 in the child,
 * -1 when it raised. */
static int ruby_fork(void *ud) {
  int failed = 0;
  VALUE pid = rb_protect(call_fork, Qnil, &failed);
  if (failed) {
    rb_set_errinfo(Qnil);
    return -1;
  }
  return NIL_P(pid) ? 0 : NUM2INT(pid);
}

static VALUE call_worker(VALUE args) {
  VALUE *a = (VALUE *)args;
  return rb_funcall(a[0], id_call, 1, a[1]);
}

/* In the child: the block's integer result (nil: 0) is the exit status; an
 * exception is printed and exits 1. */
static int run_worker(unsigned index, void *ud) {
  VALUE args[2] = {(VALUE)ud, UINT2NUM(index)};
  int failed = 0;
  VALUE r = rb_protect(call_worker, (VALUE)args, &failed);
  if (failed) {
    VALUE e = rb_errinfo();
    rb_set_errinfo(Qnil);
    if (rb_obj_is_kind_of(e, rb_eSystemExit))
      return NUM2INT(rb_funcall(e, rb_intern("status"), 0));
    VALUE msg = rb_funcall(e, rb_intern("full_message"), 0);
    fprintf(stderr, "%s", StringValueCStr(msg));
    return 1;
  }
  return FIXNUM_P(r) ? FIX2INT(r) : 0;
}

/* supervise(workers, name) { |index| ... } -> status. Holds the GVL
 * throughout: no other Ruby thread may run in a process that forks. */
static VALUE native_supervise(VALUE mod, VALUE workers, VALUE name) {
  VALUE block = rb_block_proc();
  wire_supervisor_options o;
  memset(&o, 0, sizeof o);
  o.workers = NUM2UINT(workers);
  o.name = StringValueCStr(name);
  o.fork = ruby_fork;
  int rc = wire_supervise(&o, run_worker, (void *)block);
  RB_GC_GUARD(block);
  if (rc < 0)
    rbw_raise(rc, NULL, "supervise");
  return INT2NUM(rc);
}

static VALUE native_worker_index(VALUE mod) {
  return INT2NUM(wire_worker_index());
}

void rbw_init_scaling(void) {
  id_broker_cb = rb_intern("@broker_cb");
  id_call = rb_intern("call");
  rb_define_method(rbw.cServer, "use_redis", server_use_redis, 2);
  rb_define_method(rbw.cServer, "broker_stats", server_broker_stats, 0);
  rb_define_method(rbw.cServer, "drain", server_drain, 1);
  rb_define_module_function(rbw.mNative, "supervise", native_supervise, 2);
  rb_define_module_function(rbw.mNative, "worker_index", native_worker_index, 0);
}
