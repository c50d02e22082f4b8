/*
 * transport_tls.c -- the TLS transport: OpenSSL over a libuv TCP handle (its
 * own, behind the engine's struct: the TCP transport's poll handle is not a
 * stream).
 * A custom BIO connects the SSL to the connection without memory BIOs:
 * reads decrypt straight out of libuv's read buffer (the server's shared
 * one), and records OpenSSL writes are appended to the transport's queue of
 * ciphertext, which goes to the socket with uv_try_write / uv_write. An idle
 * connection holds no buffer: neither the BIO nor (SSL_MODE_RELEASE_BUFFERS)
 * the SSL keeps one. See docs/architecture.md.
 */
#include "conn_internal.h"
#include "tls.h"

#include <openssl/err.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TLS_PLAIN_BUF 16384u /* one TLS record's plaintext */
#define TLS_CHUNK_MIN 4096u

/* Ciphertext waiting for the socket. */
typedef struct tls_chunk {
  struct tls_chunk *next;
  size_t len, cap;
  uint8_t data[];
} tls_chunk;

/* Our own socket write: the chunks it carries. */
typedef struct tls_wreq {
  uv_write_t req;
  tls_chunk *chunks;
} tls_wreq;

/* The engine's connection with the TLS state behind it (same allocation, so
 * the engine frees both with free(c)). */
typedef struct tls_conn {
  wire_conn c;
  uv_tcp_t tcp; /* data: the server, as c.io.data */
  SSL *ssl;
  const uint8_t *in; /* ciphertext not yet read by OpenSSL */
  size_t in_len;
  uint8_t *held;              /* a copy of `in` kept while reading is stopped */
  tls_chunk *q_head, *q_tail; /* ciphertext not yet handed to a write */
  size_t q_bytes, wr_bytes;   /* queued; in the write in flight */
  tls_wreq *wr;               /* our write in flight */
  wire__wreq *owed;           /* the engine's write, done when the queue drains */
  uv_timer_t *kick;           /* delivers held input after a read_start */
  uint8_t in_held;            /* `in` points into `held` */
  uint8_t reading, want_shut, shut, closing, failed;
} tls_conn;

static tls_conn *tc_of(wire_conn *c) {
  return (tls_conn *)c;
}

static tls_conn *tc_of_handle(void *h) {
  return (tls_conn *)(void *)((char *)h - offsetof(tls_conn, tcp));
}

wire_conn *wire__tls_conn_of(uv_handle_t *h) {
  return &tc_of_handle(h)->c;
}

/* ---- the BIO ------------------------------------------------------------------ */

static BIO_METHOD *bio_method;
static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;

static int bio_write(BIO *b, const char *data, int n) {
  tls_conn *t = BIO_get_data(b);
  size_t len = (size_t)n;
  tls_chunk *ch = t->q_tail;
  if (ch == NULL || ch->cap - ch->len < len) {
    size_t cap = len > TLS_CHUNK_MIN ? len : TLS_CHUNK_MIN;
    ch = malloc(sizeof *ch + cap);
    if (ch == NULL)
      return -1;
    ch->next = NULL;
    ch->len = 0;
    ch->cap = cap;
    if (t->q_tail)
      t->q_tail->next = ch;
    else
      t->q_head = ch;
    t->q_tail = ch;
  }
  memcpy(ch->data + ch->len, data, len);
  ch->len += len;
  t->q_bytes += len;
  return n;
}

