/*
 * transport_tcp.c -- the TCP transport: a libuv poll handle on the socket
 * (160 bytes, against a uv_tcp_t's 248) and the socket calls themselves:
 * recv() into the server's shared read buffer, send()/sendmsg() for what the
 * socket takes at once and, when it is full, for the rest as it becomes
 * writable, shutdown() for the FIN, close(). The poll handle is the first
 * member of wire_conn, so a handle pointer is the connection pointer.
 * Accepting stays libuv's (the listener is a uv_tcp_t): its connection
 * callback takes the accepted descriptor over.
 */
#include "conn_internal.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* One buffer for the whole server: each read is consumed by the engine
 * before the next, so an idle connection owns no read buffer. */
void wire__read_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  wire_server *s = h->data;
  (void)suggested;
  if (s->rbuf == NULL)
    s->rbuf = malloc(WIRE__READ_BUF_SIZE);
  if (s->rbuf == NULL || s->rbuf_busy) {
    buf->base = malloc(WIRE__READ_BUF_SIZE);
    buf->len = buf->base ? WIRE__READ_BUF_SIZE : 0;
    return;
  }
  s->rbuf_busy = 1;
  buf->base = (char *)s->rbuf;
  buf->len = WIRE__READ_BUF_SIZE;
}

void wire__read_release(wire_server *s, const uv_buf_t *buf) {
  if (buf->base == NULL)
    return;
  if ((uint8_t *)buf->base == s->rbuf)
    s->rbuf_busy = 0;
  else
    free(buf->base);
}

/* The socket (the handle's own field: every caller runs before tcp_close,
 * and uv_fileno's type switch is not needed on every read and write). */
static int fd_of(const wire_conn *c) {
  return c->poll.io_watcher.fd;
}

static void io_cb(uv_poll_t *h, int status, int events);

/* The write waiting for the socket, kept in the connection's extras: only
 * a connection whose socket filled up needs the pointer. */
static wire__wreq *waiting(const wire_conn *c) {
  return c->x != NULL ? c->x->tw : NULL;
}

/* Make the poll handle watch what the connection waits for: input while the
 * engine reads, writability while a write waits for the socket. A change
 * costs libuv an epoll_ctl; none is made when the set is the same. */
static void watch(wire_conn *c) {
  if (c->tio & WIRE__TIO_CLOSED)
    return;
  unsigned want = ((c->tio & WIRE__TIO_READ) ? UV_READABLE : 0) | (waiting(c) ? UV_WRITABLE : 0);
  unsigned have = ((c->tio & WIRE__TIO_POLL_R) ? UV_READABLE : 0) |
                  ((c->tio & WIRE__TIO_POLL_W) ? UV_WRITABLE : 0);
  if (want == have)
    return;
  if (want == 0 ? uv_poll_stop(&c->poll) != 0 : uv_poll_start(&c->poll, (int)want, io_cb) != 0)
    return; /* only on a closing handle, which tio already rules out */
  c->tio = (uint8_t)((c->tio & ~(WIRE__TIO_POLL_R | WIRE__TIO_POLL_W)) |
                     ((want & UV_READABLE) ? WIRE__TIO_POLL_R : 0) |
                     ((want & UV_WRITABLE) ? WIRE__TIO_POLL_W : 0));
}

/* As a libuv stream does: reading stops by itself at EOF or an error; a
 * read_start after it reads (and reports) it again. */
static void read_ended(wire_conn *c) {
  c->tio &= (uint8_t)~WIRE__TIO_READ;
  watch(c);
}

/* Read while the socket has input and the engine reads: up to 32 full
 * buffers per readiness, as libuv does, so one busy socket cannot starve
 * the others. */
