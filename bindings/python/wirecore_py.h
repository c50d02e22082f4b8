/*
 * wirecore_py.h -- declarations shared by the files of the CPython extension
 * module `wirecore._native`: the module state, the object layouts and the
 * value conversions. The glue only converts values and forwards calls; the
 * protocol, validation and dispatch live in the core.
 */
#ifndef WIRECORE_PY_H
#define WIRECORE_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "wirecore.h"


/* Everything the module owns lives here (PEP 489 multi-phase init): no static
 * mutable globals, so the module can be loaded in several interpreters. */
typedef struct wpy_state {
  PyObject *Error; /* wirecore.WirecoreError (base) */
  /* One class per error category (WIRE_ERRCAT_MAP), subclasses of Error:
   * cat[WIRE_ERRCAT_VALIDATION] is ValidationError, and so on. */
  PyObject *cat[WIRE_ERRCAT_COUNT];
  PyTypeObject *ServerType;
  PyTypeObject *ConnType;
  PyTypeObject *SchemaType;
  PyTypeObject *DispatcherType;
  PyTypeObject *MessageType; /* py_message.c: the base of WebSocketMessage */
  PyObject *MessageClass;    /* py_direct.c: WebSocketMessage itself, or NULL */
  PyObject *str_on_connect, *str_on_message, *str_on_close, *str_on_error, *str_on_drain;
  PyObject *str_message_result, *str_on_message_attr; /* "_message_result", "on_message" */
} wpy_state;

/* One endpoint's link back to Python: the handler object whose _on_* methods
 * the callbacks call (bound methods cached at registration). */
typedef struct wpy_endpoint {
  struct wpy_server *server; /* borrowed: the server owns its endpoints */
  PyObject *handler;
  PyObject *on_connect, *on_message, *on_close, *on_error, *on_drain; /* bound methods or NULL */
  PyObject *on_result; /* _message_result: what the direct path does not finish (py_direct.c) */
  char **strings; /* copies of option strings, freed with the endpoint */
  size_t n_strings;
  wire_endpoint *wire_ep; /* the core's endpoint */
  int own_encode; /* the handler has encode_published(value): publishes use it (py_topics.c) */
} wpy_endpoint;

typedef struct wpy_server {
  PyObject_HEAD
  wire_server *server;
  PyObject *module; /* strong: keeps the state alive while the server lives */
  wpy_state *st;
  wpy_endpoint **endpoints;
  size_t n_endpoints;
  PyObject *shutdown_cb;  /* called once the shutdown completed */
  wire_doc *scratch;      /* reused by sends to build outgoing values */
  int scratch_busy;       /* a send is building into scratch (a default hook may send) */
  int closed;             /* the shutdown finished; the loop is gone */
  PyObject *broker_cb;    /* py_scaling.c: broker state reports, or NULL */
  PyObject *log_cb;       /* py_metrics.c: log events, or NULL */
} wpy_server;

typedef struct wpy_conn {
  PyObject_HEAD
  wire_conn *conn;    /* holds one wire_conn_ref until dealloc */
  wpy_server *server; /* strong */
  PyObject *handler_data; /* any Python object the package attaches (per-connection state) */
  int data_held; /* the C side holds a reference to this object (wire_conn_set_data) */
  PyObject *failing; /* borrowed: the exception conn.fail()/invalid() is reporting */
  double t_handler;  /* py_metrics.c: when the running on_message started */
  uint8_t in_handler, timing_paused; /* inside on_message; it paused: time at resume */
  PyObject *direct; /* py_direct.c: the WebSocketResponse messages go to from C, or NULL */
} wpy_conn;

typedef struct wpy_schema {
  PyObject_HEAD
  wire_schema *schema;
  wpy_state *st;
  PyObject *module;
} wpy_schema;

/* module.c */
wpy_state *wpy_state_of_type(PyTypeObject *tp);
/* Set a Python exception for a WIRE_E* code (err may be NULL); returns NULL. */
PyObject *wpy_raise(wpy_state *st, int code, const wire_error *err);

