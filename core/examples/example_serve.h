/*
 * example_serve.h -- what every example program does after registering its
 * endpoints: catch SIGINT/SIGTERM, listen, say so, and serve until one of
 * those signals arrives, then shut down gracefully (1001 to every
 * connection). Uses only the public header.
 *
 * No signal is lost: the handler only writes a byte to a pipe (the self-pipe
 * trick), and the loop polls that pipe together with wire_server_fd(), so a
 * signal that lands while wire_server_process() runs still wakes the next
 * poll(), even when the server has no timer (timeout -1).
 *
 * In a worker process (--workers N), SIGHUP drains the server
 * (wire_server_drain: accept what waits, stop listening, finish, shut down):
 * the supervisor's rolling replace. In a lone process serving TLS
 * (--cert), SIGHUP loads the certificate and key files again.
 */
#ifndef WIRE_EXAMPLE_SERVE_H
#define WIRE_EXAMPLE_SERVE_H

#include <wirecore.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The pipe's write end, for the handler; -1 once the loop is over. */
static volatile sig_atomic_t example_signal_fd = -1;

/* --cert/--key/--ca: TLS when cert is set (SIGHUP reloads the files). */
static struct { const char *cert, *key, *ca; } example_tls;

/* Consume a TLS option at argv[*i] (and its value): 1 if it was one. */
static int example_tls_arg(int argc, char **argv, int *i) {
  const char **to = strcmp(argv[*i], "--cert") == 0  ? &example_tls.cert
                    : strcmp(argv[*i], "--key") == 0 ? &example_tls.key
                    : strcmp(argv[*i], "--ca") == 0  ? &example_tls.ca
                                                     : NULL;
  if (to == NULL || *i + 1 >= argc)
    return 0;
  *to = argv[++*i];
  return 1;
}

/* The TLS options from the command line; NULL when serving plain ws://. */
static const wire_tls_options *example_tls_options(wire_tls_options *o, wire_tls_cert *c) {
  if (example_tls.cert == NULL)
    return NULL;
  memset(o, 0, sizeof *o);
  memset(c, 0, sizeof *c);
  c->cert_file = example_tls.cert;
  c->key_file = example_tls.key ? example_tls.key : example_tls.cert;
  c->key_password = getenv("WIRE_TLS_KEY_PASSWORD");
  o->certs = c;
  o->n_certs = 1;
  o->ca_file = example_tls.ca;
  return o;
}

static void example_on_signal(int sig) {
  int saved = errno;
  if (example_signal_fd >= 0) {
    unsigned char b = (unsigned char)sig; /* full pipe: a wake-up is already queued */
    ssize_t n = write(example_signal_fd, &b, 1);
    (void)n;
  }
  errno = saved;
}

/* Make a non-blocking, close-on-exec pipe and send SIGINT and SIGTERM to it;
 * then unblock both in case the parent started us with them blocked (a
 * signal already pending is written to the pipe right there).
 * Returns 0, or -1 with errno set. */
