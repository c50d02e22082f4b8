/*
 * redis.c -- see redis.h.
 */
#include "redis.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int redis_spawn(wt_redis *r, int port, const char *password, const char *aof_dir);

int wt_redis_start(wt_redis *r, int port, const char *password) {
  return redis_spawn(r, port, password, NULL);
}

int wt_redis_start_aof(wt_redis *r, int port, const char *dir) {
  return redis_spawn(r, port, NULL, dir);
}

static int redis_spawn(wt_redis *r, int port, const char *password, const char *aof_dir) {
  r->port = port ? port : free_port();
  snprintf(r->password, sizeof r->password, "%s", password ? password : "");
  char portbuf[16];
  snprintf(portbuf, sizeof portbuf, "%d", r->port);
  r->pid = fork();
  if (r->pid < 0)
    return -1;
  if (r->pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    if (aof_dir)
      execlp("redis-server", "redis-server", "--port", portbuf, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", aof_dir, "--daemonize",
             "no", (char *)NULL);
    else if (password)
      execlp("redis-server", "redis-server", "--port", portbuf, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--requirepass", password, (char *)NULL);
    else
      execlp("redis-server", "redis-server", "--port", portbuf, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 500; i++) {
    if (wt_redis_cli_num(r, "PING >/dev/null && echo 1") == 1)
      return 0;
    sleep_ms(10);
  }
  wt_redis_kill(r);
  return -1;
}

void wt_redis_kill(wt_redis *r) {
  if (r->pid <= 0)
    return;
  kill(r->pid, SIGKILL);
  waitpid(r->pid, NULL, 0);
  r->pid = 0;
}

long wt_redis_cli_num(const wt_redis *r, const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %d %s%s 2>/dev/null %s", r->port,
           r->password[0] ? "--no-auth-warning -a " : "", r->password, args);
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return -1;
  char line[256] = "";
  long v = -1;
  if (fgets(line, sizeof line, p) != NULL) {
    char *end = NULL;
    v = strtol(line, &end, 10);
    if (end == line)
      v = -1;
  }
  pclose(p);
  return v;
}

long wt_redis_numsub(const wt_redis *r, const char *channel) {
  char args[512];
  snprintf(args, sizeof args, "PUBSUB NUMSUB '%s' | sed -n 2p", channel);
  return wt_redis_cli_num(r, args);
}
