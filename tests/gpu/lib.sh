# Helpers for the whole-model GPU tests (sourced). Each test gets:
#   DATA  ../shared/data (or a copy),  T  a fresh scratch directory
# and executables either compiled here (QCC set: a build with LLVM) or taken
# from BINS (prebuilt elsewhere: the GPU machine has no LLVM).
set -euo pipefail
: "${DATA:?}" "${SCRATCH:?}"
T="$SCRATCH/$(basename "$0" .sh)"
rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
# bin NAME QCC-ARGS...: $T/NAME.bin
bin() {
  local name=$1; shift
  if [ -n "${QCC:-}" ]; then
    "$QCC" "$@" --quiet -o "$T/$name.bin" || fail "qcc $* exited $?"
  elif [ -x "${BINS:-}/$name.bin" ]; then
    cp "$BINS/$name.bin" "$T/$name.bin"
  else
    echo "skipped: no qcc and no ${BINS:-BINS}/$name.bin"; exit 77
  fi
}
# need_gpu BIN: skip unless the executable finds a usable GPU here. With PACK set (tests/gpu/pack.sh):
# every executable built so far is copied into $PACK instead, and the test ends there.
need_gpu() {
  if [ -n "${PACK:-}" ]; then cp "$T"/*.bin "$PACK"/ && exit 0; fi
  "$1" -v -n 1 --temp 0 2>"$T/probe.err" >/dev/null || true
  grep -q '^cuda: ' "$T/probe.err" || { echo "skipped: no usable GPU ($(head -1 "$T/probe.err"))"; exit 77; }
  sed -n 's/^cuda: /device: /p' "$T/probe.err"
}
# within A B TOL_PERCENT: |A-B| <= TOL% of B
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= b * t / 100) }'; }