static int example_catch_signals(int fds[2]) {
  if (pipe(fds) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    if (fcntl(fds[i], F_SETFL, O_NONBLOCK) != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
      close(fds[0]);
      close(fds[1]);
      return -1;
    }
  }
  example_signal_fd = fds[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = example_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  /* workers: SIGHUP drains (a rolling replace); alone with TLS: it reloads */
  if (wire_worker_index() >= 0 || example_tls.cert)
    sigaction(SIGHUP, &sa, NULL);
  /* A peer that resets while a write is queued must cost an EPIPE, not the
   * process: libuv writes with write(2), which raises SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* SIGHUP: load the certificate and key files again; on failure keep the
 * old ones and say why. */
static void example_reload(wire_server *server, const char *name) {
  wire_tls_options o;
  wire_tls_cert c;
  wire_error err;
  if (example_tls_options(&o, &c) == NULL)
    return;
  if (wire_server_tls_reload(server, &o, &err) != 0)
    fprintf(stderr, "%s: TLS reload failed: %s\n", name, err.message);
  else
    fprintf(stderr, "%s: TLS certificate reloaded\n", name);
}

/* Serve until a byte arrives on signal_fd, then shut down (up to 5 s) and
 * keep serving until the shutdown completes. Returns 0, or 1 when poll()
 * fails (the reason goes to stderr). */
static int example_loop(wire_server *server, const char *name, int signal_fd) {
  struct pollfd pfd[2] = {{wire_server_fd(server), POLLIN, 0}, {signal_fd, POLLIN, 0}};
  int shutting = 0;
  while (wire_server_process(server) == 1) {
    if (poll(pfd, 2, wire_server_timeout(server)) < 0 && errno != EINTR) {
      fprintf(stderr, "%s: poll: %s\n", name, strerror(errno));
      return 1;
    }
    if (pfd[1].revents & POLLIN) {
      unsigned char sigs[64];
      ssize_t n;
      int reload = 0;
      while ((n = read(signal_fd, sigs, sizeof sigs)) > 0)
        for (ssize_t i = 0; i < n && !shutting; i++) {
          if (sigs[i] == SIGHUP && wire_worker_index() < 0) {
            reload = 1;
            continue;
          }
          if (sigs[i] == SIGHUP) { /* stop accepting, finish, then shut down */
            if (wire_server_drain(server, 30000, NULL, NULL) == 0)
              fprintf(stderr, "%s: draining\n", name);
            continue;
          }
          shutting = 1;
          wire_server_shutdown(server, 5000, NULL, NULL);
        }
      if (reload && !shutting)
        example_reload(server, name);
    }
  }
  return 0;
}

/* Catch SIGINT/SIGTERM, listen on host:port, print "listening on H:P"
 * (flushed: scripts wait for it), serve until a signal, shut down, free the
 * server. Returns the exit status: 0, or 1 when listening fails (the reason
 * goes to stderr). */
static int example_serve(wire_server *server, const char *name, const char *host, long port) {
  int fds[2];
  if (example_catch_signals(fds) != 0) {
    fprintf(stderr, "%s: cannot catch signals: %s\n", name, strerror(errno));
    wire_server_free(server);
    return 1;
  }
  int status = 1;
  wire_tls_options o;
  wire_tls_cert c;
  wire_error err;
  const wire_tls_options *tls = example_tls_options(&o, &c);
  int r = tls ? wire_server_listen_tls(server, host, (int)port, tls, &err)
              : wire_server_listen(server, host, (int)port);
  if (r != 0) {
    fprintf(stderr, "%s: cannot listen on %s:%ld: %s\n", name, host, port,
            tls ? err.message : wire_strerror(r));
  } else {
    printf("listening on %s:%d%s\n", host, wire_server_port(server), tls ? " (TLS)" : "");
    fflush(stdout);
    status = example_loop(server, name, fds[0]);
  }
  example_signal_fd = -1; /* a late signal is ignored: we are on our way out */
  close(fds[0]);
  close(fds[1]);
  wire_server_free(server);
  return status;
}

/* --workers N: N > 1 runs `serve` in N worker processes under a supervisor
 * (wire_supervise) sharing the port; 1 runs it in this process. port 0 with
 * workers is refused: each worker would pick its own port. */
static int example_workers(const char *name, long workers, long port, wire_worker_fn serve,
                           void *args) {
  if (workers <= 1)
    return serve(0, args);
  if (port == 0) {
    fprintf(stderr, "%s: --workers needs a fixed --port\n", name);
    return 2;
  }
  wire_supervisor_options o;
  memset(&o, 0, sizeof o);
  o.workers = (unsigned)workers;
  o.name = name;
  int r = wire_supervise(&o, serve, args);
  if (r < 0)
    fprintf(stderr, "%s: cannot supervise workers: %s\n", name, wire_strerror(r));
  return r < 0 ? 1 : r;
}

/* ---- metrics, health and logs (docs/operations.md) ---------------------------- */

/* --metrics: /metrics and /health on the WebSocket port; --metrics-port P:
 * on their own port instead (with workers, every worker binds it and
 * whichever answers sums all workers); --log-json: one JSON line per
 * connection open/close, rejection and error on stderr. */
typedef struct example_ops {
  int metrics;
  long metrics_port; /* -1 = none */
  int log_json;
} example_ops;

/* Take argv[*i] (and its value) when it is one of the options above:
 * returns 1 (consumed), 0 (not ours) or -1 (a bad value). */
static int example_ops_arg(int argc, char **argv, int *i, example_ops *o) {
  if (strcmp(argv[*i], "--metrics") == 0) {
    o->metrics = 1;
    return 1;
  }
  if (strcmp(argv[*i], "--log-json") == 0) {
    o->log_json = 1;
    return 1;
  }
  if (strcmp(argv[*i], "--metrics-port") == 0 && *i + 1 < argc) {
    char *end;
    o->metrics_port = strtol(argv[++*i], &end, 10);
    return *end == 0 && o->metrics_port >= 0 && o->metrics_port <= 65535 ? 1 : -1;
  }
  return 0;
}

static void example_log_json(const wire_log_event *ev, void *user_data) {
  (void)user_data;
  char line[1024];
  int n = wire_log_event_json(ev, line, sizeof line);
  if (n > 0)
    fprintf(stderr, "%s\n", line);
}

/* Apply the options to a new server. Returns 0, or 1 when one failed (the
 * reason goes to stderr). */
static int example_ops_apply(wire_server *server, const char *name, const char *host,
                             const example_ops *o) {
  int r = 0;
  if (o->metrics)
    r = wire_server_set_metrics(server, "/metrics", "/health");
  if (r == 0 && o->metrics_port >= 0)
    r = wire_server_listen_metrics(server, host, (int)o->metrics_port);
  if (r == 0 && o->log_json)
    r = wire_server_set_log(server, example_log_json, NULL, WIRE_LOG_INFO);
  if (r != 0)
    fprintf(stderr, "%s: metrics: %s\n", name, wire_strerror(r));
  return r != 0;
}

#endif /* WIRE_EXAMPLE_SERVE_H */
