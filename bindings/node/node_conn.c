/*
 * node_conn.c -- the Connection class: a JS wrapper around one wire_conn, with
 * send/close/pause/resume and the deferred accept/reject of a handshake.
 * The wrapper owns a small wn_conn record; the core connection is borrowed
 * until on_close (or a refused handshake), after which every call answers
 * ECLOSED instead of touching freed memory.
 */
#include "addon.h"

#include <stdlib.h>
#include <string.h>

/* The wn_conn behind `this`; NULL with a pending exception. The connection
 * whose onMessage is running is known without unwrapping. */
static wn_conn *this_conn(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *p = NULL, *data = NULL;
  NODE_API_CALL(env, napi_get_cb_info(env, info, argc, argv, &self, &data));
  wn_addon *addon = data;
  bool same = false;
  if (addon && addon->cur_obj && napi_strict_equals(env, self, addon->cur_obj, &same) == napi_ok &&
      same)
    return addon->cur_nc;
  NODE_API_CALL(env, napi_unwrap(env, self, &p));
  return p;
}

static napi_value int_result(napi_env env, int rc) {
  napi_value out;
  NODE_API_CALL(env, napi_create_int32(env, rc, &out));
  return out;
}

static void conn_finalize(napi_env env, void *data, void *hint) {
  wn_conn *nc = data;
  /* A deferred handshake nobody decided: the core still waits on it. */
  if (nc->conn && nc->deferred) {
    wn_conn_undefer(nc);
    wire_conn_unref(nc->conn);
  }
  free(nc);
}

void wn_conn_defer(wn_conn *nc) {
  wn_server *srv = nc->srv;
  nc->deferred = 1;
  nc->dprev = NULL;
  nc->dnext = srv->deferred;
  if (srv->deferred)
    srv->deferred->dprev = nc;
  srv->deferred = nc;
}

void wn_conn_undefer(wn_conn *nc) {
  if (!nc->deferred)
    return;
  if (nc->dprev)
    nc->dprev->dnext = nc->dnext;
  else
    nc->srv->deferred = nc->dnext;
  if (nc->dnext)
    nc->dnext->dprev = nc->dprev;
  nc->dprev = nc->dnext = NULL;
  nc->deferred = 0;
}

void wn_conn_orphan_deferred(napi_env env, wn_server *srv) {
  while (srv->deferred) {
    wn_conn *nc = srv->deferred;
    wn_conn_undefer(nc);
    nc->conn = NULL; /* freed with the server: no set_data, no unref */
    wn_conn_detach(env, nc);
  }
}

/* new Connection(external): only the addon constructs connections. */
static napi_value conn_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  napi_valuetype t = napi_undefined;
  void *nc = NULL;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc == 1)
    NODE_API_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_external) {
    napi_throw_type_error(env, "EINVAL", "connections are created by the server");
    return NULL;
  }
  NODE_API_CALL(env, napi_get_value_external(env, argv[0], &nc));
  NODE_API_CALL(env, napi_wrap(env, self, nc, conn_finalize, NULL, NULL));
  return self;
}

napi_value wn_conn_new(napi_env env, wn_addon *addon, wn_server *srv, wire_conn *conn) {
  napi_value ctor, ext, obj;
  wn_conn *nc = calloc(1, sizeof *nc);
  if (!nc) {
    wn_throw_wire(env, WIRE_ENOMEM, NULL);
    return NULL;
  }
  nc->conn = conn;
  nc->srv = srv;
  nc->decision = -1;
  if (napi_get_reference_value(env, addon->conn_ctor, &ctor) != napi_ok ||
      napi_create_external(env, nc, NULL, NULL, &ext) != napi_ok ||
      napi_new_instance(env, ctor, 1, &ext, &obj) != napi_ok) {
    free(nc);
    wn_throw_last_error(env, "wn_conn_new");
    return NULL;
  }
  /* Strong until the connection ends, so handlers can find the wrapper. */
  NODE_API_CALL(env, napi_create_reference(env, obj, 1, &nc->self));
  wire_conn_set_data(conn, nc);
  return obj;
}

