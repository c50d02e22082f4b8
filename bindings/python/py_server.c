/*
 * py_server.c -- the `_native.Server` type: one wire_server on the core's own
 * libuv loop, driven by the host (fd / timeout / process), its endpoints, and
 * the C callbacks that forward connection events to the Python handler
 * object of each endpoint (its _on_connect/_on_message/_on_close/_on_error).
 * Callbacks run inside process(), on the thread that holds the GIL.
 */
#include "wirecore_py.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static wpy_conn *conn_of(wire_conn *conn) {
  return (wpy_conn *)wire_conn_get_data(conn);
}

/* The handler raised: report it and fail safe for that connection only. */
static void report_unraisable(PyObject *where) {
  PyErr_WriteUnraisable(where);
}

/* Drop the reference the C side holds on a connection's Python object. */
static void release_conn_object(wire_conn *conn) {
  wpy_conn *pc = conn_of(conn);
  if (pc == NULL)
    return;
  wire_conn_set_data(conn, NULL);
  pc->data_held = 0;
  Py_DECREF(pc);
}

/* Returns 0 (accept), a status (reject) or WIRE_CONNECT_DEFER; the Python
 * handler decides. A failing handler rejects with 500. */
static int cb_connect(wire_conn *conn, const wire_request *req, void *ud) {
  wpy_endpoint *ep = ud;
  wpy_conn *pc = wpy_conn_new(ep->server, conn);
  if (pc == NULL) {
    report_unraisable(ep->handler);
    return 500;
  }
  wire_conn_set_data(conn, pc); /* the new reference now belongs to the C side */
  pc->data_held = 1;
  if (ep->on_connect == NULL)
    return 0;
  PyObject *r = PyObject_CallOneArg(ep->on_connect, (PyObject *)pc);
  long status = 0;
  if (r == NULL) {
    report_unraisable(ep->on_connect);
    status = 500;
  } else if (r != Py_None) {
    status = PyLong_AsLong(r);
    if (status == -1 && PyErr_Occurred()) {
      report_unraisable(ep->on_connect);
      status = 500;
    }
  }
  Py_XDECREF(r);
  if (status != 0 && status != WIRE_CONNECT_DEFER)
    release_conn_object(conn); /* rejected: on_close will not come */
  return (int)status;
}

static void cb_message(wire_conn *conn, const wire_message *msg, void *ud) {
  wpy_endpoint *ep = ud;
  wpy_conn *pc = conn_of(conn);
  if (pc == NULL || ep->on_message == NULL)
    return;
  PyObject *payload;
  if (msg->value != NULL)
    payload = wpy_from_value(ep->server->st, msg->value);
  else if (msg->kind == WIRE_MSG_TEXT)
    payload = PyUnicode_DecodeUTF8((const char *)msg->data, (Py_ssize_t)msg->len, NULL);
  else
    payload = PyBytes_FromStringAndSize((const char *)msg->data, (Py_ssize_t)msg->len);
  if (payload == NULL) {
    wpy_conn_fail_current(pc, ep->on_message);
    return;
  }
  PyObject *index = PyLong_FromLong(msg->handler); /* a cached small int */
  if (index == NULL) {
    Py_DECREF(payload);
    report_unraisable(ep->on_message);
    return;
  }
  PyObject *args[4] = {(PyObject *)pc, payload, index,
                       msg->kind == WIRE_MSG_BINARY ? Py_True : Py_False};
  Py_INCREF(pc); /* metrics: the timing below outlives a close inside the call */
  pc->t_handler = wpy_now();
  pc->timing_paused = 0;
  pc->in_handler = 1;
  PyObject *r = pc->direct != NULL ? wpy_direct_message(ep, pc, payload)
                                   : PyObject_Vectorcall(ep->on_message, args, 4, NULL);
  pc->in_handler = 0;
  if (!pc->timing_paused)
    wire_server_observe(ep->server->server, ep->wire_ep, wpy_now() - pc->t_handler);
  Py_DECREF(payload);
  Py_DECREF(index);
  if (r == NULL)
    wpy_conn_fail_current(pc, ep->on_message);
  Py_XDECREF(r);
  Py_DECREF(pc);
}

