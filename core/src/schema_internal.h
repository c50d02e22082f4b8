/*
 * schema_internal.h -- the compiled form of a JSON Schema, shared by the
 * compiler (schema.c), the validator (schema_validate.c), the format and
 * regex helpers and the dispatcher (dispatch.c). Never installed.
 *
 * A compiled schema is an array of nodes, one per schema object (or boolean
 * schema) that evaluation can reach. A node has a keyword bitmask and the data
 * of each keyword present; subschemas are node indices, $ref is resolved to
 * the target's index at compile time, $dynamicRef keeps its anchor name and is
 * resolved against the dynamic scope at validation time.
 */
#ifndef WIRE_SCHEMA_INTERNAL_H
#define WIRE_SCHEMA_INTERNAL_H

#include "internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Keyword bits (one per keyword that has work to do at validation time). */
enum {
  WS_K_FALSE = 0, /* boolean schema false */
  WS_K_TYPE,
  WS_K_ENUM,
  WS_K_CONST,
  WS_K_MULTIPLEOF,
  WS_K_MAXIMUM,
  WS_K_EXMAXIMUM,
  WS_K_MINIMUM,
  WS_K_EXMINIMUM,
  WS_K_MAXLENGTH,
  WS_K_MINLENGTH,
  WS_K_PATTERN,
  WS_K_FORMAT,
  WS_K_MAXITEMS,
  WS_K_MINITEMS,
  WS_K_UNIQUEITEMS,
  WS_K_CONTAINS,
  WS_K_MAXPROPERTIES,
  WS_K_MINPROPERTIES,
  WS_K_REQUIRED,
  WS_K_DEPREQUIRED,
  WS_K_PROPERTIES,
  WS_K_PATTERNPROPS,
  WS_K_ADDITIONALPROPS,
  WS_K_PROPERTYNAMES,
  WS_K_PREFIXITEMS,
  WS_K_ITEMS,
  WS_K_ALLOF,
  WS_K_ANYOF,
  WS_K_ONEOF,
  WS_K_NOT,
  WS_K_IF,
  WS_K_DEPSCHEMAS,
  WS_K_REF,
  WS_K_DYNREF,
  WS_K_UNEVALITEMS,
  WS_K_UNEVALPROPS,
  WS_K__COUNT
};
#define WS_BIT(k) (UINT64_C(1) << (k))

#define WS_NUMBER_KW                                                                               \
  (WS_BIT(WS_K_MULTIPLEOF) | WS_BIT(WS_K_MAXIMUM) | WS_BIT(WS_K_EXMAXIMUM) |                       \
   WS_BIT(WS_K_MINIMUM) | WS_BIT(WS_K_EXMINIMUM))
#define WS_STRING_KW (WS_BIT(WS_K_MAXLENGTH) | WS_BIT(WS_K_MINLENGTH) | WS_BIT(WS_K_PATTERN))
#define WS_ARRAY_KW                                                                                \
  (WS_BIT(WS_K_MAXITEMS) | WS_BIT(WS_K_MINITEMS) | WS_BIT(WS_K_UNIQUEITEMS) |                      \
   WS_BIT(WS_K_CONTAINS) | WS_BIT(WS_K_PREFIXITEMS) | WS_BIT(WS_K_ITEMS) |                         \
   WS_BIT(WS_K_UNEVALITEMS))
#define WS_OBJECT_KW                                                                               \
  (WS_BIT(WS_K_MAXPROPERTIES) | WS_BIT(WS_K_MINPROPERTIES) | WS_BIT(WS_K_REQUIRED) |               \
   WS_BIT(WS_K_DEPREQUIRED) | WS_BIT(WS_K_PROPERTIES) | WS_BIT(WS_K_PATTERNPROPS) |                \
   WS_BIT(WS_K_ADDITIONALPROPS) | WS_BIT(WS_K_PROPERTYNAMES) | WS_BIT(WS_K_DEPSCHEMAS) |           \
   WS_BIT(WS_K_UNEVALPROPS))
