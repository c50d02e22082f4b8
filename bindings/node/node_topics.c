/*
 * node_topics.c -- topics on the addon's classes: Connection.subscribe /
 * unsubscribe / topics and Server.publish / publishValue / subscriberCount.
 * Forwards to the core's topic calls; errors come back as negative WIRE_E*
 * codes (or error info objects for values) that the JS layer turns into the
 * error classes. The property lists of node_conn.c and node_server.c name
 * these functions.
 */
#include "addon.h"

#include <stdlib.h>
#include <string.h>

/* A topic argument copied into buf (WIRE_MAX_TOPIC_LENGTH + 1 bytes).
 * Returns 0, WIRE_EINVAL (not a string, empty or too long; no exception), or
 * -1 with a pending exception. */
static int topic_arg(napi_env env, napi_value v, char *buf, size_t *len) {
  napi_valuetype t;
  NODE_API_CALL_INT(env, napi_typeof(env, v, &t), -1);
  if (t != napi_string)
    return WIRE_EINVAL;
  NODE_API_CALL_INT(env, napi_get_value_string_utf8(env, v, NULL, 0, len), -1);
  if (*len == 0 || *len > WIRE_MAX_TOPIC_LENGTH)
    return WIRE_EINVAL;
  NODE_API_CALL_INT(env, napi_get_value_string_utf8(env, v, buf, WIRE_MAX_TOPIC_LENGTH + 1, len),
                    -1);
  return 0;
}

static napi_value int_result(napi_env env, int64_t rc) {
  napi_value out;
  NODE_API_CALL(env, napi_create_int64(env, rc, &out));
  return out;
}

/* `this` and the arguments of a call; NULL with a pending exception. */
static void *this_native(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *p = NULL;
  NODE_API_CALL(env, napi_get_cb_info(env, info, argc, argv, &self, NULL));
  NODE_API_CALL(env, napi_unwrap(env, self, &p));
  return p;
}

/* conn.subscribe(topic) / conn.unsubscribe(topic) -> 0 or a negative code
 * (EINVAL bad topic, ECLOSED, ETOOMANY, ENOMEM; ENOTFOUND not subscribed). */
static napi_value subscription(napi_env env, napi_callback_info info, int on) {
  size_t argc = 1, len = 0;
  napi_value argv[1] = {NULL};
  char buf[WIRE_MAX_TOPIC_LENGTH + 1];
  wn_conn *nc = this_native(env, info, &argc, argv);
  if (!nc)
    return NULL;
  int rc = argc < 1 ? WIRE_EINVAL : topic_arg(env, argv[0], buf, &len);
  if (rc < 0 && rc != WIRE_EINVAL)
    return NULL;
  if (rc == 0 && !nc->conn)
    rc = on ? WIRE_ECLOSED : WIRE_ENOTFOUND;
  if (rc == 0)
    rc = on ? wire_conn_subscribe(nc->conn, buf, len) : wire_conn_unsubscribe(nc->conn, buf, len);
  return int_result(env, rc);
}

napi_value wn_conn_subscribe(napi_env env, napi_callback_info info) {
  return subscription(env, info, 1);
}

napi_value wn_conn_unsubscribe(napi_env env, napi_callback_info info) {
  return subscription(env, info, 0);
}