void wn_conn_detach(napi_env env, wn_conn *nc) {
  if (nc->conn)
    wire_conn_set_data(nc->conn, NULL);
  nc->conn = NULL;
  if (nc->self) {
    napi_delete_reference(env, nc->self);
    nc->self = NULL;
  }
}

/* Bytes of a string argument, in the server's reusable buffer. One copy when
 * it fits the buffer (a result shorter than the room left cannot have been
 * cut); otherwise the length is asked for, the buffer grown and the copy made. */
static const char *string_arg(napi_env env, wn_server *srv, napi_value v, size_t *len) {
  if (srv->strbuf_cap > 4) {
    NODE_API_CALL(env, napi_get_value_string_utf8(env, v, srv->strbuf, srv->strbuf_cap, len));
    /* cap - 1 bytes of room; a cut string fills at least cap - 4 of them (a
     * character that did not fit leaves at most 3 unused). */
    if (*len + 4 < srv->strbuf_cap)
      return srv->strbuf;
  }
  NODE_API_CALL(env, napi_get_value_string_utf8(env, v, NULL, 0, len));
  if (*len + 1 > srv->strbuf_cap) {
    size_t cap = *len + 1 < 256 ? 256 : *len + 1;
    char *p = realloc(srv->strbuf, cap);
    if (!p) {
      wn_throw_wire(env, WIRE_ENOMEM, NULL);
      return NULL;
    }
    srv->strbuf = p;
    srv->strbuf_cap = cap;
  }
  NODE_API_CALL(env, napi_get_value_string_utf8(env, v, srv->strbuf, *len + 1, len));
  return srv->strbuf;
}

/* The answer of a send: rc when it failed, else 0 while the connection stays
 * writable and 1 once it is past sendHighWater, so the JS layer learns both
 * from one call (writable() is a second crossing per message otherwise). */
static napi_value send_result(napi_env env, wn_conn *nc, int rc) {
  if (rc == 0 && nc->conn && !wire_conn_writable(nc->conn))
    rc = 1;
  return int_result(env, rc);
}

/* sendText(string) -> 0 (sent, writable), 1 (sent, past sendHighWater) or a
 * negative WIRE_E* code. */
static napi_value conn_send_text(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1];
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (!nc->conn)
    return int_result(env, WIRE_ECLOSED);
  const char *s = string_arg(env, nc->srv, argv[0], &len);
  return s ? send_result(env, nc, wire_conn_send_text(nc->conn, s, len)) : NULL;
}

/* sendBinary(Buffer | TypedArray) -> 0 (sent, writable), 1 (sent, past
 * sendHighWater) or a negative WIRE_E* code. */
static napi_value conn_send_binary(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1];
  void *data = NULL;
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (!nc->conn)
    return int_result(env, WIRE_ECLOSED);
  bool is = false;
  NODE_API_CALL(env, napi_is_typedarray(env, argv[0], &is));
  if (!is) {
    napi_throw_type_error(env, "EINVAL", "sendBinary() takes a Buffer or Uint8Array");
    return NULL;
  }
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  NODE_API_CALL(env, napi_get_typedarray_info(env, argv[0], &t, &len, &data, &ab, &off));
  if (t != napi_uint8_array && t != napi_int8_array && t != napi_uint8_clamped_array) {
    napi_throw_type_error(env, "EINVAL", "sendBinary() takes a Buffer or Uint8Array");
    return NULL;
  }
  return send_result(env, nc, wire_conn_send_binary(nc->conn, data ? data : "", len));
}

/* The end of sendValue / sendJsonText: when making the value in the scratch
 * doc worked (rc == 0), send it with wire_conn_send_value (response schema,
 * codec); empty the scratch doc; answer undefined or an error info object. */
