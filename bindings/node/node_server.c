/*
 * node_server.c -- the Server class (a wire_server attached to Node's own libuv
 * loop), the core's callbacks forwarded into JavaScript, and the module's
 * initialisation with per-instance data. Callbacks are plain synchronous
 * calls on the main thread, made through napi_make_callback so promise jobs
 * and process.nextTick callbacks run when each call returns.
 */
#include "addon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wn_strings {
  char **items;
  size_t n;
} wn_strings;

/* What an endpoint keeps for the core: option strings stay allocated for
 * the endpoint's lifetime in case the core keeps pointers to them. */
typedef struct wn_endpoint_store {
  wn_endpoint ep;
  wn_strings schemas, protocols, origins;
  char *response_schema;
} wn_endpoint_store;

/* metrics: the largest message whose handler timing may start where the
 * previous handler of its batch ended (see on_message). */
#define WN_CHAIN_MAX 16384

static wn_addon *addon_of(napi_env env) {
  void *p = NULL;
  napi_get_instance_data(env, &p);
  return p;
}

/* wn_call with the function's value. */
static napi_value call_value(wn_server *srv, napi_value f, size_t argc, const napi_value *argv) {
  napi_env env = srv->env;
  napi_value recv, res = NULL;
  napi_status st;
  srv->t_last = 0; /* metrics: what runs now is no handler's time */
  if (srv->batch == WN_BATCH_OPEN) {
    srv->calls++;
    st = napi_call_function(env, srv->batch_recv, f, argc, argv, &res);
    srv->calls--;
  } else {
    if (napi_get_reference_value(env, srv->self, &recv) != napi_ok || !recv)
      return NULL;
    srv->calls++;
    st = napi_make_callback(env, srv->actx, recv, f, argc, argv, &res);
    srv->calls--;
  }
  if (st != napi_ok) {
    /* The JS layer catches user errors itself; whatever escapes is a bug
     * and is reported like any uncaught exception. */
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok && exc)
      napi_fatal_exception(env, exc);
    return NULL;
  }
  return res;
}

napi_value wn_call(wn_server *srv, napi_ref fn, size_t argc, const napi_value *argv) {
  napi_value f;
  if (srv->tearing_down || napi_get_reference_value(srv->env, fn, &f) != napi_ok)
    return NULL;
  return call_value(srv, f, argc, argv);
}

/* ---- callback batches ------------------------------------------------------ */

/* The core's batch hook. A batch (one read, one timer ...) begins with no
 * scope; its first onMessage takes napi_make_callback (a lone message, as in
 * ping-pong, costs no more than before), the second opens one callback scope
 * (batch_join) that every later call into JS shares, and the batch's end
 * closes it, running the promise jobs and nextTicks of those handlers at
 * once, as a socket's 'data' event does. The end comes before the core
 * writes the batch's output, so replies made by those jobs go out in the
 * same write. */
static void on_batch(wire_server *server, int begin, void *user_data) {
  wn_server *srv = user_data;
  int was = srv->batch;
  srv->batch = begin ? WN_BATCH_BEGUN : WN_BATCH_NONE;
  srv->t_last = 0;
  srv->batch_ep = NULL;
  srv->batch_nc = NULL;
  if (was == WN_BATCH_OPEN) /* callbacks the closing causes use napi_make_callback */
    napi_close_callback_scope(srv->env, srv->batch_cs);
  if (was == WN_BATCH_OPEN || was == WN_BATCH_HANDLES)
    napi_close_handle_scope(srv->env, srv->batch_hs);
}

/* A handler left a pending promise (it paused its connection): run the
 * promise jobs now, as a call of its own would, so a promise that settles
 * at once resumes the connection before the next message arrives instead
 * of queueing the rest of the read; the batch's later calls take
 * napi_make_callback each (async handlers, as before the batch scope).
 * Only outside any call into JS (closing the scope there would run jobs
 * under running JavaScript). */
static void batch_settle(wn_server *srv) {
  if (srv->batch != WN_BATCH_OPEN || srv->calls != 0)
    return;
  srv->batch = WN_BATCH_HANDLES;
  napi_close_callback_scope(srv->env, srv->batch_cs);
}

/* The batch's second onMessage opens its scopes; called before the caller
 * opens its own handle scope, so the batch's stays below it, and only with
 * no call into JS running (a delivery nested in one keeps the plain way, or
 * the scopes would close out of order). Failing leaves WN_BATCH_SEEN: calls
 * then take napi_make_callback each. */
static void batch_join(wn_server *srv) {
  napi_env env = srv->env;
  if (srv->batch == WN_BATCH_BEGUN) { /* one message alone takes napi_make_callback */
    srv->batch = WN_BATCH_SEEN;
    return;
  }
  if (srv->batch != WN_BATCH_SEEN || srv->calls != 0 || srv->tearing_down ||
      napi_open_handle_scope(env, &srv->batch_hs) != napi_ok)
    return;
  if (napi_get_reference_value(env, srv->self, &srv->batch_recv) != napi_ok || !srv->batch_recv ||
      napi_open_callback_scope(env, srv->batch_recv, srv->actx, &srv->batch_cs) != napi_ok) {
    napi_close_handle_scope(env, srv->batch_hs);
    return;
  }
  srv->batch = WN_BATCH_OPEN;
}

