#!/usr/bin/env bash
# Ruby gem (packages/ruby): build the gem with the core's C sources inside,
# install it into a throwaway GEM_HOME as a user would (gem install --local,
# which compiles the core and the extension through extconf.rb), then run the
# minitest suite in tests/ruby against the installed gem, and run each
# example briefly.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bash scripts/apt.sh ruby-dev ruby-minitest rake-compiler ruby-websocket pkg-config \
  libuv1-dev libwslay-dev libssl-dev libmsgpack-dev libpcre2-dev libhiredis-dev redis-server zlib1g-dev

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "--- gem build"
(cd packages/ruby && rake gem >/dev/null)
gem=$(ls -t packages/ruby/pkg/wirecore-*.gem | head -1)
echo "built $gem"

echo "--- gem install --local (compiles the core and the extension)"
export GEM_PATH="$work/gems:$(ruby -e 'print Gem.path.join(":")')" GEM_HOME="$work/gems"
gem install --local --no-document "$gem" >/dev/null
ruby -e 'require "wirecore"; puts "installed wirecore #{Wirecore::VERSION} (core #{Wirecore.core_version}) from #{$LOADED_FEATURES.grep(/wirecore_ext/).first}"'

echo "--- minitest (tests/ruby)"
export WIRECORE_USE_INSTALLED=1
ruby -e 'ARGV.each { |f| require File.expand_path(f) }' tests/ruby/test_*.rb

echo "--- examples"
for ex in packages/ruby/examples/*.rb; do
  ruby "$ex" --smoke-test
done
