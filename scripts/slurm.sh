#!/usr/bin/env bash
# A Slurm cluster of several hosts on this machine, from Debian's packages, with no systemd: for
# the tests (`make test`) and `make run SLURM=1`. As root. Idempotent.
#   * the portal host (the root namespaces): slurmctld, and a slurmd for the node named as this
#     host (`hostname -s`), alone in partitions debug (the default) and batch;
#   * N compute nodes odh-node1..N (partition compute): each its own network namespace (named as
#     the node, /run/netns/<node>) with a veth into the bridge odh-br0 (10.77.0.1/24; node i is
#     10.77.0.(10+i)), its own hostname (UTS namespace) and its own mount namespace, in which its
#     /etc/hosts, /var/spool/slurmd, /run/slurm and /var/log/slurm are the node's own (bound
#     from /var/lib/ondemand-hub-cluster/<node>/), as on a separate machine; /home, /tmp and the
#     rest of the file system are shared as NFS would share them. munged is shared (its socket is
#     a file, reachable from every network namespace). docs/deployment.md has the topology.
#   * a login host odh-login (10.77.0.2): Debian's sshd in namespaces of its own (network,
#     hostname, /etc/hosts), for users' ssh logins (the LinuxHost backend).
# The hosts' names resolve on the portal host through lines of /etc/hosts marked as this script's;
# nothing but the bridge and the namespaces made here is touched.
#   scripts/slurm.sh [start]   install what is missing, build the nodes' network, start munged,
#                              slurmctld and every slurmd, wait until every node takes jobs (a
#                              second start with all up does nothing)
#   scripts/slurm.sh stop      stop every slurmd, slurmctld and the login host's sshd (munged
#                              is left running) and remove the namespaces, the bridge and the
#                              /etc/hosts lines
#   scripts/slurm.sh status    what runs, and the nodes' states; exit 1 unless all is up
# What was built is written to /run/slurm/cluster.json (the tests read it): the portal's address
# on the bridge (the hub's API must listen there) and each compute node's name, address and
# network namespace, and the login host's.
# Environment: SLURM_START_TIMEOUT (seconds, default 60), SLURM_COMPUTE_NODES (default 2).
# No slurmdbd: finished jobs are only written to a text file (jobcomp/filetxt), which `sacct -c`
# reads as root; plain `sacct`, `sacct --json` and `sacctmgr` have no database to ask here.
# tests/unit/data/slurm/README.md has what this Slurm (22.05) offers and its quirks.
set -euo pipefail

ACTION=${1:-start}
TIMEOUT=${SLURM_START_TIMEOUT:-60}
PACKAGES=(slurm-wlm slurm-client munge openssh-server iproute2)
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
RUNDIR=/run/slurm
CTLD_PIDFILE=$RUNDIR/slurmctld.pid
SLURMD_PIDFILE=$RUNDIR/slurmd.pid
MUNGE_KEY=/etc/munge/munge.key
NODES=${SLURM_COMPUTE_NODES:-2}
BRIDGE=odh-br0
NET=10.77.0
BRIDGE_IP=$NET.1
NODE_ROOT=/var/lib/ondemand-hub-cluster
STATE=$RUNDIR/cluster.json
LOGIN=odh-login
LOGIN_IP=$NET.2
HOSTS_MARK="# ondemand-hub scripts/slurm.sh"
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
compute_nodes() { for ((i = 1; i <= NODES; i++)); do echo "odh-node$i"; done; }
all_nodes() { node_name && compute_nodes; }
# Every host in a namespace of its own: the compute nodes and the login host.
ns_hosts() { compute_nodes && echo "$LOGIN"; }
node_addr() { if [ "$1" = "$LOGIN" ]; then echo "$LOGIN_IP"; else echo "$NET.$((10 + ${1#odh-node}))"; fi; }
host_veth() { if [ "$1" = "$LOGIN" ]; then echo odh-vethl; else echo "odh-veth${1#odh-node}"; fi; }
node_dir() { echo "$NODE_ROOT/$1"; }

# The node's state as sinfo prints it, e.g. "idle", "mixed", "down*", "drained", "" if unknown.
node_state() { sinfo -h -N -n "${1:-$(node_name)}" -o '%T' 2>/dev/null | head -n1; }
# planned: idle but kept free for a pending job that will start there (the backfill scheduler)
node_ready() { [[ $(node_state "$@") =~ ^(idle|mixed|allocated|completing|planned)$ ]]; }
all_ready() {
  local n
  for n in $(all_nodes); do node_ready "$n" || return 1; done
}
# A compute node's slurmd pid file, as the portal host sees it.
node_pidfile() { echo "$(node_dir "$1")/run/slurmd.pid"; }

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
  # The compute nodes: this machine's CPUs and memory each (they share them).
  [ "$NODES" -gt 0 ] || return 0
  local n
  for n in $(compute_nodes); do
    echo "${node/NodeName=$name /NodeName=$n NodeAddr=$(node_addr "$n") } State=UNKNOWN"
  done
  echo "PartitionName=compute Nodes=odh-node[1-$NODES] Default=NO MaxTime=1:00:00 State=UP"
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

