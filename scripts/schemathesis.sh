#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI spec with schemathesis 4 (every check, the
# stateful phase on): a debug server on a fresh SQLite home, one org, one job and a
# platform key with every scope, so generated requests get past auth and 404. Exits
# non-zero on any failure. Used by .ci/run.
#
# The server is `velu-http`, the twin of `velu-cli serve` (the same `velu_http::serve`, the
# same flags), run with a larger --auth-failures-per-minute: schemathesis probes every
# operation with a wrong key from one address, which the default budget (30 a minute)
# answers with 429 after a while.
#
# Knobs: ST_MAX_EXAMPLES (examples per operation, default 100), ST_SEED (fixed by default,
# for reproducible runs), ST_VENV (where schemathesis is installed when missing; default
# target/schemathesis-venv), ST_SKIP_BUILD=1 (use the debug binaries already built).
# Extra arguments go to `schemathesis run`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

venv=${ST_VENV:-$root/target/schemathesis-venv}
st=$venv/bin/schemathesis
if ! "$st" --version 2>/dev/null | grep -q 'version 4\.'; then
  echo "installing schemathesis 4 into $venv" >&2
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian splits venv out of python3; CI runs as root on a Debian machine.
    echo "python3 -m venv failed; installing python3-venv" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4,<5'
fi

[ -n "${ST_SKIP_BUILD:-}" ] || cargo build -q -p velu-cli -p velu-http
cli=$root/target/debug/velu-cli
server=$root/target/debug/velu-http

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
# A billing secret, so `POST /v1/billing/events` checks signatures (without one it fails
# closed with `config`, a 500 by design).
export VELU_BILLING_SECRET=schemathesis-billing-secret-0123456789abcdef
mkdir -p "$VELU_HOME"

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

"$cli" -o json org bootstrap --name "Schemathesis" --slug st-org --plan superhero >"$work/boot.json"
org_id=$(json '["org"]["id"]' <"$work/boot.json")
# The fuzzer revokes and rotates the key it is given as {key}: the viewer's. The builder's
# stays valid for the earlier system's routes, which need an org key.
org_key=$(json '["keys"]["viewer"]["key"]["id"]' <"$work/boot.json")
org_token=$(json '["keys"]["builder"]["token"]' <"$work/boot.json")
"$cli" -o json key create --platform --name st-platform \
  --scopes jobs:read,jobs:submit,admin:api_keys:manage,audit:read,admin:orgs:manage,jobs:work \
  >"$work/platform.json"
token=$(json '["token"]' <"$work/platform.json")
job_id=$("$cli" -o json job submit --org st-org --task echo --payload '{"hello":"world"}' | json '["id"]')

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$server" --addr "127.0.0.1:$port" --auth-failures-per-minute 100000 >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
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

export ST_TOKEN=$token ST_ORG_TOKEN=$org_token ST_ORG_ID=$org_id ST_KEY_ID=$org_key ST_JOB_ID=$job_id
echo "schemathesis against $base (org $org_id, job $job_id, key $org_key)" >&2
status=0
# From the temporary folder, so hypothesis' example database stays out of the tree.
cd "$work"
"$st" --config-file "$root/scripts/schemathesis/schemathesis.toml" run "$base/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${ST_MAX_EXAMPLES:-100}" \
  --seed "${ST_SEED:-20261201}" \
  --workers 1 \
  --report junit --report-dir "$root/target/schemathesis-report" \
  "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "server log (last 40 lines):" >&2
  tail -40 "$work/serve.log" >&2
fi
exit "$status"
