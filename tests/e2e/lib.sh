# Shared helpers for the end-to-end tests (sourced). Each test gets:
#   QCC   the compiler,  DATA  ../shared/data,  T  a fresh scratch directory
set -euo pipefail
: "${QCC:?}" "${DATA:?}" "${SCRATCH:?}"
T="$SCRATCH/$(basename "$0" .sh)${1:+-$1}"
rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
# compile NAME ARGS...: qcc ARGS -o $T/NAME.bin, cached per test
compile() { local name=$1; shift; "$QCC" "$@" --quiet -o "$T/$name.bin" || fail "qcc $* exited $?"; }
# within A B TOL_PERCENT: |A-B| <= TOL% of B
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= b * t / 100) }'; }
