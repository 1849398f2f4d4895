#!/usr/bin/env bash
# A real single-node SLURM on this machine, for tests/test_slurm.py and the README's SLURM
# commands: Debian's slurm-wlm (slurmctld + slurmd) and munge, configured for localhost.
# Run as root; safe to run again (it skips what is installed, configured or running).
#
#   bash scripts/slurm_local.sh          # install, configure, start; waits until the node is idle
#   bash scripts/slurm_local.sh stop     # stop slurmd, slurmctld and munged
#
# The node offers this machine's CPUs and memory (as `slurmd -C` reports them) in one partition,
# `debug`, allocated per CPU, so tasks of one job array run side by side. No accounting database
# (no slurmdbd): sacct does not work here; squeue, scontrol and scancel do.
set -euo pipefail
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
SPOOL=/var/spool

if [ "$(id -u)" != 0 ]; then
  echo "[slurm] run as root: it installs Debian packages and starts daemons" >&2
  exit 2
fi

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ "${1:-start}" = stop ]; then
  for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    if pid_alive "$pidfile"; then kill "$(cat "$pidfile")"; fi
  done
  echo "[slurm] stopped"
  exit 0
elif [ "${1:-start}" != start ]; then
  echo "usage: $0 [start|stop]" >&2
  exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "[slurm] installing slurm-wlm and munge (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: the key every SLURM daemon and client authenticates with (one host: made here).
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! pid_alive /run/munge/munged.pid; then
  runuser -u munge -- /usr/sbin/munged --pid-file /run/munge/munged.pid
fi

# slurm.conf for this host, with the CPUs and memory slurmd detects.
HOST="$(hostname -s)"
NODE="$(slurmd -C | head -1)"
CPUS="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$NODE")"
MEMORY="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE")"
mkdir -p "$CONF_DIR" "$LOG_DIR" "$SPOOL/slurmctld" "$SPOOL/slurmd"
cat > "$CONF_DIR/slurm.conf.new" <<EOF
# Written by VORB's scripts/slurm_local.sh: one node, this host.
ClusterName=vorb-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# No cgroups inside a container: plain process tracking, no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Time limits are enforced within a few seconds of their end (tests use one-minute jobs).
OverTimeLimit=0
KillWait=10
MinJobAge=600
# A job that names no memory gets its CPUs' share, so one-CPU tasks run side by side.
DefMemPerCPU=$((MEMORY / CPUS))
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"; then
  mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
  for pidfile in /run/slurmd.pid /run/slurmctld.pid; do  # restart with the new configuration
    if pid_alive "$pidfile"; then kill "$(cat "$pidfile")"; sleep 1; fi
  done
else
  rm "$CONF_DIR/slurm.conf.new"
fi

pid_alive /run/slurmctld.pid || slurmctld
pid_alive /run/slurmd.pid || slurmd

for _ in $(seq 60); do
  state="$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)"
  case "$state" in
    idle|mix|alloc) echo "[slurm] node $HOST is up ($state): $CPUS CPUs, $MEMORY MB, partition debug"; exit 0 ;;
    drain*|down*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "[slurm] the node did not come up; see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log" >&2
sinfo >&2 || true
exit 1
