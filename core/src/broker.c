/*
 * broker.c -- the broker ABI glue: attaching an engine to a server, the
 * envelope every cross-process publish travels in (encode, parse), the
 * publish and first/last-subscriber hooks topics.c calls, the delivery entry
 * point for what arrives from the backplane, state reports and stats, and
 * closing the engine with the server.
 */
#include "broker.h"
#include "conn_internal.h"
#include "history.h"

#include <stdlib.h>
#include <string.h>

/* ---- envelope -------------------------------------------------------------- */

void wire__envelope_header(uint8_t h[WIRE__ENV_HEADER], int kind, uint64_t origin) {
  h[0] = 0xFF;
  h[1] = 'W';
  h[2] = WIRE__ENV_VERSION;
  h[3] = (uint8_t)kind;
  for (int i = 0; i < 8; i++)
    h[4 + i] = (uint8_t)(origin >> (56 - 8 * i));
}

/* 0xFF never starts UTF-8 text, so a plain text payload is never mistaken
 * for an envelope; anything else without the magic is a plain message. */
int wire__envelope_parse(const uint8_t *p, size_t n, wire__envelope *out) {
  memset(out, 0, sizeof *out);
  if (n < 2 || p[0] != 0xFF || p[1] != 'W') {
    out->plain = 1;
    out->kind = wire__utf8_valid(p, n) ? WIRE__ENV_TEXT : WIRE__ENV_BINARY;
    out->payload = p;
    out->len = n;
    return 0;
  }
  size_t hl = WIRE__ENV_HEADER + (n > 3 && (p[3] & WIRE__ENV_SEQ) ? 8 : 0);
  int kind = n > 3 ? p[3] & ~WIRE__ENV_SEQ : 0;
  if (n < hl || p[2] != WIRE__ENV_VERSION || kind < WIRE__ENV_TEXT || kind > WIRE__ENV_VALUE)
    return WIRE_EDESERIALIZE;
  out->kind = kind;
  for (int i = 0; i < 8; i++)
    out->origin = (out->origin << 8) | p[4 + i];
  for (size_t i = WIRE__ENV_HEADER; i < hl; i++)
    out->seq = (out->seq << 8) | p[i];
  if (hl > WIRE__ENV_HEADER && out->seq == 0)
    return WIRE_EDESERIALIZE; /* numbers start at 1 */
  out->payload = p + hl;
  out->len = n - hl;
  return 0;
}

/* ---- attaching -------------------------------------------------------------- */

int wire_server_set_broker(wire_server *s, const wire_broker_engine *engine, void *impl) {
  if (engine == NULL || engine->publish == NULL || engine->topic == NULL || engine->close == NULL ||
      engine->free == NULL) {
    if (engine != NULL && engine->free != NULL)
      engine->free(impl);
    return WIRE_EINVAL;
  }
  if (s == NULL || s->broker != NULL || s->state == WIRE__SV_SHUTTING ||
      s->state == WIRE__SV_DONE) {
    engine->free(impl);
    return s == NULL ? WIRE_EINVAL : WIRE_ESTATE;
  }
  wire__broker *b = calloc(1, sizeof *b);
  if (b == NULL) {
    engine->free(impl);
    return WIRE_ENOMEM;
  }
  b->engine = *engine;
  b->impl = impl;
  if (uv_random(NULL, NULL, &b->origin, sizeof b->origin, 0, NULL) != 0)
    b->origin = uv_hrtime() ^ ((uint64_t)(uintptr_t)s << 16);
  b->origin |= 1; /* never 0: 0 is "plain, no origin" */
  s->broker = b;
  return 0;
}

void wire__broker_shutdown(wire_server *s) {
  wire__broker *b = s->broker;
  if (b == NULL || b->closed)
    return;
  b->closed = 1;
  b->engine.close(b->impl);
}

void wire__broker_close_unlistened(wire_server *s) {
  if (s->broker == NULL || s->state != WIRE__SV_NEW)
    return;
  wire__broker_shutdown(s);
  /* close callbacks run in the iteration's last phase */
  for (int i = 0; i < 16 && s->owns_loop && s->n_handles > 0; i++)
    uv_run(s->loop, UV_RUN_NOWAIT);
}

