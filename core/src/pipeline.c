/*
 * pipeline.c -- what happens to a complete message before on_message: codec
 * check and decode into the server's per-message doc, schema validation or
 * dispatch, the invalid-message policy; and wire_conn_send_value.
 */
#include "conn_internal.h"

int wire__pipeline_compile(wire_endpoint *ep, wire_error *err) {
  (void)ep;
  (void)err;
  return 0;
}

void wire__pipeline_free(wire_endpoint *ep) { (void)ep; }

void wire__pipeline_server_free(wire_server *s) { (void)s; }

void wire__pipeline_message(wire_conn *c, int kind, const uint8_t *data, size_t len) {
  wire_endpoint *ep = c->ep;
  wire_message msg = {(wire_msg_kind)kind, data, len, NULL, -1};
  if (ep->cb.on_message)
    ep->cb.on_message(c, &msg, ep->user_data);
}

int wire_conn_send_value(wire_conn *c, const wire_value *v, wire_error *err) {
  (void)c;
  (void)v;
  return wire__error_set(err, WIRE_EINVAL, "not implemented yet");
}
