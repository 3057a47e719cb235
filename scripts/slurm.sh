#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, from Debian's packages, with no systemd: for the
# tests (`make test`) and `make run SLURM=1`. As root. Idempotent.
#   scripts/slurm.sh [start]   install what is missing, start munged, slurmctld and slurmd, wait
#                              until the node takes jobs (a second start with all up does nothing)
#   scripts/slurm.sh stop      stop slurmd and slurmctld (munged is left running)
#   scripts/slurm.sh status    what runs, and the node's state; exit 1 unless all is up
# Environment: SLURM_START_TIMEOUT (seconds, default 60).
# No slurmdbd: finished jobs are only written to a text file (jobcomp/filetxt), which `sacct -c`
# reads as root; plain `sacct`, `sacct --json` and `sacctmgr` have no database to ask here.
# tests/unit/data/slurm/README.md has what this Slurm (22.05) offers and its quirks.
set -euo pipefail

ACTION=${1:-start}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
PACKAGES=(slurm-wlm slurm-client munge)
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
RUNDIR=/run/slurm
CTLD_PIDFILE=$RUNDIR/slurmctld.pid
SLURMD_PIDFILE=$RUNDIR/slurmd.pid
MUNGE_KEY=/etc/munge/munge.key
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { echo "slurm: $*"; }
die() {
  echo "slurm: ERROR: $*" >&2
  exit 1
}

# A pid is alive when its process exists and is not a zombie (PID 1 here reaps no orphans, so a
# stopped daemon can linger as a zombie that `kill -0` still finds).
alive() {
  local pid=$1 name=$2 stat
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $stat == "$pid ($name) "* ]] || return 1
  local state=${stat#*) }
  [ "${state%% *}" != Z ]
}
dead() { ! alive "$@"; }
pid_of() { if [ -r "$1" ]; then tr -d ' \n' <"$1"; fi; }
daemon_up() { alive "$(pid_of "$1")" "$2"; }
munge_up() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# wait_for SECONDS WHAT COMMAND...: poll COMMAND every half second until it succeeds.
wait_for() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
  log "$what"
}

node_name() { hostname -s; }

# The node's state as sinfo prints it, e.g. "idle", "mixed", "down*", "drained", "" if unknown.
node_state() { sinfo -h -N -n "$(node_name)" -o '%T' 2>/dev/null | head -n1; }
# planned: idle but kept free for a pending job that will start there (the backfill scheduler)
node_ready() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing|planned)$ ]]; }

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  # the packages' maintainer scripts must not start daemons: this script starts them itself
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  local rc=0
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  } || rc=$?
  [ $own_policy = 1 ] && rm -f "$policy"
  [ $rc = 0 ] || die "apt-get install ${missing[*]} failed"
}

# Slurm daemons find each other by the node's name: make sure it resolves.
ensure_hostname() {
  local name
  name=$(node_name)
  [ -n "$name" ] || die "hostname -s is empty"
  if ! getent hosts "$name" >/dev/null; then
    log "adding $name to /etc/hosts"
    echo "127.0.1.1 $name" >>/etc/hosts
  fi
}

start_munge() {
  if [ ! -s "$MUNGE_KEY" ]; then
    log "creating $MUNGE_KEY"
    install -d -o munge -g munge -m 0700 /etc/munge
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$MUNGE_KEY"
    else
      dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge "$MUNGE_KEY"
  chmod 0400 "$MUNGE_KEY"
  munge_up && return 0
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
  wait_for 10 "munged is up" munge_up || die "munge -n | unmunge fails (see /var/log/munge/munged.log)"
}

# slurm.conf for this machine, on stdout. The node line is `slurmd -C`'s, less the uptime and with
# 90% of the memory (a node that reports less memory than configured would be drained).
render_conf() {
  local name node mem cpus
  name=$(node_name)
  node=$(slurmd -C | grep -m1 '^NodeName=') || die "slurmd -C printed no NodeName line"
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
  if [ -z "$mem" ] || [ -z "$cpus" ]; then die "cannot read CPUs/RealMemory from: $node"; fi
  mem=$((mem * 9 / 10))
  node=$(sed -e 's/ UpTime=[^ ]*//' -e "s/RealMemory=[0-9]*/RealMemory=$mem/" <<<"$node")
  cat <<EOF
# Written by ondemand-hub scripts/slurm.sh: a single-node cluster for tests and development.
ClusterName=ondemand
SlurmctldHost=$name
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that asks for no memory would be given all of the node's
DefMemPerCPU=$((mem / cpus))
SchedulerType=sched/backfill
# batch_sched_delay=0: a batch job is scheduled when it is submitted, as an interactive session
# wants (Slurm's default, 3 s, batches high-throughput submissions: every job would wait 1.5 s
# on average); the backfill pass every 5 s gives queued jobs an expected start.
SchedulerParameters=bf_interval=5,batch_sched_delay=0
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PIDFILE
SlurmdPidFile=$SLURMD_PIDFILE
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
$node State=UNKNOWN
PartitionName=debug Nodes=$name Default=YES MaxTime=1:00:00 State=UP
PartitionName=batch Nodes=$name Default=NO MaxTime=2-00:00:00 State=UP
EOF
}

