/*
 * py_convert.c -- wire_value <-> Python objects. Decoded values become dict,
 * list, str, bytes, int, float, bool and None; outgoing Python objects are
 * built into a wire_doc with the builder API. Anything else goes through the
 * caller's `default` callable (dataclasses, models, enums: see wirecore/_types.py).
 */
#include "wirecore_py.h"

#include <string.h>

#define WPY_MAX_DEPTH 512

static PyObject *from_value(wpy_state *st, const wire_value *v, unsigned depth);

static PyObject *from_array(wpy_state *st, const wire_value *v, unsigned depth) {
  size_t n = wire_value_size(v);
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (list == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    PyObject *item = from_value(st, wire_value_at(v, i), depth + 1);
    if (item == NULL) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, item);
  }
  return list;
}

static PyObject *from_object(wpy_state *st, const wire_value *v, unsigned depth) {
  size_t n = wire_value_size(v);
  PyObject *dict = _PyDict_NewPresized((Py_ssize_t)n);
  if (dict == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    wire_str key;
    const wire_value *m = wire_value_member(v, i, &key);
    PyObject *k = PyUnicode_DecodeUTF8(key.ptr, (Py_ssize_t)key.len, NULL);
    PyObject *item = k == NULL ? NULL : from_value(st, m, depth + 1);
    /* Repeated keys: the last one wins, as wire_value_get does. */
    int rc = item == NULL ? -1 : PyDict_SetItem(dict, k, item);
    Py_XDECREF(k);
    Py_XDECREF(item);
    if (rc != 0) {
      Py_DECREF(dict);
      return NULL;
    }
  }
  return dict;
}

/* A new reference, or NULL with an exception set (a string that is not
 * UTF-8, from a MessagePack peer, raises DeserializationError). */
static PyObject *from_value(wpy_state *st, const wire_value *v, unsigned depth) {
  if (depth > WPY_MAX_DEPTH) {
    PyErr_SetString(st->cat[WIRE_ERRCAT_DESERIALIZE], "value nested too deeply");
    return NULL;
  }
  size_t len;
  const char *s;
  switch (wire_value_type(v)) {
  case WIRE_NULL:
    Py_RETURN_NONE;
  case WIRE_BOOL:
    return PyBool_FromLong(wire_value_bool(v));
  case WIRE_INT:
    return PyLong_FromLongLong(wire_value_int(v));
  case WIRE_UINT:
    return PyLong_FromUnsignedLongLong(wire_value_uint(v));
  case WIRE_DOUBLE:
    return PyFloat_FromDouble(wire_value_double(v));
  case WIRE_STRING: {
    s = wire_value_string(v, &len);
    PyObject *u = PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, NULL);
    if (u == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
      PyErr_Clear();
      PyErr_SetString(st->cat[WIRE_ERRCAT_DESERIALIZE], "string is not valid UTF-8");
    }
    return u;
  }
  case WIRE_BINARY:
    s = (const char *)wire_value_binary(v, &len);
    return PyBytes_FromStringAndSize(s, (Py_ssize_t)len);
  case WIRE_ARRAY:
    return from_array(st, v, depth);
  case WIRE_OBJECT:
    return from_object(st, v, depth);
  }
  PyErr_SetString(st->cat[WIRE_ERRCAT_DESERIALIZE], "unknown value type");
  return NULL;
}

PyObject *wpy_from_value(wpy_state *st, const wire_value *v) {
  return from_value(st, v, 0);
}

/* ---- Python -> wire_value --------------------------------------------- */

typedef struct builder {
  wpy_state *st;
  wire_doc *doc;
  PyObject *dflt; /* NULL or a callable */
} builder;

static wire_value *to_value(builder *b, PyObject *obj, unsigned depth);

static wire_value *oom(void) {
  PyErr_NoMemory();
  return NULL;
}

static wire_value *ser_error(builder *b, const char *fmt, PyObject *obj) {
  PyErr_Format(b->st->cat[WIRE_ERRCAT_SERIALIZE], fmt, Py_TYPE(obj)->tp_name);
  return NULL;
}

static wire_value *from_long(builder *b, PyObject *obj) {
  int overflow = 0;
  long long i = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (i == -1 && PyErr_Occurred())
    return NULL;
  if (overflow == 0)
    return wire_new_int(b->doc, i) ?: oom();
  if (overflow > 0) {
    unsigned long long u = PyLong_AsUnsignedLongLong(obj);
    if (!(u == (unsigned long long)-1 && PyErr_Occurred()))
      return wire_new_uint(b->doc, u) ?: oom();
    PyErr_Clear();
  }
  PyErr_SetString(b->st->cat[WIRE_ERRCAT_SERIALIZE], "integer out of range (64 bits at most)");
  return NULL;
}

static wire_value *from_str(builder *b, PyObject *obj) {
  Py_ssize_t len;
  const char *s = PyUnicode_AsUTF8AndSize(obj, &len);
  if (s == NULL) {
    PyErr_Clear();
    PyErr_SetString(b->st->cat[WIRE_ERRCAT_SERIALIZE], "string cannot be encoded as UTF-8");
    return NULL;
  }
  return wire_new_string(b->doc, s, (size_t)len) ?: oom();
}

