/*
 * main.c -- the `wirecore` command-line tool: validate JSON and
 * MessagePack documents (files or JSON Lines) against a JSON Schema with the
 * same decoders and validator the server uses.
 *
 *   wirecore validate --schema SCHEMA [--format-assert] INSTANCE...
 *   wirecore validate --schema SCHEMA [--format-assert] --lines FILE
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
  fputs("usage: wirecore validate --schema SCHEMA [--format-assert] INSTANCE...\n"
        "       wirecore validate --schema SCHEMA [--format-assert] --lines FILE\n"
        "       wirecore --version | --help\n"
        "\n"
        "SCHEMA is a file or inline JSON text. Instances whose name ends in .msgpack\n"
        "are MessagePack, others JSON; with --lines, FILE (- for stdin) holds one JSON\n"
        "instance per line. One line is printed per instance:\n"
        "  valid\n"
        "  invalid <json-pointer> <keyword>: <message>\n"
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

/* Validate one decoded instance and print its verdict line. */
static int report(const wire_schema *schema, const wire_value *v) {
  wire_error err = {0};
  int rc = wire_schema_validate(schema, v, &err);
  if (rc == 0) {
    puts("valid");
    return EXIT_VALID;
  }
  if (rc == WIRE_EVALIDATION) {
    printf("invalid %s %s: %s\n", err.path, err.keyword, err.message);
    return EXIT_INVALID;
  }
  fprintf(stderr, "wirecore: validation failed: %s\n", wire_strerror(rc));
  return EXIT_BROKEN;
}

static int check_buffer(const wire_schema *schema, wire_doc *doc, wire_codec codec, const char *buf,
                        size_t len, const char *where) {
  const wire_value *v;
  wire_error err = {0};
  int rc = wire_decode(doc, codec, buf, len, 0, &v, &err);
  if (rc < 0) {
    /* the message names the format and the byte offset */
    fprintf(stderr, "wirecore: %s: %s\n", where, err.message);
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
      fprintf(stderr, "wirecore: %s: %s\n", paths[i], strerror(errno));
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
    fprintf(stderr, "wirecore: %s: %s\n", path, strerror(errno));
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

/* SCHEMA names a readable file, or else is the schema text itself. */
static int load_schema(const char *arg, unsigned flags, wire_schema **out) {
  size_t len;
  char *text = slurp(arg, &len);
  const char *src = text ? text : arg;
  if (text == NULL)
    len = strlen(arg);
  wire_schema_options opts = {flags, NULL, NULL};
  wire_error err = {0};
  int rc = wire_schema_compile(src, len, &opts, out, &err);
  if (rc < 0) {
    fprintf(stderr, "wirecore: schema %s: %s%s%s\n", text ? arg : "(inline)", err.message,
            err.schema_path[0] ? " at " : "", err.schema_path);
  }
  free(text);
  return rc;
}

static int cmd_validate(int argc, char **argv) {
  const char *schema_arg = NULL, *lines = NULL;
  unsigned flags = 0;
  int first = argc;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc) {
      schema_arg = argv[++i];
    } else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
      lines = argv[++i];
    } else if (strcmp(argv[i], "--format-assert") == 0) {
      flags |= WIRE_SCHEMA_FORMAT_ASSERT;
    } else if (strcmp(argv[i], "--") == 0) {
      first = i + 1;
      break;
    } else if (argv[i][0] == '-' && argv[i][1] != 0) {
      fprintf(stderr, "wirecore: unknown option %s\n", argv[i]);
      usage(stderr);
      return EXIT_BROKEN;
    } else {
      first = i;
      break;
    }
  }
  int n = argc - first;
  if (schema_arg == NULL || (lines == NULL && n == 0) || (lines != NULL && n > 0)) {
    usage(stderr);
    return EXIT_BROKEN;
  }
  wire_schema *schema;
  if (load_schema(schema_arg, flags, &schema) < 0)
    return EXIT_BROKEN;
  wire_doc *doc;
  if (wire_doc_new(&doc) < 0) {
    wire_schema_free(schema);
    fputs("wirecore: out of memory\n", stderr);
    return EXIT_BROKEN;
  }
  int status = lines ? check_lines(schema, doc, lines) : check_files(schema, doc, argv + first, n);
  wire_doc_free(doc);
  wire_schema_free(schema);
  if (fflush(stdout) != 0)
    return EXIT_BROKEN;
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
