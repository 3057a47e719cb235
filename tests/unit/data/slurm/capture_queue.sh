#!/bin/bash
# Captures squeue.txt, squeue_start.txt, squeue_start_user.txt and sacctmgr_no_slurmdbd.txt (README.md,
# "The queue capture") on the single-node Slurm of scripts/slurm.sh. Run as root on an idle
# node; it cancels its jobs at the end. Usage: capture_queue.sh OUTPUT_DIR
set -euo pipefail
out=${1:?output directory}
FMT='%i|%T|%r|%u|%a|%P|%D|%C|%m|%l|%M|%L|%V|%S|%e|%N|%B|%Q|%j'
START_FMT='%i|%T|%S|%r|%Y|%j'
for u in odt-slurmtest odt-slurmtest2; do id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"; done
as() { local u=$1; shift; runuser -u "$u" -- "$@"; }
sub() { local u=$1; shift; as "$u" sbatch --parsable -o /dev/null "$@" | cut -d';' -f1; }
cd /tmp
ids=()
ids+=("$(sub odt-slurmtest -p debug -c1 -t 1 -J done --wrap true)")
sleep 2
ids+=("$(sub odt-slurmtest -p debug -c1 -t 30 -J ondemand-jupyter-jupyter-1 --wrap 'sleep 600')")
sleep 1
ids+=("$(sub odt-slurmtest2 -p debug -c2 -t 20 -J desktop-resources --wrap 'sleep 60')")
ids+=("$(sub odt-slurmtest -p debug -c1 -t 60 --nice=1000 -J ondemand-jupyter-jupyter-2 --wrap 'sleep 60')")
ids+=("$(sub odt-slurmtest2 -p debug -c1 -t 60 -J later-normal --wrap 'sleep 60')")
ids+=("$(sub odt-slurmtest -p debug -c1 -t 5 --hold -J held --wrap 'sleep 60')")
ids+=("$(sub odt-slurmtest -p debug -c1 -t 5 --begin=now+1hour -J begins-later --wrap 'sleep 60')")
ids+=("$(sub odt-slurmtest -p batch -c1 -t 2:00:00 -J ondemand-jupyter-jupyter-3 --wrap 'sleep 60')")
sleep 8  # one backfill cycle (bf_interval) so pending jobs get their expected start
squeue -h -t all -o "$FMT" > "$out/squeue.txt"
squeue --start -h -o "$START_FMT" > "$out/squeue_start.txt"
as odt-slurmtest squeue --start -h -u odt-slurmtest -o "$START_FMT" > "$out/squeue_start_user.txt"
{ as odt-slurmtest sacctmgr -nP show assoc user=odt-slurmtest format=account 2>&1; echo "exit status: $?"; } \
  > "$out/sacctmgr_no_slurmdbd.txt" || true
scancel "${ids[@]}"
echo "jobs: ${ids[*]}"