#define WS_INPLACE_KW                                                                              \
  (WS_BIT(WS_K_ALLOF) | WS_BIT(WS_K_ANYOF) | WS_BIT(WS_K_ONEOF) | WS_BIT(WS_K_NOT) |               \
   WS_BIT(WS_K_IF) | WS_BIT(WS_K_REF) | WS_BIT(WS_K_DYNREF))

#define WS_LINEAR_PROPS 8

/* Keywords with subschemas: a node without any is a leaf. */
#define WS_SUBSCHEMA_KW                                                                            \
  (WS_INPLACE_KW | WS_BIT(WS_K_PREFIXITEMS) | WS_BIT(WS_K_ITEMS) | WS_BIT(WS_K_CONTAINS) |         \
   WS_BIT(WS_K_UNEVALITEMS) | WS_BIT(WS_K_PROPERTIES) | WS_BIT(WS_K_PATTERNPROPS) |                \
   WS_BIT(WS_K_ADDITIONALPROPS) | WS_BIT(WS_K_PROPERTYNAMES) | WS_BIT(WS_K_DEPSCHEMAS) |           \
   WS_BIT(WS_K_UNEVALPROPS))

/* JSON Schema's instance types, as bits of ws_node.types. */
enum {
  WS_T_NULL = 1u << 0,
  WS_T_BOOLEAN = 1u << 1,
  WS_T_INTEGER = 1u << 2,
  WS_T_NUMBER = 1u << 3, /* includes integers */
  WS_T_STRING = 1u << 4,
  WS_T_ARRAY = 1u << 5,
  WS_T_OBJECT = 1u << 6,
};

/* `format` values the validator can assert. */
typedef enum ws_format {
  WS_F_UNKNOWN = 0,
  WS_F_DATE_TIME,
  WS_F_DATE,
  WS_F_TIME,
  WS_F_DURATION,
  WS_F_EMAIL,
  WS_F_IDN_EMAIL,
  WS_F_HOSTNAME,
  WS_F_IDN_HOSTNAME,
  WS_F_IPV4,
  WS_F_IPV6,
  WS_F_URI,
  WS_F_URI_REFERENCE,
  WS_F_IRI,
  WS_F_IRI_REFERENCE,
  WS_F_URI_TEMPLATE,
  WS_F_UUID,
  WS_F_JSON_POINTER,
  WS_F_RELATIVE_JSON_POINTER,
  WS_F_REGEX,
} ws_format;

typedef struct ws_regex {
  pcre2_code *code;
  const char *source; /* the pattern as written in the schema */
  bool jit;           /* JIT-compiled: matched through pcre2_jit_match */
} ws_regex;

typedef struct ws_prop {
  const char *key;
  size_t len;
  int32_t node;
} ws_prop;

typedef struct ws_patprop {
  ws_regex re;
  int32_t node;
} ws_patprop;

/* dependentRequired: when `key` is present, every name in `names` must be. */
typedef struct ws_depreq {
  const char *key;
  size_t len;
  const wire_value *names; /* an array of strings (schema arena) */
} ws_depreq;

typedef struct ws_list {
  int32_t *items;
  uint32_t len;
} ws_list;

typedef struct ws_node {
  uint64_t kw;      /* WS_BIT(WS_K_*) of the keywords present */
  uint32_t types;   /* WS_T_* for `type` */
  int32_t resource; /* the schema resource this node belongs to (dynamic scope) */
  const char *path; /* JSON Pointer of this schema (prefixed "uri#" outside the root doc) */
  /* numbers: the keyword values as written (INT, UINT or DOUBLE) */
  wire_value multipleof, maximum, exmaximum, minimum, exminimum;
  uint64_t maxlength, minlength, maxitems, minitems, maxcontains, mincontains;
  uint64_t maxprops, minprops;
  const wire_value *enum_; /* array */
  const wire_value *const_;
  ws_regex pattern;
  ws_format format;
  const char *format_name;
  const ws_prop *required; /* names; .node = index into properties or -1 */
  uint32_t n_required;
  const ws_depreq *depreq;
  uint32_t n_depreq;
  const ws_prop *props; /* properties, in schema order */
  uint32_t n_props;
  /* With more than WS_LINEAR_PROPS properties: indices into props sorted by
   * (length, bytes), for a binary search. */
  const uint32_t *props_sorted;
  const ws_patprop *patprops;
  uint32_t n_patprops;
  const ws_prop *depschemas;
  uint32_t n_depschemas;
  int32_t additional, propnames, items, contains, not_, if_, then_, else_;
  int32_t unevalitems, unevalprops, ref, dynref;
  ws_list prefixitems, allof, anyof, oneof;
  /* $dynamicRef: the anchor to look for in the dynamic scope, when the
   * statically resolved target (dynref) carries a matching $dynamicAnchor. */
  const char *dynanchor;
} ws_node;

