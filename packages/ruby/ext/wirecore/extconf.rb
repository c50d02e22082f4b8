# frozen_string_literal: true

# Builds Wirecore::Native: the C core (core/src/*.c) and the Ruby glue
# (bindings/ruby/*.c) compiled into one extension, linked against the system's
# libuv, wslay, msgpack-c, libssl/libcrypto, libpcre2-8 and hiredis.
#
# Inside the repository the sources are read in place; a packaged gem carries
# copies under ext/wirecore/vendor/ (wirecore.gemspec makes them at gem build).
# WIRECORE_SOURCE_ROOT=DIR compiles the core from another checkout.
require "mkmf"

here = __dir__
vendor = File.join(here, "vendor")
repo = File.expand_path("../../../..", here)
root = if ENV["WIRECORE_SOURCE_ROOT"]
  File.expand_path(ENV["WIRECORE_SOURCE_ROOT"])
elsif File.directory?(File.join(repo, "core", "src")) && File.directory?(File.join(repo, "bindings", "ruby"))
  repo
else
  vendor
end
core_src = File.join(root, "core", "src")
core_inc = File.join(root, "core", "include")
binding_src = File.join(root, "bindings", "ruby")
[core_src, core_inc, binding_src].each do |dir|
  abort "wirecore: missing #{dir} (build the gem from a checkout: gem build wirecore.gemspec)" unless File.directory?(dir)
end

# Each dependency comes from pkg-config, with a plain library probe as the
# fallback for systems whose package ships no .pc file.
def require_dep(pc, lib, func, header)
  return if pkg_config(pc) && have_header(header)
  return if have_header(header) && have_library(lib, func)
  abort "wirecore: #{pc} not found (Debian: libuv1-dev libwslay-dev libmsgpack-dev " \
        "libssl-dev libpcre2-dev libhiredis-dev zlib1g-dev; see docs/ruby.md)"
end

require_dep("libuv", "uv", "uv_loop_init", "uv.h")
require_dep("msgpack", "msgpackc", "msgpack_unpack_next", "msgpack.h")
require_dep("libcrypto", "crypto", "SHA1", "openssl/sha.h")
require_dep("libssl", "ssl", "SSL_new", "openssl/ssl.h")
$CPPFLAGS << " -DPCRE2_CODE_UNIT_WIDTH=8"
require_dep("libpcre2-8", "pcre2-8", "pcre2_compile_8", "pcre2.h")
require_dep("hiredis", "hiredis", "redisReaderCreate", "hiredis/hiredis.h")
require_dep("zlib", "z", "deflateInit2_", "zlib.h")
# wslay ships no .pc file on Debian.
(have_header("wslay/wslay.h") && have_library("wslay", "wslay_event_context_server_init")) ||
  abort("wirecore: wslay not found (Debian: libwslay-dev)")
have_func("rb_ext_ractor_safe", "ruby.h")

$INCFLAGS << " -I#{core_inc} -I#{core_src} -I#{binding_src}"
$CFLAGS << " -std=gnu11 -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter"
$CFLAGS << " -Werror" if ENV["WIRECORE_WERROR"]

sources = Dir[File.join(core_src, "*.c")] + Dir[File.join(binding_src, "*.c")]
$srcs = sources.map { |f| File.basename(f) }
$VPATH.concat([core_src, binding_src].map { |d| d.gsub(" ", "\\ ") })
$objs = $srcs.map { |f| f.sub(/\.c\z/, ".o") }

create_makefile("wirecore/wirecore_ext")
