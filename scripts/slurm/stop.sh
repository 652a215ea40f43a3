#!/usr/bin/env bash
# Stops the cluster scripts/slurm/start.sh started (adapted from ../shared/slurm/).
# Uses `scontrol shutdown`, then signals only the pids recorded in the pid
# files (never pkill/killall by name).  Safe to run when nothing is running.
#   LOCAL_SLURM_DIR / LOCAL_SLURM_CONF as for scripts/slurm/start.sh
#   LOCAL_SLURM_KEEP_MUNGE=1   leave munged running
#   LOCAL_SLURM_PURGE=1        also delete $LOCAL_SLURM_DIR afterwards
set -uo pipefail

T0=$(date +%s.%N)
BASE=${LOCAL_SLURM_DIR:-/tmp/local_slurm}
export SLURM_CONF=${LOCAL_SLURM_CONF:-/etc/slurm/slurm.conf}
log() { echo "[slurm/stop] $*"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait up to $2 tenths of a second for pid $1 to exit;
# then SIGTERM, then SIGKILL that pid only.
stop_pid() {
    local pid=$1 ticks=$2 name=$3
    [ -n "$pid" ] || return 0
    for _ in $(seq "$ticks"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) still running, sending SIGTERM"
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
}
# pid from pid file $1, only if that process is alive
getpid() { alive "$1" && cat "$1"; }

CTLD_PID=$(getpid "$BASE/run/slurmctld.pid")
SLURMD_PID=$(getpid "$BASE/run/slurmd.pid")
MUNGE_PID=$(getpid /run/munge/munged.pid)

if [ -n "$CTLD_PID$SLURMD_PID" ]; then
    # Cancel whatever is still queued/running: slurmd's shutdown does NOT kill
    # running jobs (their slurmstepd would outlive the cluster).
    JOBS=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${JOBS// /}" ]; then
        log "cancelling jobs: $JOBS"
        scancel --quiet $JOBS >/dev/null 2>&1 || true
        for _ in $(seq 100); do
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1
        done
    fi
    # shuts down slurmctld and all slurmd's
    scontrol shutdown >/dev/null 2>&1 || log "scontrol shutdown failed; falling back to signals"
fi
stop_pid "$SLURMD_PID" 100 slurmd
stop_pid "$CTLD_PID"   100 slurmctld
rm -f "$BASE/run/slurmd.pid" "$BASE/run/slurmctld.pid"

if [ "${LOCAL_SLURM_KEEP_MUNGE:-0}" != 1 ]; then
    if [ -n "$MUNGE_PID" ]; then
        kill -TERM "$MUNGE_PID" 2>/dev/null
        stop_pid "$MUNGE_PID" 50 munged
    fi
fi

LEFT=$(ps -eo pid=,comm= | awk '$2 == "slurmstepd" {print $1}' | tr '\n' ' ')
[ -z "${LEFT// /}" ] || log "WARNING: slurmstepd processes still alive: $LEFT"
if [ "${LOCAL_SLURM_PURGE:-0}" = 1 ]; then rm -rf "$BASE"; fi
log "stopped in $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $T0}") s"
