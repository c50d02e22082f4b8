/*
 * wirecore.h -- the one public header of Wirecore, a WebSocket server runtime.
 *
 * Everything a C program (or a language binding) needs is declared here:
 * servers and endpoints, connections, the request view of a handshake, the
 * value model shared by the JSON and MessagePack codecs, JSON Schema
 * validation and message dispatch.
 *
 * Conventions (they hold for every function unless its comment says otherwise):
 *  - Functions that can fail return 0 on success or a negative WIRE_E* code.
 *    A call that returns an error never fires its callback.
 *  - Handles are opaque. They are created by wire_*_new(..., &out) and
 *    released by wire_*_free().
 *  - Data handed to a callback (message bytes, values, request views, error
 *    details) is borrowed: valid only until the callback returns. Copy what
 *    you keep. Every send copies its input.
 *  - Callbacks come in one struct; user_data is passed last.
 *  - Nothing here is thread-safe: a server and everything hanging off it
 *    belong to the thread that drives its loop.
 *  - Sockets are written with write(2), as libuv does: a program should
 *    ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)), or a peer that resets while
 *    output is queued ends the process instead of the connection. Python,
 *    Node and Ruby already ignore it.
 */
#ifndef WIRECORE_H
#define WIRECORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported symbols (as in uv.h). On Windows, define WIRE_BUILDING_SHARED
 * while compiling the DLL and WIRE_USING_SHARED in programs that link it (the
 * CMake targets do both); with neither, as for the static library or a
 * binding that compiles the core in, nothing is added. Elsewhere the symbols
 * are visible from a library built with -fvisibility=hidden. */
#if defined(_WIN32)
#  if defined(WIRE_BUILDING_SHARED)
#    define WIRE_EXTERN __declspec(dllexport)
#  elif defined(WIRE_USING_SHARED)
#    define WIRE_EXTERN __declspec(dllimport)
#  else
#    define WIRE_EXTERN /* static library */
#  endif
#elif defined(__GNUC__)
#  define WIRE_EXTERN __attribute__((visibility("default")))
#else
#  define WIRE_EXTERN
#endif

#define WIRECORE_VERSION_MAJOR 0
#define WIRECORE_VERSION_MINOR 2
#define WIRECORE_VERSION_PATCH 0
#define WIRECORE_VERSION_HEX                                                   \
  ((WIRECORE_VERSION_MAJOR << 16) | (WIRECORE_VERSION_MINOR << 8) |            \
   (WIRECORE_VERSION_PATCH))

/* The library's version as "MAJOR.MINOR.PATCH" (static storage). */
WIRE_EXTERN const char *wire_version(void);
/* The library's version as WIRECORE_VERSION_HEX computed at build time. */
WIRE_EXTERN unsigned wire_version_hex(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * X(NAME, category, class, description): the error categories. Every error
 * code belongs to one; the bindings raise one exception class per category,
 * with the same class name in every language (Ruby nests them in Wirecore::,
 * Python exports them from `wirecore`, Node from the package).
 */
#define WIRE_ERRCAT_MAP(X)                                                     \
  X(INTERNAL, "internal", "InternalError", "the runtime itself failed")        \
  X(CONFIG, "config", "ConfigError",                                           \
    "a bad argument, option, schema, route or address, or a limit reached")    \
  X(PROTOCOL, "protocol", "ProtocolError", "the peer broke RFC 6455")          \
  X(TOO_BIG, "too_big", "MessageTooBigError",                                  \
    "a message over max_message_size")                                         \
  X(DESERIALIZE, "deserialize", "DeserializationError",                        \
    "a message could not be decoded")                                          \
  X(SERIALIZE, "serialize", "SerializationError",                              \
    "a value could not be encoded")                                            \
  X(VALIDATION, "validation", "ValidationError",                               \
    "a value does not match its schema")                                       \
  X(UNKNOWN_MESSAGE, "unknown_message", "UnknownMessageError",                 \
    "no handler matches the message")                                          \
  X(CLOSED, "closed", "ConnectionClosedError", "the connection is closed")     \
  X(BACKPRESSURE, "backpressure", "BackpressureError",                         \
    "the send queue is over max_backpressure")                                 \
  X(HANDLER, "handler", "HandlerError", "an application handler failed")

typedef enum wire_errcat {
#define WIRE__ERRCAT_ENUM(name, str, cls, doc) WIRE_ERRCAT_##name,
  WIRE_ERRCAT_MAP(WIRE__ERRCAT_ENUM)
#undef WIRE__ERRCAT_ENUM
  WIRE_ERRCAT_COUNT
} wire_errcat;

/*
 * X(NAME, number, CATEGORY, message): the one list of error codes. Numbers
 * are stable: -12, -13 and -22 belonged to codes nothing returned and stay
 * unused.
 */
#define WIRE_ERRNO_MAP(X)                                                      \
  X(EINVAL, -1, CONFIG, "invalid argument")                                    \
  X(ENOMEM, -2, INTERNAL, "out of memory")                                     \
  X(EADDRINUSE, -3, CONFIG, "address already in use")                          \
  X(ELISTEN, -4, CONFIG, "cannot listen on that address")                      \
  X(EBUSY, -5, INTERNAL, "resource busy")                                      \
  X(ECLOSED, -6, CLOSED, "connection is closed")                               \
  X(ESTATE, -7, INTERNAL, "operation not allowed in the current state")        \
  X(EBACKPRESSURE, -8, BACKPRESSURE, "send buffer limit exceeded")             \
  X(ETOOBIG, -9, TOO_BIG, "message too big")                                   \
  X(EPROTOCOL, -10, PROTOCOL, "WebSocket protocol error")                      \
  X(EUTF8, -11, PROTOCOL, "invalid UTF-8")                                     \
  X(EDESERIALIZE, -14, DESERIALIZE, "message could not be decoded")            \
  X(ESERIALIZE, -15, SERIALIZE, "value could not be encoded")                  \
  X(EVALIDATION, -16, VALIDATION, "value does not match the schema")           \
  X(EUNKNOWN_MESSAGE, -17, UNKNOWN_MESSAGE, "no handler matches the message")  \
  X(ESCHEMA, -18, CONFIG, "invalid schema")                                    \
  X(EROUTE, -19, CONFIG, "invalid route pattern")                              \
  X(ENOTFOUND, -20, INTERNAL, "not found")                                     \
  X(EDEPTH, -21, DESERIALIZE, "nesting too deep")                              \
  X(EUV, -23, INTERNAL, "event loop error")                                    \
  X(EHANDLER, -24, HANDLER, "handler failed")                                  \
  X(ECODEC, -25, DESERIALIZE, "frame kind does not match the endpoint's codec") \
  X(ETOOMANY, -26, CONFIG, "too many topics on this connection")

typedef enum wire_errno {
  WIRE_OK = 0,
#define WIRE__ERRNO_ENUM(name, num, cat, msg) WIRE_##name = (num),
  WIRE_ERRNO_MAP(WIRE__ERRNO_ENUM)
#undef WIRE__ERRNO_ENUM
} wire_errno;

/* A readable message for a WIRE_E* code (static storage; "unknown error"
 * for codes not in the list). */
WIRE_EXTERN const char *wire_strerror(int code);
/* The code's name without the prefix, e.g. "EVALIDATION" (static storage). */
WIRE_EXTERN const char *wire_err_name(int code);
/* The code's category (WIRE_ERRCAT_*); WIRE_ERRCAT_INTERNAL for codes not in
 * the list. */
WIRE_EXTERN wire_errcat wire_err_category(int code);
/* A category's name ("validation") and exception class name
 * ("ValidationError"), static storage; NULL when cat is out of range. */
WIRE_EXTERN const char *wire_errcat_name(wire_errcat cat);
WIRE_EXTERN const char *wire_errcat_class(wire_errcat cat);

/*
 * Details of a failure, filled by decoders, the validator, the dispatcher and
 * the connection pipeline. A plain struct the caller owns (usually on the
 * stack); all strings are NUL-terminated and truncated to fit.
 */
typedef struct wire_error {
  int code;              /* a WIRE_E* code */
  size_t offset;         /* decode errors: byte offset of the problem */
  char path[256];        /* validation: JSON Pointer of the failing value ("" = root) */
  char keyword[32];      /* validation: the failing keyword, e.g. "type" */
  char schema_path[256]; /* validation: JSON Pointer into the schema, e.g. "/properties/text/type" */
  char message[512];     /* readable explanation */
} wire_error;

/* ------------------------------------------------------------------------ */
/* Values                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A value is a read-only node of a decoded document. Values are allocated in
 * a wire_doc's arena and live until that doc is reset or freed. Values handed
 * to on_message live until the callback returns.
 *
 * Objects keep their members in input order. A key may repeat (JSON allows
 * it); wire_value_get() returns the last member with that key, and the
 * bindings build their maps in order so the last one wins there too.
 */
typedef struct wire_value wire_value;
typedef struct wire_doc wire_doc;

typedef enum wire_type {
  WIRE_NULL = 0,
  WIRE_BOOL,
  WIRE_INT,    /* fits int64_t */
  WIRE_UINT,   /* above INT64_MAX, fits uint64_t */
  WIRE_DOUBLE, /* any other number */
  WIRE_STRING, /* UTF-8, length-counted, may contain NUL */
  WIRE_BINARY, /* MessagePack bin */
  WIRE_ARRAY,
  WIRE_OBJECT
} wire_type;

/* A borrowed string: ptr[len] is always a NUL byte. */
typedef struct wire_str {
  const char *ptr;
  size_t len;
} wire_str;

WIRE_EXTERN wire_type wire_value_type(const wire_value *v);
/* Type name: "null", "boolean", "integer", "number", "string", "binary",
 * "array", "object". */
WIRE_EXTERN const char *wire_type_name(wire_type t);
/* Scalar reads. A read of the wrong type returns 0 / 0.0 / NULL. */
WIRE_EXTERN int wire_value_bool(const wire_value *v);
WIRE_EXTERN int64_t wire_value_int(const wire_value *v);   /* WIRE_INT */
WIRE_EXTERN uint64_t wire_value_uint(const wire_value *v); /* WIRE_UINT, or a non-negative WIRE_INT */
WIRE_EXTERN double wire_value_double(const wire_value *v); /* any number, converted */
/* String / binary bytes; *len receives the length (len may be NULL).
 * Strings are NUL-terminated (the terminator is not counted). */
WIRE_EXTERN const char *wire_value_string(const wire_value *v, size_t *len);
WIRE_EXTERN const uint8_t *wire_value_binary(const wire_value *v, size_t *len);
/* Arrays: element count and i-th element (NULL when out of range). */
/* Objects: member count, i-th member (key in *key), and lookup by key. */
WIRE_EXTERN size_t wire_value_size(const wire_value *v);
WIRE_EXTERN const wire_value *wire_value_at(const wire_value *v, size_t i);
WIRE_EXTERN const wire_value *wire_value_member(const wire_value *v, size_t i,
                                                wire_str *key);
WIRE_EXTERN const wire_value *wire_value_get(const wire_value *v,
                                             const char *key, size_t key_len);

/*
 * A doc owns an arena that values (decoded or built) live in.
 * wire_doc_new: WIRE_ENOMEM.  wire_doc_reset drops every value and encoded
 * buffer of the doc but keeps its memory for reuse.
 */
WIRE_EXTERN int wire_doc_new(wire_doc **out);
WIRE_EXTERN void wire_doc_reset(wire_doc *doc);
WIRE_EXTERN void wire_doc_free(wire_doc *doc);

/*
 * Builder: make values in a doc for sending. Each returns NULL only when
 * memory runs out. Strings and binaries are copied. Containers start empty;
 * `hint` pre-sizes them (0 is fine). A value may be added to one container
 * only; it is copied in, so build children before adding them, or add and
 * then fill the pointer the add returns.
 */
WIRE_EXTERN wire_value *wire_new_null(wire_doc *doc);
WIRE_EXTERN wire_value *wire_new_bool(wire_doc *doc, int b);
WIRE_EXTERN wire_value *wire_new_int(wire_doc *doc, int64_t i);
WIRE_EXTERN wire_value *wire_new_uint(wire_doc *doc, uint64_t u);
WIRE_EXTERN wire_value *wire_new_double(wire_doc *doc, double d);
WIRE_EXTERN wire_value *wire_new_string(wire_doc *doc, const char *s, size_t len);
WIRE_EXTERN wire_value *wire_new_binary(wire_doc *doc, const void *p, size_t len);
WIRE_EXTERN wire_value *wire_new_array(wire_doc *doc, size_t hint);
WIRE_EXTERN wire_value *wire_new_object(wire_doc *doc, size_t hint);
/* Append a copy of `item` to array `arr`; returns the stored element (so it
 * can be filled further when it is a container) or NULL (WIRE_ENOMEM, or arr
 * is not an array). */
WIRE_EXTERN wire_value *wire_array_push(wire_doc *doc, wire_value *arr,
                                        const wire_value *item);
/* Append member key=item (key copied) to object `obj`; returns the stored
 * value or NULL. Duplicate keys are appended, not replaced. */
WIRE_EXTERN wire_value *wire_object_set(wire_doc *doc, wire_value *obj,
                                        const char *key, size_t key_len,
                                        const wire_value *item);

/* ------------------------------------------------------------------------ */
/* Codecs                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum wire_codec {
  WIRE_CODEC_RAW = 0,  /* no decoding: on_message gets bytes only */
  WIRE_CODEC_JSON,     /* text frames, RFC 8259 JSON */
  WIRE_CODEC_MSGPACK   /* binary frames, MessagePack */
} wire_codec;

