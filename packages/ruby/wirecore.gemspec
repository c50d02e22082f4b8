# frozen_string_literal: true

require_relative "lib/wirecore/version"

# Building from a repository checkout (`gem build wirecore.gemspec` or
# `rake gem`): copy the core's and the binding's C sources into
# ext/wirecore/vendor first, so the gem carries everything extconf.rb compiles.
repo = File.expand_path("../..", __dir__)
if File.directory?(File.join(repo, "core", "src")) && File.directory?(File.join(repo, "bindings", "ruby")) &&
   !ENV["WIRECORE_NO_VENDOR"]
  require "fileutils"
  vendor = File.join(__dir__, "ext", "wirecore", "vendor")
  FileUtils.rm_rf(vendor)
  { "core/src" => "*.{c,h}", "core/include" => "*.h", "bindings/ruby" => "*.{c,h}" }.each do |dir, glob|
    FileUtils.mkdir_p(File.join(vendor, dir))
    FileUtils.cp(Dir[File.join(repo, dir, glob)], File.join(vendor, dir))
  end
end

Gem::Specification.new do |spec|
  spec.name = "wirecore"
  spec.version = Wirecore::VERSION
  spec.summary = "WebSocket server runtime: a C core (libuv, wslay, JSON Schema) behind a Ruby API"
  spec.description = <<~DESC
    Wirecore serves WebSocket endpoints from one C core: the HTTP upgrade, RFC 6455 framing,
    JSON and MessagePack decoding, JSON Schema 2020-12 validation and message dispatch all run
    in C; Ruby gets callback, typed, class-based and streaming endpoints.
  DESC
  spec.authors = ["Wirecore contributors"]
  spec.license = "MIT"
  spec.homepage = "https://github.com/wirecore/wirecore"
  spec.required_ruby_version = ">= 3.0"

  if ENV["WIRECORE_PLATFORM_GEM"]
    # The x86_64-linux gem (scripts/package.sh): the compiled extension and the
    # libraries it needs beside it in lib/wirecore/ ($ORIGIN rpath); nothing is
    # compiled at install. The extension is built for this Ruby's minor version.
    spec.platform = Gem::Platform.new(ENV["WIRECORE_PLATFORM_GEM"])
    spec.required_ruby_version = "~> #{RUBY_VERSION[/\A\d+\.\d+/]}.0"
    spec.files = Dir.chdir(__dir__) do
      Dir["lib/**/*.rb", "lib/wirecore/*.so", "lib/wirecore/*.so.*", "examples/*.rb", "README.md"]
    end
  else
    # The source gem carries the core's C sources (copied above), so that
    # `gem install` compiles everything on the target machine.
    spec.files = Dir.chdir(__dir__) do
      Dir["lib/**/*.rb", "ext/wirecore/extconf.rb",
          "ext/wirecore/vendor/**/*.{c,h}", "examples/*.rb", "README.md"]
    end
    spec.extensions = ["ext/wirecore/extconf.rb"]
  end
  spec.require_paths = ["lib"]
  spec.metadata["rubygems_mfa_required"] = "true"
end