static void do_read(wire_conn *c) {
  wire_server *s = WIRE__SRV(c);
  for (int i = 0; i < 32 && (c->tio & WIRE__TIO_READ) && !(c->tio & WIRE__TIO_CLOSED); i++) {
    uv_buf_t buf;
    wire__read_alloc_cb((uv_handle_t *)&c->poll, WIRE__READ_BUF_SIZE, &buf);
    if (buf.base == NULL) {
      read_ended(c);
      wire__conn_on_read(c, NULL, UV_ENOBUFS);
      return;
    }
    ssize_t n;
    do
      n = recv(fd_of(c), buf.base, buf.len, 0);
    while (n < 0 && errno == EINTR);
    int err = n < 0 ? errno : 0;
    if (n > 0) {
      wire__conn_on_read(c, buf.base, n);
      wire__read_release(s, &buf);
      if ((size_t)n < buf.len)
        return; /* drained: the next readiness brings more */
      continue;
    }
    wire__read_release(s, &buf);
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK))
      return;
    read_ended(c);
    wire__conn_on_read(c, NULL, n == 0 ? UV_EOF : -err);
    return;
  }
}

/* Send as much of bufs as the socket takes: bytes sent (0 when full), or a
 * negative errno. send()/sendmsg() with MSG_NOSIGNAL rather than write():
 * the socket calls skip the VFS layer (file position lock, fsnotify) that a
 * write on a socket goes through. */
enum { TCP_IOV_MAX = 1024 }; /* Linux's IOV_MAX: more buffers are written next time */

