/*
 * transport_mem.c -- the in-memory transport, for tests and fuzzing: input
 * is a queue of chunks the caller fed (each arrives as one read), output is
 * one growable buffer; writes can be limited to N bytes per call to act like
 * a slow socket, and EOF comes when the caller says. Nothing happens behind
 * the caller's back: wire__mem_step does one unit of pending work (the role
 * of one loop callback). The server's loop still runs the deadlines.
 */
#include "conn_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct mem_chunk {
  struct mem_chunk *next;
  size_t len;
  char data[];
} mem_chunk;

struct wire__mem {
  wire_server *server;
  wire_conn *conn;        /* NULL once the engine's close finished */
  wire__mem *prev, *next; /* the server's list of open memory connections */
  mem_chunk *in_head, *in_tail;
  uint8_t *out;
  size_t out_len, out_cap, out_off; /* out_off: consumed by the caller */
  size_t limit;                     /* bytes per write call; 0 = all */
  wire__wreq *wreq;                 /* the write in flight */
  uv_buf_t wbufs[WIRE__MAX_IOV];
  unsigned wn, wi; /* buffers of the write in flight; the current one */
  size_t woff;     /* bytes of wbufs[wi] already written */
  int reading, eof, eof_sent, fin, closing, closed;
};

static wire__mem *mem_of(const wire_conn *c) {
  return c->io.state;
}

/* Append up to `max` bytes of bufs (starting at buffer *i, offset *off) to
 * the output. Returns the bytes taken or -1 when memory runs out. */
static ssize_t take(wire__mem *m, const uv_buf_t *bufs, unsigned n, unsigned *i, size_t *off,
                    size_t max) {
  size_t total = 0;
  while (*i < n && total < max) {
    size_t left = bufs[*i].len - *off, k = left < max - total ? left : max - total;
    if (m->out_len + k > m->out_cap) {
      size_t cap = m->out_cap ? m->out_cap : 4096;
      while (cap < m->out_len + k)
        cap *= 2;
      uint8_t *nb = realloc(m->out, cap);
      if (nb == NULL)
        return -1;
      m->out = nb;
      m->out_cap = cap;
    }
    memcpy(m->out + m->out_len, bufs[*i].base + *off, k);
    m->out_len += k;
    total += k;
    *off += k;
    if (*off == bufs[*i].len) {
      (*i)++;
      *off = 0;
    }
  }
  return (ssize_t)total;
}

static int mem_read_start(wire_conn *c) {
  mem_of(c)->reading = 1;
  return 0;
}

static void mem_read_stop(wire_conn *c) {
  mem_of(c)->reading = 0;
}

static int mem_try_write(wire_conn *c, const uv_buf_t *bufs, unsigned n) {
  wire__mem *m = mem_of(c);
  if (m->fin || m->closing)
    return UV_EPIPE;
  unsigned i = 0;
  size_t off = 0;
  ssize_t r = take(m, bufs, n, &i, &off, m->limit ? m->limit : SIZE_MAX);
  return r < 0 ? UV_ENOMEM : (int)r;
}

static int mem_write(wire_conn *c, wire__wreq *w, const uv_buf_t *bufs, unsigned n) {
  wire__mem *m = mem_of(c);
  if (m->fin || m->closing || m->wreq != NULL || n > WIRE__MAX_IOV)
    return UV_EINVAL;
  memcpy(m->wbufs, bufs, n * sizeof *bufs);
  m->wn = n;
  m->wi = 0;
  m->woff = 0;
  m->wreq = w;
  return 0;
}

static int mem_shutdown(wire_conn *c) {
  mem_of(c)->fin = 1;
  return 0;
}

static void mem_close(wire_conn *c) {
  wire__mem *m = mem_of(c);
  m->closing = 1;
  m->reading = 0;
  /* no longer found by shutdown's walk */
  wire_server *s = m->server;
  if (m->prev)
    m->prev->next = m->next;
  else
    s->mems = m->next;
  if (m->next)
    m->next->prev = m->prev;
  m->prev = m->next = NULL;
  if (s->mems == NULL)
    uv_unref((uv_handle_t *)&s->timer);
}

static int mem_peer(wire_conn *c, struct sockaddr_storage *ss) {
  (void)c;
  (void)ss;
  return UV_ENOTSUP;
}

const wire__transport wire__mem_transport = {
    mem_read_start, mem_read_stop, mem_try_write, mem_write, mem_shutdown, mem_close, mem_peer,
};

