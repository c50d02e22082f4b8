/*
 * http.h -- the HTTP side of a WebSocket handshake (request.c, router.c,
 * handshake.c, http_response.c): parse and check the upgrade request, match
 * routes, check the endpoint's rules, build the response bytes. No I/O here.
 */
#ifndef WIRE_HTTP_H
#define WIRE_HTTP_H

#include "internal.h"

struct sockaddr;

/* ---- request (request.c) ----------------------------------------------- */

/* The base64 alphabet (RFC 4648 §4): Sec-WebSocket-Key is checked against
 * it, Sec-WebSocket-Accept written with it. */
#define WIRE__BASE64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/* The request view. One malloc'd block per request holds every string
 * (NUL-terminated copies), so the view outlives the read buffer.
 * Path parameters are appended by wire__route_match. */
typedef struct wire__kv {
  wire_str name;
  wire_str value;
} wire__kv;

struct wire_request {
  uint8_t compact;               /* 0: this layout; 1: the compact view (request.c) */
  wire_str method, target, path; /* path: percent-decoded, no query */
  wire_str query_string;         /* raw, without '?' */
  wire__kv *headers;
  size_t n_headers;
  wire__kv *query;
  size_t n_query;
  wire__kv *params;
  size_t n_params, cap_params;
  wire_str subprotocol; /* chosen by wire__handshake_check */
  char remote_addr[48];
  int remote_port;
  /* private storage follows; freed by wire__request_free */
};

/*
 * Parse an HTTP/1.1 request head from buf[0..len) (picohttpparser style).
 * Returns the head's length (through the blank line) and *out, or
 * -2 when the head is incomplete (read more, unless len already reached the
 * handshake limit: the caller answers 431), or -1 when the request cannot be
 * a WebSocket upgrade; then *status is the HTTP status to answer
 * (400 malformed, 405 not GET, 426 wrong/missing Sec-WebSocket-Version,
 * 505 not HTTP/1.1, 431 header too long) and *why a short reason.
 * Checks: request line, header syntax, Host present, Upgrade: websocket,
 * Connection has the Upgrade token, Sec-WebSocket-Key decodes to 16 bytes,
 * Sec-WebSocket-Version: 13; percent-decodes the path (%00 or a bad escape:
 * 400) and parses the query string. Needs no crypto: the 101's
 * Sec-WebSocket-Accept is computed when the response is built.
 */
WIRE_HIDDEN int wire__request_parse(const char *buf, size_t len, wire_request **out, int *status,
                                    const char **why);
WIRE_HIDDEN void wire__request_free(wire_request *req);
WIRE_HIDDEN void wire__request_set_peer(wire_request *req, const struct sockaddr *sa);
/* n bytes (8-byte aligned) owned by req and freed by wire__request_free; for
 * strings added after parsing (path parameters, the chosen subprotocol).
 * NULL when memory runs out. */
WIRE_HIDDEN void *wire__request_alloc(wire_request *req, size_t n);
/* First header named `name` (case-insensitive) from index *i on; its index
 * goes back in *i. NULL when none is left. */
WIRE_HIDDEN const wire__kv *wire__request_find_header(const wire_request *req, const char *name,
                                                      size_t *i);

/* After the upgrade (connection engine): re-pack the view into one block,
 * folding in path parameters and the subprotocol and leaving out the headers
 * that served only the handshake (Upgrade, Connection, Sec-WebSocket-Key,
 * -Version, -Extensions). Frees req and returns the new view; returns req
 * unchanged when memory runs out. */
WIRE_HIDDEN wire_request *wire__request_compact(wire_request *req);

/* ---- routes (router.c) ------------------------------------------------- */

typedef struct wire__route wire__route;
/* Returns 0 or WIRE_EROUTE / WIRE_ENOMEM. */
WIRE_HIDDEN int wire__route_compile(const char *pattern, wire__route **out);
WIRE_HIDDEN void wire__route_free(wire__route *r);
/* 1 when req->path matches (its parameters are then appended to req), else 0.
 * A non-match leaves req unchanged. -1 (WIRE_ENOMEM) when out of memory. */
WIRE_HIDDEN int wire__route_match(const wire__route *r, wire_request *req);

/* ---- endpoint-level checks (handshake.c) -------------------------------- */

/*
 * Check Origin against the allow-list (n == 0 allows any) and choose the
 * first of the endpoint's subprotocols (in its preference order) that the
 * client offered; sets req->subprotocol. Returns 0, or the HTTP status to
 * reject with (403 for a forbidden origin) and *why.
 */
WIRE_HIDDEN int wire__handshake_check(wire_request *req, const char *const *origins,
                                      size_t n_origins, const char *const *protocols,
                                      size_t n_protocols, const char **why);

/* ---- response bytes (http_response.c) ----------------------------------- */

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 chars and a
 * NUL into out. Returns 0, or -1 if libcrypto fails. */
WIRE_HIDDEN int wire__accept_key(const char *key, size_t len, char out[29]);
/* The SHA-1 digest of data[0..len) (http_response.c). */
WIRE_HIDDEN void wire__sha1(const void *data, size_t len, uint8_t md[20]);
/* The 101 response for req (with Sec-WebSocket-Accept computed from its
 * Sec-WebSocket-Key header, so before wire__request_compact, and the chosen
 * subprotocol) into buf; returns its length, or -1 if cap is too small or
 * the key is missing. */
WIRE_HIDDEN int wire__handshake_response(const wire_request *req, char *buf, size_t cap);
/* A rejection: "HTTP/1.1 <status> <text>", Connection: close, a short text
 * body (NULL: the reason phrase), plus "Sec-WebSocket-Version: 13" and
 * "Upgrade: websocket" for 426 and "Allow: GET" for 405. Returns length or
 * -1 (cap too small, or status outside 100..599). */
WIRE_HIDDEN int wire__http_error_response(int status, const char *body, char *buf, size_t cap);

#endif /* WIRE_HTTP_H */