void wire__broker_free(wire_server *s) {
  wire__broker *b = s->broker;
  if (b == NULL)
    return;
  wire__broker_shutdown(s);
  b->engine.free(b->impl);
  wire_doc_free(b->doc);
  free(b->env);
  free(b);
  s->broker = NULL;
}

void wire_broker_hold(wire_server *s) {
  if (s != NULL)
    s->n_handles++;
}

void wire_broker_release(wire_server *s) {
  if (s == NULL || s->n_handles == 0)
    return;
  s->n_handles--;
  wire__server_check_done(s);
}

void *wire_server_loop(const wire_server *s) {
  return s ? s->loop : NULL;
}

uint64_t wire_server_origin(const wire_server *s) {
  return s && s->broker ? s->broker->origin : 0;
}

wire_broker_stats *wire__broker_stats(wire_server *s) {
  return s && s->broker ? &s->broker->stats : NULL;
}

int wire_server_on_broker_state(wire_server *s, wire_broker_state_cb cb, void *user_data) {
  if (s == NULL || s->broker == NULL)
    return WIRE_EINVAL;
  s->broker->on_state = cb;
  s->broker->state_data = user_data;
  return 0;
}

void wire_broker_report(wire_server *s, wire_broker_state state, const char *message) {
  if (s == NULL || s->broker == NULL)
    return;
  wire__broker *b = s->broker;
  int back = b->stats.state == WIRE_BROKER_DOWN && state == WIRE_BROKER_UP;
  b->stats.state = state;
  if (back && b->hops == NULL) /* history: what others published meanwhile may be lost */
    wire__history_lost(s);     /* (a shared history catches up from Redis instead) */
  if (b->on_state != NULL)
    b->on_state(s, state, message, b->state_data);
}

int wire_server_broker_stats(const wire_server *s, wire_broker_stats *out) {
  if (s == NULL || out == NULL)
    return WIRE_EINVAL;
  if (s->broker == NULL)
    return WIRE_ENOTFOUND;
  *out = s->broker->stats;
  return 0;
}

/* ---- publishing ------------------------------------------------------------- */

/* Build header + payload in the broker's buffer and hand it to the engine.
 * A publish the engine refuses (or that finds no memory) is counted. */
static void send_envelope(wire_server *s, const char *topic, size_t len, int kind, const void *data,
                          size_t n, uint64_t seq) {
  wire__broker *b = s->broker;
  size_t hl = WIRE__ENV_HEADER + (seq ? 8 : 0), need = hl + n;
  if (need > b->env_cap) {
    uint8_t *env = realloc(b->env, need);
    if (env == NULL) {
      b->stats.dropped++;
      return;
    }
    b->env = env;
    b->env_cap = need;
  }
  wire__envelope_header(b->env, seq ? kind | (int)WIRE__ENV_SEQ : kind, b->origin);
  for (int i = 0; seq && i < 8; i++)
    b->env[WIRE__ENV_HEADER + i] = (uint8_t)(seq >> (56 - 8 * i));
  if (n)
    memcpy(b->env + hl, data, n);
  if (b->engine.publish(b->impl, topic, len, b->env, need) == 0)
    b->stats.published++;
  else
    b->stats.dropped++;
  if (b->env_cap > 65536 && need <= 65536) { /* one big publish does not pin its buffer */
    free(b->env);
    b->env = NULL;
    b->env_cap = 0;
  }
}

void wire__broker_publish(wire_server *s, const char *topic, size_t len, int kind, const void *data,
                          size_t n, uint64_t seq) {
  if (s->broker == NULL || s->broker->closed)
    return;
  send_envelope(s, topic, len, kind == WIRE_MSG_TEXT ? WIRE__ENV_TEXT : WIRE__ENV_BINARY, data, n,
                seq);
}

/* Values cross as MessagePack: lossless for the whole value model (binary,
 * uint64, doubles), unlike JSON. A value MessagePack cannot hold is dropped
 * and counted; the local publish reports the encoding error itself. */
