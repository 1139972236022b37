# Runtime defaults (vendored from mmseg 1.2.2's, plus the plugin import).
default_scope = 'mmseg'
# mmengine's Runner plus the CPU launch (gloo DDP, bf16 --amp without CUDA),
# a --resume that skips damaged checkpoints, and loads that refuse missing /
# mismatched model tensors (mmseg_dupl.engine.runners); mmseg's
# tools/train.py and our tools/test.py build it from RUNNERS.
runner_type = 'CheckedRunner'
custom_imports = dict(
    imports=['mmseg_dupl', 'mmpretrain.models'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
# No fixed `name`: the Runner then names the visualizer after its experiment,
# so a second Runner in the same process (the demo's baseline) gets its own
# instance and log directory instead of reusing the first one's.
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# True accepts a checkpoint that leaves model tensors missing or mismatched
# (load_from, tools/test.py --allow-partial-load, --resume), with a warning.
allow_partial_load = False
# Stage-gated losses leave parameters without gradients in early phases (no
# seg loss before model.train_cfg.phases.cam, as the reference).
find_unused_parameters = True
randomness = dict(seed=0)
tta_model = dict(type='SegTTAModel')
