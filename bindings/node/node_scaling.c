/*
 * node_scaling.c -- the Node-API glue of the broker and of draining:
 * Server#useRedis(url, onState), Server#brokerStats(), Server#drain(timeout,
 * done), listenSocket(host, port) for the workers' primary. The broker's connections run on Node's own loop (the server's
 * borrowed loop); state reports become onState(state, message) calls.
 */
#include "addon.h"

#include <string.h>

/* From the loop (a Redis connection's callback): onState(state, message). */
static void on_broker_state(wire_server *s, wire_broker_state state, const char *msg, void *ud) {
  wn_server *srv = ud;
  if (srv->broker_cb == NULL || srv->tearing_down)
    return;
  napi_env env = srv->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok)
    return;
  napi_value argv[2];
  if (napi_create_int32(env, (int32_t)state, &argv[0]) == napi_ok &&
      napi_create_string_utf8(env, msg ? msg : "", NAPI_AUTO_LENGTH, &argv[1]) == napi_ok)
    wn_call(srv, srv->broker_cb, 2, argv);
  napi_close_handle_scope(env, scope);
}

/* useRedis(url[, onState]) */
napi_value wn_server_use_redis(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  char url[2048];
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], url, sizeof url, &len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "useRedis(url: string, onState?: function)");
    return NULL;
  }
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_use_redis(srv->server, url, NULL, &err);
  if (rc != 0) {
    wn_throw_wire(env, rc, &err);
    return NULL;
  }
  napi_valuetype t = napi_undefined;
  if (argc > 1)
    NODE_API_CALL(env, napi_typeof(env, argv[1], &t));
  if (t == napi_function) {
    NODE_API_CALL(env, napi_create_reference(env, argv[1], 1, &srv->broker_cb));
    wire_server_on_broker_state(srv->server, on_broker_state, srv);
  }
  return NULL;
}

static int set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) == napi_ok &&
         napi_set_named_property(env, obj, name, n) == napi_ok;
}

/* brokerStats() -> { state, published, dropped, received, invalid,
 * reconnects, channels, pendingBytes } or null. */
napi_value wn_server_broker_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  wn_server *srv = wn_this_server(env, info, &argc, NULL);
  if (!srv)
    return NULL;
  wire_broker_stats st;
  napi_value out;
  if (wire_server_broker_stats(srv->server, &st) != 0) {
    NODE_API_CALL(env, napi_get_null(env, &out));
    return out;
  }
  static const char *names[] = {"connecting", "up", "down"};
  napi_value state;
  NODE_API_CALL(env, napi_create_object(env, &out));
  NODE_API_CALL(env, napi_create_string_utf8(env, names[st.state <= 2 ? st.state : 0],
                                             NAPI_AUTO_LENGTH, &state));
  NODE_API_CALL(env, napi_set_named_property(env, out, "state", state));
  if (!set_num(env, out, "published", (double)st.published) ||
      !set_num(env, out, "dropped", (double)st.dropped) ||
      !set_num(env, out, "received", (double)st.received) ||
      !set_num(env, out, "invalid", (double)st.invalid) ||
      !set_num(env, out, "reconnects", (double)st.reconnects) ||
      !set_num(env, out, "channels", (double)st.channels) ||
      !set_num(env, out, "pendingBytes", (double)st.pending_bytes))
    return NULL;
  return out;
}

/* drain(timeoutMs, done): stop accepting (the backlog is served), finish,
 * then shut down; done runs as close()'s callback does. */
napi_value wn_server_drain(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double timeout = 0;
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "EINVAL", "drain(timeoutMs, done)");
    return NULL;
  }
  NODE_API_CALL(env, napi_get_value_double(env, argv[0], &timeout));
  if (srv->shutdown_cb) {
    wn_throw_wire(env, WIRE_ESTATE, NULL);
    return NULL;
  }
  NODE_API_CALL(env, napi_create_reference(env, argv[1], 1, &srv->shutdown_cb));
  int rc = wire_server_drain(srv->server, (unsigned)timeout, wn_on_shutdown, srv);
  if (rc != 0) {
    napi_delete_reference(env, srv->shutdown_cb);
    srv->shutdown_cb = NULL;
    wn_throw_wire(env, rc, NULL);
  }
  return NULL;
}

/* listenSocket(host, port): wire_listen_socket's descriptor, for the
 * node:cluster primary to keep per worker place (WIRECORE_LISTEN_FD). */
napi_value wn_listen_socket(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  char host[256];
  size_t hl = 0;
  int32_t port = 0;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "listenSocket(host, port)");
    return NULL;
  }
  int fd = wire_listen_socket(host, port);
  if (fd < 0) {
    wn_throw_wire(env, fd, NULL);
    return NULL;
  }
  NODE_API_CALL(env, napi_create_int32(env, fd, &out));
  return out;
}
