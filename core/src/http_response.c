/*
 * http_response.c -- the bytes the server answers an upgrade request with:
 * Sec-WebSocket-Accept (its own SHA-1, below), the 101 response and every
 * HTTP rejection. No I/O and no connection state.
 */
#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- SHA-1 (FIPS 180-4): the accept key, the Redis history script's name --
 * Here rather than libcrypto's: EVP's first use initializes OpenSSL 3's
 * providers and configuration, which faults in about 2 MiB of library pages
 * on a server's first connection; a server without TLS never needs them. */

static uint32_t rol(uint32_t x, unsigned n) {
  return (x << n) | (x >> (32 - n));
}

/* Fold one 64-byte block into h. */
static void sha1_block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 |
           p[4 * t + 3];
  for (int t = 16; t < 80; t++)
    w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20)
      f = (b & c) | (~b & d), k = 0x5a827999u;
    else if (t < 40)
      f = b ^ c ^ d, k = 0x6ed9eba1u;
    else if (t < 60)
      f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdcu;
    else
      f = b ^ c ^ d, k = 0xca62c1d6u;
    uint32_t tmp = rol(a, 5) + f + e + k + w[t];
    e = d, d = c, c = rol(b, 30), b = a, a = tmp;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void wire__sha1(const void *data, size_t len, uint8_t md[20]) {
  const uint8_t *msg = data;
  uint32_t h[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
  uint64_t bits = (uint64_t)len * 8;
  for (; len >= 64; msg += 64, len -= 64)
    sha1_block(h, msg);
  uint8_t blk[128] = {0}; /* the rest, the 0x80 and the length: one or two blocks */
  memcpy(blk, msg, len);
  blk[len] = 0x80;
  size_t n = len + 9 <= 64 ? 64 : 128;
  for (int i = 0; i < 8; i++)
    blk[n - 1 - i] = (uint8_t)(bits >> (8 * i));
  for (size_t off = 0; off < n; off += 64)
    sha1_block(h, blk + off);
  for (int i = 0; i < 20; i++)
    md[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

int wire__accept_key(const char *key, size_t len, char out[29]) {
  char buf[64 + sizeof WS_GUID];
  uint8_t md[20];
  if (len > 64)
    return -1;
  memcpy(buf, key, len);
  memcpy(buf + len, WS_GUID, sizeof WS_GUID - 1);
  wire__sha1(buf, len + sizeof WS_GUID - 1, md);
  static const char b64[] = WIRE__BASE64;
  char *o = out;
  for (int i = 0; i < 18; i += 3) { /* 20 bytes: six full groups, then one of two */
    uint32_t v = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 | md[i + 2];
    *o++ = b64[v >> 18], *o++ = b64[(v >> 12) & 63], *o++ = b64[(v >> 6) & 63], *o++ = b64[v & 63];
  }
  uint32_t v = (uint32_t)md[18] << 16 | (uint32_t)md[19] << 8;
  *o++ = b64[v >> 18], *o++ = b64[(v >> 12) & 63], *o++ = b64[(v >> 6) & 63], *o++ = '=';
  *o = 0;
  return 0;
}

int wire__handshake_response(const wire_request *req, char *buf, size_t cap) {
  size_t i = 0;
  const wire__kv *key = wire__request_find_header(req, "sec-websocket-key", &i);
  char accept[32];
  if (key == NULL || wire__accept_key(key->value.ptr, key->value.len, accept) != 0)
    return -1;
  int n;
  if (req->subprotocol.ptr)
    n = snprintf(buf, cap,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n"
                 "Sec-WebSocket-Protocol: %s\r\n"
                 "\r\n",
                 accept, req->subprotocol.ptr);
  else
    n = snprintf(buf, cap,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n"
                 "\r\n",
                 accept);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* The reason phrase of RFC 9110 §15 for statuses we may send. */
static const char *status_text(int status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 402:
    return "Payment Required";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 410:
    return "Gone";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 422:
    return "Unprocessable Content";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  }
  return status < 500 ? "Client Error" : "Server Error";
}

int wire__http_error_response(int status, const char *body, char *buf, size_t cap) {
  if (status < 100 || status > 599)
    return -1;
  const char *text = status_text(status);
  if (!body)
    body = text;
  /* 426 and 405 carry the headers RFC 9110 §15.5.22 / §15.5.6 require. */
  const char *extra = "Connection: close\r\n";
  if (status == 426)
    extra = "Connection: close, Upgrade\r\n"
            "Upgrade: websocket\r\n"
            "Sec-WebSocket-Version: 13\r\n";
  else if (status == 429) /* client limits: any rate refills a token within 1 s */
    extra = "Connection: close\r\n"
            "Retry-After: 1\r\n";
  else if (status == 405)
    extra = "Connection: close\r\n"
            "Allow: GET\r\n";
  size_t blen = strlen(body);
  int n = snprintf(buf, cap,
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %zu\r\n"
                   "%s"
                   "\r\n"
                   "%s",
                   status, text, blen, extra, body);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}
