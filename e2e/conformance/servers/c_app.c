/*
 * c_app.c -- the conformance suite's application server on the C API: the
 * /app/... endpoints the app cases (cases/10-app.json) talk to, and an echo
 * on every other path, as wire_echo. Uses only the public header.
 *
 *   c_app [--host H] [--port P] [--max-message BYTES] [--cert FILE --key FILE]
 *
 * C has no exceptions and no asynchronous handlers, so the app endpoints
 * express them with the public API: a failing handler closes with 1011, a
 * slow or asynchronous handler pauses its connection and resumes it from a
 * timer of the host loop below. Prints "listening on H:P"; SIGINT/SIGTERM stop.
 */
#include <wirecore.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TIMERS 1024

/* A paused connection to resume at `due`, after sending `reply` if any. */
typedef struct app_timer {
  long long due;
  wire_conn *conn;
  char *reply;
  size_t reply_len;
} app_timer;

typedef struct app_state {
  app_timer timers[MAX_TIMERS];
  size_t n_timers;
} app_state;

/* /app/slow: what a connection has seen. */
typedef struct slow_conn {
  unsigned long next;
  int broken;
} slow_conn;

static volatile sig_atomic_t stop_requested;
static app_state app;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pause conn for ms milliseconds; reply (copied, may be NULL) is sent when it
 * resumes. A full timer table leaves the connection running. */
static void pause_for(wire_conn *conn, long long ms, const void *reply, size_t len) {
  if (app.n_timers == MAX_TIMERS)
    return;
  app_timer *t = &app.timers[app.n_timers];
  t->reply = NULL;
  t->reply_len = 0;
  if (reply != NULL) {
    t->reply = malloc(len ? len : 1);
    if (t->reply == NULL)
      return;
    memcpy(t->reply, reply, len);
    t->reply_len = len;
  }
  t->due = now_ms() + ms;
  t->conn = conn;
  wire_conn_ref(conn);
  wire_conn_pause(conn);
  app.n_timers++;
}

/* Fire the due timers: send their reply, resume, drop the reference. */
static void fire_timers(void) {
  long long now = now_ms();
  size_t i = 0;
  while (i < app.n_timers) {
    app_timer t = app.timers[i];
    if (t.due > now) {
      i++;
      continue;
    }
    app.timers[i] = app.timers[--app.n_timers];
    if (t.reply != NULL)
      wire_conn_send_text(t.conn, t.reply, t.reply_len);
    free(t.reply);
    wire_conn_resume(t.conn);
    wire_conn_unref(t.conn);
  }
}

/* Milliseconds until the next timer, or -1. */
static int next_timer_ms(void) {
  long long best = -1, now = now_ms();
  for (size_t i = 0; i < app.n_timers; i++) {
    long long left = app.timers[i].due - now;
    if (best < 0 || left < best)
      best = left < 0 ? 0 : left;
  }
  return (int)best;
}

static void echo(wire_conn *conn, const wire_message *msg, void *user_data) {
  (void)user_data;
  if (msg->kind == WIRE_MSG_TEXT)
    wire_conn_send_text(conn, (const char *)msg->data, msg->len);
  else
    wire_conn_send_binary(conn, msg->data, msg->len);
}

/* /app/json and /app/json-close: the validated value goes back. */
static void echo_value(wire_conn *conn, const wire_message *msg, void *user_data) {
  (void)user_data;
  wire_conn_send_value(conn, msg->value, NULL);
}

/* /app/crash: "crash" is a handler failure (1011); anything else is echoed. */
static void crash_or_echo(wire_conn *conn, const wire_message *msg, void *user_data) {
  if (msg->len == 5 && memcmp(msg->data, "crash", 5) == 0) {
    wire_conn_close(conn, 1011, "internal error", 14);
    return;
  }
  echo(conn, msg, user_data);
}

/* /app/order: each message is answered after (n % 3) ms, the connection
 * paused meanwhile, as an asynchronous handler would be. */
static void delayed_echo(wire_conn *conn, const wire_message *msg, void *user_data) {
  (void)user_data;
  unsigned long n = strtoul((const char *)msg->data, NULL, 10);
  pause_for(conn, (long long)(n % 3), msg->data, msg->len);
}

/* /app/slow: a consumer that starts 1 s late and rests 5 ms every 1000
 * messages; it checks that the numbered messages come in order and answers
 * "end" with what it saw. */
