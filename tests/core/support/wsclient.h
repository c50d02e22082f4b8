/*
 * wsclient.h -- a scripted WebSocket client for the engine tests: raw
 * 127.0.0.1 sockets writing exact bytes and reading exact responses, while
 * the server under test is pumped in the same thread (host-driven, or a
 * borrowed uv loop). Every wait is bounded.
 */
#ifndef WIRE_TEST_WSCLIENT_H
#define WIRE_TEST_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <wirecore.h>

/* What drives the server while the client waits. loop: a borrowed uv_loop_t
 * (NULL = host-driven through wire_server_process); both NULL: the server
 * runs in another thread, waiting only sleeps. */
typedef struct wt_pump {
  wire_server *server;
  void *loop;
} wt_pump;

/* One iteration: wait up to max_ms for server work, then process it. */
void wt_pump_once(wt_pump *p, int max_ms);
/* Pump for ms milliseconds. */
void wt_pump_for(wt_pump *p, int ms);
/* Pump until *flag != 0 or ms pass; returns *flag. */
int wt_pump_until(wt_pump *p, const volatile int *flag, int ms);

/* A blocking-connect, then non-blocking socket to 127.0.0.1:port; -1 on error. */
int wt_connect(int port);
/* Write all bytes (pumping the server while the socket is full). */
void wt_write(wt_pump *p, int fd, const void *data, size_t len);
/* Read exactly len bytes, pumping; returns bytes read (< len on EOF/timeout). */
size_t wt_read(wt_pump *p, int fd, void *buf, size_t len, int ms);
/* Read an HTTP response head; returns the status (0 on failure). The head
 * (NUL-terminated) goes to head if not NULL. */
int wt_read_http(wt_pump *p, int fd, char *head, size_t cap, int ms);
/* Send a valid upgrade request for path (extra: more header lines, each
 * ending in \r\n, or NULL) and read the response; returns the status. */
int wt_handshake(wt_pump *p, int fd, const char *path, const char *extra);
/* Connect and complete a handshake; returns the fd or -1. */
int wt_open(wt_pump *p, int port, const char *path);

/* Encode a client frame (masked unless masked == 0) into out; returns its
 * length. out must hold len + 14 bytes. */
size_t wt_frame(uint8_t *out, int fin, int opcode, const void *payload, size_t len, int masked);
void wt_send_frame(wt_pump *p, int fd, int fin, int opcode, const void *payload, size_t len);

typedef struct wt_msg {
  int opcode; /* of the first frame; -1 on EOF/timeout */
  int fin;
  uint8_t *data; /* malloc'd, NUL-terminated; free with wt_msg_free */
  size_t len;
  int close_code; /* close frames: the code, or 1005 when none */
} wt_msg;

/* Read one server frame (must be unmasked). Returns 0 or -1. */
int wt_read_frame(wt_pump *p, int fd, wt_msg *m, int ms);
void wt_msg_free(wt_msg *m);
/* Wait for EOF (or reset) on fd; returns 1 when the server closed it. */
int wt_wait_eof(wt_pump *p, int fd, int ms);
/* Current monotonic time in ms. */
uint64_t wt_now_ms(void);

#endif