/* py_scaling.c: the broker and the workers */
PyObject *wpy_server_use_redis(wpy_server *self, PyObject *args, PyObject *kw);
PyObject *wpy_server_broker_stats(wpy_server *self, PyObject *unused);
PyObject *wpy_server_drain(wpy_server *self, PyObject *args);
PyObject *wpy_supervise(PyObject *module, PyObject *args, PyObject *kw);
PyObject *wpy_worker_index(PyObject *module, PyObject *unused);
/* Build (not raise) the exception object for a code and error details. */
PyObject *wpy_error_object(wpy_state *st, int code, const wire_error *err);
/* The exception class of a code's category (borrowed). */
PyObject *wpy_error_class(wpy_state *st, int code);

/* convert.c */
/* A new reference for a decoded value, or NULL with DeserializationError set. */
PyObject *wpy_from_value(wpy_state *st, const wire_value *v);
/* Build `obj` into `doc`; `dflt` (may be NULL or None) converts unknown types.
 * Returns the value or NULL with SerializationError (or dflt's error) set. */
wire_value *wpy_to_value(wpy_state *st, wire_doc *doc, PyObject *obj, PyObject *dflt);

/* server.c, conn.c, schema.c: type specs */
extern PyType_Spec wpy_server_spec;
extern PyType_Spec wpy_conn_spec;
extern PyType_Spec wpy_schema_spec;
extern PyType_Spec wpy_dispatcher_spec;
extern PyType_Spec wpy_message_spec;
/* py_message.c: a new instance of cls (Message or a subclass) holding data,
 * or NULL with the error set. */
PyObject *wpy_message_new(PyTypeObject *cls, PyObject *data);
/* py_message.c: a Message's data (borrowed), or NULL with AttributeError set
 * when it was deleted. `msg` must be an instance of MessageType. */
PyObject *wpy_message_data(PyObject *msg);
/* A doc to build an outgoing value in: the server's scratch doc when free,
 * else a new one. Give it back with wpy_doc_release. NULL: MemoryError set. */
wire_doc *wpy_doc_acquire(wpy_server *server);
void wpy_doc_release(wpy_server *server, wire_doc *doc);
/* A new Conn object for `conn` (takes a wire_conn_ref). */
wpy_conn *wpy_conn_new(wpy_server *server, wire_conn *conn);
/* The Python exception now set escaped a callback: wire_conn_fail with it
 * (the endpoint's _on_error sees the exception itself), and when nothing
 * handled it, report it as unraisable in `where` (the connection closes
 * with 1011). Clears the exception. */
void wpy_conn_fail_current(wpy_conn *pc, PyObject *where);

/* py_topics.c: methods listed in the Conn and Server method tables. */
PyObject *wpy_conn_subscribe(wpy_conn *self, PyObject *topic);
PyObject *wpy_conn_unsubscribe(wpy_conn *self, PyObject *topic);
PyObject *wpy_conn_topics(wpy_conn *self, void *unused);
PyObject *wpy_server_publish(wpy_server *self, PyObject *args, PyObject *kw);
PyObject *wpy_server_subscriber_count(wpy_server *self, PyObject *topic);
PyObject *wpy_conn_subscribe_since(wpy_conn *self, PyObject *const *args, Py_ssize_t n);
PyObject *wpy_server_topic_history(wpy_server *self, PyObject *const *args, Py_ssize_t n);

/* py_direct.c: the callback style's message path in C */
PyObject *wpy_set_message_class(PyObject *module, PyObject *cls);
PyObject *wpy_conn_set_direct(wpy_conn *self, PyObject *response);
/* py_conn.c: send a WebSocketMessage as it came (str data as text, else
 * binary), a str as text, bytes/bytearray/memoryview as binary. 1 sent, 0
 * not one of those (nothing done), -1 error set (the send failed). */
int wpy_conn_send_plain(wpy_conn *self, PyObject *obj);
/* One message for a connection with pc->direct set: call the response's
 * on_message and finish its result. New reference (None) or NULL with the
 * error set (one that escaped _message_result). */
PyObject *wpy_direct_message(wpy_endpoint *ep, wpy_conn *pc, PyObject *payload);

/* py_metrics.c */
double wpy_now(void);
void wpy_observe_resumed(wpy_conn *pc);
PyObject *wpy_server_set_metrics(wpy_server *self, PyObject *args);
PyObject *wpy_server_listen_metrics(wpy_server *self, PyObject *args);
PyObject *wpy_server_metrics_port(wpy_server *self, PyObject *unused);
PyObject *wpy_server_metrics(wpy_server *self, PyObject *arg);
PyObject *wpy_server_set_log(wpy_server *self, PyObject *args);

#endif /* WIRECORE_PY_H */
