/*
 * http_response.c -- the bytes the server answers an upgrade request with:
 * Sec-WebSocket-Accept (SHA-1 through libcrypto), the 101 response and every
 * HTTP rejection. No I/O and no connection state.
 */
#include "http.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

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
