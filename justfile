# The verbs a newcomer needs. Nothing requires `just`: each recipe is one cargo command.

# Bootstrap an org on the SQLite default (the README's first command).
run slug="acme" name="Acme Corp":
    cargo run -q -p velu-cli -- org bootstrap --name "{{name}}" --slug {{slug}} --plan hero

# The whole suite; set VELU_TEST_DATABASE_URL to run it on PostgreSQL too.
test:
    cargo test --workspace

# The suite on both backends against the local PostgreSQL (what CI runs).
ci:
    .ci/run

# Serve the HTTP API on 127.0.0.1:8001 (docs at /docs).
serve:
    cargo run -q -p velu-cli -- --tasks-file examples/tasks.yaml serve

# Run jobs with the example command kinds.
worker:
    cargo run -q -p velu-cli -- --tasks-file examples/tasks.yaml worker --concurrency 4

# Format check and clippy on every crate and target.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate the committed references (docs/openapi.json, docs/cli.md, docs/man/).
docs:
    VELU_UPDATE_DOCS=1 cargo test -p velu-tests --test it generated

# The OpenAPI spec on stdout.
openapi:
    cargo run -q -p velu-cli -- docs openapi

# Queue throughput (release build).
bench:
    cargo bench -p velu-tests --bench queue

# Velu and graphile-worker side by side (needs ../shared/bench/peers and npm).
bench-peers:
    scripts/bench-side-by-side.sh

# Apply migrations (PostgreSQL: VELU_DATABASE_URL=postgres://...).
migrate:
    cargo run -q -p velu-cli -- migrate up
