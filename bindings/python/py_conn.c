/*
 * py_conn.c -- the `_native.Conn` type: a Python handle on one wire_conn. It
 * holds a wire_conn_ref for its whole life, so it stays safe to call after
 * the connection closed (calls then raise ConnectionClosed). Sends copy their
 * input; values are built into the server's scratch doc and encoded by the core.
 */
#include "wirecore_py.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <structmember.h>

wpy_conn *wpy_conn_new(wpy_server *server, wire_conn *conn) {
  PyTypeObject *tp = server->st->ConnType;
  wpy_conn *self = (wpy_conn *)tp->tp_alloc(tp, 0);
  if (self == NULL)
    return NULL;
  wire_conn_ref(conn);
  self->conn = conn;
  self->server = (wpy_server *)Py_NewRef((PyObject *)server);
  return self;
}

static int conn_traverse(wpy_conn *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->server);
  Py_VISIT(self->handler_data);
  Py_VISIT(self->direct);
  return 0;
}

static int conn_clear(wpy_conn *self) {
  Py_CLEAR(self->handler_data);
  Py_CLEAR(self->direct);
  return 0;
}

static void conn_dealloc(wpy_conn *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  conn_clear(self);
  if (self->conn != NULL)
    wire_conn_unref(self->conn);
  Py_CLEAR(self->server);
  tp->tp_free(self);
  Py_DECREF(tp);
}

static PyObject *check(wpy_conn *self, int rc, const wire_error *err) {
  if (rc != 0)
    return wpy_raise(self->server->st, rc, err);
  Py_RETURN_NONE;
}

static PyObject *conn_send_text(wpy_conn *self, PyObject *arg) {
  Py_ssize_t len;
  const char *s = PyUnicode_AsUTF8AndSize(arg, &len);
  if (s == NULL)
    return NULL;
  return check(self, wire_conn_send_text(self->conn, s, (size_t)len), NULL);
}

static PyObject *conn_send_bytes(wpy_conn *self, PyObject *arg) {
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0)
    return NULL;
  int rc = wire_conn_send_binary(self->conn, view.buf, (size_t)view.len);
  PyBuffer_Release(&view);
  return check(self, rc, NULL);
}

/* send(obj, default=None): encode with the endpoint's codec after the
 * response-schema check (ValidationError / SerializationError: nothing sent). */
static PyObject *conn_send(wpy_conn *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 2) {
    PyErr_SetString(PyExc_TypeError, "send(obj, default=None)");
    return NULL;
  }
  wpy_state *st = self->server->st;
  wire_doc *doc = wpy_doc_acquire(self->server);
  if (doc == NULL)
    return NULL;
  PyObject *out = NULL;
  wire_value *v = wpy_to_value(st, doc, args[0], nargs > 1 ? args[1] : NULL);
  if (v != NULL) {
    wire_error err;
    err.code = 0;
    err.message[0] = err.path[0] = err.keyword[0] = err.schema_path[0] = 0;
    err.offset = 0;
    out = check(self, wire_conn_send_value(self->conn, v, &err), &err);
  }
  wpy_doc_release(self->server, doc);
  return out;
}

/* Encode obj with `codec` (JSON as text, MessagePack as binary) and send it;
 * no schema check. None, or NULL with the error set. */
static PyObject *send_encoded(wpy_conn *self, PyObject *obj, long codec, PyObject *dflt) {
  wpy_state *st = self->server->st;
  wire_doc *doc = wpy_doc_acquire(self->server);
  if (doc == NULL)
    return NULL;
  PyObject *out = NULL;
  wire_value *v = wpy_to_value(st, doc, obj, dflt);
  if (v != NULL) {
    const uint8_t *buf;
    size_t len;
    wire_error err;
    memset(&err, 0, sizeof err);
    int rc = wire_encode(doc, (wire_codec)codec, v, &buf, &len, &err);
    if (rc == 0)
      rc = codec == WIRE_CODEC_JSON ? wire_conn_send_text(self->conn, (const char *)buf, len)
                                    : wire_conn_send_binary(self->conn, buf, len);
    out = check(self, rc, &err);
  }
  wpy_doc_release(self->server, doc);
  return out;
}

