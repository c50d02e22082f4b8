/*
 * py_direct.c -- the callback style's per-message path in C. Once a
 * connection is open, the package hands its WebSocketResponse to the Conn
 * (conn.set_direct); each message then calls response.on_message with a
 * WebSocketMessage, runs a returned coroutine's first step, and sends a str,
 * bytes-like or WebSocketMessage reply here (wpy_conn_send_plain), with no
 * Python frame but the user's.
 * Every other outcome (an exception, a coroutine that suspends, another
 * value) goes to the endpoint's _message_result(conn, kind, a, b), which
 * finishes it exactly as the Python path would.
 */
#include "wirecore_py.h"

/* Outcomes handed to _message_result. */
enum { WPY_RESULT_RAISED = 0, WPY_RESULT_SUSPENDED = 1, WPY_RESULT_VALUE = 2 };

/* set_message_class(cls): the WebSocketMessage class (a subclass of
 * Message) that the direct path creates. TypeError for another class. */
PyObject *wpy_set_message_class(PyObject *module, PyObject *cls) {
  wpy_state *st = PyModule_GetState(module);
  if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, st->MessageType)) {
    PyErr_SetString(PyExc_TypeError, "set_message_class needs a subclass of Message");
    return NULL;
  }
  Py_XSETREF(st->MessageClass, Py_NewRef(cls));
  Py_RETURN_NONE;
}

/* conn.set_direct(response | None): deliver this connection's messages to
 * response.on_message from C (None: back to the endpoint's _on_message).
 * RuntimeError before set_message_class. */
PyObject *wpy_conn_set_direct(wpy_conn *self, PyObject *response) {
  if (response != Py_None && self->server->st->MessageClass == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "set_message_class was not called");
    return NULL;
  }
  Py_XSETREF(self->direct, response == Py_None ? NULL : Py_NewRef(response));
  Py_RETURN_NONE;
}

/* endpoint._message_result(conn, kind, a, b); RAISED takes the exception now
 * set. Returns its result (new reference) or NULL with its error set. */
static PyObject *to_python(wpy_endpoint *ep, wpy_conn *pc, int kind, PyObject *a, PyObject *b) {
  PyObject *exc = NULL;
  if (kind == WPY_RESULT_RAISED) {
    PyObject *type, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb != NULL && exc != NULL)
      PyException_SetTraceback(exc, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    a = exc;
  }
  if (ep->on_result == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "the endpoint has no _message_result");
    Py_XDECREF(exc);
    return NULL;
  }
  PyObject *k = PyLong_FromLong(kind); /* a cached small int */
  PyObject *args[4] = {(PyObject *)pc, k, a != NULL ? a : Py_None, b != NULL ? b : Py_None};
  PyObject *r = PyObject_Vectorcall(ep->on_result, args, 4, NULL);
  Py_XDECREF(k);
  Py_XDECREF(exc);
  return r;
}

/* Complete the handler's return value r (stolen): step a coroutine once,
 * send a plain reply, else hand it to Python. New reference or NULL. */
static PyObject *complete(wpy_endpoint *ep, wpy_conn *pc, PyObject *r) {
  if (PyCoro_CheckExact(r)) {
    PyObject *v = NULL;
    PySendResult s = PyIter_Send(r, Py_None, &v);
    if (s == PYGEN_ERROR) {
      Py_DECREF(r);
      return to_python(ep, pc, WPY_RESULT_RAISED, NULL, NULL);
    }
    if (s == PYGEN_NEXT) {
      PyObject *out = to_python(ep, pc, WPY_RESULT_SUSPENDED, r, v);
      Py_DECREF(r);
      Py_DECREF(v);
      return out;
    }
    Py_SETREF(r, v); /* finished: its return value */
  }
  if (r == Py_None)
    return r;
  int sent = wpy_conn_send_plain(pc, r);
  PyObject *out = sent > 0    ? Py_NewRef(Py_None)
                  : sent == 0 ? to_python(ep, pc, WPY_RESULT_VALUE, r, NULL)
                              : to_python(ep, pc, WPY_RESULT_RAISED, NULL, NULL);
  Py_DECREF(r);
  return out;
}

PyObject *wpy_direct_message(wpy_endpoint *ep, wpy_conn *pc, PyObject *payload) {
  wpy_state *st = ep->server->st;
  PyObject *fn = PyObject_GetAttr(pc->direct, st->str_on_message_attr);
  if (fn == NULL)
    return to_python(ep, pc, WPY_RESULT_RAISED, NULL, NULL);
  if (fn == Py_None)
    return fn; /* no on_message: the message is not answered */
  PyTypeObject *cls = (PyTypeObject *)st->MessageClass;
  PyObject *msg = wpy_message_new(cls, payload);
  if (msg == NULL) {
    Py_DECREF(fn);
    return to_python(ep, pc, WPY_RESULT_RAISED, NULL, NULL);
  }
  PyObject *r = PyObject_CallOneArg(fn, msg);
  Py_DECREF(fn);
  Py_DECREF(msg);
  if (r == NULL)
    return to_python(ep, pc, WPY_RESULT_RAISED, NULL, NULL);
  return complete(ep, pc, r);
}
