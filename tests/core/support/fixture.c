/*
 * fixture.c -- see fixture.h.
 */
#include "fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int on_connect(wire_conn *c, const wire_request *req, void *ud) {
  fx *f = ud;
  (void)req;
  f->n_connect++;
  f->conn = c;
  if (f->ref_in_connect)
    wire_conn_ref(c);
  return f->connect_verdict;
}

static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  fx *f = ud;
  f->n_message++;
  f->last_kind = m->kind;
  f->last_handler = m->handler;
  if (f->log_len + m->len + 2 < sizeof f->log) {
    if (f->log_len)
      f->log[f->log_len++] = '|';
    memcpy(f->log + f->log_len, m->data, m->len);
    f->log_len += m->len;
    f->log[f->log_len] = 0;
  }
  if (f->echo) {
    if (m->kind == WIRE_MSG_TEXT)
      wire_conn_send_text(c, (const char *)m->data, m->len);
    else
      wire_conn_send_binary(c, m->data, m->len);
  }
  if (f->hook)
    f->hook(f, c, m);
}

static void on_close(wire_conn *c, int code, const char *reason, size_t len, void *ud) {
  fx *f = ud;
  (void)c;
  f->n_close++;
  f->close_code = code;
  snprintf(f->close_reason, sizeof f->close_reason, "%.*s", (int)len, reason);
}

static int on_error(wire_conn *c, const wire_error *err, void *ud) {
  fx *f = ud;
  (void)c;
  f->n_error++;
  f->last_error = err->code;
  snprintf(f->last_error_msg, sizeof f->last_error_msg, "%s", err->message);
  snprintf(f->last_error_path, sizeof f->last_error_path, "%s", err->path);
  return f->error_verdict;
}

const wire_callbacks fx_callbacks = {on_connect, on_message, on_close, on_error};

void fx_start(fx *f, const wire_server_options *sopts, const wire_endpoint_options *eopts,
              const char *pattern) {
  cr_assert_eq(wire_server_new(sopts, &f->server), 0);
  f->pump.server = f->server;
  f->pump.loop = sopts ? sopts->uv_loop : NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  int r = wire_endpoint_add(f->server, pattern, eopts, &fx_callbacks, f, &f->ep, &err);
  cr_assert_eq(r, 0, "endpoint_add: %s (%s)", wire_err_name(r), err.message);
  cr_assert_eq(wire_server_listen(f->server, "127.0.0.1", 0), 0);
  f->port = wire_server_port(f->server);
  cr_assert_gt(f->port, 0);
}

static void on_done(wire_server *s, void *ud) {
  (void)s;
  ((fx *)ud)->done = 1;
}

void fx_stop(fx *f) {
  if (f->server == NULL)
    return;
  if (!f->done) {
    if (wire_server_shutdown(f->server, 300, on_done, f) == 0)
      wt_pump_until(&f->pump, &f->done, 3000);
  }
  cr_assert(f->done, "shutdown did not finish");
  cr_assert_eq(wire_server_free(f->server), 0);
  f->server = NULL;
}
