/*
 * py_scaling.c -- the Python glue of the broker and the workers: forwards
 * Server.use_redis / broker_stats / drain to the core, the broker's state
 * reports to a Python callable, and wirecore._native.supervise /
 * worker_index to wire_supervise with CPython's fork hooks around each fork.
 */
#include "wirecore_py.h"

#include <string.h>

/* A broker state report: on_state(state, message). An exception in it is
 * printed, never propagated into the core's loop. */
static void on_broker_state(wire_server *s, wire_broker_state state, const char *msg, void *ud) {
  wpy_server *self = ud;
  if (self->broker_cb == NULL)
    return;
  PyObject *r = PyObject_CallFunction(self->broker_cb, "is", (int)state, msg ? msg : "");
  if (r == NULL)
    PyErr_WriteUnraisable(self->broker_cb);
  Py_XDECREF(r);
}

PyObject *wpy_server_use_redis(wpy_server *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"url", "prefix", "max_pending_bytes", "on_state", NULL};
  const char *url, *prefix = NULL;
  Py_ssize_t max_pending = 0;
  PyObject *on_state = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s|znO:use_redis", kwlist, &url, &prefix, &max_pending,
                                   &on_state))
    return NULL;
  if (max_pending < 0)
    return PyErr_Format(PyExc_ValueError, "max_pending_bytes must be >= 0");
  wire_redis_options o;
  memset(&o, 0, sizeof o);
  o.prefix = prefix;
  o.max_pending_bytes = (size_t)max_pending;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_server_use_redis(self->server, url, &o, &err);
  if (rc != 0)
    return wpy_raise(self->st, rc, &err);
  if (on_state != Py_None) {
    Py_XSETREF(self->broker_cb, Py_NewRef(on_state));
    wire_server_on_broker_state(self->server, on_broker_state, self);
  }
  Py_RETURN_NONE;
}

PyObject *wpy_server_broker_stats(wpy_server *self, PyObject *unused) {
  wire_broker_stats st;
  if (wire_server_broker_stats(self->server, &st) != 0)
    Py_RETURN_NONE;
  static const char *names[] = {"connecting", "up", "down"};
  return Py_BuildValue(
      "{s:s,s:K,s:K,s:K,s:K,s:K,s:K,s:n}", "state", names[st.state <= 2 ? st.state : 0],
      "published", (unsigned long long)st.published, "dropped", (unsigned long long)st.dropped,
      "received", (unsigned long long)st.received, "invalid", (unsigned long long)st.invalid,
      "reconnects", (unsigned long long)st.reconnects, "channels", (unsigned long long)st.channels,
      "pending_bytes", (Py_ssize_t)st.pending_bytes);
}

PyObject *wpy_server_drain(wpy_server *self, PyObject *args) {
  unsigned timeout = 0;
  if (!PyArg_ParseTuple(args, "|I:drain", &timeout))
    return NULL;
  int rc = wire_server_drain(self->server, timeout, NULL, NULL);
  if (rc != 0)
    return wpy_raise(self->st, rc, NULL);
  Py_RETURN_NONE;
}

/* ---- workers ------------------------------------------------------------------ */

typedef struct sup_call {
  PyObject *fn;
} sup_call;

static void before_fork(void *ud) {
  PyOS_BeforeFork();
}

static void after_fork(int child, void *ud) {
  if (child)
    PyOS_AfterFork_Child();
  else
    PyOS_AfterFork_Parent();
}

/* In the child: fn(index); its int result (None: 0) is the exit status; an
 * exception is printed and exits 1. */
static int run_worker(unsigned index, void *ud) {
  sup_call *c = ud;
  PyObject *r = PyObject_CallFunction(c->fn, "I", index);
  int status = 0;
  if (r == NULL) {
    if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
      PyErr_Clear();
    } else {
      PyErr_Print();
      status = 1;
    }
  } else if (PyLong_Check(r)) {
    status = (int)PyLong_AsLong(r);
  }
  Py_XDECREF(r);
  return status;
}

/* The supervisor holds the GIL throughout: CPython's fork hooks need it, and
 * no other Python thread may run in a process that forks. */
PyObject *wpy_supervise(PyObject *module, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"workers", "fn", "name", NULL};
  unsigned workers = 0;
  PyObject *fn;
  const char *name = "wirecore";
  if (!PyArg_ParseTupleAndKeywords(args, kw, "IO|s:supervise", kwlist, &workers, &fn, &name))
    return NULL;
  if (!PyCallable_Check(fn))
    return PyErr_Format(PyExc_TypeError, "fn must be callable");
  sup_call c = {fn};
  wire_supervisor_options o;
  memset(&o, 0, sizeof o);
  o.workers = workers;
  o.name = name;
  o.before_fork = before_fork;
  o.after_fork = after_fork;
  int rc = wire_supervise(&o, run_worker, &c);
  if (rc < 0)
    return PyErr_Format(PyExc_OSError, "cannot supervise workers: %s", wire_strerror(rc));
  return PyLong_FromLong(rc);
}

PyObject *wpy_worker_index(PyObject *module, PyObject *unused) {
  return PyLong_FromLong(wire_worker_index());
}
