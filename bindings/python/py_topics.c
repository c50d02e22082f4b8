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

/* What encode_own needs: the published object, and the encodings made,
 * kept alive until the publish returns. */
typedef struct own_ctx {
  PyObject *msg;
  PyObject *keep; /* list */
} own_ctx;

/* wire_publish_encode_fn for endpoints with a Python serializer: the
 * handler's encode_published(value) gives str (text) or bytes (binary).
 * An exception stays set and stops the publish. */
static int encode_own(void *ud, const wire_endpoint *ep, wire_msg_kind *kind, const void **data,
                      size_t *len) {
  own_ctx *c = ud;
  wpy_endpoint *pe = wire_endpoint_user_data(ep);
  PyObject *r = PyObject_CallMethod(pe->handler, "encode_published", "O", c->msg);
  if (r == NULL || PyList_Append(c->keep, r) != 0) {
    Py_XDECREF(r);
    return WIRE_ESERIALIZE;
  }
  Py_DECREF(r);
  Py_ssize_t n = 0;
  if (PyUnicode_Check(r)) {
    *kind = WIRE_MSG_TEXT;
    *data = PyUnicode_AsUTF8AndSize(r, &n);
  } else if (PyBytes_Check(r)) {
    *kind = WIRE_MSG_BINARY;
    *data = PyBytes_AS_STRING(r);
    n = PyBytes_GET_SIZE(r);
  } else {
    PyErr_Format(PyExc_TypeError, "a serializer's encode must return str or bytes, not %.100s",
                 Py_TYPE(r)->tp_name);
  }
  *len = (size_t)n;
  return *data == NULL || PyErr_Occurred() ? WIRE_ESERIALIZE : 0;
}

/* The core endpoints whose handler encodes published values itself. */
static size_t own_endpoints(wpy_server *self, const wire_endpoint **own) {
  size_t n = 0;
  for (size_t i = 0; i < self->n_endpoints && n < WIRE_MAX_OWN_ENDPOINTS; i++)
    if (self->endpoints[i]->own_encode)
      own[n++] = self->endpoints[i]->wire_ep;
  return n;
}

/* Publish a value: converted once, encoded once per codec by the core and
 * once per Python serializer (encode_published) that has a receiver. */
static PyObject *publish_value(wpy_server *self, const char *t, Py_ssize_t tlen, PyObject *msg,
                               wire_conn *ex, PyObject *dflt) {
  const wire_endpoint *own[WIRE_MAX_OWN_ENDPOINTS];
  size_t n_own = own_endpoints(self, own);
  own_ctx c = {msg, n_own ? PyList_New(0) : NULL};
  if (n_own && c.keep == NULL)
    return NULL;
  wire_doc *doc = wpy_doc_acquire(self);
  PyObject *out = NULL;
  wire_value *v = doc ? wpy_to_value(self->st, doc, msg, dflt) : NULL;
  if (v != NULL) {
    wire_error err;
    memset(&err, 0, sizeof err);
    int rc = wire_server_publish_value_ex(self->server, t, (size_t)tlen, v, ex, own, n_own,
                                          encode_own, &c, &err);
    if (PyErr_Occurred()) /* a Python serializer raised: that exception */
      out = NULL;
    else
      out = rc >= 0             ? PyLong_FromLong(rc)
            : rc == WIRE_EINVAL ? topic_error(self->st, rc)
                                : wpy_raise(self->st, rc, &err);
  }
  if (doc)
    wpy_doc_release(self, doc);
  Py_XDECREF(c.keep);
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

/* ---- history ---- */

/* subscribe_since(topic, since) -> (recovered, reason or None, position,
 * replayed): since is a position str ("" for none). ConfigError for a bad
 * topic or one without history, ConnectionClosed once closing. */
PyObject *wpy_conn_subscribe_since(wpy_conn *self, PyObject *const *args, Py_ssize_t n) {
  if (n != 2)
    return PyErr_Format(PyExc_TypeError, "subscribe_since(topic, since)");
  Py_ssize_t len, slen;
  const char *t = topic_arg(args[0], &len);
  if (t == NULL)
    return NULL;
  if (!PyUnicode_Check(args[1]))
    return PyErr_Format(PyExc_TypeError, "since must be str, not %.100s",
                        Py_TYPE(args[1])->tp_name);
  const char *since = PyUnicode_AsUTF8AndSize(args[1], &slen);
  if (since == NULL)
    return NULL;
  wire_recovery rec;
  int rc = wire_conn_subscribe_since(self->conn, t, (size_t)len, since, (size_t)slen, &rec);
  if (rc == WIRE_EINVAL) {
    wire_error err;
    memset(&err, 0, sizeof err);
    err.code = rc;
    snprintf(err.message, sizeof err.message,
             "%.*s: no history for this topic (app.topic(...)), or not a topic of 1..%u bytes",
             (int)(len > 200 ? 200 : len), t, WIRE_MAX_TOPIC_LENGTH);
    return wpy_raise(self->server->st, rc, &err);
  }
  if (rc != 0)
    return topic_error(self->server->st, rc);
  return Py_BuildValue("(Oss"
                       "K)",
                       rec.recovered ? Py_True : Py_False, rec.reason, rec.position,
                       (unsigned long long)rec.replayed);
}

/* topic_history(pattern, n, ttl_ms): ConfigError for a bad pattern or n, or
 * a pattern that has history already. */
PyObject *wpy_server_topic_history(wpy_server *self, PyObject *const *args, Py_ssize_t n) {
  if (n != 3)
    return PyErr_Format(PyExc_TypeError, "topic_history(pattern, n, ttl_ms)");
  Py_ssize_t len;
  const char *p = topic_arg(args[0], &len);
  if (p == NULL)
    return NULL;
  unsigned long long keep = PyLong_AsUnsignedLongLong(args[1]);
  unsigned long long ttl =
      keep == (unsigned long long)-1 && PyErr_Occurred() ? 0 : PyLong_AsUnsignedLongLong(args[2]);
  if (PyErr_Occurred())
    return NULL;
  int rc = keep > WIRE_MAX_HISTORY ? WIRE_EINVAL
                                   : wire_server_topic_history(self->server, p, (size_t)len,
                                                               (unsigned)keep, (uint64_t)ttl);
  if (rc != 0) {
    wire_error err;
    memset(&err, 0, sizeof err);
    err.code = rc;
    if (rc == WIRE_ESTATE)
      snprintf(err.message, sizeof err.message, "%.*s has history already",
               (int)(len > 200 ? 200 : len), p);
    else if (rc == WIRE_EINVAL)
      snprintf(err.message, sizeof err.message,
               "history needs a pattern of 1..%u bytes and 1..%u publications",
               WIRE_MAX_TOPIC_LENGTH, WIRE_MAX_HISTORY);
    else
      snprintf(err.message, sizeof err.message, "%s", wire_strerror(rc));
    if (rc == WIRE_ESTATE) /* a configuration mistake, as a bad pattern is */
      err.code = rc = WIRE_EINVAL;
    return wpy_raise(self->st, rc, &err);
  }
  Py_RETURN_NONE;
}