static void cb_close(wire_conn *conn, int code, const char *reason, size_t reason_len, void *ud) {
  wpy_endpoint *ep = ud;
  wpy_conn *pc = conn_of(conn);
  if (pc == NULL)
    return;
  if (ep->on_close != NULL) {
    PyObject *r = PyObject_CallFunction(ep->on_close, "Ois#", (PyObject *)pc, code,
                                        reason != NULL ? reason : "", (Py_ssize_t)reason_len);
    if (r == NULL)
      report_unraisable(ep->on_close);
    Py_XDECREF(r);
  }
  release_conn_object(conn);
}

/* Nonzero when the Python side handled the error (its reply replaces the
 * core's policy). */
static int cb_error(wire_conn *conn, const wire_error *err, void *ud) {
  wpy_endpoint *ep = ud;
  wpy_conn *pc = conn_of(conn);
  if (pc == NULL || ep->on_error == NULL)
    return 0;
  /* conn.fail(exc) / conn.invalid(exc): the handler sees that exception. */
  PyObject *exc = pc->failing != NULL ? Py_NewRef(pc->failing)
                                      : wpy_error_object(ep->server->st, err->code, err);
  if (exc == NULL) {
    report_unraisable(ep->on_error);
    return 0;
  }
  PyObject *r = PyObject_CallFunctionObjArgs(ep->on_error, (PyObject *)pc, exc, NULL);
  Py_DECREF(exc);
  if (r == NULL) {
    report_unraisable(ep->on_error);
    return 0;
  }
  int handled = PyObject_IsTrue(r);
  Py_DECREF(r);
  if (handled < 0) {
    report_unraisable(ep->on_error);
    return 0;
  }
  return handled;
}

/* The send queue fell back to the high-water mark after conn.writable()
 * said False: the handler's _on_drain(conn) wakes the waiting senders. */
static void cb_drain(wire_conn *conn, void *ud) {
  wpy_endpoint *ep = ud;
  wpy_conn *pc = conn_of(conn);
  if (pc == NULL || ep->on_drain == NULL)
    return;
  PyObject *r = PyObject_CallOneArg(ep->on_drain, (PyObject *)pc);
  if (r == NULL)
    report_unraisable(ep->on_drain);
  Py_XDECREF(r);
}

static void endpoint_free(wpy_endpoint *ep) {
  Py_CLEAR(ep->handler);
  Py_CLEAR(ep->on_connect);
  Py_CLEAR(ep->on_message);
  Py_CLEAR(ep->on_close);
  Py_CLEAR(ep->on_error);
  Py_CLEAR(ep->on_drain);
  Py_CLEAR(ep->on_result);
  for (size_t i = 0; i < ep->n_strings; i++)
    free(ep->strings[i]);
  free(ep->strings);
  free(ep);
}

wire_doc *wpy_doc_acquire(wpy_server *server) {
  if (!server->scratch_busy) {
    if (server->scratch == NULL && wire_doc_new(&server->scratch) != 0) {
      PyErr_NoMemory();
      return NULL;
    }
    server->scratch_busy = 1;
    return server->scratch;
  }
  wire_doc *doc;
  if (wire_doc_new(&doc) != 0) {
    PyErr_NoMemory();
    return NULL;
  }
  return doc;
}

void wpy_doc_release(wpy_server *server, wire_doc *doc) {
  if (doc == server->scratch) {
    wire_doc_reset(doc);
    server->scratch_busy = 0;
  } else {
    wire_doc_free(doc);
  }
}

/* ---- the Server type ---------------------------------------------------- */

/* client limits: trusted_proxies as a C array of borrowed UTF-8 strings
 * (valid while `seq` lives); *out stays NULL for None. Returns 0 or -1. */
