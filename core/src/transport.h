/*
 * transport.h -- the byte stream under a connection. The engine (handshake.c,
 * conn.c, send.c) reads, writes, half-closes and closes only through this
 * interface; transport_tcp.c implements it on a socket with a libuv poll handle,
 * transport_mem.c in memory for tests and fuzzing. Never installed.
 *
 * Calls go both ways. Engine -> transport: the function table below.
 * Transport -> engine, always from a callback of the server's loop (or, for
 * the memory transport, from wire__mem_step), never from inside one of the
 * table's functions:
 *   wire__conn_on_read(c, data, n)    bytes arrived (n > 0), or EOF/error (n < 0)
 *   wire__out_written(c, w, status)   a write() finished (status 0 or < 0)
 *   wire__conn_on_closed(c)           close() finished; the engine may free c
 *
 * A transport that needs to write on its own (a TLS handshake or alert
 * while reading) does so with its own requests and does not involve the
 * engine's write queue. One that holds bytes it took but has not put on the
 * wire yet (TLS records) will add a `buffered` entry, counted with the
 * engine's queue in wire_conn_buffered_amount and against max_backpressure;
 * TCP and memory never hold any, so there is none yet.
 */
#ifndef WIRE_TRANSPORT_H
#define WIRE_TRANSPORT_H

#include "internal.h"

#include <uv.h>

typedef struct wire__wreq wire__wreq;
struct sockaddr_storage;

typedef struct wire__transport {
  /* Start delivering bytes through wire__conn_on_read. 0 or a libuv error. */
  int (*read_start)(wire_conn *c);
  /* Stop delivering bytes; none arrive until the next read_start. */
  void (*read_stop)(wire_conn *c);
  /* Take what can be written without waiting: the number of bytes taken
   * (possibly 0), or a negative libuv error other than UV_EAGAIN. */
  int (*try_write)(wire_conn *c, const uv_buf_t *bufs, unsigned n);
  /* Write all of bufs (at most WIRE__MAX_IOV, valid until the completion) in
   * the background; wire__out_written(c, w, status) follows. One write is in
   * flight at a time. 0, or a libuv error and then no completion. */
  int (*write)(wire_conn *c, wire__wreq *w, const uv_buf_t *bufs, unsigned n);
  /* Half-close (FIN) once the writes issued so far have left. 0 or a libuv
   * error. */
  int (*shutdown)(wire_conn *c);
  /* Close; a write in flight completes with UV_ECANCELED first, then
   * wire__conn_on_closed(c). */
  void (*close)(wire_conn *c);
  /* The peer's address into ss: 0 or a libuv error. */
  int (*peer)(wire_conn *c, struct sockaddr_storage *ss);
} wire__transport;

/* transport_tcp.c: today's sockets. */
extern const wire__transport wire__tcp_transport WIRE_HIDDEN;

/* A connection keeps the index of its transport (one byte, wire_conn.tpi),
 * not a pointer; 0, what calloc leaves, is TCP. */
enum { WIRE__TP_TCP = 0, WIRE__TP_TLS, WIRE__TP_MEM, WIRE__TP_COUNT };
/* transport_tls.c, transport_mem.c */
extern const wire__transport wire__tls_transport WIRE_HIDDEN;
extern const wire__transport wire__mem_transport WIRE_HIDDEN;
/* transport_tcp.c: the transports by index. */
extern const wire__transport *const wire__transports[WIRE__TP_COUNT] WIRE_HIDDEN;
#define WIRE__TP(c) (wire__transports[(c)->tpi])
/* A listener accepted: set up a connection on the new socket. */
WIRE_HIDDEN void wire__tcp_on_connection(uv_stream_t *ls, int status);
/* transport_tcp.c: a connection on an accepted socket fd (owned from here
 * on: closed when no connection can be made); ops: a metrics listener's. */
