/*
 * deflate.h -- permessage-deflate (RFC 7692) inside the core: the offer
 * parser, the negotiated parameters kept in two bytes of the connection,
 * the per-server shared streams, and the hooks the handshake, the frame
 * reader (conn.c), the sends (send.c) and the publishes (topics.c) call.
 * Never installed.
 */
#ifndef WIRE_DEFLATE_H
#define WIRE_DEFLATE_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

typedef struct wire__slot wire__slot;
typedef struct wire__sbuf wire__sbuf;

/* wire_conn.pmd: the negotiated parameters (0 = no extension). */
#define WIRE__PMD_SWB 0x000fu       /* our LZ77 window bits, 9..15 */
#define WIRE__PMD_CWB 0x00f0u       /* client_max_window_bits we answered (>> 4), 0 = none */
#define WIRE__PMD_ON 0x0100u        /* permessage-deflate is in use */
#define WIRE__PMD_DEDICATED 0x0200u /* context takeover: streams of its own */
#define WIRE__PMD_SNCT 0x0400u      /* server_no_context_takeover answered */
#define WIRE__PMD_CNCT 0x0800u      /* client_no_context_takeover answered */
#define WIRE__PMD_ECHO_SWB 0x1000u  /* the offer had server_max_window_bits: echo it */
#define WIRE__PMD_IN_MSG 0x8000u    /* frame scanner: the message in flight is compressed */

/* The most compressed bytes a message of at most max bytes can take (zlib's
 * conservative deflateBound, for any memLevel: incompressible data goes out
 * in stored blocks as small as the compressor's buffer; plus flush markers),
 * at most UINT32_MAX: the frame scanner's limit for a compressed message. */
static inline uint64_t wire__pmd_wire_limit(uint64_t max) {
  uint64_t n = max + (max >> 5) + (max >> 7) + (max >> 11) + 64;
  return n > UINT32_MAX ? UINT32_MAX : n;
}

/* One permessage-deflate offer, parsed. Window bits 0 = not given. */
typedef struct wire__pmd_offer {
  uint8_t snct, cnct;
  uint8_t swb;     /* server_max_window_bits=8..15 */
  uint8_t cwb_set; /* client_max_window_bits was present */
  uint8_t cwb;     /* its value, 8..15, or 0 without one */
} wire__pmd_offer;

/* Parse one Sec-WebSocket-Extensions value (a comma list of extensions with
 * parameters, RFC 7230 tokens and quoted strings). For each permessage-deflate
 * offer whose parameters are all known, valid and not repeated, call fn
 * (stop when it returns nonzero; that value is returned). An offer with a
 * bad parameter is skipped; a syntax error ends the list. Returns 0 when
 * no call accepted. */
WIRE_HIDDEN int wire__pmd_offers(const char *v, size_t n,
                                 int (*fn)(const wire__pmd_offer *o, void *ud), void *ud);

/* The handshake: the first acceptable offer of the request under the
 * endpoint's mode, as the bits of wire_conn.pmd (0 = declined or none). */
WIRE_HIDDEN uint16_t wire__pmd_negotiate(const wire_request *req, const wire_endpoint *ep);

/* Insert the Sec-WebSocket-Extensions answer for pmd before the blank line
 * ending the 101 in buf[0..n). Returns the new length or -1 if it does not fit. */
WIRE_HIDDEN int wire__pmd_response(uint16_t pmd, char *buf, int n, size_t cap);

/* conn.c: inflate the compressed message in slot->msg (swapping it with
 * slot->zbuf), at most max_message_size bytes. Returns 0, or the close
 * code: 1009 too large, 1007 corrupt data, 1011 out of memory. */
WIRE_HIDDEN int wire__pmd_inflate(wire_conn *c, wire__slot *slot);

/* send.c: queue data as one compressed frame if c negotiated the extension
 * and the message is worth it. Returns 1 when queued, 0 when the caller
 * should send it plain, or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__pmd_send(wire_conn *c, int opcode, const void *data, size_t len);

/* topics.c: the frame a subscriber gets for the published frame b: b
 * itself, or its compressed variant for the shared stream c uses (built
 * once per publish and window size). NULL when c keeps a stream of its own
 * (dedicated): the caller sends through wire__pmd_send. */
WIRE_HIDDEN wire__sbuf *wire__pmd_variant(wire_conn *c, wire__sbuf *b);

/* Free the server's streams (wire_server_free) and a connection's own
 * (when it is freed). */
WIRE_HIDDEN void wire__pmd_server_free(wire_server *s);
WIRE_HIDDEN void wire__pmd_conn_free(wire_conn *c);

/* Endpoint options: WIRE_EINVAL for a bad mode or window size, else 0;
 * resolve fills the defaults. */
WIRE_HIDDEN int wire__pmd_check_options(const wire_endpoint_options *o);
WIRE_HIDDEN void wire__pmd_resolve(wire_endpoint_options *o);

#endif /* WIRE_DEFLATE_H */
