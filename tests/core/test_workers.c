/*
 * test_workers.c -- workers (supervisor.c, workers.c): wire_server_drain on
 * a server pumped in this thread (the backlog is served, the port closes),
 * then build/wire_echo --workers 2 as a real supervisor with real worker
 * processes: both serve, a SIGKILLed worker is replaced, SIGHUP during a
 * connection storm refuses nothing (the listening sockets are the
 * supervisor's), connections queued while a killed worker restarts are
 * served, SIGTERM closes clients with 1001 and exits 0, and the supervisor
 * leaks no file descriptor.
 */
#include "conn_internal.h"
#include "support/fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- wire_server_drain ------------------------------------------------------------- */

TestSuite(drain, .timeout = 60);

Test(drain, serves_the_backlog_closes_the_port_then_shuts_down) {
  fx f = {0};
  f.echo = 1;
  fx_start(&f, NULL, NULL, "/echo");
  /* connected but not yet accepted: the server has not run since */
  int waiting = wt_connect(f.port);
  cr_assert_geq(waiting, 0);
  sleep_ms(20);
  cr_assert_eq(wire_server_drain(f.server, 5000, NULL, NULL), 0);
  cr_assert_eq(wire_server_drain(f.server, 5000, NULL, NULL), WIRE_ESTATE, "listeners are gone");
  cr_assert_eq(wt_connect(f.port), -1, "nothing listens any more");
  cr_assert_eq(wt_handshake(&f.pump, waiting, "/echo", NULL), 101, "the backlog is served");
  wt_send_frame(&f.pump, waiting, 1, 1, "still here", 10);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&f.pump, waiting, &m, 3000), 0);
  cr_assert_eq(m.len, 10);
  wt_msg_free(&m);
  cr_assert_eq(wire_server_timeout(f.server) == -1, 0, "still serving");
  close(waiting);
  /* the last connection gone, the drain starts the shutdown by itself */
  FX_PUMP_UNTIL(&f, wire_server_process(f.server) == 0);
  cr_assert_eq(wire_server_free(f.server), 0);
}

/* ---- a real supervisor: build/wire_echo --workers 2 -------------------------------- */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

static pid_t start_echo(int port, int workers) {
  char p[16], w[16];
  snprintf(p, sizeof p, "%d", port);
  snprintf(w, sizeof w, "%d", workers);
  pid_t pid = fork();
  if (pid == 0) {
    execl(WIRE_BINARY_DIR "/wire_echo", "wire_echo", "--port", p, "--workers", w, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* The supervisor's children (from /proc), up to cap; returns how many. */
static int children(pid_t sup, pid_t *out, int cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)sup, (int)sup);
  FILE *f = fopen(path, "r");
  int n = 0;
  if (f == NULL)
    return 0;
  int pid;
  while (n < cap && fscanf(f, "%d", &pid) == 1)
    out[n++] = pid;
  fclose(f);
  return n;
}

static int count_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  int n = 0;
  if (d == NULL)
    return -1;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n - 2;
}

static ino_t inode_of(pid_t pid, int fd) {
  char path[64];
  struct stat st;
  if (pid > 0)
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
  return pid > 0 ? (stat(path, &st) == 0 ? st.st_ino : 0) : (fstat(fd, &st) == 0 ? st.st_ino : 0);
}

/* Whether pid holds the socket whose inode is ino. */
static int holds(pid_t pid, ino_t ino) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  int found = 0;
  for (struct dirent *e; d != NULL && !found && (e = readdir(d)) != NULL;)
    found = e->d_name[0] != '.' && inode_of(pid, atoi(e->d_name)) == ino;
  if (d != NULL)
    closedir(d);
  return found;
}

/* Whether the worker pid listens on a socket the supervisor keeps (the
 * two share its inode). */
static int listens_on_kept(pid_t sup, pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)sup);
  DIR *d = opendir(path);
  int found = 0;
  for (struct dirent *e; d != NULL && !found && (e = readdir(d)) != NULL;) {
    ino_t ino = e->d_name[0] != '.' ? inode_of(sup, atoi(e->d_name)) : 0;
    found = ino != 0 && holds(pid, ino);
  }
  if (d != NULL)
    closedir(d);
  return found;
}

/* Both workers listen (so the supervisor made every socket it will keep). */
static int workers_listening(pid_t sup, const pid_t *kids, int n) {
  for (int t = 0; t < 1000; t++) {
    int all = 1;
    for (int i = 0; i < n && all; i++)
      all = listens_on_kept(sup, kids[i]);
    if (all)
      return 1;
    sleep_ms(10);
  }
  return 0;
}

static wt_pump nopump = {NULL, NULL};

