#!/usr/bin/env bash
# Report a job's state to Snakemake: running, success or failed.
queue="${SAMSDE_QUEUE:-${TMPDIR:-/tmp}/samsde-local-cluster}"
exit_file="$queue/$1.exit"
if [ ! -f "$exit_file" ]; then
    echo running
elif [ "$(cat "$exit_file")" = "0" ]; then
    echo success
else
    echo failed
fi
