#!/usr/bin/env bash
# Coverage-guided fuzzing of the node's parsers and verifiers with AFL++
# (afl.rs), one target at a time (fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     # default 60
#
# Environment:
#   FUZZ_OUT=DIR        outputs (default /tmp/enlace-fuzz; never inside the repo)
#   FUZZ_TARGETS="a b"  targets to run (default: every fuzz/src/bin/*.rs)
#   FUZZ_TIMEOUT_MS=N   an input running longer is a hang (default 1000)
#   FUZZ_RESUME=1       continue earlier runs in FUZZ_OUT instead of starting afresh
#
# Installs cargo-afl if it is missing and builds AFL++ for this toolchain if
# that was not done yet. Exits non-zero when any target saved a crash or a
# hang, after listing them; reproduce one with
#   $CARGO_TARGET_DIR/release/<target> < FILE
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
out="${FUZZ_OUT:-/tmp/enlace-fuzz}"
timeout_ms="${FUZZ_TIMEOUT_MS:-1000}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target_dir"

case "$(realpath -m "$out")/" in
    "$(realpath .)"/*) echo "FUZZ_OUT must be outside the repository" >&2; exit 2 ;;
esac

if ! cargo afl --version >/dev/null 2>&1; then
    echo "== installing cargo-afl" >&2
    cargo install cargo-afl --locked
fi
# Builds AFL++ and its LLVM runtime once per toolchain; says so when done before.
if ! config_log="$(cargo afl config --build 2>&1)"; then
    if ! grep -q "already built" <<<"$config_log"; then
        echo "$config_log" >&2
        exit 1
    fi
fi

echo "== building the fuzz targets" >&2
(cd fuzz && cargo afl build --release --locked --bins)

if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    targets=()
    for f in fuzz/src/bin/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
if [ "${FUZZ_RESUME:-0}" = 1 ]; then export AFL_AUTORESUME=1; fi
mkdir -p "$out"

field() { sed -n "s/^$2 *: //p" "$1" | head -n1; }

for t in "${targets[@]}"; do
    if [ "${FUZZ_RESUME:-0}" != 1 ]; then rm -rf "${out:?}/$t"; fi
    echo "== fuzzing $t for ${seconds}s → $out/$t" >&2
    cargo afl fuzz -i "fuzz/corpus/$t" -o "$out/$t" -V "$seconds" -t "$timeout_ms" \
        -- "$target_dir/release/$t" >"$out/$t.log" 2>&1 || {
        echo "afl-fuzz failed for $t; last lines of $out/$t.log:" >&2
        tail -n 30 "$out/$t.log" >&2
        exit 1
    }
done

status=0
printf '%-11s %9s %12s %9s %7s %9s %7s %5s\n' \
    target seconds execs 'execs/s' corpus stability crashes hangs
for t in "${targets[@]}"; do
    s="$out/$t/default/fuzzer_stats"
    printf '%-11s %9s %12s %9s %7s %9s %7s %5s\n' "$t" \
        "$(field "$s" run_time)" "$(field "$s" execs_done)" "$(field "$s" execs_per_sec)" \
        "$(field "$s" corpus_count)" "$(field "$s" stability)" \
        "$(field "$s" saved_crashes)" "$(field "$s" saved_hangs)"
done
for t in "${targets[@]}"; do
    for kind in crashes hangs; do
        found=("$out/$t/default/$kind"/id:*)
        if [ -e "${found[0]}" ]; then
            status=1
            echo "!! $t: $kind" >&2
            printf '   %s\n' "${found[@]}" >&2
        fi
    done
done
exit "$status"