static void slow_consumer(wire_conn *conn, const wire_message *msg, void *user_data) {
  (void)user_data;
  slow_conn *s = wire_conn_get_data(conn);
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL)
      return;
    wire_conn_set_data(conn, s);
  }
  if (msg->len == 3 && memcmp(msg->data, "end", 3) == 0) {
    char reply[64];
    int n = s->broken ? snprintf(reply, sizeof reply, "out of order at %lu", s->next)
                      : snprintf(reply, sizeof reply, "got %lu in order", s->next);
    wire_conn_send_text(conn, reply, (size_t)n);
    return;
  }
  if (!s->broken && strtoul((const char *)msg->data, NULL, 10) != s->next)
    s->broken = 1;
  if (!s->broken)
    s->next++;
  if (s->next == 1)
    pause_for(conn, 1000, NULL, 0);
  else if (s->next % 1000 == 0)
    pause_for(conn, 5, NULL, 0);
}

static void free_data(wire_conn *conn, int code, const char *reason, size_t len, void *ud) {
  (void)code, (void)reason, (void)len, (void)ud;
  free(wire_conn_get_data(conn));
  wire_conn_set_data(conn, NULL);
}

static const char *const NUMBERED =
    "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},"
    "\"required\":[\"n\"]}";

/* Register one endpoint; returns 0 or the error code (printed). */
static int add(wire_server *server, const char *pattern, wire_endpoint_options opts,
               void (*on_message)(wire_conn *, const wire_message *, void *)) {
  wire_callbacks cb = {0};
  cb.on_message = on_message;
  cb.on_close = free_data;
  wire_error err;
  int r = wire_endpoint_add(server, pattern, &opts, &cb, NULL, NULL, &err);
  if (r != 0)
    fprintf(stderr, "c_app: %s: %s\n", pattern, wire_strerror(r));
  return r;
}

static int add_endpoints(wire_server *server, size_t max_message) {
  wire_endpoint_options raw = {0};
  raw.max_message_size = max_message;
  wire_endpoint_options json = raw;
  json.codec = WIRE_CODEC_JSON;
  json.message_schemas = &NUMBERED;
  json.n_message_schemas = 1;
  wire_endpoint_options json_close = json;
  json_close.invalid_policy = WIRE_INVALID_CLOSE;
  int r = add(server, "/app/json", json, echo_value);
  r = r ? r : add(server, "/app/json-close", json_close, echo_value);
  r = r ? r : add(server, "/app/crash", raw, crash_or_echo);
  r = r ? r : add(server, "/app/order", raw, delayed_echo);
  r = r ? r : add(server, "/app/slow", raw, slow_consumer);
  r = r ? r : add(server, "/{path:path}", raw, echo);
  return r ? r : add(server, "/", raw, echo);
}

/* The host loop: the core's fd and timeout, shortened by our timers. */
static void serve(wire_server *server) {
  struct pollfd pfd = {wire_server_fd(server), POLLIN, 0};
  int shutting = 0;
  for (;;) {
    if (stop_requested && !shutting) {
      shutting = 1;
      wire_server_shutdown(server, 5000, NULL, NULL);
    }
    if (wire_server_process(server) == 0)
      break;
    fire_timers();
    int timeout = wire_server_timeout(server);
    int t = next_timer_ms();
    if (t >= 0 && (timeout < 0 || t < timeout))
      timeout = t;
    if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
      break;
  }
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  long port = 0;
  unsigned long long max_message = 1u << 20;
  wire_tls_cert cert = {0}; /* --cert/--key: wss:// */
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0)
      port = strtol(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--max-message") == 0)
      max_message = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--cert") == 0)
      cert.cert_file = argv[i + 1];
    else if (strcmp(argv[i], "--key") == 0)
      cert.key_file = argv[i + 1];
  }
  wire_server *server = NULL;
  if (wire_server_new(NULL, &server) != 0 || add_endpoints(server, (size_t)max_message) != 0)
    return 1;
  wire_tls_options tls = {.certs = &cert, .n_certs = 1};
  wire_error err = {0};
  int r = cert.cert_file ? wire_server_listen_tls(server, host, (int)port, &tls, &err)
                         : wire_server_listen(server, host, (int)port);
  if (r != 0) {
    fprintf(stderr, "c_app: cannot listen: %s %s\n", wire_strerror(r), err.message);
    return 1;
  }
  printf("listening on %s:%d\n", host, wire_server_port(server));
  fflush(stdout);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  serve(server);
  for (size_t i = 0; i < app.n_timers; i++) {
    free(app.timers[i].reply);
    wire_conn_unref(app.timers[i].conn);
  }
  wire_server_free(server);
  return 0;
}
