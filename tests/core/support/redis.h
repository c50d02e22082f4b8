/*
 * redis.h -- a real redis-server for tests: started on 127.0.0.1 on a free
 * port (no persistence, or an fsynced append-only file), stopped, paused, and queried through
 * redis-cli.
 */
#ifndef WIRE_TEST_REDIS_H
#define WIRE_TEST_REDIS_H

#include <sys/types.h>

typedef struct wt_redis {
  pid_t pid;
  int port;
  char password[64]; /* "" = none */
} wt_redis;

/* Start redis-server (port 0 = pick a free one; password may be NULL) and
 * wait until it answers. Returns 0 or -1. */
int wt_redis_start(wt_redis *r, int port, const char *password);
/* The same with persistence: an append-only file fsynced at every write in
 * dir (which must exist), so a restart on the same port and dir keeps
 * everything. */
int wt_redis_start_aof(wt_redis *r, int port, const char *dir);
/* SIGKILL and reap. */
void wt_redis_kill(wt_redis *r);
/* Run redis-cli with the arguments (one string, passed to sh) and return the
 * first line of its output as a number (or -1). */
long wt_redis_cli_num(const wt_redis *r, const char *args);
/* Number of subscribers Redis has for a channel. */
long wt_redis_numsub(const wt_redis *r, const char *channel);

#endif