/* In a batch with its handle scope open: the onMessage function and the
 * connection's wrapper of this message as values in that scope, kept while
 * the next messages are of the same endpoint and connection (the usual
 * read), so each costs one reference lookup per batch instead of one per
 * message. Called before the caller opens its own handle scope. The cached
 * wrapper stays reachable, so its record cannot be freed and reused. */
static void batch_cache(wn_server *srv, wn_endpoint *ep, wn_conn *nc) {
  if (srv->batch != WN_BATCH_OPEN && srv->batch != WN_BATCH_HANDLES)
    return;
  if (srv->batch_ep != ep)
    srv->batch_ep =
        napi_get_reference_value(srv->env, ep->on_message, &srv->batch_fn) == napi_ok ? ep : NULL;
  if (nc != NULL && nc->self != NULL && srv->batch_nc != nc)
    srv->batch_nc = napi_get_reference_value(srv->env, nc->self, &srv->batch_conn) == napi_ok &&
                            srv->batch_conn != NULL
                        ? nc
                        : NULL;
}

static napi_value conn_object(napi_env env, wire_conn *conn) {
  wn_conn *nc = wire_conn_get_data(conn);
  napi_value obj = NULL;
  if (nc && nc->self && nc == nc->srv->batch_nc)
    return nc->srv->batch_conn;
  if (!nc || !nc->self || napi_get_reference_value(env, nc->self, &obj) != napi_ok)
    napi_get_undefined(env, &obj);
  return obj;
}

/* ---- the core's callbacks ------------------------------------------------ */

static int on_connect(wire_conn *conn, const wire_request *req, void *user_data) {
  wn_endpoint *ep = user_data;
  napi_env env = ep->srv->env;
  napi_handle_scope scope;
  int rc = 500;
  if (napi_open_handle_scope(env, &scope) != napi_ok)
    return 500;
  napi_value argv[2];
  argv[0] = wn_conn_new(env, addon_of(env), ep->srv, conn);
  argv[1] = argv[0] ? wn_request_to_js(env, req) : NULL;
  wn_conn *nc = wire_conn_get_data(conn);
  if (argv[1]) {
    nc->in_connect = 1;
    napi_value res = wn_call(ep->srv, ep->on_connect, 2, argv);
    nc->in_connect = 0;
    int32_t r = 500;
    if (res && napi_get_value_int32(env, res, &r) != napi_ok)
      r = 500;
    rc = r;
    /* A promise that settled while its jobs ran decided already. */
    if (rc == WIRE_CONNECT_DEFER && nc->decision >= 0)
      rc = nc->decision;
  } else {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok && exc)
      napi_fatal_exception(env, exc);
  }
  if (nc) {
    if (rc == WIRE_CONNECT_DEFER) {
      wn_conn_defer(nc);
      wire_conn_ref(conn);
    } else if (rc != 0) {
      wn_conn_detach(env, nc);
    }
  }
  napi_close_handle_scope(env, scope);
  return rc;
}