#define WIRE_JSON_DEFAULT_MAX_DEPTH 512

/*
 * Decode `len` bytes into a value allocated in `doc`.
 * JSON: strict RFC 8259 (one value, optional surrounding whitespace, UTF-8
 * checked, no trailing commas, no comments, no NaN). Integers that fit int64
 * become WIRE_INT, those that fit uint64 WIRE_UINT, larger ones WIRE_DOUBLE.
 * MessagePack: nil/bool/int/float/str/bin/array/map; ext types are rejected
 * with WIRE_EDESERIALIZE; map keys must be strings (others: WIRE_EDESERIALIZE).
 * Nesting deeper than max_depth (0 = WIRE_JSON_DEFAULT_MAX_DEPTH) fails with
 * WIRE_EDEPTH.
 * Returns 0, WIRE_EDESERIALIZE (err->offset and err->message say where and
 * why), WIRE_EDEPTH, WIRE_ENOMEM or WIRE_EINVAL (codec RAW). err may be NULL.
 */
WIRE_EXTERN int wire_decode(wire_doc *doc, wire_codec codec, const void *buf,
                            size_t len, unsigned max_depth,
                            const wire_value **out, wire_error *err);

/*
 * Encode `v` into a buffer owned by `doc` (valid until the doc is reset or
 * freed). JSON is compact, strings escaped per RFC 8259 (non-ASCII passed
 * through as UTF-8), doubles in the shortest form that round-trips; NaN,
 * infinities and binary values cannot be JSON (WIRE_ESERIALIZE).
 * Returns 0, WIRE_ESERIALIZE, WIRE_ENOMEM or WIRE_EINVAL.
 */
WIRE_EXTERN int wire_encode(wire_doc *doc, wire_codec codec, const wire_value *v,
                            const uint8_t **out, size_t *out_len, wire_error *err);

/* ------------------------------------------------------------------------ */
/* JSON Schema 2020-12                                                      */
/* ------------------------------------------------------------------------ */

typedef struct wire_schema wire_schema;

/* Resolver for remote references: return the JSON text of the document at
 * `uri` (and its length in *len), or NULL when unknown. The text must stay
 * valid until wire_schema_compile returns. The 2020-12 meta-schemas are
 * built in and never reach the resolver. */
typedef const char *(*wire_schema_resolve_cb)(const char *uri, size_t *len,
                                              void *user_data);

#define WIRE_SCHEMA_FORMAT_ASSERT 0x1u /* `format` asserts instead of annotating */

typedef struct wire_schema_options {
  unsigned flags;                 /* WIRE_SCHEMA_* bits */
  wire_schema_resolve_cb resolve; /* may be NULL */
  void *resolve_data;
} wire_schema_options;

/*
 * Compile JSON Schema text once into a validator. opts may be NULL.
 * Returns 0, WIRE_ESCHEMA (err->message says what is wrong, err->schema_path
 * where), WIRE_EDESERIALIZE (the text is not JSON) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_schema_compile(const char *json, size_t len,
                                    const wire_schema_options *opts,
                                    wire_schema **out, wire_error *err);
/* Same, from an already decoded value. */
WIRE_EXTERN int wire_schema_compile_value(const wire_value *schema,
                                          const wire_schema_options *opts,
                                          wire_schema **out, wire_error *err);
WIRE_EXTERN void wire_schema_free(wire_schema *schema);

/*
 * Validate `v`. Returns 0 when valid, WIRE_EVALIDATION when not (err gets
 * the first failure: path, keyword, schema_path, message). err may be NULL,
 * which is faster. Allocates nothing for ordinary schemas.
 */
WIRE_EXTERN int wire_schema_validate(const wire_schema *schema,
                                     const wire_value *v, wire_error *err);

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct wire_dispatcher wire_dispatcher;

/*
 * A dispatcher picks, for a value, the first of N schemas it satisfies.
 * The array is copied; the schemas it points to are borrowed and must
 * outlive the dispatcher. When every
 * schema requires one property pinned to a distinct `const` (a discriminator
 * such as "type"), dispatch is one lookup plus one validation.
 * Returns 0, WIRE_EINVAL (n == 0) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_dispatcher_new(const wire_schema *const *schemas, size_t n,
                                    wire_dispatcher **out);
WIRE_EXTERN void wire_dispatcher_free(wire_dispatcher *d);
/* The discriminator property's name, or NULL when dispatch is sequential. */
WIRE_EXTERN const char *wire_dispatcher_discriminator(const wire_dispatcher *d);
/*
 * Returns 0 and the index in *index, or WIRE_EUNKNOWN_MESSAGE with err->message
 * listing briefly why each candidate failed (with a discriminator: the
 * validation error of the selected schema is reported as WIRE_EVALIDATION
 * instead, since the message's kind is known).
 */
WIRE_EXTERN int wire_dispatch(const wire_dispatcher *d, const wire_value *v,
                              size_t *index, wire_error *err);

/* ------------------------------------------------------------------------ */
/* Server, endpoints, connections                                           */
/* ------------------------------------------------------------------------ */

typedef struct wire_server wire_server;
typedef struct wire_endpoint wire_endpoint;
typedef struct wire_conn wire_conn;
typedef struct wire_request wire_request;

typedef enum wire_msg_kind { WIRE_MSG_TEXT = 1, WIRE_MSG_BINARY = 2 } wire_msg_kind;

/* What on_message receives. Everything it points to is borrowed. */
typedef struct wire_message {
  wire_msg_kind kind;
  const uint8_t *data; /* the raw payload (text is valid UTF-8) */
  size_t len;
  const wire_value *value; /* decoded value; NULL for WIRE_CODEC_RAW */
  int handler;             /* index of the matched message schema; -1 when none registered */
} wire_message;