WIRE_HIDDEN void wire__tcp_adopt(wire_server *s, int fd, int ops);
/* transport_tls.c: the connection whose TCP handle h is (TLS connections
 * keep a uv_tcp_t of their own behind the engine's struct). */
WIRE_HIDDEN wire_conn *wire__tls_conn_of(uv_handle_t *h);
/* transport_tcp.c: libuv's alloc_cb for every socket transport (h->data is
 * the server): the server's one read buffer, or a fresh one while it is
 * lent (base NULL, len 0 when memory runs out). */
WIRE_HIDDEN void wire__read_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* transport_tcp.c: give back a buffer wire__read_alloc_cb handed out. */
WIRE_HIDDEN void wire__read_release(wire_server *s, const uv_buf_t *buf);

/* ---- engine entry points the transports call ------------------------------ */

/* conn.c: bytes arrived (n > 0), or the stream ended (n < 0: UV_EOF or an
 * error). The bytes are consumed before it returns. */
WIRE_HIDDEN void wire__conn_on_read(wire_conn *c, const char *data, ssize_t n);
/* conn.c: the transport finished closing; c may be freed. */
WIRE_HIDDEN void wire__conn_on_closed(wire_conn *c);
/* send.c: a write() finished. */
WIRE_HIDDEN void wire__out_written(wire_conn *c, wire__wreq *w, int status);
/* server.c: a connection whose transport is ready (ok) or failed (!ok):
 * give it an id, count it, start its handshake deadline and reading. */
WIRE_HIDDEN void wire__conn_start(wire_conn *c, int ok);

/* ---- the in-memory transport (transport_mem.c), for tests and fuzzing ----- */

/* A connection on a memory stream, attached to a server as if accepted: the
 * caller feeds the exact input bytes in chosen chunks and reads the exact
 * output bytes. The server's loop is used only for its timers; open memory
 * connections keep it alive as sockets do. */
typedef struct wire__mem wire__mem;

/* Open a memory connection on s (a server that has not listened becomes live
 * as a listen would make it). 0, WIRE_ENOMEM, WIRE_ESTATE (shutting down) or
 * WIRE_EUV. The connection starts in the handshake. */
WIRE_HIDDEN int wire__mem_open(wire_server *s, wire__mem **out);
/* Queue bytes (copied) to arrive as one read. 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__mem_feed(wire__mem *m, const void *data, size_t len);
/* The peer half-closes after the queued input. */
WIRE_HIDDEN void wire__mem_eof(wire__mem *m);
/* Take at most n bytes per write call (0: everything); a queued write then
 * progresses by n bytes per step. */
WIRE_HIDDEN void wire__mem_set_write_limit(wire__mem *m, size_t n);
/* Do one unit of pending work: finish a close, progress the write in flight,
 * deliver one queued read, or deliver the EOF. 1 if something happened. */
WIRE_HIDDEN int wire__mem_step(wire__mem *m);
/* Step until nothing is left to do; returns the number of steps. */
WIRE_HIDDEN size_t wire__mem_run(wire__mem *m);
/* Everything written so far and not yet consumed. */
WIRE_HIDDEN const uint8_t *wire__mem_output(const wire__mem *m, size_t *len);
WIRE_HIDDEN void wire__mem_consume(wire__mem *m, size_t n);
/* The engine's connection (NULL once its close has finished). */
WIRE_HIDDEN wire_conn *wire__mem_conn(const wire__mem *m);
/* 1 once the server half-closed (FIN) / closed the stream. */
WIRE_HIDDEN int wire__mem_fin(const wire__mem *m);
WIRE_HIDDEN int wire__mem_closed(const wire__mem *m);
/* Free; a connection still open is dropped first (on_close 1006). */
WIRE_HIDDEN void wire__mem_free(wire__mem *m);
/* Call fn for every open memory connection of s (shutdown walks them). */
WIRE_HIDDEN void wire__mem_each(wire_server *s, void (*fn)(wire_conn *c, void *arg), void *arg);

#endif /* WIRE_TRANSPORT_H */