# Writes slurm.conf; returns 0 if it changed.
write_conf() {
  local new
  new=$(mktemp)
  render_conf >"$new"
  if [ -f "$CONF" ] && cmp -s "$new" "$CONF"; then
    rm -f "$new"
    return 1
  fi
  log "writing $CONF"
  install -d -m 0755 /etc/slurm
  install -m 0644 "$new" "$CONF"
  rm -f "$new"
}

stop_daemon() { # PIDFILE NAME
  local pid
  pid=$(pid_of "$1")
  if alive "$pid" "$2"; then
    log "stopping $2 ($pid)"
    kill "$pid"
    wait_for 30 "$2 stopped" dead "$pid" "$2" || {
      kill -9 "$pid" 2>/dev/null || true
      log "$2 killed"
    }
  fi
  rm -f "$1"
}

do_stop() {
  stop_daemon "$SLURMD_PIDFILE" slurmd
  stop_daemon "$CTLD_PIDFILE" slurmctld
}

do_start() {
  [ "$(id -u)" = 0 ] || die "run as root"
  install_packages
  ensure_hostname
  start_munge
  if write_conf && { daemon_up "$CTLD_PIDFILE" slurmctld || daemon_up "$SLURMD_PIDFILE" slurmd; }; then
    log "slurm.conf changed: restarting"
    do_stop
  fi
  if daemon_up "$CTLD_PIDFILE" slurmctld && daemon_up "$SLURMD_PIDFILE" slurmd && ctld_up && node_ready; then
    log "running (node $(node_name) $(node_state))"
    return 0
  fi

  install -d -m 0755 "$RUNDIR"
  install -d -o slurm -g slurm -m 0755 "$LOGDIR" /var/spool/slurmctld
  install -d -m 0755 /var/spool/slurmd
  if ! daemon_up "$CTLD_PIDFILE" slurmctld; then
    log "starting slurmctld"
    slurmctld || die "slurmctld did not start (see $LOGDIR/slurmctld.log)"
  fi
  wait_for "$TIMEOUT" "slurmctld is up" ctld_up ||
    die "slurmctld does not answer 'scontrol ping' after ${TIMEOUT}s (see $LOGDIR/slurmctld.log)"
  if ! daemon_up "$SLURMD_PIDFILE" slurmd; then
    log "starting slurmd"
    slurmd || die "slurmd did not start (see $LOGDIR/slurmd.log)"
  fi

  # A node left DOWN or DRAINED (e.g. by an earlier unclean stop) is brought back.
  local deadline=$((SECONDS + TIMEOUT)) state resumed=-10
  until node_ready; do
    state=$(node_state)
    if [[ $state =~ ^(down|drain|drained|draining|fail|failing)$ ]] && [ $((SECONDS - resumed)) -ge 5 ]; then
      log "node $(node_name) is $state: resuming"
      scontrol update nodename="$(node_name)" state=resume 2>/dev/null || true
      resumed=$SECONDS
    fi
    [ $SECONDS -lt $deadline ] ||
      die "node $(node_name) is '${state}' after ${TIMEOUT}s, not idle (see $LOGDIR/slurmd.log, $LOGDIR/slurmctld.log)"
    sleep 0.5
  done
  state=$(node_state)
  log "node $(node_name) is $state"

  # A test job, unless users' jobs already keep the node busy (it might wait for them).
  if [ "$state" = idle ]; then
    timeout "$TIMEOUT" srun -N1 -n1 -t 1 -J slurm.sh-check true ||
      die "a test job (srun -N1 true) failed or took over ${TIMEOUT}s (see $LOGDIR/slurmd.log)"
    log "running (a test job ran)"
  else
    log "running (node busy: no test job)"
  fi
}

do_status() {
  local ok=0
  if munge_up; then echo "munged: up"; else
    echo "munged: down"
    ok=1
  fi
  if daemon_up "$CTLD_PIDFILE" slurmctld; then echo "slurmctld: up (pid $(pid_of "$CTLD_PIDFILE"))"; else
    echo "slurmctld: down"
    ok=1
  fi
  if daemon_up "$SLURMD_PIDFILE" slurmd; then echo "slurmd: up (pid $(pid_of "$SLURMD_PIDFILE"))"; else
    echo "slurmd: down"
    ok=1
  fi
  if [ $ok = 0 ]; then
    echo "node $(node_name): $(node_state)"
    node_ready || ok=1
  fi
  return $ok
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
