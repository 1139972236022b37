# The toy counterpart of ImageNet pretraining (tools/pretrain_toy_backbone.py):
# mmpretrain's ImageClassifier, MultiLabelDataset and Runner loop on synthetic
# multi-label images of the toy classes on backgrounds drawn independently of
# the classes (no water/boat bias). The script fills in the backbone (copied
# from the toy DuPL config, so the keys match), the data paths and the
# schedule length.
default_scope = 'mmpretrain'
custom_imports = dict(
    imports=['mmseg_dupl', 'mmpretrain.models'], allow_failed_imports=False)
num_classes = 5
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=None,  # the toy DuPL student backbone, set by the script
    neck=None,
    # each tile of a mosaic classified from its own tokens (keeps the
    # patch tokens local, which CAMs need)
    head=dict(
        type='TiledMultiLabelClsHead',
        num_classes=num_classes,
        grid=2,
        in_channels=None,  # the backbone's embed_dims, set by the script
        loss=dict(type='CrossEntropyLoss', use_sigmoid=True)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # no flip: it would move objects to the other tile's labels
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='MultiLabelDataset',
        data_root=None,
        ann_file='train.json',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='MultiLabelDataset',
        data_root=None,
        ann_file='val.json',
        pipeline=test_pipeline))
val_evaluator = [
    dict(type='AveragePrecision'),
    dict(type='MultiLabelMetric', average='macro'),
]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
max_iters = 600
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, eta_min=1e-5),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=-1, save_last=False),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(by_epoch=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
log_level = 'INFO'
