/*
 * test_host_wake.c -- the wake handle (loop.c) on real sockets: in
 * host-driven mode a large send made between two process calls is fully
 * delivered while the host waits only on wire_server_fd() and
 * wire_server_timeout(), as asyncio or Ruby do; and wire_server_stop from
 * another thread and from a signal handler shuts the server down with 1001.
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

TestSuite(host_wake, .timeout = 60);

#define N_MSGS 2000
#define MSG_SIZE 4096
#define FRAME_SIZE (MSG_SIZE + 4) /* 126-length header */

static struct {
  wire_server *s;
  int port;
  wire_conn *conn;
  volatile int client_ready, client_done;
  size_t received;
  int close_code;
} H;

static int remember_conn(wire_conn *c, const wire_request *req, void *ud) {
  (void)req, (void)ud;
  H.conn = c;
  return 0;
}

/* A client that connects, then waits before reading, so the server's socket
 * refuses most of the burst and the rest must go out through libuv's write
 * queue. */
static void *slow_reader(void *arg) {
  (void)arg;
  wt_pump p = {NULL, NULL}; /* never touches the server */
  int fd = wt_open(&p, H.port, "/big");
  H.client_ready = 1;
  if (fd >= 0) {
    usleep(300 * 1000);
    size_t want = (size_t)N_MSGS * FRAME_SIZE;
    char *buf = malloc(65536);
    while (H.received < want) {
      size_t n = want - H.received < 65536 ? want - H.received : 65536;
      size_t got = wt_read(&p, fd, buf, n, 18000);
      H.received += got;
      if (got < n)
        break;
    }
    free(buf);
    close(fd);
  }
  H.client_done = 1;
  return NULL;
}

Test(host_wake, a_send_between_process_calls_is_delivered_with_only_the_fd_and_timeout) {
  memset(&H, 0, sizeof H);
  cr_assert_eq(wire_server_new(NULL, &H.s), 0);
  wire_endpoint_options eo = {.max_backpressure = 64u << 20, .idle_timeout_ms = 600000};
  wire_callbacks cb = {.on_connect = remember_conn};
  cr_assert_eq(wire_endpoint_add(H.s, "/big", &eo, &cb, NULL, NULL, NULL), 0);
  cr_assert_eq(wire_server_listen(H.s, "127.0.0.1", 0), 0);
  H.port = wire_server_port(H.s);
  pthread_t th;
  pthread_create(&th, NULL, slow_reader, NULL);
  char *payload = malloc(MSG_SIZE);
  memset(payload, 'x', MSG_SIZE);
  int sent = 0;
  uint64_t end = wt_now_ms() + 20000;
  struct pollfd pfd = {.fd = wire_server_fd(H.s), .events = POLLIN};
  while (!H.client_done && wt_now_ms() < end) {
    cr_assert_eq(wire_server_process(H.s), 1);
    int t = wire_server_timeout(H.s); /* asked only after a process call */
    if (!sent && H.client_ready && H.conn != NULL && wire_conn_is_open(H.conn)) {
      /* host code between two process calls */
      for (int i = 0; i < N_MSGS; i++)
        cr_assert_eq(wire_conn_send_binary(H.conn, payload, MSG_SIZE), 0);
      sent = 1;
      cr_assert_gt(wire_conn_buffered_amount(H.conn), 0, "the socket took everything at once");
    }
    int left = (int)(end - wt_now_ms());
    if (!sent && left > 20)
      left = 20; /* the client's handshake wakes nothing here: look again soon */
    poll(&pfd, 1, t < 0 || t > left ? (left > 0 ? left : 0) : t);
  }
  pthread_join(th, NULL);
  cr_assert(sent);
  cr_assert_eq(H.received, (size_t)N_MSGS * FRAME_SIZE, "delivered %zu of %zu bytes", H.received,
               (size_t)N_MSGS * FRAME_SIZE);
  free(payload);
  wire_server_shutdown(H.s, 500, NULL, NULL);
  for (int i = 0; i < 2000 && wire_server_process(H.s) == 1; i++)
    poll(&pfd, 1, 5);
  cr_assert_eq(wire_server_free(H.s), 0);
}

/* ---- wire_server_stop ------------------------------------------------------- */

/* Open a connection, then (stopper != NULL) call it; read the server's close
 * and answer it. */
static void *client_then(void *arg) {
  void (*stopper)(void) = (void (*)(void))arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals go to the loop thread */
  wt_pump p = {NULL, NULL};
  int fd = wt_open(&p, H.port, "/");
  H.client_ready = 1;
  if (fd < 0)
    return NULL;
  if (stopper != NULL)
    stopper();
  wt_msg m;
  if (wt_read_frame(&p, fd, &m, 5000) == 0) {
    H.close_code = m.opcode == 0x8 ? m.close_code : -m.opcode;
    wt_msg_free(&m);
    wt_send_frame(&p, fd, 1, 0x8, "\x03\xe9", 2);
  }
  wt_wait_eof(&p, fd, 3000);
  close(fd);
  H.client_done = 1;
  return NULL;
}

static void stop_now(void) {
  cr_assert_eq(wire_server_stop(H.s), 0);
}

static void start_plain(void) {
  memset(&H, 0, sizeof H);
  cr_assert_eq(wire_server_new(NULL, &H.s), 0);
  cr_assert_eq(wire_server_stop(H.s), WIRE_ESTATE, "nothing to stop before a listen");
  cr_assert_eq(wire_endpoint_add(H.s, "/", NULL, NULL, NULL, NULL, NULL), 0);
  cr_assert_eq(wire_server_listen(H.s, "127.0.0.1", 0), 0);
  H.port = wire_server_port(H.s);
}

static void finish_plain(void) {
  cr_assert_eq(H.close_code, 1001);
  cr_assert_eq(wire_server_stop(H.s), WIRE_ESTATE, "the shutdown has finished");
  cr_assert_eq(wire_server_free(H.s), 0);
}

Test(host_wake, stop_from_another_thread_ends_wire_server_run_with_1001) {
  start_plain();
  pthread_t th;
  pthread_create(&th, NULL, client_then, (void *)stop_now);
  cr_assert_eq(wire_server_run(H.s), 0);
  pthread_join(th, NULL);
  finish_plain();
}

static void on_alarm(int sig) {
  (void)sig;
  wire_server_stop(H.s);
}

Test(host_wake, stop_from_a_signal_handler_ends_wire_server_run_with_1001) {
  start_plain();
  pthread_t th;
  pthread_create(&th, NULL, client_then, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 300 * 1000}};
  setitimer(ITIMER_REAL, &it, NULL); /* the client is connected by then */
  cr_assert_eq(wire_server_run(H.s), 0);
  signal(SIGALRM, SIG_DFL);
  pthread_join(th, NULL);
  finish_plain();
}

Test(host_wake, stop_wakes_a_host_waiting_on_the_fd_alone) {
  start_plain();
  struct pollfd pfd = {.fd = wire_server_fd(H.s), .events = POLLIN};
  cr_assert_eq(wire_server_process(H.s), 1);
  cr_assert_eq(wire_server_stop(H.s), 0);
  cr_assert_eq(poll(&pfd, 1, 3000), 1, "the backend fd did not become readable");
  uint64_t end = wt_now_ms() + 5000;
  while (wire_server_process(H.s) == 1 && wt_now_ms() < end) {
    int t = wire_server_timeout(H.s);
    poll(&pfd, 1, t < 0 || t > 50 ? 50 : t);
  }
  cr_assert_eq(wire_server_process(H.s), 0, "the shutdown did not finish");
  H.close_code = 1001; /* no client here */
  finish_plain();
}
