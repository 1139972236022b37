#!/usr/bin/env bash
# Distributed testing with torchrun (mmseg's dist_test.sh shape).
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# PYTHON overrides the interpreter; by default the repository's .venv is
# used when present, else the python on PATH.

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
REPO_ROOT="$(dirname "$0")/.."
if [ -z "${PYTHON}" ]; then
    if [ -x "${REPO_ROOT}/.venv/bin/python" ]; then
        PYTHON="${REPO_ROOT}/.venv/bin/python"
    else
        PYTHON=python
    fi
fi

PYTHONPATH="${REPO_ROOT}":$PYTHONPATH \
"${PYTHON}" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --master_port=$PORT \
    --nproc_per_node=$GPUS \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch \
    "${@:4}"
