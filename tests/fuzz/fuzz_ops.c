/*
 * fuzz_ops.c -- libFuzzer target for the plain-HTTP side of a connection
 * with the metrics and health paths on and a log callback set: arbitrary
 * request heads (the metrics and health request-line match, waiting for the
 * head's end, the Prometheus and health renderers, rejections and their log
 * events in JSON), fed through the in-memory transport. The first input byte
 * picks the write limit and whether the peer sends EOF at the end; then each
 * chunk is one length byte followed by that many bytes (1..64), fed as one
 * read, with the loop's work done between chunks when the length byte's top
 * bit is set.
 */
#include "conn_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Format every event as JSON, into a buffer too small for some of them. */
static void on_log(const wire_log_event *ev, void *ud) {
  (void)ud;
  char line[96];
  if (wire_log_event_json(ev, line, sizeof line) < 0)
    abort();
}

static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  wire_conn_send_text(c, (const char *)m->data, m->len);
  wire_server_observe(wire_conn_server(c), wire_conn_endpoint(c), (double)m->len * 1e-4);
}

static wire_server *server(void) {
  static wire_server *s;
  if (s != NULL)
    return s;
  if (wire_server_new(NULL, &s) != 0)
    abort();
  wire_callbacks cb = {.on_message = on_message};
  if (wire_endpoint_add(s, "/m/{rest:path}", NULL, &cb, NULL, NULL, NULL) != 0 ||
      wire_server_set_metrics(s, "/m", "/h") != 0 ||
      wire_server_set_log(s, on_log, NULL, WIRE_LOG_DEBUG) != 0)
    abort();
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  wire__mem *m;
  if (wire__mem_open(server(), &m) != 0)
    abort();
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
  size_t out;
  wire__mem_output(m, &out);
  wire__mem_consume(m, out);
  wire__mem_free(m);
  return 0;
}
