/*
 * workers.c -- a process per core: the fork-based supervisor (start N
 * workers, restart the ones that die with backoff, forward SIGINT/SIGTERM,
 * SIGHUP replaces them one at a time), the worker side (listening sockets
 * from the supervisor, or SO_REUSEPORT ones of its own; telling the
 * supervisor a worker listens), and draining a server (accept the backlog,
 * close the listeners, finish, then shut down).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* accept4 */
#endif
#include "conn_internal.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the worker side ------------------------------------------------------- */

/* The supervisor's pipe, from the environment (a worker may exec): -1 when
 * this process is not a worker. */
static int worker_fd(void) {
  const char *v = getenv("WIRECORE_WORKER_FD");
  if (v == NULL || *v == 0)
    return -1;
  char *end;
  long fd = strtol(v, &end, 10);
  return *end == 0 && fd >= 0 && fd < 1 << 20 ? (int)fd : -1;
}

int wire_worker_index(void) {
  const char *v = getenv("WIRECORE_WORKER_INDEX");
  return worker_fd() >= 0 && v != NULL ? atoi(v) : -1;
}

static int want_reuseport(void) {
  const char *v = getenv("WIRECORE_REUSEPORT");
  return worker_fd() >= 0 || (v != NULL && strcmp(v, "1") == 0);
}

int wire__reuseport_socket(const struct sockaddr *addr, socklen_t len) {
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 || bind(fd, addr, len) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

int wire_listen_socket(const char *host, int port) {
  if (port <= 0 || port > 65535)
    return WIRE_EINVAL;
  if (host == NULL || strcmp(host, "localhost") == 0)
    host = "127.0.0.1";
  struct sockaddr_storage ss;
  socklen_t len = sizeof(struct sockaddr_in);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0) {
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
      return WIRE_EINVAL;
    len = sizeof(struct sockaddr_in6);
  }
  int fd = wire__reuseport_socket((struct sockaddr *)&ss, len);
  if (fd >= 0 && listen(fd, 511) != 0) {
    close(fd);
    fd = -errno;
  }
  if (fd >= 0)
    return fd;
  return fd == -EADDRINUSE ? WIRE_EADDRINUSE : fd == -EINVAL ? WIRE_EINVAL : WIRE_ELISTEN;
}

/* WIRECORE_LISTEN_FD: a listening socket a process manager keeps for this
 * worker's place, taken by the first listen on its address (once per
 * process). The descriptor, or -1. */
static int inherited_socket(const struct sockaddr *addr, socklen_t len) {
  static pid_t taken; /* per process: a forked child starts over */
  const char *v = getenv("WIRECORE_LISTEN_FD");
  if (v == NULL || *v == 0 || taken == getpid())
    return -1;
  char *end;
  long fd = strtol(v, &end, 10);
  struct sockaddr_storage have;
  socklen_t hl = sizeof have;
  if (*end != 0 || fd < 0 || fd >= 1 << 20 ||
      getsockname((int)fd, (struct sockaddr *)&have, &hl) != 0 || hl != len ||
      memcmp(&have, addr, len) != 0)
    return -1; /* not a socket bound to this address */
  taken = getpid();
  return (int)fd;
}

/* The supervisor's listening socket for addr (its slot's, shared with the
 * worker this one replaces): the descriptor, -errno when the supervisor
 * refused (it could not bind), or WIRE__NO_ANSWER when it did not answer
 * (no supervisor any more, or a channel that is not one). */
