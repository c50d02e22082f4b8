/*
 * main.c -- the `wirecore` command-line tool: validate JSON and
 * MessagePack documents (files or JSON Lines) against a JSON Schema with the
 * same decoders and validator the server uses.
 *
 *   wirecore validate --schema SCHEMA [OPTIONS] INSTANCE...
 *   wirecore validate --schema SCHEMA [OPTIONS] --lines FILE
 *
 * Exit status: 0 every instance valid, 1 some invalid, 2 an input (schema or
 * instance) could not be read, decoded or compiled, or bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_BROKEN = 2 };

static void usage(FILE *f) {
  fputs("usage: wirecore validate --schema SCHEMA [OPTIONS] INSTANCE...\n"
        "       wirecore validate --schema SCHEMA [OPTIONS] --lines FILE\n"
        "       wirecore --version | --help\n"
        "\n"
        "SCHEMA is a file or inline JSON text. Instances whose name ends in .msgpack\n"
        "are MessagePack, others JSON; with --lines, FILE (- for stdin) holds one JSON\n"
        "instance per line. One line is printed per instance:\n"
        "  valid\n"
        "  invalid <json-pointer> <keyword>: <message>\n"
        "Control characters and backslashes in the pointer and the message are escaped\n"
        "(\\n, \\r, \\t, \\\\, \\u00XX), and so are spaces in the pointer (\\u0020),\n"
        "so every verdict is one line whose pointer ends at the second space.\n"
        "\n"
        "Options:\n"
        "  --format-assert     `format` fails validation instead of annotating\n"
        "  --remote URI=DIR    read documents that $ref names under URI from files in\n"
        "                      DIR: URI/a/b.json is DIR/a/b.json (a final / is added\n"
        "                      to URI; `..` segments are refused). Repeatable; the\n"
        "                      first URI that matches is used. The 2020-12 meta-schemas\n"
        "                      are built in; nothing is fetched from the network.\n"
        "\n"
        "Exit status: 0 all valid, 1 some invalid, 2 an input could not be decoded.\n",
        f);
}

/* Read a whole file (or stdin for "-") into a malloc'd buffer; NULL with
 * errno set on failure. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    char *bigger = realloc(buf, cap * 2);
    if (bigger == NULL) {
      free(buf);
      buf = NULL;
      errno = ENOMEM;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  int failed = ferror(f);
  if (f != stdin)
    fclose(f);
  if (failed) {
    free(buf);
    errno = EIO;
    return NULL;
  }
  *len = n;
  return buf;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Print s to f with backslash, control characters (and, when `space` is
 * set, spaces) escaped, so whatever a schema or an instance names stays on
 * one line and splits unambiguously. Bytes >= 0x80 pass through (UTF-8). */
static void put_escaped(FILE *f, const char *s, int space) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '\\':
      fputs("\\\\", f);
      break;
    case '\n':
      fputs("\\n", f);
      break;
    case '\r':
      fputs("\\r", f);
      break;
    case '\t':
      fputs("\\t", f);
      break;
    default:
      if (*p < 0x20 || *p == 0x7f || (space && *p == ' '))
        fprintf(f, "\\u%04x", *p);
      else
        fputc(*p, f);
    }
  }
}

/* Validate one decoded instance and print its verdict line. */
static int report(const wire_schema *schema, const wire_value *v) {
  wire_error err = {0};
  int rc = wire_schema_validate(schema, v, &err);
  if (rc == 0) {
    puts("valid");
    return EXIT_VALID;
  }
  if (rc == WIRE_EVALIDATION) {
    fputs("invalid ", stdout);
    put_escaped(stdout, err.path, 1);
    putchar(' ');
    put_escaped(stdout, err.keyword, 1);
    fputs(": ", stdout);
    put_escaped(stdout, err.message, 0);
    putchar('\n');
    return EXIT_INVALID;
  }
  fprintf(stderr, "wirecore: validation failed: %s\n", wire_strerror(rc));
  return EXIT_BROKEN;
}

/* "wirecore: WHERE: MESSAGE\n" on stderr, both escaped. */
static void complain(const char *where, const char *message) {
  fputs("wirecore: ", stderr);
  put_escaped(stderr, where, 0);
  fputs(": ", stderr);
  put_escaped(stderr, message, 0);
  fputc('\n', stderr);
}