/* send_encoded(obj, codec, default=None): encode with `codec` (not the
 * endpoint's) and send JSON as text, MessagePack as binary; no schema check. */
static PyObject *conn_send_encoded(wpy_conn *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs < 2 || nargs > 3) {
    PyErr_SetString(PyExc_TypeError, "send_encoded(obj, codec, default=None)");
    return NULL;
  }
  long codec = PyLong_AsLong(args[1]);
  if (codec == -1 && PyErr_Occurred())
    return NULL;
  return send_encoded(self, args[0], codec, nargs > 2 ? args[2] : NULL);
}

int wpy_conn_send_plain(wpy_conn *self, PyObject *obj) {
  if (PyObject_TypeCheck(obj, self->server->st->MessageType)) {
    obj = wpy_message_data(obj);
    if (obj == NULL)
      return -1;
  }
  PyObject *r;
  if (PyUnicode_Check(obj))
    r = conn_send_text(self, obj);
  else if (PyBytes_Check(obj) || PyByteArray_Check(obj) || PyMemoryView_Check(obj))
    r = conn_send_bytes(self, obj);
  else
    return 0;
  if (r == NULL)
    return -1;
  Py_DECREF(r);
  return 1;
}

/* send_message(obj, default=None): what wpy_conn_send_plain sends, anything
 * else as JSON text. */
static PyObject *conn_send_message(wpy_conn *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 2) {
    PyErr_SetString(PyExc_TypeError, "send_message(obj, default=None)");
    return NULL;
  }
  int sent = wpy_conn_send_plain(self, args[0]);
  if (sent != 0)
    return sent > 0 ? Py_NewRef(Py_None) : NULL;
  return send_encoded(self, args[0], WIRE_CODEC_JSON, nargs > 1 ? args[1] : NULL);
}

static PyObject *conn_close(wpy_conn *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"code", "reason", NULL};
  int code = 1000;
  const char *reason = "";
  Py_ssize_t rlen = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|is#:close", kwlist, &code, &reason, &rlen))
    return NULL;
  int rc = wire_conn_close(self->conn, code, reason, (size_t)rlen);
  if (rc == WIRE_ECLOSED)
    Py_RETURN_NONE; /* closing twice is not an error */
  return check(self, rc, NULL);
}

/* wire_error for a Python exception: `code`, str(exc) as the message, and a
 * ValidationError's path/keyword/schema_path. */
static void error_from_exception(wire_error *err, int code, PyObject *exc) {
  memset(err, 0, sizeof *err);
  err->code = code;
  if (exc == NULL)
    return;
  PyObject *s = PyObject_Str(exc);
  const char *m = s != NULL ? PyUnicode_AsUTF8(s) : NULL;
  if (m != NULL)
    snprintf(err->message, sizeof err->message, "%s", m);
  Py_XDECREF(s);
  static const struct {
    const char *attr;
    size_t off, cap;
  } fields[] = {{"path", offsetof(wire_error, path), sizeof err->path},
                {"keyword", offsetof(wire_error, keyword), sizeof err->keyword},
                {"schema_path", offsetof(wire_error, schema_path), sizeof err->schema_path}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    PyObject *v = PyObject_GetAttrString(exc, fields[i].attr);
    const char *t = v != NULL && PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
    if (t != NULL)
      snprintf((char *)err + fields[i].off, fields[i].cap, "%s", t);
    Py_XDECREF(v);
  }
  PyErr_Clear();
}

/* wire_conn_fail with `exc` stashed for the endpoint's _on_error. */
static int fail_with(wpy_conn *self, PyObject *exc) {
  wire_error err;
  error_from_exception(&err, WIRE_EHANDLER, exc);
  PyObject *outer = self->failing;
  self->failing = exc;
  Py_INCREF(self);
  int rc = wire_conn_fail(self->conn, &err);
  self->failing = outer;
  Py_DECREF(self);
  return rc;
}

void wpy_conn_fail_current(wpy_conn *pc, PyObject *where) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb != NULL && value != NULL)
    PyException_SetTraceback(value, tb);
  int rc = pc != NULL ? fail_with(pc, value) : 0;
  if (rc == 1) { /* the endpoint's _on_error took it */
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return;
  }
  PyErr_Restore(type, value, tb);
  PyErr_WriteUnraisable(where); /* the core closes with 1011 (rc 0) */
}

