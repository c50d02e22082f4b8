/*
 * pipeline.c -- what happens to a complete message before on_message: the
 * codec's frame-kind check, decoding into the server's per-message doc (reset
 * after on_message, so steady traffic allocates nothing), validation against
 * the endpoint's one schema or dispatch among several, and the
 * invalid-message policy (reply, close or ignore, after on_error). Also
 * wire_conn_send_value: response-schema check, encode, send.
 */
#include "conn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- compile ------------------------------------------------------------- */

/* Compile one schema text; failures become WIRE_ESCHEMA with `what` in the
 * message. */
static int compile_one(const wire_endpoint *ep, const char *text, wire_schema **out,
                       const char *what, wire_error *err) {
  if (text == NULL)
    return wire__error_set(err, WIRE_EINVAL, "%s is NULL", what);
  wire_schema_options so = {ep->opts.schema_flags, NULL, NULL};
  wire_error e;
  memset(&e, 0, sizeof e);
  int r = wire_schema_compile(text, strlen(text), &so, out, &e);
  if (r == 0)
    return 0;
  if (err != NULL) {
    *err = e;
    wire__error_set(err, r == WIRE_ENOMEM ? r : WIRE_ESCHEMA, "%s: %s", what, e.message);
  }
  return r == WIRE_ENOMEM ? r : WIRE_ESCHEMA;
}

/* At wire_endpoint_add: compile the message schemas (and a dispatcher for
 * several) and the response schema. Returns 0, WIRE_ESCHEMA, WIRE_EINVAL or
 * WIRE_ENOMEM; a partial result is freed by wire__pipeline_free. */
int wire__pipeline_compile(wire_endpoint *ep, wire_error *err) {
  size_t n = ep->opts.n_message_schemas;
  if ((n > 0 || ep->opts.response_schema) && ep->opts.codec == WIRE_CODEC_RAW)
    return wire__error_set(err, WIRE_EINVAL, "schemas need a codec (JSON or MessagePack)");
  if (n > 0) {
    ep->schemas = calloc(n, sizeof *ep->schemas);
    if (ep->schemas == NULL)
      return wire__error_set(err, WIRE_ENOMEM, "out of memory");
    ep->n_schemas = n;
    for (size_t i = 0; i < n; i++) {
      char what[48];
      snprintf(what, sizeof what, "message schema %zu", i);
      int r = compile_one(ep, ep->opts.message_schemas[i], &ep->schemas[i], what, err);
      if (r != 0)
        return r;
    }
    if (n > 1 &&
        wire_dispatcher_new((const wire_schema *const *)ep->schemas, n, &ep->dispatcher) != 0)
      return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  }
  if (ep->opts.response_schema != NULL)
    return compile_one(ep, ep->opts.response_schema, &ep->response_schema, "response schema", err);
  return 0;
}

void wire__pipeline_free(wire_endpoint *ep) {
  wire_dispatcher_free(ep->dispatcher);
  for (size_t i = 0; i < ep->n_schemas; i++)
    wire_schema_free(ep->schemas[i]);
  free(ep->schemas);
  wire_schema_free(ep->response_schema);
  ep->dispatcher = NULL;
  ep->schemas = NULL;
  ep->response_schema = NULL;
  ep->n_schemas = 0;
}

void wire__pipeline_server_free(wire_server *s) {
  wire_doc_free(s->doc);
  wire_doc_free(s->out_doc);
  s->doc = s->out_doc = NULL;
}

/* The server's doc, or a private one when it is in use further up the stack
 * (on_message delivering another connection's queued message). */
static wire_doc *doc_take(wire_doc **slot, int *busy) {
  if (!*busy) {
    if (*slot == NULL && wire_doc_new(slot) != 0)
      return NULL;
    *busy = 1;
    return *slot;
  }
  wire_doc *d = NULL;
  return wire_doc_new(&d) == 0 ? d : NULL;
}

static void doc_give(wire_doc *d, wire_doc *slot, int *busy) {
  if (d == slot) {
    wire_doc_reset(d);
    *busy = 0;
  } else {
    wire_doc_free(d);
  }
}