static void on_message(wire_conn *conn, const wire_message *msg, void *user_data) {
  wn_endpoint *ep = user_data;
  napi_env env = ep->srv->env;
  napi_handle_scope scope;
  batch_join(ep->srv);
  batch_cache(ep->srv, ep, wire_conn_get_data(conn));
  if (napi_open_handle_scope(env, &scope) != napi_ok)
    return;
  napi_value argv[5];
  int ok = napi_create_int32(env, msg->kind, &argv[1]) == napi_ok &&
           napi_create_int32(env, msg->handler, &argv[4]) == napi_ok;
  argv[0] = conn_object(env, conn);
  /* Payload and value are copied into JS, so they outlive this callback.
   * A JSON value goes as its (already validated) text when JSON.parse gives
   * the same result, which is much cheaper than building it property by
   * property; values with integers beyond 2^53 are built here, as BigInts. */
  if (ok && msg->value && ep->codec == WIRE_CODEC_JSON && !wn_value_needs_bigint(msg->value)) {
    ok = napi_create_string_utf8(env, (const char *)msg->data, msg->len, &argv[2]) == napi_ok &&
         napi_get_undefined(env, &argv[3]) == napi_ok;
  } else if (ok && msg->value) {
    ok = napi_get_undefined(env, &argv[2]) == napi_ok &&
         (argv[3] = wn_value_to_js(env, msg->value)) != NULL;
  } else if (ok) {
    const char *data = msg->data ? (const char *)msg->data : "";
    ok = (msg->kind == WIRE_MSG_TEXT
              ? napi_create_string_utf8(env, data, msg->len, &argv[2])
              : napi_create_buffer_copy(env, msg->len, data, NULL, &argv[2])) == napi_ok &&
         napi_get_undefined(env, &argv[3]) == napi_ok;
  }
  if (ok) {
    /* Nested deliveries (a send that reaches another connection of this
     * process at once) restore the outer connection afterwards. */
    wn_addon *addon = addon_of(env);
    napi_value prev_obj = addon->cur_obj;
    wn_conn *prev_nc = addon->cur_nc;
    wn_conn *nc = wire_conn_get_data(conn);
    addon->cur_obj = nc && nc->self ? argv[0] : NULL;
    addon->cur_nc = nc;
    /* metrics: the handler's time. In a batch of small messages it starts
     * where the previous handler ended (one clock read per message): the
     * core's work between the two is far below the first histogram bucket. */
    wn_server *srv = ep->srv;
    double t0 = srv->t_last > 0 && msg->len <= WN_CHAIN_MAX ? srv->t_last : wn_now();
    if (nc) {
      nc->t_handler = t0;
      nc->timing_paused = 0;
      nc->in_handler = 1;
    }
    if (srv->batch_ep == ep && !srv->tearing_down)
      call_value(srv, srv->batch_fn, 5, argv);
    else
      wn_call(srv, ep->on_message, 5, argv);
    if (nc)
      nc->in_handler = 0;
    double t1 = wn_now();
    if (nc == NULL || !nc->timing_paused)
      wire_server_observe(wire_conn_server(conn), wire_conn_endpoint(conn), t1 - t0);
    srv->t_last = srv->batch == WN_BATCH_SEEN || srv->batch == WN_BATCH_OPEN ? t1 : 0;
    if (nc && nc->timing_paused) {
      srv->t_last = 0;
      batch_settle(srv);
    }
    addon->cur_obj = prev_obj;
    addon->cur_nc = prev_nc;
  } else {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok && exc)
      napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static void on_close(wire_conn *conn, int code, const char *reason, size_t reason_len,
                     void *user_data) {
  wn_endpoint *ep = user_data;
  napi_env env = ep->srv->env;
  napi_handle_scope scope;
  wn_conn *nc = wire_conn_get_data(conn);
  if (napi_open_handle_scope(env, &scope) != napi_ok)
    return;
  napi_value argv[3];
  argv[0] = conn_object(env, conn);
  if (napi_create_int32(env, code, &argv[1]) == napi_ok &&
      napi_create_string_utf8(env, reason ? reason : "", reason ? reason_len : 0, &argv[2]) ==
          napi_ok)
    wn_call(ep->srv, ep->on_close, 3, argv);
  /* From here on the core frees the connection: the wrapper forgets it. */
  if (nc)
    wn_conn_detach(env, nc);
  napi_close_handle_scope(env, scope);
}

static int on_error(wire_conn *conn, const wire_error *err, void *user_data) {
  wn_endpoint *ep = user_data;
  napi_env env = ep->srv->env;
  napi_handle_scope scope;
  bool handled = false;
  if (napi_open_handle_scope(env, &scope) != napi_ok)
    return 0;
  napi_value argv[2];
  wn_conn *nc = wire_conn_get_data(conn);
  argv[0] = conn_object(env, conn);
  /* conn.fail(error) / conn.invalid(error): onError gets that error itself. */
  argv[1] = nc && nc->failing ? nc->failing : wn_error_info(env, err->code, err);
  if (argv[1]) {
    napi_value res = wn_call(ep->srv, ep->on_error, 2, argv);
    if (res)
      napi_get_value_bool(env, res, &handled);
  }
  napi_close_handle_scope(env, scope);
  return handled;
}

/* The send queue fell back to the high-water mark after writable() said
 * false: onDrain(conn) lets the JS layer wake its waiting senders. */
static void on_drain(wire_conn *conn, void *user_data) {
  wn_endpoint *ep = user_data;
  napi_env env = ep->srv->env;
  napi_handle_scope scope;
  if (!ep->on_drain || napi_open_handle_scope(env, &scope) != napi_ok)
    return;
  napi_value argv[1];
  argv[0] = conn_object(env, conn);
  wn_call(ep->srv, ep->on_drain, 1, argv);
  napi_close_handle_scope(env, scope);
}

/* ---- option parsing ---------------------------------------------------- */

/* obj[name] as an unsigned number; `def` when absent or undefined. */
static int get_uint(napi_env env, napi_value obj, const char *name, double def, double *out) {
  napi_value v;
  napi_valuetype t;
  *out = def;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok)
    return -1;
  if (t == napi_undefined || t == napi_null)
    return 0;
  if (t != napi_number || napi_get_value_double(env, v, out) != napi_ok || *out < 0) {
    char msg[96];
    snprintf(msg, sizeof msg, "option %s must be a non-negative number", name);
    napi_throw_type_error(env, "EINVAL", msg);
    return -1;
  }
  return 0;
}

static char *dup_js_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
    return NULL;
  char *s = malloc(len + 1);
  if (s)
    napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* obj[name] as an array of strings (absent: none). */
static int get_strings(napi_env env, napi_value obj, const char *name, wn_strings *out) {
  napi_value arr;
  napi_valuetype t;
  bool is = false;
  uint32_t n = 0;
  if (napi_get_named_property(env, obj, name, &arr) != napi_ok ||
      napi_typeof(env, arr, &t) != napi_ok)
    return -1;
  if (t == napi_undefined || t == napi_null)
    return 0;
  if (napi_is_array(env, arr, &is) != napi_ok || !is ||
      napi_get_array_length(env, arr, &n) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected an array of strings");
    return -1;
  }
  out->items = calloc(n ? n : 1, sizeof *out->items);
  if (!out->items)
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, arr, i, &item) != napi_ok || napi_typeof(env, item, &t) != napi_ok ||
        t != napi_string) {
      napi_throw_type_error(env, "EINVAL", "expected an array of strings");
      return -1;
    }
    if (!(out->items[out->n++] = dup_js_string(env, item)))
      return -1;
  }
  return 0;
}

static void free_strings(wn_strings *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->items[i]);
  free(s->items);
}

static int get_fn_ref(napi_env env, napi_value obj, const char *name, napi_ref *out) {
  napi_value fn;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &fn) != napi_ok ||
      napi_typeof(env, fn, &t) != napi_ok)
    return -1;
  if (t != napi_function) {
    napi_throw_type_error(env, "EINVAL", "endpoint handlers must be functions");
    return -1;
  }
  return napi_create_reference(env, fn, 1, out) == napi_ok ? 0 : -1;
}

