/*
 * wsclient.c -- the scripted test client (see wsclient.h).
 */
#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

uint64_t wt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void wt_pump_once(wt_pump *p, int max_ms) {
  if (p->loop == NULL && p->server == NULL) { /* the server runs elsewhere */
    usleep((useconds_t)(max_ms < 2 ? max_ms : 2) * 1000);
    return;
  }
  if (p->loop != NULL) {
    uv_loop_t *loop = p->loop;
    int t = uv_backend_timeout(loop);
    if (t < 0 || t > max_ms)
      t = max_ms;
    struct pollfd pfd = {uv_backend_fd(loop), POLLIN, 0};
    poll(&pfd, 1, t);
    uv_run(loop, UV_RUN_NOWAIT);
    return;
  }
  int t = wire_server_timeout(p->server);
  if (t < 0 || t > max_ms)
    t = max_ms;
  struct pollfd pfd = {wire_server_fd(p->server), POLLIN, 0};
  poll(&pfd, 1, t);
  wire_server_process(p->server);
}

void wt_pump_for(wt_pump *p, int ms) {
  uint64_t end = wt_now_ms() + (uint64_t)ms;
  for (uint64_t now = wt_now_ms(); now < end; now = wt_now_ms())
    wt_pump_once(p, (int)(end - now));
}

int wt_pump_until(wt_pump *p, const volatile int *flag, int ms) {
  uint64_t end = wt_now_ms() + (uint64_t)ms;
  while (!*flag && wt_now_ms() < end)
    wt_pump_once(p, 5);
  return *flag;
}

int wt_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* The kernel completes a loopback connect from the listen backlog, so a
   * blocking connect never needs the server to run. */
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

void wt_write(wt_pump *p, int fd, const void *data, size_t len) {
  const uint8_t *d = data;
  uint64_t end = wt_now_ms() + 10000;
  while (len > 0 && wt_now_ms() < end) {
    ssize_t n = send(fd, d, len, MSG_NOSIGNAL);
    if (n > 0) {
      d += n;
      len -= (size_t)n;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return;
    } else {
      wt_pump_once(p, 5);
    }
  }
}

size_t wt_read(wt_pump *p, int fd, void *buf, size_t len, int ms) {
  uint8_t *b = buf;
  size_t got = 0;
  uint64_t end = wt_now_ms() + (uint64_t)ms;
  while (got < len && wt_now_ms() < end) {
    ssize_t n = recv(fd, b + got, len - got, 0);
    if (n > 0) {
      got += (size_t)n;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
      break;
    wt_pump_once(p, 2);
  }
  return got;
}

int wt_read_http(wt_pump *p, int fd, char *head, size_t cap, int ms) {
  char buf[8192];
  size_t len = 0;
  uint64_t end = wt_now_ms() + (uint64_t)ms;
  /* byte by byte so nothing after the head is consumed */
  while (len + 1 < sizeof buf && wt_now_ms() < end) {
    if (wt_read(p, fd, buf + len, 1, (int)(end - wt_now_ms())) != 1)
      break;
    len++;
    if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0) {
      buf[len] = 0;
      if (head != NULL) {
        snprintf(head, cap, "%s", buf);
      }
      int status = 0;
      if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return 0;
      return status;
    }
  }
  return 0;
}

int wt_handshake(wt_pump *p, int fd, const char *path, const char *extra) {
  char req[4096];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                   path, extra ? extra : "");
  wt_write(p, fd, req, (size_t)n);
  return wt_read_http(p, fd, NULL, 0, 3000);
}

int wt_open(wt_pump *p, int port, const char *path) {
  int fd = wt_connect(port);
  if (fd < 0)
    return -1;
  if (wt_handshake(p, fd, path, NULL) != 101) {
    close(fd);
    return -1;
  }
  return fd;
}

size_t wt_frame(uint8_t *out, int fin, int opcode, const void *payload, size_t len, int masked) {
  size_t h = 0;
  out[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
  uint8_t mbit = masked ? 0x80 : 0;
  if (len < 126) {
    out[h++] = (uint8_t)(mbit | len);
  } else if (len < 65536) {
    out[h++] = mbit | 126;
    out[h++] = (uint8_t)(len >> 8);
    out[h++] = (uint8_t)len;
  } else {
    out[h++] = mbit | 127;
    for (int i = 7; i >= 0; i--)
      out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) {
    memcpy(out + h, key, 4);
    h += 4;
  }
  const uint8_t *src = payload;
  for (size_t i = 0; i < len; i++)
    out[h + i] = masked ? (uint8_t)(src[i] ^ key[i & 3]) : src[i];
  return h + len;
}

void wt_send_frame(wt_pump *p, int fd, int fin, int opcode, const void *payload, size_t len) {
  uint8_t *buf = malloc(len + 14);
  size_t n = wt_frame(buf, fin, opcode, payload, len, 1);
  wt_write(p, fd, buf, n);
  free(buf);
}

int wt_read_frame(wt_pump *p, int fd, wt_msg *m, int ms) {
  memset(m, 0, sizeof *m);
  m->opcode = -1;
  uint64_t end = wt_now_ms() + (uint64_t)ms;
  uint8_t h[10];
  if (wt_read(p, fd, h, 2, ms) != 2)
    return -1;
  if (h[1] & 0x80)
    return -1; /* servers never mask */
  uint64_t len = h[1] & 0x7f;
  int left = (int)(end - wt_now_ms());
  if (left < 1)
    left = 1;
  if (len == 126) {
    if (wt_read(p, fd, h + 2, 2, left) != 2)
      return -1;
    len = ((uint64_t)h[2] << 8) | h[3];
  } else if (len == 127) {
    if (wt_read(p, fd, h + 2, 8, left) != 8)
      return -1;
    len = 0;
    for (int i = 2; i < 10; i++)
      len = (len << 8) | h[i];
  }
  m->data = malloc(len + 1);
  if (m->data == NULL || wt_read(p, fd, m->data, len, left + 1000) != len) {
    free(m->data);
    m->data = NULL;
    return -1;
  }
  m->data[len] = 0;
  m->len = len;
  m->fin = (h[0] & 0x80) != 0;
  m->opcode = h[0] & 0x0f;
  if (m->opcode == 0x8)
    m->close_code = len >= 2 ? (m->data[0] << 8) | m->data[1] : 1005;
  return 0;
}

void wt_msg_free(wt_msg *m) {
  free(m->data);
  m->data = NULL;
}

int wt_wait_eof(wt_pump *p, int fd, int ms) {
  uint64_t end = wt_now_ms() + (uint64_t)ms;
  uint8_t b[4096];
  while (wt_now_ms() < end) {
    ssize_t n = recv(fd, b, sizeof b, 0);
    if (n == 0)
      return 1;
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return 1;
    if (n < 0)
      wt_pump_once(p, 5);
  }
  return 0;
}
