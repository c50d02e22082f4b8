/*
 * rb_topics.c -- topics on Wirecore::Native: Conn#subscribe / #unsubscribe /
 * #topics and Server#publish / #subscriber_count. Forwards to the core's
 * topic calls and raises the error classes of its codes.
 */
#include "rb_wirecore.h"

#include <stdio.h>
#include <string.h>

/* Raise for a failed topic call: a bad topic or too many topics are
 * ConfigError, a closed connection ConnectionClosedError. */
NORETURN(static void topic_raise(int rc));
static void topic_raise(int rc) {
  wire_error err;
  memset(&err, 0, sizeof err);
  err.code = rc;
  if (rc == WIRE_EINVAL)
    snprintf(err.message, sizeof err.message, "a topic is 1..%u bytes", WIRE_MAX_TOPIC_LENGTH);
  else
    snprintf(err.message, sizeof err.message, "%s", wire_strerror(rc));
  rbw_raise(rc, &err, NULL);
}

/* The topic's bytes (a String; TypeError otherwise). */
static VALUE topic_arg(VALUE topic) {
  if (!RB_TYPE_P(topic, T_STRING))
    rb_raise(rb_eTypeError, "topic must be a String, not %s", rb_obj_classname(topic));
  return topic;
}

/* #subscribe(topic, since = nil) -> nil, or with since (a position String,
 * "" for none; the topic must have history) a Hash {recovered:, reason:,
 * position:, replayed:}. ConfigError (bad topic, too many topics, no
 * history), ConnectionClosedError once closing. */
static VALUE conn_subscribe(int argc, VALUE *argv, VALUE self) {
  VALUE topic, since;
  rb_scan_args(argc, argv, "11", &topic, &since);
  rbw_conn *w = rbw_conn_get(self);
  topic_arg(topic);
  if (!NIL_P(since) && !RB_TYPE_P(since, T_STRING))
    rb_raise(rb_eTypeError, "since must be a String, not %s", rb_obj_classname(since));
  const char *t = RSTRING_PTR(topic);
  size_t len = (size_t)RSTRING_LEN(topic);
  if (NIL_P(since)) {
    int rc = w->conn == NULL ? WIRE_ECLOSED : wire_conn_subscribe(w->conn, t, len);
    if (rc < 0)
      topic_raise(rc);
    return Qnil;
  }
  wire_recovery rec;
  int rc = w->conn == NULL ? WIRE_ECLOSED
                           : wire_conn_subscribe_since(w->conn, t, len, RSTRING_PTR(since),
                                                       (size_t)RSTRING_LEN(since), &rec);
  if (rc == WIRE_EINVAL) {
    wire_error err;
    memset(&err, 0, sizeof err);
    err.code = rc;
    snprintf(err.message, sizeof err.message,
             "%.*s: no history for this topic (app.topic(...)), or not a topic of 1..%u bytes",
             (int)(len > 200 ? 200 : len), t, WIRE_MAX_TOPIC_LENGTH);
    rbw_raise(rc, &err, NULL);
  }
  if (rc < 0)
    topic_raise(rc);
  VALUE h = rb_hash_new();
  rb_hash_aset(h, ID2SYM(rb_intern("recovered")), rec.recovered ? Qtrue : Qfalse);
  rb_hash_aset(h, ID2SYM(rb_intern("reason")),
               rec.reason ? rb_utf8_str_new_cstr(rec.reason) : Qnil);
  rb_hash_aset(h, ID2SYM(rb_intern("position")), rb_utf8_str_new_cstr(rec.position));
  rb_hash_aset(h, ID2SYM(rb_intern("replayed")), ULL2NUM(rec.replayed));
  return h;
}

/* Server#topic_history(pattern, n, ttl_ms) -> nil. ConfigError for a bad
 * pattern or n, or a pattern that has history already. */
static VALUE server_topic_history(VALUE self, VALUE pattern, VALUE n, VALUE ttl_ms) {
  rbw_server *s = rbw_server_get(self);
  topic_arg(pattern);
  unsigned long long keep = NUM2ULL(n), ttl = NUM2ULL(ttl_ms);
  int rc = keep > WIRE_MAX_HISTORY ? WIRE_EINVAL
           : s->closed             ? WIRE_ECLOSED
                                   : wire_server_topic_history(s->srv, RSTRING_PTR(pattern),
                                                               (size_t)RSTRING_LEN(pattern), (unsigned)keep,
                                                               (uint64_t)ttl);
  if (rc < 0) {
    wire_error err;
    memset(&err, 0, sizeof err);
    err.code = WIRE_EINVAL; /* every failure here is a configuration mistake */
    if (rc == WIRE_ESTATE)
      snprintf(err.message, sizeof err.message, "%.*s has history already",
               (int)(RSTRING_LEN(pattern) > 200 ? 200 : RSTRING_LEN(pattern)),
               RSTRING_PTR(pattern));
    else if (rc == WIRE_EINVAL)
      snprintf(err.message, sizeof err.message,
               "history needs a pattern of 1..%u bytes and 1..%u publications",
               WIRE_MAX_TOPIC_LENGTH, WIRE_MAX_HISTORY);
    else
      topic_raise(rc);
    rbw_raise(WIRE_EINVAL, &err, NULL);
  }
  return Qnil;
}