/* ---- invalid messages ----------------------------------------------------- */

static const char *error_kind(int code) {
  switch (code) {
  case WIRE_EVALIDATION:
    return "validation_failed";
  case WIRE_EUNKNOWN_MESSAGE:
    return "unknown_message";
  default:
    return "invalid_message";
  }
}

static void put_str(wire_doc *d, wire_value *obj, const char *k, const char *v) {
  wire_value *s = wire_new_string(d, v, strlen(v));
  if (s != NULL)
    wire_object_set(d, obj, k, strlen(k), s);
}

/* {"type":"error","error":...,("path","keyword"),"message":...} in the
 * endpoint's codec (JSON text for a RAW endpoint: wire_conn_invalid). */
static void reply_error(wire_conn *c, const wire_error *err) {
  wire_server *s = WIRE__SRV(c);
  wire_doc *d = doc_take(&s->out_doc, &s->out_doc_busy);
  if (d == NULL)
    return;
  wire_value *obj = wire_new_object(d, 5);
  if (obj != NULL) {
    put_str(d, obj, "type", "error");
    put_str(d, obj, "error", error_kind(err->code));
    if (err->code == WIRE_EVALIDATION) {
      put_str(d, obj, "path", err->path);
      put_str(d, obj, "keyword", err->keyword);
    }
    put_str(d, obj, "message", err->message);
    const uint8_t *bytes;
    size_t n;
    wire_codec codec =
        c->ep->opts.codec == WIRE_CODEC_MSGPACK ? WIRE_CODEC_MSGPACK : WIRE_CODEC_JSON;
    if (wire_encode(d, codec, obj, &bytes, &n, NULL) == 0)
      wire__send_frame(c, codec == WIRE_CODEC_JSON ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, bytes,
                       n);
  }
  doc_give(d, s->out_doc, &s->out_doc_busy);
}

/* The longest prefix of s (at most max bytes) that ends on a character. */
static size_t utf8_prefix(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n <= max)
    return n;
  n = max;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--;
  return n;
}

/* on_error first; unless it handled the error, the endpoint's policy.
 * Returns 1 when on_error handled it, else 0. */
static int invalid(wire_conn *c, const wire_error *err) {
  if (wire__conn_report_err(c, err))
    return 1;
  switch (c->ep->opts.invalid_policy) {
  case WIRE_INVALID_REPLY:
    reply_error(c, err);
    return 0;
  case WIRE_INVALID_CLOSE: {
    int code = (err->code == WIRE_EVALIDATION || err->code == WIRE_EUNKNOWN_MESSAGE) ? 1008 : 1007;
    wire_conn_close(c, code, err->message, utf8_prefix(err->message, 123));
    return 0;
  }
  default:
    return 0;
  }
}

/* The codes a message can be refused with. */
static int message_error(int code) {
  return code == WIRE_EDESERIALIZE || code == WIRE_EDEPTH || code == WIRE_ECODEC ||
         code == WIRE_EVALIDATION || code == WIRE_EUNKNOWN_MESSAGE;
}

/* A host codec refused a message: the same on_error + policy path as ours. */
int wire_conn_invalid(wire_conn *c, const wire_error *err) {
  if (c == NULL || err == NULL || !message_error(err->code))
    return WIRE_EINVAL;
  if (c->state != WIRE__S_OPEN)
    return WIRE_ECLOSED;
  wire_server *s = WIRE__SRV(c);
  wire__enter(s);
  int r = invalid(c, err);
  wire__leave(s);
  return r;
}

/* ---- the message path ------------------------------------------------------ */