static int proxy_list(PyObject *seq, PyObject **fast, const char ***out, size_t *n) {
  *fast = NULL;
  *out = NULL;
  *n = 0;
  if (seq == NULL || seq == Py_None)
    return 0;
  *fast = PySequence_Fast(seq, "trusted_proxies must be a sequence of str");
  if (*fast == NULL)
    return -1;
  Py_ssize_t len = PySequence_Fast_GET_SIZE(*fast);
  *out = calloc((size_t)len + 1, sizeof **out);
  if (*out == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  for (Py_ssize_t i = 0; i < len; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(*fast, i);
    if (!PyUnicode_Check(item)) {
      PyErr_SetString(PyExc_TypeError, "trusted_proxies must be a sequence of str");
      return -1;
    }
    if (((*out)[i] = PyUnicode_AsUTF8(item)) == NULL)
      return -1;
  }
  *n = (size_t)len;
  return 0;
}

static PyObject *server_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"max_handshake_size",  "handshake_timeout_ms",
                           "max_connections",     "max_connections_per_address",
                           "handshake_rate",      "handshake_burst",
                           "trusted_proxies",     "max_buffered_bytes",
                           "max_topics_per_conn", NULL};
  Py_ssize_t max_hs = 0;
  unsigned hs_timeout = 0, max_conns = 0, per_addr = 0, hs_rate = 0, hs_burst = 0;
  unsigned long long max_buffered = 0; /* memory budget: 0 default, 2**64-1 none */
  unsigned max_topics = 0;             /* topics: 0 = WIRE_DEFAULT_MAX_TOPICS_PER_CONN */
  PyObject *proxies = NULL, *fast = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|nIIIIIOKI:Server", kwlist, &max_hs, &hs_timeout,
                                   &max_conns, &per_addr, &hs_rate, &hs_burst, &proxies,
                                   &max_buffered, &max_topics))
    return NULL;
  const char **proxy_v = NULL;
  size_t n_proxies = 0;
  if (proxy_list(proxies, &fast, &proxy_v, &n_proxies) != 0) {
    Py_XDECREF(fast);
    free(proxy_v);
    return NULL;
  }
  wpy_state *st = wpy_state_of_type(tp);
  wpy_server *self = (wpy_server *)tp->tp_alloc(tp, 0);
  if (self == NULL)
    return NULL;
  self->st = st;
  self->module = PyType_GetModule(tp);
  Py_XINCREF(self->module);
  wire_server_options opts;
  memset(&opts, 0, sizeof opts);
  opts.max_handshake_size = (size_t)max_hs;
  opts.handshake_timeout_ms = hs_timeout;
  opts.max_connections = max_conns;
  opts.max_connections_per_address = per_addr; /* client limits */
  opts.handshake_rate = hs_rate;
  opts.handshake_burst = hs_burst;
  opts.trusted_proxies = proxy_v;
  opts.n_trusted_proxies = n_proxies;
  opts.max_buffered_bytes = max_buffered >= SIZE_MAX ? SIZE_MAX : (size_t)max_buffered;
  opts.max_topics_per_conn = max_topics;
  int rc = wire_server_new(&opts, &self->server);
  Py_XDECREF(fast);
  free(proxy_v);
  if (rc != 0) {
    Py_DECREF(self);
    return wpy_raise(st, rc, NULL);
  }
  return (PyObject *)self;
}

static int server_traverse(wpy_server *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->module);
  Py_VISIT(self->shutdown_cb);
  Py_VISIT(self->broker_cb);
  Py_VISIT(self->log_cb);
  for (size_t i = 0; i < self->n_endpoints; i++) {
    wpy_endpoint *ep = self->endpoints[i];
    Py_VISIT(ep->handler);
    Py_VISIT(ep->on_connect);
    Py_VISIT(ep->on_message);
    Py_VISIT(ep->on_close);
    Py_VISIT(ep->on_error);
    Py_VISIT(ep->on_drain);
    Py_VISIT(ep->on_result);
  }
  return 0;
}

/* Break reference cycles (server -> handler -> driver -> server) once the
 * core can no longer call back: after the shutdown completed. A live server
 * keeps its handlers. */
static int server_clear(wpy_server *self) {
  if (!self->closed)
    return 0;
  for (size_t i = 0; i < self->n_endpoints; i++) {
    wpy_endpoint *ep = self->endpoints[i];
    Py_CLEAR(ep->handler);
    Py_CLEAR(ep->on_connect);
    Py_CLEAR(ep->on_message);
    Py_CLEAR(ep->on_close);
    Py_CLEAR(ep->on_error);
    Py_CLEAR(ep->on_drain);
    Py_CLEAR(ep->on_result);
  }
  Py_CLEAR(self->shutdown_cb);
  Py_CLEAR(self->broker_cb);
  Py_CLEAR(self->log_cb);
  return 0;
}