/* on_connect return values besides 0 (accept) and an HTTP status (reject). */
#define WIRE_CONNECT_ACCEPT 0
#define WIRE_CONNECT_DEFER 1 /* decide later with wire_conn_accept / wire_conn_reject */

typedef struct wire_callbacks {
  /* A handshake passed every check and matched this endpoint. Return 0 to
   * accept (the 101 response is sent), an HTTP status 400..599 to reject
   * (that status is sent, then the socket closes; on_close is not called),
   * or WIRE_CONNECT_DEFER to decide later. NULL accepts everything. */
  int (*on_connect)(wire_conn *conn, const wire_request *req, void *user_data);
  /* A complete message arrived (and, with schemas, validated). */
  void (*on_message)(wire_conn *conn, const wire_message *msg, void *user_data);
  /* The connection ended, once per accepted connection, whoever closed it.
   * code is the close code received (or sent), 1005 when none, 1006 when
   * the TCP connection dropped without a close handshake. */
  void (*on_close)(wire_conn *conn, int code, const char *reason,
                   size_t reason_len, void *user_data);
  /* Something failed on an open (or closing) connection. Exactly these codes
   * reach it:
   *  - a message the pipeline refused: WIRE_EDESERIALIZE (undecodable or too
   *    deep), WIRE_ECODEC, WIRE_EVALIDATION, WIRE_EUNKNOWN_MESSAGE; also
   *    through wire_conn_invalid for a host codec. Called before the
   *    endpoint's wire_invalid_policy acts;
   *  - the peer broke the protocol: WIRE_ETOOBIG, WIRE_EPROTOCOL, WIRE_EUTF8
   *    (the connection closes regardless: 1009, 1002, 1007);
   *  - WIRE_ENOMEM while decoding or queueing a message (it is dropped);
   *  - whatever code the host passed to wire_conn_fail (WIRE_EHANDLER when
   *    none), before the 1011 close.
   * Return nonzero when the application handled the error itself: the
   * policy's reply or close (or wire_conn_fail's 1011) is then skipped.
   * NULL = not handled. Never called after on_close. */
  int (*on_error)(wire_conn *conn, const wire_error *err, void *user_data);
  /* Appended in 0.2 (zero = not set). wire_conn_writable returned 0 for
   * this connection and its send queue is now back at or below
   * send_high_water. Fires once per such 0 (however many were returned
   * before it), and never after on_close: a close ends the wait instead. */
  void (*on_drain)(wire_conn *conn, void *user_data);
} wire_callbacks;

/* What the core itself does with a message that fails decoding, validation
 * or dispatch (after on_error, if set). */
typedef enum wire_invalid_policy {
  WIRE_INVALID_REPLY = 0, /* send {"type":"error","error":...} in the endpoint's codec; stay open */
  WIRE_INVALID_CLOSE,     /* close: 1007 for undecodable data, 1008 for schema failures */
  WIRE_INVALID_IGNORE     /* only on_error */
} wire_invalid_policy;

#define WIRE_DEFAULT_MAX_MESSAGE (1u << 20)          /* 1 MiB */
#define WIRE_DEFAULT_MAX_BACKPRESSURE (4u << 20)     /* 4 MiB */
#define WIRE_DEFAULT_IDLE_TIMEOUT_MS 120000u         /* ping after this much silence */
#define WIRE_DEFAULT_PONG_TIMEOUT_MS 30000u
/* Received messages a connection may have waiting (in the core's pause queue
 * or held by the host, see wire_conn_hold) before the core stops reading it.
 * 64 keeps a consumer busy for a loop turn while bounding what one slow
 * reader costs to 64 messages; reading resumes at half (32). */
#define WIRE_DEFAULT_MAX_QUEUED 64u

/* permessage-deflate per endpoint. SHARED (the default) answers every offer
 * with server_no_context_takeover and client_no_context_takeover: messages
 * are compressed by one deflate stream per server and inflated by one per
 * server, so an idle connection keeps no compression state. DEDICATED keeps
 * context takeover (a better ratio for streams of similar messages) at the
 * cost of a deflate and an inflate stream per connection. OFF declines. */
typedef enum wire_compression {
  WIRE_COMPRESSION_SHARED = 0,
  WIRE_COMPRESSION_OFF,
  WIRE_COMPRESSION_DEDICATED
} wire_compression;

/* Endpoint options. Zero-initialize, then set what you need: 0 / NULL fields
 * take the defaults. */
typedef struct wire_endpoint_options {
  wire_codec codec;
  /* JSON Schema texts; on_message reports the index of the first match. */
  const char *const *message_schemas;
  size_t n_message_schemas;
  const char *response_schema; /* checked by wire_conn_send_value; may be NULL */
  unsigned schema_flags;       /* WIRE_SCHEMA_* */
  wire_invalid_policy invalid_policy;
  size_t max_message_size;     /* bytes; 0 = WIRE_DEFAULT_MAX_MESSAGE */
  size_t max_backpressure;     /* bytes; 0 = WIRE_DEFAULT_MAX_BACKPRESSURE */
  unsigned idle_timeout_ms;    /* 0 = default; UINT32_MAX = never ping */
  unsigned pong_timeout_ms;    /* 0 = default */
  const char *const *subprotocols; /* in order of preference */
  size_t n_subprotocols;
  const char *const *allowed_origins; /* exact Origin values; none = any origin */
  size_t n_allowed_origins;
  /* Appended in 0.2; zero-initialized fields take the defaults. */
  size_t max_queued_messages; /* 0 = WIRE_DEFAULT_MAX_QUEUED, at most 32768; see wire_conn_hold */
  size_t send_high_water;     /* bytes; 0 = max_backpressure / 4; see wire_conn_writable */
  /* hardening */
  /* A connection whose transport write has not completed for this long (a
   * peer that stopped reading) is closed with 1008, then dropped after the
   * close deadline (pong_timeout_ms). */
  unsigned send_timeout_ms; /* 0 = WIRE_DEFAULT_SEND_TIMEOUT_MS; UINT32_MAX = never */
  /* Frames one data message may span; past it the connection closes with
   * 1009. A message in progress costs its payload, never a node per frame. */
  unsigned max_message_fragments; /* 0 = WIRE_DEFAULT_MAX_FRAGMENTS */
  /* permessage-deflate (RFC 7692), see docs/compression.md. */
  wire_compression compression; /* 0 = WIRE_COMPRESSION_SHARED */
  /* Messages shorter than this many bytes go out uncompressed;
   * 0 = WIRE_DEFAULT_COMPRESSION_THRESHOLD. */
  size_t compression_threshold;
  /* WIRE_COMPRESSION_DEDICATED: the LZ77 window of each connection's
   * streams, 9..15 (0 = 15; zlib's memLevel follows it). */
  unsigned compression_window_bits;
  /* client limits (docs/security.md): token buckets per connection, checked
   * when a whole data message has arrived. 0 = no limit. A bucket starts
   * full, holds `burst` (0 = one second's rate) and refills at `rate` per
   * second; a message over either bucket is dropped (counted in
   * rate_limited_dropped; the handler never sees it) or, with
   * WIRE_RATE_CLOSE, closes the connection with 1008 "rate limit". A message
   * larger than byte_burst never passes. */
  unsigned message_rate;  /* messages per second */
  unsigned message_burst; /* messages; 0 = message_rate */
  size_t byte_rate;       /* payload bytes per second */
  size_t byte_burst;      /* bytes; 0 = byte_rate */
  int rate_limit_action;  /* WIRE_RATE_DROP (0) or WIRE_RATE_CLOSE */
  /* A fragmented message must be complete this long after its first frame;
   * a later frame of the connection past it closes with 1008 "message
   * timeout" (a client adding one fragment now and then cannot keep a
   * message open for ever). */
  unsigned message_timeout_ms; /* 0 = WIRE_DEFAULT_MESSAGE_TIMEOUT_MS; UINT32_MAX = never */
} wire_endpoint_options;

#define WIRE_DEFAULT_COMPRESSION_THRESHOLD 1024u

/* client limits: what a message over message_rate / byte_rate does. */
#define WIRE_RATE_DROP 0
#define WIRE_RATE_CLOSE 1

#define WIRE_DEFAULT_SEND_TIMEOUT_MS 30000u
#define WIRE_DEFAULT_MAX_FRAGMENTS 4096u
#define WIRE_DEFAULT_MESSAGE_TIMEOUT_MS 60000u

#define WIRE_DEFAULT_MAX_HANDSHAKE 8192u
#define WIRE_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u

/* Server options; zero-initialize; 0 / NULL take the defaults. */
typedef struct wire_server_options {
  void *uv_loop;                 /* a borrowed uv_loop_t*; NULL = the server owns a loop */
  size_t max_handshake_size;     /* bytes; 0 = WIRE_DEFAULT_MAX_HANDSHAKE */
  unsigned handshake_timeout_ms; /* 0 = WIRE_DEFAULT_HANDSHAKE_TIMEOUT_MS */
  /* Open connections; beyond it: 503. 0 = RLIMIT_NOFILE (soft, read at
   * wire_server_new) minus 64, or half of it under 128; UINT_MAX = unlimited.
   * Sockets beyond RLIMIT_NOFILE minus 16 get a 503 as soon as accepted. */
  unsigned max_connections;
  /* topics */
  unsigned max_topics_per_conn; /* 0 = WIRE_DEFAULT_MAX_TOPICS_PER_CONN */
  /* client limits (docs/security.md), per remote address (IPv6: per /64),
   * checked once the request head has arrived; over them: 429 with
   * Retry-After. 0 = no limit. */
  unsigned max_connections_per_address; /* open connections and pending upgrades */
  unsigned handshake_rate;              /* upgrade requests per second */
  unsigned handshake_burst;             /* 0 = handshake_rate */
  /* Peers (addresses or CIDRs: "10.0.0.0/8", "::1") whose X-Forwarded-For
   * (or Forwarded: for=) names the client: its rightmost hop that is not a
   * trusted proxy becomes the remote address. NULL = trust no one. */
  const char *const *trusted_proxies;
  size_t n_trusted_proxies;
  /* Memory budget: bytes buffered across all connections (output queues,
   * messages being reassembled, messages waiting while paused). Over it the
   * heaviest connections stop being read; still over it after a second (or
   * at twice the budget at once) the heaviest are closed with 1013 "memory
   * budget". 0 = WIRE_DEFAULT_MAX_BUFFERED_BYTES, or a quarter of the memory
   * the process may use when that is less (at least 16 MiB); SIZE_MAX =
   * unlimited. */
  size_t max_buffered_bytes;
} wire_server_options;

