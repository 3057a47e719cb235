#!/bin/sh
# Used by bench/spawn.py as PUNSpawner.stage_command: run ondemand-stage unchanged (stdin,
# stdout, stderr and exit status pass through) and append one line per call to the log file:
#   <start ns> <end ns> <exit status> <sub-command> <user>
# Costs ~2-3 ms per call (sh and two `date`), which counts against our side.
# Usage: stage_timer.sh LOG /opt/ondemand-hub/venv/bin/ondemand-stage pun start --user U ...
log=$1
shift
t0=$(date +%s%N)
"$@"
rc=$?
t1=$(date +%s%N)
echo "$t0 $t1 $rc $3 $5" >>"$log"
exit $rc
