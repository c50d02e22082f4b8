/*
 * node_convert.c -- conversions between the core and JavaScript: wire_value <->
 * JS values, the handshake request view -> a plain object, wire errors ->
 * JS errors, and the encode()/decode() helpers exported to JS.
 */
#include "addon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WN_MAX_DEPTH 512

/* ---- errors ------------------------------------------------------------ */

/* Throw an Error for the last failed Node-API call, unless an exception is
 * already pending (then that one propagates). */
void wn_throw_last_error(napi_env env, const char *call) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending)
    return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  const char *msg = info && info->error_message ? info->error_message : "Node-API call failed";
  char buf[512];
  snprintf(buf, sizeof buf, "%s (%s)", msg, call);
  napi_throw_error(env, "EADDON", buf);
}

/* `this` of a Server method as its native server, and the call's arguments;
 * NULL with a pending exception (ESTATE once the server was destroyed). */
wn_server *wn_this_server(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *p = NULL;
  NODE_API_CALL(env, napi_get_cb_info(env, info, argc, argv, &self, NULL));
  NODE_API_CALL(env, napi_unwrap(env, self, &p));
  wn_server *srv = p;
  if (!srv->server) {
    napi_throw_error(env, "ESTATE", "the server has been destroyed");
    return NULL;
  }
  return srv;
}

static napi_status set_str(napi_env env, napi_value obj, const char *name, const char *s) {
  napi_value v;
  napi_status st = napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return st == napi_ok ? napi_set_named_property(env, obj, name, v) : st;
}

static napi_status set_num(napi_env env, napi_value obj, const char *name, double d) {
  napi_value v;
  napi_status st = napi_create_double(env, d, &v);
  return st == napi_ok ? napi_set_named_property(env, obj, name, v) : st;
}

/* Fill the error fields shared by wn_error_info and wn_throw_wire. */
static napi_status fill_error(napi_env env, napi_value obj, int code, const wire_error *err) {
  napi_status st;
  if ((st = set_str(env, obj, "code", wire_err_name(code))) != napi_ok ||
      (st = set_num(env, obj, "errno", code)) != napi_ok ||
      (st = set_str(env, obj, "category", wire_errcat_name(wire_err_category(code)))) != napi_ok)
    return st;
  if (!err)
    return napi_ok;
  if ((st = set_str(env, obj, "path", err->path)) != napi_ok ||
      (st = set_str(env, obj, "keyword", err->keyword)) != napi_ok ||
      (st = set_str(env, obj, "schemaPath", err->schema_path)) != napi_ok ||
      (st = set_num(env, obj, "offset", (double)err->offset)) != napi_ok)
    return st;
  return napi_ok;
}

static const char *error_text(int code, const wire_error *err) {
  return err && err->message[0] ? err->message : wire_strerror(code);
}

napi_value wn_error_info(napi_env env, int code, const wire_error *err) {
  napi_value obj;
  NODE_API_CALL(env, napi_create_object(env, &obj));
  NODE_API_CALL(env, fill_error(env, obj, code, err));
  NODE_API_CALL(env, set_str(env, obj, "message", error_text(code, err)));
  return obj;
}