/* Like get_fn_ref, for a handler the JS layer may leave out (*out stays NULL). */
static int get_optional_fn_ref(napi_env env, napi_value obj, const char *name, napi_ref *out) {
  napi_value fn;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &fn) != napi_ok ||
      napi_typeof(env, fn, &t) != napi_ok)
    return -1;
  if (t == napi_undefined || t == napi_null)
    return 0;
  return get_fn_ref(env, obj, name, out);
}

static void free_endpoint(napi_env env, wn_endpoint_store *st) {
  napi_ref refs[] = {st->ep.on_connect, st->ep.on_message, st->ep.on_close, st->ep.on_error,
                     st->ep.on_drain};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
    if (refs[i])
      napi_delete_reference(env, refs[i]);
  free_strings(&st->schemas);
  free_strings(&st->protocols);
  free_strings(&st->origins);
  free(st->response_schema);
  free(st);
}

/* permessage-deflate: compression (the core's mode number), compressionThreshold,
 * compressionWindowBits, as lib/app.js prepared them. Returns 0 or -1. */
static int parse_compression(napi_env env, napi_value o, wire_endpoint_options *opts) {
  double mode, threshold, bits;
  if (get_uint(env, o, "compression", 0, &mode) ||
      get_uint(env, o, "compressionThreshold", 0, &threshold) ||
      get_uint(env, o, "compressionWindowBits", 0, &bits))
    return -1;
  opts->compression = (wire_compression)(mode > 255.0 ? 255u : (unsigned)mode);
  opts->compression_threshold = (size_t)threshold;
  opts->compression_window_bits = bits > 255.0 ? 255u : (unsigned)bits;
  return 0;
}

/* Read the endpoint options the JS layer prepared (see lib/app.js). */
static int parse_endpoint_options(napi_env env, napi_value o, wn_endpoint_store *st,
                                  wire_endpoint_options *opts) {
  double codec, policy, max_msg, max_bp, idle, pong, flags, max_queued, high_water, send_to,
      max_frags, msg_to;
  double msg_rate, msg_burst, byte_rate, byte_burst, rate_action; /* client limits */
  napi_value rs;
  napi_valuetype t;
  if (get_uint(env, o, "codec", 0, &codec) || get_uint(env, o, "invalidPolicy", 0, &policy) ||
      get_uint(env, o, "maxPayload", 0, &max_msg) ||
      get_uint(env, o, "maxBackpressure", 0, &max_bp) ||
      get_uint(env, o, "idleTimeout", 0, &idle) || get_uint(env, o, "pongTimeout", 0, &pong) ||
      get_uint(env, o, "schemaFlags", 0, &flags) ||
      get_uint(env, o, "maxQueuedMessages", 0, &max_queued) ||
      get_uint(env, o, "sendHighWater", 0, &high_water) ||
      get_uint(env, o, "sendTimeout", 0, &send_to) ||
      get_uint(env, o, "maxMessageFragments", 0, &max_frags) ||
      get_uint(env, o, "messageRate", 0, &msg_rate) ||
      get_uint(env, o, "messageBurst", 0, &msg_burst) ||
      get_uint(env, o, "byteRate", 0, &byte_rate) ||
      get_uint(env, o, "byteBurst", 0, &byte_burst) ||
      get_uint(env, o, "rateLimitAction", 0, &rate_action) ||
      get_uint(env, o, "messageTimeout", 0, &msg_to) ||
      get_strings(env, o, "messageSchemas", &st->schemas) ||
      get_strings(env, o, "subprotocols", &st->protocols) ||
      get_strings(env, o, "allowedOrigins", &st->origins))
    return -1;
  if (napi_get_named_property(env, o, "responseSchema", &rs) != napi_ok ||
      napi_typeof(env, rs, &t) != napi_ok)
    return -1;
  if (t == napi_string && !(st->response_schema = dup_js_string(env, rs)))
    return -1;
  opts->codec = (wire_codec)codec;
  st->ep.codec = opts->codec;
  opts->invalid_policy = (wire_invalid_policy)policy;
  opts->max_message_size = (size_t)max_msg;
  opts->max_backpressure = (size_t)max_bp;
  opts->idle_timeout_ms = idle > 4294967295.0 ? 4294967295u : (unsigned)idle;
  opts->pong_timeout_ms = pong > 4294967295.0 ? 4294967295u : (unsigned)pong;
  opts->schema_flags = (unsigned)flags;
  opts->max_queued_messages = (size_t)max_queued;
  opts->send_high_water = (size_t)high_water;
  opts->send_timeout_ms = send_to > 4294967295.0 ? 4294967295u : (unsigned)send_to;
  opts->max_message_fragments = max_frags > 4294967295.0 ? 4294967295u : (unsigned)max_frags;
  if (parse_compression(env, o, opts) != 0) /* permessage-deflate */
    return -1;
  opts->message_rate = msg_rate > 4294967295.0 ? 4294967295u : (unsigned)msg_rate;
  opts->message_burst = msg_burst > 4294967295.0 ? 4294967295u : (unsigned)msg_burst;
  opts->byte_rate = byte_rate > 1099511627776.0 ? (size_t)1 << 40 : (size_t)byte_rate;
  opts->byte_burst = byte_burst > 1099511627776.0 ? (size_t)1 << 40 : (size_t)byte_burst;
  opts->rate_limit_action = rate_action > 1 ? 2 : (int)rate_action; /* 2: EINVAL */
  opts->message_timeout_ms = msg_to > 4294967295.0 ? 4294967295u : (unsigned)msg_to;
  opts->message_schemas = (const char *const *)st->schemas.items;
  opts->n_message_schemas = st->schemas.n;
  opts->response_schema = st->response_schema;
  opts->subprotocols = (const char *const *)st->protocols.items;
  opts->n_subprotocols = st->protocols.n;
  opts->allowed_origins = (const char *const *)st->origins.items;
  opts->n_allowed_origins = st->origins.n;
  return 0;
}