static wire_value *from_sequence(builder *b, PyObject *obj, unsigned depth) {
  PyObject *fast = PySequence_Fast(obj, "expected a sequence");
  if (fast == NULL)
    return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  PyObject **items = PySequence_Fast_ITEMS(fast);
  wire_value *arr = wire_new_array(b->doc, (size_t)n);
  if (arr == NULL) {
    Py_DECREF(fast);
    return oom();
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    wire_value *item = to_value(b, items[i], depth + 1);
    if (item == NULL || wire_array_push(b->doc, arr, item) == NULL) {
      Py_DECREF(fast);
      return item == NULL ? NULL : oom();
    }
  }
  Py_DECREF(fast);
  return arr;
}

static wire_value *from_dict(builder *b, PyObject *obj, unsigned depth) {
  wire_value *o = wire_new_object(b->doc, (size_t)PyDict_GET_SIZE(obj));
  if (o == NULL)
    return oom();
  Py_ssize_t pos = 0;
  PyObject *k, *val;
  while (PyDict_Next(obj, &pos, &k, &val)) {
    if (!PyUnicode_Check(k))
      return ser_error(b, "object keys must be str, not %.100s", k);
    Py_ssize_t klen;
    const char *ks = PyUnicode_AsUTF8AndSize(k, &klen);
    if (ks == NULL) {
      PyErr_Clear();
      PyErr_SetString(b->st->cat[WIRE_ERRCAT_SERIALIZE], "key cannot be encoded as UTF-8");
      return NULL;
    }
    wire_value *item = to_value(b, val, depth + 1);
    if (item == NULL)
      return NULL;
    if (wire_object_set(b->doc, o, ks, (size_t)klen, item) == NULL)
      return oom();
  }
  return o;
}

static wire_value *from_buffer(builder *b, PyObject *obj) {
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) != 0)
    return NULL;
  wire_value *v = wire_new_binary(b->doc, view.buf, (size_t)view.len);
  PyBuffer_Release(&view);
  return v ?: oom();
}

/* Exact types first (the common case), then subclasses, then `default`. */
static wire_value *to_value(builder *b, PyObject *obj, unsigned depth) {
  if (depth > WPY_MAX_DEPTH) {
    PyErr_SetString(b->st->cat[WIRE_ERRCAT_SERIALIZE], "value nested too deeply (or a cycle)");
    return NULL;
  }
  PyTypeObject *tp = Py_TYPE(obj);
  if (tp == &PyUnicode_Type)
    return from_str(b, obj);
  if (obj == Py_None)
    return wire_new_null(b->doc) ?: oom();
  if (tp == &PyBool_Type)
    return wire_new_bool(b->doc, obj == Py_True) ?: oom();
  if (tp == &PyLong_Type)
    return from_long(b, obj);
  if (tp == &PyFloat_Type)
    return wire_new_double(b->doc, PyFloat_AS_DOUBLE(obj)) ?: oom();
  if (tp == &PyDict_Type)
    return from_dict(b, obj, depth);
  if (tp == &PyList_Type || tp == &PyTuple_Type)
    return from_sequence(b, obj, depth);
  if (tp == &PyBytes_Type || tp == &PyByteArray_Type || tp == &PyMemoryView_Type)
    return from_buffer(b, obj);
  /* Subclasses (IntEnum, StrEnum, OrderedDict...) keep their base meaning. */
  if (PyBool_Check(obj))
    return wire_new_bool(b->doc, obj == Py_True) ?: oom();
  if (b->dflt == NULL) {
    if (PyUnicode_Check(obj))
      return from_str(b, obj);
    if (PyLong_Check(obj))
      return from_long(b, obj);
    if (PyFloat_Check(obj))
      return wire_new_double(b->doc, PyFloat_AsDouble(obj)) ?: oom();
    if (PyDict_Check(obj))
      return from_dict(b, obj, depth);
    if (PyList_Check(obj) || PyTuple_Check(obj))
      return from_sequence(b, obj, depth);
    return ser_error(b, "cannot encode an object of type %.100s", obj);
  }
  /* With a default, it decides for subclasses too (an Enum member that is
   * also a str is sent as its value either way). */
  PyObject *repl = PyObject_CallOneArg(b->dflt, obj);
  if (repl == NULL)
    return NULL;
  wire_value *v;
  if (repl == obj) {
    PyObject *saved = b->dflt;
    b->dflt = NULL; /* the default declined: plain rules, no infinite loop */
    v = to_value(b, obj, depth + 1);
    b->dflt = saved;
  } else {
    v = to_value(b, repl, depth + 1);
  }
  Py_DECREF(repl);
  return v;
}

wire_value *wpy_to_value(wpy_state *st, wire_doc *doc, PyObject *obj, PyObject *dflt) {
  builder b = {st, doc, (dflt == NULL || dflt == Py_None) ? NULL : dflt};
  return to_value(&b, obj, 0);
}
