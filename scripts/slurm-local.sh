#!/usr/bin/env bash
# slurm-local.sh: a single-node Slurm on localhost for tests and trying `peftbench slurm`
# (docs/cluster.md). Everything lives in one state directory: its own munged (private key and
# socket), slurm.conf (one node, 2 CPUs, one partition "debug", no accounting database),
# slurmctld and slurmd with their spool, logs and pid files. Nothing under /etc is changed, so a
# system Slurm or munge on the same machine is left alone (other ports, other socket).
#
#   scripts/slurm-local.sh install        apt-get install slurmctld slurmd slurm-client munge (root)
#   scripts/slurm-local.sh start [DIR]    write the config, start munged, slurmctld, slurmd; wait
#                                         until the node is idle (bounded); prints the SLURM_CONF line
#   scripts/slurm-local.sh stop [DIR]     stop the three daemons (by their pid files) and wait
#   scripts/slurm-local.sh env [DIR]      prints: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm-local.sh check          exit 0 if the Slurm and munge programs are installed
#
# DIR defaults to $PB_SLURM_DIR or /tmp/peftbench-slurm. Ports: $PB_SLURM_PORT (slurmctld,
# default 16817) and that + 1 (slurmd). The daemons run as the calling user (root in CI; as an
# ordinary user jobs can only run as that user, which is all a test needs). Exit status: 0 ok,
# 1 a daemon did not come up (its log is printed), 2 usage.
set -u
cmd=${1:-}
DIR=${2:-${PB_SLURM_DIR:-/tmp/peftbench-slurm}}
PORT=${PB_SLURM_PORT:-16817}
PROGS="munged slurmctld slurmd sbatch squeue scancel scontrol sinfo"

have_all() {
  for p in $PROGS; do
    command -v "$p" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$p" >/dev/null 2>&1 || return 1
  done
}
export PATH="$PATH:/usr/sbin:/sbin"

# Sends SIGTERM to the daemon whose pid file is $1 and waits (10 s) for it to exit, then SIGKILL.
stop_pidfile() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  case "$pid" in '' | *[!0-9]*) rm -f "$f"; return 0 ;; esac
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

show_logs() {
  for l in "$DIR"/munged.log "$DIR"/slurmctld.log "$DIR"/slurmd.log; do
    [ -f "$l" ] && { echo "--- $l (last 30 lines)" >&2; tail -30 "$l" >&2; }
  done
}

case "$cmd" in
install)
  [ "$(id -u)" = 0 ] || { echo "slurm-local.sh install: needs root (apt-get)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
  exit $?
  ;;
check)
  have_all
  exit $?
  ;;
env)
  echo "export SLURM_CONF=$DIR/slurm.conf"
  exit 0
  ;;
stop)
  # slurmd first (it reports to slurmctld), munged last (both authenticate through it).
  stop_pidfile "$DIR/slurmd.pid"
  stop_pidfile "$DIR/slurmctld.pid"
  stop_pidfile "$DIR/munged.pid"
  exit 0
  ;;
start) ;;
*)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac

have_all || { echo "slurm-local.sh: Slurm/munge not installed (need: $PROGS); run: $0 install" >&2; exit 1; }
# Readable paths: jobs and clients reach the munge socket through them (the key itself is 0400).
mkdir -p "$DIR" && chmod 755 "$DIR" || exit 1
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge" && chmod 755 "$DIR/munge"
# Stop whatever an earlier start left in this directory.
"$0" stop "$DIR"
USER_NAME=$(id -un)
HOST=$(hostname -s)
CPUS=2
# Memory the node offers: what the machine has, less 1 GiB (jobs asking --mem beyond it are refused).
MEM_MB=$(awk '/^MemTotal:/ {m = int($2 / 1024) - 1024; print (m > 512 ? m : 512)}' /proc/meminfo)

# munged: a private key (1024 random bits) and socket; its checks want the key 0400 and owned by us.
[ -s "$DIR/munge/munge.key" ] || { dd if=/dev/urandom of="$DIR/munge/munge.key" bs=128 count=1 status=none && chmod 400 "$DIR/munge/munge.key"; }
munged --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munged.pid" \
  --log-file="$DIR/munged.log" --seed-file="$DIR/munge/munge.seed" --force 2>>"$DIR/munged.log" ||
  { echo "slurm-local.sh: munged did not start" >&2; show_logs; exit 1; }

cat > "$DIR/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh: one node (this host, $CPUS CPUs), no accounting database.
ClusterName=peftbench-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups (containers, CI): processes tracked through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
# Finished jobs stay visible to scontrol for 10 minutes (no sacct without a database).
MinJobAge=600
MaxArraySize=10001
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$DIR/slurm.conf"

# -c: a clean start (no jobs from an earlier run of this directory).
slurmctld -c -f "$SLURM_CONF" 2>>"$DIR/slurmctld.log" || { echo "slurm-local.sh: slurmctld did not start" >&2; show_logs; exit 1; }
slurmd -N "$HOST" -f "$SLURM_CONF" 2>>"$DIR/slurmd.log" || { echo "slurm-local.sh: slurmd did not start" >&2; show_logs; exit 1; }

# Wait (30 s at most) until the node is idle.
for _ in $(seq 150); do
  st=$(sinfo -h -N -o '%T' 2>/dev/null | head -1)
  case "$st" in idle*) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
  sleep 0.2
done
echo "slurm-local.sh: node $HOST not idle after 30 s (state '${st:-none}')" >&2
sinfo -N -l >&2 2>&1
show_logs
exit 1