# --- the compute nodes' network: a bridge, and per node a namespace with a veth in it ---------

# The /etc/hosts a node sees: every node of the cluster by its address, the portal host by its
# address on the bridge (SlurmctldHost is the portal host's name).
node_hosts() {
  local n
  printf '127.0.0.1 localhost\n%s %s\n' "$BRIDGE_IP" "$(node_name)"
  for n in $(ns_hosts); do printf '%s %s\n' "$(node_addr "$n")" "$n"; done
}

# The portal host's /etc/hosts gets one marked line per compute node (others' lines stay).
write_hosts() {
  local want n
  want=$(for n in $(ns_hosts); do printf '%s %s %s\n' "$(node_addr "$n")" "$n" "$HOSTS_MARK"; done)
  [ "$(grep -F "$HOSTS_MARK" /etc/hosts || true)" = "$want" ] && return 0
  remove_hosts
  [ -z "$want" ] || printf '%s\n' "$want" >>/etc/hosts
}
# /etc/hosts may be a bind mount (containers): rewrite it in place, never replace the file.
remove_hosts() {
  local kept
  kept=$(grep -vF "$HOSTS_MARK" /etc/hosts || true)
  [ "$kept" = "$(cat /etc/hosts)" ] || printf '%s\n' "$kept" >/etc/hosts
}

network_up() {
  local n veth addr dir
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "making bridge $BRIDGE ($BRIDGE_IP/24)"
    ip link add "$BRIDGE" type bridge
  fi
  ip -br addr show dev "$BRIDGE" | grep -qF " $BRIDGE_IP/24" || ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for n in $(ns_hosts); do
    veth=$(host_veth "$n") addr=$(node_addr "$n") dir=$(node_dir "$n")
    [ -e "/run/netns/$n" ] || { log "making network namespace $n ($addr)" && ip netns add "$n"; }
    ip link show "$veth" >/dev/null 2>&1 || ip link add "$veth" type veth peer name eth0 netns "$n"
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$n" -br addr show dev eth0 | grep -qF " $addr/24" || ip -n "$n" addr add "$addr/24" dev eth0
    ip -n "$n" link set eth0 up
    ip -n "$n" link set lo up
    install -d -m 0755 "$dir" "$dir/spool" "$dir/run"
    install -d -o slurm -g slurm -m 0755 "$dir/log"
    node_hosts >"$dir/hosts"
  done
  write_hosts
}

network_down() {
  local n
  for n in $(ns_hosts); do
    ip link del "$(host_veth "$n")" 2>/dev/null || true
    [ ! -e "/run/netns/$n" ] || { log "removing network namespace $n" && ip netns del "$n"; }
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  remove_hosts
  rm -f "$STATE"
}

# slurmd of compute node N: in N's network namespace, with N's hostname and N's own
# /etc/hosts, spool, run and log folders (a mount namespace of its own; mounts of the portal
# host still propagate into it). slurmd finds its NodeName by the hostname.
start_node_slurmd() {
  local n=$1 dir
  dir=$(node_dir "$n")
  log "starting slurmd of $n"
  nsenter --net="/run/netns/$n" -- unshare --uts --mount --propagation slave -- sh -ec '
    hostname "$1"
    for m in hosts:/etc/hosts spool:/var/spool/slurmd run:/run/slurm log:/var/log/slurm; do
      mount --bind "$2/${m%%:*}" "${m#*:}"
    done
    exec slurmd' sh "$n" "$dir" || die "slurmd of $n did not start (see $dir/log/slurmd.log)"
}

