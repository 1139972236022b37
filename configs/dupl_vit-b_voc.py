# DuPL, DeiT-B/16 (ImageNet-1k) students, PASCAL VOC 2012 aug, 20k iters.
# Effective batch 4: 4 GPUs x 1 image (tools/dist_train.sh this 4). For
# 2 GPUs x 2 or 1 GPU x 4 see the README: keep the effective batch at 4.
_base_ = [
    '_base_/models/dupl_vit-b16.py',
    '_base_/datasets/voc12aug_wsss_448x448.py',
    '_base_/default_runtime.py',
    '_base_/schedules/schedule_20k_adamw_polywarmup.py',
]
cam_iters = 2000  # phase B: seg pseudo labels and cosine threshold
gmm_iters = 8000  # phase C: GMM filtering and consistency
max_iters = 20000
# Per-class targets of the cosine descent, VOC class order (spec 7).
thr_targets = [
    .70, .70, .70, .70, .55, .55, .55, .55, .70, .55,
    .55, .55, .55, .55, .55, .55, .55, .55, .70, .55
]
model = dict(
    train_cfg=dict(
        high_thr=0.7,
        low_thr=0.25,
        seg_label_cams=[(cam_iters, 'cam')],
        loss_weights=dict(
            cls=1.0, ptc=0.2, disc=0.1, seg=[(cam_iters + 1, 0.2)],
            reg=0.05)))
custom_hooks = [
    dict(
        type='CosineThresholdHook',
        start=0.7,
        end=thr_targets,
        begin_iter=cam_iters,
        end_iter=max_iters),
    dict(type='GMMNoiseFilterHook', start_iter=gmm_iters),
]
# The official evaluation protocol (spec 10.2) for `tools/test.py CFG CKPT --tta`
# (add `--cfg-options test_evaluator.type=CRFIoUMetric` for DenseCRF).
tta_model = dict(type='VOCProtocolTTAModel', scales=(1.0, 1.25, 1.5))
