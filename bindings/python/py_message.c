/*
 * py_message.c -- the `_native.Message` type: the base of the package's
 * WebSocketMessage (one received message, `data` a str or bytes). A C type
 * so that creating one per received message and asking is_text() run no
 * Python frame; the package's subclass adds the conversions.
 */
#include "wirecore_py.h"

#include <stddef.h>
#include <structmember.h>

/* clang-format off */
typedef struct wpy_message {
  PyObject_HEAD
  PyObject *data;
} wpy_message;
/* clang-format on */

/* Message(data): data is stored as given (str: text, else binary). */
static PyObject *message_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"data", NULL};
  PyObject *data;
  if (kw == NULL && PyTuple_GET_SIZE(args) == 1)
    data = PyTuple_GET_ITEM(args, 0); /* the per-message case: no parsing */
  else if (!PyArg_ParseTupleAndKeywords(args, kw, "O:WebSocketMessage", kwlist, &data))
    return NULL;
  return wpy_message_new(tp, data);
}

static int message_traverse(wpy_message *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->data);
  return 0;
}

static int message_clear(wpy_message *self) {
  Py_CLEAR(self->data);
  return 0;
}

static void message_dealloc(wpy_message *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  message_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

static PyObject *message_is_text(wpy_message *self, PyObject *unused) {
  return PyBool_FromLong(self->data != NULL && PyUnicode_Check(self->data));
}

static PyObject *message_is_binary(wpy_message *self, PyObject *unused) {
  return PyBool_FromLong(self->data == NULL || !PyUnicode_Check(self->data));
}

PyObject *wpy_message_new(PyTypeObject *cls, PyObject *data) {
  wpy_message *self = (wpy_message *)cls->tp_alloc(cls, 0);
  if (self != NULL)
    self->data = Py_NewRef(data);
  return (PyObject *)self;
}

PyObject *wpy_message_data(PyObject *msg) {
  PyObject *d = ((wpy_message *)msg)->data;
  if (d == NULL)
    PyErr_SetString(PyExc_AttributeError, "data");
  return d;
}

static PyMethodDef message_methods[] = {
    {"is_text", (PyCFunction)message_is_text, METH_NOARGS, "True when data is a str."},
    {"is_binary", (PyCFunction)message_is_binary, METH_NOARGS, "True when data is not a str."},
    {NULL, NULL, 0, NULL}};

static PyMemberDef message_members[] = {
    {"data", T_OBJECT_EX, offsetof(wpy_message, data), 0, "The payload: str (text) or bytes."},
    {NULL, 0, 0, 0, NULL}};

static PyType_Slot message_slots[] = {{Py_tp_new, message_new},
                                      {Py_tp_dealloc, message_dealloc},
                                      {Py_tp_traverse, message_traverse},
                                      {Py_tp_clear, message_clear},
                                      {Py_tp_methods, message_methods},
                                      {Py_tp_members, message_members},
                                      {Py_tp_doc, "One received message: text (str) or binary."},
                                      {0, NULL}};

PyType_Spec wpy_message_spec = {
    .name = "wirecore._native.Message",
    .basicsize = sizeof(wpy_message),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = message_slots,
};
