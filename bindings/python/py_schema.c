/*
 * py_schema.c -- `_native.Schema` (a compiled JSON Schema) and
 * `_native.Dispatcher` (picks the first of N schemas a value matches). They
 * serve the Python-serializer path, where the core receives raw bytes and the
 * package still validates and dispatches with the core's own code.
 */
#include "wirecore_py.h"

#include <stdlib.h>
#include <string.h>

static PyObject *schema_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"schema", "flags", NULL};
  const char *text;
  Py_ssize_t len;
  unsigned flags = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s#|I:Schema", kwlist, &text, &len, &flags))
    return NULL;
  wpy_state *st = wpy_state_of_type(tp);
  wpy_schema *self = (wpy_schema *)tp->tp_alloc(tp, 0);
  if (self == NULL)
    return NULL;
  self->st = st;
  self->module = Py_XNewRef(PyType_GetModule(tp));
  wire_schema_options opts;
  memset(&opts, 0, sizeof opts);
  opts.flags = flags;
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = wire_schema_compile(text, (size_t)len, &opts, &self->schema, &err);
  if (rc != 0) {
    Py_DECREF(self);
    return wpy_raise(st, rc, &err);
  }
  return (PyObject *)self;
}

static int schema_traverse(wpy_schema *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->module);
  return 0;
}

static void schema_dealloc(wpy_schema *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->schema != NULL)
    wire_schema_free(self->schema);
  Py_CLEAR(self->module);
  tp->tp_free(self);
  Py_DECREF(tp);
}

/* Validate obj; returns 0 valid, WIRE_EVALIDATION (err filled), or -1 with a
 * Python error set (obj could not be converted). */
static int validate_obj(wpy_schema *self, PyObject *obj, wire_error *err) {
  wire_doc *doc;
  if (wire_doc_new(&doc) != 0) {
    PyErr_NoMemory();
    return -1;
  }
  wire_value *v = wpy_to_value(self->st, doc, obj, NULL);
  int rc = v == NULL ? -1 : wire_schema_validate(self->schema, v, err);
  wire_doc_free(doc);
  return rc;
}

static PyObject *schema_validate(wpy_schema *self, PyObject *obj) {
  wire_error err;
  memset(&err, 0, sizeof err);
  int rc = validate_obj(self, obj, &err);
  if (rc == -1 && PyErr_Occurred())
    return NULL;
  if (rc != 0)
    return wpy_raise(self->st, rc, &err);
  Py_RETURN_NONE;
}

static PyObject *schema_is_valid(wpy_schema *self, PyObject *obj) {
  int rc = validate_obj(self, obj, NULL);
  if (rc == -1 && PyErr_Occurred())
    return NULL;
  return PyBool_FromLong(rc == 0);
}

static PyMethodDef schema_methods[] = {
    {"validate", (PyCFunction)schema_validate, METH_O, "Raise ValidationError unless valid."},
    {"is_valid", (PyCFunction)schema_is_valid, METH_O, "True when the value is valid."},
    {NULL, NULL, 0, NULL}};

static PyType_Slot schema_slots[] = {
    {Py_tp_new, schema_new},           {Py_tp_dealloc, schema_dealloc},
    {Py_tp_traverse, schema_traverse}, {Py_tp_methods, schema_methods},
    {Py_tp_doc, "Schema(json_text, flags=0): a compiled JSON Schema 2020-12."},
    {0, NULL}};

PyType_Spec wpy_schema_spec = {
    .name = "wirecore._native.Schema",
    .basicsize = sizeof(wpy_schema),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = schema_slots,
};

/* ---- Dispatcher ---------------------------------------------------------- */

typedef struct wpy_dispatcher {
  PyObject_HEAD
  wire_dispatcher *d;
  PyObject *schemas; /* tuple of Schema: the dispatcher borrows their compiled form */
  const wire_schema **arr; /* the array itself is borrowed by the dispatcher too */
  wpy_state *st;
} wpy_dispatcher;

static PyObject *dispatcher_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
  PyObject *seq;
  if (!PyArg_ParseTuple(args, "O:Dispatcher", &seq))
    return NULL;
  wpy_state *st = wpy_state_of_type(tp);
  PyObject *schemas = PySequence_Tuple(seq);
  if (schemas == NULL)
    return NULL;
  Py_ssize_t n = PyTuple_GET_SIZE(schemas);
  const wire_schema **arr = calloc(n > 0 ? (size_t)n : 1, sizeof *arr);
  if (arr == NULL) {
    Py_DECREF(schemas);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *s = PyTuple_GET_ITEM(schemas, i);
    if (!PyObject_TypeCheck(s, st->SchemaType)) {
      free(arr);
      Py_DECREF(schemas);
      PyErr_SetString(PyExc_TypeError, "Dispatcher expects Schema objects");
      return NULL;
    }
    arr[i] = ((wpy_schema *)s)->schema;
  }
  wpy_dispatcher *self = (wpy_dispatcher *)tp->tp_alloc(tp, 0);
  if (self == NULL) {
    free(arr);
    Py_DECREF(schemas);
    return NULL;
  }
  self->schemas = schemas;
  self->arr = arr;
  self->st = st;
  int rc = wire_dispatcher_new(arr, (size_t)n, &self->d);
  if (rc != 0) {
    Py_DECREF(self);
    return wpy_raise(st, rc, NULL);
  }
  return (PyObject *)self;
}

static int dispatcher_traverse(wpy_dispatcher *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->schemas);
  return 0;
}

static void dispatcher_dealloc(wpy_dispatcher *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->d != NULL)
    wire_dispatcher_free(self->d);
  free(self->arr);
  Py_CLEAR(self->schemas);
  tp->tp_free(self);
  Py_DECREF(tp);
}

/* dispatch(obj) -> index; UnknownMessageError / ValidationError otherwise. */
static PyObject *dispatcher_dispatch(wpy_dispatcher *self, PyObject *obj) {
  wire_doc *doc;
  if (wire_doc_new(&doc) != 0)
    return PyErr_NoMemory();
  PyObject *out = NULL;
  wire_value *v = wpy_to_value(self->st, doc, obj, NULL);
  if (v != NULL) {
    size_t index = 0;
    wire_error err;
    memset(&err, 0, sizeof err);
    int rc = wire_dispatch(self->d, v, &index, &err);
    out = rc == 0 ? PyLong_FromSize_t(index) : wpy_raise(self->st, rc, &err);
  }
  wire_doc_free(doc);
  return out;
}

static PyObject *dispatcher_discriminator(wpy_dispatcher *self, void *unused) {
  const char *name = wire_dispatcher_discriminator(self->d);
  if (name == NULL)
    Py_RETURN_NONE;
  return PyUnicode_FromString(name);
}

static PyMethodDef dispatcher_methods[] = {
    {"dispatch", (PyCFunction)dispatcher_dispatch, METH_O, "Index of the first matching schema."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef dispatcher_getset[] = {
    {"discriminator", (getter)dispatcher_discriminator, NULL, "Discriminator property or None.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot dispatcher_slots[] = {
    {Py_tp_new, dispatcher_new},           {Py_tp_dealloc, dispatcher_dealloc},
    {Py_tp_traverse, dispatcher_traverse}, {Py_tp_methods, dispatcher_methods},
    {Py_tp_getset, dispatcher_getset},
    {Py_tp_doc, "Dispatcher(schemas): first-match message dispatch."},
    {0, NULL}};

PyType_Spec wpy_dispatcher_spec = {
    .name = "wirecore._native.Dispatcher",
    .basicsize = sizeof(wpy_dispatcher),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = dispatcher_slots,
};