/* One connection: handshake, one echo, close. 1 when everything worked. */
static int one_echo(int port) {
  int fd = wt_connect(port);
  if (fd < 0)
    return 0;
  int ok = wt_handshake(&nopump, fd, "/storm", NULL) == 101;
  if (ok) {
    wt_send_frame(&nopump, fd, 1, 1, "ping", 4);
    wt_msg m;
    ok = wt_read_frame(&nopump, fd, &m, 3000) == 0 && m.len == 4;
    if (ok)
      wt_msg_free(&m);
  }
  close(fd);
  return ok;
}

static int wait_serving(int port) {
  for (int i = 0; i < 400; i++) {
    if (one_echo(port))
      return 1;
    sleep_ms(10);
  }
  return 0;
}

TestSuite(supervisor, .timeout = 120);

Test(supervisor, runs_n_workers_and_replaces_a_killed_one) {
  int port = free_port();
  pid_t sup = start_echo(port, 2);
  cr_assert(wait_serving(port));
  pid_t kids[8];
  int n = 0;
  for (int i = 0; i < 200 && (n = children(sup, kids, 8)) != 2; i++)
    sleep_ms(10);
  cr_assert_eq(n, 2);
  cr_assert(workers_listening(sup, kids, 2));
  int fds = count_fds(sup);
  pid_t victim = kids[0], other = kids[1];
  kill(victim, SIGKILL);
  /* opened while the slot has no worker: the kernel queues some of them on
   * its socket, which the supervisor keeps for the replacement */
  int queued[16];
  for (int i = 0; i < 16; i++)
    queued[i] = wt_connect(port);
  for (int i = 0; i < 16; i++) {
    cr_assert_geq(queued[i], 0);
    cr_assert_eq(wt_handshake(&nopump, queued[i], "/storm", NULL), 101, "queued connection %d", i);
    close(queued[i]);
  }
  pid_t now[8];
  int replaced = 0;
  for (int i = 0; i < 500 && !replaced; i++) {
    sleep_ms(10);
    n = children(sup, now, 8);
    replaced = n == 2 && now[0] != victim && now[1] != victim;
  }
  cr_assert(replaced, "a new worker took the killed one's place");
  cr_assert(now[0] == other || now[1] == other, "the other worker was left alone");
  for (int i = 0; i < 20; i++)
    cr_assert(one_echo(port), "connection %d", i);
  cr_assert_eq(count_fds(sup), fds, "the supervisor leaks no descriptor");
  kill(sup, SIGTERM);
  int status;
  cr_assert_eq(waitpid(sup, &status, 0), sup);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

typedef struct storm {
  int port;
  volatile int stop;
  int ok, failed;
  int refused, no_101, no_echo; /* where the failed ones failed */
} storm;

/* Bursts of 16 connections opened at once (so some wait in a listener's
 * backlog when a worker starts draining), then each one's handshake and
 * echo. */
static void *storm_run(void *arg) {
  storm *s = arg;
  enum { BURST = 16 };
  while (!s->stop) {
    int fds[BURST];
    for (int i = 0; i < BURST; i++)
      fds[i] = wt_connect(s->port);
    for (int i = 0; i < BURST; i++) {
      int ok = fds[i] >= 0;
      if (!ok)
        s->refused++;
      else if (!(ok = wt_handshake(&nopump, fds[i], "/storm", NULL) == 101))
        s->no_101++;
      if (ok) {
        wt_send_frame(&nopump, fds[i], 1, 1, "ping", 4);
        wt_msg m;
        ok = wt_read_frame(&nopump, fds[i], &m, 3000) == 0 && m.len == 4;
        if (ok)
          wt_msg_free(&m);
        else
          s->no_echo++;
      }
      if (fds[i] >= 0)
        close(fds[i]);
      if (ok)
        s->ok++;
      else
        s->failed++;
    }
  }
  return NULL;
}

Test(supervisor, sighup_replaces_every_worker_and_refuses_no_connection) {
  signal(SIGPIPE, SIG_IGN);
  int port = free_port();
  pid_t sup = start_echo(port, 2);
  cr_assert(wait_serving(port));
  pid_t before[8];
  int n = 0;
  for (int i = 0; i < 200 && (n = children(sup, before, 8)) != 2; i++)
    sleep_ms(10);
  cr_assert_eq(n, 2);
  cr_assert(workers_listening(sup, before, 2));
  int fds = count_fds(sup);
  storm st[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    st[i] = (storm){port, 0, 0, 0};
    pthread_create(&th[i], NULL, storm_run, &st[i]);
  }
  sleep_ms(300);
  for (int round = 0; round < 3; round++) {
    kill(sup, SIGHUP);
    sleep_ms(1200);
  }
  for (int i = 0; i < 4; i++) {
    st[i].stop = 1;
    pthread_join(th[i], NULL);
  }
  int ok = 0, failed = 0, refused = 0, no_101 = 0, no_echo = 0;
  for (int i = 0; i < 4; i++) {
    ok += st[i].ok;
    failed += st[i].failed;
    refused += st[i].refused;
    no_101 += st[i].no_101;
    no_echo += st[i].no_echo;
  }
  cr_log_info("storm: %d connections served, %d failed", ok, failed);
  cr_assert_eq(failed, 0,
               "%d of %d connections failed (%d refused, %d without 101, %d without echo)", failed,
               ok + failed, refused, no_101, no_echo);
  cr_assert_gt(ok, 100, "only %d connections", ok);
  pid_t after[8];
  for (int i = 0; i < 500 && (n = children(sup, after, 8)) != 2; i++)
    sleep_ms(10); /* the drained ones exit */
  cr_assert_eq(n, 2);
  for (int i = 0; i < 2; i++)
    cr_assert(after[i] != before[0] && after[i] != before[1], "every worker was replaced");
  cr_assert_eq(count_fds(sup), fds, "the supervisor leaks no descriptor");
  kill(sup, SIGTERM);
  int status;
  cr_assert_eq(waitpid(sup, &status, 0), sup);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

Test(supervisor, sigterm_closes_clients_with_1001_and_exits_0) {
  int port = free_port();
  pid_t sup = start_echo(port, 2);
  cr_assert(wait_serving(port));
  int fd = wt_open(&nopump, port, "/held");
  cr_assert_geq(fd, 0);
  kill(sup, SIGTERM);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&nopump, fd, &m, 5000), 0);
  cr_assert_eq(m.opcode, 8);
  cr_assert_eq(m.close_code, 1001);
  wt_msg_free(&m);
  close(fd);
  int status;
  cr_assert_eq(waitpid(sup, &status, 0), sup);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  cr_assert_eq(one_echo(port), 0, "nothing serves the port any more");
}