/* fail(exc=None) -> bool: report exc to the endpoint's _on_error; unless it
 * returns True the connection closes with 1011. True when handled; False
 * when closing (or already closed). */
static PyObject *conn_fail(wpy_conn *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs > 1) {
    PyErr_SetString(PyExc_TypeError, "fail(exc=None)");
    return NULL;
  }
  PyObject *exc = nargs == 1 && args[0] != Py_None ? args[0] : NULL;
  int rc = fail_with(self, exc);
  if (rc == WIRE_ECLOSED)
    Py_RETURN_FALSE;
  if (rc < 0)
    return wpy_raise(self->server->st, rc, NULL);
  return PyBool_FromLong(rc);
}

/* invalid(exc) -> bool: a message this process's own codec refused. exc is a
 * DeserializationError, ValidationError or UnknownMessageError; the core
 * reports it to _on_error and, unless handled, applies the endpoint's
 * invalid-message policy. True when _on_error handled it. */
static PyObject *conn_invalid(wpy_conn *self, PyObject *exc) {
  wpy_state *st = self->server->st;
  int code = 0;
  if (PyObject_IsInstance(exc, st->cat[WIRE_ERRCAT_VALIDATION]) == 1)
    code = WIRE_EVALIDATION;
  else if (PyObject_IsInstance(exc, st->cat[WIRE_ERRCAT_UNKNOWN_MESSAGE]) == 1)
    code = WIRE_EUNKNOWN_MESSAGE;
  else if (PyObject_IsInstance(exc, st->cat[WIRE_ERRCAT_DESERIALIZE]) == 1)
    code = WIRE_EDESERIALIZE;
  if (PyErr_Occurred())
    return NULL;
  if (code == 0) {
    PyErr_SetString(PyExc_TypeError, "invalid() takes a DeserializationError, ValidationError or "
                                     "UnknownMessageError");
    return NULL;
  }
  wire_error err;
  error_from_exception(&err, code, exc);
  PyObject *outer = self->failing;
  self->failing = exc;
  Py_INCREF(self);
  int rc = wire_conn_invalid(self->conn, &err);
  self->failing = outer;
  Py_DECREF(self);
  if (rc == WIRE_ECLOSED)
    Py_RETURN_FALSE;
  if (rc < 0)
    return wpy_raise(st, rc, NULL);
  return PyBool_FromLong(rc);
}

/* hold(): the package keeps the message it was given in its own inbox; the
 * core stops reading at max_queued_messages. */
static PyObject *conn_hold(wpy_conn *self, PyObject *unused) {
  int rc = wire_conn_hold(self->conn);
  if (rc == WIRE_ECLOSED)
    Py_RETURN_NONE; /* after on_close there is nothing to bound */
  return check(self, rc, NULL);
}

/* consumed(n=1): the application took n held messages out of the inbox. */
static PyObject *conn_consumed(wpy_conn *self, PyObject *const *args, Py_ssize_t nargs) {
  Py_ssize_t n = 1;
  if (nargs > 1 || (nargs == 1 && (n = PyLong_AsSsize_t(args[0])) < 0)) {
    if (!PyErr_Occurred())
      PyErr_SetString(PyExc_ValueError, "consumed(n=1) with n >= 0");
    return NULL;
  }
  int rc = wire_conn_consumed(self->conn, (size_t)n);
  if (rc == WIRE_ECLOSED)
    Py_RETURN_NONE;
  if (rc == WIRE_EINVAL) {
    PyErr_SetString(PyExc_ValueError, "consumed more messages than are held");
    return NULL;
  }
  return check(self, rc, NULL);
}

/* writable() -> bool: open and at or below send_high_water. False promises
 * one _on_drain(conn) call (unless the connection closes first). */
static PyObject *conn_writable(wpy_conn *self, PyObject *unused) {
  return PyBool_FromLong(wire_conn_writable(self->conn));
}

