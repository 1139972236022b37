#!/usr/bin/env bash
# Training on a Slurm cluster (mmseg's slurm_train.sh, plus preemption).
#   GPUS=8 tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# PYTHON overrides the interpreter; by default the repository's .venv is
# used when present, else the python on PATH.
#
# Preemption: Slurm sends SIGUSR1 to every task SIGNAL_TIME seconds (default
# 120) before the time limit (srun --signal), and SIGTERM before it kills a
# preempted or cancelled job. Either way train.py finishes its iteration,
# saves a checkpoint and exits with status 75. Inside an sbatch job,
# REQUEUE=1 then requeues the job (scontrol requeue); pass --resume so that
# the requeued run continues from that checkpoint:
#   sbatch --requeue --time=24:00:00 --wrap \
#     "REQUEUE=1 tools/slurm_train.sh PARTITION JOB CONFIG --resume"

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SIGNAL_TIME=${SIGNAL_TIME:-120}
SRUN_ARGS=${SRUN_ARGS:-""}
REPO_ROOT="$(dirname "$0")/.."
if [ -z "${PYTHON}" ]; then
    if [ -x "${REPO_ROOT}/.venv/bin/python" ]; then
        PYTHON="${REPO_ROOT}/.venv/bin/python"
    else
        PYTHON=python
    fi
fi

PYTHONPATH="${REPO_ROOT}":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    --signal=USR1@${SIGNAL_TIME} \
    ${SRUN_ARGS} \
    "${PYTHON}" -u "$(dirname "$0")/train.py" "${CONFIG}" \
    --launcher="slurm" "${@:4}"
STATUS=$?

# 75: preempted after saving a checkpoint (PreemptionHook)
if [ ${STATUS} -eq 75 ] && [ "${REQUEUE:-0}" = "1" ] && \
        [ -n "${SLURM_JOB_ID}" ]; then
    scontrol requeue "${SLURM_JOB_ID}"
fi
exit ${STATUS}
