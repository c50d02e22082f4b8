/*
 * node_metrics.c -- the Node-API glue of metrics, health and logs:
 * Server#setMetrics(metricsPath, healthPath), #listenMetrics(host, port),
 * #metricsPort(), #metrics(format) (the rendered text), #setLog(fn, level)
 * (log events become fn(event) calls), and the handler timing around
 * onMessage (wire_server_observe), finished at resume for a handler whose
 * promise paused the connection.
 */
#include "addon.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

double wn_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void wn_observe_resumed(wn_conn *nc) {
  if (!nc->timing_paused || nc->conn == NULL)
    return;
  nc->timing_paused = 0;
  wire_endpoint *ep = wire_conn_endpoint(nc->conn);
  if (ep != NULL)
    wire_server_observe(wire_conn_server(nc->conn), ep, wn_now() - nc->t_handler);
}

/* A string argument (malloc'd), NULL for null/undefined; *bad on a wrong type. */
static char *opt_string(napi_env env, napi_value v, int *bad) {
  napi_valuetype t;
  *bad = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t == napi_null || t == napi_undefined)
    return NULL;
  size_t len = 0;
  if (t != napi_string || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    *bad = 1;
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL || napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    *bad = 1;
    return NULL;
  }
  return s;
}

/* setMetrics(metricsPath | null, healthPath | null) */
napi_value wn_server_set_metrics(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  int bad1 = 0, bad2 = 0;
  char *mp = argc > 0 ? opt_string(env, argv[0], &bad1) : NULL;
  char *hp = argc > 1 ? opt_string(env, argv[1], &bad2) : NULL;
  int rc = bad1 || bad2 ? WIRE_EINVAL : wire_server_set_metrics(srv->server, mp, hp);
  free(mp);
  free(hp);
  if (rc != 0)
    wn_throw_wire(env, rc, NULL);
  return NULL;
}

/* listenMetrics(host, port) -> the bound port */
napi_value wn_server_listen_metrics(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  int bad = 0;
  int32_t port = 0;
  char *host = argc > 0 ? opt_string(env, argv[0], &bad) : NULL;
  if (host == NULL || argc < 2 || napi_get_value_int32(env, argv[1], &port) != napi_ok) {
    free(host);
    napi_throw_type_error(env, "EINVAL", "listenMetrics(host, port)");
    return NULL;
  }
  int rc = wire_server_listen_metrics(srv->server, host, port);
  free(host);
  if (rc != 0) {
    wn_throw_wire(env, rc, NULL);
    return NULL;
  }
  NODE_API_CALL(env, napi_create_int32(env, wire_server_metrics_port(srv->server), &out));
  return out;
}

napi_value wn_server_metrics_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value out;
  wn_server *srv = wn_this_server(env, info, &argc, NULL);
  if (!srv)
    return NULL;
  NODE_API_CALL(env, napi_create_int32(env, wire_server_metrics_port(srv->server), &out));
  return out;
}

/* metrics(format) -> string: 0 Prometheus text, 1 JSON */
napi_value wn_server_metrics(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  int32_t format = 0;
  if (argc > 0)
    NODE_API_CALL(env, napi_get_value_int32(env, argv[0], &format));
  int64_t n = wire_server_metrics_render(srv->server, format, NULL, 0);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (n >= 0 && buf == NULL)
    n = WIRE_ENOMEM;
  if (n >= 0)
    n = wire_server_metrics_render(srv->server, format, buf, (size_t)n + 1);
  if (n < 0) {
    free(buf);
    wn_throw_wire(env, (int)n, NULL);
    return NULL;
  }
  napi_status st = napi_create_string_utf8(env, buf, (size_t)n, &out);
  free(buf);
  NODE_API_CALL(env, st);
  return out;
}

static void set_str(napi_env env, napi_value obj, const char *name, const char *v) {
  napi_value s;
  if (napi_create_string_utf8(env, v, NAPI_AUTO_LENGTH, &s) == napi_ok)
    napi_set_named_property(env, obj, name, s);
}

static void set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  if (napi_create_double(env, v, &n) == napi_ok)
    napi_set_named_property(env, obj, name, n);
}

static const char *level_name(int level) {
  return level >= WIRE_LOG_ERROR     ? "error"
         : level >= WIRE_LOG_WARNING ? "warning"
         : level >= WIRE_LOG_INFO    ? "info"
                                     : "debug";
}

/* From the loop: fn({ level, event, conn, remote, port, path, status, code,
 * error, message, duration, bytesIn, bytesOut }). */
static void on_log(const wire_log_event *ev, void *ud) {
  wn_server *srv = ud;
  if (srv->log_cb == NULL || srv->tearing_down)
    return;
  napi_env env = srv->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok)
    return;
  napi_value o;
  if (napi_create_object(env, &o) == napi_ok) {
    set_str(env, o, "level", level_name(ev->level));
    set_str(env, o, "event", ev->event);
    set_num(env, o, "conn", (double)ev->conn_id);
    set_str(env, o, "remote", ev->remote);
    set_num(env, o, "port", ev->remote_port);
    set_str(env, o, "path", ev->path);
    set_num(env, o, "status", ev->status);
    set_num(env, o, "code", ev->close_code);
    set_str(env, o, "error", ev->error ? wire_err_name(ev->error) : "");
    set_str(env, o, "message", ev->message);
    set_num(env, o, "duration", ev->duration);
    set_num(env, o, "bytesIn", (double)ev->bytes_in);
    set_num(env, o, "bytesOut", (double)ev->bytes_out);
    wn_call(srv, srv->log_cb, 1, &o);
  }
  napi_close_handle_scope(env, scope);
}

/* setLog(fn | null, minLevel) */
napi_value wn_server_set_log(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  wn_server *srv = wn_this_server(env, info, &argc, argv);
  if (!srv)
    return NULL;
  napi_valuetype t = napi_undefined;
  int32_t level = 0;
  if (argc > 0)
    NODE_API_CALL(env, napi_typeof(env, argv[0], &t));
  if (argc > 1)
    NODE_API_CALL(env, napi_get_value_int32(env, argv[1], &level));
  if (srv->log_cb) {
    napi_delete_reference(env, srv->log_cb);
    srv->log_cb = NULL;
  }
  if (t == napi_function)
    NODE_API_CALL(env, napi_create_reference(env, argv[0], 1, &srv->log_cb));
  wire_server_set_log(srv->server, srv->log_cb ? on_log : NULL, srv, level);
  return NULL;
}
