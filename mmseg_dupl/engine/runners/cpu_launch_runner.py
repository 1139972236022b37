# Copyright (c) OpenMMLab. All rights reserved.
"""mmengine's Runner, launchable on hosts without CUDA."""
import copy

from mmengine.runner import Runner
from mmseg.registry import RUNNERS
from mmseg.utils import ConfigType

from ..cpu_launch import prepare_cpu_distributed, use_cpu_amp
from ..schedule_scaling import apply_scale_schedule


@RUNNERS.register_module()
class CPULaunchRunner(Runner):
    """``Runner`` plus the CPU launch, so that mmseg's own
    ``tools/train.py`` (it builds ``cfg.runner_type`` from ``RUNNERS``)
    needs no change:

    - ``--launcher pytorch`` without CUDA: gloo DDP with a CPU wrapper
      (``prepare_cpu_distributed``), where mmengine 0.10.7's ``init_dist``
      would call ``torch.cuda.set_device``;
    - ``--amp`` without CUDA: bf16 ``AutocastOptimWrapper``
      (``use_cpu_amp``), where ``AmpOptimWrapper`` refuses to build.

    With CUDA both are no-ops: it is mmengine's ``Runner``. And
    ``scale_schedule=True`` in the config scales the whole iteration
    schedule to ``train_cfg.max_iters`` first
    (:mod:`mmseg_dupl.engine.schedule_scaling`). The configs set
    ``runner_type = 'CPULaunchRunner'`` (``_base_/default_runtime.py``).
    """

    @classmethod
    def from_cfg(cls, cfg: ConfigType) -> 'Runner':
        """Adapt the launch to the host, then build as ``Runner`` does."""
        cfg = copy.deepcopy(cfg)
        apply_scale_schedule(cfg)
        use_cpu_amp(cfg)
        prepare_cpu_distributed(cfg)
        return super().from_cfg(cfg)