static int bio_read(BIO *b, char *out, int n) {
  tls_conn *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (t->in_len == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t k = t->in_len < (size_t)n ? t->in_len : (size_t)n;
  memcpy(out, t->in, k);
  t->in += k;
  t->in_len -= k;
  return (int)k;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b;
  (void)num;
  (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static void bio_init_method(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wirecore");
  if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
      BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
    bio_method = m;
  else
    BIO_meth_free(m);
}

/* ---- output --------------------------------------------------------------------- */

static void chunks_free(tls_chunk *ch) {
  while (ch) {
    tls_chunk *n = ch->next;
    free(ch);
    ch = n;
  }
}

static void write_cb(uv_write_t *req, int status);
static void do_shutdown(tls_conn *t);

/* Start a socket write of the whole queue (after trying to write it at once
 * when `try` says so). 0 or a libuv error. */
static int push(tls_conn *t, int try) {
  if (t->wr != NULL || t->q_head == NULL || t->closing)
    return 0;
  uv_buf_t bufs[WIRE__MAX_IOV];
  unsigned n = 0;
  for (tls_chunk *ch = t->q_head; ch && n < WIRE__MAX_IOV; ch = ch->next)
    bufs[n++] = uv_buf_init((char *)ch->data, (unsigned)ch->len);
  if (try) {
    int r = uv_try_write((uv_stream_t *)&t->tcp, bufs, n);
    if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS)
      return r;
    size_t k = r > 0 ? (size_t)r : 0;
    t->q_bytes -= k;
    while (k > 0) {
      tls_chunk *ch = t->q_head;
      if (k < ch->len) {
        memmove(ch->data, ch->data + k, ch->len - k);
        ch->len -= k;
        break;
      }
      k -= ch->len;
      t->q_head = ch->next;
      free(ch);
    }
    if (t->q_head == NULL) {
      t->q_tail = NULL;
      return 0;
    }
    n = 0;
    for (tls_chunk *ch = t->q_head; ch && n < WIRE__MAX_IOV; ch = ch->next)
      bufs[n++] = uv_buf_init((char *)ch->data, (unsigned)ch->len);
  }
  tls_wreq *w = calloc(1, sizeof *w);
  if (w == NULL)
    return UV_ENOMEM;
  /* take the first n chunks */
  tls_chunk **pp = &t->q_head;
  size_t bytes = 0;
  for (unsigned i = 0; i < n; i++) {
    bytes += (*pp)->len;
    pp = &(*pp)->next;
  }
  w->chunks = t->q_head;
  t->q_head = *pp;
  *pp = NULL;
  if (t->q_head == NULL)
    t->q_tail = NULL;
  t->q_bytes -= bytes;
  t->wr_bytes = bytes;
  int r = uv_write(&w->req, (uv_stream_t *)&t->tcp, bufs, n, write_cb);
  if (r != 0) {
    chunks_free(w->chunks);
    free(w);
    t->wr_bytes = 0;
    return r;
  }
  t->wr = w;
  return 0;
}

/* Nothing queued or in flight: the engine's write is done, a half-close
 * that waited may go. */
static void settle(tls_conn *t) {
  if (t->wr != NULL || t->q_head != NULL)
    return;
  if (t->owed) {
    wire__wreq *w = t->owed;
    t->owed = NULL;
    wire__out_written(&t->c, w, 0);
    if (t->c.state == WIRE__S_CLOSED)
      return;
  }
  if (t->want_shut && !t->shut && t->owed == NULL)
    do_shutdown(t);
}

static void write_cb(uv_write_t *req, int status) {
  tls_wreq *w = (tls_wreq *)req;
  tls_conn *t = tc_of_handle(req->handle);
  chunks_free(w->chunks);
  free(w);
  t->wr = NULL;
  t->wr_bytes = 0;
  if (status == 0 && !t->closing)
    status = push(t, 0);
  if (status < 0) {
    chunks_free(t->q_head);
    t->q_head = t->q_tail = NULL;
    t->q_bytes = 0;
    wire__wreq *owed = t->owed;
    t->owed = NULL;
    if (owed)
      wire__out_written(&t->c, owed, status);
    else if (!t->closing)
      wire__conn_on_read(&t->c, NULL, status);
    return;
  }
  settle(t);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

/* close_notify, then FIN behind it. */
static void do_shutdown(tls_conn *t) {
  t->shut = 1;
  if (!t->failed && SSL_is_init_finished(t->ssl))
    SSL_shutdown(t->ssl);
  ERR_clear_error();
  if (push(t, 1) != 0)
    return;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req && uv_shutdown(req, (uv_stream_t *)&t->tcp, shutdown_cb) != 0)
    free(req);
}

/* ---- input ---------------------------------------------------------------------- */

/* Decrypt what `in` holds and hand the plaintext to the engine while it
 * reads; a TLS failure ends the stream with UV_EPROTO, close_notify with
 * UV_EOF. Alerts and handshake records OpenSSL wrote go out afterwards. */
static void pump(tls_conn *t) {
  char buf[TLS_PLAIN_BUF];
  wire_server *s = WIRE__SRV(&t->c);
  wire__enter(s);
  while (t->reading && !t->closing && !t->failed) {
    int r = SSL_read(t->ssl, buf, sizeof buf);
    if (r > 0) {
      wire__conn_on_read(&t->c, buf, r);
      continue;
    }
    int e = SSL_get_error(t->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ)
      break;
    t->failed = e != SSL_ERROR_ZERO_RETURN;
    push(t, 1);
    wire__conn_on_read(&t->c, NULL, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO);
    break;
  }
  if (!t->closing && push(t, 1) != 0)
    wire__conn_on_read(&t->c, NULL, UV_EPIPE);
  wire__leave(s);
}

/* Keep a copy of unread ciphertext while reading is stopped (at most what
 * arrived in the reads since); none is kept otherwise. */
static void hold_rest(tls_conn *t) {
  if (t->in_len == 0 || t->closing) {
    free(t->held);
    t->held = NULL;
    t->in = NULL;
    t->in_len = 0;
    t->in_held = 0;
    return;
  }
  if (t->in_held)
    return;
  uint8_t *h = malloc(t->in_len);
  if (h == NULL) {
    t->in_len = 0;
    t->failed = 1;
    wire__conn_on_read(&t->c, NULL, UV_ENOMEM);
    return;
  }
  memcpy(h, t->in, t->in_len);
  t->held = h;
  t->in = h;
  t->in_held = 1;
}

/* New ciphertext, behind any held input. */
static void feed(tls_conn *t, const uint8_t *data, size_t n) {
  if (t->in_len > 0) {
    uint8_t *h = malloc(t->in_len + n);
    if (h == NULL) {
      t->failed = 1;
      wire__conn_on_read(&t->c, NULL, UV_ENOMEM);
      return;
    }
    memcpy(h, t->in, t->in_len);
    memcpy(h + t->in_len, data, n);
    free(t->held);
    t->held = h;
    t->in = h;
    t->in_len += n;
    t->in_held = 1;
  } else {
    t->in = data;
    t->in_len = n;
    t->in_held = 0;
  }
  pump(t);
  hold_rest(t);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  tls_conn *t = tc_of_handle(st);
  wire_server *s = WIRE__SRV(&t->c);
  if (nread > 0)
    feed(t, (const uint8_t *)buf->base, (size_t)nread);
  else if (nread < 0)
    wire__conn_on_read(&t->c, NULL, nread);
  wire__read_release(s, buf);
}

static void kick_close_cb(uv_handle_t *h) {
  free(h);
}

/* Reading resumed with input held: deliver it from the loop. */
static void kick_cb(uv_timer_t *tm) {
  tls_conn *t = tm->data;
  t->kick = NULL;
  uv_close((uv_handle_t *)tm, kick_close_cb);
  if (t->closing)
    return;
  pump(t);
  hold_rest(t);
}

/* ---- the table ------------------------------------------------------------------ */

static int tls_read_start(wire_conn *c) {
  tls_conn *t = tc_of(c);
  t->reading = 1;
  if ((t->in_len > 0 || SSL_pending(t->ssl) > 0) && t->kick == NULL) {
    uv_timer_t *tm = malloc(sizeof *tm);
    if (tm == NULL || uv_timer_init(WIRE__SRV(c)->loop, tm) != 0) {
      free(tm);
      return UV_ENOMEM;
    }
    tm->data = t;
    t->kick = tm;
    uv_timer_start(tm, kick_cb, 0, 0);
  }
  return uv_read_start((uv_stream_t *)&t->tcp, wire__read_alloc_cb, read_cb);
}

static void tls_read_stop(wire_conn *c) {
  tc_of(c)->reading = 0;
  uv_read_stop((uv_stream_t *)&tc_of(c)->tcp);
}

/* Encrypt all of bufs into the queue. 0 or UV_EPROTO. */
static int encrypt(tls_conn *t, const uv_buf_t *bufs, unsigned n, size_t *total) {
  for (unsigned i = 0; i < n; i++) {
    if (bufs[i].len == 0)
      continue;
    size_t written = 0;
    if (SSL_write_ex(t->ssl, bufs[i].base, bufs[i].len, &written) != 1) {
      ERR_clear_error();
      t->failed = 1;
      return UV_EPROTO;
    }
    *total += written;
  }
  return 0;
}

/* Plaintext is taken only when nothing else waits: encrypted, then as much
 * ciphertext as the socket takes; a rest leaves in our own write. */
static int tls_try_write(wire_conn *c, const uv_buf_t *bufs, unsigned n) {
  tls_conn *t = tc_of(c);
  if (t->wr || t->q_head || t->owed || t->failed || !SSL_is_init_finished(t->ssl))
    return 0;
  size_t total = 0;
  int r = encrypt(t, bufs, n, &total);
  if (r == 0)
    r = push(t, 1);
  return r < 0 ? r : (int)total;
}

static int tls_write(wire_conn *c, wire__wreq *w, const uv_buf_t *bufs, unsigned n) {
  tls_conn *t = tc_of(c);
  size_t total = 0;
  if (t->failed)
    return UV_EPROTO;
  int r = encrypt(t, bufs, n, &total);
  if (r == 0 && t->wr == NULL)
    r = push(t, 0);
  if (r == 0)
    t->owed = w;
  return r;
}

static int tls_shutdown(wire_conn *c) {
  tls_conn *t = tc_of(c);
  t->want_shut = 1;
  if (t->wr == NULL && t->q_head == NULL && t->owed == NULL)
    do_shutdown(t);
  return 0;
}

static void close_cb(uv_handle_t *h) {
  tls_conn *t = tc_of_handle(h);
  SSL_free(t->ssl);
  t->ssl = NULL;
  free(t->held);
  t->held = NULL;
  chunks_free(t->q_head);
  t->q_head = t->q_tail = NULL;
  wire__conn_on_closed(&t->c);
}

static void tls_close(wire_conn *c) {
  tls_conn *t = tc_of(c);
  t->closing = 1;
  t->reading = 0;
  if (t->kick) {
    uv_close((uv_handle_t *)t->kick, kick_close_cb);
    t->kick = NULL;
  }
  uv_close((uv_handle_t *)&t->tcp, close_cb);
}

static int tls_peer(wire_conn *c, struct sockaddr_storage *ss) {
  int len = sizeof *ss;
  return uv_tcp_getpeername(&tc_of(c)->tcp, (struct sockaddr *)ss, &len);
}

const wire__transport wire__tls_transport = {
    tls_read_start, tls_read_stop, tls_try_write, tls_write, tls_shutdown, tls_close, tls_peer,
};

/* Attach an SSL on the server's current contexts and our BIO to t's
 * socket. Returns 1, or 0 when out of memory. */
static int tls_attach(wire_server *s, tls_conn *t) {
  BIO *b = bio_method ? BIO_new(bio_method) : NULL;
  t->ssl = b ? wire__tls_ssl_new(s) : NULL;
  if (t->ssl == NULL) {
    BIO_free(b);
    return 0;
  }
  BIO_set_data(b, t);
  SSL_set_bio(t->ssl, b, b); /* one BIO both ways: the SSL takes our one reference */
  SSL_set_accept_state(t->ssl);
  uv_tcp_nodelay(&t->tcp, 1);
  return 1;
}

/* A TLS connection with its TCP handle initialised on s's loop, or NULL. */
static tls_conn *tls_conn_new(wire_server *s) {
  CRYPTO_THREAD_run_once(&bio_once, bio_init_method);
  tls_conn *t = calloc(1, sizeof *t);
  if (t == NULL || uv_tcp_init(s->loop, &t->tcp) != 0) {
    free(t);
    return NULL;
  }
  t->tcp.data = s;
  t->c.io.data = s;
  t->c.tpi = WIRE__TP_TLS;
  return t;
}

/* Accept on a TLS listener: the TCP accept, plus an SSL on the server's
 * current contexts and our BIO. */
void wire__tls_on_connection(uv_stream_t *ls, int status) {
  wire__listener *l = (wire__listener *)ls;
  wire_server *s = l->server;
  if (status < 0) { /* EMFILE/ENFILE: libuv's reserve descriptor dropped it */
    s->stats.accept_failed++;
    return;
  }
  wire__enter(s);
  tls_conn *t = tls_conn_new(s);
  if (t != NULL) {
    int ok = uv_accept(ls, (uv_stream_t *)&t->tcp) == 0 && tls_attach(s, t);
    wire__conn_start(&t->c, ok);
  }
  wire__leave(s);
}

void wire__tls_adopt(wire_server *s, int fd) {
  tls_conn *t = tls_conn_new(s);
  if (t == NULL) {
    close(fd);
    return;
  }
  int ok = uv_tcp_open(&t->tcp, (uv_os_sock_t)fd) == 0;
  if (!ok)
    close(fd);
  wire__conn_start(&t->c, ok && tls_attach(s, t));
}