int wire__mem_open(wire_server *s, wire__mem **out) {
  *out = NULL;
  if (s->state == WIRE__SV_SHUTTING || s->state == WIRE__SV_DONE)
    return WIRE_ESTATE;
  if (wire__timer_init(s) != 0 || wire__wake_init(s) != 0)
    return WIRE_EUV;
  wire__mem *m = calloc(1, sizeof *m);
  wire_conn *c = calloc(1, sizeof *c);
  if (m == NULL || c == NULL) {
    free(m);
    free(c);
    return WIRE_ENOMEM;
  }
  if (s->state == WIRE__SV_NEW)
    s->state = WIRE__SV_LISTENING;
  m->server = s;
  m->conn = c;
  /* Open memory connections keep the loop alive, as sockets do, so its
   * deadlines run (the timer is otherwise unref'd). */
  if (s->mems == NULL)
    uv_ref((uv_handle_t *)&s->timer);
  m->next = s->mems;
  if (s->mems)
    s->mems->prev = m;
  s->mems = m;
  c->io.data = s;
  c->io.state = m;
  c->tpi = WIRE__TP_MEM;
  wire__enter(s);
  wire__conn_start(c, 1);
  wire__leave(s);
  *out = m;
  return 0;
}

int wire__mem_feed(wire__mem *m, const void *data, size_t len) {
  mem_chunk *ch = malloc(sizeof *ch + len);
  if (ch == NULL)
    return WIRE_ENOMEM;
  ch->next = NULL;
  ch->len = len;
  if (len)
    memcpy(ch->data, data, len);
  if (m->in_tail)
    m->in_tail->next = ch;
  else
    m->in_head = ch;
  m->in_tail = ch;
  return 0;
}

void wire__mem_eof(wire__mem *m) {
  m->eof = 1;
}

void wire__mem_set_write_limit(wire__mem *m, size_t n) {
  m->limit = n;
}

/* Progress the write in flight by one limit's worth; complete it when done. */
static void step_write(wire__mem *m) {
  ssize_t r = take(m, m->wbufs, m->wn, &m->wi, &m->woff, m->limit ? m->limit : SIZE_MAX);
  if (r >= 0 && m->wi < m->wn)
    return;
  wire__wreq *w = m->wreq;
  m->wreq = NULL;
  wire__out_written(m->conn, w, r < 0 ? UV_ENOMEM : 0);
}

int wire__mem_step(wire__mem *m) {
  wire_conn *c = m->conn;
  if (c == NULL)
    return 0;
  if (m->closing) {
    if (m->wreq != NULL) { /* as libuv: the write is cancelled before the close callback */
      wire__wreq *w = m->wreq;
      m->wreq = NULL;
      wire__out_written(c, w, UV_ECANCELED);
    }
    m->conn = NULL;
    m->closed = 1;
    wire__conn_on_closed(c);
    return 1;
  }
  if (m->wreq != NULL) {
    step_write(m);
    return 1;
  }
  if (m->reading && m->in_head != NULL) {
    mem_chunk *ch = m->in_head;
    m->in_head = ch->next;
    if (m->in_head == NULL)
      m->in_tail = NULL;
    if (ch->len > 0)
      wire__conn_on_read(c, ch->data, (ssize_t)ch->len);
    free(ch);
    return 1;
  }
  if (m->reading && m->eof && !m->eof_sent && m->in_head == NULL) {
    m->eof_sent = 1;
    wire__conn_on_read(c, NULL, UV_EOF);
    return 1;
  }
  return 0;
}

size_t wire__mem_run(wire__mem *m) {
  size_t n = 0;
  while (wire__mem_step(m))
    n++;
  return n;
}

const uint8_t *wire__mem_output(const wire__mem *m, size_t *len) {
  *len = m->out_len - m->out_off;
  return m->out ? m->out + m->out_off : (const uint8_t *)"";
}

void wire__mem_consume(wire__mem *m, size_t n) {
  size_t left = m->out_len - m->out_off;
  m->out_off += n < left ? n : left;
}

wire_conn *wire__mem_conn(const wire__mem *m) {
  return m->conn;
}

int wire__mem_fin(const wire__mem *m) {
  return m->fin;
}

int wire__mem_closed(const wire__mem *m) {
  return m->closed;
}

void wire__mem_free(wire__mem *m) {
  if (m == NULL)
    return;
  if (m->conn != NULL && !m->closing) {
    wire_server *s = m->server;
    wire__enter(s);
    wire__conn_terminate(m->conn, 1006, NULL, 0);
    wire__leave(s);
  }
  while (m->conn != NULL)
    wire__mem_step(m); /* finishes the close */
  while (m->in_head != NULL) {
    mem_chunk *ch = m->in_head;
    m->in_head = ch->next;
    free(ch);
  }
  free(m->out);
  free(m);
}

void wire__mem_each(wire_server *s, void (*fn)(wire_conn *c, void *arg), void *arg) {
  for (wire__mem *m = s->mems, *next; m != NULL; m = next) {
    next = m->next; /* fn may close m, which unlinks it */
    if (!m->closing)
      fn(m->conn, arg);
  }
}