/* ---- the Server class ---------------------------------------------------- */

static void free_server(napi_env env, wn_server *srv) {
  /* A server still attached to the loop cannot be freed (the process is
   * exiting with it open); its memory goes with the process. */
  if (srv->server && wire_server_free(srv->server) != 0)
    return;
  srv->server = NULL;
  wn_conn_orphan_deferred(env, srv);
  while (srv->endpoints) {
    wn_endpoint *next = srv->endpoints->next;
    free_endpoint(env, (wn_endpoint_store *)srv->endpoints);
    srv->endpoints = next;
  }
  if (srv->scratch)
    wire_doc_free(srv->scratch);
  srv->scratch = NULL;
  if (srv->broker_cb) { /* node_scaling.c */
    napi_delete_reference(env, srv->broker_cb);
    srv->broker_cb = NULL;
  }
  if (srv->log_cb) { /* node_metrics.c */
    napi_delete_reference(env, srv->log_cb);
    srv->log_cb = NULL;
  }
  free(srv->strbuf);
  srv->strbuf = NULL;
}

static void server_finalize(napi_env env, void *data, void *hint) {
  wn_server *srv = data;
  free_server(env, srv);
  if (srv->actx)
    napi_async_destroy(env, srv->actx);
  if (!srv->server)
    free(srv);
}

/* new Server({ maxConnections, maxHandshakeSize, handshakeTimeout,
 * maxConnectionsPerAddress, handshakeRate, handshakeBurst, trustedProxies,
 * maxBufferedBytes, maxTopicsPerConn }) */
static napi_value server_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self, name;
  napi_valuetype t = napi_undefined;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  wire_server_options opts;
  memset(&opts, 0, sizeof opts);
  if (argc >= 1)
    NODE_API_CALL(env, napi_typeof(env, argv[0], &t));
  wn_strings proxies = {0}; /* client limits */
  if (t == napi_object) {
    double maxc, maxh, hto, per_addr, hs_rate, hs_burst, maxb, max_topics;
    if (get_uint(env, argv[0], "maxConnections", 0, &maxc) ||
        get_uint(env, argv[0], "maxHandshakeSize", 0, &maxh) ||
        get_uint(env, argv[0], "handshakeTimeout", 0, &hto) ||
        get_uint(env, argv[0], "maxConnectionsPerAddress", 0, &per_addr) ||
        get_uint(env, argv[0], "handshakeRate", 0, &hs_rate) ||
        get_uint(env, argv[0], "handshakeBurst", 0, &hs_burst) ||
        get_uint(env, argv[0], "maxBufferedBytes", 0, &maxb) ||
        get_uint(env, argv[0], "maxTopicsPerConn", 0, &max_topics) ||
        get_strings(env, argv[0], "trustedProxies", &proxies)) {
      free_strings(&proxies);
      return NULL;
    }
    /* memory budget: Infinity (or anything past size_t) is no budget */
    opts.max_buffered_bytes = maxb >= 18446744073709551615.0 ? SIZE_MAX : (size_t)maxb;
    opts.max_connections = (unsigned)maxc;
    opts.max_handshake_size = (size_t)maxh;
    opts.handshake_timeout_ms = (unsigned)hto;
    opts.max_connections_per_address = per_addr > 4294967295.0 ? 4294967295u : (unsigned)per_addr;
    opts.handshake_rate = hs_rate > 4294967295.0 ? 4294967295u : (unsigned)hs_rate;
    opts.handshake_burst = hs_burst > 4294967295.0 ? 4294967295u : (unsigned)hs_burst;
    opts.max_topics_per_conn = max_topics > 4294967295.0 ? 4294967295u : (unsigned)max_topics;
    opts.trusted_proxies = (const char *const *)proxies.items;
    opts.n_trusted_proxies = proxies.n;
  }
  struct uv_loop_s *loop;
  NODE_API_CALL(env, napi_get_uv_event_loop(env, &loop));
  opts.uv_loop = loop;
  wn_server *srv = calloc(1, sizeof *srv);
  if (!srv) {
    free_strings(&proxies);
    wn_throw_wire(env, WIRE_ENOMEM, NULL);
    return NULL;
  }
  srv->env = env;
  int rc = wire_server_new(&opts, &srv->server);
  free_strings(&proxies); /* parsed by the core */
  if (rc == 0 && wire_doc_new(&srv->scratch) != 0)
    rc = WIRE_ENOMEM;
  if (rc != 0) {
    if (srv->server)
      wire_server_free(srv->server);
    free(srv);
    wn_throw_wire(env, rc, NULL);
    return NULL;
  }
  NODE_API_CALL(env, napi_create_string_utf8(env, "wirecore.Server", NAPI_AUTO_LENGTH, &name));
  NODE_API_CALL(env, napi_async_init(env, self, name, &srv->actx));
  NODE_API_CALL(env, napi_wrap(env, self, srv, server_finalize, NULL, NULL));
  NODE_API_CALL(env, napi_create_reference(env, self, 0, &srv->self));
  wire_server_set_batch_hook(srv->server, on_batch, srv);
  return self;
}

