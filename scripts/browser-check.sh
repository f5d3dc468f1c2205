#!/usr/bin/env bash
# Opens /docs in a real browser, as a person would, and fails (non-zero) on anything wrong:
# headless Chromium (Debian's `chromium`) driven by playwright-core (scripts/browser-check.mjs)
# against a debug `velu-cli serve` on a free port, a fresh SQLite home and one bootstrapped
# org. The browser may reach that server only (the page must work offline: no CDN). It
# checks that every operation of the spec renders, in the spec's tag order, with no console
# error, no CSP violation and no request elsewhere; then "Authorize" with the org's viewer
# key, "Try it out" and "Execute" on whoami, and a 200 with the org's slug on the page.
# Used by .ci/run.
#
# Installs what is missing: Debian's chromium (apt-get; CI runs as root on Debian) and
# playwright-core (npm, one package without dependencies and without a browser download)
# into target/browser-check. Playwright rather than Selenium: Node.js and npm are on the
# machine already, the one package needs no driver (it speaks CDP to Chromium itself), and
# it hears console messages, page errors and every request natively.
#
# Knobs: BC_SKIP_BUILD=1 (use the debug velu-cli already built), BC_CHROMIUM (the browser,
# default /usr/bin/chromium), BC_SELF_TEST=csp|selector (break one check on purpose: the
# run must then fail; proves the checks can), BC_OUT (where screenshots go, default
# target/browser-check).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

PLAYWRIGHT_CORE_VERSION=1.65.1
out=${BC_OUT:-$root/target/browser-check}
chromium=${BC_CHROMIUM:-/usr/bin/chromium}
mkdir -p "$out"

if ! [ -x "$chromium" ]; then
  echo "installing Debian's chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
pw=$out/node_modules/playwright-core
if ! [ -f "$pw/package.json" ] || ! grep -q "\"version\": \"$PLAYWRIGHT_CORE_VERSION\"" "$pw/package.json"; then
  echo "installing playwright-core $PLAYWRIGHT_CORE_VERSION into $out" >&2
  npm install --prefix "$out" --no-save --no-audit --no-fund --loglevel=error \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
fi

[ -n "${BC_SKIP_BUILD:-}" ] || cargo build -q -p velu-cli
cli=$root/target/debug/velu-cli

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export VELU_HOME=$work/home
export VELU_TASKS_FILE=$root/tests/fixtures/tasks.yaml
export VELU_LOG=${VELU_LOG:-warn}
unset VELU_DATABASE_URL VELU_API_KEY_PEPPER VELU_API_KEY_PEPPER_FILE VELU_OUTPUT
mkdir -p "$VELU_HOME"

"$cli" -o json org bootstrap --name "Browser Check" --slug browser-check --plan hero >"$work/boot.json"
viewer_token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"]["viewer"]["token"])' <"$work/boot.json")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$cli" serve --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$base/health" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/serve.log" >&2
    echo "error: the server exited before answering /health" >&2
    exit 1
  fi
  sleep 0.2
done

status=0
BC_BASE=$base BC_KEY=$viewer_token BC_ORG_SLUG=browser-check BC_CHROMIUM=$chromium \
  BC_OUT=$out BC_PLAYWRIGHT=$pw \
  node "$root/scripts/browser-check.mjs" || status=$?
if [ "$status" -ne 0 ]; then
  echo "browser check FAILED (screenshot: $out/docs.png); server log (last 40 lines):" >&2
  tail -40 "$work/serve.log" >&2
fi
exit "$status"
