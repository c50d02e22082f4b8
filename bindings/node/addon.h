/*
 * addon.h -- declarations shared by the files of the Node-API addon: the
 * per-instance data, the native server / endpoint / connection records and
 * the NODE_API_CALL macros. The addon only converts values and forwards
 * calls; protocol, validation and dispatch live in the core.
 */
#ifndef WIRE_NODE_ADDON_H
#define WIRE_NODE_ADDON_H

#define NAPI_VERSION 8
#include <node_api.h>

#include "wirecore.h"

#include <stddef.h>

/* Throw a JS error describing a failed Node-API call (unless one is already
 * pending) and return `ret` from the calling function. Never aborts. */
#define NODE_API_CALL_BASE(env, call, ret)                                                         \
  do {                                                                                             \
    napi_status status_ = (call);                                                                  \
    if (status_ != napi_ok) {                                                                      \
      wn_throw_last_error((env), #call);                                                           \
      return ret;                                                                                  \
    }                                                                                              \
  } while (0)
#define NODE_API_CALL(env, call) NODE_API_CALL_BASE(env, call, NULL)
#define NODE_API_CALL_VOID(env, call) NODE_API_CALL_BASE(env, call, )
#define NODE_API_CALL_INT(env, call, ret) NODE_API_CALL_BASE(env, call, ret)

/* Per-instance data (one per Node environment / worker). */
typedef struct wn_addon {
  napi_ref conn_ctor;   /* the Connection class */
  napi_ref server_ctor; /* the Server class */
  wire_doc *doc;        /* scratch for encode()/decode() */
  /* While onMessage runs: its connection's wrapper and record, so a send on
   * that connection (the usual reply) skips napi_unwrap. */
  napi_value cur_obj;
  struct wn_conn *cur_nc;
} wn_addon;

typedef struct wn_endpoint wn_endpoint;

/* Where the core's current callback batch (wire_server_set_batch_hook) is:
 * none; begun; one onMessage made (through napi_make_callback); a second
 * one opened one callback scope (and the handle scope holding its resource,
 * the wrapper) for every call into JS until the batch ends; or the handle
 * scope alone (a handler paused: later calls take napi_make_callback). */
enum { WN_BATCH_NONE, WN_BATCH_BEGUN, WN_BATCH_SEEN, WN_BATCH_OPEN, WN_BATCH_HANDLES };

/* A native server, owned by its JS wrapper (freed by the wrapper's finalizer
 * or by destroy() once shut down). */
typedef struct wn_server {
  napi_env env;
  wire_server *server;     /* NULL once freed */
  napi_ref self;           /* the wrapper: strong while listening */
  napi_async_context actx; /* async context for callbacks into JS */
  napi_ref shutdown_cb;    /* pending close() callback */
  wire_doc *scratch;       /* JS -> value conversion for sends */
  char *strbuf;            /* reusable buffer for JS strings */
  size_t strbuf_cap;
  wn_endpoint *endpoints;                 /* every endpoint added, freed with the server */
  struct wn_conn *deferred;               /* handshakes waiting for JS (we hold a wire_conn_ref) */
  int active;                             /* listened and not yet shut down */
  int shut_down;                          /* the shutdown's done callback has fired */
  int tearing_down;                       /* the environment is going away: no more JS calls */
  napi_async_cleanup_hook_handle cleanup; /* registered while active */
  napi_ref broker_cb;                     /* node_scaling.c: broker state reports, or NULL */
  napi_ref log_cb;                        /* node_metrics.c: log events, or NULL */
  int batch;                              /* the core's current callback batch: WN_BATCH_* */
  int calls;                              /* calls into JS running (wn_call) */
  struct wn_endpoint *batch_ep;           /* node_server.c batch_cache: its onMessage is batch_fn */
  napi_value batch_fn;
  struct wn_conn *batch_nc; /* its wrapper is batch_conn */
  napi_value batch_conn;
  napi_handle_scope batch_hs;
  napi_callback_scope batch_cs;
  napi_value batch_recv;
  double t_last; /* metrics: when the batch's last onMessage returned, 0 none */
} wn_server;

/* An endpoint: the JS functions the core's callbacks forward to. */
struct wn_endpoint {
  wn_server *srv;
  napi_ref on_connect, on_message, on_close, on_error;
  napi_ref on_drain; /* optional: NULL when the JS layer gave none */
  wire_codec codec;
  wn_endpoint *next;
};

/* A connection, owned by its JS wrapper. `conn` is NULL once the core is
 * done with the connection (on_close ran, or the handshake was refused). */
typedef struct wn_conn {
  wire_conn *conn;
  wn_server *srv;
  napi_ref self;                     /* strong until the connection ends */
  int deferred;                      /* on_connect deferred: we hold a wire_conn_ref */
  int in_connect;                    /* inside on_connect: accept/reject only record the decision */
  int decision;                      /* -1 none, 0 accept, or a rejection status */
  struct wn_conn *dprev, *dnext;     /* the server's list of deferred connections */
  napi_value failing;                /* during fail()/invalid(): the JS error onError receives */
  double t_handler;                  /* node_metrics.c: when the running onMessage started */
  uint8_t in_handler, timing_paused; /* inside onMessage; it paused: time at resume */
} wn_conn;

/* ---- errors (node_convert.c) ------------------------------------------------ */
void wn_throw_last_error(napi_env env, const char *call);
/* Throw an Error with .code = wire_err_name(code), .errno = code and the
 * details of err (may be NULL). */
void wn_throw_wire(napi_env env, int code, const wire_error *err);
/* `this` of a Server method as its native server, with the call's arguments
 * (argc in/out, argv may be NULL); NULL with a pending exception: ESTATE once
 * the server has been destroyed, EADDON when `this` is no Server. */
wn_server *wn_this_server(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv);
/* A plain object describing a wire error ({code, errno, category, message,
 * path, keyword, schemaPath, offset}); NULL with a pending exception. */
napi_value wn_error_info(napi_env env, int code, const wire_error *err);
/* errors() -> [{name, errno, category, className}, ...]: the core's list. */
napi_value wn_errors(napi_env env, napi_callback_info info);

/* ---- values (node_convert.c) ------------------------------------------------ */
/* A JS value for v (strings and binaries are copied, so the result outlives
 * the message). NULL with a pending exception on failure. */
napi_value wn_value_to_js(napi_env env, const wire_value *v);
/* 1 when v holds an integer that a JS number cannot represent exactly (it
 * must become a BigInt), so JSON.parse of its text would lose digits. */
int wn_value_needs_bigint(const wire_value *v);
/* Build a value for `js` in `doc`. Returns 0, WIRE_ESERIALIZE (err says why:
 * a function, a symbol, a cycle, a bigint out of range), WIRE_ENOMEM, or
 * WIRE_EINVAL with a pending JS exception. */
int wn_js_to_value(wn_server *srv, wire_doc *doc, napi_value js, const wire_value **out,
                   wire_error *err);
/* The request view as a plain object (copies every string). */
napi_value wn_request_to_js(napi_env env, const wire_request *req);

/* ---- connections (node_conn.c) ---------------------------------------------- */
/* The Connection class; its methods get addon as their data. */
napi_value wn_conn_class(napi_env env, wn_addon *addon);
/* A new Connection wrapper for conn; NULL with a pending exception. */
napi_value wn_conn_new(napi_env env, wn_addon *addon, wn_server *srv, wire_conn *conn);
/* Forget the core connection: drop the strong reference to the wrapper. */
void wn_conn_detach(napi_env env, wn_conn *nc);
/* Track / untrack a deferred handshake (see wn_conn_orphan_deferred). */
void wn_conn_defer(wn_conn *nc);
void wn_conn_undefer(wn_conn *nc);
/* The server is being freed (and with it every connection it still holds):
 * deferred wrappers forget their connections so a late accept() answers
 * ECLOSED instead of touching freed memory. */
void wn_conn_orphan_deferred(napi_env env, wn_server *srv);

/* ---- codec helpers exported to JS (node_convert.c) -------------------------- */
napi_value wn_encode(napi_env env, napi_callback_info info);
napi_value wn_decode(napi_env env, napi_callback_info info);

/* ---- server (node_server.c) ------------------------------------------------- */
napi_value wn_server_class(napi_env env);
/* Call fn(args) in the batch's callback scope when one is open (promise jobs
 * and nextTicks run when the batch ends), else through napi_make_callback
 * (they run when it returns). An exception escaping JS is reported as
 * uncaught. Returns the result, or NULL when the call threw. */
napi_value wn_call(wn_server *srv, napi_ref fn, size_t argc, const napi_value *argv);
/* The shutdown's done callback (also a drain's): runs close()'s callback. */
void wn_on_shutdown(wire_server *server, void *user_data);

/* ---- broker and drain (node_scaling.c) -------------------------------------- */
napi_value wn_server_use_redis(napi_env env, napi_callback_info info);
napi_value wn_server_broker_stats(napi_env env, napi_callback_info info);
napi_value wn_server_drain(napi_env env, napi_callback_info info);
napi_value wn_listen_socket(napi_env env, napi_callback_info info);

/* ---- metrics, health and logs (node_metrics.c) ------------------------------ */
double wn_now(void);
void wn_observe_resumed(wn_conn *nc);
napi_value wn_server_set_metrics(napi_env env, napi_callback_info info);
napi_value wn_server_listen_metrics(napi_env env, napi_callback_info info);
napi_value wn_server_metrics_port(napi_env env, napi_callback_info info);
napi_value wn_server_metrics(napi_env env, napi_callback_info info);
napi_value wn_server_set_log(napi_env env, napi_callback_info info);

/* ---- topics (node_topics.c): listed in the Connection and Server classes -- */
napi_value wn_conn_subscribe(napi_env env, napi_callback_info info);
napi_value wn_conn_unsubscribe(napi_env env, napi_callback_info info);
napi_value wn_conn_topics(napi_env env, napi_callback_info info);
napi_value wn_server_publish(napi_env env, napi_callback_info info);
napi_value wn_server_publish_value(napi_env env, napi_callback_info info);
napi_value wn_server_subscriber_count(napi_env env, napi_callback_info info);
napi_value wn_conn_subscribe_since(napi_env env, napi_callback_info info);
napi_value wn_server_topic_history(napi_env env, napi_callback_info info);

#endif /* WIRE_NODE_ADDON_H */
