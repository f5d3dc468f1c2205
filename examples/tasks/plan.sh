#!/bin/sh
# Example command task `plan`: payload {"goal": "..."} on stdin, a plan as JSON on stdout.
set -eu
payload=$(cat)
goal=$(printf '%s' "$payload" | sed -n 's/.*"goal"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p')
if [ -z "$goal" ]; then
  echo "payload.goal (a string) is required" >&2
  exit 2
fi
printf '{"goal":"%s","steps":["1. understand: %s","2. split into tasks","3. do the tasks","4. check the result"]}\n' "$goal" "$goal"