void wire__broker_publish_value(wire_server *s, const char *topic, size_t len, const wire_value *v,
                                uint64_t seq) {
  wire__broker *b = s->broker;
  if (b == NULL || b->closed)
    return;
  if (b->doc == NULL && wire_doc_new(&b->doc) != 0) {
    b->stats.dropped++;
    return;
  }
  const uint8_t *bytes;
  size_t n;
  if (wire_encode(b->doc, WIRE_CODEC_MSGPACK, v, &bytes, &n, NULL) == 0)
    send_envelope(s, topic, len, WIRE__ENV_VALUE, bytes, n, seq);
  else
    b->stats.dropped++;
  wire_doc_reset(b->doc);
}

void wire__broker_topic(wire_server *s, const char *topic, size_t len, int subscribed) {
  wire__broker *b = s->broker;
  if (b != NULL && !b->closed)
    b->engine.topic(b->impl, topic, len, subscribed);
}

/* ---- delivery from the backplane -------------------------------------------- */

/* A value envelope: decode the MessagePack and publish it locally (encoded
 * once per codec this server's subscribers use). */
static int deliver_value(wire_server *s, const char *topic, size_t len, const wire__envelope *e) {
  wire__broker *b = s->broker;
  if (b->doc == NULL && wire_doc_new(&b->doc) != 0)
    return WIRE_ENOMEM;
  const wire_value *v;
  int r = wire_decode(b->doc, WIRE_CODEC_MSGPACK, e->payload, e->len, 0, &v, NULL);
  if (r == 0)
    r = wire__publish_value_local(s, topic, len, v, NULL, NULL);
  wire_doc_reset(b->doc);
  return r == WIRE_EDEPTH ? WIRE_EDESERIALIZE : r;
}

/* A shared history's announcement "\xFFH<epoch hex16>:<seq> <json>" (the
 * publish script's format): 0 and the parts, or -1. */
static int parse_announce(const uint8_t *p, size_t n, uint64_t *epoch, uint64_t *seq,
                          const uint8_t **json, size_t *jlen) {
  if (n < 2 || p[0] != 0xFF || p[1] != 'H')
    return -1;
  const uint8_t *sp = memchr(p + 2, ' ', n - 2);
  if (sp == NULL ||
      wire_position_parse((const char *)p + 2, (size_t)(sp - p - 2), epoch, seq) != 0 || *seq == 0)
    return -1;
  *json = sp + 1;
  *jlen = n - (size_t)(sp + 1 - p);
  return 0;
}

void wire__broker_subscribed(wire_server *s, const char *topic, size_t len) {
  if (s->broker != NULL && s->broker->hops != NULL && !s->broker->closed)
    wire__history_channel(s, topic, len);
}

int wire_broker_deliver(wire_server *s, const char *topic, size_t len, const void *data,
                        size_t data_len) {
  if (s == NULL || s->broker == NULL || topic == NULL || len == 0 || len > WIRE_MAX_TOPIC_LENGTH ||
      (data == NULL && data_len > 0))
    return WIRE_EINVAL;
  wire__broker *b = s->broker;
  uint64_t ep, sq;
  const uint8_t *json;
  size_t jlen;
  if (b->hops != NULL && data != NULL &&
      parse_announce(data, data_len, &ep, &sq, &json, &jlen) == 0) {
    int hr = wire__history_announced(s, topic, len, ep, sq, json, jlen);
    if (hr == WIRE_EDESERIALIZE) {
      b->stats.invalid++;
      return hr;
    }
    b->stats.received++;
    return hr;
  }
  wire__envelope e;
  int r = wire__envelope_parse(data ? data : (const void *)"", data_len, &e);
  if (r == 0 && e.origin == b->origin)
    return 0;               /* our own publish, already delivered here */
  if (r == 0 && e.seq != 0) /* history: a hole in the origin's numbers is reported */
    wire__history_seen(s, topic, len, e.origin, e.seq);
  if (r == 0 && e.kind == WIRE__ENV_VALUE)
    r = deliver_value(s, topic, len, &e);
  else if (r == 0)
    r = wire__publish_local(s, topic, len,
                            e.kind == WIRE__ENV_TEXT ? WIRE_MSG_TEXT : WIRE_MSG_BINARY, e.payload,
                            e.len, NULL);
  if (r == WIRE_EDESERIALIZE || r == WIRE_EUTF8 || r == WIRE_ESERIALIZE) {
    b->stats.invalid++;
    return WIRE_EDESERIALIZE;
  }
  if (r >= 0)
    b->stats.received++;
  return r;
}
