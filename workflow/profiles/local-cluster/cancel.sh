#!/usr/bin/env bash
# Cancel jobs: kill each job's process group and mark it failed.
queue="${SAMSDE_QUEUE:-${TMPDIR:-/tmp}/samsde-local-cluster}"
for id in "$@"; do
    [ -f "$queue/$id.pid" ] && kill -- "-$(cat "$queue/$id.pid")" 2> /dev/null
    [ -f "$queue/$id.exit" ] || echo 143 > "$queue/$id.exit"
done
exit 0
