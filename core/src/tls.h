/*
 * tls.h -- a server's TLS configuration: the OpenSSL contexts built from
 * wire_tls_options (one per certificate, chosen by SNI), their reload, and
 * the TLS transport's accept entry. Never installed.
 */
#ifndef WIRE_TLS_H
#define WIRE_TLS_H

#include "internal.h"

#include <openssl/ssl.h>
#include <uv.h>

/* One generation of contexts; connections keep the SSL_CTX they started
 * with (reference counted by OpenSSL), so a reload never disturbs them. */
typedef struct wire__tls_set {
  SSL_CTX **ctx; /* ctx[0]: the default certificate */
  char **names;  /* names[i]: the SNI name of ctx[i] (names[0] may be NULL) */
  size_t n;
} wire__tls_set;

/* Build a set from options. 0, or WIRE_EINVAL / WIRE_ENOMEM with err set. */
WIRE_HIDDEN int wire__tls_set_new(const wire_tls_options *opts, wire__tls_set **out,
                                  wire_error *err);
WIRE_HIDDEN void wire__tls_set_free(wire__tls_set *set);

/* A new SSL for an accepted connection, on the server's current default
 * context. NULL when memory runs out. */
WIRE_HIDDEN SSL *wire__tls_ssl_new(wire_server *s);

/* transport_tls.c: a TLS listener accepted. */
WIRE_HIDDEN void wire__tls_on_connection(uv_stream_t *ls, int status);
/* Take in an accepted socket fd as a TLS listener's accept would (a drain
 * emptying the backlog); the fd is closed on failure. */
WIRE_HIDDEN void wire__tls_adopt(wire_server *s, int fd);

#endif /* WIRE_TLS_H */