static void server_dealloc(wpy_server *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->server != NULL && self->broker_cb != NULL) /* py_scaling.c: no report to a dead self */
    wire_server_on_broker_state(self->server, NULL, NULL);
  if (self->server != NULL) /* py_metrics.c */
    wire_server_set_log(self->server, NULL, NULL, 0);
  if (self->server != NULL && wire_server_free(self->server) != 0) {
    /* Still listening: the owner never shut it down. Leak rather than free
     * memory the loop still uses. */
    PyErr_WarnEx(PyExc_ResourceWarning, "wirecore Server deallocated without shutdown", 1);
  }
  for (size_t i = 0; i < self->n_endpoints; i++)
    endpoint_free(self->endpoints[i]);
  free(self->endpoints);
  wire_doc_free(self->scratch);
  Py_CLEAR(self->shutdown_cb);
  Py_CLEAR(self->broker_cb);
  Py_CLEAR(self->log_cb);
  Py_CLEAR(self->module);
  tp->tp_free(self);
  Py_DECREF(tp);
}

/* A NULL-terminated array of UTF-8 copies of a sequence of str, kept in ep. */
static int copy_strings(wpy_endpoint *ep, PyObject *seq, const char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (seq == NULL || seq == Py_None)
    return 0;
  PyObject *fast = PySequence_Fast(seq, "expected a sequence of str");
  if (fast == NULL)
    return -1;
  Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
  const char **arr = calloc((size_t)len + 1, sizeof *arr);
  char **grown = realloc(ep->strings, (ep->n_strings + (size_t)len + 1) * sizeof *grown);
  if (arr == NULL || grown == NULL) {
    free(arr);
    if (grown != NULL)
      ep->strings = grown;
    Py_DECREF(fast);
    PyErr_NoMemory();
    return -1;
  }
  ep->strings = grown;
  ep->strings[ep->n_strings++] = (char *)arr; /* freed with the endpoint too */
  for (Py_ssize_t i = 0; i < len; i++) {
    Py_ssize_t slen;
    PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
    if (!PyUnicode_Check(item)) {
      Py_DECREF(fast);
      PyErr_SetString(PyExc_TypeError, "expected a sequence of str");
      return -1;
    }
    const char *s = PyUnicode_AsUTF8AndSize(item, &slen);
    char *copy = s == NULL ? NULL : malloc((size_t)slen + 1);
    if (copy == NULL) {
      Py_DECREF(fast);
      if (s != NULL)
        PyErr_NoMemory();
      return -1;
    }
    memcpy(copy, s, (size_t)slen + 1);
    ep->strings[ep->n_strings++] = copy;
    arr[i] = copy;
  }
  Py_DECREF(fast);
  *out = arr;
  *n = (size_t)len;
  return 0;
}

static PyObject *bound_or_null(PyObject *handler, PyObject *name) {
  PyObject *m = PyObject_GetAttr(handler, name);
  if (m == NULL)
    PyErr_Clear();
  return m;
}

/* One keyword option of add_endpoint: its name, how it converts (the
 * PyArg format letter it replaces: 'i' int, 'I' unsigned int, 'n'
 * Py_ssize_t, 'z' str or None, 'O' any object) and where it goes. */
typedef struct endpoint_kw {
  const char *name;
  char kind;
  void *dst;
} endpoint_kw;

/* Convert one option value into kw->dst as its kind says. 0, or -1 with
 * TypeError/OverflowError/ValueError set. */
static int endpoint_kw_set(const endpoint_kw *kw, PyObject *v) {
  switch (kw->kind) {
  case 'i': {
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred())
      return -1;
    if (x < INT_MIN || x > INT_MAX) {
      PyErr_Format(PyExc_OverflowError, "add_endpoint: %s is out of range", kw->name);
      return -1;
    }
    *(int *)kw->dst = (int)x;
    return 0;
  }
  case 'I': {
    unsigned long x = PyLong_AsUnsignedLongMask(v); /* as the 'I' format: no overflow check */
    if (x == (unsigned long)-1 && PyErr_Occurred())
      return -1;
    *(unsigned *)kw->dst = (unsigned)x;
    return 0;
  }
  case 'n': {
    Py_ssize_t x = PyNumber_AsSsize_t(v, PyExc_OverflowError);
    if (x == -1 && PyErr_Occurred())
      return -1;
    *(Py_ssize_t *)kw->dst = x;
    return 0;
  }
  case 'z': {
    const char *str = NULL;
    if (v != Py_None) {
      Py_ssize_t len;
      if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "add_endpoint: %s must be str or None", kw->name);
        return -1;
      }
      if ((str = PyUnicode_AsUTF8AndSize(v, &len)) == NULL)
        return -1;
      if ((size_t)len != strlen(str)) {
        PyErr_Format(PyExc_ValueError, "add_endpoint: %s has an embedded null character", kw->name);
        return -1;
      }
    }
    *(const char **)kw->dst = str; /* borrowed from the kwargs dict for the call */
    return 0;
  }
  default: /* 'O' */
    *(PyObject **)kw->dst = v;
    return 0;
  }
}