#define WIRE__NO_ANSWER (-100000)
static int supervisor_socket(int ch, const struct sockaddr *addr, socklen_t len) {
  wire__ch_msg m;
  memset(&m, 0, sizeof m);
  m.type = WIRE__CH_LISTEN;
  m.addrlen = (uint32_t)len;
  memcpy(&m.addr, addr, len);
  if (send(ch, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m)
    return WIRE__NO_ANSWER;
  struct pollfd p = {ch, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, 5000)) < 0 && errno == EINTR)
    ;
  if (r != 1)
    return WIRE__NO_ANSWER;
  int32_t status = 0;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {&status, sizeof status};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  ssize_t n;
  while ((n = recvmsg(ch, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
    ;
  if (n != (ssize_t)sizeof status)
    return WIRE__NO_ANSWER;
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  if (status != 0 || cm == NULL || cm->cmsg_type != SCM_RIGHTS)
    return status < 0 ? status : -EPROTO;
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

/* libuv 1.44 has no SO_REUSEPORT flag: make the socket (or take the
 * supervisor's), set the option before bind, then hand the socket to libuv. */
int wire__listen_bind(uv_tcp_t *tcp, const struct sockaddr *addr) {
  if (!want_reuseport())
    return uv_tcp_bind(tcp, addr, 0);
  socklen_t len =
      addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  int ch = worker_fd();
  if (ch >= 0) {
    int fd = supervisor_socket(ch, addr, len);
    if (fd >= 0) {
      int r = uv_tcp_open(tcp, (uv_os_sock_t)fd);
      if (r != 0)
        close(fd);
      return r;
    }
    if (fd != WIRE__NO_ANSWER)
      return fd; /* -errno, as libuv's errors are */
  }
  int fd = inherited_socket(addr, len);
  if (fd < 0)
    fd = wire__reuseport_socket(addr, len);
  if (fd < 0)
    return fd;
  int r = uv_tcp_open(tcp, (uv_os_sock_t)fd);
  if (r != 0)
    close(fd);
  return r;
}

/* Once per process: the supervisor waits for it before retiring the worker
 * this one replaces. */
void wire__worker_listening(void) {
  static pid_t told; /* per process: a forked child starts over */
  int fd = worker_fd();
  if (fd < 0 || told == getpid())
    return;
  told = getpid();
  wire__ch_msg m;
  memset(&m, 0, sizeof m);
  m.type = WIRE__CH_READY;
  m.value = (int32_t)told;
  ssize_t n = send(fd, &m, sizeof m, MSG_NOSIGNAL);
  (void)n;
}

/* ---- draining ------------------------------------------------------------------- */

typedef struct drain {
  uv_timer_t timer;
  wire_server *s;
  uint64_t deadline;
  wire_shutdown_cb done;
  void *done_data;
} drain;

static void drain_close_cb(uv_handle_t *h) {
  drain *d = h->data;
  wire_server *s = d->s;
  free(d);
  s->n_handles--;
  wire__server_check_done(s);
}

/* Every 50 ms: nothing left, or out of time, starts the shutdown. A shutdown
 * started meanwhile by someone else just ends the drain. */
static void drain_tick(uv_timer_t *t) {
  drain *d = t->data;
  wire_server *s = d->s;
  if (s->state == WIRE__SV_LISTENING && (s->n_sockets == 0 || uv_now(s->loop) >= d->deadline))
    wire_server_shutdown(s, 0, d->done, d->done_data);
  if (s->state != WIRE__SV_LISTENING) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, drain_close_cb);
  }
}

/* With SO_REUSEPORT the kernel resets what waits in a listener's queue when
 * it closes: take all of it first, then close at once (another worker's
 * listener gets what arrives after). */
static void accept_backlog(wire_server *s) {
  for (wire__listener *l = s->listeners; l; l = l->next) {
    if (l->ops)
      continue; /* metrics: a metrics listener stays open while draining */
    uv_os_fd_t lfd;
    if (uv_fileno((uv_handle_t *)&l->tcp, &lfd) != 0)
      continue;
    for (;;) {
      int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        break; /* EAGAIN: the queue is empty (or an error we leave to the close) */
      if (l->on_conn == wire__tls_on_connection)
        wire__tls_adopt(s, fd);
      else
        wire__tcp_adopt(s, fd, 0);
    }
  }
}

int wire_server_drain(wire_server *s, unsigned timeout_ms, wire_shutdown_cb done, void *user_data) {
  if (s == NULL)
    return WIRE_EINVAL;
  if (s->state != WIRE__SV_LISTENING || s->listeners == NULL || s->draining)
    return WIRE_ESTATE; /* not listening, or drained already */
  drain *d = calloc(1, sizeof *d);
  if (d == NULL || uv_timer_init(s->loop, &d->timer) != 0) {
    free(d);
    return WIRE_ENOMEM;
  }
  d->timer.data = d;
  d->s = s;
  d->done = done;
  d->done_data = user_data;
  uv_update_time(s->loop);
  d->deadline = uv_now(s->loop) + (timeout_ms ? timeout_ms : 30000);
  s->n_handles++;
  s->draining = 1; /* metrics: health answers 503 */
  wire__enter(s);
  accept_backlog(s);
  wire__server_close_listeners(s);
  wire__leave(s);
  uv_timer_start(&d->timer, drain_tick, 0, 50);
  s->kick = 1;
  wire__wake_host(s);
  return 0;
}