Test(supervisor, refuses_workers_without_a_fixed_port) {
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", 1);
    dup2(null, 2);
    execl(WIRE_BINARY_DIR "/wire_echo", "wire_echo", "--port", "0", "--workers", "2", (char *)NULL);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  cr_assert_eq(wire_supervise(NULL, NULL, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_worker_index(), -1);
}

/* ---- another process manager: wire_listen_socket + WIRECORE_LISTEN_FD --------------- */

/* build/wire_echo given the kept socket lsock (WIRECORE_LISTEN_FD). */
static pid_t start_on_socket(int port, int lsock) {
  pid_t pid = fork();
  if (pid == 0) {
    char p[16], f[16];
    snprintf(p, sizeof p, "%d", port);
    snprintf(f, sizeof f, "%d", lsock);
    fcntl(lsock, F_SETFD, 0); /* inherited across the exec */
    setenv("WIRECORE_REUSEPORT", "1", 1);
    setenv("WIRECORE_LISTEN_FD", f, 1);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(WIRE_BINARY_DIR "/wire_echo", "wire_echo", "--port", p, (char *)NULL);
    _exit(127);
  }
  return pid;
}

Test(supervisor, a_kept_listening_socket_outlives_its_worker_and_serves_the_next) {
  signal(SIGPIPE, SIG_IGN);
  cr_assert_eq(wire_listen_socket("127.0.0.1", 0), WIRE_EINVAL);
  cr_assert_eq(wire_listen_socket("no such host", 80), WIRE_EINVAL);
  int port = free_port();
  int lsock = wire_listen_socket("localhost", port);
  cr_assert_geq(lsock, 0);
  pid_t w1 = start_on_socket(port, lsock);
  cr_assert(wait_serving(port));
  cr_assert(holds(w1, inode_of(0, lsock)), "the worker listens on the kept socket");
  kill(w1, SIGKILL);
  waitpid(w1, NULL, 0);
  /* nobody accepts now: the connection waits in the kept socket's queue */
  int fd = wt_connect(port);
  cr_assert_geq(fd, 0);
  pid_t w2 = start_on_socket(port, lsock);
  cr_assert_eq(wt_handshake(&nopump, fd, "/queued", NULL), 101, "the next worker serves it");
  wt_send_frame(&nopump, fd, 1, 1, "ping", 4);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&nopump, fd, &m, 3000), 0);
  cr_assert_eq(m.len, 4);
  wt_msg_free(&m);
  close(fd);
  kill(w2, SIGTERM);
  int status;
  cr_assert_eq(waitpid(w2, &status, 0), w2);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  close(lsock);
}