/* Fill the options in `table` (n rows) from the keyword dict; TypeError for
 * a name not in the table. 0 or -1. */
static int endpoint_kw_parse(const endpoint_kw *table, size_t n, PyObject *kwargs) {
  if (kwargs == NULL)
    return 0;
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(kwargs, &pos, &key, &value)) {
    const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
    if (name == NULL) {
      if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "add_endpoint: keywords must be strings");
      return -1;
    }
    size_t i = 0;
    while (i < n && strcmp(table[i].name, name) != 0)
      i++;
    if (i == n) {
      PyErr_Format(PyExc_TypeError, "add_endpoint() got an unexpected keyword argument '%s'", name);
      return -1;
    }
    if (endpoint_kw_set(&table[i], value) != 0)
      return -1;
  }
  return 0;
}

/* add_endpoint(pattern, handler, **options): the options are the keyword
 * table below, each optional (0/None: the core's default). */
static PyObject *server_add_endpoint(wpy_server *self, PyObject *args, PyObject *kw) {
  const char *pattern, *response_schema = NULL;
  PyObject *handler, *schemas = NULL, *subprotocols = NULL, *origins = NULL;
  int codec = 0, policy = 0;
  Py_ssize_t max_msg = 0, max_bp = 0, max_queued = 0, high_water = 0;
  unsigned idle = 0, pong = 0, flags = 0, send_timeout = 0, max_frags = 0, msg_timeout = 0;
  int compression = 0; /* permessage-deflate */
  Py_ssize_t z_threshold = 0;
  unsigned z_bits = 0;
  unsigned msg_rate = 0, msg_burst = 0; /* client limits */
  Py_ssize_t byte_rate = 0, byte_burst = 0;
  int rate_action = 0;
  const endpoint_kw table[] = {
      {"codec", 'i', &codec},
      {"message_schemas", 'O', &schemas},
      {"response_schema", 'z', &response_schema},
      {"invalid_policy", 'i', &policy},
      {"max_message_size", 'n', &max_msg},
      {"max_backpressure", 'n', &max_bp},
      {"idle_timeout_ms", 'I', &idle},
      {"pong_timeout_ms", 'I', &pong},
      {"subprotocols", 'O', &subprotocols},
      {"allowed_origins", 'O', &origins},
      {"schema_flags", 'I', &flags},
      {"max_queued_messages", 'n', &max_queued},
      {"send_high_water", 'n', &high_water},
      {"send_timeout_ms", 'I', &send_timeout},
      {"max_message_fragments", 'I', &max_frags},
      {"compression", 'i', &compression},
      {"compression_threshold", 'n', &z_threshold},
      {"compression_window_bits", 'I', &z_bits},
      {"message_rate", 'I', &msg_rate},
      {"message_burst", 'I', &msg_burst},
      {"byte_rate", 'n', &byte_rate},
      {"byte_burst", 'n', &byte_burst},
      {"rate_limit_action", 'i', &rate_action},
      {"message_timeout_ms", 'I', &msg_timeout},
  };
  if (!PyArg_ParseTuple(args, "sO:add_endpoint", &pattern, &handler) ||
      endpoint_kw_parse(table, sizeof table / sizeof table[0], kw) != 0)
    return NULL;
  if (z_threshold < 0) {
    PyErr_SetString(PyExc_ValueError, "compression_threshold must not be negative");
    return NULL;
  }
  if (byte_rate < 0 || byte_burst < 0) {
    PyErr_SetString(PyExc_ValueError, "byte_rate and byte_burst must not be negative");
    return NULL;
  }
  if (max_queued < 0 || high_water < 0) {
    PyErr_SetString(PyExc_ValueError,
                    "max_queued_messages and send_high_water must not be negative");
    return NULL;
  }
  wpy_endpoint *ep = calloc(1, sizeof *ep);
  wpy_endpoint **grown = realloc(self->endpoints, (self->n_endpoints + 1) * sizeof *grown);
  if (ep == NULL || grown == NULL) {
    free(ep);
    if (grown != NULL)
      self->endpoints = grown;
    return PyErr_NoMemory();
  }
  self->endpoints = grown;
  ep->server = self;
  ep->handler = Py_NewRef(handler);
  ep->on_connect = bound_or_null(handler, self->st->str_on_connect);
  ep->on_message = bound_or_null(handler, self->st->str_on_message);
  ep->on_close = bound_or_null(handler, self->st->str_on_close);
  ep->on_error = bound_or_null(handler, self->st->str_on_error);
  ep->on_drain = bound_or_null(handler, self->st->str_on_drain);
  ep->on_result = bound_or_null(handler, self->st->str_message_result);

  wire_endpoint_options o;
  memset(&o, 0, sizeof o);
  o.codec = (wire_codec)codec;
  o.response_schema = response_schema;
  o.invalid_policy = (wire_invalid_policy)policy;
  o.max_message_size = (size_t)max_msg;
  o.max_backpressure = (size_t)max_bp;
  o.idle_timeout_ms = idle;
  o.pong_timeout_ms = pong;
  o.schema_flags = flags;
  o.max_queued_messages = (size_t)max_queued;
  o.send_high_water = (size_t)high_water;
  o.send_timeout_ms = send_timeout;
  o.max_message_fragments = max_frags;
  o.compression = (wire_compression)compression;
  o.compression_threshold = (size_t)z_threshold;
  o.compression_window_bits = z_bits;
  o.message_rate = msg_rate; /* client limits */
  o.message_burst = msg_burst;
  o.byte_rate = (size_t)byte_rate;
  o.byte_burst = (size_t)byte_burst;
  o.rate_limit_action = rate_action;
  o.message_timeout_ms = msg_timeout;
  wire_callbacks cb = {cb_connect, cb_message, cb_close, ep->on_error ? cb_error : NULL,
                       ep->on_drain ? cb_drain : NULL};
  if (copy_strings(ep, schemas, (const char ***)&o.message_schemas, &o.n_message_schemas) != 0 ||
      copy_strings(ep, subprotocols, (const char ***)&o.subprotocols, &o.n_subprotocols) != 0 ||
      copy_strings(ep, origins, (const char ***)&o.allowed_origins, &o.n_allowed_origins) != 0) {
    endpoint_free(ep);
    return NULL;
  }
  wire_error err;
  memset(&err, 0, sizeof err);
  ep->own_encode = PyObject_HasAttrString(handler, "encode_published");
  int rc = wire_endpoint_add(self->server, pattern, &o, &cb, ep, &ep->wire_ep, &err);
  if (rc != 0) {
    endpoint_free(ep);
    return wpy_raise(self->st, rc, &err);
  }
  self->endpoints[self->n_endpoints++] = ep;
  Py_RETURN_NONE;
}

