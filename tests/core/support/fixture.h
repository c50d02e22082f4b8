/*
 * fixture.h -- a server under test with recording callbacks, pumped in the
 * test's own thread (host-driven by default, or on a borrowed uv loop).
 */
#ifndef WIRE_TEST_FIXTURE_H
#define WIRE_TEST_FIXTURE_H

#include "wsclient.h"

typedef struct fx fx;
typedef void (*fx_msg_hook)(fx *f, wire_conn *c, const wire_message *m);

struct fx {
  wire_server *server;
  wt_pump pump;
  int port;
  wire_endpoint *ep;
  int n_connect, n_close, n_error, n_message;
  int close_code;
  char close_reason[128];
  int last_error;
  char last_error_msg[512];
  char last_error_path[256];
  int error_verdict;   /* what on_error returns */
  int echo;            /* echo every message back */
  int connect_verdict; /* what on_connect returns */
  wire_conn *conn;     /* the last connection on_connect saw */
  char log[16384];     /* message payloads joined by '|' */
  size_t log_len;
  int last_kind;
  int last_handler;
  int ref_in_connect; /* wire_conn_ref in on_connect */
  fx_msg_hook hook;
  int done; /* shutdown done callback fired */
};

/* Start a server on 127.0.0.1 (free port) with one endpoint on pattern.
 * sopts / eopts may be NULL. */
void fx_start(fx *f, const wire_server_options *sopts, const wire_endpoint_options *eopts,
              const char *pattern);
/* Graceful shutdown (short deadline), pump until done, free. */
void fx_stop(fx *f);
extern const wire_callbacks fx_callbacks;

/* Pump until cond holds (at most 5 s): waits that stay correct on a slow
 * machine or under valgrind. */
#define FX_PUMP_UNTIL(f, cond)                                                                     \
  do {                                                                                             \
    uint64_t fx_end_ = wt_now_ms() + 5000;                                                         \
    while (!(cond) && wt_now_ms() < fx_end_)                                                       \
      wt_pump_once(&(f)->pump, 5);                                                                 \
  } while (0)

#endif
