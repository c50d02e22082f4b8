/*
 * wire_chat -- rooms over WebSocket: every text message sent on
 * /chat/{room} is relayed, unchanged, to every connection in the same room
 * (the sender included). A room is a topic: each connection subscribes to
 * its room, and a message is published to it. Binary messages are ignored;
 * other paths get 404. Uses only the public header.
 *
 *   wire_chat [--host H] [--port P] [--broker redis://HOST:PORT/DB] [--workers N]
 *             [--cert FILE --key FILE [--ca FILE]]
 *             [--metrics] [--metrics-port P] [--log-json]
 *                                        (defaults 127.0.0.1, 8000, no broker, 1)
 *
 * With --broker, rooms span every wire_chat (and every other Wirecore
 * server) attached to the same Redis: a message reaches the room's members
 * in all of them. Broker state changes go to stderr, one line each.
 * --workers N (N > 1) serves from N processes sharing the port under a
 * supervisor; give them a --broker so rooms span the workers.
 * --cert/--key serve wss://; without workers, SIGHUP reloads them.
 * --metrics serves GET /metrics and /health on the port (503 while the
 * broker is down), --metrics-port P on a port of their own; --log-json
 * prints one JSON line per connection event and error on stderr
 * (docs/operations.md).
 *
 * Prints "listening on H:P" once it accepts connections; SIGINT or SIGTERM
 * close everyone with 1001 and exit 0.
 */
#include <wirecore.h>

#include "example_serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The room is the connection's topic: subscribing happens before the 101,
 * so a member never misses a message sent after it joined. */
static int on_connect(wire_conn *conn, const wire_request *req, void *user_data) {
  (void)user_data;
  wire_str room = wire_request_param(req, "room");
  int r = wire_conn_subscribe(conn, room.ptr, room.len);
  if (r == WIRE_EINVAL)
    return 400; /* a room name over WIRE_MAX_TOPIC_LENGTH bytes */
  return r == 0 ? WIRE_CONNECT_ACCEPT : 503;
}

/* One publish: the frame is built once and shared by every member's queue.
 * The subscription ends with the connection, so on_close has nothing to do. */
static void on_message(wire_conn *conn, const wire_message *msg, void *user_data) {
  (void)user_data;
  if (msg->kind != WIRE_MSG_TEXT)
    return;
  wire_str room = wire_request_param(wire_conn_request(conn), "room");
  wire_server_publish(wire_conn_server(conn), room.ptr, room.len, WIRE_MSG_TEXT, msg->data,
                      msg->len, NULL);
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--host H] [--port P] [--broker URL] [--workers N]"
          " [--cert FILE --key FILE [--ca FILE]] [--metrics] [--metrics-port P] [--log-json]\n",
          argv0);
  return 2;
}

/* One line per broker state change (not per message). */
static void on_broker_state(wire_server *s, wire_broker_state st, const char *msg, void *ud) {
  (void)s;
  (void)st;
  fprintf(stderr, "%s: broker: %s\n", (const char *)ud, msg ? msg : "");
}

/* Attach Redis when a URL was given. Returns 0, or 1 after saying why. */
static int use_broker(wire_server *server, const char *url) {
  if (url == NULL)
    return 0;
  wire_error err;
  memset(&err, 0, sizeof err);
  int r = wire_server_use_redis(server, url, NULL, &err);
  if (r != 0) {
    fprintf(stderr, "wire_chat: --broker %s: %s\n", url, err.message);
    return 1;
  }
  wire_server_on_broker_state(server, on_broker_state, "wire_chat");
  return 0;
}

typedef struct chat_args {
  const char *host;
  long port;
  const char *broker;
  example_ops ops;
} chat_args;

static int serve(unsigned index, void *user_data);

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  long port = 8000, workers = 1;
  const char *broker = NULL;
  example_ops ops = {0, -1, 0};
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
    } else if (strcmp(argv[i], "--broker") == 0 && i + 1 < argc) {
      broker = argv[++i];
    } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
      workers = strtol(argv[++i], &end, 10);
      if (*end || workers < 1 || workers > 1024)
        return usage(argv[0]);
    } else {
      return usage(argv[0]);
    }
  }
  chat_args args = {host, port, broker, ops};
  return example_workers("wire_chat", workers, port, serve, &args);
}

/* The whole server: in this process, or in each worker after the fork. */
static int serve(unsigned index, void *user_data) {
  const chat_args *a = user_data;
  const char *host = a->host, *broker = a->broker;
  long port = a->port;
  (void)index;
  wire_server *server = NULL;
  int r = wire_server_new(NULL, &server);
  if (r != 0) {
    fprintf(stderr, "wire_chat: %s\n", wire_strerror(r));
    return 1;
  }
  wire_callbacks cb = {0};
  cb.on_connect = on_connect;
  cb.on_message = on_message;
  r = wire_endpoint_add(server, "/chat/{room}", NULL, &cb, NULL, NULL, NULL);
  if (r != 0) {
    fprintf(stderr, "wire_chat: cannot add the endpoint: %s\n", wire_strerror(r));
    wire_server_free(server);
    return 1;
  }
  if (use_broker(server, broker) != 0) {
    wire_server_free(server);
    return 1;
  }
  if (example_ops_apply(server, "wire_chat", host, &a->ops) != 0) {
    wire_server_shutdown(server, 0, NULL, NULL);
    while (wire_server_process(server) == 1)
      ;
    wire_server_free(server);
    return 1;
  }
  return example_serve(server, "wire_chat", host, port);
}