napi_value wn_errors(napi_env env, napi_callback_info info) {
  napi_value list, row;
  uint32_t i = 0;
  (void)info;
  NODE_API_CALL(env, napi_create_array(env, &list));
#define WN_ERROR_ROW(name, num, cat, msg)                                                          \
  NODE_API_CALL(env, napi_create_object(env, &row));                                               \
  NODE_API_CALL(env, set_str(env, row, "name", #name));                                            \
  NODE_API_CALL(env, set_num(env, row, "errno", num));                                             \
  NODE_API_CALL(env, set_str(env, row, "category", wire_errcat_name(WIRE_ERRCAT_##cat)));          \
  NODE_API_CALL(env, set_str(env, row, "className", wire_errcat_class(WIRE_ERRCAT_##cat)));        \
  NODE_API_CALL(env, napi_set_element(env, list, i++, row));
  WIRE_ERRNO_MAP(WN_ERROR_ROW)
#undef WN_ERROR_ROW
  return list;
}

void wn_throw_wire(napi_env env, int code, const wire_error *err) {
  napi_value msg, error;
  if (napi_create_string_utf8(env, error_text(code, err), NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, NULL, msg, &error) != napi_ok ||
      fill_error(env, error, code, err) != napi_ok) {
    wn_throw_last_error(env, "wn_throw_wire");
    return;
  }
  napi_throw(env, error);
}

/* ---- wire_value -> JS ---------------------------------------------------- */

static napi_value int_to_js(napi_env env, int64_t i) {
  napi_value out;
  /* Integers beyond 2^53 would lose digits as numbers: they become BigInts. */
  if (i > 9007199254740991LL || i < -9007199254740991LL)
    NODE_API_CALL(env, napi_create_bigint_int64(env, i, &out));
  else
    NODE_API_CALL(env, napi_create_int64(env, i, &out));
  return out;
}

static napi_value container_to_js(napi_env env, const wire_value *v);

int wn_value_needs_bigint(const wire_value *v) {
  switch (wire_value_type(v)) {
  case WIRE_INT: {
    int64_t i = wire_value_int(v);
    return i > 9007199254740991LL || i < -9007199254740991LL;
  }
  case WIRE_UINT:
    return 1;
  case WIRE_ARRAY:
    for (size_t i = 0, n = wire_value_size(v); i < n; i++)
      if (wn_value_needs_bigint(wire_value_at(v, i)))
        return 1;
    return 0;
  case WIRE_OBJECT:
    for (size_t i = 0, n = wire_value_size(v); i < n; i++)
      if (wn_value_needs_bigint(wire_value_member(v, i, NULL)))
        return 1;
    return 0;
  default:
    return 0;
  }
}

napi_value wn_value_to_js(napi_env env, const wire_value *v) {
  napi_value out;
  size_t len;
  switch (wire_value_type(v)) {
  case WIRE_NULL:
    NODE_API_CALL(env, napi_get_null(env, &out));
    return out;
  case WIRE_BOOL:
    NODE_API_CALL(env, napi_get_boolean(env, wire_value_bool(v), &out));
    return out;
  case WIRE_INT:
    return int_to_js(env, wire_value_int(v));
  case WIRE_UINT:
    NODE_API_CALL(env, napi_create_bigint_uint64(env, wire_value_uint(v), &out));
    return out;
  case WIRE_DOUBLE:
    NODE_API_CALL(env, napi_create_double(env, wire_value_double(v), &out));
    return out;
  case WIRE_STRING: {
    const char *s = wire_value_string(v, &len);
    NODE_API_CALL(env, napi_create_string_utf8(env, s, len, &out));
    return out;
  }
  case WIRE_BINARY: {
    const uint8_t *p = wire_value_binary(v, &len);
    NODE_API_CALL(env, napi_create_buffer_copy(env, len, p, NULL, &out));
    return out;
  }
  default:
    return container_to_js(env, v);
  }
}

/* Arrays and objects; members are set in input order, so the last of a
 * repeated key wins, as wirecore.h promises. */
static napi_value container_to_js(napi_env env, const wire_value *v) {
  napi_value out, item, key;
  size_t n = wire_value_size(v);
  if (wire_value_type(v) == WIRE_ARRAY) {
    NODE_API_CALL(env, napi_create_array_with_length(env, n, &out));
    for (size_t i = 0; i < n; i++) {
      if (!(item = wn_value_to_js(env, wire_value_at(v, i))))
        return NULL;
      NODE_API_CALL(env, napi_set_element(env, out, (uint32_t)i, item));
    }
    return out;
  }
  NODE_API_CALL(env, napi_create_object(env, &out));
  for (size_t i = 0; i < n; i++) {
    wire_str k;
    const wire_value *m = wire_value_member(v, i, &k);
    if (!(item = wn_value_to_js(env, m)))
      return NULL;
    NODE_API_CALL(env, napi_create_string_utf8(env, k.ptr, k.len, &key));
    /* Define, not assign: a "__proto__" key must become an own property
     * (as JSON.parse does), never the object's prototype. */
    napi_property_descriptor d = {NULL, key, NULL, NULL, NULL, item, napi_default_jsproperty, NULL};
    NODE_API_CALL(env, napi_define_properties(env, out, 1, &d));
  }
  return out;
}

/* ---- JS -> wire_value ---------------------------------------------------- */

typedef struct wn_build {
  napi_env env;
  wn_server *srv; /* its strbuf is reused; NULL: a local buffer is grown */
  wire_doc *doc;
  wire_error *err;
  char *buf; /* used when srv is NULL */
  size_t cap;
} wn_build;

static char **build_buf(wn_build *b, size_t **cap) {
  if (b->srv) {
    *cap = &b->srv->strbuf_cap;
    return &b->srv->strbuf;
  }
  *cap = &b->cap;
  return &b->buf;
}

/* Returns the new value, or NULL with b->err->code set (a pending exception
 * when the code is WIRE_EINVAL). */
static wire_value *build(wn_build *b, napi_value js, unsigned depth);

static wire_value *fail(wn_build *b, int code, const char *what) {
  b->err->code = code;
  snprintf(b->err->message, sizeof b->err->message, "%s", what);
  return NULL;
}

static wire_value *napi_fail(wn_build *b) {
  wn_throw_last_error(b->env, "value conversion");
  return fail(b, WIRE_EINVAL, "Node-API call failed");
}

static wire_value *oom(wn_build *b) {
  return fail(b, WIRE_ENOMEM, "out of memory");
}

static wire_value *build_string(wn_build *b, napi_value js) {
  size_t len, *cap;
  char **buf = build_buf(b, &cap);
  if (napi_get_value_string_utf8(b->env, js, NULL, 0, &len) != napi_ok)
    return napi_fail(b);
  if (len + 1 > *cap) {
    size_t ncap = len + 1 < 256 ? 256 : len + 1;
    char *p = realloc(*buf, ncap);
    if (!p)
      return oom(b);
    *buf = p;
    *cap = ncap;
  }
  if (napi_get_value_string_utf8(b->env, js, *buf, len + 1, &len) != napi_ok)
    return napi_fail(b);
  wire_value *v = wire_new_string(b->doc, *buf, len);
  return v ? v : oom(b);
}

static wire_value *build_number(wn_build *b, napi_value js) {
  double d;
  if (napi_get_value_double(b->env, js, &d) != napi_ok)
    return napi_fail(b);
  wire_value *v;
  /* Integral numbers stay integers so JSON shows 3, not 3.0, and MessagePack
   * picks an int encoding. */
  if (isfinite(d) && d == floor(d) && fabs(d) < 9.2e18)
    v = wire_new_int(b->doc, (int64_t)d);
  else
    v = wire_new_double(b->doc, d);
  return v ? v : oom(b);
}

static wire_value *build_bigint(wn_build *b, napi_value js) {
  bool lossless;
  int64_t i;
  uint64_t u;
  if (napi_get_value_bigint_int64(b->env, js, &i, &lossless) != napi_ok)
    return napi_fail(b);
  if (lossless) {
    wire_value *v = wire_new_int(b->doc, i);
    return v ? v : oom(b);
  }
  if (napi_get_value_bigint_uint64(b->env, js, &u, &lossless) != napi_ok)
    return napi_fail(b);
  if (!lossless)
    return fail(b, WIRE_ESERIALIZE, "a BigInt does not fit 64 bits");
  wire_value *v = wire_new_uint(b->doc, u);
  return v ? v : oom(b);
}

/* Buffers, typed arrays, DataViews and ArrayBuffers become binary values.
 * Returns 1 when js was one of them (*out set, NULL on failure), else 0. */
static int build_bytes(wn_build *b, napi_value js, wire_value **out) {
  bool is;
  void *data = NULL;
  size_t len = 0;
  if (napi_is_typedarray(b->env, js, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n, off;
    napi_value ab;
    if (napi_get_typedarray_info(b->env, js, &t, &n, &data, &ab, &off) != napi_ok)
      return *out = napi_fail(b), 1;
    static const size_t sizes[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
    len = n * (t < sizeof sizes / sizeof *sizes ? sizes[t] : 1);
  } else if (napi_is_dataview(b->env, js, &is) == napi_ok && is) {
    napi_value ab;
    size_t off;
    if (napi_get_dataview_info(b->env, js, &len, &data, &ab, &off) != napi_ok)
      return *out = napi_fail(b), 1;
  } else if (napi_is_arraybuffer(b->env, js, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(b->env, js, &data, &len) != napi_ok)
      return *out = napi_fail(b), 1;
  } else {
    return 0;
  }
  *out = wire_new_binary(b->doc, data ? data : "", len);
  if (!*out)
    oom(b);
  return 1;
}

static wire_value *build_array(wn_build *b, napi_value js, unsigned depth) {
  uint32_t n;
  if (napi_get_array_length(b->env, js, &n) != napi_ok)
    return napi_fail(b);
  wire_value *arr = wire_new_array(b->doc, n);
  if (!arr)
    return oom(b);
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_valuetype t;
    if (napi_get_element(b->env, js, i, &item) != napi_ok ||
        napi_typeof(b->env, item, &t) != napi_ok)
      return napi_fail(b);
    wire_value *v;
    /* As JSON.stringify does: holes, undefined and functions become null. */
    if (t == napi_undefined || t == napi_function || t == napi_symbol)
      v = wire_new_null(b->doc);
    else
      v = build(b, item, depth + 1);
    if (!v || !wire_array_push(b->doc, arr, v))
      return v ? oom(b) : NULL;
  }
  return arr;
}

static wire_value *build_object(wn_build *b, napi_value js, unsigned depth) {
  napi_value keys;
  uint32_t n;
  if (napi_get_all_property_names(b->env, js, napi_key_own_only,
                                  napi_key_enumerable | napi_key_skip_symbols,
                                  napi_key_numbers_to_strings, &keys) != napi_ok ||
      napi_get_array_length(b->env, keys, &n) != napi_ok)
    return napi_fail(b);
  wire_value *obj = wire_new_object(b->doc, n);
  if (!obj)
    return oom(b);
  for (uint32_t i = 0; i < n; i++) {
    napi_value key, item;
    napi_valuetype t;
    if (napi_get_element(b->env, keys, i, &key) != napi_ok ||
        napi_get_property(b->env, js, key, &item) != napi_ok ||
        napi_typeof(b->env, item, &t) != napi_ok)
      return napi_fail(b);
    /* As JSON.stringify does: members that are undefined or functions are left out. */
    if (t == napi_undefined || t == napi_function || t == napi_symbol)
      continue;
    wire_value *v = build(b, item, depth + 1);
    if (!v)
      return NULL;
    /* The value is copied into the object, so the key can use the string
     * buffer only after the value is built. */
    wire_value *k = build_string(b, key);
    size_t klen;
    const char *kp = k ? wire_value_string(k, &klen) : NULL;
    if (!kp || !wire_object_set(b->doc, obj, kp, klen, v))
      return kp ? oom(b) : NULL;
  }
  return obj;
}

/* Objects with a toJSON method (Date, user classes) are converted through it. */
static int build_tojson(wn_build *b, napi_value js, unsigned depth, wire_value **out) {
  napi_value fn, res;
  napi_valuetype t;
  bool has;
  if (napi_has_named_property(b->env, js, "toJSON", &has) != napi_ok || !has)
    return 0;
  if (napi_get_named_property(b->env, js, "toJSON", &fn) != napi_ok ||
      napi_typeof(b->env, fn, &t) != napi_ok)
    return *out = napi_fail(b), 1;
  if (t != napi_function)
    return 0;
  if (napi_call_function(b->env, js, fn, 0, NULL, &res) != napi_ok)
    return *out = fail(b, WIRE_EINVAL, "toJSON() threw"), 1;
  *out = build(b, res, depth + 1);
  return 1;
}

static wire_value *build(wn_build *b, napi_value js, unsigned depth) {
  napi_valuetype t;
  wire_value *v;
  if (depth > WN_MAX_DEPTH)
    return fail(b, WIRE_ESERIALIZE, "value nested too deep (a cycle?)");
  if (napi_typeof(b->env, js, &t) != napi_ok)
    return napi_fail(b);
  switch (t) {
  case napi_undefined:
  case napi_null:
    v = wire_new_null(b->doc);
    return v ? v : oom(b);
  case napi_boolean: {
    bool x;
    if (napi_get_value_bool(b->env, js, &x) != napi_ok)
      return napi_fail(b);
    v = wire_new_bool(b->doc, x);
    return v ? v : oom(b);
  }
  case napi_number:
    return build_number(b, js);
  case napi_bigint:
    return build_bigint(b, js);
  case napi_string:
    return build_string(b, js);
  case napi_object: {
    bool is;
    if (build_bytes(b, js, &v))
      return v;
    if (napi_is_array(b->env, js, &is) != napi_ok)
      return napi_fail(b);
    if (is)
      return build_array(b, js, depth);
    if (build_tojson(b, js, depth, &v))
      return v;
    return build_object(b, js, depth);
  }
  default:
    return fail(b, WIRE_ESERIALIZE, "functions and symbols cannot be sent");
  }
}

int wn_js_to_value(wn_server *srv, wire_doc *doc, napi_value js, const wire_value **out,
                   wire_error *err) {
  wn_build b = {.env = srv->env, .srv = srv, .doc = doc, .err = err};
  err->code = 0;
  wire_value *v = build(&b, js, 0);
  *out = v;
  return v ? 0 : (err->code ? err->code : WIRE_ENOMEM);
}

/* ---- request view -> JS --------------------------------------------------- */

static napi_status set_wstr(napi_env env, napi_value obj, const char *name, wire_str s) {
  napi_value v;
  napi_status st = s.ptr ? napi_create_string_utf8(env, s.ptr, s.len, &v) : napi_get_null(env, &v);
  return st == napi_ok ? napi_set_named_property(env, obj, name, v) : st;
}

typedef int (*kv_at_fn)(const wire_request *, size_t, wire_str *, wire_str *);

/* An object of name -> value; `first` keeps the first of repeated names,
 * `lower` lower-cases names (headers), `join` joins repeats with ", ". */
static napi_value kv_object(napi_env env, const wire_request *req, size_t n, kv_at_fn at, int lower,
                            int join) {
  napi_value obj;
  NODE_API_CALL(env, napi_create_object(env, &obj));
  for (size_t i = 0; i < n; i++) {
    wire_str k, v;
    if (at(req, i, &k, &v) != 0)
      continue;
    char small[128], *name = k.len < sizeof small ? small : malloc(k.len + 1);
    if (!name)
      continue;
    for (size_t j = 0; j < k.len; j++) {
      char c = k.ptr[j];
      name[j] = lower && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    name[k.len] = 0;
    napi_value key, val, old;
    bool has = false;
    napi_status st = napi_create_string_utf8(env, name, k.len, &key);
    if (name != small)
      free(name);
    NODE_API_CALL(env, st);
    NODE_API_CALL(env, napi_has_own_property(env, obj, key, &has));
    if (has && !join)
      continue;
    NODE_API_CALL(env, napi_create_string_utf8(env, v.ptr, v.len, &val));
    if (has) {
      /* A repeated header: "old, new", as Node's http module joins them. */
      size_t olen;
      NODE_API_CALL(env, napi_get_property(env, obj, key, &old));
      NODE_API_CALL(env, napi_get_value_string_utf8(env, old, NULL, 0, &olen));
      char *joined = malloc(olen + 2 + v.len + 1);
      if (!joined)
        continue;
      napi_get_value_string_utf8(env, old, joined, olen + 1, &olen);
      memcpy(joined + olen, ", ", 2);
      memcpy(joined + olen + 2, v.ptr, v.len);
      st = napi_create_string_utf8(env, joined, olen + 2 + v.len, &val);
      free(joined);
      NODE_API_CALL(env, st);
    }
    NODE_API_CALL(env, napi_set_property(env, obj, key, val));
  }
  return obj;
}

/* [[name, value], ...] for every entry, repeats kept. */
static napi_value kv_pairs(napi_env env, const wire_request *req, size_t n, kv_at_fn at) {
  napi_value arr;
  NODE_API_CALL(env, napi_create_array_with_length(env, n, &arr));
  for (size_t i = 0; i < n; i++) {
    wire_str k, v;
    napi_value pair, ks, vs;
    if (at(req, i, &k, &v) != 0)
      continue;
    NODE_API_CALL(env, napi_create_array_with_length(env, 2, &pair));
    NODE_API_CALL(env, napi_create_string_utf8(env, k.ptr, k.len, &ks));
    NODE_API_CALL(env, napi_create_string_utf8(env, v.ptr, v.len, &vs));
    NODE_API_CALL(env, napi_set_element(env, pair, 0, ks));
    NODE_API_CALL(env, napi_set_element(env, pair, 1, vs));
    NODE_API_CALL(env, napi_set_element(env, arr, (uint32_t)i, pair));
  }
  return arr;
}

napi_value wn_request_to_js(napi_env env, const wire_request *req) {
  napi_value obj, v;
  NODE_API_CALL(env, napi_create_object(env, &obj));
  NODE_API_CALL(env, set_wstr(env, obj, "path", wire_request_path(req)));
  NODE_API_CALL(env, set_wstr(env, obj, "target", wire_request_target(req)));
  NODE_API_CALL(env, set_wstr(env, obj, "remoteAddress", wire_request_remote_addr(req)));
  NODE_API_CALL(env, set_num(env, obj, "remotePort", wire_request_remote_port(req)));
  NODE_API_CALL(env, set_wstr(env, obj, "subprotocol", wire_request_subprotocol(req)));
  if (!(v = kv_object(env, req, wire_request_param_count(req), wire_request_param_at, 0, 0)))
    return NULL;
  NODE_API_CALL(env, napi_set_named_property(env, obj, "params", v));
  if (!(v = kv_object(env, req, wire_request_query_count(req), wire_request_query_at, 0, 0)))
    return NULL;
  NODE_API_CALL(env, napi_set_named_property(env, obj, "query", v));
  if (!(v = kv_pairs(env, req, wire_request_query_count(req), wire_request_query_at)))
    return NULL;
  NODE_API_CALL(env, napi_set_named_property(env, obj, "queryList", v));
  if (!(v = kv_object(env, req, wire_request_header_count(req), wire_request_header_at, 1, 1)))
    return NULL;
  NODE_API_CALL(env, napi_set_named_property(env, obj, "headers", v));
  return obj;
}

/* ---- encode / decode exported to JS ---------------------------------------- */

/* The instance's scratch doc for encode()/decode(), reset after each call;
 * NULL with a pending exception. */
static wire_doc *wn_addon_doc(napi_env env) {
  wn_addon *addon = NULL;
  napi_get_instance_data(env, (void **)&addon);
  if (addon && !addon->doc && wire_doc_new(&addon->doc) != 0)
    addon->doc = NULL;
  if (!addon || !addon->doc)
    wn_throw_wire(env, WIRE_ENOMEM, NULL);
  return addon ? addon->doc : NULL;
}

static int codec_arg(napi_env env, napi_value v, wire_codec *out) {
  char name[16] = "";
  size_t n;
  if (napi_get_value_string_utf8(env, v, name, sizeof name, &n) != napi_ok)
    return -1;
  if (strcmp(name, "json") == 0)
    *out = WIRE_CODEC_JSON;
  else if (strcmp(name, "msgpack") == 0)
    *out = WIRE_CODEC_MSGPACK;
  else
    return -1;
  return 0;
}

/* encode(value, "json" | "msgpack") -> Buffer. Throws a wire error
 * (ESERIALIZE) for values the codec cannot represent. */
napi_value wn_encode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out = NULL;
  wire_codec codec;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || codec_arg(env, argv[1], &codec) != 0) {
    napi_throw_type_error(env, "EINVAL", "encode(value, 'json' | 'msgpack')");
    return NULL;
  }
  wire_doc *doc = wn_addon_doc(env);
  if (!doc)
    return NULL;
  wire_error err;
  memset(&err, 0, sizeof err);
  wn_build b = {.env = env, .doc = doc, .err = &err};
  const wire_value *v = build(&b, argv[0], 0);
  const uint8_t *bytes;
  size_t len;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  int rc = v ? wire_encode(doc, codec, v, &bytes, &len, &err) : (err.code ? err.code : WIRE_ENOMEM);
  if (rc == 0) {
    if (napi_create_buffer_copy(env, len, bytes, NULL, &out) != napi_ok)
      wn_throw_last_error(env, "napi_create_buffer_copy");
  } else if (!pending) {
    wn_throw_wire(env, rc, &err);
  }
  free(b.buf);
  wire_doc_reset(doc);
  return out;
}

/* decode(bytes | string, "json" | "msgpack") -> value. Throws a wire error
 * (EDESERIALIZE, EDEPTH) with .offset for undecodable input. */
napi_value wn_decode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out = NULL;
  wire_codec codec;
  NODE_API_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || codec_arg(env, argv[1], &codec) != 0) {
    napi_throw_type_error(env, "EINVAL", "decode(bytes, 'json' | 'msgpack')");
    return NULL;
  }
  napi_valuetype t;
  NODE_API_CALL(env, napi_typeof(env, argv[0], &t));
  char *owned = NULL;
  void *data = NULL;
  size_t len = 0;
  if (t == napi_string) {
    NODE_API_CALL(env, napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
    if (!(owned = malloc(len + 1))) {
      wn_throw_wire(env, WIRE_ENOMEM, NULL);
      return NULL;
    }
    napi_get_value_string_utf8(env, argv[0], owned, len + 1, &len);
    data = owned;
  } else {
    bool is = false;
    napi_is_buffer(env, argv[0], &is);
    if (!is || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
      napi_throw_type_error(env, "EINVAL", "decode() takes a Buffer, Uint8Array or string");
      return NULL;
    }
  }
  wire_doc *doc = wn_addon_doc(env);
  if (!doc) {
    free(owned);
    return NULL;
  }
  wire_error err;
  memset(&err, 0, sizeof err);
  const wire_value *v;
  int rc = wire_decode(doc, codec, data ? data : "", len, 0, &v, &err);
  if (rc == 0)
    out = wn_value_to_js(env, v);
  else
    wn_throw_wire(env, rc, &err);
  wire_doc_reset(doc);
  free(owned);
  return out;
}
