/*
 * conn.c -- the `_native.Conn` type: a Python handle on one wire_conn. It
 * holds a wire_conn_ref for its whole life, so it stays safe to call after
 * the connection closed (calls then raise ConnectionClosed). Sends copy their
 * input; values are built into the server's scratch doc and encoded by the core.
 */
#include "wirecore_py.h"

#include <structmember.h>
#include <string.h>

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
  return 0;
}

static int conn_clear(wpy_conn *self) {
  Py_CLEAR(self->handler_data);
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
  wpy_state *st = self->server->st;
  wire_doc *doc = wpy_doc_acquire(self->server);
  if (doc == NULL)
    return NULL;
  PyObject *out = NULL;
  wire_value *v = wpy_to_value(st, doc, args[0], nargs > 2 ? args[2] : NULL);
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

static PyObject *conn_pause(wpy_conn *self, PyObject *unused) {
  return check(self, wire_conn_pause(self->conn), NULL);
}

static PyObject *conn_resume(wpy_conn *self, PyObject *unused) {
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
  return Py_BuildValue(
      "(NNNNNNiN)", str_or_none(wire_request_path(req)), str_or_none(wire_request_target(req)),
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

static PyMethodDef conn_methods[] = {
    {"send_text", (PyCFunction)conn_send_text, METH_O, "Send a text message."},
    {"send_bytes", (PyCFunction)conn_send_bytes, METH_O, "Send a binary message."},
    {"send", (PyCFunction)(void (*)(void))conn_send, METH_FASTCALL,
     "send(obj, default=None): encode with the endpoint's codec and send."},
    {"send_encoded", (PyCFunction)(void (*)(void))conn_send_encoded, METH_FASTCALL,
     "send_encoded(obj, codec, default=None)"},
    {"close", (PyCFunction)(void (*)(void))conn_close, METH_VARARGS | METH_KEYWORDS,
     "close(code=1000, reason='')"},
    {"pause", (PyCFunction)conn_pause, METH_NOARGS, "Stop delivering messages."},
    {"resume", (PyCFunction)conn_resume, METH_NOARGS, "Resume delivering messages."},
    {"accept", (PyCFunction)conn_accept, METH_NOARGS,
     "Finish a deferred handshake with 101; False if the peer left."},
    {"reject", (PyCFunction)conn_reject, METH_VARARGS, "reject(status, body=None)"},
    {"request", (PyCFunction)conn_request, METH_NOARGS, "The handshake request as a tuple."},
    {NULL, NULL, 0, NULL}};

static PyMemberDef conn_members[] = {
    {"data", T_OBJECT, offsetof(wpy_conn, handler_data), 0, "Per-connection state."},
    {NULL, 0, 0, 0, NULL}};

static PyGetSetDef conn_getset[] = {
    {"id", (getter)conn_get_id, NULL, "Per-server connection id.", NULL},
    {"is_open", (getter)conn_get_is_open, NULL, "True while the connection is open.", NULL},
    {"buffered_amount", (getter)conn_get_buffered, NULL, "Bytes queued, not yet written.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot conn_slots[] = {
    {Py_tp_dealloc, conn_dealloc}, {Py_tp_traverse, conn_traverse},
    {Py_tp_clear, conn_clear},     {Py_tp_methods, conn_methods},
    {Py_tp_members, conn_members}, {Py_tp_getset, conn_getset},
    {Py_tp_doc, "One WebSocket connection."}, {0, NULL}};

PyType_Spec wpy_conn_spec = {
    .name = "wirecore._native.Conn",
    .basicsize = sizeof(wpy_conn),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = conn_slots,
};
