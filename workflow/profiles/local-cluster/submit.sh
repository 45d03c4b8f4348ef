#!/usr/bin/env bash
# Submit a Snakemake job script as a detached background process in its own session; print its job id.
# The process group id lands in $SAMSDE_QUEUE/<id>.pid (for cancel.sh), the exit code in <id>.exit (status.sh).
set -euo pipefail
jobscript="$1"
queue="${SAMSDE_QUEUE:-${TMPDIR:-/tmp}/samsde-local-cluster}"
mkdir -p "$queue"
id="job-$(date +%s%N)-$$"
setsid bash -c 'echo $$ > "$2/$3.pid"; bash "$1" > "$2/$3.out" 2>&1; echo $? > "$2/$3.exit.tmp"; mv "$2/$3.exit.tmp" "$2/$3.exit"' \
    _ "$jobscript" "$queue" "$id" < /dev/null > /dev/null 2>&1 &
echo "$id"
