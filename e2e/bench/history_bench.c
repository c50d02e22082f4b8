/*
 * history_bench.c -- what topic history costs: server CPU per publish to a
 * topic with history and to one without (the same value, the same number of
 * real TCP subscribers on 127.0.0.1), Redis CPU per publish when a Redis
 * broker is attached (read from /proc of redis-server), and the time to
 * recover 1,000 missed publications (from the upgrade request of a client
 * with a position to its 1,000th replayed message). With Redis, history
 * lives in Redis Streams: a history publish is delivered when Redis
 * announces it (its CPU counts until the last one is delivered), and
 * recovery is measured twice: on the publishing server (its mirror has the
 * publications) and on a second server on the same Redis that never saw
 * the topic (it loads the stream first).
 *
 * Usage: history_bench [--subs N] [--publishes N] [--redis URL --redis-pid PID]
 * The server is pumped in this thread (its CPU is this thread's CPU time,
 * writes to the subscribers included); the clients read in another thread.
 * Five alternating rounds of N publishes each (after a warm-up); the median
 * round counts. Prints a markdown table; asserts nothing.
 * e2e/bench/history_bench.sh runs it without and with Redis.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wirecore.h"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds of CPU redis-server used so far (utime + stime), or -1. */
static double redis_cpu(int pid) {
  if (pid <= 0)
    return -1;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the server ---------------------------------------------------------------- */

static wire_server *S, *S2; /* S2: a second server on the same Redis (or NULL) */

static int on_connect(wire_conn *c, const wire_request *req, void *ud) {
  (void)ud;
  wire_str t = wire_request_param(req, "topic");
  wire_str since = wire_request_query(req, "since");
  if (since.ptr != NULL)
    return wire_conn_subscribe_since(c, t.ptr, t.len, since.ptr, since.len, NULL) ? 500 : 0;
  return wire_conn_subscribe(c, t.ptr, t.len) ? 500 : 0;
}

static void pump(int ms) {
  struct pollfd pfd[2] = {{wire_server_fd(S), POLLIN, 0},
                          {S2 ? wire_server_fd(S2) : -1, POLLIN, 0}};
  int t = wire_server_timeout(S), t2 = S2 ? wire_server_timeout(S2) : -1;
  if (t2 >= 0 && (t < 0 || t2 < t))
    t = t2;
  poll(pfd, 2, t < 0 || t > ms ? ms : t);
  wire_server_process(S);
  if (S2)
    wire_server_process(S2);
}

/* The seq of a history topic's position on S (-1: not a history topic). */
static long long topic_seq(const char *topic) {
  char pos[WIRE_POSITION_MAX];
  if (wire_server_topic_position(S, topic, strlen(topic), pos, sizeof pos) <= 0)
    return -1;
  return atoll(pos + 17);
}

/* ---- clients ------------------------------------------------------------------- */

static int dial(int port, const char *path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  char req[512];
  int n =
      snprintf(req, sizeof req,
               "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
               path);
  if (write(fd, req, (size_t)n) != n)
    exit(1);
  return fd;
}

/* Read the 101 head (byte by byte: frames may follow it at once). */
static void read_head(int fd) {
  char c, last[4] = {0};
  while (read(fd, &c, 1) == 1) {
    memmove(last, last + 1, 3);
    last[3] = c;
    if (memcmp(last, "\r\n\r\n", 4) == 0)
      return;
  }
  exit(1);
}

typedef struct readers {
  int *fds;
  int n;
  atomic_int stop;
  atomic_long bytes;
} readers;

/* Drain every subscriber socket until told to stop. */
static void *read_all(void *arg) {
  readers *r = arg;
  struct pollfd *p = calloc((size_t)r->n, sizeof *p);
  char buf[65536];
  for (int i = 0; i < r->n; i++)
    p[i] = (struct pollfd){r->fds[i], POLLIN, 0};
  while (!atomic_load(&r->stop)) {
    if (poll(p, (nfds_t)r->n, 20) <= 0)
      continue;
    for (int i = 0; i < r->n; i++)
      if (p[i].revents & POLLIN) {
        ssize_t k = read(p[i].fd, buf, sizeof buf);
        if (k > 0)
          atomic_fetch_add(&r->bytes, k);
      }
  }
  free(p);
  return NULL;
}

typedef struct recovery {
  int port;
  char path[256];
  int want;
  double start, end;
  atomic_int done;
} recovery;

/* Connect with a position and read `want` frames: the replay. */
static void *recover(void *arg) {
  recovery *r = arg;
  r->start = wall_now();
  int fd = dial(r->port, r->path);
  read_head(fd);
  static uint8_t buf[1 << 20];
  size_t have = 0;
  int frames = 0;
  while (frames < r->want) {
    ssize_t k = read(fd, buf + have, sizeof buf - have);
    if (k <= 0)
      exit(1);
    have += (size_t)k;
    size_t off = 0;
    for (;;) { /* whole frames in buf[off..have) */
      if (have - off < 2)
        break;
      size_t len = buf[off + 1] & 0x7f, hl = 2;
      if (len == 126) {
        if (have - off < 4)
          break;
        len = (size_t)buf[off + 2] << 8 | buf[off + 3];
        hl = 4;
      } else if (len == 127) {
        break; /* never this big here */
      }
      if (have - off < hl + len)
        break;
      off += hl + len;
      frames++;
    }
    memmove(buf, buf + off, have - off);
    have -= off;
  }
  r->end = wall_now();
  close(fd);
  atomic_store(&r->done, 1);
  return NULL;
}

/* ---- measurements -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

/* CPU seconds of this thread (server) and of Redis to publish n values to topic. */
static void publish_run(const char *topic, int n, int redis_pid, double *cpu, double *rcpu) {
  wire_doc *d;
  wire_doc_new(&d);
  char text[] = "hello from the history benchmark, a chat-sized message";
  long long seq0 = topic_seq(topic);
  double r0 = redis_cpu(redis_pid), c0 = cpu_now();
  for (int i = 0; i < n; i++) {
    wire_value *o = wire_new_object(d, 3);
    wire_object_set(d, o, "n", 1, wire_new_int(d, i));
    wire_object_set(d, o, "user", 4, wire_new_string(d, "ann", 3));
    wire_object_set(d, o, "text", 4, wire_new_string(d, text, sizeof text - 1));
    if (wire_server_publish_value(S, topic, strlen(topic), o, NULL, NULL) < 0)
      exit(1);
    wire_doc_reset(d);
    pump(0); /* its writes, one per subscriber: both topics batch alike */
  }
  for (int i = 0; i < 20; i++)
    pump(1);
  /* with Redis, history publishes are delivered when announced: all of them */
  for (int i = 0; seq0 >= 0 && topic_seq(topic) < seq0 + n && i < 100000; i++)
    pump(1);
  *cpu = cpu_now() - c0;
  for (int i = 0; i < 50; i++) /* Redis catches up before its CPU is read */
    pump(2);
  double r1 = redis_cpu(redis_pid);
  *rcpu = r0 >= 0 && r1 >= 0 ? r1 - r0 : -1;
  wire_doc_free(d);
}

int main(int argc, char **argv) {
  int subs = 10, publishes = 20000, redis_pid = 0;
  const char *redis = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--subs") == 0)
      subs = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--publishes") == 0)
      publishes = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--redis") == 0)
      redis = argv[i + 1];
    else if (strcmp(argv[i], "--redis-pid") == 0)
      redis_pid = atoi(argv[i + 1]);
  }
  if (wire_server_new(NULL, &S) != 0)
    return 1;
  wire_callbacks cb = {0};
  cb.on_connect = on_connect;
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_JSON;
  eo.max_backpressure = 64u << 20;
  if (wire_endpoint_add(S, "/t/{topic}", &eo, &cb, NULL, NULL, NULL) != 0 ||
      wire_server_topic_history(S, "hist", 4, 1000, 0) != 0 ||
      wire_server_topic_history(S, "rec*", 4, 2000, 0) != 0)
    return 1;
  if (redis != NULL && wire_server_use_redis(S, redis, NULL, NULL) != 0) {
    fprintf(stderr, "bad redis URL\n");
    return 1;
  }
  if (redis != NULL && (wire_server_new(NULL, &S2) != 0 ||
                        wire_endpoint_add(S2, "/t/{topic}", &eo, &cb, NULL, NULL, NULL) != 0 ||
                        wire_server_topic_history(S2, "rec*", 4, 2000, 0) != 0 ||
                        wire_server_use_redis(S2, redis, NULL, NULL) != 0 ||
                        wire_server_listen(S2, "127.0.0.1", 0) != 0))
    return 1;
  if (wire_server_listen(S, "127.0.0.1", 0) != 0)
    return 1;
  int port = wire_server_port(S);
  for (int i = 0; redis != NULL && i < 500; i++) { /* the brokers come up */
    wire_broker_stats st, st2;
    if (wire_server_broker_stats(S, &st) == 0 && st.state == WIRE_BROKER_UP &&
        wire_server_broker_stats(S2, &st2) == 0 && st2.state == WIRE_BROKER_UP)
      break;
    pump(10);
  }

  readers rd = {calloc((size_t)subs * 2, sizeof(int)), subs * 2, 0, 0};
  for (int i = 0; i < subs * 2; i++) {
    rd.fds[i] = dial(port, i < subs ? "/t/plain" : "/t/hist");
    while (wire_server_subscriber_count(S, i < subs ? "plain" : "hist", i < subs ? 5 : 4) <
           (size_t)(i % subs + 1))
      pump(5);
    read_head(rd.fds[i]);
  }
  pthread_t th;
  pthread_create(&th, NULL, read_all, &rd);

  /* alternating rounds after a warm-up; the median round of each counts */
  enum { ROUNDS = 5 };
  double cp[ROUNDS], ch[ROUNDS], rp[ROUNDS], rh[ROUNDS], ignore_cpu, ignore_r;
  publish_run("plain", publishes / 10, 0, &ignore_cpu, &ignore_r);
  publish_run("hist", publishes / 10, 0, &ignore_cpu, &ignore_r);
  for (int i = 0; i < ROUNDS; i++) {
    publish_run("plain", publishes, redis_pid, &cp[i], &rp[i]);
    publish_run("hist", publishes, redis_pid, &ch[i], &rh[i]);
  }
  double cpu_plain = median(cp, ROUNDS), cpu_hist = median(ch, ROUNDS);
  double r_plain = median(rp, ROUNDS), r_hist = median(rh, ROUNDS);
  atomic_store(&rd.stop, 1);
  pthread_join(th, NULL);

  /* recovering 1,000 missed publications, 5 times (and on S2, cold) */
  double best = 1e9, worst = 0, sum = 0, best2 = 1e9, worst2 = 0, sum2 = 0;
  enum { RUNS = 5, MISSED = 1000 };
  for (int run = 0; run < RUNS; run++) {
    char topic[16], pos[WIRE_POSITION_MAX];
    snprintf(topic, sizeof topic, "rec%d", run);
    wire_server_topic_position(S, topic, strlen(topic), pos, sizeof pos);
    publish_run(topic, MISSED, 0, &ignore_cpu, &ignore_r);
    for (int on2 = 0; on2 <= (S2 != NULL); on2++) {
      recovery rc = {0};
      rc.port = on2 ? wire_server_port(S2) : port;
      rc.want = MISSED;
      snprintf(rc.path, sizeof rc.path, "/t/%s?since=%s", topic, pos);
      pthread_t rt;
      pthread_create(&rt, NULL, recover, &rc);
      while (!atomic_load(&rc.done))
        pump(1);
      pthread_join(rt, NULL);
      double ms = (rc.end - rc.start) * 1000;
      *(on2 ? &sum2 : &sum) += ms;
      if (on2) {
        best2 = ms < best2 ? ms : best2;
        worst2 = ms > worst2 ? ms : worst2;
      } else {
        best = ms < best ? ms : best;
        worst = ms > worst ? ms : worst;
      }
    }
  }

  printf("| measurement | value |\n|---|---|\n");
  printf("| subscribers per topic | %d |\n", subs);
  printf("| server CPU per publish, no history | %.2f µs |\n", cpu_plain / publishes * 1e6);
  printf("| server CPU per publish, history | %.2f µs |\n", cpu_hist / publishes * 1e6);
  printf("| history / plain | %.2f× |\n", cpu_hist / cpu_plain);
  if (r_plain >= 0 && r_hist >= 0) {
    printf("| Redis CPU per publish, no history | %.2f µs |\n", r_plain / publishes * 1e6);
    printf("| Redis CPU per publish, history | %.2f µs |\n", r_hist / publishes * 1e6);
  }
  printf("| recover %d missed (upgrade request → last replayed message), mean of %d | %.2f ms "
         "(best %.2f, worst %.2f) |\n",
         (int)MISSED, (int)RUNS, sum / RUNS, best, worst);
  if (S2 != NULL)
    printf("| recover %d missed on another server that never saw the topic (loads the stream), "
           "mean of %d | %.2f ms (best %.2f, worst %.2f) |\n",
           (int)MISSED, (int)RUNS, sum2 / RUNS, best2, worst2);
  for (int i = 0; i < subs * 2; i++)
    close(rd.fds[i]);
  wire_server_shutdown(S, 100, NULL, NULL);
  if (S2)
    wire_server_shutdown(S2, 100, NULL, NULL);
  for (int i = 0; i < 50; i++)
    pump(5);
  wire_server_free(S);
  if (S2)
    wire_server_free(S2);
  return 0;
}
