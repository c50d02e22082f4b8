/*
 * tls.c -- a server's TLS configuration: OpenSSL contexts built from
 * wire_tls_options (TLS 1.2 and 1.3 only, modern ciphers, ALPN http/1.1,
 * no renegotiation, session tickets, buffers released while idle), SNI
 * selection among several certificates, wire_server_listen_tls and
 * wire_server_tls_reload.
 */
#include "tls.h"

#include "conn_internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3's are fixed). */
#define WIRE__TLS12_CIPHERS                                                                        \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                     \
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                     \
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* The newest OpenSSL error as text into err, then an empty error queue. */
static int ssl_fail(wire_error *err, const char *what, const char *arg) {
  char buf[256] = "";
  unsigned long e = ERR_peek_last_error();
  if (e)
    ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return wire__error_set(err, WIRE_EINVAL, "TLS: %s%s%s%s%s", what, arg ? " " : "", arg ? arg : "",
                         buf[0] ? ": " : "", buf);
}

/* ALPN: http/1.1 when the client offers it; otherwise no ALPN at all. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg) {
  static const unsigned char want[] = "\x08http/1.1";
  (void)ssl;
  (void)arg;
  unsigned char *sel = NULL;
  if (SSL_select_next_proto(&sel, outlen, want, sizeof want - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* "*.example.com" matches exactly one leading label. */
static int name_matches(const char *pat, const char *host) {
  if (pat[0] == '*' && pat[1] == '.') {
    const char *dot = strchr(host, '.');
    return dot != NULL && dot != host && strcasecmp(dot + 1, pat + 2) == 0;
  }
  return strcasecmp(pat, host) == 0;
}

/* SNI: switch the connection to the context of the server's current set
 * whose name matches (the SSL's app data is the server); unknown names keep
 * the default certificate. */
static int sni_cb(SSL *ssl, int *alert, void *arg) {
  const wire_server *s = SSL_get_app_data(ssl);
  const wire__tls_set *set = s->tls;
  (void)arg;
  const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  (void)alert;
  if (host == NULL)
    return SSL_TLSEXT_ERR_NOACK;
  for (size_t i = 0; i < set->n; i++)
    if (set->names[i] && name_matches(set->names[i], host)) {
      if (SSL_get_SSL_CTX(ssl) != set->ctx[i])
        SSL_set_SSL_CTX(ssl, set->ctx[i]);
      return SSL_TLSEXT_ERR_OK;
    }
  return SSL_TLSEXT_ERR_OK;
}

static int pw_cb(char *buf, int size, int rwflag, void *u) {
  (void)rwflag;
  const char *pw = u;
  if (pw == NULL)
    return -1;
  size_t n = strlen(pw);
  if (n > (size_t)size)
    return -1;
  memcpy(buf, pw, n);
  return (int)n;
}

/* A PEM in memory (len 0: NUL-terminated) as a read-only BIO. */
static BIO *pem_bio(const char *pem, size_t len) {
  return BIO_new_mem_buf(pem, len ? (int)len : -1);
}

/* The certificate chain: the leaf, then any intermediates. */
static int load_cert(SSL_CTX *ctx, const wire_tls_cert *c, wire_error *err) {
  if (c->cert_file)
    return SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) == 1
               ? 0
               : ssl_fail(err, "cannot load certificate", c->cert_file);
  BIO *b = pem_bio(c->cert_pem, c->cert_pem_len);
  X509 *leaf = b ? PEM_read_bio_X509_AUX(b, NULL, NULL, NULL) : NULL;
  int ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  X509 *extra;
  while (ok && (extra = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      ok = 0;
    }
  BIO_free(b);
  return ok ? 0 : ssl_fail(err, "cannot load certificate", "(PEM)");
}

static int load_key(SSL_CTX *ctx, const wire_tls_cert *c, wire_error *err) {
  BIO *b = c->key_file ? BIO_new_file(c->key_file, "r") : pem_bio(c->key_pem, c->key_pem_len);
  EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, pw_cb, (void *)c->key_password) : NULL;
  BIO_free(b);
  const char *name = c->key_file ? c->key_file : "(PEM)";
  if (k == NULL)
    return ssl_fail(err, "cannot load private key (wrong password?)", name);
  int ok = SSL_CTX_use_PrivateKey(ctx, k) == 1;
  EVP_PKEY_free(k);
  if (!ok || SSL_CTX_check_private_key(ctx) != 1)
    return ssl_fail(err, "private key does not match the certificate", name);
  return 0;
}

/* The CAs of ca_pem into the context's store. Returns 0 or WIRE_EINVAL
 * (no certificate in it, or one that does not parse). */
