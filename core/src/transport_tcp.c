/*
 * transport_tcp.c -- the TCP transport: accept, the server's shared read
 * buffer, uv_read_start/stop, send()/sendmsg() and uv_write, uv_shutdown for the
 * FIN, uv_close, the peer's address. The connection's uv_tcp_t is the first
 * member of wire_conn, so a handle pointer is the connection pointer.
 */
#include "conn_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* One buffer for the whole server: libuv reads and calls read_cb before
 * asking again, and read_cb consumes every byte, so an idle connection owns
 * no read buffer. */
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

/* nread 0 is libuv's EAGAIN: nothing for the engine. */
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  wire_conn *c = (wire_conn *)st;
  wire_server *s = WIRE__SRV(c);
  if (nread != 0)
    wire__conn_on_read(c, buf->base, nread);
  wire__read_release(s, buf);
}

static int tcp_read_start(wire_conn *c) {
  return uv_read_start((uv_stream_t *)&c->tcp, wire__read_alloc_cb, read_cb);
}

static void tcp_read_stop(wire_conn *c) {
  uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Write what the socket takes now: bytes written, 0 when it takes nothing
 * (full, or libuv still holds queued writes, which must go first), or a
 * negative libuv error. send()/sendmsg() with MSG_NOSIGNAL rather than
 * uv_try_write's write()/writev(): the socket calls skip the VFS layer
 * (file position lock, fsnotify) that a write on a socket goes through. */
enum { TCP_IOV_MAX = 1024 }; /* Linux's IOV_MAX: more buffers are written next time */

static int tcp_try_write(wire_conn *c, const uv_buf_t *bufs, unsigned n) {
  uv_os_fd_t fd;
  if (c->tcp.write_queue_size != 0 || n == 0 || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return 0;
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
    return r > INT_MAX ? INT_MAX : (int)r;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS ? 0 : -errno;
}

static void write_cb(uv_write_t *req, int status) {
  wire__out_written((wire_conn *)req->handle, (wire__wreq *)req, status);
}

static int tcp_write(wire_conn *c, wire__wreq *w, const uv_buf_t *bufs, unsigned n) {
  return uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, write_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

static int tcp_shutdown(wire_conn *c) {
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req == NULL)
    return UV_ENOMEM;
  int r = uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb);
  if (r != 0)
    free(req);
  return r;
}

static void close_cb(uv_handle_t *h) {
  wire__conn_on_closed((wire_conn *)h);
}

static void tcp_close(wire_conn *c) {
  uv_close((uv_handle_t *)&c->tcp, close_cb);
}

static int tcp_peer(wire_conn *c, struct sockaddr_storage *ss) {
  int len = sizeof *ss;
  return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)ss, &len);
}

const wire__transport *const wire__transports[WIRE__TP_COUNT] = {
    &wire__tcp_transport, &wire__tls_transport, &wire__mem_transport};

const wire__transport wire__tcp_transport = {
    tcp_read_start, tcp_read_stop, tcp_try_write, tcp_write, tcp_shutdown, tcp_close, tcp_peer,
};

/* Accept: a zeroed wire_conn around the new socket; the engine takes it from
 * there (or closes it when the server is shutting down). */
void wire__tcp_on_connection(uv_stream_t *ls, int status) {
  wire__listener *l = (wire__listener *)ls;
  wire_server *s = l->server;
  if (status < 0) { /* EMFILE/ENFILE: libuv's reserve descriptor dropped it */
    s->stats.accept_failed++;
    return;
  }
  wire__enter(s);
  wire_conn *c = calloc(1, sizeof *c);
  if (c == NULL || uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    wire__leave(s);
    return;
  }
  c->tcp.data = s;
  c->tpi = WIRE__TP_TCP;
  if (l->ops)
    c->rules |= WIRE__R_OPS; /* metrics: a metrics listener's connection */
  int ok = uv_accept(ls, (uv_stream_t *)&c->tcp) == 0;
  if (ok)
    uv_tcp_nodelay(&c->tcp, 1);
  wire__conn_start(c, ok);
  wire__leave(s);
}
