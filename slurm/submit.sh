#!/bin/bash
# Submit the grid to SLURM, from the shared checkout: the shared upstream (one job), WORKERS array tasks
# (slurm/grid.sbatch), then collect + commit (slurm/collect.sbatch), chained with --dependency=afterok.
# Every setting is a variable:
#   WORKERS=4 CPUS_PER_TASK=8 GPUS_PER_TASK=1 MEM=32G TIME=24:00:00 SBATCH_ARGS="--partition=gpu" slurm/submit.sh
set -euo pipefail

WORKERS=${WORKERS:-4}                  # array tasks = worker copies
CPUS_PER_TASK=${CPUS_PER_TASK:-8}      # also execution.threads of each worker
GPUS_PER_TASK=${GPUS_PER_TASK:-1}      # 0 on a cluster without GPUs
MEM=${MEM:-32G}                        # per task
TIME=${TIME:-24:00:00}                 # per task
UPSTREAM_TIME=${UPSTREAM_TIME:-04:00:00}
SBATCH_ARGS=${SBATCH_ARGS:-}           # e.g. "--partition=gpu --account=myproject"
TARGETS=${TARGETS:-}                   # stages, families, globs (space-separated); empty: every leaf of the grid
COMMIT_MESSAGE=${COMMIT_MESSAGE-"Grid reproduced on SLURM with $WORKERS workers (hybridbatch.pipeline.workers)"}
DVC_CACHE=${DVC_CACHE:-}               # a shared cache directory for the checkout (empty: keep its own)
VENV=${VENV:-}                         # activated in every job when set (default: $REPO/.venv if present,
                                       # else the environment sbatch exports from this shell)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
mkdir -p logs/slurm
if [ -n "$DVC_CACHE" ]; then dvc cache dir --local "$DVC_CACHE"; fi
VENV=${VENV:-$REPO/.venv}
export REPO WORKERS TARGETS COMMIT_MESSAGE VENV
targets=${TARGETS:+--targets $TARGETS}
activate="if [ -f '$VENV/bin/activate' ]; then . '$VENV/bin/activate'; fi"
# shellcheck disable=SC2086  # SBATCH_ARGS and targets are word lists
up=$(sbatch --parsable --job-name=hb-upstream --ntasks=1 --cpus-per-task="$CPUS_PER_TASK" --mem="$MEM" \
     --time="$UPSTREAM_TIME" --output=logs/slurm/%x-%j.out $SBATCH_ARGS \
     --wrap "$activate; python -m hybridbatch.pipeline.workers upstream $targets")
# shellcheck disable=SC2086
array=$(sbatch --parsable --dependency=afterok:"$up" --array=0-$((WORKERS - 1)) --cpus-per-task="$CPUS_PER_TASK" \
        --gpus-per-task="$GPUS_PER_TASK" --mem="$MEM" --time="$TIME" $SBATCH_ARGS slurm/grid.sbatch)
# shellcheck disable=SC2086
collect=$(sbatch --parsable --dependency=afterok:"$array" $SBATCH_ARGS slurm/collect.sbatch)
echo "upstream job $up -> worker array $array (tasks 0-$((WORKERS - 1))) -> collect job $collect"
echo "logs: $REPO/logs/slurm/; worker copies: $REPO/.dvc/tmp/slurm/$array/"
