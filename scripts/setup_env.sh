#!/usr/bin/env bash
# Create the local virtual environment with a stack that works together on a
# CPU-only machine: torch 2.14.1 + torchvision 0.29.1, mmcv 2.1.0 with its
# compiled ops, mmengine 0.10.7, mmsegmentation 1.2.2, mmpretrain 1.2.0.
#
# mmcv 2.1.0 ships no wheel for this torch, so its ops are built from the
# source archive (about 30 minutes on 2 cores). The built wheel is kept in a
# cache folder keyed by the torch version, so a second environment on the
# same machine installs it in seconds (pip's own cache is keyed by the source
# archive only and would hand a wheel built against another torch).
set -euo pipefail

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE_ROOT=${MMSEG_DUPL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmseg_dupl}
MMCV_CACHE="$CACHE_ROOT/mmcv-${MMCV_VERSION}-torch${TORCH_VERSION}-$(uname -m)"

log() { echo "[setup_env] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
VENV_PY="$(cd "$VENV" && pwd)/bin/python"
PIP="$VENV_PY -m pip"

log "build tools (setuptools 77-80: torch needs >=77.0.3, mmcv's setup.py needs pkg_resources)"
$PIP install -q "setuptools>=77.0.3,<81" wheel ninja packaging

log "torch ${TORCH_VERSION} + torchvision ${TORCHVISION_VERSION}"
$PIP install -q "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

log "mmcv build requirements"
$PIP install -q addict yapf "opencv-python-headless" numpy pillow pyyaml termcolor

if ! ls "$MMCV_CACHE"/mmcv-*.whl >/dev/null 2>&1; then
  log "building mmcv ${MMCV_VERSION} with ops against torch ${TORCH_VERSION} (about 30 min on 2 cores)"
  work=$(mktemp -d)
  $PIP download -q --no-deps --no-binary :all: "mmcv==${MMCV_VERSION}" -d "$work"
  tar -xzf "$work"/mmcv-${MMCV_VERSION}.tar.gz -C "$work"
  # torch >= 2.14 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-${MMCV_VERSION}/setup.py"
  mkdir -p "$MMCV_CACHE"
  (cd "$work/mmcv-${MMCV_VERSION}" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} \
     "$VENV_PY" -m pip wheel -q --no-build-isolation --no-deps --no-cache-dir . -w "$MMCV_CACHE.tmp")
  mv "$MMCV_CACHE.tmp"/mmcv-*.whl "$MMCV_CACHE"/
  rm -rf "$work" "$MMCV_CACHE.tmp"
fi
log "installing mmcv from $MMCV_CACHE"
$PIP install -q --no-deps "$MMCV_CACHE"/mmcv-*.whl

log "OpenMMLab stack, test tools and the analysis tools' seaborn (analyze_logs.py)"
$PIP install -q "mmengine==0.10.7" "mmsegmentation==1.2.2" "mmpretrain==1.2.0" \
  ftfy regex scikit-learn matplotlib seaborn pytest pytest-xdist filelock pydensecrf2 tensorboard
log "this package (editable)"
$PIP install -q --no-deps --no-build-isolation -e .

"$VENV_PY" - <<'PY'
import mmcv, mmcv.ops, mmengine, mmseg, mmpretrain, torch, torchvision
import mmseg.models, mmpretrain.models  # noqa: F401  (fail loudly if ops are missing)
print('[setup_env] ok: torch', torch.__version__, 'mmcv', mmcv.__version__,
      'mmseg', mmseg.__version__, 'mmpretrain', mmpretrain.__version__)
PY
touch "$VENV/.stamp"