#define WIRE_DEFAULT_MAX_BUFFERED_BYTES ((size_t)256 << 20) /* 256 MiB */

/*
 * Create a server. opts may be NULL. With opts->uv_loop the server attaches to
 * that libuv loop (the host runs it); otherwise it owns a loop, driven either
 * by wire_server_run or by the host through wire_server_fd / _timeout /
 * _process. Returns 0, WIRE_ENOMEM, WIRE_EUV or WIRE_EINVAL (a trusted_proxies entry
 * is not an address or CIDR).
 */
WIRE_EXTERN int wire_server_new(const wire_server_options *opts, wire_server **out);

/*
 * Free a server. It must be closed (the shutdown's done callback has fired, or
 * it never listened); otherwise returns WIRE_EBUSY and frees nothing.
 * Returns 0 or WIRE_EBUSY.
 */
WIRE_EXTERN int wire_server_free(wire_server *server);

/*
 * Register an endpoint on a path pattern. Patterns are absolute paths whose
 * segments may be parameters: {name} (one segment), {name:int} (an optional
 * '-' then digits), {name:path} (the rest of the path, last segment only).
 * Routes are tried in registration order. opts and callbacks are copied;
 * opts may be NULL. user_data is passed to every callback of this endpoint.
 * out may be NULL.
 * Returns 0, WIRE_EROUTE (bad pattern), WIRE_ESCHEMA (a schema does not
 * compile; err says which and why; err may be NULL), WIRE_EINVAL or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_endpoint_add(wire_server *server, const char *pattern,
                                  const wire_endpoint_options *opts,
                                  const wire_callbacks *callbacks, void *user_data,
                                  wire_endpoint **out, wire_error *err);
/* The endpoint's user_data and pattern. */
WIRE_EXTERN void *wire_endpoint_user_data(const wire_endpoint *ep);
WIRE_EXTERN const char *wire_endpoint_pattern(const wire_endpoint *ep);

/*
 * Listen on host:port (IPv4 or IPv6 literal, or "localhost"); port 0 picks a
 * free port (see wire_server_port). May be called more than once.
 * Returns 0, WIRE_EADDRINUSE, WIRE_ELISTEN, WIRE_EINVAL or WIRE_ESTATE
 * (shutting down).
 */
WIRE_EXTERN int wire_server_listen(wire_server *server, const char *host, int port);
/* The port of the first listener, or -1. */
WIRE_EXTERN int wire_server_port(const wire_server *server);

/* ------------------------------------------------------------------------ */
/* TLS                                                                      */
/* ------------------------------------------------------------------------ */

/* One certificate and its key, as files or as PEM text in memory (for each
 * of cert and key give the file or the PEM; a PEM length of 0 means
 * NUL-terminated). The certificate PEM may carry intermediates after the
 * leaf. Everything is copied: nothing needs to outlive the call. */
typedef struct wire_tls_cert {
  const char *server_name; /* SNI name it answers ("*.example.com": one label); NULL = any */
  const char *cert_file;
  const char *key_file;
  const char *cert_pem;
  size_t cert_pem_len;
  const char *key_pem;
  size_t key_pem_len;
  const char *key_password; /* an encrypted key's passphrase; NULL = none */
} wire_tls_cert;

/* TLS 1.2 and 1.3 only, ALPN http/1.1, no renegotiation, resumption by
 * session tickets. certs[0] is the default certificate; the others are
 * chosen by the client's SNI name. */
typedef struct wire_tls_options {
  const wire_tls_cert *certs;
  size_t n_certs; /* at least 1 */
  /* PEM CAs: clients must present a certificate one of them signed; NULL = none asked */
  const char *ca_file;
  /* OpenSSL cipher list for TLS 1.2; NULL = ECDHE with AES-GCM/ChaCha20 */
  const char *ciphers;
  /* More client CAs as PEM text in memory (one or more certificates; length
   * 0 means NUL-terminated), beside or instead of ca_file; NULL = none */
  const char *ca_pem;
  size_t ca_pem_len;
} wire_tls_options;

/*
 * Listen for wss:// on host:port as wire_server_listen does, with TLS from
 * opts. opts replaces the server's TLS configuration for every TLS listener
 * (NULL reuses the one of an earlier call). err (may be NULL) says why a
 * certificate or key did not load.
 * Returns 0, WIRE_EINVAL (bad options, unreadable certificate, key or CA,
 * wrong password, key not matching), WIRE_ENOMEM, WIRE_EADDRINUSE,
 * WIRE_ELISTEN or WIRE_ESTATE.
 */
WIRE_EXTERN int wire_server_listen_tls(wire_server *server, const char *host, int port,
                                       const wire_tls_options *opts, wire_error *err);

/*
 * Load new certificates and keys without a restart: new connections use
 * them, connections already open keep theirs. On error nothing changes.
 * Returns 0, WIRE_EINVAL (as for wire_server_listen_tls), WIRE_ENOMEM or
 * WIRE_ESTATE (the server has no TLS listener).
 */
WIRE_EXTERN int wire_server_tls_reload(wire_server *server, const wire_tls_options *opts,
                                       wire_error *err);

/* Run the owned loop until the server has shut down. Returns 0, WIRE_ESTATE
 * (the loop is borrowed) or WIRE_EUV. */
WIRE_EXTERN int wire_server_run(wire_server *server);

/*
 * Host-driven mode (owned loop): the host waits until wire_server_fd() is
 * readable or wire_server_timeout() milliseconds pass (-1: wait for the fd
 * only; 0: call again at once), then calls wire_server_process(). Ask for the
 * timeout again after every process call. Sends made between process calls
 * are written at once, and whatever the socket did not take makes the fd
 * readable, so nothing waits for the next call.
 * wire_server_process returns 1 while the server is alive, 0 once it has shut
 * down, or WIRE_ESTATE (borrowed loop).
 */
WIRE_EXTERN int wire_server_fd(const wire_server *server);
WIRE_EXTERN int wire_server_timeout(const wire_server *server);
WIRE_EXTERN int wire_server_process(wire_server *server);

/* Keep (ref) or stop keeping (unref) a borrowed loop alive with this server's
 * listeners, as net.Server#ref/#unref do. */
WIRE_EXTERN void wire_server_ref(wire_server *server);
WIRE_EXTERN void wire_server_unref(wire_server *server);

typedef void (*wire_shutdown_cb)(wire_server *server, void *user_data);
/*
 * Graceful shutdown: stop accepting, close every open connection with 1001
 * (going away), wait for their close handshakes and queued data up to
 * timeout_ms (0 = 5000), then drop what is left and close every handle.
 * `done` (may be NULL) fires once everything is closed; after it the loop has
 * nothing of this server left and wire_server_run returns.
 * Returns 0, or WIRE_ESTATE if already shutting down.
 */
WIRE_EXTERN int wire_server_shutdown(wire_server *server, unsigned timeout_ms,
                                     wire_shutdown_cb done, void *user_data);
/*
 * Start the graceful shutdown (as wire_server_shutdown with the default
 * timeout and no done callback) from anywhere: it only sets a flag and wakes
 * the loop (uv_async_send), so it is async-signal-safe (call it from a
 * SIGINT/SIGTERM handler) and thread-safe (call it from another thread); the
 * shutdown itself runs on the loop thread at its next iteration. Callable
 * from the first wire_server_listen until the shutdown has finished; a call
 * while a shutdown is already under way does nothing more. Never after
 * wire_server_free. Returns 0, WIRE_EINVAL (NULL), WIRE_ESTATE (never
 * listened, or the shutdown has finished) or WIRE_EUV.
 */
WIRE_EXTERN int wire_server_stop(wire_server *server);
/* Number of open connections (handshaking or open). */
WIRE_EXTERN size_t wire_server_connection_count(const wire_server *server);

/* hardening: what the limits did since wire_server_new (docs/limits.md). */
typedef struct wire_server_stats {
  uint64_t accept_failed;       /* accept errors (EMFILE, ENFILE...): dropped by libuv */
  uint64_t refused_sockets;     /* 503 at accept: within 16 descriptors of RLIMIT_NOFILE */
  uint64_t refused_connections; /* 503 at the handshake: over max_connections */
  uint64_t send_timeouts;       /* closed 1008 at the send deadline */
  uint64_t fragment_limits;     /* closed 1009 over max_message_fragments */
  unsigned max_connections;     /* the effective limit (UINT_MAX: none) */
  /* client limits (docs/security.md) */
  uint64_t refused_per_address;    /* 429: over max_connections_per_address */
  uint64_t refused_handshake_rate; /* 429: over handshake_rate */
  uint64_t rate_limited_dropped;   /* messages dropped over message_rate / byte_rate */
  uint64_t rate_limited_closed;    /* connections closed 1008 over them */
  /* metrics: traffic since wire_server_new (this process; /metrics sums workers) */
  uint64_t connections_total; /* WebSocket connections accepted */
  uint64_t messages_in, bytes_in;   /* data messages received, payload bytes */
  uint64_t messages_out, bytes_out; /* data messages queued to send, payload bytes */
  /* memory budget (max_buffered_bytes) and the message deadline */
  uint64_t buffered_bytes;     /* bytes buffered now, across all connections */
  uint64_t buffered_peak;      /* the most buffered at once */
  uint64_t max_buffered_bytes; /* the effective budget (UINT64_MAX: none) */
  uint64_t paused_by_budget;   /* times a connection stopped being read over the budget */
  uint64_t closed_by_budget;   /* connections closed (1013) over the budget */
  uint64_t message_timeouts;   /* closed 1008 over message_timeout_ms */
} wire_server_stats;

