/*
 * fuzz_frames.c -- libFuzzer target for the incoming path of an accepted
 * connection: the frame scanner, wslay, UTF-8 checks, the close handshake,
 * delivery and echo replies, driven through the in-memory transport. The
 * first input byte picks the write limit (slow-socket partial writes) and
 * whether the peer sends EOF at the end; then each chunk is one length byte
 * followed by that many bytes (1..64), fed as one read, with the loop's work
 * done between chunks when the length byte's top bit is set.
 */
#include "conn_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char request[] = "GET /echo HTTP/1.1\r\n"
                              "Host: fuzz\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";

/* Echo, with a pause/resume around odd-length messages so the pause queue is
 * exercised too. */
static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  if (m->kind == WIRE_MSG_TEXT)
    wire_conn_send_text(c, (const char *)m->data, m->len);
  else
    wire_conn_send_binary(c, m->data, m->len);
  if (m->len % 2 == 1) {
    wire_conn_pause(c);
    wire_conn_resume(c);
  }
}

static wire_server *server(void) {
  static wire_server *s;
  if (s != NULL)
    return s;
  if (wire_server_new(NULL, &s) != 0)
    abort();
  wire_endpoint_options eo = {.max_message_size = 4096};
  wire_callbacks cb = {.on_message = on_message};
  if (wire_endpoint_add(s, "/echo", &eo, &cb, NULL, NULL, NULL) != 0)
    abort();
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  wire__mem *m;
  if (wire__mem_open(server(), &m) != 0)
    abort();
  if (wire__mem_feed(m, request, sizeof request - 1) != 0)
    abort();
  wire__mem_run(m);
  size_t out;
  wire__mem_output(m, &out);
  if (out == 0 || wire__mem_conn(m) == NULL)
    abort(); /* the fixed request must always be accepted */
  wire__mem_consume(m, out);
  wire__mem_set_write_limit(m, data[0] & 0x0f);
  int eof = data[0] & 0x10;
  size_t i = 1;
  while (i < size) {
    size_t n = 1 + (data[i] & 0x3f);
    int run = data[i] & 0x80;
    i++;
    if (n > size - i)
      n = size - i;
    if (n > 0 && wire__mem_feed(m, data + i, n) != 0)
      abort();
    i += n;
    if (run)
      wire__mem_run(m);
  }
  if (eof)
    wire__mem_eof(m);
  wire__mem_run(m);
  wire__mem_output(m, &out);
  wire__mem_consume(m, out);
  wire__mem_free(m);
  return 0;
}