static PyObject *server_listen(wpy_server *self, PyObject *args) {
  const char *host;
  int port;
  if (!PyArg_ParseTuple(args, "si:listen", &host, &port))
    return NULL;
  int rc = wire_server_listen(self->server, host, port);
  if (rc != 0)
    return wpy_raise(self->st, rc, NULL);
  Py_RETURN_NONE;
}

/* TLS: certs is a sequence of (server_name or None, cert_file, key_file,
 * password or None); ca_file may be None. Fills o/cs (at most 16 certs);
 * the strings borrow from the returned sequence (a new reference the caller
 * drops after the call), or NULL with an exception set. */
#define WPY_MAX_TLS_CERTS 16
static PyObject *tls_options(PyObject *certs, PyObject *ca, wire_tls_options *o,
                             wire_tls_cert *cs) {
  memset(o, 0, sizeof *o);
  PyObject *seq = PySequence_Fast(certs, "certs must be a sequence");
  if (seq == NULL)
    return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  if (n < 1 || n > WPY_MAX_TLS_CERTS) {
    PyErr_SetString(PyExc_ValueError, "TLS needs 1 to 16 certificates");
    Py_DECREF(seq);
    return NULL;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
    memset(&cs[i], 0, sizeof cs[i]);
    if (!PyArg_ParseTuple(t, "zssz:certificate", &cs[i].server_name, &cs[i].cert_file,
                          &cs[i].key_file, &cs[i].key_password)) {
      Py_DECREF(seq);
      return NULL;
    }
  }
  o->certs = cs;
  o->n_certs = (size_t)n;
  if (ca != Py_None && (o->ca_file = PyUnicode_AsUTF8(ca)) == NULL) {
    Py_DECREF(seq);
    return NULL;
  }
  return seq;
}