/* #unsubscribe(topic) -> true, or false when not subscribed. */
static VALUE conn_unsubscribe(VALUE self, VALUE topic) {
  rbw_conn *w = rbw_conn_get(self);
  topic_arg(topic);
  if (w->conn == NULL)
    return Qfalse;
  int rc = wire_conn_unsubscribe(w->conn, RSTRING_PTR(topic), (size_t)RSTRING_LEN(topic));
  if (rc == WIRE_ENOTFOUND)
    return Qfalse;
  if (rc < 0)
    topic_raise(rc);
  return Qtrue;
}

/* #topics -> Array of String (UTF-8), in no particular order. */
static VALUE conn_topics(VALUE self) {
  rbw_conn *w = rbw_conn_get(self);
  size_t n = w->conn != NULL ? wire_conn_topic_count(w->conn) : 0;
  VALUE out = rb_ary_new_capa((long)n);
  for (size_t i = 0; i < n; i++) {
    wire_str s = wire_conn_topic_at(w->conn, i);
    rb_ary_push(out, rb_utf8_str_new(s.ptr, (long)s.len));
  }
  return out;
}

typedef struct publish_call {
  rbw_server *s;
  wire_doc *doc;
  int borrowed;
  VALUE topic, obj;
  wire_conn *exclude;
} publish_call;

static VALUE do_publish_value(VALUE p) {
  publish_call *c = (publish_call *)p;
  const wire_value *v = rbw_value_from_ruby(c->doc, c->obj);
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_publish_value(c->s->srv, RSTRING_PTR(c->topic),
                                     (size_t)RSTRING_LEN(c->topic), v, c->exclude, &err);
  if (rc == WIRE_EINVAL)
    topic_raise(rc);
  if (rc < 0)
    rbw_raise(rc, &err, NULL);
  return INT2NUM(rc);
}

static VALUE release_doc(VALUE p) {
  publish_call *c = (publish_call *)p;
  rbw_server_doc_release(c->s, c->doc, c->borrowed);
  return Qnil;
}

/* #publish(topic, message, exclude) -> Integer: the number of connections
 * it was queued for. A UTF-8 / ASCII String is a text frame, a binary
 * (ASCII-8BIT) String a binary frame, anything else a value encoded per
 * subscriber codec. ConfigError for a bad topic, SerializationError for a
 * value with no wire form (nothing sent). 0 once the server is closed. */
static VALUE server_publish(VALUE self, VALUE topic, VALUE msg, VALUE exclude) {
  topic_arg(topic);
  rbw_server *s = rbw_server_get(self);
  wire_conn *ex = NIL_P(exclude) ? NULL : rbw_conn_get(exclude)->conn;
  if (s->closed)
    return INT2FIX(0);
  if (!RB_TYPE_P(msg, T_STRING)) {
    publish_call c = {s, NULL, 0, topic, msg, ex};
    c.doc = rbw_server_doc_acquire(s, &c.borrowed);
    return rb_ensure(do_publish_value, (VALUE)&c, release_doc, (VALUE)&c);
  }
  wire_msg_kind kind =
      rb_enc_get_index(msg) == rb_ascii8bit_encindex() ? WIRE_MSG_BINARY : WIRE_MSG_TEXT;
  int rc = wire_server_publish(s->srv, RSTRING_PTR(topic), (size_t)RSTRING_LEN(topic), kind,
                               RSTRING_PTR(msg), (size_t)RSTRING_LEN(msg), ex);
  if (rc < 0)
    topic_raise(rc);
  return INT2NUM(rc);
}

/* #subscriber_count(topic) -> Integer; ConfigError for a bad topic. */
static VALUE server_subscriber_count(VALUE self, VALUE topic) {
  topic_arg(topic);
  rbw_server *s = rbw_server_get(self);
  if (RSTRING_LEN(topic) == 0 || (size_t)RSTRING_LEN(topic) > WIRE_MAX_TOPIC_LENGTH)
    topic_raise(WIRE_EINVAL);
  if (s->closed)
    return INT2FIX(0);
  return SIZET2NUM(
      wire_server_subscriber_count(s->srv, RSTRING_PTR(topic), (size_t)RSTRING_LEN(topic)));
}

void rbw_init_topics(void) {
  rb_define_method(rbw.cConn, "subscribe", conn_subscribe, -1);
  rb_define_method(rbw.cConn, "unsubscribe", conn_unsubscribe, 1);
  rb_define_method(rbw.cConn, "topics", conn_topics, 0);
  rb_define_method(rbw.cServer, "publish", server_publish, 3);
  rb_define_method(rbw.cServer, "subscriber_count", server_subscriber_count, 1);
  rb_define_method(rbw.cServer, "topic_history", server_topic_history, 3);
}