static napi_value send_converted(napi_env env, wn_conn *nc, int rc, const wire_value *v,
                                 wire_error *err) {
  napi_value out;
  if (rc == 0)
    rc = wire_conn_send_value(nc->conn, v, err);
  wire_doc_reset(nc->srv->scratch);
  if (rc == 0) {
    NODE_API_CALL(env, napi_get_undefined(env, &out));
    return out;
  }
  return wn_error_info(env, rc, err);
}

/* sendValue(value) -> undefined, or an error info object (ESERIALIZE,
 * EVALIDATION against the response schema, ECLOSED, ...). */
static napi_value conn_send_value(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (!nc->conn)
    return wn_error_info(env, WIRE_ECLOSED, NULL);
  wn_server *srv = nc->srv;
  wire_error err;
  const wire_value *v = NULL;
  memset(&err, 0, sizeof err);
  wire_doc_reset(srv->scratch);
  int rc = wn_js_to_value(srv, srv->scratch, argc ? argv[0] : NULL, &v, &err);
  if (rc == WIRE_EINVAL)
    return NULL; /* a JS exception is pending (a throwing toJSON) */
  return send_converted(env, nc, rc, v, &err);
}

/* sendJsonText(text) -> undefined or an error info object: the JSON text
 * JSON.stringify made is decoded by the core and sent with
 * wire_conn_send_value, so the response schema applies. */
static napi_value conn_send_json_text(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1];
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (!nc->conn)
    return wn_error_info(env, WIRE_ECLOSED, NULL);
  wn_server *srv = nc->srv;
  const char *text = string_arg(env, srv, argv[0], &len);
  if (!text)
    return NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  const wire_value *v = NULL;
  wire_doc_reset(srv->scratch);
  int rc = wire_decode(srv->scratch, WIRE_CODEC_JSON, text, len, 0, &v, &err);
  return send_converted(env, nc, rc, v, &err);
}

/* close(code, reason) -> 0 or a negative WIRE_E* code. */
static napi_value conn_close(napi_env env, napi_callback_info info) {
  size_t argc = 2, len = 0;
  napi_value argv[2];
  int32_t code = 1000;
  const char *reason = "";
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (!nc->conn)
    return int_result(env, WIRE_ECLOSED);
  if (argc >= 1)
    NODE_API_CALL(env, napi_get_value_int32(env, argv[0], &code));
  if (argc >= 2 && !(reason = string_arg(env, nc->srv, argv[1], &len)))
    return NULL;
  return int_result(env, wire_conn_close(nc->conn, code, reason, len));
}

static napi_value conn_pause(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  if (nc->in_handler) /* metrics: the handler's promise is pending; time it until resume */
    nc->timing_paused = 1;
  return int_result(env, nc->conn ? wire_conn_pause(nc->conn) : WIRE_ECLOSED);
}

static napi_value conn_resume(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  wn_observe_resumed(nc); /* metrics */
  return int_result(env, nc->conn ? wire_conn_resume(nc->conn) : WIRE_ECLOSED);
}

/* Finish the handshake. Inside on_connect (a promise that settled while its
 * promise jobs ran) the decision is only recorded: on_connect returns it. */
static int decide(napi_env env, wn_conn *nc, int status) {
  if (!nc->conn)
    return WIRE_ECLOSED;
  if (nc->in_connect) {
    nc->decision = status;
    return 0;
  }
  if (!nc->deferred)
    return WIRE_ESTATE;
  wire_conn *conn = nc->conn;
  int rc = status == 0 ? wire_conn_accept(conn) : wire_conn_reject(conn, status, NULL);
  wn_conn_undefer(nc);
  /* A refused handshake (or a peer that left) never reaches on_close: forget
   * the connection while our reference still keeps the handle valid. */
  if (status != 0 || rc != 0)
    wn_conn_detach(env, nc);
  wire_conn_unref(conn);
  return rc;
}

static napi_value conn_accept(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  return nc ? int_result(env, decide(env, nc, 0)) : NULL;
}

/* reject(status): 400..599. */
static napi_value conn_reject(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t status = 0;
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (argc >= 1)
    NODE_API_CALL(env, napi_get_value_int32(env, argv[0], &status));
  if (status < 400 || status > 599) {
    napi_throw_range_error(env, "EINVAL", "a rejection status is 400..599");
    return NULL;
  }
  return int_result(env, decide(env, nc, status));
}

