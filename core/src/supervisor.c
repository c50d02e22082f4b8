/*
 * supervisor.c -- wire_supervise: fork N workers, restart the ones that die
 * (exponential backoff while they keep dying young), forward SIGINT/SIGTERM
 * and wait for every worker (SIGKILL after a deadline), and on SIGHUP replace
 * the workers one at a time: start the new one, wait until it listens (it
 * says so on its channel), then tell the old one to drain (SIGHUP).
 *
 * The listening sockets belong to the supervisor: a worker asks for one per
 * address on its channel and gets the socket of its slot (SO_REUSEPORT, one
 * per slot, so the kernel spreads connections over the slots). A worker's
 * replacement gets the same socket, so a drained worker closing its copy
 * resets nothing waiting in the queue; a killed worker's queue waits for the
 * restart (unless the slot keeps crashing: then its sockets are closed and
 * the other slots take the port).
 * Signals reach the loop through a self-pipe; one line per event on stderr.
 */
#include "internal.h"
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 1024u
#define YOUNG_MS 1000u      /* a worker that dies younger than this backs off more */
#define KEEP_QUEUE_MS 1000u /* a slot restarting later than this closes its sockets */

typedef struct lsock {
  struct sockaddr_storage addr;
  socklen_t len;
  int fd;
} lsock;

typedef struct slot {
  pid_t pid;      /* 0: not running */
  pid_t old;      /* being replaced: the previous worker, drained once pid is ready */
  int ready;      /* pid listens */
  int ch, old_ch; /* the supervisor's end of pid's and old's channels; -1: none */
  lsock *socks;   /* the slot's listening sockets, shared by pid and old */
  unsigned n_socks;
  uint64_t started, restart_at, ready_by;
  unsigned delay; /* next restart delay */
} slot;

typedef struct sup {
  const char *name;
  unsigned n, min_ms, max_ms, stop_ms, ready_ms;
  wire_worker_fn fn;
  void *ud;
  void (*before_fork)(void *ud);
  void (*after_fork)(int child, void *ud);
  int (*fork_fn)(void *ud);
  slot *w;
  pid_t *retiring; /* draining old workers, reaped when they exit */
  unsigned n_retiring;
  int sig[2];
  int stopping, failed;
  uint64_t kill_at;
  struct pollfd *pfd; /* the signal pipe, then each slot's ch and old_ch */
  int rolling;        /* SIGHUP: slot being replaced + 1, 0 = none */
  int hup_pending;    /* another SIGHUP came during a replace */
} sup;

static int sup_sig_fd =
    -1; /* the handler's only state: the self-pipe (one supervisor per process) */

static void on_signal(int signo) {
  int saved = errno;
  unsigned char b = (unsigned char)signo;
  if (sup_sig_fd >= 0) {
    ssize_t n = write(sup_sig_fd, &b, 1);
    (void)n;
  }
  errno = saved;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void logf_(const sup *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const sup *S, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s\n", S->name, line);
  fflush(stderr);
}

/* ---- starting a worker ------------------------------------------------------- */

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void close_socks(slot *w) {
  for (unsigned k = 0; k < w->n_socks; k++)
    close(w->socks[k].fd);
  free(w->socks);
  w->socks = NULL;
  w->n_socks = 0;
}

/* In the child: default signal handling, every descriptor of the
 * supervisor's closed but the child's channel, the environment that makes
 * it a worker. */
static void child(sup *S, unsigned index, int ch) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction(sigs[i], &sa, NULL);
  sup_sig_fd = -1;
  close(S->sig[0]);
  close(S->sig[1]);
  for (unsigned i = 0; i < S->n; i++) { /* another slot's socket kept here would
                                           hold its queue after that slot's worker died */
    close_fd(&S->w[i].ch);
    close_fd(&S->w[i].old_ch);
    close_socks(&S->w[i]);
  }
  fcntl(ch, F_SETFD, 0); /* kept across an exec */
  char v[24];
  snprintf(v, sizeof v, "%d", ch);
  setenv("WIRECORE_WORKER_FD", v, 1);
  snprintf(v, sizeof v, "%u", index);
  setenv("WIRECORE_WORKER_INDEX", v, 1);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int status = S->fn(index, S->ud);
  fflush(NULL);
  _exit(status & 0xff);
}