static int check_buffer(const wire_schema *schema, wire_doc *doc, wire_codec codec, const char *buf,
                        size_t len, const char *where) {
  const wire_value *v;
  wire_error err = {0};
  int rc = wire_decode(doc, codec, buf, len, 0, &v, &err);
  if (rc < 0) {
    complain(where, err.message); /* it names the format and the byte offset */
    return EXIT_BROKEN;
  }
  return report(schema, v);
}

static int check_files(const wire_schema *schema, wire_doc *doc, char **paths, int n) {
  int status = EXIT_VALID;
  for (int i = 0; i < n; i++) {
    size_t len;
    char *buf = slurp(paths[i], &len);
    int rc;
    if (buf == NULL) {
      complain(paths[i], strerror(errno));
      rc = EXIT_BROKEN;
    } else {
      wire_codec codec = ends_with(paths[i], ".msgpack") ? WIRE_CODEC_MSGPACK : WIRE_CODEC_JSON;
      rc = check_buffer(schema, doc, codec, buf, len, paths[i]);
    }
    free(buf);
    wire_doc_reset(doc);
    if (rc > status)
      status = rc;
  }
  return status;
}

/* JSON Lines: one instance per line; a final newline does not start an
 * instance, and "\r\n" endings are accepted. */
static int check_lines(const wire_schema *schema, wire_doc *doc, const char *path) {
  size_t len;
  char *buf = slurp(path, &len);
  if (buf == NULL) {
    complain(path, strerror(errno));
    return EXIT_BROKEN;
  }
  int status = EXIT_VALID;
  size_t pos = 0;
  for (unsigned long line = 1; pos < len; line++) {
    char *nl = memchr(buf + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - buf) : len;
    size_t n = end - pos;
    if (n && buf[pos + n - 1] == '\r')
      n--;
    char where[1100];
    snprintf(where, sizeof where, "%s:%lu", path, line);
    int rc = check_buffer(schema, doc, WIRE_CODEC_JSON, buf + pos, n, where);
    wire_doc_reset(doc);
    if (rc > status)
      status = rc;
    pos = end + 1;
  }
  free(buf);
  return status;
}

/* The --remote URI=DIR mappings, and the documents read through them for
 * one compile (the resolver's texts must outlive wire_schema_compile). */
typedef struct remote {
  char *uri; /* malloc'd, ends with '/' */
  const char *dir;
} remote;

typedef struct remotes {
  remote *map;
  int n;
  char **docs;
  size_t n_docs;
} remotes;

static void remotes_free(remotes *r) {
  for (int i = 0; i < r->n; i++)
    free(r->map[i].uri);
  for (size_t i = 0; i < r->n_docs; i++)
    free(r->docs[i]);
  free(r->map);
  free(r->docs);
}

/* Add "URI=DIR" (split at the first '='). Returns 0, or -1 after saying
 * what is wrong on stderr. */
static int remotes_add(remotes *r, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (eq == NULL || eq == arg || eq[1] == 0) {
    complain(arg, "--remote wants URI=DIR, e.g. http://localhost:1234/=remotes");
    return -1;
  }
  size_t n = (size_t)(eq - arg);
  remote *map = realloc(r->map, (size_t)(r->n + 1) * sizeof *map);
  char *uri = malloc(n + 2);
  if (map != NULL)
    r->map = map;
  if (map == NULL || uri == NULL) {
    free(uri);
    complain(arg, strerror(ENOMEM));
    return -1;
  }
  memcpy(uri, arg, n);
  uri[n] = 0;
  if (uri[n - 1] != '/')
    strcpy(uri + n, "/");
  r->map[r->n++] = (remote){uri, eq + 1};
  return 0;
}

/* Whether `rest` (the part of a URI under a --remote prefix) is a plain
 * relative path: not empty, no query, no "." or ".." segment. */
static int plain_relative_path(const char *rest) {
  if (*rest == 0 || strchr(rest, '?') != NULL)
    return 0;
  for (const char *seg = rest; seg != NULL;) {
    const char *slash = strchr(seg, '/');
    size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
    if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
      return 0;
    seg = slash ? slash + 1 : NULL;
  }
  return 1;
}

