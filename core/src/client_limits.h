/*
 * client_limits.h -- per-client limits (client_limits.c): the remote address
 * behind trusted proxies, connections and upgrade requests per address (a
 * bounded hash table keyed by address), and message / byte token buckets per
 * connection. Never installed.
 */
#ifndef WIRE_CLIENT_LIMITS_H
#define WIRE_CLIENT_LIMITS_H

#include "internal.h"

typedef struct wire__climits wire__climits; /* per server; NULL when nothing is on */
typedef struct wire__addr wire__addr;       /* one address's entry */
typedef struct wire__client wire__client;   /* one connection's share and buckets */

/* Most addresses tracked at once; past it new addresses get 429. */
#define WIRE__ADDR_MAX 65536u

/* Set s->climits from the server options (left NULL when no per-address
 * option is set). Returns 0, WIRE_EINVAL (a trusted_proxies entry is not an
 * address or CIDR) or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__climits_new(wire_server *s, const wire_server_options *o);
WIRE_HIDDEN void wire__climits_free(wire_server *s);

/* The head has parsed and the peer is set: take the remote address from a
 * trusted proxy's headers, then apply the per-address limits. Returns 0, or
 * 429 with *why (counted in the stats), or 500 (out of memory). */
WIRE_HIDDEN int wire__climits_admit(wire_conn *c, const char **why);

/* The remote address of req (its peer already set) as a key, after the
 * trusted proxies' headers, which may replace the request's remote address.
 * Returns 0, or -1 when the request has no address. */
WIRE_HIDDEN int wire__climits_resolve(const wire_server *s, wire_request *req, uint8_t key[16]);

/* Give the connection its buckets when its endpoint limits message or byte
 * rates. Returns 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__rate_attach(wire_conn *c);

/* A whole data message of len bytes arrived on a connection with a block:
 * 1 to deliver it; 0 when it was over a rate (dropped and counted, or the
 * connection is closing with 1008). */
WIRE_HIDDEN int wire__rate_admit(wire_conn *c, size_t len);

/* The connection ends (or is refused): drop its share of its address and
 * its buckets. Idempotent. */
WIRE_HIDDEN void wire__climits_conn_end(wire_conn *c);

/* Addresses tracked now (0 without limits). For tests and stats. */
WIRE_HIDDEN size_t wire__climits_tracked(const wire_server *s);

/* Parse an address or CIDR ("10.0.0.0/8", "::1", "[::1]") into a 16-byte key
 * (IPv4 mapped into IPv6) and a prefix length over those 128 bits.
 * Returns 0 or WIRE_EINVAL. Exposed for tests. */
WIRE_HIDDEN int wire__cidr_parse(const char *text, size_t len, uint8_t key[16], unsigned *bits);

#endif
