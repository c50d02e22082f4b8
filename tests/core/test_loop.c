/*
 * test_loop.c -- the three ways to run a server (loop.c): wire_server_run on
 * its own loop (in a thread, the client in the test thread), a borrowed
 * uv_loop_t, and host-driven with poll(); the timeout contract; listener
 * ref/unref.
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

TestSuite(loop, .timeout = 30);

/* ---- wire_server_run on its own loop --------------------------------------- */

static void echo_or_stop(wire_conn *c, const wire_message *m, void *ud) {
  if (m->len == 4 && memcmp(m->data, "stop", 4) == 0)
    wire_server_shutdown(wire_conn_server(c), 1000, NULL, NULL);
  else
    wire_conn_send_text(c, (const char *)m->data, m->len);
}

static void *run_thread(void *arg) {
  wire_server *s = arg;
  intptr_t r = wire_server_run(s);
  return (void *)r;
}

Test(loop, run_serves_on_its_own_loop_until_shutdown) {
  wire_server *s;
  cr_assert_eq(wire_server_new(NULL, &s), 0);
  wire_callbacks cb = {0};
  cb.on_message = echo_or_stop;
  cr_assert_eq(wire_endpoint_add(s, "/", NULL, &cb, NULL, NULL, NULL), 0);
  cr_assert_eq(wire_server_listen(s, "127.0.0.1", 0), 0);
  int port = wire_server_port(s);
  pthread_t th;
  pthread_create(&th, NULL, run_thread, s);
  wt_pump p = {NULL, NULL}; /* the client never touches the server */
  int fd = wt_open(&p, port, "/");
  cr_assert_geq(fd, 0);
  wt_send_frame(&p, fd, 1, 0x1, "ping?", 5);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&p, fd, &m, 3000), 0);
  cr_assert_eq(m.len, 5);
  wt_msg_free(&m);
  wt_send_frame(&p, fd, 1, 0x1, "stop", 4);
  cr_assert_eq(wt_read_frame(&p, fd, &m, 3000), 0);
  cr_assert_eq(m.close_code, 1001);
  wt_msg_free(&m);
  wt_send_frame(&p, fd, 1, 0x8, "\x03\xe9", 2);
  void *ret;
  pthread_join(th, &ret);
  cr_assert_eq((intptr_t)ret, 0);
  close(fd);
  cr_assert_eq(wire_server_free(s), 0);
}

/* ---- a borrowed loop ------------------------------------------------------- */

Test(loop, borrowed_loop_serves_and_refuses_run_and_process) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  fx f;
  memset(&f, 0, sizeof f);
  f.echo = 1;
  wire_server_options so = {0};
  so.uv_loop = &loop;
  fx_start(&f, &so, NULL, "/b");
  cr_assert_eq(wire_server_run(f.server), WIRE_ESTATE);
  cr_assert_eq(wire_server_process(f.server), WIRE_ESTATE);
  int fd = wt_open(&f.pump, f.port, "/b");
  cr_assert_geq(fd, 0);
  wt_send_frame(&f.pump, fd, 1, 0x2, "bin", 3);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&f.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x2);
  wt_msg_free(&m);
  close(fd);
  fx_stop(&f);
  uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert_eq(uv_loop_close(&loop), 0, "the server left handles on the borrowed loop");
}

