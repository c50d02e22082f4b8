{
  # The addon is one shared object: the whole C core plus the Node-API glue.
  # The core is compiled against Node's own uv.h (node-gyp puts Node's
  # include directory first) and the system libuv is never linked: Node
  # itself exports the libuv symbols the core uses.
  "targets": [
    {
      "target_name": "wirecore",
      "sources": ["<!@(node tools/sources.js sources)"],
      "include_dirs": ["<!@(node tools/sources.js includes)"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra",
                 "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags!": ["-fno-exceptions"],
      "libraries": ["-lwslay", "-lmsgpackc", "-lssl", "-lcrypto", "-lpcre2-8", "-lhiredis", "-lz"]
    }
  ]
}