static PyObject *conn_pause(wpy_conn *self, PyObject *unused) {
  if (self->in_handler) /* metrics: the handler awaits; time it until resume */
    self->timing_paused = 1;
  return check(self, wire_conn_pause(self->conn), NULL);
}

static PyObject *conn_resume(wpy_conn *self, PyObject *unused) {
  wpy_observe_resumed(self); /* metrics */
  return check(self, wire_conn_resume(self->conn), NULL);
}

/* The C side keeps this object (wire_conn_set_data) from on_connect until
 * on_close; a deferred handshake that ends without an upgrade drops it here. */
static void release_if_not_open(wpy_conn *self, int rc, int accepted) {
  if ((rc != 0 || !accepted) && self->data_held && wire_conn_get_data(self->conn) == self) {
    wire_conn_set_data(self->conn, NULL);
    self->data_held = 0;
    Py_DECREF(self);
  }
}

static PyObject *conn_accept(wpy_conn *self, PyObject *unused) {
  Py_INCREF(self);
  int rc = wire_conn_accept(self->conn);
  release_if_not_open(self, rc, 1);
  PyObject *r = rc == WIRE_ECLOSED ? Py_NewRef(Py_False) : check(self, rc, NULL);
  if (r == Py_None) {
    Py_DECREF(r);
    r = Py_NewRef(Py_True);
  }
  Py_DECREF(self);
  return r;
}

static PyObject *conn_reject(wpy_conn *self, PyObject *args) {
  int status;
  const char *body = NULL;
  if (!PyArg_ParseTuple(args, "i|z:reject", &status, &body))
    return NULL;
  Py_INCREF(self);
  int rc = wire_conn_reject(self->conn, status, body);
  release_if_not_open(self, rc, 0);
  PyObject *r = rc == WIRE_ECLOSED ? Py_NewRef(Py_None) : check(self, rc, NULL);
  Py_DECREF(self);
  return r;
}

static PyObject *str_or_none(wire_str s) {
  if (s.ptr == NULL)
    Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(s.ptr, (Py_ssize_t)s.len, "surrogateescape");
}

typedef int (*pair_at_fn)(const wire_request *, size_t, wire_str *, wire_str *);

static PyObject *pairs(const wire_request *req, size_t n, pair_at_fn at) {
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (list == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    wire_str k = {NULL, 0}, v = {NULL, 0};
    at(req, i, &k, &v);
    PyObject *t = Py_BuildValue("(NN)", str_or_none(k), str_or_none(v));
    if (t == NULL) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, t);
  }
  return list;
}

/* request() -> (path, target, params, query, headers, remote_addr,
 * remote_port, subprotocol); lists of (name, value) pairs. */
static PyObject *conn_request(wpy_conn *self, PyObject *unused) {
  const wire_request *req = wire_conn_request(self->conn);
  if (req == NULL)
    return wpy_raise(self->server->st, WIRE_ECLOSED, NULL);
  return Py_BuildValue("(NNNNNNiN)", str_or_none(wire_request_path(req)),
                       str_or_none(wire_request_target(req)),
                       pairs(req, wire_request_param_count(req), wire_request_param_at),
                       pairs(req, wire_request_query_count(req), wire_request_query_at),
                       pairs(req, wire_request_header_count(req), wire_request_header_at),
                       str_or_none(wire_request_remote_addr(req)), wire_request_remote_port(req),
                       str_or_none(wire_request_subprotocol(req)));
}

static PyObject *conn_get_id(wpy_conn *self, void *unused) {
  return PyLong_FromUnsignedLongLong(wire_conn_id(self->conn));
}

static PyObject *conn_get_is_open(wpy_conn *self, void *unused) {
  return PyBool_FromLong(wire_conn_is_open(self->conn));
}

static PyObject *conn_get_buffered(wpy_conn *self, void *unused) {
  return PyLong_FromSize_t(wire_conn_buffered_amount(self->conn));
}

static PyObject *conn_get_queued(wpy_conn *self, void *unused) {
  return PyLong_FromSize_t(wire_conn_queued(self->conn));
}

