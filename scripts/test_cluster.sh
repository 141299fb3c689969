#!/usr/bin/env bash
# make test-cluster: the cluster command of docs/workflow.md, run for real on a one-node SLURM started here.
#
#  1. installs munge, slurmctld, slurmd and slurm-client with apt-get when missing (Debian's, root);
#  2. writes a one-node slurm.conf under build/cluster/ with the partitions profiles/slurm names
#     (cpu, gpu), links it as /etc/slurm/slurm.conf while the test runs (only where none is there),
#     and starts a munged, a slurmctld and a slurmd of its own (their sockets, state, logs and pid
#     files under build/cluster/);
#  3. runs one smoke-sized splice run (config/cluster_test.yaml) in two fresh clones of this
#     checkout under build/cluster/: `snakemake --workflow-profile profiles/slurm` (a SLURM job) in
#     one, `--workflow-profile profiles/default` (this machine) in the other;
#  4. compares the two runs' records exactly (scripts/cluster_compare.py lists the fields it ignores);
#  5. stops the three daemons, whatever happened (trap).
# The clones are of the checkout's tracked files as they are now, committed or not (git stash create);
# the repository's own results/ and cache/ are never touched. Rerunnable: each call starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
B=$ROOT/build/cluster
CONFIG=config/cluster_test.yaml
RUN=results/runs/splice_classes/cluster_splice_three_s0     # the one run $CONFIG declares
export PATH=$PATH:/usr/sbin:/sbin
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export KDLIB_DATA=${KDLIB_DATA:-$(realpath ../shared/data)}  # the clones sit deeper: same data, named
# Every SLURM command and daemon reads $B/slurm.conf, linked as /etc/slurm/slurm.conf: the job's
# `srun` (snakemake-executor-plugin-slurm-jobstep) drops every SLURM_* variable, SLURM_CONF too, so
# it finds only the default path
CONF=$B/slurm.conf
ETC_CONF=/etc/slurm/slurm.conf
started=$SECONDS
say() { echo "test-cluster [$((SECONDS - started)) s]: $*"; }
[ "$(id -u)" = 0 ] || { echo "make test-cluster runs as root (apt-get; SLURM daemons and jobs as root)" >&2; exit 1; }

# ---- 1. the packages --------------------------------------------------------------------------
missing=()
for tool in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show slurmd >/dev/null 2>&1 || apt-get update -qq
  # no service may start on install (policy-rc.d 101): the daemons here are this script's own
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    own_policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' > $own_policy; chmod +x $own_policy
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$own_policy" ] || rm -f "$own_policy"
fi
say "$(slurmctld -V), $(munged --version 2>&1 | head -n1)"

# ---- 2. a one-node cluster --------------------------------------------------------------------
# what may still run from an earlier, killed call is stopped first (by the pid files it wrote)
stop_daemons() {
  local pidfile
  if [ -s $B/slurm/slurmctld.pid ] && kill -0 "$(cat $B/slurm/slurmctld.pid)" 2>/dev/null; then
    scancel --quiet --user="$(id -un)" 2>/dev/null || true   # a job left by a failed call (this cluster's only)
    for _ in $(seq 30); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  for pidfile in $B/slurm/slurmd.pid $B/slurm/slurmctld.pid $B/munge/munged.pid; do
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$pidfile"
  done
  [ "$(readlink "$ETC_CONF")" != "$CONF" ] || rm -f "$ETC_CONF"
}
stop_daemons
trap 'status=$?; stop_daemons; exit $status' EXIT
trap 'exit 130' INT TERM
rm -rf "$B/slurm" "$B/local" "$B/slurm-clone"
mkdir -p "$B/slurm/state" "$B/slurm/spool" "$B/munge"
chmod 700 "$B/munge"

# munge authenticates every message between the SLURM commands and daemons; a key of this test's own
[ -s "$B/munge/munge.key" ] || dd if=/dev/urandom of="$B/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$B/munge/munge.key"
munged --force --key-file="$B/munge/munge.key" --socket="$B/munge/munge.socket" \
  --pid-file="$B/munge/munged.pid" --log-file="$B/munge/munged.log" --seed-file="$B/munge/munged.seed"