/* Copy the server's counters into *out. Returns 0 or WIRE_EINVAL (NULL). */
WIRE_EXTERN int wire_server_stats_get(const wire_server *server, wire_server_stats *out);

/* --- request view (handshake) ------------------------------------------ */

/* The decoded path (percent-decoding applied) and the raw request target. */
WIRE_EXTERN wire_str wire_request_path(const wire_request *req);
WIRE_EXTERN wire_str wire_request_target(const wire_request *req);
/* Path parameters by index or name (NULL .ptr when absent). */
WIRE_EXTERN size_t wire_request_param_count(const wire_request *req);
WIRE_EXTERN int wire_request_param_at(const wire_request *req, size_t i,
                                      wire_str *name, wire_str *value);
WIRE_EXTERN wire_str wire_request_param(const wire_request *req, const char *name);
/* Query parameters, percent- and '+'-decoded, in order; repeated keys kept. */
WIRE_EXTERN size_t wire_request_query_count(const wire_request *req);
WIRE_EXTERN int wire_request_query_at(const wire_request *req, size_t i,
                                      wire_str *key, wire_str *value);
/* First query value for key (NULL .ptr when absent). */
WIRE_EXTERN wire_str wire_request_query(const wire_request *req, const char *key);
/* Headers in order, names as sent; lookup is case-insensitive. */
WIRE_EXTERN size_t wire_request_header_count(const wire_request *req);
WIRE_EXTERN int wire_request_header_at(const wire_request *req, size_t i,
                                       wire_str *name, wire_str *value);
WIRE_EXTERN wire_str wire_request_header(const wire_request *req, const char *name);
/* Peer address as text ("127.0.0.1", "::1") and port. */
WIRE_EXTERN wire_str wire_request_remote_addr(const wire_request *req);
WIRE_EXTERN int wire_request_remote_port(const wire_request *req);
/* The negotiated subprotocol (NULL .ptr when none). */
WIRE_EXTERN wire_str wire_request_subprotocol(const wire_request *req);

/* --- connections -------------------------------------------------------- */

/*
 * A connection lives from accept until on_close has returned (or until the
 * socket closes after a rejected handshake), unless references are held.
 * wire_conn_ref keeps the handle (not the socket) valid; once closed, calls
 * on it return WIRE_ECLOSED. Each ref needs one unref.
 */
WIRE_EXTERN void wire_conn_ref(wire_conn *conn);
WIRE_EXTERN void wire_conn_unref(wire_conn *conn);

/* The request view, valid as long as the connection handle. After the
 * upgrade the connection keeps a compact copy (a different pointer from the
 * one on_connect saw) without the headers that only served the handshake:
 * Upgrade, Connection, Sec-WebSocket-Key, -Version and -Extensions. */
WIRE_EXTERN const wire_request *wire_conn_request(const wire_conn *conn);
WIRE_EXTERN wire_endpoint *wire_conn_endpoint(const wire_conn *conn);
WIRE_EXTERN wire_server *wire_conn_server(const wire_conn *conn);
/* A per-server unique, increasing connection id. */
WIRE_EXTERN uint64_t wire_conn_id(const wire_conn *conn);
WIRE_EXTERN void *wire_conn_get_data(const wire_conn *conn);
WIRE_EXTERN void wire_conn_set_data(wire_conn *conn, void *data);
/* 1 between the 101 response and the start of the close, else 0. */
WIRE_EXTERN int wire_conn_is_open(const wire_conn *conn);

/* Finish a deferred on_connect. reject: status 400..599, body may be NULL.
 * Returns 0, WIRE_ESTATE (not deferred) or WIRE_ECLOSED (the peer left). */
WIRE_EXTERN int wire_conn_accept(wire_conn *conn);
WIRE_EXTERN int wire_conn_reject(wire_conn *conn, int status, const char *body);

/*
 * Send a message (the bytes are copied). Frames queued during one loop turn
 * leave in one write. Text must be valid UTF-8 (WIRE_EUTF8).
 * Backpressure: when the connection already has more than max_backpressure
 * bytes queued, the send is refused with WIRE_EBACKPRESSURE and the
 * connection is closed with 1008 (a consumer that slow would otherwise grow
 * memory without bound). Reading from a connection also stops while its
 * queue is over the limit, and resumes once it drains. Senders that can wait
 * use wire_conn_writable and on_drain instead of reaching the limit.
 * Returns 0, WIRE_ECLOSED, WIRE_EUTF8, WIRE_EBACKPRESSURE or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_conn_send_text(wire_conn *conn, const char *data, size_t len);
WIRE_EXTERN int wire_conn_send_binary(wire_conn *conn, const void *data, size_t len);
/*
 * Encode `v` with the endpoint's codec (JSON: a text frame; MessagePack: a
 * binary frame), after checking it against the response schema if any.
 * Returns what wire_conn_send_text does, or WIRE_EVALIDATION /
 * WIRE_ESERIALIZE (nothing sent; err says why; err may be NULL), or
 * WIRE_EINVAL for a RAW endpoint.
 */
WIRE_EXTERN int wire_conn_send_value(wire_conn *conn, const wire_value *v,
                                     wire_error *err);
/*
 * Start the close handshake with a code (1000..4999 minus the reserved ones;
 * 0 sends no code) and a reason of at most 123 bytes. on_close follows when
 * the peer answers or after the close timeout.
 * Returns 0, WIRE_EINVAL or WIRE_ECLOSED.
 */
WIRE_EXTERN int wire_conn_close(wire_conn *conn, int code, const char *reason,
                                size_t reason_len);
/* Stop / restart delivering messages (and reading from the socket). Pauses
 * nest: each pause needs one resume. Messages already received stay queued
 * in order. When the peer closes while messages are queued, the close is
 * answered at once, but the queued messages are still delivered on resume
 * (sends then return WIRE_ECLOSED) and on_close follows them, unless the
 * close deadline (pong_timeout_ms) passes first. Returns 0 or WIRE_ECLOSED. */
WIRE_EXTERN int wire_conn_pause(wire_conn *conn);
WIRE_EXTERN int wire_conn_resume(wire_conn *conn);
/* Bytes queued for this connection but not yet written to the socket. */
WIRE_EXTERN size_t wire_conn_buffered_amount(const wire_conn *conn);

/* --- connection rules (0.2) --------------------------------------------- */

/*
 * The queued-message bound. A connection counts its received, undelivered
 * messages: those in the pause queue plus those the host holds. When the
 * count reaches max_queued_messages the core stops reading the socket; it
 * reads again once the count is at or below half of it (the low-water mark).
 * Messages already read when the bound is reached are still queued, so the
 * count can pass the bound by what one socket read (64 KiB) holds.
 *
 * A host with a stream-style inbox (messages handed from on_message to a
 * queue the application reads later) calls wire_conn_hold once per message it
 * keeps, from on_message, and wire_conn_consumed when the application has
 * taken messages out. That is all: the core decides when to stop and resume
 * reading, so every host's inbox has the same bound. Holds left when the
 * connection closes are forgotten.
 *
 * wire_conn_hold returns 0 or WIRE_ECLOSED (after on_close).
 * wire_conn_consumed returns 0, WIRE_EINVAL (n is more than is held) or
 * WIRE_ECLOSED (after on_close: nothing to do).
 * wire_conn_queued returns the count (pause queue + held); 0 for NULL.
 */
WIRE_EXTERN int wire_conn_hold(wire_conn *conn);
WIRE_EXTERN int wire_conn_consumed(wire_conn *conn, size_t n);
WIRE_EXTERN size_t wire_conn_queued(const wire_conn *conn);

/*
 * Flow control for sends. A connection is writable while it is open and its
 * send queue (wire_conn_buffered_amount) is at or below the endpoint's
 * send_high_water. The rule for hosts: a send the application awaits waits
 * (after queueing its message) until the connection is writable again,
 * i.e. until on_drain or on_close; only sends nobody awaits can reach
 * max_backpressure and its 1008 close.
 * Returns 1 when writable, 0 otherwise; a 0 for an open connection promises
 * one on_drain when the queue falls back to the mark (unless it closes
 * first). NULL gives 0.
 */
WIRE_EXTERN int wire_conn_writable(wire_conn *conn);

/*
 * The host's code failed for this connection (a handler raised, a value
 * could not be converted). err says why (may be NULL; code 0 becomes
 * WIRE_EHANDLER, an empty message "handler failed"). on_error sees it first;
 * unless it returns nonzero the connection closes with 1011 and the reason
 * "internal error" (the details stay on the server). A wire_conn_fail made
 * from inside the on_error that a wire_conn_fail of the same connection
 * called skips on_error and closes (no recursion).
 * Returns 1 (on_error handled it; the connection stays as it was), 0 (closing
 * with 1011, or already closing), WIRE_ESTATE (the handshake is not done) or
 * WIRE_ECLOSED (after on_close).
 */
WIRE_EXTERN int wire_conn_fail(wire_conn *conn, const wire_error *err);

