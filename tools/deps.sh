#!/usr/bin/env bash
# Installs the Debian packages qcc needs when they are missing (idempotent).
set -euo pipefail
pkgs="cmake make gcc g++ gfortran llvm-19-dev libopenblas-dev liblapacke-dev libxxhash-dev python3"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq $missing >/dev/null
fi
