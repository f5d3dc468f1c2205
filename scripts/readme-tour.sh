#!/usr/bin/env bash
# Runs the README's tour (the shell blocks between <!-- tour:start --> and <!-- tour:end -->)
# as a new user would paste it: in a fresh bash at the repository root, top to bottom,
# stopping at the first command that fails. The API port is swapped for a free one so the
# run cannot collide with a server already on 8001. Usage: scripts/readme-tour.sh
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tour=$(mktemp)
trap 'rm -f "$tour"' EXIT
{
  echo 'set -euo pipefail'
  # Whatever happens, no worker or server outlives the tour, and its env file goes.
  echo 'trap '"'"'kill $(jobs -p) 2>/dev/null || true; rm -f tour.env'"'"' EXIT'
  awk '/<!-- tour:start -->/{on=1; next} /<!-- tour:end -->/{on=0}
       on && /^```sh/{code=1; next} on && /^```/{code=0; next} on && code' README.md
} | sed "s/127\.0\.0\.1:8001/127.0.0.1:$port/g" >"$tour"

if [ "$(grep -c . "$tour")" -lt 10 ]; then
  echo "error: no tour found between the markers in README.md" >&2
  exit 1
fi
if [ -e tour.env ]; then
  echo "error: tour.env exists in the repository root; remove it first" >&2
  exit 1
fi
env -u VELU_DATABASE_URL -u VELU_API_KEY -u VELU_ORG VELU_ADDR="127.0.0.1:$port" \
  bash -x "$tour"
echo "README tour: every command ran"