Test(loop, unref_lets_a_borrowed_loop_end_and_ref_keeps_it) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  wire_server_options so = {0};
  so.uv_loop = &loop;
  wire_server *s;
  cr_assert_eq(wire_server_new(&so, &s), 0);
  cr_assert_eq(wire_endpoint_add(s, "/", NULL, NULL, NULL, NULL, NULL), 0);
  wire_server_unref(s); /* applies to listeners made later too */
  cr_assert_eq(wire_server_listen(s, "127.0.0.1", 0), 0);
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0, "an unref'd server kept the loop alive");
  wire_server_ref(s);
  cr_assert_neq(uv_loop_alive(&loop), 0);
  wire_server_unref(s);
  cr_assert_eq(uv_loop_alive(&loop), 0);
  int done = 0;
  cr_assert_eq(wire_server_shutdown(s, 100, NULL, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  (void)done;
  cr_assert_eq(wire_server_free(s), 0);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- host-driven ------------------------------------------------------------- */

Test(loop, host_driven_poll_loop_serves_clients) {
  fx f;
  memset(&f, 0, sizeof f);
  f.echo = 1;
  fx_start(&f, NULL, NULL, "/h");
  cr_assert_geq(wire_server_fd(f.server), 0);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = wt_open(&f.pump, f.port, "/h");
    cr_assert_geq(fds[i], 0);
  }
  for (int i = 0; i < 3; i++)
    wt_send_frame(&f.pump, fds[i], 1, 0x1, "abc", 3);
  for (int i = 0; i < 3; i++) {
    wt_msg m;
    cr_assert_eq(wt_read_frame(&f.pump, fds[i], &m, 3000), 0);
    cr_assert_str_eq((char *)m.data, "abc");
    wt_msg_free(&m);
    close(fds[i]);
  }
  fx_stop(&f);
}

Test(loop, timeout_is_zero_while_libuv_has_work_that_the_fd_does_not_show) {
  fx f;
  memset(&f, 0, sizeof f);
  fx_start(&f, NULL, NULL, "/h");
  /* listen() changed watchers: epoll learns of them only at the next poll */
  cr_assert_eq(wire_server_timeout(f.server), 0);
  cr_assert_eq(wire_server_process(f.server), 1);
  int fd = wt_connect(f.port);
  /* the accept is visible on the fd */
  struct pollfd pfd = {wire_server_fd(f.server), POLLIN, 0};
  cr_assert_eq(poll(&pfd, 1, 2000), 1);
  cr_assert_eq(wire_server_process(f.server), 1);
  /* the new connection's read watcher is not in epoll yet */
  cr_assert_eq(wire_server_timeout(f.server), 0);
  cr_assert_eq(wire_server_process(f.server), 1);
  /* now the fd alone tells the host when the request arrives; the handshake
   * deadline is the only timer */
  int t = wire_server_timeout(f.server);
  cr_assert(t > 0 && t <= (int)WIRE_DEFAULT_HANDSHAKE_TIMEOUT_MS, "timeout %d", t);
  close(fd);
  fx_stop(&f);
}

Test(loop, host_code_send_between_process_calls_needs_no_process_call) {
  fx f;
  memset(&f, 0, sizeof f);
  fx_start(&f, NULL, NULL, "/h");
  int fd = wt_open(&f.pump, f.port, "/h");
  cr_assert_eq(wire_conn_send_text(f.conn, "hi", 2), 0);
  uint8_t b[4];
  ssize_t n = 0;
  for (int i = 0; i < 200 && n < 4; i++) {
    ssize_t r = read(fd, b + n, 4 - (size_t)n);
    if (r > 0)
      n += r;
    else
      usleep(1000);
  }
  cr_assert_eq(n, 4);
  close(fd);
  fx_stop(&f);
}

Test(loop, process_returns_zero_and_timeout_minus_one_after_shutdown) {
  fx f;
  memset(&f, 0, sizeof f);
  fx_start(&f, NULL, NULL, "/h");
  fx_stop(&f); /* frees too; check on a fresh server instead */
  wire_server *s;
  cr_assert_eq(wire_server_new(NULL, &s), 0);
  cr_assert_eq(wire_server_listen(s, "127.0.0.1", 0), 0);
  cr_assert_eq(wire_server_shutdown(s, 0, NULL, NULL), 0);
  int r = 1;
  for (int i = 0; i < 100 && r == 1; i++)
    r = wire_server_process(s);
  cr_assert_eq(r, 0);
  cr_assert_eq(wire_server_timeout(s), -1);
  cr_assert_eq(wire_server_free(s), 0);
}

Test(loop, unref_server_lets_the_loop_end_once_its_last_connection_closes) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  fx f;
  memset(&f, 0, sizeof f);
  wire_server_options so = {0};
  so.uv_loop = &loop;
  fx_start(&f, &so, NULL, "/u");
  int fd = wt_open(&f.pump, f.port, "/u"); /* arms the 120 s idle deadline */
  cr_assert_geq(fd, 0);
  wire_server_unref(f.server);
  close(fd);
  FX_PUMP_UNTIL(&f, f.n_close == 1);
  uint64_t t0 = wt_now_ms();
  uv_run(&loop, UV_RUN_DEFAULT); /* nothing of ours may keep it running */
  cr_assert_lt(wt_now_ms() - t0, 1000, "a stale deadline kept the loop alive");
  fx_stop(&f);
  uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
