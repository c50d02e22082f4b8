/*
 * py_module.c -- the `wirecore._native` module: multi-phase init, the module
 * state (exception types, type objects), error mapping, and the stateless
 * functions encode()/decode()/version().
 */
#include "wirecore_py.h"

#include <string.h>

wpy_state *wpy_state_of_type(PyTypeObject *tp) {
  return (wpy_state *)PyType_GetModuleState(tp);
}

static wpy_state *state_of(PyObject *module) {
  return (wpy_state *)PyModule_GetState(module);
}

/* The exception class for a core error code: its category's. */
PyObject *wpy_error_class(wpy_state *st, int code) {
  return st->cat[wire_err_category(code)];
}

static int set_str_attr(PyObject *o, const char *name, const char *value) {
  PyObject *s = PyUnicode_DecodeUTF8(value, (Py_ssize_t)strlen(value), "replace");
  if (s == NULL)
    return -1;
  int rc = PyObject_SetAttrString(o, name, s);
  Py_DECREF(s);
  return rc;
}

/* Exception object carrying code, name and (for validation/decoding) where. */
PyObject *wpy_error_object(wpy_state *st, int code, const wire_error *err) {
  const char *msg = (err != NULL && err->message[0]) ? err->message : wire_strerror(code);
  PyObject *exc = PyObject_CallFunction(wpy_error_class(st, code), "s", msg);
  if (exc == NULL)
    return NULL;
  PyObject *num = PyLong_FromLong(code);
  int rc = num == NULL ? -1 : PyObject_SetAttrString(exc, "code", num);
  Py_XDECREF(num);
  if (rc == 0)
    rc = set_str_attr(exc, "name", wire_err_name(code));
  if (rc == 0 && err != NULL) {
    rc = set_str_attr(exc, "path", err->path);
    if (rc == 0)
      rc = set_str_attr(exc, "keyword", err->keyword);
    if (rc == 0)
      rc = set_str_attr(exc, "schema_path", err->schema_path);
    if (rc == 0) {
      PyObject *off = PyLong_FromSize_t(err->offset);
      rc = off == NULL ? -1 : PyObject_SetAttrString(exc, "offset", off);
      Py_XDECREF(off);
    }
  }
  if (rc != 0) {
    Py_DECREF(exc);
    return NULL;
  }
  return exc;
}

PyObject *wpy_raise(wpy_state *st, int code, const wire_error *err) {
  PyObject *exc = wpy_error_object(st, code, err);
  if (exc != NULL) {
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
  }
  return NULL;
}

/* encode(obj, codec=JSON, default=None) -> bytes */
static PyObject *mod_encode(PyObject *module, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"obj", "codec", "default", NULL};
  PyObject *obj, *dflt = NULL;
  int codec = WIRE_CODEC_JSON;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|iO:encode", kwlist, &obj, &codec, &dflt))
    return NULL;
  wpy_state *st = state_of(module);
  wire_doc *doc;
  if (wire_doc_new(&doc) != 0)
    return PyErr_NoMemory();
  PyObject *out = NULL;
  wire_value *v = wpy_to_value(st, doc, obj, dflt);
  if (v != NULL) {
    const uint8_t *buf;
    size_t len;
    wire_error err;
    memset(&err, 0, sizeof err);
    int rc = wire_encode(doc, (wire_codec)codec, v, &buf, &len, &err);
    out = rc == 0 ? PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)len)
                  : wpy_raise(st, rc, &err);
  }
  wire_doc_free(doc);
  return out;
}

/* decode(data, codec=JSON, max_depth=0) -> object */
static PyObject *mod_decode(PyObject *module, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"data", "codec", "max_depth", NULL};
  Py_buffer buf;
  int codec = WIRE_CODEC_JSON;
  unsigned max_depth = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s*|iI:decode", kwlist, &buf, &codec, &max_depth))
    return NULL;
  wpy_state *st = state_of(module);
  wire_doc *doc;
  if (wire_doc_new(&doc) != 0) {
    PyBuffer_Release(&buf);
    return PyErr_NoMemory();
  }
  const wire_value *v;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_decode(doc, (wire_codec)codec, buf.buf, (size_t)buf.len, max_depth, &v, &err);
  PyObject *out = rc == 0 ? wpy_from_value(st, v) : wpy_raise(st, rc, &err);
  wire_doc_free(doc);
  PyBuffer_Release(&buf);
  return out;
}

/* step(coro) -> (finished, value): advance a coroutine once without the cost
 * of a StopIteration. finished: value is its return value; otherwise value is
 * what it yielded (a future to wait on). Exceptions propagate. */
static PyObject *mod_step(PyObject *module, PyObject *coro) {
  PyObject *result = NULL;
  PySendResult r = PyIter_Send(coro, Py_None, &result);
  if (r == PYGEN_ERROR)
    return NULL;
  PyObject *out = PyTuple_Pack(2, r == PYGEN_RETURN ? Py_True : Py_False, result);
  Py_DECREF(result);
  return out;
}

static PyObject *mod_version(PyObject *module, PyObject *unused) {
  return PyUnicode_FromString(wire_version());
}

