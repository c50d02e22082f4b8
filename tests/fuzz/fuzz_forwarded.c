/*
 * fuzz_forwarded.c -- libFuzzer target for the client's address behind
 * trusted proxies: any bytes become the X-Forwarded-For and Forwarded values
 * of an upgrade request from a trusted peer; the resolved remote address
 * must be a parseable address. The same bytes go to the CIDR parser.
 */
#include "conn_internal.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wire_server *server(void) {
  static wire_server *s;
  if (s == NULL) {
    static const char *const proxies[] = {"127.0.0.1", "10.0.0.0/8", "fd00::/8"};
    wire_server_options o = {.trusted_proxies = proxies, .n_trusted_proxies = 3};
    if (wire_server_new(&o, &s) != 0)
      abort();
  }
  return s;
}

/* An upgrade request carrying value in header `name`, from 127.0.0.1. */
static void resolve(const char *name, const uint8_t *data, size_t size) {
  char *head = malloc(size + 256);
  if (head == NULL)
    return;
  int n = snprintf(head, 256,
                   "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s: ",
                   name);
  memcpy(head + n, data, size);
  memcpy(head + n + size, "\r\n\r\n", 4);
  wire_request *req = NULL;
  int status = 0;
  const char *why = NULL;
  if (wire__request_parse(head, (size_t)n + size + 4, &req, &status, &why) > 0) {
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(4000)};
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    wire__request_set_peer(req, (struct sockaddr *)&peer);
    uint8_t key[16], again[16];
    unsigned bits;
    if (wire__climits_resolve(server(), req, key) != 0)
      abort();
    wire_str a = wire_request_remote_addr(req);
    if (a.len == 0 || wire__cidr_parse(a.ptr, a.len, again, &bits) != 0 || bits != 128 ||
        memcmp(key, again, 16) != 0)
      abort();
    wire__request_free(req);
  }
  free(head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  resolve("X-Forwarded-For", data, size);
  resolve("Forwarded", data, size);
  char *text = malloc(size ? size : 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  uint8_t key[16];
  unsigned bits = 0;
  if (wire__cidr_parse(text, size, key, &bits) == 0 && bits > 128)
    abort();
  free(text);
  return 0;
}
