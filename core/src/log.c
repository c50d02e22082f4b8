/*
 * log.c -- structured log events: the server's log callback and level
 * (wire_server_set_log), building one event for a connection (open, close,
 * reject, error), and its JSON line form (wire_log_event_json). Nothing here
 * runs unless a callback is set.
 */
#include "conn_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int wire__log_count(wire_conn *c) {
  wire__cx *x = wire__conn_extras(c);
  if (x == NULL)
    return WIRE_ENOMEM;
  if (!x->counted) {
    x->counted = 1;
    x->bin = x->bout = 0;
    x->t_open = (uint32_t)uv_now(WIRE__SRV(c)->loop);
  }
  return 0;
}

/* wire_server_set_log: an open connection counts its close event's duration
 * and bytes from when logging began (a failed allocation leaves them 0). */
static void count_open(wire_conn *c, void *arg) {
  (void)arg;
  if (c->state == WIRE__S_OPEN || c->state == WIRE__S_CLOSING)
    (void)wire__log_count(c);
}

int wire_server_set_log(wire_server *s, wire_log_cb cb, void *user_data, int min_level) {
  if (s == NULL)
    return WIRE_EINVAL;
  s->log_cb = cb;
  s->log_user = user_data;
  s->log_level = min_level;
  if (cb != NULL) /* open connections count from now on */
    wire__server_each_conn(s, count_open, NULL);
  return 0;
}

/* The request path of a connection, "" before its head was parsed. */
static const char *conn_path(const wire_conn *c) {
  if (c->req == NULL)
    return "";
  wire_str p = wire_request_path(c->req);
  return p.ptr ? p.ptr : "";
}

void wire__log_conn(wire_conn *c, int level, const char *event, int status, int code,
                    const char *message) {
  wire_server *s = WIRE__SRV(c);
  wire_log_event ev;
  memset(&ev, 0, sizeof ev);
  ev.level = level;
  ev.event = event;
  ev.conn_id = c->id;
  ev.remote = "";
  if (c->req != NULL) {
    wire_str a = wire_request_remote_addr(c->req);
    ev.remote = a.ptr ? a.ptr : "";
    ev.remote_port = wire_request_remote_port(c->req);
  }
  char addr[64];
  struct sockaddr_storage ss;
  if (c->req == NULL && WIRE__TP(c)->peer(c, &ss) == 0) { /* before the head parsed */
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
    if (uv_ip_name((const struct sockaddr *)&ss, addr, sizeof addr) == 0) {
      ev.remote = addr;
      ev.remote_port = ntohs(ss.ss_family == AF_INET6 ? a6->sin6_port : a4->sin_port);
    }
  }
  if (ev.remote_port < 0)
    ev.remote_port = 0;
  ev.path = conn_path(c);
  ev.status = status;
  ev.message = message ? message : "";
  if (strcmp(event, "close") == 0) {
    ev.close_code = code;
    uv_update_time(s->loop);
    if (c->x != NULL && c->x->counted) {
      ev.duration = (double)(uint32_t)((uint32_t)uv_now(s->loop) - c->x->t_open) / 1000.0;
      ev.bytes_in = c->x->bin;
      ev.bytes_out = c->x->bout;
    }
  } else if (strcmp(event, "error") == 0) {
    ev.error = code;
  }
  s->log_cb(&ev, s->log_user);
}

/* ---- JSON form -------------------------------------------------------------- */

typedef struct jbuf {
  char *p;
  size_t cap, len;
} jbuf;

static void jput(jbuf *b, const char *s, size_t n) {
  if (b->len < b->cap) {
    size_t k = b->cap - b->len - 1 < n ? b->cap - b->len - 1 : n;
    memcpy(b->p + b->len, s, k);
    b->p[b->len + k] = 0;
  }
  b->len += n;
}

/* A JSON string: quotes, with ", \ and control characters escaped. */
static void jstr(jbuf *b, const char *s) {
  jput(b, "\"", 1);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      char e[2] = {'\\', (char)ch};
      jput(b, e, 2);
    } else if (ch < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", ch);
      jput(b, e, 6);
    } else {
      jput(b, (const char *)&ch, 1);
    }
  }
  jput(b, "\"", 1);
}

static void jfmt(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jfmt(jbuf *b, const char *fmt, ...) {
  char tmp[96];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    jput(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static const char *level_name(int level) {
  return level >= WIRE_LOG_ERROR     ? "error"
         : level >= WIRE_LOG_WARNING ? "warning"
         : level >= WIRE_LOG_INFO    ? "info"
                                     : "debug";
}

int wire_log_event_json(const wire_log_event *ev, char *buf, size_t cap) {
  if (ev == NULL || (buf == NULL && cap > 0))
    return WIRE_EINVAL;
  jbuf b = {buf, cap, 0};
  if (cap > 0)
    buf[0] = 0;
  jput(&b, "{\"level\":", 9);
  jstr(&b, level_name(ev->level));
  jput(&b, ",\"event\":", 9);
  jstr(&b, ev->event ? ev->event : "");
  jfmt(&b, ",\"conn\":%llu,\"remote\":", (unsigned long long)ev->conn_id);
  jstr(&b, ev->remote ? ev->remote : "");
  jfmt(&b, ",\"port\":%d,\"path\":", ev->remote_port);
  jstr(&b, ev->path ? ev->path : "");
  const char *e = ev->event ? ev->event : "";
  if (strcmp(e, "close") == 0)
    jfmt(&b, ",\"code\":%d,\"duration\":%.3f,\"bytes_in\":%llu,\"bytes_out\":%llu", ev->close_code,
         ev->duration, (unsigned long long)ev->bytes_in, (unsigned long long)ev->bytes_out);
  else if (strcmp(e, "reject") == 0)
    jfmt(&b, ",\"status\":%d", ev->status);
  else if (strcmp(e, "error") == 0)
    jfmt(&b, ",\"error\":\"%s\"", wire_err_name(ev->error));
  if (ev->message && ev->message[0]) {
    jput(&b, ",\"message\":", 11);
    jstr(&b, ev->message);
  }
  jput(&b, "}", 1);
  return b.len > INT32_MAX ? WIRE_ENOMEM : (int)b.len;
}