/* Copy the string property `name` of obj (if it is one) into buf. */
static void copy_prop(napi_env env, napi_value obj, const char *name, char *buf, size_t cap) {
  napi_value v;
  napi_valuetype t;
  size_t len;
  if (napi_get_named_property(env, obj, name, &v) == napi_ok &&
      napi_typeof(env, v, &t) == napi_ok && t == napi_string)
    napi_get_value_string_utf8(env, v, buf, cap, &len);
}

/* A wire_error from a JS error or info object: message, path, keyword,
 * schemaPath; the code named by its `code` property (0 when none). */
static void error_from_js(napi_env env, napi_value obj, wire_error *err) {
  char name[32] = "";
  memset(err, 0, sizeof *err);
  napi_valuetype t = napi_undefined;
  if (!obj || napi_typeof(env, obj, &t) != napi_ok || t != napi_object)
    return;
  copy_prop(env, obj, "message", err->message, sizeof err->message);
  copy_prop(env, obj, "path", err->path, sizeof err->path);
  copy_prop(env, obj, "keyword", err->keyword, sizeof err->keyword);
  copy_prop(env, obj, "schemaPath", err->schema_path, sizeof err->schema_path);
  copy_prop(env, obj, "code", name, sizeof name);
#define WN_CODE_OF(cname, num, cat, msg)                                                           \
  if (strcmp(name, #cname) == 0)                                                                   \
    err->code = num;
  WIRE_ERRNO_MAP(WN_CODE_OF)
#undef WN_CODE_OF
}

/* fail(error?) -> 1 (onError handled it), 0 (closing with 1011) or a negative
 * code: report a failure of this process's code; onError(conn, error) gets
 * the error itself. */
static napi_value conn_fail(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (!nc->conn)
    return int_result(env, WIRE_ECLOSED);
  wire_error err;
  napi_valuetype t = napi_undefined;
  if (argc >= 1)
    NODE_API_CALL(env, napi_typeof(env, argv[0], &t));
  error_from_js(env, argc >= 1 ? argv[0] : NULL, &err);
  err.code = WIRE_EHANDLER;
  napi_value outer = nc->failing;
  nc->failing = t == napi_undefined || t == napi_null ? NULL : argv[0];
  int rc = wire_conn_fail(nc->conn, &err);
  nc->failing = outer;
  return int_result(env, rc);
}

/* invalid(error) -> 1 (onError handled it), 0 (the invalid-message policy
 * acted) or a negative code (EINVAL: error.code is not EDESERIALIZE, EDEPTH,
 * ECODEC, EVALIDATION or EUNKNOWN_MESSAGE). For a message a JS codec
 * refused; onError(conn, error) gets the error itself. */
static napi_value conn_invalid(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  if (!nc->conn)
    return int_result(env, WIRE_ECLOSED);
  wire_error err;
  error_from_js(env, argc >= 1 ? argv[0] : NULL, &err);
  napi_value outer = nc->failing;
  nc->failing = argc >= 1 ? argv[0] : NULL;
  int rc = wire_conn_invalid(nc->conn, &err);
  nc->failing = outer;
  return int_result(env, rc);
}

/* hold() -> 0 or ECLOSED: the JS layer keeps the message it was given in its
 * own inbox; the core stops reading at maxQueuedMessages. */
static napi_value conn_hold(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  return int_result(env, nc->conn ? wire_conn_hold(nc->conn) : WIRE_ECLOSED);
}

/* consumed(n = 1) -> 0, EINVAL (more than held) or ECLOSED. */
static napi_value conn_consumed(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  double n = 1;
  wn_conn *nc = this_conn(env, info, &argc, argv);
  if (!nc)
    return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 1)
    NODE_API_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_undefined &&
      (t != napi_number || napi_get_value_double(env, argv[0], &n) != napi_ok || n < 0 ||
       n > 4294967295.0)) {
    napi_throw_range_error(env, "EINVAL", "consumed(n) takes a count >= 0");
    return NULL;
  }
  return int_result(env, nc->conn ? wire_conn_consumed(nc->conn, (size_t)n) : WIRE_ECLOSED);
}

