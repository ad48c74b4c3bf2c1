#!/usr/bin/env bash
# Installs the Debian packages qcc needs when they are missing (idempotent).
#   tools/deps.sh        what the build, the demo and the tests need
#   tools/deps.sh fuzz   also clang and its runtime libraries (libFuzzer,
#                        ASan, UBSan: libclang-rt-dev, which plain `clang`
#                        only recommends), for `make fuzz` / `make test-fuzz`
set -euo pipefail
pkgs="cmake make gcc g++ gfortran llvm-19-dev libopenblas-dev liblapacke-dev libxxhash-dev python3 python3-numpy"
for extra in "$@"; do
  case $extra in
    fuzz) pkgs="$pkgs clang libclang-rt-dev" ;;
    *) echo "deps.sh: unknown group '$extra' (known: fuzz)" >&2; exit 2 ;;
  esac
done
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