/* conn.topics() -> string[] (empty once the connection is gone). */
napi_value wn_conn_topics(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_conn *nc = this_native(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  size_t n = nc->conn ? wire_conn_topic_count(nc->conn) : 0;
  napi_value arr, s;
  NODE_API_CALL(env, napi_create_array_with_length(env, n, &arr));
  for (size_t i = 0; i < n; i++) {
    wire_str t = wire_conn_topic_at(nc->conn, i);
    NODE_API_CALL(env, napi_create_string_utf8(env, t.ptr, t.len, &s));
    NODE_API_CALL(env, napi_set_element(env, arr, (uint32_t)i, s));
  }
  return arr;
}

/* The core connection of an optional `exclude` Connection (NULL for
 * undefined / null / a closed one). -1 with a pending exception. */
static int exclude_arg(napi_env env, size_t argc, napi_value v, wire_conn **out) {
  *out = NULL;
  napi_valuetype t = napi_undefined;
  if (argc > 0)
    NODE_API_CALL_INT(env, napi_typeof(env, v, &t), -1);
  if (t == napi_undefined || t == napi_null)
    return 0;
  void *p = NULL;
  if (t != napi_object || napi_unwrap(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "EINVAL", "exclude must be a Connection");
    return -1;
  }
  *out = ((wn_conn *)p)->conn;
  return 0;
}

/* Server wrapper, its topic and its exclude argument (argv[2]). Returns the
 * server, NULL with a pending exception; *rc is 0 or WIRE_EINVAL. */
static wn_server *publish_args(napi_env env, napi_callback_info info, napi_value *argv, char *buf,
                               size_t *len, wire_conn **ex, int *rc) {
  size_t argc = 3;
  wn_server *srv = this_native(env, info, &argc, argv);
  if (!srv)
    return NULL;
  *rc = argc < 2 ? WIRE_EINVAL : topic_arg(env, argv[0], buf, len);
  if ((*rc < 0 && *rc != WIRE_EINVAL) || exclude_arg(env, argc > 2 ? 1 : 0, argv[2], ex) != 0)
    return NULL;
  if (*rc == 0 && !srv->server)
    *rc = 1; /* destroyed: nobody to deliver to */
  return srv;
}

/* server.publish(topic, string | Uint8Array, exclude) -> the number of
 * connections it was queued for, or a negative code (EINVAL, EUTF8, ENOMEM). */
napi_value wn_server_publish(napi_env env, napi_callback_info info) {
  napi_value argv[3] = {NULL, NULL, NULL};
  char buf[WIRE_MAX_TOPIC_LENGTH + 1];
  size_t len = 0;
  wire_conn *ex;
  int rc;
  wn_server *srv = publish_args(env, info, argv, buf, &len, &ex, &rc);
  if (!srv || rc != 0)
    return srv ? int_result(env, rc == 1 ? 0 : rc) : NULL;
  napi_valuetype t;
  NODE_API_CALL(env, napi_typeof(env, argv[1], &t));
  if (t == napi_string) {
    size_t n;
    NODE_API_CALL(env, napi_get_value_string_utf8(env, argv[1], NULL, 0, &n));
    char *s = malloc(n + 1);
    if (!s)
      return int_result(env, WIRE_ENOMEM);
    if (napi_get_value_string_utf8(env, argv[1], s, n + 1, &n) != napi_ok) {
      free(s);
      wn_throw_last_error(env, "napi_get_value_string_utf8");
      return NULL;
    }
    rc = wire_server_publish(srv->server, buf, len, WIRE_MSG_TEXT, s, n, ex);
    free(s);
    return int_result(env, rc);
  }
  bool is = false;
  NODE_API_CALL(env, napi_is_typedarray(env, argv[1], &is));
  if (!is) {
    napi_throw_type_error(env, "EINVAL", "publish() takes a string or a Uint8Array");
    return NULL;
  }
  napi_typedarray_type tt;
  napi_value ab;
  size_t off, n = 0;
  void *data = NULL;
  NODE_API_CALL(env, napi_get_typedarray_info(env, argv[1], &tt, &n, &data, &ab, &off));
  if (tt != napi_uint8_array && tt != napi_int8_array && tt != napi_uint8_clamped_array) {
    napi_throw_type_error(env, "EINVAL", "publish() takes a string or a Uint8Array");
    return NULL;
  }
  rc = wire_server_publish(srv->server, buf, len, WIRE_MSG_BINARY, data ? data : "", n, ex);
  return int_result(env, rc);
}

/* server.publishValue(topic, value, exclude) -> the number of connections it
 * was queued for, or an error info object (EINVAL, ESERIALIZE, ENOMEM). */
napi_value wn_server_publish_value(napi_env env, napi_callback_info info) {
  napi_value argv[3] = {NULL, NULL, NULL};
  char buf[WIRE_MAX_TOPIC_LENGTH + 1];
  size_t len = 0;
  wire_conn *ex;
  int rc;
  wn_server *srv = publish_args(env, info, argv, buf, &len, &ex, &rc);
  if (!srv || rc != 0)
    return !srv ? NULL : rc == 1 ? int_result(env, 0) : wn_error_info(env, rc, NULL);
  wire_error err;
  const wire_value *v = NULL;
  memset(&err, 0, sizeof err);
  wire_doc_reset(srv->scratch);
  rc = wn_js_to_value(srv, srv->scratch, argv[1], &v, &err);
  if (rc == WIRE_EINVAL)
    return NULL; /* a JS exception is pending (a throwing toJSON) */
  if (rc == 0)
    rc = wire_server_publish_value(srv->server, buf, len, v, ex, &err);
  wire_doc_reset(srv->scratch);
  return rc >= 0 ? int_result(env, rc) : wn_error_info(env, rc, &err);
}

/* server.subscriberCount(topic) -> a count, or WIRE_EINVAL for a bad topic. */
napi_value wn_server_subscriber_count(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1] = {NULL};
  char buf[WIRE_MAX_TOPIC_LENGTH + 1];
  wn_server *srv = this_native(env, info, &argc, argv);
  if (!srv)
    return NULL;
  int rc = argc < 1 ? WIRE_EINVAL : topic_arg(env, argv[0], buf, &len);
  if (rc != 0)
    return rc == WIRE_EINVAL ? int_result(env, rc) : NULL;
  if (!srv->server)
    return int_result(env, 0);
  return int_result(env, (int64_t)wire_server_subscriber_count(srv->server, buf, len));
}

