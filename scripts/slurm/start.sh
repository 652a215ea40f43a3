#!/usr/bin/env bash
# A throw-away single-node Slurm cluster on this machine, for the [slurm] test (CTest slurm_sweep);
# scripts/test.sh starts it before CTest and stops it after (scripts/slurm/stop.sh). Adapted from
# the tested recipe in ../shared/slurm/ (its README lists the pitfalls).
#
# Debian bookworm packages: munge slurmctld slurmd slurm-client (22.05), installed by
# scripts/install-deps.sh. Runs as root, without systemd and without cgroups; everything listens
# on loopback only. Idempotent: daemons that are already running are left alone.
#
#   sudo scripts/slurm/start.sh
#   runner sweep FILE --launcher slurm --wait
#   sudo scripts/slurm/stop.sh
#
# Environment knobs:
#   LOCAL_SLURM_DIR   state/spool/log/pid directory   (default /tmp/local_slurm)
#   LOCAL_SLURM_CONF  slurm.conf to write              (default /etc/slurm/slurm.conf,
#                     the place where sbatch/squeue/sinfo look without SLURM_CONF)
#   SLURMCTLD_PORT / SLURMD_PORT                       (default 6817 / 6818)
#   LOCAL_SLURM_INSTALL=0   do not apt-get install missing packages
#   LOCAL_SLURM_TIMEOUT     seconds to wait for the node to become idle (default 60)
#   LOCAL_SLURM_CPUS=N      advertise N CPUs instead of the detected ones (lets
#                           more 1-CPU array tasks run at once than there are cores)
set -euo pipefail

T0=$(date +%s.%N)
BASE=${LOCAL_SLURM_DIR:-/tmp/local_slurm}
CONF=${LOCAL_SLURM_CONF:-/etc/slurm/slurm.conf}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
TIMEOUT=${LOCAL_SLURM_TIMEOUT:-60}

log() { echo "[slurm/start] $*"; }
die() {
    echo "[slurm/start] ERROR: $*" >&2
    for f in /var/log/munge/munged.log "$BASE/log/slurmctld.log" "$BASE/log/slurmd.log"; do
        [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}
# true if the pid stored in file $1 is a live process
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" -eq 0 ] || die "must run as root (sudo scripts/slurm/start.sh)"

# ---------------------------------------------------------------- packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    [ "${LOCAL_SLURM_INSTALL:-1}" = 1 ] || die "slurm/munge not installed"
    log "installing munge slurmctld slurmd slurm-client"
    TI=$(date +%s.%N)
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        munge slurmctld slurmd slurm-client >/dev/null \
        || die "apt-get install failed (run apt-get update first?)"
    log "install took $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $TI}") s"
fi

NODE=$(hostname -s)
[ -n "$NODE" ] || die "hostname -s is empty"
# slurmd and the NoInAddrAny options resolve the host name; make sure the
# short and the full host name resolve (to loopback if they do not at all).
for h in "$NODE" "$(hostname)"; do
    if ! getent hosts "$h" >/dev/null; then
        log "adding '127.0.0.1 $h' to /etc/hosts"
        echo "127.0.0.1 $h" >> /etc/hosts
    fi
done
# Bind the daemons to loopback only when the host name resolves to loopback
# (Slurm binds to the address gethostname() resolves to, not to NodeAddr);
# in e.g. Docker the host name resolves to the container IP, and binding
# there would make 127.0.0.1 unreachable, so keep the default (0.0.0.0).
case "$(getent hosts "$(hostname)" | awk '{print $1; exit}')" in
    127.*) COMM="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny" ;;
    *)     COMM="#CommunicationParameters=NoCtldInAddrAny,NoInAddrAny  (host name does not resolve to loopback)" ;;
esac

mkdir -p "$BASE"/{state,spool,log,run} "$(dirname "$CONF")"
chmod 0755 "$BASE"

# ---------------------------------------------------------------- munge
MUNGE_PID=/run/munge/munged.pid
if alive "$MUNGE_PID"; then
    log "munged already running (pid $(cat "$MUNGE_PID"))"
