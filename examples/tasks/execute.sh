#!/bin/sh
# Example command task `execute` (superhero): writes payload.note into the job's workspace
# and reports the working directory and the names of the variables it was given.
set -eu
payload=$(cat)
note=$(printf '%s' "$payload" | sed -n 's/.*"note"[[:space:]]*:[[:space:]]*"\([^"\\]*\)".*/\1/p')
printf '%s\n' "${note:-no note}" > note.txt
names=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/"\1"/p' | sort | paste -sd, -)
printf '{"cwd":"%s","wrote":["note.txt"],"env":[%s]}\n' "$(pwd)" "$names"