# this machine as the one node (slurmd -C: its CPUs and memory), partitions named as profiles/slurm
# names them; MinJobAge: a finished job stays in squeue 10 min (no accounting here, so no sacct: the
# profile's status command is overridden with squeue below)
# a link this test left from another checkout (a call killed before its trap ran, e.g. at a
# session's end) is stale once that checkout's slurmctld is gone: removed, said so
if [ -L "$ETC_CONF" ] && [[ "$(readlink "$ETC_CONF")" == */build/cluster/slurm.conf ]]; then
  other=$(dirname "$(readlink "$ETC_CONF")")
  other_pid=$(cat "$other/slurm/slurmctld.pid" 2>/dev/null || true)
  if [ -n "$other_pid" ] && kill -0 "$other_pid" 2>/dev/null; then
    echo "$ETC_CONF is the link of a test-cluster still running from $other (slurmctld pid $other_pid): wait for it, or stop it" >&2; exit 1
  fi
  say "removing $ETC_CONF, a stale link left by a killed test-cluster in $other"
  rm -f "$ETC_CONF"
fi
if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
  echo "$ETC_CONF exists and is not this test's: not touching a SLURM configured here" >&2; exit 1
fi
node=$(slurmd -C | head -n1)   # NodeName=<host> CPUs=... RealMemory=...
cat > "$CONF" <<EOF
# written by scripts/test_cluster.sh (make test-cluster); rewritten at every call
ClusterName=kdlib-test
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$B/munge/munge.socket
StateSaveLocation=$B/slurm/state
SlurmdSpoolDir=$B/slurm/spool
SlurmctldPidFile=$B/slurm/slurmctld.pid
SlurmdPidFile=$B/slurm/slurmd.pid
SlurmctldLogFile=$B/slurm/slurmctld.log
SlurmdLogFile=$B/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF
mkdir -p "$(dirname "$ETC_CONF")"; ln -s "$CONF" "$ETC_CONF"
slurmctld -c      # -c: a cold start, no jobs remembered from an earlier call
slurmd
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 1
done
sinfo -h -o %T | grep -qx idle || { sinfo; tail -n 20 "$B/slurm/slurmctld.log" "$B/slurm/slurmd.log"; exit 1; }
say "SLURM is up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T' | paste -sd ';')"

# ---- 3. the same run, through SLURM and here --------------------------------------------------
# a fresh clone each, of the tracked files as they are now; kdlib is imported from the clone
# (PYTHONPATH: the .venv's editable install points at this checkout), the .venv's python runs it
rev=$(git stash create); rev=${rev:-HEAD}
clone() {
  git clone -q --no-checkout "$ROOT" "$1"
  git -C "$1" checkout -q --detach "$rev"
}
snake() {  # snakemake in clone $1, with the rest of the arguments
  local dir=$1; shift
  (cd "$dir" && PYTHONPATH=$dir "$PY" -m snakemake --configfile "$CONFIG" "$@" -- "$RUN/metrics.json")
}

clone "$B/slurm-clone"
say "through SLURM: snakemake --workflow-profile profiles/slurm (in $B/slurm-clone)"
# docs/workflow.md's command; squeue for the status (this cluster keeps no accounting, so sacct cannot
# answer), a first status check after 5 s instead of 40, the job's log kept
snake "$B/slurm-clone" --workflow-profile profiles/slurm --slurm-status-command squeue \
  --slurm-init-seconds-before-status-checks 5 --slurm-keep-successful-logs > "$B/slurm.log" 2>&1 \
  || { tail -n 40 "$B/slurm.log"; exit 1; }
grep -q "has been submitted with SLURM jobid" "$B/slurm.log" \
  || { echo "no job went through SLURM (see $B/slurm.log)"; exit 1; }
say "$(grep -o "Job [0-9]* has been submitted with SLURM jobid [0-9]*" "$B/slurm.log" | paste -sd ';'):" \
  "$(squeue -h -t all -o '%i %T in %M on %N' | paste -sd ';') (log: $B/slurm-clone/.snakemake/slurm_logs/)"

clone "$B/local"
say "here: snakemake --workflow-profile profiles/default --cores 1 (in $B/local)"
snake "$B/local" --workflow-profile profiles/default --cores 1 > "$B/local.log" 2>&1 \
  || { tail -n 40 "$B/local.log"; exit 1; }

# ---- 4. the verdict ---------------------------------------------------------------------------
"$PY" scripts/cluster_compare.py "$B/local/$RUN" "$B/slurm-clone/$RUN"
say "passed"