# The login host: Debian's sshd in the login host's namespaces (network, hostname, its own
# /etc/hosts), with this machine's host keys and PAM, as users' ssh logins reach it.
sshd_pidfile() { echo "$(node_dir "$LOGIN")/run/sshd.pid"; }
start_login_sshd() {
  local dir
  dir=$(node_dir "$LOGIN")
  [ -s /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -A
  install -d -m 0755 /run/sshd
  log "starting sshd of $LOGIN"
  nsenter --net="/run/netns/$LOGIN" -- unshare --uts --mount --propagation slave -- sh -ec '
    hostname "$1"
    mount --bind "$2/hosts" /etc/hosts
    exec /usr/sbin/sshd -o PidFile="$2/run/sshd.pid"' sh "$LOGIN" "$dir" ||
    die "sshd of $LOGIN did not start"
  wait_for 10 "sshd of $LOGIN is up" daemon_up "$(sshd_pidfile)" sshd || die "sshd of $LOGIN is not up"
}

write_state() {
  local n sep="" nodes=""
  for n in $(compute_nodes); do
    nodes+="$sep{\"name\": \"$n\", \"address\": \"$(node_addr "$n")\", \"netns\": \"/run/netns/$n\"}"
    sep=", "
  done
  install -d -m 0755 "$RUNDIR"
  printf '{"portal_address": "%s", "partition": "compute", "nodes": [%s], "login": {"name": "%s", "address": "%s", "netns": "/run/netns/%s"}}\n' \
    "$BRIDGE_IP" "$nodes" "$LOGIN" "$LOGIN_IP" "$LOGIN" >"$STATE.tmp"
  mv "$STATE.tmp" "$STATE"
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

stop_daemons() {
  local n
  for n in $(compute_nodes); do stop_daemon "$(node_pidfile "$n")" slurmd; done
  stop_daemon "$SLURMD_PIDFILE" slurmd
  stop_daemon "$(sshd_pidfile)" sshd
  stop_daemon "$CTLD_PIDFILE" slurmctld
}

do_stop() {
  stop_daemons
  network_down
}

daemons_up() {
  local n
  daemon_up "$CTLD_PIDFILE" slurmctld && daemon_up "$SLURMD_PIDFILE" slurmd || return 1
  for n in $(compute_nodes); do daemon_up "$(node_pidfile "$n")" slurmd || return 1; done
  daemon_up "$(sshd_pidfile)" sshd
}

# Wait until node N takes jobs; a node left DOWN or DRAINED (e.g. by an earlier unclean stop) is
# brought back.
wait_node() {
  local n=$1 deadline=$((SECONDS + TIMEOUT)) state resumed=-10
  until node_ready "$n"; do
    state=$(node_state "$n")
    if [[ $state =~ ^(down|drain|drained|draining|fail|failing)\*?$ ]] && [ $((SECONDS - resumed)) -ge 5 ]; then
      log "node $n is $state: resuming"
      scontrol update nodename="$n" state=resume 2>/dev/null || true
      resumed=$SECONDS
    fi
    [ $SECONDS -lt $deadline ] ||
      die "node $n is '${state}' after ${TIMEOUT}s, not idle (see the slurmd.log of $n, $LOGDIR/slurmctld.log)"
    sleep 0.5
  done
  log "node $n is $(node_state "$n")"
}

do_start() {
  [ "$(id -u)" = 0 ] || die "run as root"
  install_packages
  ensure_hostname
  start_munge
  network_up
  # every daemon reads the new slurm.conf: those that run are restarted
  if write_conf; then stop_daemons; fi
  write_state
  if daemons_up && ctld_up && all_ready; then
    log "running (nodes $(all_nodes | tr '\n' ' ')up)"
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
  local n state
  for n in $(compute_nodes); do
    daemon_up "$(node_pidfile "$n")" slurmd || start_node_slurmd "$n"
  done
  daemon_up "$(sshd_pidfile)" sshd || start_login_sshd
  for n in $(all_nodes); do wait_node "$n"; done
  state=$(node_state)

  # A test job, unless users' jobs already keep the node busy (it might wait for them).
  if [ "$state" = idle ]; then
    timeout "$TIMEOUT" srun -N1 -n1 -t 1 -J slurm.sh-check true ||
      die "a test job (srun -N1 true) failed or took over ${TIMEOUT}s (see $LOGDIR/slurmd.log)"
    log "running (a test job ran)"
  else
    log "running (node busy: no test job)"
  fi
  # One step on every compute node: each answers with its own hostname, from its own namespace.
  if [ "$NODES" -gt 0 ] && [ -z "$(squeue -h -p compute -o %i 2>/dev/null)" ]; then
    local names
    names=$(timeout "$TIMEOUT" srun -p compute -N"$NODES" -n"$NODES" -t 1 -J slurm.sh-check hostname | sort | tr '\n' ' ') ||
      die "a test job on the compute nodes failed or took over ${TIMEOUT}s (see $NODE_ROOT/*/log/slurmd.log)"
    [ "$names" = "$(compute_nodes | sort | tr '\n' ' ')" ] || die "the compute nodes answered '$names'"
    log "compute nodes answered: $names"
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
  local n
  for n in $(compute_nodes); do
    if daemon_up "$(node_pidfile "$n")" slurmd; then echo "slurmd of $n: up (pid $(pid_of "$(node_pidfile "$n")"), $(node_addr "$n"))"; else
      echo "slurmd of $n: down"
      ok=1
    fi
  done
  if daemon_up "$(sshd_pidfile)" sshd; then echo "sshd of $LOGIN: up (pid $(pid_of "$(sshd_pidfile)"), $LOGIN_IP)"; else
    echo "sshd of $LOGIN: down"
    ok=1
  fi
  if [ $ok = 0 ]; then
    for n in $(all_nodes); do
      echo "node $n: $(node_state "$n")"
      node_ready "$n" || ok=1
    done
  fi
  return $ok
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
