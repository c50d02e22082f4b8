/*
 * wire_chat -- rooms over WebSocket: every text message sent on
 * /chat/{room} is relayed, unchanged, to every connection in the same room
 * (the sender included). A room is a topic: each connection subscribes to
 * its room, and a message is published to it. Binary messages are ignored;
 * other paths get 404. Uses only the public header.
 *
 *   wire_chat [--host H] [--port P]      (defaults 127.0.0.1, 8000)
 *             [--cert FILE --key FILE [--ca FILE]]   (wss://; SIGHUP reloads)
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
  fprintf(stderr, "usage: %s [--host H] [--port P] [--cert FILE --key FILE [--ca FILE]]\n", argv0);
  return 2;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  long port = 8000;
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    if (example_tls_arg(argc, argv, &i)) {
      continue;
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = strtol(argv[++i], &end, 10);
      if (*end || port < 0 || port > 65535)
        return usage(argv[0]);
    } else {
      return usage(argv[0]);
    }
  }
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
  return example_serve(server, "wire_chat", host, port);
}
