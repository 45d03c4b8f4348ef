#!/usr/bin/env bash
# A throw-away single-node SLURM on this machine, for CI and for a developer who wants to try the slurm profile.
#
#   .ci/slurm.sh up       install slurmctld, slurmd, slurm-client and munge (Debian packages) if missing, write a
#                         munge key and a one-node slurm.conf sized from `nproc` and `free`, start munged, slurmctld
#                         and slurmd, and wait until the node is idle and a one-second job runs
#   .ci/slurm.sh status   sinfo and squeue
#   .ci/slurm.sh down     cancel every job, stop the three daemons and remove what `up` wrote
#
# Needs root (it installs packages and starts system daemons). It never touches a SLURM it did not write: `up`
# refuses to run when /etc/slurm/slurm.conf exists without this script's marker line. No accounting daemon
# (slurmdbd) runs, so `sacct` has nothing to report: query job states with squeue, which the slurm profile's
# `slurm-status-command` does on such a cluster (see the README, "Run on a cluster").
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# written by samsde .ci/slurm.sh (throw-away single-node SLURM)"
STATE=/var/tmp/samsde-slurm            # spool, state, logs and pid files of this SLURM only
READY_TIMEOUT=${SLURM_READY_TIMEOUT:-60} # seconds

log() { echo "[slurm.sh] $*"; }

ours() { [[ -f $CONF ]] && grep -qxF "$MARKER" "$CONF"; }

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd sinfo munged; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
    ((${#missing[@]} == 0)) && return
    log "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # what SLURM may hand out: the machine's memory less 1 GiB for the daemons and the submitting Snakemake
    mem_mb=$(($(free -m | awk '/^Mem:/ {print $2}') - 1024))
    mkdir -p "$STATE"/{spool,state,log} /etc/slurm
    cat >"$CONF" <<EOF
$MARKER
ClusterName=samsde-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    log "slurm.conf: node $host, $cpus CPUs, ${mem_mb} MB, partition ci"
}

start_munge() {
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        touch "$STATE/munge.key.ours"
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0700 /etc/munge
    pgrep -x munged >/dev/null || runuser -u munge -- munged
    munge -n | unmunge >/dev/null
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) state=""
    while ((SECONDS < deadline)); do
        state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
        [[ $state == idle ]] && break
        sleep 1
    done
    if [[ $state != idle ]]; then
        log "the node is not idle after ${READY_TIMEOUT} s (state: '${state:-no answer}'); the logs:"
        tail -n 20 "$STATE"/log/*.log >&2 || true
        exit 1
    fi
    timeout "$READY_TIMEOUT" srun --quiet -N1 -n1 -t 1 true
    log "ready: $(sinfo -h -o '%P %D %c %m %T')"
}

up() {
    if [[ -f $CONF ]] && ! ours; then
        log "$CONF exists and was not written by this script: refusing to touch an existing SLURM" >&2
        exit 2
    fi
    install_packages
    write_conf
    start_munge
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    wait_ready
}

down() {
    if ! ours; then
        log "no SLURM of this script's is configured: nothing to stop"
        return
    fi
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon munged
    [[ -f $STATE/munge.key.ours ]] && rm -f /etc/munge/munge.key
    rm -rf "$STATE" "$CONF"
    log "stopped and removed"
}

stop_daemon() { # SIGTERM, then wait up to 10 s for the process to exit (SIGKILL after that)
    pkill -x "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do
        pgrep -x "$1" >/dev/null || return 0
        sleep 0.2
    done
    pkill -9 -x "$1" 2>/dev/null || true
}

status() {
    sinfo
    squeue
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
    echo "usage: $0 up|status|down" >&2
    exit 2
    ;;
esac
