/*
 * rb_server.c -- Wirecore::Native::Server: a wire_server on its own loop,
 * driven by the calling Ruby thread in host-driven mode (fd, timeout,
 * process), its endpoints, and the four callbacks that call into Ruby.
 *
 * Every call into Ruby from a core callback goes through rb_protect, so a
 * Ruby exception never unwinds through the core's C frames: it is kept and
 * re-raised by #process once the core has returned.
 */
#include "rb_wirecore.h"

#include <errno.h>
#include <poll.h>
#include <ruby/thread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct rbw_ids {
  ID connect, message, close, error, drain, session_message;
} rbw_ids;

/* Interned once at Init; read-only afterwards. */
static rbw_ids ids;

/* An endpoint plus the C strings the options point to (kept for the
 * server's lifetime, whether or not the core copies them). */
typedef struct endpoint_store {
  rbw_endpoint ep;
  char **strings;
  size_t n_strings;
} endpoint_store;

static void server_mark(void *p) {
  rbw_server *s = p;
  rb_gc_mark_movable(s->conns);
  rb_gc_mark_movable(s->pending);
  for (size_t i = 0; i < s->n_eps; i++)
    rb_gc_mark_movable(s->eps[i]->handler);
}

static void server_compact(void *p) {
  rbw_server *s = p;
  s->self = rb_gc_location(s->self);
  s->conns = rb_gc_location(s->conns);
  s->pending = rb_gc_location(s->pending);
  for (size_t i = 0; i < s->n_eps; i++)
    s->eps[i]->handler = rb_gc_location(s->eps[i]->handler);
}

static void endpoint_free(rbw_endpoint *ep) {
  endpoint_store *st = (endpoint_store *)ep;
  for (size_t i = 0; i < st->n_strings; i++)
    xfree(st->strings[i]);
  xfree(st->strings);
  xfree(st);
}

/* A server that never shut down cannot be freed (the core says EBUSY): its
 * memory is then left alone rather than freed under live handles. */
static void server_free(void *p) {
  rbw_server *s = p;
  if (s->srv != NULL && wire_server_free(s->srv) != 0) {
    xfree(s);
    return;
  }
  for (size_t i = 0; i < s->n_eps; i++)
    endpoint_free(s->eps[i]);
  xfree(s->eps);
  if (s->scratch != NULL)
    wire_doc_free(s->scratch);
  xfree(s);
}

static size_t server_size(const void *p) {
  const rbw_server *s = p;
  return sizeof *s + s->cap_eps * sizeof(rbw_endpoint *);
}

