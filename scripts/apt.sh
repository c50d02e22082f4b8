#!/usr/bin/env bash
# Install Debian packages that are not installed yet (root, or through sudo).
# Usage: scripts/apt.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
stamp=/tmp/.wirecore-apt-updated
if [ ! -f "$stamp" ]; then $SUDO apt-get update -qq && touch "$stamp"; fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