/* Fork worker `index` into w->pid. Returns 0 or -1 (fork failed: retried
 * with the backoff). */
static int spawn(sup *S, unsigned index) {
  slot *w = &S->w[index];
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    logf_(S, "cannot start worker %u: %s", index, strerror(errno));
    w->restart_at = now_ms() + w->delay;
    return -1;
  }
  fflush(NULL); /* nothing buffered is written twice */
  if (S->before_fork)
    S->before_fork(S->ud);
  pid_t pid = S->fork_fn ? (pid_t)S->fork_fn(S->ud) : fork();
  if (S->after_fork)
    S->after_fork(pid == 0, S->ud);
  if (pid < 0) {
    logf_(S, "cannot start worker %u: %s", index, strerror(errno));
    close(sv[0]);
    close(sv[1]);
    w->restart_at = now_ms() + w->delay;
    return -1;
  }
  if (pid == 0) {
    close(sv[0]);
    child(S, index, sv[1]);
  }
  close(sv[1]);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  w->ch = sv[0];
  w->pid = pid;
  w->ready = 0;
  w->started = now_ms();
  w->restart_at = 0;
  w->ready_by = w->started + S->ready_ms;
  logf_(S, "worker %u started (pid %d)", index, (int)pid);
  return 0;
}

/* ---- events -------------------------------------------------------------- */

static void retire(sup *S, slot *w) {
  S->retiring[S->n_retiring++] = w->old;
  kill(w->old, SIGHUP); /* drain: finish, then exit */
  close_fd(&w->old_ch); /* a draining worker asks for nothing more */
  w->old = 0;
}

/* Step the SIGHUP replacement: the slot's new worker listens, so the old
 * one drains and the next slot starts. */
static void roll(sup *S) {
  while (S->rolling > 0 && !S->stopping) {
    unsigned i = (unsigned)S->rolling - 1;
    slot *w = &S->w[i];
    if (w->old == 0) { /* start the replacement */
      if (w->pid == 0)
        return; /* the slot is waiting for a restart; it rolls on when ready */
      w->old = w->pid;
      w->old_ch = w->ch;
      w->pid = 0;
      w->ch = -1;
      if (spawn(S, i) != 0) {
        w->pid = w->old;
        w->ch = w->old_ch;
        w->old = 0;
        w->old_ch = -1;
        return;
      }
      return;
    }
    if (!w->ready)
      return;
    logf_(S, "worker %u replaced: pid %d drains, pid %d serves", i, (int)w->old, (int)w->pid);
    retire(S, w);
    S->rolling = i + 1 < S->n ? (int)i + 2 : 0;
    if (S->rolling == 0) {
      logf_(S, "all %u workers replaced", S->n);
      if (S->hup_pending) {
        S->hup_pending = 0;
        S->rolling = 1;
        logf_(S, "SIGHUP: replacing the workers one at a time");
      }
    }
  }
}

/* The slot's socket for an address, made (SO_REUSEPORT, bound, not yet
 * listening: the worker's listen does that) on first use. Returns the
 * descriptor or -errno. */
static int slot_socket(slot *w, const struct sockaddr_storage *a, socklen_t len) {
  for (unsigned k = 0; k < w->n_socks; k++)
    if (w->socks[k].len == len && memcmp(&w->socks[k].addr, a, len) == 0)
      return w->socks[k].fd;
  lsock *more = realloc(w->socks, (w->n_socks + 1) * sizeof *more);
  if (more == NULL)
    return -ENOMEM;
  w->socks = more;
  int fd = wire__reuseport_socket((const struct sockaddr *)a, len);
  if (fd < 0)
    return fd;
  lsock *l = &w->socks[w->n_socks++];
  memcpy(&l->addr, a, len);
  l->len = len;
  l->fd = fd;
  return fd;
}