/* wire_schema_resolve_cb: the file for `uri` under the first matching
 * --remote prefix, or NULL (the compile then reports the unknown document;
 * a file that cannot be read is also said on stderr). */
static const char *resolve_remote(const char *uri, size_t *len, void *user_data) {
  remotes *r = user_data;
  for (int i = 0; i < r->n; i++) {
    size_t n = strlen(r->map[i].uri);
    if (strncmp(uri, r->map[i].uri, n) != 0)
      continue;
    const char *rest = uri + n;
    if (!plain_relative_path(rest)) {
      complain(uri, "not a plain relative path under its --remote URI");
      return NULL;
    }
    char **docs = realloc(r->docs, (r->n_docs + 1) * sizeof *docs);
    size_t size = strlen(r->map[i].dir) + strlen(rest) + 2;
    char *path = malloc(size);
    if (docs != NULL)
      r->docs = docs;
    if (docs == NULL || path == NULL) {
      free(path);
      complain(uri, strerror(ENOMEM));
      return NULL;
    }
    snprintf(path, size, "%s/%s", r->map[i].dir, rest);
    char *text = slurp(path, len);
    if (text == NULL)
      complain(path, strerror(errno));
    else
      r->docs[r->n_docs++] = text;
    free(path);
    return text;
  }
  return NULL;
}

/* SCHEMA names a readable file, or else is the schema text itself. */
static int load_schema(const char *arg, unsigned flags, remotes *r, wire_schema **out) {
  size_t len;
  char *text = slurp(arg, &len);
  const char *src = text ? text : arg;
  if (text == NULL)
    len = strlen(arg);
  wire_schema_options opts = {flags, r->n ? resolve_remote : NULL, r};
  wire_error err = {0};
  int rc = wire_schema_compile(src, len, &opts, out, &err);
  if (rc < 0) {
    fputs("wirecore: schema ", stderr);
    put_escaped(stderr, text ? arg : "(inline)", 0);
    fputs(": ", stderr);
    put_escaped(stderr, err.message, 0);
    if (err.schema_path[0]) {
      fputs(" at ", stderr);
      put_escaped(stderr, err.schema_path, 0);
    }
    fputc('\n', stderr);
  }
  free(text);
  return rc;
}

/* Validate the instances with the compiled schema; the exit status. */
static int validate_all(const wire_schema *schema, const char *lines, char **paths, int n) {
  wire_doc *doc;
  if (wire_doc_new(&doc) < 0) {
    fputs("wirecore: out of memory\n", stderr);
    return EXIT_BROKEN;
  }
  int status = lines ? check_lines(schema, doc, lines) : check_files(schema, doc, paths, n);
  wire_doc_free(doc);
  if (fflush(stdout) != 0)
    return EXIT_BROKEN;
  return status;
}

static int cmd_validate(int argc, char **argv) {
  const char *schema_arg = NULL, *lines = NULL;
  unsigned flags = 0;
  remotes r = {0};
  int first = argc, status = EXIT_BROKEN;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc) {
      schema_arg = argv[++i];
    } else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
      lines = argv[++i];
    } else if (strcmp(argv[i], "--remote") == 0 && i + 1 < argc) {
      if (remotes_add(&r, argv[++i]) != 0)
        goto out;
    } else if (strcmp(argv[i], "--format-assert") == 0) {
      flags |= WIRE_SCHEMA_FORMAT_ASSERT;
    } else if (strcmp(argv[i], "--") == 0) {
      first = i + 1;
      break;
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      complain(argv[i], "unknown option");
      usage(stderr);
      goto out;
    } else {
      first = i;
      break;
    }
  }
  int n = argc - first;
  if (schema_arg == NULL || (lines == NULL && n == 0) || (lines != NULL && n > 0)) {
    usage(stderr);
    goto out;
  }
  wire_schema *schema;
  if (load_schema(schema_arg, flags, &r, &schema) == 0) {
    status = validate_all(schema, lines, argv + first, n);
    wire_schema_free(schema);
  }
out:
  remotes_free(&r);
  return status;
}

int main(int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
    printf("wirecore %s\n", wire_version());
    return 0;
  }
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                    strcmp(argv[1], "help") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "validate") == 0)
    return cmd_validate(argc - 2, argv + 2);
  usage(stderr);
  return EXIT_BROKEN;
}
