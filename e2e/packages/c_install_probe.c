/*
 * c_install_probe.c -- a program built against an installed Wirecore tree
 * (pkg-config or find_package) by c_install.sh: it checks that the header and
 * the library it linked agree on the version, and that a server with a
 * schema-validated endpoint can be made and freed. Exit 0 = ok.
 */
#include <stdio.h>
#include <string.h>
#include <wirecore.h>

int main(void) {
  if (wire_version_hex() != WIRECORE_VERSION_HEX) {
    fprintf(stderr, "header 0x%x, library 0x%x\n", (unsigned)WIRECORE_VERSION_HEX,
            wire_version_hex());
    return 1;
  }
  wire_server *server = NULL;
  int rc = wire_server_new(NULL, &server);
  if (rc != 0) {
    fprintf(stderr, "wire_server_new: %s\n", wire_strerror(rc));
    return 1;
  }
  const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":"
                       "{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}}}";
  wire_endpoint_options opts;
  memset(&opts, 0, sizeof opts);
  opts.codec = WIRE_CODEC_JSON;
  opts.message_schemas = &schema;
  opts.n_message_schemas = 1;
  wire_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  rc = wire_endpoint_add(server, "/echo", &opts, &cbs, NULL, NULL, NULL);
  if (rc != 0) {
    fprintf(stderr, "wire_endpoint_add: %s\n", wire_strerror(rc));
    return 1;
  }
  rc = wire_server_free(server);
  if (rc != 0) {
    fprintf(stderr, "wire_server_free: %s\n", wire_strerror(rc));
    return 1;
  }
  printf("wirecore %s\n", wire_version());
  return 0;
}