/*
 * A message a host codec (one the core does not know) could not decode,
 * validate or dispatch: exactly what the core does for its own codecs.
 * on_error first; unless it returns nonzero, the endpoint's
 * wire_invalid_policy: REPLY sends {"type":"error","error":...,"message":...}
 * (plus "path" and "keyword" for WIRE_EVALIDATION) in the endpoint's codec,
 * as JSON text for a RAW endpoint; CLOSE closes with 1008 for
 * WIRE_EVALIDATION / WIRE_EUNKNOWN_MESSAGE and 1007 for the others; IGNORE
 * does nothing more. err->code must be WIRE_EDESERIALIZE, WIRE_EDEPTH,
 * WIRE_ECODEC, WIRE_EVALIDATION or WIRE_EUNKNOWN_MESSAGE.
 * Returns 1 (on_error handled it), 0 (the policy acted), WIRE_EINVAL (no err
 * or another code) or WIRE_ECLOSED (not open).
 */
WIRE_EXTERN int wire_conn_invalid(wire_conn *conn, const wire_error *err);

/* ------------------------------------------------------------------------ */
/* Topics                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A topic is a name (1..WIRE_MAX_TOPIC_LENGTH bytes, any bytes, compared
 * exactly) that connections subscribe to; wire_server_publish sends one
 * message to every subscriber. The frame is built once into a buffer shared
 * by every subscriber's output queue: no copy, encode or check per
 * subscriber. A published message takes its place in each subscriber's
 * queue like a wire_conn_send_* would, so a connection's own sends and the
 * publishes it receives keep the order in which they were made, and it
 * leaves in the same single write per loop turn (at once when published
 * from outside any callback).
 *
 * Slow subscribers: a subscriber that already has more than its endpoint's
 * max_backpressure bytes queued does not get the message; it is closed with
 * 1008 exactly as a wire_conn_send_* to it would, and the lost delivery is
 * counted (wire_server_publish_drops). The publisher and the other
 * subscribers are never held up. Closing rather than skipping: a subscriber
 * that silently misses messages cannot know it did.
 *
 * Lifetime: a connection can subscribe from on_connect on (deferred or
 * open). Only open connections receive. When a connection closes, its
 * subscriptions are still listed during its on_close (which can, say,
 * publish "left" to each of its rooms; the closing connection itself gets
 * nothing) and are dropped as soon as on_close returns (for a connection
 * rejected after subscribing: when its socket closes). A topic exists while
 * it has subscribers.
 */
#define WIRE_MAX_TOPIC_LENGTH 256u
#define WIRE_DEFAULT_MAX_TOPICS_PER_CONN 1024u

/*
 * Subscribe conn to a topic; subscribing twice is one subscription.
 * Returns 0, WIRE_EINVAL (conn or topic NULL, empty topic, topic longer
 * than WIRE_MAX_TOPIC_LENGTH), WIRE_ECLOSED (the connection is closing or
 * closed, or its handshake was rejected), WIRE_ETOOMANY (the connection has
 * max_topics_per_conn topics already) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_conn_subscribe(wire_conn *conn, const char *topic, size_t len);
/*
 * End one subscription.
 * Returns 0, WIRE_ENOTFOUND (not subscribed, which is every topic once the
 * connection's on_close has returned) or WIRE_EINVAL (conn or topic NULL).
 */
WIRE_EXTERN int wire_conn_unsubscribe(wire_conn *conn, const char *topic, size_t len);
/* 1 when conn is subscribed to the topic, else 0 (also for NULL arguments). */
WIRE_EXTERN int wire_conn_is_subscribed(const wire_conn *conn, const char *topic, size_t len);
/* The connection's topics: their number, and the i-th (in no particular
 * order; an unsubscribe may reorder them). The name is NUL-terminated and
 * valid until that subscription ends; NULL .ptr when i is out of range. */
WIRE_EXTERN size_t wire_conn_topic_count(const wire_conn *conn);
WIRE_EXTERN wire_str wire_conn_topic_at(const wire_conn *conn, size_t i);

/*
 * Send one message (the bytes are copied once) to every open subscriber of
 * the topic except `exclude` (may be NULL). kind says the frame: text (must
 * be valid UTF-8) or binary; it goes to every subscriber whatever its
 * endpoint's codec.
 * Returns the number of connections it was queued for (0 when the topic has
 * no subscribers), or WIRE_EINVAL (server or topic NULL, bad topic length,
 * bad kind, data NULL with data_len > 0), WIRE_EUTF8 or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_publish(wire_server *server, const char *topic, size_t len,
                                    wire_msg_kind kind, const void *data, size_t data_len,
                                    wire_conn *exclude);
/*
 * Publish a value: encoded once per codec the topic's subscribers use (JSON
 * as a text frame, MessagePack as a binary frame), and each subscriber gets
 * its endpoint's encoding. Subscribers on RAW endpoints get the JSON text.
 * Response schemas are not checked (validate before publishing if needed).
 * When a needed encoding fails, nothing is sent.
 * Returns the number of connections it was queued for, or WIRE_EINVAL,
 * WIRE_ESERIALIZE (err says why; err may be NULL) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_publish_value(wire_server *server, const char *topic, size_t len,
                                          const wire_value *v, wire_conn *exclude, wire_error *err);
/*
 * Encodes a published value for the subscribers of one endpoint whose host
 * encodes messages itself (a serializer the core does not have): sets *kind
 * (text or binary) and the bytes (*data, *len; they must stay valid until
 * the publish returns). Returns 0, or a negative WIRE_E* code that stops the
 * publish (nothing is sent).
 */
typedef int (*wire_publish_encode_fn)(void *ud, const wire_endpoint *ep, wire_msg_kind *kind,
                                      const void **data, size_t *len);
#define WIRE_MAX_OWN_ENDPOINTS 64u
/*
 * wire_server_publish_value, except that subscribers on the endpoints
 * own[0..n_own) (at most WIRE_MAX_OWN_ENDPOINTS) get what encode returns
 * for their endpoint: called once per such endpoint that has a receiver
 * for this publish, before anything is sent, never per subscriber. encode
 * may call into the server (subscribe, send, even publish).
 * Returns the number of connections it was queued for, or WIRE_EINVAL (as
 * wire_server_publish_value, or own / encode NULL with n_own > 0, too many
 * own endpoints, encode gave a bad kind), WIRE_EUTF8 (encode gave text that
 * is not UTF-8), WIRE_ESERIALIZE, WIRE_ENOMEM or encode's own code.
 */
WIRE_EXTERN int wire_server_publish_value_ex(wire_server *server, const char *topic, size_t len,
                                             const wire_value *v, wire_conn *exclude,
                                             const wire_endpoint *const *own, size_t n_own,
                                             wire_publish_encode_fn encode, void *ud,
                                             wire_error *err);
/* Number of subscribers of a topic (0 for an unknown topic or bad arguments),
 * counting deferred connections and closing ones not yet gone. */
WIRE_EXTERN size_t wire_server_subscriber_count(const wire_server *server, const char *topic,
                                                size_t len);
/* Number of topics with at least one subscriber. */
WIRE_EXTERN size_t wire_server_topic_count(const wire_server *server);
/* Deliveries refused since the server was created: subscribers over their
 * backpressure limit (closed with 1008), or out of memory queueing. */
WIRE_EXTERN uint64_t wire_server_publish_drops(const wire_server *server);

/* ------------------------------------------------------------------------ */
/* Broker                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A broker carries publishes between processes (on one machine or many), so
 * a wire_server_publish* in any process reaches the topic's subscribers in
 * every process attached to the same backplane. Local subscribers get the
 * message directly, once: what comes back from the backplane with this
 * server's own origin id is skipped.
 *
 * The engine interface below is what a backplane implements; the core ships
 * one, Redis (wire_server_use_redis). A server has at most one broker.
 *
 * Envelope (what an engine carries; see docs/scaling.md): 12 bytes of header,
 * then the payload.
 *   byte 0      0xFF (never the first byte of UTF-8 text)
 *   byte 1      'W'
 *   byte 2      version, 1
 *   byte 3      kind: 1 text, 2 binary, 3 value (the payload is MessagePack)
 *   bytes 4..11 origin id of the publishing server, big-endian
 * With 0x80 set in the kind (history topics), bytes 12..19 number the
 * publication among the origin's publications to the topic (big-endian,
 * from 1), and the payload follows them: a receiver that sees a hole
 * reports it (see History).
 * A payload that does not start with 0xFF 'W' is a plain message from
 * outside: delivered as a text frame when it is valid UTF-8, else binary.
 */
typedef enum wire_broker_state {
  WIRE_BROKER_CONNECTING = 0, /* first connection not yet made */
  WIRE_BROKER_UP = 1,         /* publishes cross processes */
  WIRE_BROKER_DOWN = 2        /* lost; local delivery goes on; reconnecting */
} wire_broker_state;

/* A backplane engine. Every function is called on the server's loop thread. */
typedef struct wire_broker_engine {
  /* Carry one envelope to the other processes. Return 0 when taken, or a
   * negative WIRE_E* code when it is dropped (the server counts the drop). */
  int (*publish)(void *impl, const char *topic, size_t len, const void *envelope,
                 size_t envelope_len);
  /* The topic got its first local subscriber (subscribed 1) or lost its last
   * (subscribed 0): listen for it on the backplane, or stop. */
  void (*topic)(void *impl, const char *topic, size_t len, int subscribed);
  /* The server is shutting down: close every handle (a wire_broker_hold is
   * released as each one's close callback runs). Called once. */
  void (*close)(void *impl);
  /* wire_server_free: release impl. Called once, after close. */
  void (*free)(void *impl);
} wire_broker_engine;