static PyMethodDef conn_methods[] = {
    {"send_text", (PyCFunction)conn_send_text, METH_O, "Send a text message."},
    {"send_bytes", (PyCFunction)conn_send_bytes, METH_O, "Send a binary message."},
    {"send", (PyCFunction)(void (*)(void))conn_send, METH_FASTCALL,
     "send(obj, default=None): encode with the endpoint's codec and send."},
    {"send_encoded", (PyCFunction)(void (*)(void))conn_send_encoded, METH_FASTCALL,
     "send_encoded(obj, codec, default=None)"},
    {"send_message", (PyCFunction)(void (*)(void))conn_send_message, METH_FASTCALL,
     "send_message(obj, default=None): str/message text as text, bytes as binary, else JSON."},
    {"close", (PyCFunction)(void (*)(void))conn_close, METH_VARARGS | METH_KEYWORDS,
     "close(code=1000, reason='')"},
    {"pause", (PyCFunction)conn_pause, METH_NOARGS, "Stop delivering messages."},
    {"resume", (PyCFunction)conn_resume, METH_NOARGS, "Resume delivering messages."},
    {"accept", (PyCFunction)conn_accept, METH_NOARGS,
     "Finish a deferred handshake with 101; False if the peer left."},
    {"reject", (PyCFunction)conn_reject, METH_VARARGS, "reject(status, body=None)"},
    {"request", (PyCFunction)conn_request, METH_NOARGS, "The handshake request as a tuple."},
    {"fail", (PyCFunction)(void (*)(void))conn_fail, METH_FASTCALL,
     "fail(exc=None) -> bool: _on_error(conn, exc), else close with 1011."},
    {"invalid", (PyCFunction)conn_invalid, METH_O,
     "invalid(exc) -> bool: the endpoint's invalid-message policy for a refused message."},
    {"hold", (PyCFunction)conn_hold, METH_NOARGS,
     "Count one message kept in the package's inbox (max_queued_messages)."},
    {"consumed", (PyCFunction)(void (*)(void))conn_consumed, METH_FASTCALL,
     "consumed(n=1): n held messages were taken out of the inbox."},
    {"writable", (PyCFunction)conn_writable, METH_NOARGS,
     "writable() -> bool: at or below send_high_water; False promises _on_drain."},
    {"subscribe", (PyCFunction)wpy_conn_subscribe, METH_O, "subscribe(topic)"},
    {"set_direct", (PyCFunction)wpy_conn_set_direct, METH_O,
     "set_direct(response | None): messages go to response.on_message from C."},
    {"subscribe_since", (PyCFunction)(void (*)(void))wpy_conn_subscribe_since, METH_FASTCALL,
     "subscribe_since(topic, since) -> (recovered, reason, position, replayed)"},
    {"unsubscribe", (PyCFunction)wpy_conn_unsubscribe, METH_O,
     "unsubscribe(topic) -> bool: True when it was subscribed."},
    {NULL, NULL, 0, NULL}};

static PyMemberDef conn_members[] = {
    {"data", T_OBJECT, offsetof(wpy_conn, handler_data), 0, "Per-connection state."},
    {NULL, 0, 0, 0, NULL}};

static PyGetSetDef conn_getset[] = {
    {"id", (getter)conn_get_id, NULL, "Per-server connection id.", NULL},
    {"is_open", (getter)conn_get_is_open, NULL, "True while the connection is open.", NULL},
    {"buffered_amount", (getter)conn_get_buffered, NULL, "Bytes queued, not yet written.", NULL},
    {"queued", (getter)conn_get_queued, NULL, "Received messages waiting (paused or held).", NULL},
    {"topics", (getter)wpy_conn_topics, NULL, "The connection's topics (list of str).", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot conn_slots[] = {{Py_tp_dealloc, conn_dealloc},
                                   {Py_tp_traverse, conn_traverse},
                                   {Py_tp_clear, conn_clear},
                                   {Py_tp_methods, conn_methods},
                                   {Py_tp_members, conn_members},
                                   {Py_tp_getset, conn_getset},
                                   {Py_tp_doc, "One WebSocket connection."},
                                   {0, NULL}};

PyType_Spec wpy_conn_spec = {
    .name = "wirecore._native.Conn",
    .basicsize = sizeof(wpy_conn),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = conn_slots,
};