static PyObject *server_listen_tls(wpy_server *self, PyObject *args) {
  const char *host;
  int port;
  PyObject *certs, *ca = Py_None;
  if (!PyArg_ParseTuple(args, "siO|O:listen_tls", &host, &port, &certs, &ca))
    return NULL;
  wire_tls_options o;
  wire_tls_cert cs[WPY_MAX_TLS_CERTS];
  PyObject *seq = tls_options(certs, ca, &o, cs);
  if (seq == NULL)
    return NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_listen_tls(self->server, host, port, &o, &err);
  Py_DECREF(seq);
  if (rc != 0)
    return wpy_raise(self->st, rc, &err);
  Py_RETURN_NONE;
}

static PyObject *server_tls_reload(wpy_server *self, PyObject *args) {
  PyObject *certs, *ca = Py_None;
  if (!PyArg_ParseTuple(args, "O|O:tls_reload", &certs, &ca))
    return NULL;
  wire_tls_options o;
  wire_tls_cert cs[WPY_MAX_TLS_CERTS];
  PyObject *seq = tls_options(certs, ca, &o, cs);
  if (seq == NULL)
    return NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_tls_reload(self->server, &o, &err);
  Py_DECREF(seq);
  if (rc != 0)
    return wpy_raise(self->st, rc, &err);
  Py_RETURN_NONE;
}

static PyObject *server_port(wpy_server *self, PyObject *unused) {
  return PyLong_FromLong(wire_server_port(self->server));
}

static PyObject *server_fd(wpy_server *self, PyObject *unused) {
  return PyLong_FromLong(wire_server_fd(self->server));
}

static PyObject *server_timeout(wpy_server *self, PyObject *unused) {
  return PyLong_FromLong(wire_server_timeout(self->server));
}

/* process() -> bool: run one non-blocking loop iteration (callbacks fire
 * here); False once the server has shut down. */
static PyObject *server_process(wpy_server *self, PyObject *unused) {
  if (self->closed)
    Py_RETURN_FALSE;
  int rc = wire_server_process(self->server);
  if (rc < 0)
    return wpy_raise(self->st, rc, NULL);
  if (PyErr_Occurred())
    return NULL;
  return PyBool_FromLong(rc > 0);
}

static void on_shutdown_done(wire_server *server, void *ud) {
  wpy_server *self = ud;
  self->closed = 1;
  PyObject *cb = self->shutdown_cb;
  self->shutdown_cb = NULL;
  if (cb != NULL && cb != Py_None) {
    PyObject *r = PyObject_CallNoArgs(cb);
    if (r == NULL)
      PyErr_WriteUnraisable(cb);
    Py_XDECREF(r);
  }
  Py_XDECREF(cb);
}

/* shutdown(timeout_ms=0, done=None): graceful stop; done() fires from a
 * later process() once every connection has closed. */
static PyObject *server_shutdown(wpy_server *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"timeout_ms", "done", NULL};
  unsigned timeout = 0;
  PyObject *done = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|IO:shutdown", kwlist, &timeout, &done))
    return NULL;
  Py_XSETREF(self->shutdown_cb, Py_NewRef(done));
  int rc = wire_server_shutdown(self->server, timeout, on_shutdown_done, self);
  if (rc != 0) {
    Py_CLEAR(self->shutdown_cb);
    return wpy_raise(self->st, rc, NULL);
  }
  Py_RETURN_NONE;
}

