/*
 * test_emfile.c -- a server short of descriptors, over real sockets on
 * 127.0.0.1: with RLIMIT_NOFILE lowered so that more clients connect than
 * the process has descriptors for (most of them held by the clients
 * themselves, which the server's own socket count cannot see), every client
 * is either upgraded or told 503 (none is dropped without an answer), the
 * loop does not spin, and a connection already open keeps echoing.
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static fx F;

static void teardown(void) {
  if (F.server != NULL)
    fx_stop(&F);
}

TestSuite(emfile, .fini = teardown, .timeout = 60);

/* The highest descriptor this process has open below cap (valgrind keeps
 * its own above the limit it reports). */
static int highest_fd(rlim_t cap) {
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d);
  int top = -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] != '.' && fd > top && (rlim_t)fd < cap)
      top = fd;
  }
  closedir(d);
  return top;
}

static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

#define N_CLIENTS 80

Test(emfile, clients_past_the_descriptor_limit_are_upgraded_or_told_503_never_dropped) {
  /* the clients' sockets first: they take the low descriptors */
  int cl[N_CLIENTS];
  for (int i = 0; i < N_CLIENTS; i++) {
    cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    cr_assert_geq(cl[i], 0);
  }
  /* about 40 descriptors left above them, for the server and one bystander */
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = (rlim_t)highest_fd(rl.rlim_cur) + 1 + 40;
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0); /* this test's own process */
  memset(&F, 0, sizeof F);
  F.echo = 1;
  fx_start(&F, NULL, NULL, "/ws");
  int by = wt_open(&F.pump, F.port, "/ws");
  cr_assert_geq(by, 0);

  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)F.port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < N_CLIENTS; i++) {
    int r = connect(cl[i], (struct sockaddr *)&sa, sizeof sa);
    cr_assert(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
  }
  static const char req[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n";
  for (int i = 0; i < N_CLIENTS; i++) {
    struct pollfd p = {.fd = cl[i], .events = POLLOUT};
    uint64_t end = wt_now_ms() + 5000;
    while (poll(&p, 1, 0) == 0 && wt_now_ms() < end)
      wt_pump_once(&F.pump, 5);
    /* the kernel completed the connect (the listen backlog), whatever the
     * server does with it later */
    cr_assert_eq(send(cl[i], req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
  }
  int n101 = 0, n503 = 0, other = 0;
  for (int i = 0; i < N_CLIENTS; i++) {
    int status = wt_read_http(&F.pump, cl[i], NULL, 0, 5000);
    if (status == 101)
      n101++;
    else if (status == 503)
      n503++;
    else
      other++;
  }
  cr_assert_eq(other, 0, "%d clients got no answer (101: %d, 503: %d)", other, n101, n503);
  cr_assert_gt(n101, 0);
  cr_assert_gt(n503, 0, "more clients than descriptors: some must be refused");
  wire_server_stats st;
  cr_assert_eq(wire_server_stats_get(F.server, &st), 0);
  cr_assert_eq(st.refused_sockets, (uint64_t)n503);

  /* the loop idles: no spinning on a listen socket it cannot accept from */
  double t0 = cpu_ms();
  wt_pump_for(&F.pump, 300);
  double used = cpu_ms() - t0;
  cr_assert_lt(used, 100.0, "%.1f ms of CPU in 300 ms of idle pumping", used);

  /* the bystander is still served */
  wt_send_frame(&F.pump, by, 1, 0x1, "still here", 10);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, by, &m, 5000), 0);
  cr_assert_eq(m.len, 10);
  cr_assert_eq(memcmp(m.data, "still here", 10), 0);
  wt_msg_free(&m);
  for (int i = 0; i < N_CLIENTS; i++)
    close(cl[i]);
  close(by);
}
