#!/usr/bin/env bash
# GPU check of the DuPL plugin (benchmarks/gpu_check.py; at most 8 minutes):
# DeiT-B/448 phase-A/B/C iterations at effective batch 4 on one GPU
# (loss_group_size=1) in fp32 and bf16 AMP, projected wall time of the 20k
# VOC schedule, peak GPU memory, and the GMM filter on the GPU vs sklearn.
#
#   benchmarks/gpu_check.sh            # prints the figures
#   benchmarks/gpu_check.sh --write    # and appends them to RESULTS.md
#
# Python: $PYTHON, else .venv/bin/python, else python3. Without CUDA it
# prints one line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: needs a CUDA GPU (torch.cuda.is_available() is False with $PYTHON on $(hostname)); nothing measured"
  exit 0
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 "$PYTHON" benchmarks/gpu_check.py "$@"