static PyObject *server_connection_count(wpy_server *self, PyObject *unused) {
  return PyLong_FromSize_t(wire_server_connection_count(self->server));
}

static PyObject *server_closed(wpy_server *self, void *unused) {
  return PyBool_FromLong(self->closed);
}

static PyMethodDef server_methods[] = {
    /* py_scaling.c */
    {"use_redis", (PyCFunction)(void (*)(void))wpy_server_use_redis, METH_VARARGS | METH_KEYWORDS,
     "use_redis(url, prefix=None, max_pending_bytes=0, on_state=None)"},
    {"broker_stats", (PyCFunction)wpy_server_broker_stats, METH_NOARGS,
     "The broker's counters (a dict), or None without a broker."},
    {"drain", (PyCFunction)wpy_server_drain, METH_VARARGS,
     "drain(timeout_ms=0): stop accepting, finish, then shut down."},
    {"add_endpoint", (PyCFunction)(void (*)(void))server_add_endpoint, METH_VARARGS | METH_KEYWORDS,
     "Register an endpoint on a path pattern."},
    {"listen", (PyCFunction)server_listen, METH_VARARGS, "listen(host, port)"},
    {"listen_tls", (PyCFunction)server_listen_tls, METH_VARARGS,
     "listen_tls(host, port, certs, ca_file=None): certs = [(server_name, cert, key, password)]"},
    {"tls_reload", (PyCFunction)server_tls_reload, METH_VARARGS,
     "tls_reload(certs, ca_file=None): new certificates for new connections"},
    {"port", (PyCFunction)server_port, METH_NOARGS, "The first listener's port, or -1."},
    {"fd", (PyCFunction)server_fd, METH_NOARGS, "The pollable backend fd of the core's loop."},
    {"timeout", (PyCFunction)server_timeout, METH_NOARGS,
     "Milliseconds until process() is due (-1: fd only, 0: now)."},
    {"process", (PyCFunction)server_process, METH_NOARGS, "Run one loop iteration."},
    {"shutdown", (PyCFunction)(void (*)(void))server_shutdown, METH_VARARGS | METH_KEYWORDS,
     "shutdown(timeout_ms=0, done=None)"},
    {"connection_count", (PyCFunction)server_connection_count, METH_NOARGS, "Open connections."},
    {"publish", (PyCFunction)(void (*)(void))wpy_server_publish, METH_VARARGS | METH_KEYWORDS,
     "publish(topic, message, exclude=None, default=None) -> int"},
    {"subscriber_count", (PyCFunction)wpy_server_subscriber_count, METH_O,
     "subscriber_count(topic) -> int"},
    /* py_metrics.c */
    {"set_metrics", (PyCFunction)wpy_server_set_metrics, METH_VARARGS,
     "set_metrics(metrics_path, health_path): GET paths on the WebSocket port (None = off)"},
    {"listen_metrics", (PyCFunction)wpy_server_listen_metrics, METH_VARARGS,
     "listen_metrics(host, port): a port serving only the metrics and health paths"},
    {"metrics_port", (PyCFunction)wpy_server_metrics_port, METH_NOARGS,
     "The metrics listener's port, or -1."},
    {"metrics", (PyCFunction)wpy_server_metrics, METH_O,
     "metrics(format) -> str: 0 Prometheus text, 1 JSON (summed over workers)"},
    {"set_log", (PyCFunction)wpy_server_set_log, METH_VARARGS,
     "set_log(callable | None, min_level): callable(level, event, fields)"},
    {"topic_history", (PyCFunction)(void (*)(void))wpy_server_topic_history, METH_FASTCALL,
     "topic_history(pattern, n, ttl_ms)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef server_getset[] = {
    {"closed", (getter)server_closed, NULL, "True once the shutdown completed.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot server_slots[] = {{Py_tp_new, server_new},
                                     {Py_tp_dealloc, server_dealloc},
                                     {Py_tp_traverse, server_traverse},
                                     {Py_tp_clear, server_clear},
                                     {Py_tp_methods, server_methods},
                                     {Py_tp_getset, server_getset},
                                     {Py_tp_doc, "A Wirecore server on its own event loop."},
                                     {0, NULL}};

PyType_Spec wpy_server_spec = {
    .name = "wirecore._native.Server",
    .basicsize = sizeof(wpy_server),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = server_slots,
};