else
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key --force
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock "$MUNGE_PID"
    runuser -u munge -- /usr/sbin/munged </dev/null >>"$BASE/log/munged.out" 2>&1 \
        || die "munged failed to start"
fi
for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munge credential round-trip failed"

# ---------------------------------------------------------------- slurm.conf
# Use what slurmd itself detects for the node topology (keeps slurmctld from
# marking the node INVAL), but lower RealMemory a bit so that a slightly
# different reading on the next start never drains the node.
HW=$(slurmd -C | head -n1)
field() { echo "$HW" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
CPUS=$(field CPUs); BOARDS=$(field Boards); SPB=$(field SocketsPerBoard)
CPS=$(field CoresPerSocket); TPC=$(field ThreadsPerCore); MEM=$(field RealMemory)
MEM=$(( MEM * 9 / 10 )); [ "$MEM" -ge 1 ] || MEM=1
if [ -n "${LOCAL_SLURM_CPUS:-}" ]; then
    NODECPU="CPUs=${LOCAL_SLURM_CPUS}"
    OVERRIDE="SlurmdParameters=config_overrides"
else
    NODECPU="CPUs=${CPUS} Boards=${BOARDS} SocketsPerBoard=${SPB} CoresPerSocket=${CPS} ThreadsPerCore=${TPC}"
    OVERRIDE=""
fi

NEWCONF=$(cat <<EOF
# generated by difflab's scripts/slurm/start.sh -- single node, loopback only, no cgroups/systemd
ClusterName=localci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=${BASE}/state
SlurmdSpoolDir=${BASE}/spool
SlurmctldPidFile=${BASE}/run/slurmctld.pid
SlurmdPidFile=${BASE}/run/slurmd.pid
SlurmctldLogFile=${BASE}/log/slurmctld.log
SlurmdLogFile=${BASE}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
${COMM}
# no cgroups, no systemd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${BASE}/log/jobcomp.log
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
# default batch_sched_delay=3 delays every submission/next array wave by ~3 s
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=600
Waittime=0
${OVERRIDE}
NodeName=${NODE} NodeAddr=127.0.0.1 NodeHostname=${NODE} ${NODECPU} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEWCONF" ]; then
    if alive "$BASE/run/slurmctld.pid" || alive "$BASE/run/slurmd.pid"; then
        log "WARNING: $CONF differs but daemons are running; run scripts/slurm/stop.sh first to apply it"
    else
        echo "$NEWCONF" > "$CONF"
        chmod 0644 "$CONF"
        log "wrote $CONF"
    fi
fi
export SLURM_CONF="$CONF"

# ---------------------------------------------------------------- daemons
if alive "$BASE/run/slurmctld.pid"; then
    log "slurmctld already running (pid $(cat "$BASE/run/slurmctld.pid"))"
else
    # -c: start with an empty job/node state (fresh cluster for every CI run)
    slurmctld -c </dev/null >>"$BASE/log/slurmctld.out" 2>&1 || die "slurmctld failed to start"
fi
if alive "$BASE/run/slurmd.pid"; then
    log "slurmd already running (pid $(cat "$BASE/run/slurmd.pid"))"
else
    slurmd -N "$NODE" </dev/null >>"$BASE/log/slurmd.out" 2>&1 || die "slurmd failed to start"
fi

# ---------------------------------------------------------------- wait
deadline=$(( $(date +%s) + TIMEOUT ))
until scontrol ping 2>/dev/null | grep -q 'is UP'; do
    [ "$(date +%s)" -lt "$deadline" ] || die "slurmctld did not answer within ${TIMEOUT}s"
    sleep 0.2
done
state=""
while :; do
    state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|inval*)
            # leftover state from an unclean stop: resume the node
            scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] || die "node $NODE not ready within ${TIMEOUT}s (state: '${state}')"
    sleep 0.2
done

log "cluster up: node $NODE is $state; start took $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $T0}") s"
sinfo
