/*
 * fuzz_deflate.c -- libFuzzer target for permessage-deflate: the offer
 * parser, then a whole handshake carrying the fuzzed offer, then the inflate
 * path of the accepted connection. Input: one byte n, then n bytes of
 * Sec-WebSocket-Extensions value (parsed alone, and sent in the request);
 * then chunks of one control byte (bit 0x80: dedicated endpoint is chosen by
 * the first chunk; bits 0x40: RSV1; 0x20: FIN; 0x01: binary) and one length
 * byte followed by that many bytes, each wrapped in a masked frame (mask 0)
 * and fed as one read. The endpoints echo what they inflate (compressed
 * again when it pays) with max_message_size 4096.
 */
#include "conn_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  if (m->kind == WIRE_MSG_TEXT)
    wire_conn_send_text(c, (const char *)m->data, m->len);
  else
    wire_conn_send_binary(c, m->data, m->len);
}

static wire_server *server(void) {
  static wire_server *s;
  if (s != NULL)
    return s;
  if (wire_server_new(NULL, &s) != 0)
    abort();
  wire_callbacks cb = {.on_message = on_message};
  wire_endpoint_options eo = {.max_message_size = 4096, .compression_threshold = 1};
  if (wire_endpoint_add(s, "/s", &eo, &cb, NULL, NULL, NULL) != 0)
    abort();
  eo.compression = WIRE_COMPRESSION_DEDICATED;
  eo.compression_window_bits = 9;
  if (wire_endpoint_add(s, "/d", &eo, &cb, NULL, NULL, NULL) != 0)
    abort();
  return s;
}

/* Every accepted offer has window sizes in range. */
static int check_offer(const wire__pmd_offer *o, void *ud) {
  (void)ud;
  if ((o->swb != 0 && (o->swb < 8 || o->swb > 15)) || (o->cwb != 0 && (o->cwb < 8 || o->cwb > 15)))
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t n = data[0];
  if (n > size - 1)
    n = size - 1;
  const char *offer = (const char *)data + 1;
  wire__pmd_offers(offer, n, check_offer, NULL);
  size_t i = 1 + n;
  const char *path = i < size && (data[i] & 0x80) ? "/d" : "/s";
  /* the offer goes into the request only if it is a valid header value */
  char clean[256];
  size_t k = 0;
  for (size_t j = 0; j < n; j++)
    if (offer[j] == '\t' || (offer[j] >= 0x20 && offer[j] < 0x7f))
      clean[k++] = offer[j];
  char req[512];
  int rl = snprintf(req, sizeof req,
                    "GET %s HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: %.*s\r\n\r\n",
                    path, (int)k, clean);
  wire__mem *m;
  if (wire__mem_open(server(), &m) != 0)
    abort();
  if (wire__mem_feed(m, req, (size_t)rl) != 0)
    abort();
  wire__mem_run(m);
  size_t out;
  wire__mem_output(m, &out);
  wire__mem_consume(m, out);
  uint8_t frame[2 + 2 + 4 + 255];
  while (i + 1 < size) {
    uint8_t ctl = data[i], len = data[i + 1];
    i += 2;
    if (len > size - i)
      len = (uint8_t)(size - i);
    size_t h = 0;
    frame[h++] = (uint8_t)(((ctl & 0x20) ? 0x80 : 0) | (ctl & 0x40) | ((ctl & 0x01) ? 2 : 1));
    if (ctl & 0x02)
      frame[0] &= 0xf0; /* a continuation */
    if (len < 126) {
      frame[h++] = (uint8_t)(0x80 | len);
    } else {
      frame[h++] = 0x80 | 126;
      frame[h++] = 0;
      frame[h++] = len;
    }
    memset(frame + h, 0, 4);
    h += 4;
    memcpy(frame + h, data + i, len);
    i += len;
    if (wire__mem_feed(m, frame, h + len) != 0)
      abort();
    wire__mem_run(m);
    wire__mem_output(m, &out);
    wire__mem_consume(m, out);
  }
  wire__mem_free(m);
  return 0;
}