/* addEndpoint(pattern, options, { onConnect, onMessage, onClose, onError,
 * onDrain? }) */
static napi_value server_add_endpoint(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  if (argc < 3) {
    napi_throw_type_error(env, "EINVAL", "addEndpoint(pattern, options, handlers)");
    return NULL;
  }
  wn_endpoint_store *st = calloc(1, sizeof *st);
  if (!st) {
    wn_throw_wire(env, WIRE_ENOMEM, NULL);
    return NULL;
  }
  st->ep.srv = srv;
  wire_endpoint_options opts;
  memset(&opts, 0, sizeof opts);
  char *pattern = dup_js_string(env, argv[0]);
  if (!pattern || parse_endpoint_options(env, argv[1], st, &opts) ||
      get_fn_ref(env, argv[2], "onConnect", &st->ep.on_connect) ||
      get_fn_ref(env, argv[2], "onMessage", &st->ep.on_message) ||
      get_fn_ref(env, argv[2], "onClose", &st->ep.on_close) ||
      get_fn_ref(env, argv[2], "onError", &st->ep.on_error) ||
      get_optional_fn_ref(env, argv[2], "onDrain", &st->ep.on_drain)) {
    free(pattern);
    free_endpoint(env, st);
    wn_throw_last_error(env, "addEndpoint");
    return NULL;
  }
  wire_callbacks cbs = {on_connect, on_message, on_close, on_error,
                        st->ep.on_drain ? on_drain : NULL};
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_endpoint_add(srv->server, pattern, &opts, &cbs, &st->ep, NULL, &err);
  free(pattern);
  if (rc != 0) {
    free_endpoint(env, st);
    wn_throw_wire(env, rc, &err);
    return NULL;
  }
  st->ep.next = srv->endpoints;
  srv->endpoints = &st->ep;
  return NULL;
}

static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg);

/* TLS certificates from JS: an array of [serverName|null, certPem, keyPem,
 * passphrase|null] (the package turns Buffers into strings), and the client
 * CAs' PEM (a string) or null/undefined. */
#define WN_MAX_TLS_CERTS 16
typedef struct wn_tls {
  wire_tls_options o;
  wire_tls_cert cs[WN_MAX_TLS_CERTS];
  char *owned[WN_MAX_TLS_CERTS * 4 + 1];
  size_t n_owned;
} wn_tls;

static void tls_free(wn_tls *t) {
  for (size_t i = 0; i < t->n_owned; i++)
    free(t->owned[i]);
  t->n_owned = 0;
}

/* One string slot of a certificate entry; null/undefined -> NULL. */
static int tls_str(napi_env env, napi_value entry, uint32_t i, wn_tls *t, const char **out) {
  napi_value v;
  napi_valuetype ty;
  *out = NULL;
  if (napi_get_element(env, entry, i, &v) != napi_ok || napi_typeof(env, v, &ty) != napi_ok)
    return -1;
  if (ty == napi_undefined || ty == napi_null)
    return 0;
  char *s = ty == napi_string ? dup_js_string(env, v) : NULL;
  if (s == NULL)
    return -1;
  t->owned[t->n_owned++] = s;
  *out = s;
  return 0;
}

static int tls_from_js(napi_env env, napi_value arr, napi_value ca, wn_tls *t) {
  memset(t, 0, sizeof *t);
  uint32_t n = 0;
  bool is = false;
  if (napi_is_array(env, arr, &is) != napi_ok || !is ||
      napi_get_array_length(env, arr, &n) != napi_ok || n < 1 || n > WN_MAX_TLS_CERTS) {
    napi_throw_type_error(env, "EINVAL", "TLS needs 1 to 16 certificates");
    return -1;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    wire_tls_cert *c = &t->cs[i];
    if (napi_get_element(env, arr, i, &e) != napi_ok || tls_str(env, e, 0, t, &c->server_name) ||
        tls_str(env, e, 1, t, &c->cert_pem) || tls_str(env, e, 2, t, &c->key_pem) ||
        tls_str(env, e, 3, t, &c->key_password) || c->cert_pem == NULL || c->key_pem == NULL) {
      tls_free(t);
      napi_throw_type_error(env, "EINVAL", "a TLS certificate needs cert and key (PEM)");
      return -1;
    }
  }
  t->o.certs = t->cs;
  t->o.n_certs = n;
  napi_valuetype ty = napi_undefined;
  if (ca != NULL && napi_typeof(env, ca, &ty) == napi_ok && ty != napi_undefined &&
      ty != napi_null) {
    char *pem = ty == napi_string ? dup_js_string(env, ca) : NULL;
    if (pem == NULL) {
      tls_free(t);
      napi_throw_type_error(env, "EINVAL", "the TLS CA must be PEM text");
      return -1;
    }
    t->owned[t->n_owned++] = pem;
    t->o.ca_pem = pem;
  }
  return 0;
}

