/*
 * handshake.c -- the endpoint-level half of the WebSocket handshake: the
 * Origin allow-list, subprotocol selection, Sec-WebSocket-Accept, and the
 * bytes of the 101 response and of every rejection.
 */
#include "http.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int wire__accept_key(const char *key, size_t len, char out[29]) {
  char buf[64 + sizeof WS_GUID];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  if (len > 64)
    return -1;
  memcpy(buf, key, len);
  memcpy(buf + len, WS_GUID, sizeof WS_GUID - 1);
  if (EVP_Digest(buf, len + sizeof WS_GUID - 1, md, &md_len, EVP_sha1(), NULL) != 1 || md_len != 20)
    return -1;
  /* 20 bytes encode to 28 characters plus the NUL EVP_EncodeBlock writes. */
  EVP_EncodeBlock((unsigned char *)out, md, 20);
  return 0;
}

/* Origins compare case-insensitively: scheme and host are, and a port is
 * digits; an allow-list entry is an exact serialized origin. */
static bool origin_eq(wire_str a, const char *b) {
  size_t n = strlen(b);
  return a.len == n && strncasecmp(a.ptr, b, n) == 0;
}

/* Forbidden unless exactly one Origin header names an allowed origin. A
 * missing Origin is refused too: a list says which pages may connect. */
static bool origin_allowed(const wire_request *req, const char *const *origins, size_t n) {
  size_t i = 0;
  const wire__kv *o = wire__request_find_header(req, "origin", &i);
  if (!o)
    return false;
  size_t j = i + 1;
  if (wire__request_find_header(req, "origin", &j))
    return false;
  for (size_t k = 0; k < n; k++)
    if (origins[k] && origin_eq(o->value, origins[k]))
      return true;
  return false;
}

/* Did the client offer `proto` in any Sec-WebSocket-Protocol header? The
 * values are comma lists; tokens compare case-sensitively (RFC 6455 §4.1). */
static bool offered(const wire_request *req, const char *proto) {
  size_t plen = strlen(proto);
  for (size_t i = 0; wire__request_find_header(req, "sec-websocket-protocol", &i); i++) {
    wire_str v = req->headers[i].value;
    for (size_t s = 0; s <= v.len;) {
      size_t e = s;
      while (e < v.len && v.ptr[e] != ',')
        e++;
      size_t b = s, end = e;
      while (b < end && (v.ptr[b] == ' ' || v.ptr[b] == '\t'))
        b++;
      while (end > b && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t'))
        end--;
      if (end - b == plen && plen > 0 && memcmp(v.ptr + b, proto, plen) == 0)
        return true;
      s = e + 1;
    }
  }
  return false;
}

int wire__handshake_check(wire_request *req, const char *const *origins, size_t n_origins,
                          const char *const *protocols, size_t n_protocols, const char **why) {
  if (n_origins > 0 && !origin_allowed(req, origins, n_origins)) {
    *why = "origin not allowed";
    return 403;
  }
  req->subprotocol = (wire_str){NULL, 0};
  for (size_t k = 0; k < n_protocols; k++) {
    if (!protocols[k] || !offered(req, protocols[k]))
      continue;
    /* Copied so the view does not depend on the endpoint's lifetime. */
    size_t n = strlen(protocols[k]);
    char *copy = wire__request_alloc(req, n + 1);
    if (!copy) {
      *why = "out of memory";
      return 500;
    }
    memcpy(copy, protocols[k], n + 1);
    req->subprotocol = (wire_str){copy, n};
    break;
  }
  return 0;
}

int wire__handshake_response(const wire_request *req, char *buf, size_t cap) {
  int n;
  if (req->subprotocol.ptr)
    n = snprintf(buf, cap,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n"
                 "Sec-WebSocket-Protocol: %s\r\n"
                 "\r\n",
                 req->accept_key, req->subprotocol.ptr);
  else
    n = snprintf(buf, cap,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n"
                 "\r\n",
                 req->accept_key);
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