/* queued() -> received messages waiting (paused or held). */
static napi_value conn_queued(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  NODE_API_CALL(env,
                napi_create_double(env, nc->conn ? (double)wire_conn_queued(nc->conn) : 0, &out));
  return out;
}

/* writable() -> open and at or below sendHighWater; false promises one
 * onDrain(conn) unless the connection closes first. */
static napi_value conn_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  NODE_API_CALL(env, napi_get_boolean(env, nc->conn && wire_conn_writable(nc->conn), &out));
  return out;
}

static napi_value conn_buffered(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  NODE_API_CALL(env, napi_create_double(
                         env, nc->conn ? (double)wire_conn_buffered_amount(nc->conn) : 0, &out));
  return out;
}

static napi_value conn_is_open(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  NODE_API_CALL(env, napi_get_boolean(env, nc->conn && wire_conn_is_open(nc->conn), &out));
  return out;
}

static napi_value conn_id(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_conn *nc = this_conn(env, info, &argc, NULL);
  if (!nc)
    return NULL;
  NODE_API_CALL(env, napi_create_double(env, nc->conn ? (double)wire_conn_id(nc->conn) : -1, &out));
  return out;
}

napi_value wn_conn_class(napi_env env, wn_addon *addon) {
  napi_value cls;
  const napi_property_descriptor props[] = {
      {"sendText", NULL, conn_send_text, NULL, NULL, NULL, napi_default, addon},
      {"sendBinary", NULL, conn_send_binary, NULL, NULL, NULL, napi_default, addon},
      {"sendValue", NULL, conn_send_value, NULL, NULL, NULL, napi_default, addon},
      {"sendJsonText", NULL, conn_send_json_text, NULL, NULL, NULL, napi_default, addon},
      {"close", NULL, conn_close, NULL, NULL, NULL, napi_default, addon},
      {"pause", NULL, conn_pause, NULL, NULL, NULL, napi_default, addon},
      {"resume", NULL, conn_resume, NULL, NULL, NULL, napi_default, addon},
      {"accept", NULL, conn_accept, NULL, NULL, NULL, napi_default, addon},
      {"reject", NULL, conn_reject, NULL, NULL, NULL, napi_default, addon},
      {"bufferedAmount", NULL, conn_buffered, NULL, NULL, NULL, napi_default, addon},
      {"isOpen", NULL, conn_is_open, NULL, NULL, NULL, napi_default, addon},
      {"id", NULL, conn_id, NULL, NULL, NULL, napi_default, addon},
      {"fail", NULL, conn_fail, NULL, NULL, NULL, napi_default, addon},
      {"invalid", NULL, conn_invalid, NULL, NULL, NULL, napi_default, addon},
      {"hold", NULL, conn_hold, NULL, NULL, NULL, napi_default, addon},
      {"consumed", NULL, conn_consumed, NULL, NULL, NULL, napi_default, addon},
      {"queued", NULL, conn_queued, NULL, NULL, NULL, napi_default, addon},
      {"writable", NULL, conn_writable, NULL, NULL, NULL, napi_default, addon},
      {"subscribe", NULL, wn_conn_subscribe, NULL, NULL, NULL, napi_default, NULL},
      {"subscribeSince", NULL, wn_conn_subscribe_since, NULL, NULL, NULL, napi_default, NULL},
      {"unsubscribe", NULL, wn_conn_unsubscribe, NULL, NULL, NULL, napi_default, NULL},
      {"topics", NULL, wn_conn_topics, NULL, NULL, NULL, napi_default, NULL},
  };
  NODE_API_CALL(env, napi_define_class(env, "Connection", NAPI_AUTO_LENGTH, conn_ctor, NULL,
                                       sizeof props / sizeof *props, props, &cls));
  return cls;
}
