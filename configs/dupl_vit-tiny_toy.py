# DuPL on the toy dataset with a small ViT from the pretrained toy backbone:
# the CPU demo and the test-suite config. The VOC algorithm scaled down:
# short phases, a 4-layer 128-d ViT, whole images at 128x128 (each choice is
# measured in benchmarks/RESULTS.md, "What the toy recipe is made of").
_base_ = [
    '_base_/models/dupl_vit-b16.py',
    '_base_/datasets/toy_voc_wsss_128x128.py',
    '_base_/default_runtime.py',
    '_base_/schedules/schedule_20k_adamw_polywarmup.py',
]
num_classes = 5
embed_dims = 128
max_iters = 300
# Committed weights, pretrained on 128 px mosaics of 64 px scenes;
# `python tools/pretrain_toy_backbone.py --check` rebuilds and compares them.
pretrained = '{{ fileDirname }}/../checkpoints/toy_vit_cls.pth'
model = dict(
    num_classes=num_classes,
    student=dict(
        num_classes=num_classes,
        in_channels=embed_dims,
        backbone=dict(
            arch=dict(
                _delete_=True,
                embed_dims=embed_dims,
                num_layers=4,
                num_heads=4,
                feedforward_channels=embed_dims * 4),
            img_size=128,
            patch_size=8,
            out_indices=(2, 3),  # aux: 3 of 4 blocks (VOC: 9 of 12)
            # The toy stand-in for ImageNet weights, loaded as the VOC
            # config loads DeiT's (tools/pretrain_toy_backbone.py).
            init_cfg=dict(
                type='Pretrained', checkpoint=pretrained,
                prefix='backbone.')),
        decode_head=dict(
            in_channels=embed_dims,
            channels=64,
            dilation=2,
            num_classes=num_classes + 1)),
    train_cfg=dict(
        # The schedule, applied by the hooks of the model base config.
        phases=dict(cam=50, gmm=150, end=max_iters),
        thresholds=dict(high=0.7, high_target=0.55, low=0.25),
        loss_weights=dict(
            cls=1.0, ptc=0.2, disc=0.1, seg=0.2, consistency=0.05)),
    pseudo_labeler=dict(
        # GMM fits need more than 300 fit pixels (VOC 1000 at 448 px).
        gmm=dict(min_pixels=300),
        # PAR on the 128 px image itself (8x the token grid, as VOC's
        # down_scale=2 on 224 px); measured in benchmarks/RESULTS.md.
        down_scale=1),
    test_cfg=dict(student='s1'))
# The pretrained backbone at 1e-5 (x0.1) keeps its tokens local (at 1e-4
# the CAMs drift to the context); the new classifiers (x100) and decoder
# (x10) must learn within a few hundred iterations. Measurements:
# benchmarks/RESULTS.md, "Recipe history".
optim_wrapper = dict(
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(
        custom_keys=dict(
            backbone=dict(lr_mult=0.1),
            classifier=dict(lr_mult=100.),
            decode_head=dict(lr_mult=10.))))
param_scheduler = [
    dict(
        type='PolyWithWarmupLR',
        warmup_iters=25,
        warmup_ratio=1e-6,
        power=0.9,
        max_iters=max_iters,
        by_epoch=False)
]
# In-training validation as the reference's (algorithm.md §10.1): the main
# prediction's mIoU (IoUMetric) and, per student, seg / CAM-label /
# aux-CAM-label mIoU and classification F1 (DualStudentMetric, from
# model.test_cfg.per_student_outputs='val'). test_evaluator (tools/test.py)
# stays IoUMetric.
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='DualStudentMetric')
]
# No validation inside the run: the demo and the benchmark evaluate the
# final weights themselves (per class, both students).
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
