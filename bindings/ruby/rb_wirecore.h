/*
 * rb_wirecore.h -- declarations shared by the files of the Ruby extension
 * (Wirecore::Native): the wrapped server, endpoint and connection structs,
 * value conversion and error raising. Only Ruby C API and wirecore.h here.
 */
#ifndef RB_WIRECORE_H
#define RB_WIRECORE_H

#include <ruby.h>
#include <ruby/encoding.h>
#include <ruby/util.h>

#include "wirecore.h"

/* Classes and modules, looked up once at Init and registered with the GC. */
typedef struct rbw_classes {
  VALUE mWirecore, mNative;
  VALUE cServer, cConn;
  VALUE eError; /* Wirecore::Error */
  /* One subclass of Error per core error category (WIRE_ERRCAT_MAP):
   * eCat[WIRE_ERRCAT_VALIDATION] is Wirecore::ValidationError, and so on. */
  VALUE eCat[WIRE_ERRCAT_COUNT];
} rbw_classes;

extern rbw_classes rbw; /* set once by Init, read-only afterwards */

typedef struct rbw_server rbw_server;

/* One endpoint: the Ruby object whose _connect/_message/_close/_error
 * methods the callbacks call, and the codec the core decodes with. */
typedef struct rbw_endpoint {
  rbw_server *server;
  VALUE handler;
  wire_codec codec;
} rbw_endpoint;

/* Wirecore::Native::Server. */
struct rbw_server {
  wire_server *srv;
  VALUE self;
  VALUE conns;   /* Hash: id => Conn, the connections the core still has */
  VALUE pending; /* an exception raised in a callback that no Ruby code
                    rescued (Interrupt, SystemExit): re-raised by #process */
  rbw_endpoint **eps;
  size_t n_eps, cap_eps;
  wire_doc *scratch; /* reused to build outgoing values */
  int scratch_busy;
  int closed; /* shutdown finished: the core server may be freed */
  int shutting_down;
};

/* Wirecore::Native::Conn: holds a wire_conn_ref from accept until on_close. */
typedef struct rbw_conn {
  wire_conn *conn; /* NULL once closed */
  VALUE self;
  VALUE server; /* the Server object, kept alive by the Conn */
  VALUE data;   /* the Ruby layer's per-connection session */
  rbw_endpoint *ep;
  uint64_t id;
  VALUE failing; /* during #fail / #invalid: the exception _error receives
                    (also on the Ruby stack, so the GC sees it) */
  double t_handler; /* rb_metrics.c: when the running message handler started */
  uint8_t in_handler, timing_paused; /* inside it; it paused: time at resume */
} rbw_conn;

/* rb_value.c: wire_value -> Ruby (strings copied; binary is ASCII-8BIT). */
VALUE rbw_value_to_ruby(const wire_value *v);
/* Ruby -> wire_value built in doc; raises Wirecore::SerializationError for
 * an object with no wire form, and whatever a to_h/to_s call raises. */
const wire_value *rbw_value_from_ruby(wire_doc *doc, VALUE obj);
void rbw_init_value(void);

/* rb_ext.c: raise the Wirecore::Error subclass for code, with err's details
 * (err may be NULL). */
NORETURN(void rbw_raise(int code, const wire_error *err, const char *what));
/* The exception object rbw_raise would raise. */
VALUE rbw_error_new(int code, const wire_error *err, const char *what);

/* rb_server.c / rb_conn.c */
void rbw_init_server(void);
void rbw_init_scaling(void); /* rb_scaling.c: broker and workers */
void rbw_init_metrics(void); /* rb_metrics.c: metrics, health and logs */
double rbw_now(void);
void rbw_observe_resumed(rbw_conn *w);
void rbw_init_conn(void);
VALUE rbw_conn_wrap(rbw_server *s, rbw_endpoint *ep, wire_conn *conn);
/* wire_conn_fail with exc (nil: none) handed to the handler's _error.
 * Returns what wire_conn_fail returns (WIRE_ECLOSED for a closed conn). */
int rbw_conn_fail(rbw_conn *w, VALUE exc);
/* Build `obj` into a doc and hand the value to fn; the doc is the server's
 * scratch doc unless that is already in use (a nested call from to_h). */
wire_doc *rbw_server_doc_acquire(rbw_server *s, int *borrowed);
void rbw_server_doc_release(rbw_server *s, wire_doc *doc, int borrowed);
rbw_server *rbw_server_get(VALUE self);
/* The Conn struct of a Wirecore::Native::Conn (TypeError for anything else). */
rbw_conn *rbw_conn_get(VALUE self);
/* rb_topics.c: Conn#subscribe/#unsubscribe/#topics, Server#publish/#subscriber_count. */
void rbw_init_topics(void);

#endif /* RB_WIRECORE_H */
