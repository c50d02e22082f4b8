/*
 * example_serve.h -- what every example program does after registering its
 * endpoints: listen, say so, and serve until SIGINT/SIGTERM, then shut down
 * gracefully (1001 to every connection). Uses only the public header.
 */
#ifndef WIRE_EXAMPLE_SERVE_H
#define WIRE_EXAMPLE_SERVE_H

#include <wirecore.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Set from the signal handler only; the loop below does the rest. */
static volatile sig_atomic_t example_stop_requested;

static void example_on_signal(int sig) {
  (void)sig;
  example_stop_requested = 1;
}

/* Listen on host:port, print "listening on H:P" (flushed: scripts wait for
 * it), serve until a signal, shut down, free the server. Returns the exit
 * status: 0, or 1 when listening fails (the reason goes to stderr). */
static int example_serve(wire_server *server, const char *name, const char *host, long port) {
  int r = wire_server_listen(server, host, (int)port);
  if (r != 0) {
    fprintf(stderr, "%s: cannot listen on %s:%ld: %s\n", name, host, port, wire_strerror(r));
    wire_server_free(server);
    return 1;
  }
  printf("listening on %s:%d\n", host, wire_server_port(server));
  fflush(stdout);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = example_on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  /* Host-driven loop: a signal interrupts poll() (EINTR), so the shutdown
   * starts from ordinary code, never from the handler. */
  int shutting = 0;
  struct pollfd pfd = {wire_server_fd(server), POLLIN, 0};
  for (;;) {
    if (example_stop_requested && !shutting) {
      shutting = 1;
      wire_server_shutdown(server, 5000, NULL, NULL);
    }
    if (wire_server_process(server) == 0)
      break;
    if (poll(&pfd, 1, wire_server_timeout(server)) < 0 && errno != EINTR)
      break;
  }
  wire_server_free(server);
  return 0;
}

#endif /* WIRE_EXAMPLE_SERVE_H */