static const rb_data_type_t server_type = {
    .wrap_struct_name = "Wirecore::Native::Server",
    .function = {.dmark = server_mark,
                 .dfree = server_free,
                 .dsize = server_size,
                 .dcompact = server_compact},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

rbw_server *rbw_server_get(VALUE self) {
  rbw_server *s = rb_check_typeddata(self, &server_type);
  if (s->srv == NULL)
    rb_raise(rb_eIOError, "server is closed");
  return s;
}

wire_doc *rbw_server_doc_acquire(rbw_server *s, int *borrowed) {
  wire_doc *doc;
  if (!s->scratch_busy && s->scratch != NULL) {
    s->scratch_busy = 1;
    *borrowed = 1;
    wire_doc_reset(s->scratch);
    return s->scratch;
  }
  if (wire_doc_new(&doc) < 0)
    rb_memerror();
  *borrowed = 0;
  return doc;
}

void rbw_server_doc_release(rbw_server *s, wire_doc *doc, int borrowed) {
  if (borrowed)
    s->scratch_busy = 0;
  else
    wire_doc_free(doc);
}

static VALUE server_alloc(VALUE klass) {
  rbw_server *s;
  VALUE self = TypedData_Make_Struct(klass, rbw_server, &server_type, s);
  s->self = self;
  s->conns = Qnil;
  s->pending = Qnil;
  return self;
}

static size_t opt_size(VALUE opts, const char *key, size_t dflt) {
  VALUE v = rb_hash_lookup2(opts, ID2SYM(rb_intern(key)), Qnil);
  return NIL_P(v) ? dflt : NUM2SIZET(v);
}

/* client limits: opts[:trusted_proxies] as a C array (xfree it) of the
 * strings' own bytes, checked before anything is allocated; NULL if none. */
static const char **proxy_list(VALUE opts, size_t *n) {
  VALUE ary = rb_hash_lookup2(opts, ID2SYM(rb_intern("trusted_proxies")), Qnil);
  *n = 0;
  if (NIL_P(ary))
    return NULL;
  Check_Type(ary, T_ARRAY);
  long len = RARRAY_LEN(ary);
  for (long i = 0; i < len; i++) {
    VALUE v = rb_ary_entry(ary, i);
    Check_Type(v, T_STRING);
    StringValueCStr(v);
  }
  const char **list = ALLOC_N(const char *, len ? len : 1);
  for (long i = 0; i < len; i++)
    list[i] = RSTRING_PTR(rb_ary_entry(ary, i));
  *n = (size_t)len;
  return list;
}

/* Server.new(opts): max_connections, max_handshake_size,
 * handshake_timeout_ms, max_connections_per_address, handshake_rate,
 * handshake_burst, trusted_proxies, max_buffered_bytes, max_topics_per_conn.
 * Raises Wirecore::Error. */
static VALUE server_initialize(VALUE self, VALUE opts) {
  rbw_server *s = rb_check_typeddata(self, &server_type);
  Check_Type(opts, T_HASH);
  wire_server_options o;
  memset(&o, 0, sizeof o);
  o.max_connections = (unsigned)opt_size(opts, "max_connections", 0);
  o.max_handshake_size = opt_size(opts, "max_handshake_size", 0);
  o.handshake_timeout_ms = (unsigned)opt_size(opts, "handshake_timeout_ms", 0);
  o.max_buffered_bytes = opt_size(opts, "max_buffered_bytes", 0); /* memory budget */
  o.max_connections_per_address = (unsigned)opt_size(opts, "max_connections_per_address", 0);
  o.handshake_rate = (unsigned)opt_size(opts, "handshake_rate", 0);
  o.handshake_burst = (unsigned)opt_size(opts, "handshake_burst", 0);
  o.max_topics_per_conn = (unsigned)opt_size(opts, "max_topics_per_conn", 0); /* topics */
  o.trusted_proxies = proxy_list(opts, &o.n_trusted_proxies); /* last: nothing raises after */
  s->conns = rb_hash_new();
  if (wire_doc_new(&s->scratch) < 0) {
    xfree((void *)o.trusted_proxies);
    rb_memerror();
  }
  int rc = wire_server_new(&o, &s->srv);
  xfree((void *)o.trusted_proxies); /* parsed by the core */
  if (rc < 0)
    rbw_raise(rc, NULL, "cannot create server");
  return self;
}

/* ---- callbacks ---------------------------------------------------------- */

static rbw_conn *conn_of(wire_conn *conn) {
  return wire_conn_get_data(conn);
}

static VALUE str_or_nil(wire_str s) {
  return s.ptr == NULL ? Qnil : rb_utf8_str_new(s.ptr, (long)s.len);
}

/* The handshake as [path, target, params, query pairs, header pairs,
 * remote address, remote port, subprotocol]; Wirecore::Request wraps it. */
static VALUE request_to_ruby(const wire_request *req) {
  wire_str a, b;
  size_t n = wire_request_param_count(req);
  VALUE params = rb_hash_new();
  for (size_t i = 0; i < n; i++)
    if (wire_request_param_at(req, i, &a, &b) == 0)
      rb_hash_aset(params, str_or_nil(a), str_or_nil(b));
  n = wire_request_query_count(req);
  VALUE query = rb_ary_new_capa((long)n);
  for (size_t i = 0; i < n; i++)
    if (wire_request_query_at(req, i, &a, &b) == 0)
      rb_ary_push(query, rb_assoc_new(str_or_nil(a), str_or_nil(b)));
  n = wire_request_header_count(req);
  VALUE headers = rb_ary_new_capa((long)n);
  for (size_t i = 0; i < n; i++)
    if (wire_request_header_at(req, i, &a, &b) == 0)
      rb_ary_push(headers, rb_assoc_new(str_or_nil(a), str_or_nil(b)));
  VALUE parts[8] = {str_or_nil(wire_request_path(req)),
                    str_or_nil(wire_request_target(req)),
                    params,
                    query,
                    headers,
                    str_or_nil(wire_request_remote_addr(req)),
                    INT2NUM(wire_request_remote_port(req)),
                    str_or_nil(wire_request_subprotocol(req))};
  return rb_ary_new_from_values(8, parts);
}

/* Everything a callback needs, so the Ruby work (conversions included) runs
 * inside rb_protect. */
typedef struct cb_call {
  rbw_endpoint *ep;
  wire_conn *conn;
  const wire_request *req;
  const wire_message *msg;
  const wire_error *err;
  int code;
  const char *reason;
  size_t reason_len;
} cb_call;

static VALUE call_connect(VALUE p) {
  cb_call *c = (cb_call *)p;
  VALUE conn = rbw_conn_wrap(c->ep->server, c->ep, c->conn);
  VALUE args[2] = {conn, request_to_ruby(c->req)};
  return rb_funcallv(c->ep->handler, ids.connect, 2, args);
}

static VALUE call_message(VALUE p) {
  cb_call *c = (cb_call *)p;
  const wire_message *m = c->msg;
  VALUE data = Qnil, value = Qnil;
  if (m->value != NULL)
    value = rbw_value_to_ruby(m->value);
  else if (m->kind == WIRE_MSG_TEXT)
    data = rb_utf8_str_new((const char *)m->data, (long)m->len);
  else
    data = rb_str_new((const char *)m->data, (long)m->len);
  rbw_conn *w = conn_of(c->conn);
  /* The hot path: straight to the connection's session (Session#message). */
  if (!NIL_P(w->data)) {
    VALUE args[4] = {INT2FIX(m->kind), data, value, INT2FIX(m->handler)};
    return rb_funcallv(w->data, ids.session_message, 4, args);
  }
  VALUE args[5] = {w->self, INT2FIX(m->kind), data, value, INT2FIX(m->handler)};
  return rb_funcallv(c->ep->handler, ids.message, 5, args);
}

static VALUE call_close(VALUE p) {
  cb_call *c = (cb_call *)p;
  VALUE args[3] = {conn_of(c->conn)->self, INT2FIX(c->code),
                   rb_utf8_str_new(c->reason ? c->reason : "", (long)c->reason_len)};
  return rb_funcallv(c->ep->handler, ids.close, 3, args);
}

static VALUE call_error(VALUE p) {
  cb_call *c = (cb_call *)p;
  rbw_conn *w = c->conn ? conn_of(c->conn) : NULL;
  /* #fail / #invalid: _error gets the exception the Ruby code passed. */
  VALUE exc = w && !NIL_P(w->failing) ? w->failing : rbw_error_new(c->err->code, c->err, NULL);
  VALUE args[2] = {w ? w->self : Qnil, exc};
  return rb_funcallv(c->ep->handler, ids.error, 2, args);
}

static VALUE call_drain(VALUE p) {
  cb_call *c = (cb_call *)p;
  VALUE args[1] = {conn_of(c->conn)->self};
  return rb_funcallv(c->ep->handler, ids.drain, 1, args);
}

/* Run fn under rb_protect; an exception is kept for #process to re-raise
 * (the first one wins) and *failed is set. */
static VALUE protect(rbw_server *s, VALUE (*fn)(VALUE), cb_call *c, int *failed) {
  int state = 0;
  VALUE ret = rb_protect(fn, (VALUE)c, &state);
  *failed = state != 0;
  if (state) {
    VALUE exc = rb_errinfo();
    rb_set_errinfo(Qnil);
    if (NIL_P(s->pending))
      s->pending = NIL_P(exc) ? rb_exc_new_cstr(rb_eRuntimeError, "callback failed") : exc;
  }
  return ret;
}

/* Accept (0) or reject with the status the Ruby handler returned. A
 * rejected connection gets no on_close, so its reference goes at once. */
static int on_connect(wire_conn *conn, const wire_request *req, void *ud) {
  rbw_endpoint *ep = ud;
  cb_call c = {.ep = ep, .conn = conn, .req = req};
  int failed;
  VALUE ret = protect(ep->server, call_connect, &c, &failed);
  int status = failed ? 500 : (FIXNUM_P(ret) ? FIX2INT(ret) : 0);
  rbw_conn *w = conn_of(conn);
  if (w == NULL)
    return status ? status : 500;
  if (status == 0) {
    rb_hash_aset(ep->server->conns, ULL2NUM(w->id), w->self);
    return 0;
  }
  wire_conn_set_data(conn, NULL);
  w->conn = NULL;
  wire_conn_unref(conn);
  return status;
}

static void on_message(wire_conn *conn, const wire_message *msg, void *ud) {
  rbw_endpoint *ep = ud;
  if (conn_of(conn) == NULL)
    return;
  cb_call c = {.ep = ep, .conn = conn, .msg = msg};
  int failed;
  rbw_conn *w = conn_of(conn);
  double t0 = rbw_now(); /* metrics: the handler's time */
  w->t_handler = t0;
  w->timing_paused = 0;
  w->in_handler = 1;
  protect(ep->server, call_message, &c, &failed);
  w = conn_of(conn); /* NULL when the handler's close already ended it */
  if (w != NULL)
    w->in_handler = 0;
  if (w == NULL || !w->timing_paused)
    wire_server_observe(wire_conn_server(conn), wire_conn_endpoint(conn), rbw_now() - t0);
  /* A signal (Ctrl-C, SIGTERM) leads to a graceful shutdown instead. An
   * escaped exception goes to _error through wire_conn_fail (else 1011);
   * #process still re-raises it. */
  if (failed && !rb_obj_is_kind_of(ep->server->pending, rb_eSignal))
    rbw_conn_fail(conn_of(conn), ep->server->pending);
}

/* The last callback of a connection: the wrapper lets go of the handle, so
 * later calls on it raise ConnectionClosedError without reaching the core. */
static void on_close(wire_conn *conn, int code, const char *reason, size_t reason_len, void *ud) {
  rbw_endpoint *ep = ud;
  rbw_conn *w = conn_of(conn);
  if (w == NULL)
    return;
  cb_call c = {.ep = ep, .conn = conn, .code = code, .reason = reason, .reason_len = reason_len};
  int failed;
  protect(ep->server, call_close, &c, &failed);
  rb_hash_delete(ep->server->conns, ULL2NUM(w->id));
  wire_conn_set_data(conn, NULL);
  w->conn = NULL;
  wire_conn_unref(conn);
}

/* The send queue fell back to the high-water mark after #writable? said
 * false: the handler's _drain(conn) wakes the waiting senders. */
static void on_drain(wire_conn *conn, void *ud) {
  rbw_endpoint *ep = ud;
  if (conn_of(conn) == NULL)
    return;
  cb_call c = {.ep = ep, .conn = conn};
  int failed;
  protect(ep->server, call_drain, &c, &failed);
}

static int on_error(wire_conn *conn, const wire_error *err, void *ud) {
  rbw_endpoint *ep = ud;
  if (conn != NULL && conn_of(conn) == NULL)
    return 0;
  cb_call c = {.ep = ep, .conn = conn, .err = err};
  int failed;
  VALUE ret = protect(ep->server, call_error, &c, &failed);
  return !failed && RTEST(ret);
}

/* ---- endpoints ---------------------------------------------------------- */

static char *keep_string(endpoint_store *st, VALUE str) {
  StringValue(str);
  char *copy = ruby_strdup(StringValueCStr(str));
  st->strings[st->n_strings++] = copy;
  return copy;
}

/* Copy an Array of Strings into C strings owned by the endpoint. */
static const char *const *keep_list(endpoint_store *st, VALUE opts, const char *key, size_t *n) {
  VALUE ary = rb_hash_lookup2(opts, ID2SYM(rb_intern(key)), Qnil);
  *n = 0;
  if (NIL_P(ary))
    return NULL;
  Check_Type(ary, T_ARRAY);
  long len = RARRAY_LEN(ary);
  if (len == 0)
    return NULL;
  const char **list = (const char **)ALLOC_N(char *, len);
  st->strings[st->n_strings++] = (char *)list;
  for (long i = 0; i < len; i++)
    list[i] = keep_string(st, rb_ary_entry(ary, i));
  *n = (size_t)len;
  return list;
}

static long list_len(VALUE opts, const char *key) {
  VALUE ary = rb_hash_lookup2(opts, ID2SYM(rb_intern(key)), Qnil);
  return RB_TYPE_P(ary, T_ARRAY) ? RARRAY_LEN(ary) : 0;
}

static wire_codec codec_opt(VALUE opts) {
  VALUE v = rb_hash_lookup2(opts, ID2SYM(rb_intern("codec")), Qnil);
  if (NIL_P(v) || SYM2ID(v) == rb_intern("raw"))
    return WIRE_CODEC_RAW;
  if (SYM2ID(v) == rb_intern("json"))
    return WIRE_CODEC_JSON;
  if (SYM2ID(v) == rb_intern("msgpack"))
    return WIRE_CODEC_MSGPACK;
  rb_raise(rb_eArgError, "unknown codec %" PRIsVALUE, v);
}

static wire_invalid_policy policy_opt(VALUE opts) {
  VALUE v = rb_hash_lookup2(opts, ID2SYM(rb_intern("invalid_policy")), Qnil);
  if (NIL_P(v) || SYM2ID(v) == rb_intern("reply"))
    return WIRE_INVALID_REPLY;
  if (SYM2ID(v) == rb_intern("close"))
    return WIRE_INVALID_CLOSE;
  if (SYM2ID(v) == rb_intern("ignore"))
    return WIRE_INVALID_IGNORE;
  rb_raise(rb_eArgError, "unknown invalid policy %" PRIsVALUE " (:reply, :close, :ignore)", v);
}

/* Fill o from the options Hash; every string lands in st. */
static void endpoint_options(endpoint_store *st, VALUE opts, wire_endpoint_options *o) {
  memset(o, 0, sizeof *o);
  o->codec = codec_opt(opts);
  o->invalid_policy = policy_opt(opts);
  o->message_schemas = keep_list(st, opts, "message_schemas", &o->n_message_schemas);
  VALUE rs = rb_hash_lookup2(opts, ID2SYM(rb_intern("response_schema")), Qnil);
  if (!NIL_P(rs))
    o->response_schema = keep_string(st, rs);
  if (RTEST(rb_hash_lookup2(opts, ID2SYM(rb_intern("format_assert")), Qnil)))
    o->schema_flags |= WIRE_SCHEMA_FORMAT_ASSERT;
  o->max_message_size = opt_size(opts, "max_message_size", 0);
  o->max_backpressure = opt_size(opts, "max_backpressure", 0);
  o->max_queued_messages = opt_size(opts, "max_queued_messages", 0);
  o->send_high_water = opt_size(opts, "send_high_water", 0);
  o->idle_timeout_ms = (unsigned)opt_size(opts, "idle_timeout_ms", 0);
  o->pong_timeout_ms = (unsigned)opt_size(opts, "pong_timeout_ms", 0);
  o->send_timeout_ms = (unsigned)opt_size(opts, "send_timeout_ms", 0);
  o->max_message_fragments = (unsigned)opt_size(opts, "max_message_fragments", 0);
  /* permessage-deflate: the mode number lib/wirecore/endpoint.rb chose */
  o->compression = (wire_compression)opt_size(opts, "compression", 0);
  o->compression_threshold = opt_size(opts, "compression_threshold", 0);
  o->compression_window_bits = (unsigned)opt_size(opts, "compression_window_bits", 0);
  o->message_rate = (unsigned)opt_size(opts, "message_rate", 0); /* client limits */
  o->message_burst = (unsigned)opt_size(opts, "message_burst", 0);
  o->byte_rate = opt_size(opts, "byte_rate", 0);
  o->byte_burst = opt_size(opts, "byte_burst", 0);
  o->rate_limit_action = (int)opt_size(opts, "rate_limit_action", 0);
  o->message_timeout_ms = (unsigned)opt_size(opts, "message_timeout_ms", 0);
  o->subprotocols = keep_list(st, opts, "subprotocols", &o->n_subprotocols);
  o->allowed_origins = keep_list(st, opts, "allowed_origins", &o->n_allowed_origins);
}

static VALUE free_store_on_error(VALUE p) {
  endpoint_free((rbw_endpoint *)p);
  return Qnil;
}

typedef struct add_args {
  rbw_server *s;
  endpoint_store *st;
  VALUE pattern, handler, opts;
} add_args;

static VALUE do_add(VALUE p) {
  add_args *a = (add_args *)p;
  rbw_server *s = a->s;
  wire_endpoint_options o;
  endpoint_options(a->st, a->opts, &o);
  a->st->ep.codec = o.codec;
  const char *pattern = StringValueCStr(a->pattern);
  /* Grow first: nothing may raise once the core holds the endpoint. */
  if (s->n_eps == s->cap_eps) {
    s->cap_eps = s->cap_eps ? s->cap_eps * 2 : 4;
    REALLOC_N(s->eps, rbw_endpoint *, s->cap_eps);
  }
  wire_callbacks cb = {on_connect, on_message, on_close, on_error,
                       rb_respond_to(a->handler, ids.drain) ? on_drain : NULL};
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_endpoint_add(s->srv, pattern, &o, &cb, &a->st->ep, NULL, &err);
  if (rc < 0)
    rbw_raise(rc, &err, pattern);
  s->eps[s->n_eps++] = &a->st->ep;
  return Qnil;
}

/* #add_endpoint(pattern, handler, opts): handler receives _connect(conn,
 * request_parts), _message(conn, kind, data, value, index), _close(conn,
 * code, reason), _error(conn, error) and, if it has one, _drain(conn).
 * Raises ConfigError (a bad route or schema). */
static VALUE server_add_endpoint(VALUE self, VALUE pattern, VALUE handler, VALUE opts) {
  rbw_server *s = rbw_server_get(self);
  StringValue(pattern);
  Check_Type(opts, T_HASH);
  endpoint_store *st = ZALLOC(endpoint_store);
  size_t n = 2 + (size_t)(list_len(opts, "message_schemas") + list_len(opts, "subprotocols") +
                          list_len(opts, "allowed_origins"));
  st->strings = ALLOC_N(char *, n + 3);
  st->ep.server = s;
  st->ep.handler = handler;
  RB_OBJ_WRITTEN(self, Qundef, handler);
  add_args a = {s, st, pattern, handler, opts};
  int state = 0;
  rb_protect(do_add, (VALUE)&a, &state);
  if (state) {
    free_store_on_error((VALUE)&st->ep);
    rb_jump_tag(state);
  }
  return self;
}

/* ---- driving ------------------------------------------------------------ */

/* #listen(host, port). Raises ConfigError (EADDRINUSE, ELISTEN). */
static VALUE server_listen(VALUE self, VALUE host, VALUE port) {
  rbw_server *s = rbw_server_get(self);
  int rc = wire_server_listen(s->srv, StringValueCStr(host), NUM2INT(port));
  if (rc < 0)
    rbw_raise(rc, NULL, "cannot listen");
  return self;
}

/* TLS rows from Ruby: [[server_name|nil, cert, key, password|nil, pem], ...]
 * (pem true: cert and key are PEM text, else file paths). The strings
 * borrow from rows, which the caller keeps alive (RB_GC_GUARD). */
#define RBW_MAX_TLS_CERTS 16
static void tls_rows(VALUE rows, wire_tls_options *o, wire_tls_cert *cs) {
  Check_Type(rows, T_ARRAY);
  long n = RARRAY_LEN(rows);
  if (n < 1 || n > RBW_MAX_TLS_CERTS)
    rb_raise(rb_eArgError, "TLS needs 1 to 16 certificates");
  memset(o, 0, sizeof *o);
  for (long i = 0; i < n; i++) {
    VALUE r = rb_ary_entry(rows, i);
    Check_Type(r, T_ARRAY);
    if (RARRAY_LEN(r) != 5)
      rb_raise(rb_eArgError, "a TLS row is [name, cert, key, password, pem]");
    wire_tls_cert *c = &cs[i];
    memset(c, 0, sizeof *c);
    VALUE name = rb_ary_entry(r, 0), pw = rb_ary_entry(r, 3);
    c->server_name = NIL_P(name) ? NULL : StringValueCStr(name);
    c->key_password = NIL_P(pw) ? NULL : StringValueCStr(pw);
    VALUE cert = rb_ary_entry(r, 1), key = rb_ary_entry(r, 2);
    if (RTEST(rb_ary_entry(r, 4))) {
      c->cert_pem = StringValuePtr(cert);
      c->cert_pem_len = (size_t)RSTRING_LEN(cert);
      c->key_pem = StringValuePtr(key);
      c->key_pem_len = (size_t)RSTRING_LEN(key);
    } else {
      c->cert_file = StringValueCStr(cert);
      c->key_file = StringValueCStr(key);
    }
  }
  o->certs = cs;
  o->n_certs = (size_t)n;
}

/* The client CAs: nil, or [ca, pem] (pem true: PEM text, else a file path);
 * borrowed from ca as tls_rows borrows. */
static void tls_ca(VALUE ca, wire_tls_options *o) {
  if (NIL_P(ca))
    return;
  Check_Type(ca, T_ARRAY);
  if (RARRAY_LEN(ca) != 2)
    rb_raise(rb_eArgError, "a TLS CA is [ca, pem]");
  VALUE v = rb_ary_entry(ca, 0);
  if (RTEST(rb_ary_entry(ca, 1))) {
    o->ca_pem = StringValuePtr(v);
    o->ca_pem_len = (size_t)RSTRING_LEN(v);
  } else {
    o->ca_file = StringValueCStr(v);
  }
}

/* #listen_tls(host, port, rows, ca). Raises ConfigError (a certificate, key
 * or CA that does not load, EADDRINUSE, ELISTEN). */
static VALUE server_listen_tls(VALUE self, VALUE host, VALUE port, VALUE rows, VALUE ca) {
  rbw_server *s = rbw_server_get(self);
  wire_tls_options o;
  wire_tls_cert cs[RBW_MAX_TLS_CERTS];
  tls_rows(rows, &o, cs);
  tls_ca(ca, &o);
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_listen_tls(s->srv, StringValueCStr(host), NUM2INT(port), &o, &err);
  RB_GC_GUARD(rows);
  RB_GC_GUARD(ca);
  if (rc < 0)
    rbw_raise(rc, &err, "cannot listen");
  return self;
}

/* #tls_reload(rows, ca): new certificates for new connections. Raises
 * ConfigError and keeps the old ones when they do not load. */
static VALUE server_tls_reload(VALUE self, VALUE rows, VALUE ca) {
  rbw_server *s = rbw_server_get(self);
  wire_tls_options o;
  wire_tls_cert cs[RBW_MAX_TLS_CERTS];
  tls_rows(rows, &o, cs);
  tls_ca(ca, &o);
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_tls_reload(s->srv, &o, &err);
  RB_GC_GUARD(rows);
  RB_GC_GUARD(ca);
  if (rc < 0)
    rbw_raise(rc, &err, "cannot reload TLS");
  return self;
}

static VALUE server_port(VALUE self) {
  return INT2NUM(wire_server_port(rbw_server_get(self)->srv));
}
static VALUE server_fd(VALUE self) {
  return INT2NUM(wire_server_fd(rbw_server_get(self)->srv));
}
static VALUE server_timeout(VALUE self) {
  return INT2NUM(wire_server_timeout(rbw_server_get(self)->srv));
}
static VALUE server_connection_count(VALUE self) {
  return SIZET2NUM(wire_server_connection_count(rbw_server_get(self)->srv));
}

/* #process -> true while the server lives, false once it has shut down.
 * Runs callbacks with the GVL held; re-raises what a callback let escape. */
static VALUE server_process(VALUE self) {
  rbw_server *s = rbw_server_get(self);
  if (s->closed)
    return Qfalse;
  int rc = wire_server_process(s->srv);
  if (!NIL_P(s->pending)) {
    VALUE exc = s->pending;
    s->pending = Qnil;
    rb_exc_raise(exc);
  }
  if (rc < 0)
    rbw_raise(rc, NULL, "process");
  return rc > 0 && !s->closed ? Qtrue : Qfalse;
}

typedef struct wait_args {
  int fd, wake, timeout_ms;
  int woken;
  int wake_w; /* the wake pipe's write end, or -1 */
} wait_args;

/* Ruby's interrupt (a signal, Thread#raise) for a thread in do_wait: a byte
 * in the wake pipe, so an interrupt that lands just before poll() starts
 * still ends it (a thread signal alone can arrive too early and be lost). */
static void ubf_wake(void *p) {
  const wait_args *a = p;
  if (a->wake_w >= 0) {
    ssize_t n = write(a->wake_w, "!", 1);
    (void)n; /* full (EAGAIN): it is readable anyway */
  }
}

static void *do_wait(void *p) {
  wait_args *a = p;
  struct pollfd pfd[2] = {{a->fd, POLLIN, 0}, {a->wake, POLLIN, 0}};
  int n = poll(pfd, a->wake >= 0 ? 2 : 1, a->timeout_ms);
  a->woken = n > 0 && a->wake >= 0 && (pfd[1].revents & POLLIN);
  return NULL;
}

/* #wait(timeout_ms, wake_fd, wake_w): block until the core's fd or wake_fd
 * is readable or timeout_ms passes (-1: no timeout), with the GVL released.
 * Drains wake_fd. Interrupts (signals, Thread#raise) end the wait by writing
 * to wake_w, and are raised here. The same wait as IO.select, without its
 * allocations. */
static VALUE server_wait(VALUE self, VALUE timeout_ms, VALUE wake_fd, VALUE wake_w) {
  rbw_server *s = rbw_server_get(self);
  wait_args a = {wire_server_fd(s->srv), NUM2INT(wake_fd), NUM2INT(timeout_ms), 0,
                 NUM2INT(wake_w)};
  rb_thread_call_without_gvl(do_wait, &a, ubf_wake, &a);
  if (a.woken) { /* one read: it was readable, so this cannot block */
    char buf[256];
    if (read(a.wake, buf, sizeof buf) < 0 && errno != EAGAIN)
      rb_sys_fail("wake pipe");
  }
  rb_thread_check_ints();
  return Qnil;
}

static void on_shutdown(wire_server *srv, void *ud) {
  ((rbw_server *)ud)->closed = 1;
}

/* #shutdown(timeout_ms): graceful; later #process calls finish it. Returns
 * false when a shutdown was already under way. */
static VALUE server_shutdown(VALUE self, VALUE timeout_ms) {
  rbw_server *s = rbw_server_get(self);
  if (s->shutting_down || s->closed)
    return Qfalse;
  int rc = wire_server_shutdown(s->srv, NUM2UINT(timeout_ms), on_shutdown, s);
  if (rc < 0)
    rbw_raise(rc, NULL, "shutdown");
  s->shutting_down = 1;
  return Qtrue;
}

static VALUE server_closed_p(VALUE self) {
  rbw_server *s = rb_check_typeddata(self, &server_type);
  return s->closed ? Qtrue : Qfalse;
}

void rbw_init_server(void) {
  ids.connect = rb_intern("_connect");
  ids.message = rb_intern("_message");
  ids.close = rb_intern("_close");
  ids.error = rb_intern("_error");
  ids.drain = rb_intern("_drain");
  ids.session_message = rb_intern("message");
  rbw.cServer = rb_define_class_under(rbw.mNative, "Server", rb_cObject);
  rb_gc_register_mark_object(rbw.cServer);
  rb_define_alloc_func(rbw.cServer, server_alloc);
  rb_define_method(rbw.cServer, "initialize", server_initialize, 1);
  rb_define_method(rbw.cServer, "add_endpoint", server_add_endpoint, 3);
  rb_define_method(rbw.cServer, "listen", server_listen, 2);
  rb_define_method(rbw.cServer, "listen_tls", server_listen_tls, 4);
  rb_define_method(rbw.cServer, "tls_reload", server_tls_reload, 2);
  rb_define_method(rbw.cServer, "port", server_port, 0);
  rb_define_method(rbw.cServer, "fd", server_fd, 0);
  rb_define_method(rbw.cServer, "timeout", server_timeout, 0);
  rb_define_method(rbw.cServer, "process", server_process, 0);
  rb_define_method(rbw.cServer, "wait", server_wait, 3);
  rb_define_method(rbw.cServer, "shutdown", server_shutdown, 1);
  rb_define_method(rbw.cServer, "closed?", server_closed_p, 0);
  rb_define_method(rbw.cServer, "connection_count", server_connection_count, 0);
}