/* ---- history ---- */

/* conn.subscribeSince(topic, since) -> a negative code (EINVAL: bad topic,
 * not a string since, or no history for the topic; ECLOSED, ETOOMANY,
 * ENOMEM) or {recovered, reason, position, replayed}. */
napi_value wn_conn_subscribe_since(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0, slen = 0;
  napi_value argv[2] = {NULL, NULL};
  char buf[WIRE_MAX_TOPIC_LENGTH + 1], since[WIRE_POSITION_MAX * 2];
  wn_conn *nc = this_native(env, info, &argc, argv);
  if (!nc)
    return NULL;
  int rc = argc < 2 ? WIRE_EINVAL : topic_arg(env, argv[0], buf, &len);
  if (rc < 0 && rc != WIRE_EINVAL)
    return NULL;
  napi_valuetype t = napi_undefined;
  if (rc == 0)
    NODE_API_CALL(env, napi_typeof(env, argv[1], &t));
  if (rc == 0 && t != napi_string)
    rc = WIRE_EINVAL;
  if (rc == 0) /* longer than any position: cut, and then reported as invalid */
    NODE_API_CALL(env, napi_get_value_string_utf8(env, argv[1], since, sizeof since, &slen));
  if (rc == 0 && !nc->conn)
    rc = WIRE_ECLOSED;
  wire_recovery rec;
  if (rc == 0)
    rc = wire_conn_subscribe_since(nc->conn, buf, len, since, slen, &rec);
  if (rc != 0)
    return int_result(env, rc);
  napi_value out, v;
  NODE_API_CALL(env, napi_create_object(env, &out));
  NODE_API_CALL(env, napi_get_boolean(env, rec.recovered != 0, &v));
  NODE_API_CALL(env, napi_set_named_property(env, out, "recovered", v));
  if (rec.reason)
    NODE_API_CALL(env, napi_create_string_utf8(env, rec.reason, NAPI_AUTO_LENGTH, &v));
  else
    NODE_API_CALL(env, napi_get_null(env, &v));
  NODE_API_CALL(env, napi_set_named_property(env, out, "reason", v));
  NODE_API_CALL(env, napi_create_string_utf8(env, rec.position, NAPI_AUTO_LENGTH, &v));
  NODE_API_CALL(env, napi_set_named_property(env, out, "position", v));
  NODE_API_CALL(env, napi_create_double(env, (double)rec.replayed, &v));
  NODE_API_CALL(env, napi_set_named_property(env, out, "replayed", v));
  return out;
}

/* server.topicHistory(pattern, n, ttlMs) -> 0 or a negative code (EINVAL bad
 * pattern or n, ESTATE the pattern has history already, ENOMEM). */
napi_value wn_server_topic_history(napi_env env, napi_callback_info info) {
  size_t argc = 3, len = 0;
  napi_value argv[3] = {NULL, NULL, NULL};
  char buf[WIRE_MAX_TOPIC_LENGTH + 1];
  wn_server *srv = this_native(env, info, &argc, argv);
  if (!srv)
    return NULL;
  int rc = argc < 3 ? WIRE_EINVAL : topic_arg(env, argv[0], buf, &len);
  if (rc < 0 && rc != WIRE_EINVAL)
    return NULL;
  double n = 0, ttl = 0;
  if (rc == 0 && (napi_get_value_double(env, argv[1], &n) != napi_ok ||
                  napi_get_value_double(env, argv[2], &ttl) != napi_ok || !(n >= 1) ||
                  n > WIRE_MAX_HISTORY || !(ttl >= 0) || ttl > 9e15))
    rc = WIRE_EINVAL;
  if (rc == 0)
    rc = srv->server ? wire_server_topic_history(srv->server, buf, len, (unsigned)n, (uint64_t)ttl)
                     : WIRE_ESTATE;
  return int_result(env, rc);
}
