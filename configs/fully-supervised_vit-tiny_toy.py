# The fully supervised reference of the toy demo, NOT weakly supervised: the
# toy student's network (same pretrained backbone, same LargeFOV decoder) as
# mmseg's EncoderDecoder, trained on the ground-truth masks of the toy train
# split with DuPL's training images, schedule and learning rates
# (dupl_vit-tiny_toy.py). Its val mIoU is what this network and budget reach
# with perfect labels: the bound of any weakly supervised run of the same
# network (the fully_supervised row of benchmarks/bench_demo_seeds.py).
_base_ = ['./dupl_vit-tiny_toy.py']
model = dict(
    _delete_=True,
    type='EncoderDecoder',
    # DuPL's normalisation; mmseg's preprocessor needs a size to train
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(128, 128)),
    backbone={{_base_.model.student.backbone}},
    # LargeFOVHead's default loss is DuPL's seg loss (BalancedSegLoss:
    # bg/fg-balanced cross-entropy, 255 ignored); mmseg's loss_by_feat
    # resizes the logits to the labels (bilinear) as DuPL does.
    decode_head={{_base_.model.student.decode_head}},
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# No DuPL schedule hooks (SetIterInfoHook, CosineThresholdHook,
# GMMNoiseFilterHook come with the DuPL model's _base_): they drive a
# DualStudentSegmentor, and this is a stock EncoderDecoder.
custom_hooks = []
# DuPL's weak-branch augmentation (the toy recipe), with the masks carried
# along.
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations'),
    dict(
        type='Resize',
        scale=({{_base_.crop_size}}, {{_base_.crop_size}}),
        keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomCropWithValidBox',
        crop_size={{_base_.crop_size}},
        pad_val=0),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='BaseSegDataset',
        data_root={{_base_.data_root}},
        metainfo={{_base_.toy_metainfo}},
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix={{_base_.img_prefix}},
        img_suffix='.jpg',
        seg_map_suffix='.png',
        pipeline=train_pipeline))
# mmseg's IoUMetric only: an EncoderDecoder has no students for DuPL's
# DualStudentMetric.
val_evaluator = dict(_delete_=True, type='IoUMetric', iou_metrics=['mIoU'])
# The base hooks without NumClassesCheckHook, which checks a DuPL model's
# foreground classes (mmseg's decode head checks its own num_classes).
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='DurableCheckpointHook',
        by_epoch=False,
        interval={{_base_.max_iters}},
        max_keep_ckpts=1),
    finite_loss=dict(type='FiniteLossHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
