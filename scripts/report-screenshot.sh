#!/usr/bin/env bash
# Renders an `enlace audit report` HTML page in headless Chromium and saves a
# PNG, to check by eye that the report looks right (docs/audit.md §9).
#
#   scripts/report-screenshot.sh                  # synthetic 12-month bundle → report → PNG
#   scripts/report-screenshot.sh BUNDLE [OUT.png]  # report on BUNDLE (FROM/TO env, default: all)
#   scripts/report-screenshot.sh REPORT.html [OUT.png]
#
# OUT defaults to target/report-screenshot/audit-report.png. Installs Debian's
# `chromium` if it is missing. The page is loaded from a file:// URL with the
# network features of Chromium turned off; the report needs none.
set -euo pipefail

cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
work="$target/report-screenshot"
mkdir -p "$work"
input="${1:-}"
out="${2:-$work/audit-report.png}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian package)…" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get install -y chromium >/dev/null || {
        $sudo apt-get update >/dev/null && $sudo apt-get install -y chromium >/dev/null
    }
fi

enlace() {
    cargo build --quiet -p enlace-cli
    "$target/debug/enlace" "$@"
}

case "$input" in
    *.html)
        html="$input"
        ;;
    "")
        bundle="$work/synthetic.bundle"
        enlace audit bench-bundle --leaves 5000 --months 12 --seed 42 --out "$bundle" >&2
        html="$work/audit-report.html"
        enlace audit report "$bundle" --from "$(date -u -d '365 days ago' +%F)" --to "$(date -u +%F)" \
            --format html --out "$html" >&2
        ;;
    *)
        html="$work/audit-report.html"
        enlace audit report "$input" --from "${FROM:-1970-01-01}" --to "${TO:-2099-12-31}" \
            --format html --out "$html" >&2
        ;;
esac

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" --screenshot="$out" --window-size=1280,2000 \
    "file://$(realpath "$html")" >/dev/null 2>&1
test -s "$out"
echo "$out"