/* reloadTls(certs[, caPem]): new certificates for new connections. */
static napi_value server_reload_tls(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  wn_tls tls;
  if (!srv || argc < 1 || tls_from_js(env, argv[0], argc >= 2 ? argv[1] : NULL, &tls) != 0)
    return NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_tls_reload(srv->server, &tls.o, &err);
  tls_free(&tls);
  if (rc != 0)
    wn_throw_wire(env, rc, err.message[0] ? &err : NULL);
  return NULL;
}

/* listen(host, port[, tlsCerts[, caPem]]) -> the bound port. */
static napi_value server_listen(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  int32_t port = 0;
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  char *host = argc >= 1 ? dup_js_string(env, argv[0]) : NULL;
  if (!host) {
    napi_throw_type_error(env, "EINVAL", "listen(host, port)");
    return NULL;
  }
  if (argc >= 2 && napi_get_value_int32(env, argv[1], &port) != napi_ok) {
    free(host);
    napi_throw_type_error(env, "EINVAL", "listen(host, port)");
    return NULL;
  }
  int rc;
  wire_error err;
  memset(&err, 0, sizeof err);
  if (argc >= 3) { /* TLS: certs from argv[2] */
    wn_tls tls;
    if (tls_from_js(env, argv[2], argc >= 4 ? argv[3] : NULL, &tls) != 0) {
      free(host);
      return NULL;
    }
    rc = wire_server_listen_tls(srv->server, host, port, &tls.o, &err);
    tls_free(&tls);
  } else {
    rc = wire_server_listen(srv->server, host, port);
  }
  free(host);
  if (rc != 0) {
    wn_throw_wire(env, rc, err.message[0] ? &err : NULL);
    return NULL;
  }
  if (!srv->active) {
    /* The loop now runs callbacks into this wrapper: keep it alive. */
    srv->active = 1;
    NODE_API_CALL(env, napi_reference_ref(env, srv->self, NULL));
    NODE_API_CALL(env, napi_add_async_cleanup_hook(env, on_env_teardown, srv, &srv->cleanup));
  }
  NODE_API_CALL(env, napi_create_int32(env, wire_server_port(srv->server), &out));
  return out;
}

/* Lets the environment finish its teardown once the server has closed. */
static void release_cleanup_hook(wn_server *srv) {
  if (srv->cleanup) {
    napi_async_cleanup_hook_handle h = srv->cleanup;
    srv->cleanup = NULL;
    napi_remove_async_cleanup_hook(h);
  }
}

void wn_on_shutdown(wire_server *server, void *user_data) {
  wn_server *srv = user_data;
  napi_env env = srv->env;
  napi_handle_scope scope;
  srv->shut_down = 1;
  if (srv->tearing_down) {
    /* No JavaScript runs any more; only the loop has to be left clean. */
    srv->active = 0;
    release_cleanup_hook(srv);
    return;
  }
  release_cleanup_hook(srv);
  if (napi_open_handle_scope(env, &scope) != napi_ok)
    return;
  napi_ref cb = srv->shutdown_cb;
  srv->shutdown_cb = NULL;
  if (cb) {
    wn_call(srv, cb, 0, NULL);
    napi_delete_reference(env, cb);
  }
  if (srv->active) {
    srv->active = 0;
    napi_reference_unref(env, srv->self, NULL);
  }
  napi_close_handle_scope(env, scope);
}

/* The environment (the process, or a worker thread) is shutting down with
 * the server still open: close every handle so the loop can be closed, with
 * no further calls into JavaScript. */
static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  wn_server *srv = arg;
  srv->tearing_down = 1;
  /* Already shutting down (close() was called): on_shutdown releases the hook. */
  if (srv->shutdown_cb || !srv->server || !srv->active ||
      wire_server_shutdown(srv->server, 1, wn_on_shutdown, srv) != 0) {
    if (!srv->shutdown_cb)
      release_cleanup_hook(srv);
  }
}

/* shutdown(timeoutMs, done): graceful close; done() fires once every handle
 * is closed. Call destroy() after it to free the server. */
static napi_value server_shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double timeout = 0;
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "EINVAL", "shutdown(timeoutMs, done)");
    return NULL;
  }
  NODE_API_CALL(env, napi_get_value_double(env, argv[0], &timeout));
  if (srv->shutdown_cb) {
    wn_throw_wire(env, WIRE_ESTATE, NULL);
    return NULL;
  }
  NODE_API_CALL(env, napi_create_reference(env, argv[1], 1, &srv->shutdown_cb));
  int rc = wire_server_shutdown(srv->server, (unsigned)timeout, wn_on_shutdown, srv);
  if (rc != 0) {
    napi_delete_reference(env, srv->shutdown_cb);
    srv->shutdown_cb = NULL;
    wn_throw_wire(env, rc, NULL);
  }
  return NULL;
}

/* destroy(): free the core server (after shutdown, or if it never listened). */
static napi_value server_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  void *p = NULL;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, NULL, &self, NULL));
  NODE_API_CALL(env, napi_unwrap(env, self, &p));
  wn_server *srv = p;
  if (srv->server && (srv->shut_down || !srv->active))
    free_server(env, srv);
  return NULL;
}

static napi_value server_ref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_server *srv = wn_this_server(env, info, &argc, NULL);
  if (srv)
    wire_server_ref(srv->server);
  return NULL;
}

static napi_value server_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_server *srv = wn_this_server(env, info, &argc, NULL);
  if (srv)
    wire_server_unref(srv->server);
  return NULL;
}

