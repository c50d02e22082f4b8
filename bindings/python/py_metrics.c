/*
 * py_metrics.c -- metrics, health and logs for Python: Server.set_metrics /
 * listen_metrics / metrics_port / metrics (the rendered text), the log
 * callback that hands core events to a Python callable, and the handler
 * timing around on_message (wire_server_observe), finished at resume for a
 * handler that paused its connection (a coroutine that awaited).
 */
#include "wirecore_py.h"

#include <time.h>

double wpy_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A handler that paused its connection finished: its whole time counts. */
void wpy_observe_resumed(wpy_conn *pc) {
  if (!pc->timing_paused)
    return;
  pc->timing_paused = 0;
  wire_endpoint *ep = wire_conn_endpoint(pc->conn);
  if (ep != NULL)
    wire_server_observe(wire_conn_server(pc->conn), ep, wpy_now() - pc->t_handler);
}

PyObject *wpy_server_set_metrics(wpy_server *self, PyObject *args) {
  const char *mp = NULL, *hp = NULL;
  if (!PyArg_ParseTuple(args, "zz:set_metrics", &mp, &hp))
    return NULL;
  int rc = wire_server_set_metrics(self->server, mp, hp);
  if (rc != 0)
    return wpy_raise(self->st, rc, NULL);
  Py_RETURN_NONE;
}

PyObject *wpy_server_listen_metrics(wpy_server *self, PyObject *args) {
  const char *host;
  int port;
  if (!PyArg_ParseTuple(args, "si:listen_metrics", &host, &port))
    return NULL;
  int rc = wire_server_listen_metrics(self->server, host, port);
  if (rc != 0)
    return wpy_raise(self->st, rc, NULL);
  Py_RETURN_NONE;
}

PyObject *wpy_server_metrics_port(wpy_server *self, PyObject *unused) {
  return PyLong_FromLong(wire_server_metrics_port(self->server));
}

/* metrics(format) -> str: 0 Prometheus text, 1 JSON. */
PyObject *wpy_server_metrics(wpy_server *self, PyObject *arg) {
  int format = PyLong_AsLong(arg);
  if (format == -1 && PyErr_Occurred())
    return NULL;
  int64_t n = wire_server_metrics_render(self->server, format, NULL, 0);
  if (n < 0)
    return wpy_raise(self->st, (int)n, NULL);
  char *buf = PyMem_Malloc((size_t)n + 1);
  if (buf == NULL)
    return PyErr_NoMemory();
  int64_t m = wire_server_metrics_render(self->server, format, buf, (size_t)n + 1);
  PyObject *r = m < 0 ? wpy_raise(self->st, (int)m, NULL)
                      : PyUnicode_DecodeUTF8(buf, m < n ? m : n, "replace");
  PyMem_Free(buf);
  return r;
}

/* One event to the callable: cb(level, event, fields: dict). */
static void on_log(const wire_log_event *ev, void *ud) {
  wpy_server *self = ud;
  if (self->log_cb == NULL)
    return;
  PyObject *fields = Py_BuildValue(
      "{s:K,s:s,s:i,s:s,s:i,s:i,s:s,s:s,s:d,s:K,s:K}", "conn", (unsigned long long)ev->conn_id,
      "remote", ev->remote, "port", ev->remote_port, "path", ev->path, "status", ev->status, "code",
      ev->close_code, "error", ev->error ? wire_err_name(ev->error) : "", "message", ev->message,
      "duration", ev->duration, "bytes_in", (unsigned long long)ev->bytes_in, "bytes_out",
      (unsigned long long)ev->bytes_out);
  PyObject *r =
      fields ? PyObject_CallFunction(self->log_cb, "isO", ev->level, ev->event, fields) : NULL;
  Py_XDECREF(fields);
  if (r == NULL)
    PyErr_WriteUnraisable(self->log_cb);
  Py_XDECREF(r);
}

/* set_log(callable | None, min_level) */
PyObject *wpy_server_set_log(wpy_server *self, PyObject *args) {
  PyObject *cb;
  int level = 0;
  if (!PyArg_ParseTuple(args, "Oi:set_log", &cb, &level))
    return NULL;
  if (cb != Py_None && !PyCallable_Check(cb)) {
    PyErr_SetString(PyExc_TypeError, "set_log needs a callable or None");
    return NULL;
  }
  Py_XSETREF(self->log_cb, cb == Py_None ? NULL : Py_NewRef(cb));
  int rc = wire_server_set_log(self->server, self->log_cb ? on_log : NULL, self, level);
  if (rc != 0)
    return wpy_raise(self->st, rc, NULL);
  Py_RETURN_NONE;
}
