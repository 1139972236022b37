# The official COCO schedule (algorithm.md §12): as the VOC one, for 80k
# iterations.
_base_ = ['./schedule_20k_adamw_polywarmup.py']
max_iters = 80000
param_scheduler = [
    dict(
        type='PolyWithWarmupLR',
        warmup_iters=1500,
        warmup_ratio=1e-6,
        power=0.9,
        max_iters=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