/* A dynamic anchor of a resource: name -> node. */
typedef struct ws_anchor {
  const char *name;
  int32_t node;
} ws_anchor;

/* A schema resource (a schema with $id, or a document root). */
typedef struct ws_resource {
  const char *uri;         /* absolute URI without fragment */
  const wire_value *value; /* the resource's root schema */
  ws_anchor *dynanchors;   /* compiled lazily: node = -1 until needed */
  uint32_t n_dynanchors;
  uint32_t cap_dynanchors;
} ws_resource;

struct wire_schema {
  wire__arena arena; /* decoded documents, strings, keyword arrays */
  ws_node *nodes;
  uint32_t n_nodes;
  int32_t root;
  ws_resource *resources;
  uint32_t n_resources;
  unsigned flags;
  /* Scratch for PCRE2 matches. Validation reuses it, which is why a schema
   * must not validate on two threads at once (nothing in wirecore is
   * thread-safe). Its size is fixed at compile time. */
  pcre2_match_data *match;
  /* IDNA patterns (schema_idn.c), compiled only when a hostname or email
   * format asserts. */
  pcre2_code *idn[3];
};

/* ---- helpers shared between the schema files ---- */

/* Resolve `ref` against `base` per RFC 3986 §5.2 into a new arena string.
 * Returns NULL when memory runs out. */
WIRE_HIDDEN char *wire__uri_resolve(wire__arena *a, const char *base, const char *ref);

/* Compile an ECMA-262 pattern into PCRE2 (translating ECMA-only escapes).
 * Returns 0, or WIRE_ESCHEMA with a message in `msg` (size msg_len). */
WIRE_HIDDEN int wire__regex_compile(ws_regex *re, const char *src, size_t len, char *msg,
                                    size_t msg_len);
WIRE_HIDDEN void wire__regex_free(ws_regex *re);
/* 1 when `re` matches somewhere in s[0..len), 0 when not, -1 on engine error. */
WIRE_HIDDEN int wire__regex_search(const ws_regex *re, pcre2_match_data *md, const char *s,
                                   size_t len);

/* Map a format name to its id (WS_F_UNKNOWN when the name is not asserted). */
WIRE_HIDDEN ws_format wire__format_lookup(const char *name, size_t len);
/* 1 when string s[0..len) is valid for `f` (S supplies scratch and the
 * IDNA patterns). */
WIRE_HIDDEN int wire__format_check(const wire_schema *S, ws_format f, const char *s, size_t len);
/* Compile the IDNA patterns into S (idempotent). Returns 0 or WIRE_ENOMEM. */
WIRE_HIDDEN int wire__idn_init(wire_schema *S);
WIRE_HIDDEN void wire__idn_free(wire_schema *S);
/* RFC 1123 host name; with `idn`, U-labels and IDNA separators too. A-labels
 * are decoded and checked in both modes. Needs wire__idn_init. */
WIRE_HIDDEN bool wire__hostname_check(const wire_schema *S, const char *s, size_t n, bool idn);

/* Bundled meta-schemas (metaschema_data.c): the JSON text of `uri` or NULL. */
WIRE_HIDDEN const char *wire__metaschema_lookup(const char *uri, size_t *len);

/* Exact numeric comparison across INT / UINT / DOUBLE: <0, 0, >0. */
WIRE_HIDDEN int wire__num_cmp(const wire_value *a, const wire_value *b);

/* The root node of a compiled schema (for the dispatcher). */
static inline const ws_node *wire__schema_node(const wire_schema *s, int32_t i) {
  return &s->nodes[i];
}

#endif /* WIRE_SCHEMA_INTERNAL_H */