/*
 * Attach an engine (copied) with its impl. The server owns impl from here
 * (engine->free releases it, even when this call fails).
 * Returns 0, WIRE_EINVAL (NULL server or engine, a NULL function),
 * WIRE_ESTATE (a broker is attached already, or the server is shutting down)
 * or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_set_broker(wire_server *server, const wire_broker_engine *engine,
                                       void *impl);
/*
 * The delivery entry point: an envelope (or a plain payload) arrived from the
 * backplane for `topic`. Delivered to the local subscribers unless its origin
 * is this server. Returns the number of connections it was queued for, or
 * WIRE_EINVAL (bad arguments, bad topic length), WIRE_EDESERIALIZE (an
 * envelope of an unknown version or kind, or a value that does not decode;
 * counted as invalid) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_broker_deliver(wire_server *server, const char *topic, size_t len,
                                    const void *data, size_t data_len);
/* Engines: the connection state changed (message: one human-readable line,
 * may be NULL). The state callback runs once per call. */
WIRE_EXTERN void wire_broker_report(wire_server *server, wire_broker_state state,
                                    const char *message);
/* Engines: a handle of the engine is open on the server's loop: the shutdown
 * finishes only after the matching release. */
WIRE_EXTERN void wire_broker_hold(wire_server *server);
WIRE_EXTERN void wire_broker_release(wire_server *server);
/* The server's uv_loop_t* (owned or borrowed), for engines. */
WIRE_EXTERN void *wire_server_loop(const wire_server *server);
/* This server's origin id (random, fixed for its life), for engines and tests. */
WIRE_EXTERN uint64_t wire_server_origin(const wire_server *server);

typedef void (*wire_broker_state_cb)(wire_server *server, wire_broker_state state,
                                     const char *message, void *user_data);
/* Called on every broker state change, and when publishes start or stop being
 * dropped for a full publish queue (state unchanged); cb NULL stops the calls.
 * Returns 0 or WIRE_EINVAL (NULL server, or the server has no broker). */
WIRE_EXTERN int wire_server_on_broker_state(wire_server *server, wire_broker_state_cb cb,
                                            void *user_data);

typedef struct wire_broker_stats {
  wire_broker_state state;
  uint64_t published;     /* envelopes handed to the backplane */
  uint64_t dropped;       /* publishes that did not leave this process (down,
                             publish queue full, refused by the backplane) */
  uint64_t received;      /* messages from other processes delivered locally */
  uint64_t invalid;       /* messages from the backplane that could not be read */
  uint64_t reconnects;    /* connections re-established after a loss (Redis) */
  uint64_t channels;      /* backplane subscriptions confirmed (Redis) */
  size_t pending_bytes;   /* publish bytes queued, not yet written (Redis) */
} wire_broker_stats;
/* Fill *out. Returns 0, WIRE_EINVAL (NULL) or WIRE_ENOTFOUND (no broker). */
WIRE_EXTERN int wire_server_broker_stats(const wire_server *server, wire_broker_stats *out);

/*
 * Redis as the backplane (RESP2, plain pub/sub: at most once). The URL is
 * redis://[[user]:password@]host[:port][/db] (port 6379, db 0 by default;
 * user and password percent-decoded; AUTH user password when a user is
 * given, AUTH password otherwise). Topic T is the channel <prefix>T; one
 * connection subscribes (only to topics with local subscribers), another
 * publishes. A lost connection is retried with capped exponential backoff
 * and the subscriptions are made again; publishes meanwhile are dropped and
 * counted (wire_broker_stats.dropped), local delivery goes on.
 */
typedef struct wire_redis_options {
  const char *prefix;       /* channel prefix; NULL = "wirecore:" */
  size_t max_pending_bytes; /* publish bytes queued for Redis before publishes
                               are dropped; 0 = 16 MiB */
  unsigned reconnect_min_ms; /* first retry delay; 0 = 100 */
  unsigned reconnect_max_ms; /* cap of the doubling delay; 0 = 2000 */
} wire_redis_options;
/*
 * Attach Redis to the server and start connecting (on the server's loop).
 * opts may be NULL. Returns 0, WIRE_EINVAL (a bad URL: err says why; err may
 * be NULL), WIRE_ESTATE (a broker is attached already), WIRE_EUV or
 * WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_use_redis(wire_server *server, const char *url,
                                      const wire_redis_options *opts, wire_error *err);

/* ------------------------------------------------------------------------ */
/* Workers                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * One process per core: a supervisor forks N worker processes that share
 * the port through SO_REUSEPORT (the kernel spreads new connections over
 * them). The supervisor restarts a worker that dies (with backoff, logged),
 * passes SIGINT/SIGTERM on to every worker (each shuts down gracefully: 1001
 * to its clients) and returns when all are gone. SIGHUP replaces the workers
 * one at a time: a new worker is started and the old one is told to drain
 * (SIGHUP: wire_server_drain) only once the new one listens, so a deploy
 * refuses no connection attempt.
 *
 * Fork safety: call wire_supervise before creating any thread or server (a
 * forked child gets only the calling thread); create the server inside the
 * worker function, after the fork. Stdout and stderr are shared; a worker's
 * exit status is its function's return value.
 *
 * In a worker (the environment has WIRECORE_WORKER_FD, set by the
 * supervisor), wire_server_listen takes the listening socket from the
 * supervisor, which keeps one SO_REUSEPORT socket per worker slot and
 * address: a replacement gets the socket of the worker it replaces, so
 * nothing queued is reset when the old one drains. Its first successful
 * listen also tells the supervisor that the worker is ready. With
 * WIRECORE_REUSEPORT=1 (other process managers, node:cluster),
 * wire_server_listen binds its own socket with SO_REUSEPORT.
 */
typedef struct wire_supervisor_options {
  unsigned workers;         /* worker processes; 0 = one per online CPU */
  unsigned restart_min_ms;  /* first restart delay of a crashing worker; 0 = 100 */
  unsigned restart_max_ms;  /* cap of the doubling delay; 0 = 5000 */
  unsigned stop_timeout_ms; /* after SIGTERM, SIGKILL what is left; 0 = 15000 */
  unsigned ready_timeout_ms; /* a replacement that does not listen by then is
                                given up (the old worker stays); 0 = 10000 */
  const char *name;         /* prefix of the log lines (stderr); NULL = "wirecore" */
  /* Optional, for hosts with their own fork rules (CPython's PyOS_*Fork):
   * before_fork runs in the supervisor before each fork, after_fork right
   * after it in the supervisor (child 0) and in the new worker (child 1). */
  void (*before_fork)(void *user_data);
  void (*after_fork)(int child, void *user_data);
  /* Optional: fork through the host (Ruby's Process.fork, which redoes the
   * VM's own per-process state); returns what fork() does. NULL = fork(). */
  int (*fork)(void *user_data);
} wire_supervisor_options;

/* Runs in each worker process after the fork; index is 0..workers-1 (a
 * replacement gets the index of the worker it replaces). The return value is
 * the worker's exit status. */
typedef int (*wire_worker_fn)(unsigned index, void *user_data);

/*
 * Supervise workers until SIGINT or SIGTERM has stopped them all (blocks;
 * the calling process is the supervisor and never runs fn itself).
 * Returns 0 when every worker exited after the stop, 1 when some had to be
 * killed or exited with a failure status, or WIRE_EINVAL (fn NULL) or
 * WIRE_EUV (pipe, fork or signal setup failed before any worker started).
 */
WIRE_EXTERN int wire_supervise(const wire_supervisor_options *opts, wire_worker_fn fn,
                               void *user_data);
/* The worker's index (0..N-1) when this process is a worker, else -1. */
WIRE_EXTERN int wire_worker_index(void);

/*
 * For process managers other than wire_supervise (node:cluster, systemd, an
 * own supervisor): a listening socket for host:port (an IP literal or
 * "localhost", as wire_server_listen reads them) with SO_REUSEPORT, to keep
 * for one worker's place across its restarts. A worker started with
 * WIRECORE_REUSEPORT=1 and WIRECORE_LISTEN_FD=<the descriptor> (inherited)
 * listens on it instead of binding a socket of its own: its first
 * wire_server_listen for that exact address takes it. A replacement given
 * the same socket serves what waits in its queue, so a drained or killed
 * worker loses no queued connection. The descriptor is close-on-exec (pass
 * it to the child by dup2, as a spawn's stdio entry does).
 * Returns the descriptor, or WIRE_EINVAL (bad host or port),
 * WIRE_EADDRINUSE (taken by a socket without SO_REUSEPORT) or WIRE_ELISTEN.
 */
WIRE_EXTERN int wire_listen_socket(const char *host, int port);

/*
 * Stop accepting without dropping anything: accept every connection already
 * waiting in the listeners' backlogs, close the listeners, and keep serving;
 * once no connection is left, or after timeout_ms (0 = 30000), start the
 * graceful shutdown (wire_server_shutdown with its default deadline, `done`
 * as its callback). What a worker does on SIGHUP.
 * Returns 0, WIRE_EINVAL, WIRE_ESTATE (not listening, or draining already)
 * or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_drain(wire_server *server, unsigned timeout_ms,
                                  wire_shutdown_cb done, void *user_data);

/* ------------------------------------------------------------------------ */
/* Metrics, health and logs (docs/operations.md)                            */
/* ------------------------------------------------------------------------ */

/*
 * Answer plain HTTP GET requests for these paths on the WebSocket port:
 * metrics_path with the Prometheus text format (0.0.4), health_path with a
 * short JSON body, 200 while accepting and 503 while draining, shutting down
 * or when a broker is attached and not up. NULL or "" turns a path off (the
 * default: both off). A GET for either path is answered whatever its
 * headers, before routing; every other request is handled as before.
 * Copies the strings. Returns 0, WIRE_EINVAL (a path not starting with '/',
 * or holding a space, '?' or a control character) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_set_metrics(wire_server *server, const char *metrics_path,
                                        const char *health_path);
/*
 * Listen on a separate port that serves only the metrics and health paths
 * (/metrics and /health unless wire_server_set_metrics chose others) and
 * answers 404 to anything else, upgrades included. It stays open through a
 * drain and the graceful shutdown, so health checks see the 503, and closes
 * once the shutdown has no connection left.
 * Returns 0, WIRE_EADDRINUSE, WIRE_ELISTEN, WIRE_EINVAL or WIRE_ESTATE.
 */
