#!/usr/bin/env bash
# Training on a Slurm cluster (mmseg's slurm_train.sh).
#   GPUS=8 tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# PYTHON overrides the interpreter; by default the repository's .venv is
# used when present, else the python on PATH.

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
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
    ${SRUN_ARGS} \
    "${PYTHON}" -u "$(dirname "$0")/train.py" "${CONFIG}" \
    --launcher="slurm" "${@:4}"