static PyObject *mod_strerror(PyObject *module, PyObject *arg) {
  long code = PyLong_AsLong(arg);
  if (code == -1 && PyErr_Occurred())
    return NULL;
  return Py_BuildValue("(ss)", wire_err_name((int)code), wire_strerror((int)code));
}

/* errors() -> ((name, code, category, class_name), ...): the core's list. */
static PyObject *mod_errors(PyObject *module, PyObject *unused) {
  PyObject *list = PyList_New(0);
  if (list == NULL)
    return NULL;
#define WPY_ERROR_ROW(name, num, cat, msg)                                                         \
  {                                                                                                \
    PyObject *row = Py_BuildValue("(siss)", #name, num, wire_errcat_name(WIRE_ERRCAT_##cat),       \
                                  wire_errcat_class(WIRE_ERRCAT_##cat));                           \
    if (row == NULL || PyList_Append(list, row) != 0) {                                            \
      Py_XDECREF(row);                                                                             \
      Py_DECREF(list);                                                                             \
      return NULL;                                                                                 \
    }                                                                                              \
    Py_DECREF(row);                                                                                \
  }
  WIRE_ERRNO_MAP(WPY_ERROR_ROW)
#undef WPY_ERROR_ROW
  PyObject *t = PyList_AsTuple(list);
  Py_DECREF(list);
  return t;
}

static PyMethodDef mod_methods[] = {
    {"supervise", (PyCFunction)(void (*)(void))wpy_supervise, METH_VARARGS | METH_KEYWORDS,
     "supervise(workers, fn, name='wirecore') -> status: fn(index) in each worker process."},
    {"worker_index", wpy_worker_index, METH_NOARGS, "The worker index, or -1."},
    {"errors", mod_errors, METH_NOARGS,
     "errors() -> ((name, code, category, class_name), ...): every core error code."},
    {"encode", (PyCFunction)(void (*)(void))mod_encode, METH_VARARGS | METH_KEYWORDS,
     "encode(obj, codec=CODEC_JSON, default=None) -> bytes"},
    {"decode", (PyCFunction)(void (*)(void))mod_decode, METH_VARARGS | METH_KEYWORDS,
     "decode(data, codec=CODEC_JSON, max_depth=0) -> object"},
    {"version", mod_version, METH_NOARGS, "The core library's version."},
    {"step", mod_step, METH_O, "step(coro) -> (finished, value): advance a coroutine once."},
    {"set_message_class", wpy_set_message_class, METH_O,
     "set_message_class(cls): the Message subclass Conn.set_direct delivers."},
    {"strerror", mod_strerror, METH_O, "strerror(code) -> (name, message)"},
    {NULL, NULL, 0, NULL}};

/* Create an exception class `wirecore.<name>` with default attributes. */
static PyObject *new_error(PyObject *module, const char *name, const char *doc, PyObject *base,
                           int with_location) {
  PyObject *dict = Py_BuildValue("{s:i,s:s}", "code", 0, "name", "");
  if (dict == NULL)
    return NULL;
  if (with_location) {
    PyObject *d2 = Py_BuildValue("{s:s,s:s,s:s,s:i}", "path", "", "keyword", "", "schema_path", "",
                                 "offset", 0);
    if (d2 == NULL || PyDict_Update(dict, d2) != 0) {
      Py_XDECREF(d2);
      Py_DECREF(dict);
      return NULL;
    }
    Py_DECREF(d2);
  }
  char qual[96];
  snprintf(qual, sizeof qual, "wirecore.%s", name);
  PyObject *cls = PyErr_NewExceptionWithDoc(qual, doc, base, dict);
  Py_DECREF(dict);
  if (cls != NULL && PyModule_AddObjectRef(module, name, cls) != 0)
    Py_CLEAR(cls);
  return cls;
}

static PyTypeObject *add_type(PyObject *module, PyType_Spec *spec) {
  PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
  if (tp == NULL)
    return NULL;
  if (PyModule_AddType(module, tp) != 0) {
    Py_DECREF(tp);
    return NULL;
  }
  return tp;
}

static int mod_exec(PyObject *module) {
  wpy_state *st = state_of(module);
  if ((st->Error = new_error(module, "WirecoreError", "Base class of Wirecore errors.",
                             PyExc_Exception, 1)) == NULL)
    return -1;
  /* One class per category, generated from the core's list. */
  static const char *const docs[] = {
#define WPY_CAT_DOC(name, str, cls, doc) doc,
      WIRE_ERRCAT_MAP(WPY_CAT_DOC)
#undef WPY_CAT_DOC
  };
  for (int i = 0; i < WIRE_ERRCAT_COUNT; i++) {
    char doc[160];
    snprintf(doc, sizeof doc, "Error category '%s': %s.", wire_errcat_name((wire_errcat)i),
             docs[i]);
    st->cat[i] = new_error(module, wire_errcat_class((wire_errcat)i), doc, st->Error, 1);
    if (st->cat[i] == NULL)
      return -1;
  }
  /* The name before the classes were unified; the same class. */
  if (PyModule_AddObjectRef(module, "ConnectionClosed", st->cat[WIRE_ERRCAT_CLOSED]) != 0)
    return -1;
  if ((st->ServerType = add_type(module, &wpy_server_spec)) == NULL ||
      (st->ConnType = add_type(module, &wpy_conn_spec)) == NULL ||
      (st->SchemaType = add_type(module, &wpy_schema_spec)) == NULL ||
      (st->DispatcherType = add_type(module, &wpy_dispatcher_spec)) == NULL ||
      (st->MessageType = add_type(module, &wpy_message_spec)) == NULL)
    return -1;
  if ((st->str_on_connect = PyUnicode_InternFromString("_on_connect")) == NULL ||
      (st->str_on_message = PyUnicode_InternFromString("_on_message")) == NULL ||
      (st->str_on_close = PyUnicode_InternFromString("_on_close")) == NULL ||
      (st->str_on_error = PyUnicode_InternFromString("_on_error")) == NULL ||
      (st->str_on_drain = PyUnicode_InternFromString("_on_drain")) == NULL ||
      (st->str_message_result = PyUnicode_InternFromString("_message_result")) == NULL ||
      (st->str_on_message_attr = PyUnicode_InternFromString("on_message")) == NULL)
    return -1;
  if (PyModule_AddIntConstant(module, "CODEC_RAW", WIRE_CODEC_RAW) ||
      PyModule_AddIntConstant(module, "CODEC_JSON", WIRE_CODEC_JSON) ||
      PyModule_AddIntConstant(module, "CODEC_MSGPACK", WIRE_CODEC_MSGPACK) ||
      PyModule_AddIntConstant(module, "INVALID_REPLY", WIRE_INVALID_REPLY) ||
      PyModule_AddIntConstant(module, "INVALID_CLOSE", WIRE_INVALID_CLOSE) ||
      PyModule_AddIntConstant(module, "INVALID_IGNORE", WIRE_INVALID_IGNORE) ||
      PyModule_AddIntConstant(module, "CONNECT_DEFER", WIRE_CONNECT_DEFER) ||
      PyModule_AddIntConstant(module, "SCHEMA_FORMAT_ASSERT", WIRE_SCHEMA_FORMAT_ASSERT) ||
      PyModule_AddIntConstant(module, "DEFAULT_MAX_QUEUED", WIRE_DEFAULT_MAX_QUEUED))
    return -1;
  /* permessage-deflate modes */
  if (PyModule_AddIntConstant(module, "COMPRESSION_SHARED", WIRE_COMPRESSION_SHARED) ||
      PyModule_AddIntConstant(module, "COMPRESSION_OFF", WIRE_COMPRESSION_OFF) ||
      PyModule_AddIntConstant(module, "COMPRESSION_DEDICATED", WIRE_COMPRESSION_DEDICATED))
    return -1;
#define WPY_ADD_ERRNO(name, num, cat, msg)                                                         \
  if (PyModule_AddIntConstant(module, #name, num))                                                 \
    return -1;
  WIRE_ERRNO_MAP(WPY_ADD_ERRNO)
#undef WPY_ADD_ERRNO
  return 0;
}

static int mod_traverse(PyObject *module, visitproc visit, void *arg) {
  wpy_state *st = state_of(module);
  Py_VISIT(st->Error);
  for (int i = 0; i < WIRE_ERRCAT_COUNT; i++)
    Py_VISIT(st->cat[i]);
  Py_VISIT(st->ServerType);
  Py_VISIT(st->ConnType);
  Py_VISIT(st->SchemaType);
  Py_VISIT(st->DispatcherType);
  Py_VISIT(st->MessageType);
  Py_VISIT(st->MessageClass);
  return 0;
}

static int mod_clear(PyObject *module) {
  wpy_state *st = state_of(module);
  Py_CLEAR(st->Error);
  for (int i = 0; i < WIRE_ERRCAT_COUNT; i++)
    Py_CLEAR(st->cat[i]);
  Py_CLEAR(st->ServerType);
  Py_CLEAR(st->ConnType);
  Py_CLEAR(st->SchemaType);
  Py_CLEAR(st->DispatcherType);
  Py_CLEAR(st->MessageType);
  Py_CLEAR(st->MessageClass);
  Py_CLEAR(st->str_message_result);
  Py_CLEAR(st->str_on_message_attr);
  Py_CLEAR(st->str_on_connect);
  Py_CLEAR(st->str_on_message);
  Py_CLEAR(st->str_on_close);
  Py_CLEAR(st->str_on_error);
  Py_CLEAR(st->str_on_drain);
  return 0;
}

static void mod_free(void *module) {
  mod_clear((PyObject *)module);
}

static PyModuleDef_Slot mod_slots[] = {{Py_mod_exec, (void *)mod_exec}, {0, NULL}};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wirecore._native",
    .m_doc = "The Wirecore C core, bound for CPython.",
    .m_size = sizeof(wpy_state),
    .m_methods = mod_methods,
    .m_slots = mod_slots,
    .m_traverse = mod_traverse,
    .m_clear = mod_clear,
    .m_free = mod_free,
};

PyMODINIT_FUNC PyInit__native(void) {
  return PyModuleDef_Init(&mod_def);
}