static napi_value server_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_server *srv = wn_this_server(env, info, &argc, NULL);
  if (!srv)
    return NULL;
  NODE_API_CALL(env, napi_create_int32(env, wire_server_port(srv->server), &out));
  return out;
}

static napi_value server_connections(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_server *srv = wn_this_server(env, info, &argc, NULL);
  if (!srv)
    return NULL;
  NODE_API_CALL(env,
                napi_create_double(env, (double)wire_server_connection_count(srv->server), &out));
  return out;
}

napi_value wn_server_class(napi_env env) {
  napi_value cls;
  const napi_property_descriptor props[] = {
      {"addEndpoint", NULL, server_add_endpoint, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, server_listen, NULL, NULL, NULL, napi_default, NULL},
      {"reloadTls", NULL, server_reload_tls, NULL, NULL, NULL, napi_default, NULL},
      {"shutdown", NULL, server_shutdown, NULL, NULL, NULL, napi_default, NULL},
      {"destroy", NULL, server_destroy, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, server_ref, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, server_unref, NULL, NULL, NULL, napi_default, NULL},
      {"port", NULL, server_port, NULL, NULL, NULL, napi_default, NULL},
      {"connectionCount", NULL, server_connections, NULL, NULL, NULL, napi_default, NULL},
      {"publish", NULL, wn_server_publish, NULL, NULL, NULL, napi_default, NULL},
      {"publishValue", NULL, wn_server_publish_value, NULL, NULL, NULL, napi_default, NULL},
      {"subscriberCount", NULL, wn_server_subscriber_count, NULL, NULL, NULL, napi_default, NULL},
      {"topicHistory", NULL, wn_server_topic_history, NULL, NULL, NULL, napi_default, NULL},
      /* node_scaling.c */
      {"useRedis", NULL, wn_server_use_redis, NULL, NULL, NULL, napi_default, NULL},
      {"brokerStats", NULL, wn_server_broker_stats, NULL, NULL, NULL, napi_default, NULL},
      {"setMetrics", NULL, wn_server_set_metrics, NULL, NULL, NULL, napi_default, NULL},
      {"listenMetrics", NULL, wn_server_listen_metrics, NULL, NULL, NULL, napi_default, NULL},
      {"metricsPort", NULL, wn_server_metrics_port, NULL, NULL, NULL, napi_default, NULL},
      {"metrics", NULL, wn_server_metrics, NULL, NULL, NULL, napi_default, NULL},
      {"setLog", NULL, wn_server_set_log, NULL, NULL, NULL, napi_default, NULL},
      {"drain", NULL, wn_server_drain, NULL, NULL, NULL, napi_default, NULL},
  };
  NODE_API_CALL(env, napi_define_class(env, "Server", NAPI_AUTO_LENGTH, server_ctor, NULL,
                                       sizeof props / sizeof *props, props, &cls));
  return cls;
}

/* ---- module -------------------------------------------------------------- */

static void addon_finalize(napi_env env, void *data, void *hint) {
  wn_addon *addon = data;
  if (addon->conn_ctor)
    napi_delete_reference(env, addon->conn_ctor);
  if (addon->server_ctor)
    napi_delete_reference(env, addon->server_ctor);
  if (addon->doc)
    wire_doc_free(addon->doc);
  free(addon);
}

static napi_value version(napi_env env, napi_callback_info info) {
  napi_value out;
  NODE_API_CALL(env, napi_create_string_utf8(env, wire_version(), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value error_name(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t code = 0;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1)
    NODE_API_CALL(env, napi_get_value_int32(env, argv[0], &code));
  NODE_API_CALL(env, napi_create_string_utf8(env, wire_err_name(code), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value error_message(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t code = 0;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1)
    NODE_API_CALL(env, napi_get_value_int32(env, argv[0], &code));
  NODE_API_CALL(env, napi_create_string_utf8(env, wire_strerror(code), NAPI_AUTO_LENGTH, &out));
  return out;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  wn_addon *addon = calloc(1, sizeof *addon);
  if (!addon) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (napi_set_instance_data(env, addon, addon_finalize, NULL) != napi_ok) {
    free(addon);
    wn_throw_last_error(env, "napi_set_instance_data");
    return NULL;
  }
  napi_value server_cls = wn_server_class(env), conn_cls = wn_conn_class(env, addon);
  if (!server_cls || !conn_cls)
    return NULL;
  NODE_API_CALL(env, napi_create_reference(env, server_cls, 1, &addon->server_ctor));
  NODE_API_CALL(env, napi_create_reference(env, conn_cls, 1, &addon->conn_ctor));
  const napi_property_descriptor props[] = {
      {"Server", NULL, NULL, NULL, NULL, server_cls, napi_default, NULL},
      {"Connection", NULL, NULL, NULL, NULL, conn_cls, napi_default, NULL},
      {"encode", NULL, wn_encode, NULL, NULL, NULL, napi_default, NULL},
      {"decode", NULL, wn_decode, NULL, NULL, NULL, napi_default, NULL},
      {"version", NULL, version, NULL, NULL, NULL, napi_default, NULL},
      {"errorName", NULL, error_name, NULL, NULL, NULL, napi_default, NULL},
      {"errorMessage", NULL, error_message, NULL, NULL, NULL, napi_default, NULL},
      {"errors", NULL, wn_errors, NULL, NULL, NULL, napi_default, NULL},
      {"listenSocket", NULL, wn_listen_socket, NULL, NULL, NULL, napi_default, NULL},
  };
  NODE_API_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof *props, props));
  return exports;
}