/* Decode, validate or dispatch; fills *v and *handler, or err. */
static int process(wire_conn *c, wire_doc *d, int kind, const uint8_t *data, size_t len,
                   const wire_value **v, int *handler, wire_error *err) {
  wire_endpoint *ep = c->ep;
  int want = ep->opts.codec == WIRE_CODEC_JSON ? WIRE_MSG_TEXT : WIRE_MSG_BINARY;
  if (kind != want)
    return wire__error_set(err, WIRE_ECODEC, "expected a %s frame for %s",
                           want == WIRE_MSG_TEXT ? "text" : "binary",
                           ep->opts.codec == WIRE_CODEC_JSON ? "JSON" : "MessagePack");
  int r = wire_decode(d, ep->opts.codec, data, len, 0, v, err);
  if (r != 0) {
    if (err != NULL && r != WIRE_ENOMEM)
      err->code = WIRE_EDESERIALIZE; /* too deep is undecodable too */
    return r;
  }
  if (ep->n_schemas == 1) {
    /* Quiet first (faster); details only for a failure. */
    if (wire_schema_validate(ep->schemas[0], *v, NULL) != 0)
      return wire_schema_validate(ep->schemas[0], *v, err);
    *handler = 0;
  } else if (ep->n_schemas > 1) {
    size_t idx = 0;
    if (wire_dispatch(ep->dispatcher, *v, &idx, NULL) != 0)
      return wire_dispatch(ep->dispatcher, *v, &idx, err);
    *handler = (int)idx;
  }
  return 0;
}

/* One complete message: RAW goes straight to on_message; otherwise decode,
 * validate or dispatch, then on_message with the value (the doc is reset
 * after), or the invalid-message path. */
void wire__pipeline_message(wire_conn *c, int kind, const uint8_t *data, size_t len) {
  wire_endpoint *ep = c->ep;
  wire_message msg = {(wire_msg_kind)kind, data, len, NULL, -1};
  if (ep->opts.codec == WIRE_CODEC_RAW) {
    if (ep->cb.on_message)
      ep->cb.on_message(c, &msg, ep->user_data);
    return;
  }
  wire_server *s = WIRE__SRV(c);
  wire_doc *d = doc_take(&s->doc, &s->doc_busy);
  if (d == NULL) {
    wire__conn_report(c, WIRE_ENOMEM, "out of memory decoding a message");
    return;
  }
  wire_error err;
  err.code = 0;
  err.path[0] = err.keyword[0] = err.schema_path[0] = err.message[0] = 0;
  err.offset = 0;
  int r = process(c, d, kind, data, len, &msg.value, &msg.handler, &err);
  if (r == 0) {
    if (ep->cb.on_message)
      ep->cb.on_message(c, &msg, ep->user_data);
  } else {
    if (err.code == 0)
      err.code = r;
    invalid(c, &err);
  }
  doc_give(d, s->doc, &s->doc_busy);
}

int wire_conn_send_value(wire_conn *c, const wire_value *v, wire_error *err) {
  if (c == NULL || v == NULL)
    return wire__error_set(err, WIRE_EINVAL, "connection and value are required");
  wire_endpoint *ep = c->ep;
  if (c->state != WIRE__S_OPEN)
    return wire__error_set(err, WIRE_ECLOSED, "connection is closed");
  if (ep->opts.codec == WIRE_CODEC_RAW)
    return wire__error_set(err, WIRE_EINVAL, "the endpoint has no codec");
  if (ep->response_schema != NULL && wire_schema_validate(ep->response_schema, v, NULL) != 0) {
    if (err == NULL)
      return WIRE_EVALIDATION;
    return wire_schema_validate(ep->response_schema, v, err);
  }
  wire_server *s = WIRE__SRV(c);
  wire_doc *d = doc_take(&s->out_doc, &s->out_doc_busy);
  if (d == NULL)
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  const uint8_t *bytes;
  size_t n;
  int r = wire_encode(d, ep->opts.codec, v, &bytes, &n, err);
  if (r == 0)
    r = wire__send_frame(
        c, ep->opts.codec == WIRE_CODEC_JSON ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, bytes, n);
  else if (r != WIRE_ENOMEM)
    r = WIRE_ESERIALIZE;
  doc_give(d, s->out_doc, &s->out_doc_busy);
  if (r != 0 && r != WIRE_ESERIALIZE && err != NULL)
    wire__error_set(err, r, "%s", wire_strerror(r));
  return r;
}
