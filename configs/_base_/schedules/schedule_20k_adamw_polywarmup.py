# The official VOC schedule (algorithm.md §9.1): AdamW 6e-5, x10 lr for the
# classifiers and decoder, weight decay 0.01 in every group, 1500 warm-up
# iterations then poly decay on the ABSOLUTE step.
max_iters = 20000
optimizer = dict(
    type='AdamW', lr=6e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    paramwise_cfg=dict(
        custom_keys=dict(
            classifier=dict(lr_mult=10.),  # classifier and aux_classifier
            decode_head=dict(lr_mult=10.))))
param_scheduler = [
    dict(
        type='PolyWithWarmupLR',
        warmup_iters=1500,
        warmup_ratio=1e-6,
        power=0.9,
        max_iters=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook with a crash-safe save sequence (temp file,
    # fsync, rename; old checkpoints deleted last).
    checkpoint=dict(
        type='DurableCheckpointHook',
        by_epoch=False,
        interval=2000,
        max_keep_ckpts=3),
    # Stops at the first NaN/inf loss, before that iteration's checkpoint.
    finite_loss=dict(type='FiniteLossHook'),
    # model.num_classes against the dataset's classes, at the start of a run
    num_classes_check=dict(type='NumClassesCheckHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
