/*
 * wire_echo -- echoes every WebSocket message back with its kind (text or
 * binary), on any path. Uses only the public header.
 *
 *   wire_echo [--host H] [--port P] [--max-message BYTES] [--workers N]
 *             [--send-timeout MS] [--pong-timeout MS] [--max-buffered BYTES]
 *             [--cert FILE --key FILE [--ca FILE]]
 *             [--metrics] [--metrics-port P] [--log-json]
 *
 * --send-timeout and --pong-timeout set send_timeout_ms and pong_timeout_ms
 * (which is also the close deadline); --max-buffered sets the server's
 * memory budget, max_buffered_bytes (docs/limits.md); 0 keeps the defaults.
 *
 * --metrics serves GET /metrics (Prometheus) and /health on the port,
 * --metrics-port P on a port of their own; --log-json prints one JSON line
 * per connection open/close, rejection and error on stderr
 * (docs/operations.md).
 *
 * --workers N (N > 1) serves from N processes sharing the port under a
 * supervisor (docs/scaling.md): a worker that dies is restarted, SIGHUP
 * replaces them one at a time.
 *
 * Prints "listening on H:P" once it accepts connections. SIGINT or SIGTERM
 * start a graceful shutdown (close 1001 to everyone, wait up to 5 s); the
 * program then exits 0. With --cert it serves wss:// (an encrypted key's
 * passphrase comes from WIRE_TLS_KEY_PASSWORD; --ca asks clients for a
 * certificate signed by that CA), and without --workers SIGHUP reloads the
 * certificate.
 */
#include <wirecore.h>

#include "example_serve.h" /* listen, then serve until SIGINT/SIGTERM */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_message(wire_conn *conn, const wire_message *msg, void *user_data) {
  (void)user_data;
  if (msg->kind == WIRE_MSG_TEXT)
    wire_conn_send_text(conn, (const char *)msg->data, msg->len);
  else
    wire_conn_send_binary(conn, msg->data, msg->len);
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--host H] [--port P] [--max-message BYTES] [--workers N]"
          " [--send-timeout MS] [--pong-timeout MS] [--max-buffered BYTES]"
          " [--cert FILE --key FILE [--ca FILE]] [--metrics] [--metrics-port P] [--log-json]\n",
          argv0);
  return 2;
}

typedef struct echo_args {
  const char *host;
  long port;
  unsigned long long max_message;
  unsigned long send_timeout, pong_timeout;
  example_ops ops;
  unsigned long long max_buffered;
} echo_args;

static int serve(unsigned index, void *user_data);

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  long port = 9001, workers = 1;
  unsigned long long max_message = 1u << 20;
  unsigned long send_timeout = 0, pong_timeout = 0;
  example_ops ops = {0, -1, 0};
  unsigned long long max_buffered = 0;
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    int k = example_ops_arg(argc, argv, &i, &ops);
    if (k < 0)
      return usage(argv[0]);
    if (k > 0)
      continue;
    if (example_tls_arg(argc, argv, &i)) {
      continue;
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = strtol(argv[++i], &end, 10);
      if (*end || port < 0 || port > 65535)
        return usage(argv[0]);
    } else if (strcmp(argv[i], "--max-message") == 0 && i + 1 < argc) {
      max_message = strtoull(argv[++i], &end, 10);
      if (*end || max_message == 0)
        return usage(argv[0]);
    } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
      workers = strtol(argv[++i], &end, 10);
      if (*end || workers < 1 || workers > 1024)
        return usage(argv[0]);
    } else if (strcmp(argv[i], "--send-timeout") == 0 && i + 1 < argc) {
      send_timeout = strtoul(argv[++i], &end, 10);
      if (*end || send_timeout > 0x7fffffffUL)
        return usage(argv[0]);
    } else if (strcmp(argv[i], "--pong-timeout") == 0 && i + 1 < argc) {
      pong_timeout = strtoul(argv[++i], &end, 10);
      if (*end || pong_timeout > 0x7fffffffUL)
        return usage(argv[0]);
    } else if (strcmp(argv[i], "--max-buffered") == 0 && i + 1 < argc) {
      max_buffered = strtoull(argv[++i], &end, 10);
      if (*end)
        return usage(argv[0]);
    } else {
      return usage(argv[0]);
    }
  }
  echo_args args = {host, port, max_message, send_timeout, pong_timeout, ops, max_buffered};
  return example_workers("wire_echo", workers, port, serve, &args);
}

/* The whole server: in this process, or in each worker after the fork. */
static int serve(unsigned index, void *user_data) {
  const echo_args *a = user_data;
  const char *host = a->host;
  long port = a->port;
  unsigned long long max_message = a->max_message;
  (void)index;
  wire_server *server = NULL;
  wire_server_options so = {0};
  so.max_buffered_bytes = (size_t)a->max_buffered;
  int r = wire_server_new(&so, &server);
  if (r != 0) {
    fprintf(stderr, "wire_echo: %s\n", wire_strerror(r));
    return 1;
  }
  wire_endpoint_options opts = {0};
  opts.max_message_size = (size_t)max_message;
  opts.send_timeout_ms = (unsigned)a->send_timeout;
  opts.pong_timeout_ms = (unsigned)a->pong_timeout;
  wire_callbacks cb = {0};
  cb.on_message = on_message;
  wire_error err;
  r = wire_endpoint_add(server, "/{path:path}", &opts, &cb, NULL, NULL, &err);
  if (r == 0)
    r = wire_endpoint_add(server, "/", &opts, &cb, NULL, NULL, &err);
  if (r != 0) {
    fprintf(stderr, "wire_echo: cannot add the endpoint: %s\n", wire_strerror(r));
    wire_server_free(server);
    return 1;
  }
  if (example_ops_apply(server, "wire_echo", host, &a->ops) != 0) {
    wire_server_shutdown(server, 0, NULL, NULL);
    while (wire_server_process(server) == 1)
      ;
    wire_server_free(server);
    return 1;
  }
  return example_serve(server, "wire_echo", host, port);
}