WIRE_EXTERN int wire_server_listen_metrics(wire_server *server, const char *host, int port);
/* The port of the first metrics listener, or -1. */
WIRE_EXTERN int wire_server_metrics_port(const wire_server *server);

#define WIRE_METRICS_PROMETHEUS 0 /* text exposition format 0.0.4 */
#define WIRE_METRICS_JSON 1       /* one JSON object (what app.stats() returns) */
/*
 * Render every counter (in a worker: summed over all workers) into buf, NUL
 * terminated, as snprintf does: returns the full length (call again with a
 * larger buffer when it is >= cap; buf may be NULL when cap is 0), or
 * WIRE_EINVAL (NULL server, unknown format) or WIRE_ENOMEM.
 */
WIRE_EXTERN int64_t wire_server_metrics_render(wire_server *server, int format, char *buf,
                                               size_t cap);
/*
 * Add one handler run of `seconds` to the endpoint's latency histogram
 * (wirecore_handler_duration_seconds). The packages call it around each
 * handler; one call costs a few nanoseconds and takes no lock. Returns 0 or
 * WIRE_EINVAL (NULL, an endpoint of another server, a negative or NaN time).
 */
WIRE_EXTERN int wire_server_observe(wire_server *server, const wire_endpoint *endpoint,
                                    double seconds);

/* Log levels; the numbers are Python's logging levels. */
#define WIRE_LOG_DEBUG 10
#define WIRE_LOG_INFO 20
#define WIRE_LOG_WARNING 30
#define WIRE_LOG_ERROR 40

/* One structured event. Strings are borrowed for the call and never NULL. */
typedef struct wire_log_event {
  int level;          /* WIRE_LOG_* */
  const char *event;  /* "open", "close", "reject" or "error" */
  uint64_t conn_id;   /* wire_conn_id; 0 when there is no connection */
  const char *remote; /* peer address, "" when unknown */
  int remote_port;    /* 0 when unknown */
  const char *path;   /* request path, "" before one was read */
  int status;         /* reject: the HTTP status sent */
  int close_code;     /* close: the code on_close saw */
  int error;          /* error: the wire_errno code */
  const char *message; /* error text, close reason or rejection reason; "" */
  double duration;    /* close: seconds the connection was open */
  uint64_t bytes_in, bytes_out; /* close: data message payload bytes */
} wire_log_event;

typedef void (*wire_log_cb)(const wire_log_event *event, void *user_data);
/*
 * Send events at or above min_level to cb: "open" and "close" (INFO) for
 * every accepted connection, "reject" (INFO) for every refused upgrade,
 * "error" for every error reported on a connection (INFO for what the peer
 * sent: protocol, size, decoding, validation and unknown-message errors;
 * ERROR for handler failures and out-of-memory; WARNING otherwise). cb NULL turns
 * logging off (the default): then no event is built at all.
 * Returns 0 or WIRE_EINVAL (NULL server).
 */
WIRE_EXTERN int wire_server_set_log(wire_server *server, wire_log_cb cb, void *user_data,
                                    int min_level);
/* Format an event as one JSON object (no newline) into buf, as snprintf
 * does: returns the full length, or WIRE_EINVAL (NULL event). */
WIRE_EXTERN int wire_log_event_json(const wire_log_event *event, char *buf, size_t cap);

/* ------------------------------------------------------------------------ */
/* History                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Topic history (opt in, see docs/scaling.md): the server keeps the last N
 * publications of matching topics for at most ttl, numbers them, and lets a
 * subscriber that comes back with its last position get what it missed.
 *
 * A publication on a history topic reaches subscribers in an envelope, in
 * their endpoint's codec (RAW endpoints get JSON; endpoints with their own
 * encoder get the codec's encoding too):
 *   {"topic":"room:1","offset":"<epoch>:<seq>","data":<the published value>}
 * A text publish (wire_server_publish) becomes a string value; a binary
 * publish, or any value JSON cannot hold (binary, NaN), is refused with
 * WIRE_ESERIALIZE, since history is kept as JSON.
 *
 * A position is "<epoch>:<seq>": 16 lowercase hex digits, a colon, and the
 * decimal sequence number of the publication (1 for the first; "<epoch>:0"
 * before any). The epoch is random per topic history: a position from a
 * history that is gone (a restarted process, a topic whose history expired)
 * is recognised as such, never mistaken for a place in the new one.
 *
 * Storage is in the process (per worker: with several workers or a broker,
 * each process numbers its own publications and a position only recovers
 * against the process that gave it; elsewhere it is reported as "epoch").
 * When a broker is back UP after being DOWN, every history starts a new
 * epoch and its subscribers get the truncated message (below): what other
 * processes published meanwhile may be lost, and is never lost silently.
 * With Redis (wire_server_use_redis) history topics are stored in Redis
 * Streams instead, shared by every process: one position sequence per
 * topic, recovered anywhere; a publish to a history topic is delivered (here
 * too) when Redis announces it, so it returns 0. See docs/scaling.md.
 */
#define WIRE_MAX_HISTORY 1000000u /* the largest n */
#define WIRE_POSITION_MAX 48u     /* a position's length, NUL included, is below this */

/*
 * Keep history for the topic `pattern` (exact), or for every topic starting
 * with its text before a final '*' ("room:*"; "*" alone: every topic). An
 * exact pattern wins over prefixes, a longer prefix over a shorter one.
 * n: publications kept per topic (1..WIRE_MAX_HISTORY). ttl_ms: how long a
 * publication is kept, and how long a topic's history lives without a new
 * publication (then it is freed, and with it its epoch); 0 = no time limit
 * (memory then grows with the number of topics ever published to).
 * Returns 0, WIRE_EINVAL (NULL server or pattern, empty or longer than
 * WIRE_MAX_TOPIC_LENGTH, n out of range), WIRE_ESTATE (the pattern has
 * history already) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_topic_history(wire_server *server, const char *pattern, size_t len,
                                          unsigned n, uint64_t ttl_ms);

/* What a subscribe with a position found. */
typedef struct wire_recovery {
  int recovered;        /* 1: every retained publication after the position follows */
  const char *reason;   /* NULL when recovered; else "too_old" (publications after the
                           position are no longer kept), "epoch" (the position is from
                           another history), "invalid" (not a position of this topic) or
                           "unavailable" (history in Redis, which cannot be reached now) */
  char position[WIRE_POSITION_MAX]; /* the topic's current position */
  uint64_t replayed;    /* publications queued from history (for a deferred connection:
                           that will be queued once it is open) */
} wire_recovery;

/*
 * Subscribe conn to a history topic and deliver every retained publication
 * after `since` (a position; NULL or empty: none, only what comes next), in
 * order, then the live ones: no gap, no duplicate. On a connection still in
 * on_connect (deferred), the replay is queued when it opens and also covers
 * what was published meanwhile. When the publications after `since` are not
 * all retained (or it is from another epoch, or not a position), the
 * subscription starts all the same, nothing is replayed, *out says why, and
 * the client gets {"topic":...,"type":"truncated","offset":"<current>"} (in
 * its codec) so the application can send it a full state. Subscribing again
 * to a topic the connection has is a no-op reported as recovered.
 * out may be NULL. Returns 0, or as wire_conn_subscribe, or WIRE_EINVAL when
 * the topic has no history (wire_server_topic_history).
 */
WIRE_EXTERN int wire_conn_subscribe_since(wire_conn *conn, const char *topic, size_t len,
                                          const char *since, size_t since_len,
                                          wire_recovery *out);

/*
 * The current position of a history topic into buf (NUL-terminated; cap of
 * WIRE_POSITION_MAX is enough), e.g. to send along with a full state.
 * Returns the length, or WIRE_EINVAL (bad arguments, no history for the
 * topic, cap too small) or WIRE_ENOMEM.
 */
WIRE_EXTERN int wire_server_topic_position(wire_server *server, const char *topic, size_t len,
                                           char *buf, size_t cap);

/*
 * Parse a position "<epoch>:<seq>" (the decoder behind the calls above).
 * Returns 0 and sets *epoch and *seq, or WIRE_EINVAL.
 */
WIRE_EXTERN int wire_position_parse(const char *s, size_t len, uint64_t *epoch, uint64_t *seq);

/* ------------------------------------------------------------------------ */
/* Callback batches                                                         */
/* ------------------------------------------------------------------------ */

/*
 * A host language's batch hook: fn(server, 1, user_data) when the outermost
 * of the server's libuv callbacks begins (one read, one timer, ...), and
 * fn(server, 0, user_data) when it ends, before the output its callbacks
 * queued is written, so what the host runs then (e.g. promise jobs) joins
 * that write. Every wire_callbacks call of the batch falls between the two;
 * callbacks the final write itself causes come after the end. A host opens
 * one scope per batch instead of one per callback. fn must not free the
 * server. fn NULL turns the hook off (the default).
 * Returns 0 or WIRE_EINVAL (NULL server).
 */
typedef void (*wire_batch_cb)(wire_server *server, int begin, void *user_data);
WIRE_EXTERN int wire_server_set_batch_hook(wire_server *server, wire_batch_cb fn,
                                           void *user_data);

#ifdef __cplusplus
}
#endif
#endif /* WIRECORE_H */