/* Answer a worker's request for a listening socket: 0 and the socket, or
 * -errno alone. */
static void answer_listen(slot *w, int ch, const wire__ch_msg *m) {
  int32_t r = -EINVAL;
  int fd = -1;
  if (m->addrlen > 0 && m->addrlen <= sizeof m->addr &&
      (m->addr.ss_family == AF_INET || m->addr.ss_family == AF_INET6)) {
    fd = slot_socket(w, &m->addr, (socklen_t)m->addrlen);
    r = fd >= 0 ? 0 : fd;
  }
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {&r, sizeof r};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (r == 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  ssize_t n = sendmsg(ch, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n; /* a worker gone meanwhile: reaped() cleans up */
}

/* What a worker sent on its channel (`ch` of slot w, its current or its
 * replaced worker's); a closed channel is closed here too. */
static void on_channel(sup *S, slot *w, int *ch) {
  wire__ch_msg m;
  for (;;) {
    memset(&m, 0, sizeof m);
    ssize_t n = recv(*ch, &m, sizeof m, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      break;
    if (n <= 0) { /* the worker closed it (or exited): nothing more comes */
      close_fd(ch);
      break;
    }
    if (m.type == WIRE__CH_READY && ch == &w->ch && (pid_t)m.value == w->pid)
      w->ready = 1;
    else if (m.type == WIRE__CH_LISTEN && !S->stopping)
      answer_listen(w, *ch, &m);
  }
  roll(S);
}

static void describe(char *buf, size_t cap, int status) {
  if (WIFSIGNALED(status))
    snprintf(buf, cap, "was killed by signal %d", WTERMSIG(status));
  else
    snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
}

/* A worker is gone: expected (stopping, retired) or not (restart it). */
static void reaped(sup *S, pid_t pid, int status) {
  char how[64];
  describe(how, sizeof how, status);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    S->failed |= S->stopping;
  for (unsigned k = 0; k < S->n_retiring; k++)
    if (S->retiring[k] == pid) {
      S->retiring[k] = S->retiring[--S->n_retiring];
      logf_(S, "drained worker (pid %d) %s", (int)pid, how);
      return;
    }
  for (unsigned i = 0; i < S->n; i++) {
    slot *w = &S->w[i];
    if (w->old == pid) { /* died while its replacement was starting */
      w->old = 0;
      close_fd(&w->old_ch);
      logf_(S, "worker %u (pid %d) %s during its replacement", i, (int)pid, how);
      return;
    }
    if (w->pid != pid)
      continue;
    w->pid = 0;
    w->ready = 0;
    close_fd(&w->ch);
    if (S->stopping) {
      logf_(S, "worker %u (pid %d) %s", i, (int)pid, how);
      return;
    }
    uint64_t age = now_ms() - w->started;
    w->delay = age < YOUNG_MS ? (w->delay * 2 > S->max_ms ? S->max_ms : w->delay * 2) : S->min_ms;
    w->restart_at = now_ms() + w->delay;
    if (w->old != 0) { /* a replacement that died: the old worker carries on */
      w->pid = w->old;
      w->ch = w->old_ch;
      w->ready = 1;
      w->old = 0;
      w->old_ch = -1;
      w->restart_at = 0;
      logf_(S, "replacement worker %u (pid %d) %s; pid %d keeps serving", i, (int)pid, how,
            (int)w->pid);
      S->rolling = i + 1 < S->n ? (int)i + 2 : 0;
      roll(S);
      return;
    }
    if (w->delay > KEEP_QUEUE_MS)
      close_socks(w); /* crashing: the other slots take what comes meanwhile */
    logf_(S, "worker %u (pid %d) %s; restarting in %u ms", i, (int)pid, how, w->delay);
    return;
  }
}

static unsigned live(const sup *S) {
  unsigned n = S->n_retiring;
  for (unsigned i = 0; i < S->n; i++)
    n += (S->w[i].pid != 0) + (S->w[i].old != 0);
  return n;
}

static void signal_all(sup *S, int signo) {
  for (unsigned i = 0; i < S->n; i++) {
    if (S->w[i].pid)
      kill(S->w[i].pid, signo);
    if (S->w[i].old)
      kill(S->w[i].old, signo);
  }
  for (unsigned k = 0; k < S->n_retiring; k++)
    kill(S->retiring[k], signo);
}

static void on_signals(sup *S) {
  unsigned char b[64];
  ssize_t n;
  while ((n = read(S->sig[0], b, sizeof b)) > 0)
    for (ssize_t k = 0; k < n; k++) {
      int signo = b[k];
      if (signo == SIGCHLD) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
          reaped(S, pid, status);
      } else if ((signo == SIGINT || signo == SIGTERM) && !S->stopping) {
        S->stopping = 1;
        S->kill_at = now_ms() + S->stop_ms;
        for (unsigned i = 0; i < S->n; i++)
          close_socks(&S->w[i]); /* the workers close theirs as they stop */
        logf_(S, "%s: stopping %u workers", signo == SIGINT ? "SIGINT" : "SIGTERM", live(S));
        signal_all(S, SIGTERM);
      } else if (signo == SIGHUP && !S->stopping) {
        if (S->rolling) {
          S->hup_pending = 1;
        } else {
          S->rolling = 1;
          logf_(S, "SIGHUP: replacing the workers one at a time");
        }
      }
    }
  roll(S);
}

/* Restarts that are due, replacements that never got ready, the stop
 * deadline. Returns the poll timeout until the next of them (-1: none). */
static int timers(sup *S) {
  uint64_t now = now_ms(), next = UINT64_MAX;
  if (S->stopping) {
    if (now >= S->kill_at) {
      logf_(S, "stop deadline passed: killing %u workers", live(S));
      S->failed = 1;
      signal_all(S, SIGKILL);
      S->kill_at = now + 1000;
    }
    next = S->kill_at;
  }
  for (unsigned i = 0; i < S->n && !S->stopping; i++) {
    slot *w = &S->w[i];
    if (w->pid == 0 && w->restart_at != 0) {
      if (now >= w->restart_at)
        spawn(S, i);
      else if (w->restart_at < next)
        next = w->restart_at;
    }
    if (w->old != 0 && w->pid != 0 && !w->ready) {
      if (now >= w->ready_by) {
        logf_(S, "replacement worker %u (pid %d) did not listen in %u ms: stopping it", i,
              (int)w->pid, S->ready_ms);
        kill(w->pid, SIGKILL); /* reaped() puts the old one back */
      } else if (w->ready_by < next) {
        next = w->ready_by;
      }
    }
  }
  roll(S);
  return next == UINT64_MAX ? -1 : (int)(next - now);
}

/* ---- setup ---------------------------------------------------------------- */

static int pipe_nb(int fds[2]) {
  if (pipe(fds) != 0)
    return -1;
  for (int i = 0; i < 2; i++)
    if (fcntl(fds[i], F_SETFL, O_NONBLOCK) != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0)
      return -1;
  return 0;
}

static void catch_signals(sup *S, struct sigaction old[4]) {
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
  sup_sig_fd = S->sig[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 4; i++)
    sigaction(sigs[i], &sa, &old[i]);
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < 4; i++)
    sigaddset(&set, sigs[i]);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void restore_signals(struct sigaction old[4]) {
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
  for (int i = 0; i < 4; i++)
    sigaction(sigs[i], &old[i], NULL);
  sup_sig_fd = -1;
}

static int sup_init(sup *S, const wire_supervisor_options *o, wire_worker_fn fn, void *ud) {
  memset(S, 0, sizeof *S);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  S->n = o && o->workers ? o->workers : (cpus > 0 ? (unsigned)cpus : 1);
  if (S->n > MAX_WORKERS)
    S->n = MAX_WORKERS;
  S->min_ms = o && o->restart_min_ms ? o->restart_min_ms : 100;
  S->max_ms = o && o->restart_max_ms ? o->restart_max_ms : 5000;
  if (S->max_ms < S->min_ms)
    S->max_ms = S->min_ms;
  S->stop_ms = o && o->stop_timeout_ms ? o->stop_timeout_ms : 15000;
  S->ready_ms = o && o->ready_timeout_ms ? o->ready_timeout_ms : 10000;
  S->name = o && o->name ? o->name : "wirecore";
  S->fn = fn;
  S->ud = ud;
  S->before_fork = o ? o->before_fork : NULL;
  S->after_fork = o ? o->after_fork : NULL;
  S->fork_fn = o ? o->fork : NULL;
  S->sig[0] = S->sig[1] = -1;
  S->w = calloc(S->n, sizeof *S->w);
  S->retiring = calloc(S->n * 4u + 16u, sizeof *S->retiring);
  S->pfd = calloc(S->n * 2u + 1u, sizeof *S->pfd);
  if (S->w == NULL || S->retiring == NULL || S->pfd == NULL || pipe_nb(S->sig) != 0)
    return -1;
  for (unsigned i = 0; i < S->n; i++) {
    S->w[i].delay = S->min_ms;
    S->w[i].ch = S->w[i].old_ch = -1;
  }
  return 0;
}

static void sup_free(sup *S) {
  for (int i = 0; i < 2; i++)
    close_fd(&S->sig[i]);
  for (unsigned i = 0; S->w != NULL && i < S->n; i++) {
    close_fd(&S->w[i].ch);
    close_fd(&S->w[i].old_ch);
    close_socks(&S->w[i]);
  }
  free(S->w);
  free(S->retiring);
  free(S->pfd);
}

/* One poll over the signal pipe and every worker's channel; handles what
 * arrived. Returns -1 when poll fails. */
static int wait_events(sup *S, int timeout) {
  unsigned n = 0;
  S->pfd[n++] = (struct pollfd){S->sig[0], POLLIN, 0};
  for (unsigned i = 0; i < S->n; i++) {
    S->pfd[n++] = (struct pollfd){S->w[i].ch, POLLIN, 0}; /* -1: ignored by poll */
    S->pfd[n++] = (struct pollfd){S->w[i].old_ch, POLLIN, 0};
  }
  if (poll(S->pfd, n, timeout) < 0)
    return errno == EINTR ? 0 : -1;
  for (unsigned i = 0; i < S->n; i++) { /* a channel moved meanwhile waits for the next poll */
    slot *w = &S->w[i];
    if (S->pfd[1 + 2 * i].revents && w->ch >= 0 && S->pfd[1 + 2 * i].fd == w->ch)
      on_channel(S, w, &w->ch);
    if (S->pfd[2 + 2 * i].revents && w->old_ch >= 0 && S->pfd[2 + 2 * i].fd == w->old_ch)
      on_channel(S, w, &w->old_ch);
  }
  if (S->pfd[0].revents & POLLIN)
    on_signals(S);
  return 0;
}

int wire_supervise(const wire_supervisor_options *o, wire_worker_fn fn, void *ud) {
  if (fn == NULL)
    return WIRE_EINVAL;
  sup S;
  if (sup_init(&S, o, fn, ud) != 0) {
    sup_free(&S);
    return WIRE_EUV;
  }
  struct sigaction old[4];
  catch_signals(&S, old);
  logf_(&S, "supervising %u workers (pid %d)", S.n, (int)getpid());
  if (wire__metrics_share(S.n) != 0) /* metrics: one counter slot per worker */
    logf_(&S, "no shared metrics region: each worker reports only its own counters");
  for (unsigned i = 0; i < S.n; i++)
    spawn(&S, i);
  while (!S.stopping || live(&S) > 0) {
    int timeout = timers(&S);
    if (S.stopping && live(&S) == 0)
      break;
    if (wait_events(&S, timeout) != 0)
      break;
  }
  logf_(&S, "all workers stopped");
  restore_signals(old);
  int failed = S.failed;
  sup_free(&S);
  return failed ? 1 : 0;
}
