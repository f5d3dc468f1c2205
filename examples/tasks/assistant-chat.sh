#!/bin/sh
# Example command task `assistant-chat`: payload {"message": "..."}; a canned answer.
set -eu
payload=$(cat)
message=$(printf '%s' "$payload" | sed -n 's/.*"message"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p')
case "$message" in
  *plan*) reply="Submit a 'plan' job with a goal and I will outline it." ;;
  *hello*|*hi*) reply="Hello! Ask me about plans, jobs or keys." ;;
  "") echo "payload.message (a string) is required" >&2; exit 2 ;;
  *) reply="I heard: $message" ;;
esac
printf '{"reply":"%s"}\n' "$reply"