static int load_ca_pem(SSL_CTX *ctx, const wire_tls_options *o, wire_error *err) {
  BIO *b = pem_bio(o->ca_pem, o->ca_pem_len);
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  int n = 0;
  X509 *x;
  while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    int ok = X509_STORE_add_cert(store, x) == 1;
    X509_free(x);
    if (!ok) {
      n = 0;
      break;
    }
    n++;
  }
  /* the loop ends on "no start line" once every certificate is read */
  unsigned long e = ERR_peek_last_error();
  int clean_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  BIO_free(b);
  if (n == 0 || !clean_end)
    return ssl_fail(err, "cannot load CA", "(PEM)");
  ERR_clear_error();
  return 0;
}

/* With ca_file and/or ca_pem, clients must present a certificate one of
 * those CAs signed. Returns 0 or WIRE_EINVAL. */
static int load_ca(SSL_CTX *ctx, const wire_tls_options *o, wire_error *err) {
  if (o->ca_file == NULL && o->ca_pem == NULL)
    return 0;
  if (o->ca_file && SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
    return ssl_fail(err, "cannot load CA", o->ca_file);
  if (o->ca_pem && load_ca_pem(ctx, o, err) != 0)
    return WIRE_EINVAL;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  return 0;
}

/* One context: protocol floor, ciphers, options, certificate and key. */
static int ctx_new(const wire_tls_options *o, const wire_tls_cert *c, SSL_CTX **out,
                   wire_error *err) {
  if ((c->cert_file == NULL && c->cert_pem == NULL) || (c->key_file == NULL && c->key_pem == NULL))
    return wire__error_set(err, WIRE_EINVAL, "TLS: a certificate needs cert and key");
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL)
    return ssl_fail(err, "cannot create a context", NULL);
  *out = ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  /* Resumption by tickets only: no per-session memory on the server. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 1);
  if (SSL_CTX_set_cipher_list(ctx, o->ciphers ? o->ciphers : WIRE__TLS12_CIPHERS) != 1)
    return ssl_fail(err, "bad cipher list", o->ciphers);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
  SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
  if (load_cert(ctx, c, err) != 0 || load_key(ctx, c, err) != 0)
    return WIRE_EINVAL;
  return load_ca(ctx, o, err);
}

void wire__tls_set_free(wire__tls_set *set) {
  if (set == NULL)
    return;
  for (size_t i = 0; i < set->n; i++) {
    SSL_CTX_free(set->ctx[i]);
    free(set->names[i]);
  }
  free(set->ctx);
  free(set->names);
  free(set);
}

int wire__tls_set_new(const wire_tls_options *o, wire__tls_set **out, wire_error *err) {
  if (o == NULL || o->certs == NULL || o->n_certs == 0)
    return wire__error_set(err, WIRE_EINVAL, "TLS: at least one certificate is needed");
  wire__tls_set *set = calloc(1, sizeof *set);
  if (set == NULL || (set->ctx = calloc(o->n_certs, sizeof *set->ctx)) == NULL ||
      (set->names = calloc(o->n_certs, sizeof *set->names)) == NULL) {
    wire__tls_set_free(set);
    return wire__error_set(err, WIRE_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < o->n_certs; i++) {
    const wire_tls_cert *c = &o->certs[i];
    set->n = i + 1;
    int r = ctx_new(o, c, &set->ctx[i], err);
    if (r == 0 && c->server_name && (set->names[i] = strdup(c->server_name)) == NULL)
      r = wire__error_set(err, WIRE_ENOMEM, "out of memory");
    if (r != 0) {
      wire__tls_set_free(set);
      return r;
    }
  }
  *out = set;
  return 0;
}

SSL *wire__tls_ssl_new(wire_server *s) {
  SSL *ssl = SSL_new(s->tls->ctx[0]);
  if (ssl == NULL)
    ERR_clear_error();
  else
    SSL_set_app_data(ssl, s);
  return ssl;
}

int wire_server_listen_tls(wire_server *s, const char *host, int port, const wire_tls_options *opts,
                           wire_error *err) {
  if (s == NULL)
    return wire__error_set(err, WIRE_EINVAL, "no server");
  wire__tls_set *set = NULL;
  if (opts != NULL || s->tls == NULL) {
    int r = wire__tls_set_new(opts, &set, err);
    if (r != 0)
      return r;
  }
  wire__tls_set *old = s->tls;
  if (set)
    s->tls = set;
  int r = wire__server_listen_cb(s, host, port, wire__tls_on_connection);
  if (r != 0) {
    if (set) {
      s->tls = old;
      wire__tls_set_free(set);
    }
    return wire__error_set(err, r, "%s", wire_strerror(r));
  }
  if (set)
    wire__tls_set_free(old);
  return 0;
}

int wire_server_tls_reload(wire_server *s, const wire_tls_options *opts, wire_error *err) {
  if (s == NULL || s->tls == NULL)
    return wire__error_set(err, s == NULL ? WIRE_EINVAL : WIRE_ESTATE,
                           "TLS: the server has no TLS listener");
  wire__tls_set *set;
  int r = wire__tls_set_new(opts, &set, err);
  if (r != 0)
    return r;
  wire__tls_set_free(s->tls);
  s->tls = set;
  return 0;
}
