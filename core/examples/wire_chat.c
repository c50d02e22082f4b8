/*
 * wire_chat -- rooms over WebSocket: every text message sent on
 * /chat/{room} is relayed, unchanged, to every connection in the same room
 * (the sender included). Binary messages are ignored; other paths get 404.
 * Uses only the public header.
 *
 *   wire_chat [--host H] [--port P]      (defaults 127.0.0.1, 8000)
 *
 * Prints "listening on H:P" once it accepts connections; SIGINT or SIGTERM
 * close everyone with 1001 and exit 0.
 */
#include <wirecore.h>

#include "example_serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct member member;
typedef struct room {
  struct room *next;
  member *members;
  char name[];
} room;

struct member {
  member *next, *prev;
  room *room;
  wire_conn *conn;
};

typedef struct chat {
  room *rooms;
} chat;

static room *room_get(chat *c, const char *name, size_t len) {
  for (room *r = c->rooms; r; r = r->next)
    if (strlen(r->name) == len && memcmp(r->name, name, len) == 0)
      return r;
  room *r = calloc(1, sizeof *r + len + 1);
  if (r == NULL)
    return NULL;
  memcpy(r->name, name, len);
  r->next = c->rooms;
  c->rooms = r;
  return r;
}

static void room_drop_if_empty(chat *c, room *r) {
  if (r->members != NULL)
    return;
  for (room **pp = &c->rooms; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      free(r);
      return;
    }
}

static int on_connect(wire_conn *conn, const wire_request *req, void *user_data) {
  chat *c = user_data;
  wire_str name = wire_request_param(req, "room");
  room *r = room_get(c, name.ptr, name.len);
  member *m = calloc(1, sizeof *m);
  if (r == NULL || m == NULL) {
    free(m);
    return 503;
  }
  m->room = r;
  m->conn = conn;
  m->next = r->members;
  if (r->members)
    r->members->prev = m;
  r->members = m;
  wire_conn_set_data(conn, m);
  return WIRE_CONNECT_ACCEPT;
}

static void on_message(wire_conn *conn, const wire_message *msg, void *user_data) {
  (void)user_data;
  member *self = wire_conn_get_data(conn);
  if (msg->kind != WIRE_MSG_TEXT || self == NULL)
    return;
  for (member *m = self->room->members; m; m = m->next)
    wire_conn_send_text(m->conn, (const char *)msg->data, msg->len);
}

static void on_close(wire_conn *conn, int code, const char *reason, size_t len, void *user_data) {
  (void)code;
  (void)reason;
  (void)len;
  chat *c = user_data;
  member *m = wire_conn_get_data(conn);
  if (m == NULL)
    return;
  if (m->prev)
    m->prev->next = m->next;
  else
    m->room->members = m->next;
  if (m->next)
    m->next->prev = m->prev;
  room_drop_if_empty(c, m->room);
  wire_conn_set_data(conn, NULL);
  free(m);
}

static int usage(const char *argv0) {
  fprintf(stderr, "usage: %s [--host H] [--port P]\n", argv0);
  return 2;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  long port = 8000;
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = strtol(argv[++i], &end, 10);
      if (*end || port < 0 || port > 65535)
        return usage(argv[0]);
    } else {
      return usage(argv[0]);
    }
  }
  chat state = {0};
  wire_server *server = NULL;
  int r = wire_server_new(NULL, &server);
  if (r != 0) {
    fprintf(stderr, "wire_chat: %s\n", wire_strerror(r));
    return 1;
  }
  wire_callbacks cb = {0};
  cb.on_connect = on_connect;
  cb.on_message = on_message;
  cb.on_close = on_close;
  r = wire_endpoint_add(server, "/chat/{room}", NULL, &cb, &state, NULL, NULL);
  if (r != 0) {
    fprintf(stderr, "wire_chat: cannot add the endpoint: %s\n", wire_strerror(r));
    wire_server_free(server);
    return 1;
  }
  return example_serve(server, "wire_chat", host, port);
}
