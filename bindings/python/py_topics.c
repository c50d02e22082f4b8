/*
 * py_topics.c -- topics on the `_native` types: Conn.subscribe/unsubscribe/
 * topics and Server.publish/subscriber_count. Forwards to the core's topic
 * calls (wire_conn_subscribe, wire_server_publish[_value]); the method
 * tables of py_conn.c and py_server.c list these functions.
 */
#include "wirecore_py.h"

#include <string.h>

/* The UTF-8 bytes of a topic (a str), or NULL with TypeError set. */
static const char *topic_arg(PyObject *topic, Py_ssize_t *len) {
  if (!PyUnicode_Check(topic)) {
    PyErr_Format(PyExc_TypeError, "topic must be str, not %.100s", Py_TYPE(topic)->tp_name);
    return NULL;
  }
  return PyUnicode_AsUTF8AndSize(topic, len);
}

/* Raise the error class of a failed topic call: a bad topic or too many topics
 * are ConfigError, a closed connection ConnectionClosed. */
static PyObject *topic_error(wpy_state *st, int rc) {
  wire_error err;
  memset(&err, 0, sizeof err);
  err.code = rc;
  if (rc == WIRE_EINVAL)
    snprintf(err.message, sizeof err.message, "a topic is 1..%u bytes of UTF-8",
             WIRE_MAX_TOPIC_LENGTH);
  else
    snprintf(err.message, sizeof err.message, "%s", wire_strerror(rc));
  return wpy_raise(st, rc, &err);
}

/* subscribe(topic): ConfigError for a bad topic or too many topics,
 * ConnectionClosed once the connection is closing. */
PyObject *wpy_conn_subscribe(wpy_conn *self, PyObject *topic) {
  Py_ssize_t len;
  const char *t = topic_arg(topic, &len);
  if (t == NULL)
    return NULL;
  int rc = wire_conn_subscribe(self->conn, t, (size_t)len);
  if (rc != 0)
    return topic_error(self->server->st, rc);
  Py_RETURN_NONE;
}

/* unsubscribe(topic) -> bool: True when the connection was subscribed. */
PyObject *wpy_conn_unsubscribe(wpy_conn *self, PyObject *topic) {
  Py_ssize_t len;
  const char *t = topic_arg(topic, &len);
  if (t == NULL)
    return NULL;
  int rc = wire_conn_unsubscribe(self->conn, t, (size_t)len);
  if (rc == WIRE_ENOTFOUND)
    Py_RETURN_FALSE;
  if (rc != 0)
    return topic_error(self->server->st, rc);
  Py_RETURN_TRUE;
}

/* topics -> list[str]: the connection's topics, in no particular order. */
PyObject *wpy_conn_topics(wpy_conn *self, void *unused) {
  size_t n = wire_conn_topic_count(self->conn);
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list != NULL && i < n; i++) {
    wire_str s = wire_conn_topic_at(self->conn, i);
    PyObject *name = PyUnicode_DecodeUTF8(s.ptr, (Py_ssize_t)s.len, "surrogateescape");
    if (name == NULL)
      Py_CLEAR(list);
    else
      PyList_SET_ITEM(list, (Py_ssize_t)i, name);
  }
  return list;
}

/* The wire_conn of `exclude` (None or a Conn), or -1 with TypeError set. */
static int exclude_arg(wpy_server *self, PyObject *exclude, wire_conn **out) {
  *out = NULL;
  if (exclude == NULL || exclude == Py_None)
    return 0;
  if (!PyObject_TypeCheck(exclude, self->st->ConnType)) {
    PyErr_SetString(PyExc_TypeError, "exclude must be a Conn or None");
    return -1;
  }
  *out = ((wpy_conn *)exclude)->conn;
  return 0;
}

/* Publish a value: converted once, encoded once per codec by the core. */
static PyObject *publish_value(wpy_server *self, const char *t, Py_ssize_t tlen, PyObject *msg,
                               wire_conn *ex, PyObject *dflt) {
  wire_doc *doc = wpy_doc_acquire(self);
  if (doc == NULL)
    return NULL;
  PyObject *out = NULL;
  wire_value *v = wpy_to_value(self->st, doc, msg, dflt);
  if (v != NULL) {
    wire_error err;
    memset(&err, 0, sizeof err);
    int rc = wire_server_publish_value(self->server, t, (size_t)tlen, v, ex, &err);
    out = rc >= 0             ? PyLong_FromLong(rc)
          : rc == WIRE_EINVAL ? topic_error(self->st, rc)
                              : wpy_raise(self->st, rc, &err);
  }
  wpy_doc_release(self, doc);
  return out;
}

/* publish(topic, message, exclude=None, default=None) -> int: str as a text
 * frame, a bytes-like object as a binary frame, anything else encoded with
 * each subscriber's codec. Returns the number of connections it was queued
 * for. ConfigError for a bad topic, SerializationError for a value that
 * cannot be encoded (nothing sent). */
PyObject *wpy_server_publish(wpy_server *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"topic", "message", "exclude", "default", NULL};
  PyObject *topic, *msg, *exclude = NULL, *dflt = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OO:publish", kwlist, &topic, &msg, &exclude,
                                   &dflt))
    return NULL;
  if (self->closed)
    return PyLong_FromLong(0);
  Py_ssize_t tlen;
  const char *t = topic_arg(topic, &tlen);
  wire_conn *ex;
  if (t == NULL || exclude_arg(self, exclude, &ex) != 0)
    return NULL;
  int rc;
  if (PyUnicode_Check(msg)) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(msg, &n);
    if (s == NULL)
      return NULL;
    rc = wire_server_publish(self->server, t, (size_t)tlen, WIRE_MSG_TEXT, s, (size_t)n, ex);
  } else if (PyObject_CheckBuffer(msg)) {
    Py_buffer view;
    if (PyObject_GetBuffer(msg, &view, PyBUF_SIMPLE) != 0)
      return NULL;
    rc = wire_server_publish(self->server, t, (size_t)tlen, WIRE_MSG_BINARY, view.buf,
                             (size_t)view.len, ex);
    PyBuffer_Release(&view);
  } else {
    return publish_value(self, t, tlen, msg, ex, dflt);
  }
  if (rc < 0)
    return topic_error(self->st, rc);
  return PyLong_FromLong(rc);
}

/* subscriber_count(topic) -> int (0 for a topic nobody is subscribed to);
 * ConfigError for a bad topic. */
PyObject *wpy_server_subscriber_count(wpy_server *self, PyObject *topic) {
  Py_ssize_t len;
  const char *t = topic_arg(topic, &len);
  if (t == NULL)
    return NULL;
  if (len == 0 || (size_t)len > WIRE_MAX_TOPIC_LENGTH)
    return topic_error(self->st, WIRE_EINVAL);
  if (self->closed)
    return PyLong_FromLong(0);
  return PyLong_FromSize_t(wire_server_subscriber_count(self->server, t, (size_t)len));
}