static ssize_t send_bufs(int fd, const uv_buf_t *bufs, unsigned n) {
  ssize_t r;
  do {
    if (n == 1) {
      r = send(fd, bufs[0].base, bufs[0].len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      struct msghdr mh;
      memset(&mh, 0, sizeof mh);
      mh.msg_iov = (struct iovec *)bufs; /* uv_buf_t is laid out as struct iovec */
      mh.msg_iovlen = n > TCP_IOV_MAX ? TCP_IOV_MAX : n;
      r = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
  } while (r < 0 && errno == EINTR);
  if (r >= 0)
    return r;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? 0 : -errno;
}

/* Nothing is taken while a write waits for the socket: it must go first. */
static int tcp_try_write(wire_conn *c, const uv_buf_t *bufs, unsigned n) {
  if (n == 0 || waiting(c) != NULL || (c->tio & WIRE__TIO_CLOSED))
    return 0;
  ssize_t r = send_bufs(fd_of(c), bufs, n);
  return r > INT_MAX ? INT_MAX : (int)r;
}

static void do_shutdown(wire_conn *c) {
  c->tio &= (uint8_t)~WIRE__TIO_SHUT;
  shutdown(fd_of(c), SHUT_WR);
}

/* The socket became writable: send the rest of the waiting write (its
 * chunks from where the socket stopped taking them); when all of it is gone
 * or the socket failed, the engine hears of it, then a half-close that
 * waited for it goes. */
static void do_write(wire_conn *c) {
  wire__wreq *w = c->x->tw;
  uv_buf_t bufs[WIRE__MAX_IOV];
  unsigned n = 0;
  size_t skip = w->done;
  for (wire__ochunk *ch = w->chunks; ch && n < WIRE__MAX_IOV; ch = ch->next) {
    size_t len = ch->len - ch->off;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    bufs[n++] = uv_buf_init((char *)wire__ochunk_bytes(ch) + ch->off + skip, (unsigned)(len - skip));
    skip = 0;
  }
  ssize_t r = send_bufs(fd_of(c), bufs, n);
  if (r >= 0) {
    w->done += (size_t)r;
    if (w->done < w->bytes)
      return;
  }
  c->x->tw = NULL;
  watch(c);
  wire__out_written(c, w, r < 0 ? (int)r : 0);
  if ((c->tio & WIRE__TIO_SHUT) && waiting(c) == NULL && !(c->tio & WIRE__TIO_CLOSED))
    do_shutdown(c);
}

/* Readiness, or (status < 0) a socket error, which libuv reports after it
 * stopped watching: the read and the write each meet the error themselves
 * (or what is left to read), as on a libuv stream. */
static void io_cb(uv_poll_t *h, int status, int events) {
  wire_conn *c = (wire_conn *)h;
  if (status < 0) {
    c->tio &= (uint8_t)~(WIRE__TIO_POLL_R | WIRE__TIO_POLL_W);
    events = UV_READABLE | UV_WRITABLE;
  }
  if ((events & UV_READABLE) && (c->tio & WIRE__TIO_READ))
    do_read(c);
  if ((events & UV_WRITABLE) && waiting(c) != NULL && !(c->tio & WIRE__TIO_CLOSED))
    do_write(c);
  if (status < 0)
    watch(c); /* what is still wanted, watched again */
}

static int tcp_read_start(wire_conn *c) {
  if (c->tio & WIRE__TIO_CLOSED)
    return UV_EINVAL;
  c->tio |= WIRE__TIO_READ;
  watch(c);
  return 0;
}

static void tcp_read_stop(wire_conn *c) {
  c->tio &= (uint8_t)~WIRE__TIO_READ;
  watch(c);
}

/* The engine tried first: the socket is full, so this write waits for it. */
static int tcp_write(wire_conn *c, wire__wreq *w, const uv_buf_t *bufs, unsigned n) {
  (void)bufs; /* the same bytes as w's chunks, which outlive the write */
  (void)n;
  if (waiting(c) != NULL || (c->tio & WIRE__TIO_CLOSED))
    return UV_EBUSY;
  if (wire__conn_extras(c) == NULL)
    return UV_ENOMEM;
  w->done = 0;
  c->x->tw = w;
  watch(c);
  return 0;
}

static int tcp_shutdown(wire_conn *c) {
  if (c->tio & WIRE__TIO_CLOSED)
    return UV_EINVAL;
  c->tio |= WIRE__TIO_SHUT;
  if (waiting(c) == NULL)
    do_shutdown(c);
  return 0;
}

/* A write still waiting is cancelled, as libuv does, before the engine may
 * free the connection. */
static void close_cb(uv_handle_t *h) {
  wire_conn *c = (wire_conn *)h;
  wire__wreq *w = waiting(c);
  if (w != NULL) {
    c->x->tw = NULL;
    wire__out_written(c, w, UV_ECANCELED);
  }
  wire__conn_on_closed(c);
}

/* uv_close stops the watcher at once (epoll_ctl), so the descriptor can go
 * right after; its number may be reused before close_cb runs. */
static void tcp_close(wire_conn *c) {
  int fd = fd_of(c);
  c->tio |= WIRE__TIO_CLOSED;
  uv_close((uv_handle_t *)&c->poll, close_cb);
  close(fd);
}

static int tcp_peer(wire_conn *c, struct sockaddr_storage *ss) {
  socklen_t len = sizeof *ss;
  if (c->tio & WIRE__TIO_CLOSED)
    return UV_EBADF;
  return getpeername(fd_of(c), (struct sockaddr *)ss, &len) == 0 ? 0 : -errno;
}

const wire__transport *const wire__transports[WIRE__TP_COUNT] = {
    &wire__tcp_transport, &wire__tls_transport, &wire__mem_transport};

const wire__transport wire__tcp_transport = {
    tcp_read_start, tcp_read_stop, tcp_try_write, tcp_write, tcp_shutdown, tcp_close, tcp_peer,
};

void wire__tcp_adopt(wire_server *s, int fd, int ops) {
  wire_conn *c = calloc(1, sizeof *c);
  if (c == NULL || uv_poll_init_socket(s->loop, &c->poll, fd) != 0) {
    free(c);
    close(fd);
    return;
  }
  c->poll.data = s;
  c->tpi = WIRE__TP_TCP;
  if (ops)
    c->rules |= WIRE__R_OPS; /* metrics: a metrics listener's connection */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  wire__conn_start(c, 1);
}

/* Accept: libuv accepted the socket (its listener loop, with the reserve
 * descriptor for EMFILE); the descriptor is taken over as uv_accept would,
 * without the uv_tcp_t. */
void wire__tcp_on_connection(uv_stream_t *ls, int status) {
  wire__listener *l = (wire__listener *)ls;
  wire_server *s = l->server;
  if (status < 0) { /* EMFILE/ENFILE: libuv's reserve descriptor dropped it */
    s->stats.accept_failed++;
    return;
  }
  int fd = ls->accepted_fd;
  if (fd < 0)
    return;
  ls->accepted_fd = -1; /* libuv's accept loop goes on (uv_accept's part) */
  wire__enter(s);
  wire__tcp_adopt(s, fd, l->ops);
  wire__leave(s);
}
