# DuPL, DeiT-B/16, COCO 2014 (80 classes), 8 GPUs x 1 image, 80k iters
# (spec 12: the official COCO log's setup).
_base_ = [
    '_base_/models/dupl_vit-b16.py',
    '_base_/datasets/coco14_wsss_448x448.py',
    '_base_/default_runtime.py',
    '_base_/schedules/schedule_80k_adamw_polywarmup.py',
]
num_classes = 80
cam_iters = 8000
thr_begin = 12000  # hard-coded in the official COCO script
gmm_iters = 32000
max_iters = 80000
model = dict(
    num_classes=num_classes,
    student=dict(
        num_classes=num_classes,
        decode_head=dict(num_classes=num_classes + 1)),
    train_cfg=dict(
        high_thr=0.65,
        low_thr=0.25,
        # aux CAMs with the static threshold for 8000 <= n <= 12000, then
        # final CAMs with the dynamic one (spec 12).
        seg_label_cams=[(cam_iters, 'cam_aux'), (thr_begin + 1, 'cam')],
        loss_weights=dict(
            cls=1.0,
            ptc=[(thr_begin + 1, 0.2)],
            disc=[(cam_iters + 1, 0.05)],
            seg=[(cam_iters + 1, 0.2)],
            reg=0.05)),
    test_cfg=dict(bkg_thr=0.45))
custom_hooks = [
    dict(
        type='CosineThresholdHook',
        start=0.65,
        end=0.55,
        begin_iter=thr_begin,
        end_iter=max_iters),
    # COCO weights the consistency term already at n = gmm_iters.
    dict(type='GMMNoiseFilterHook', start_iter=gmm_iters,
         consistency_delay=0),
]
# The official COCO evaluation protocol (spec 12) for `--tta`.
tta_model = dict(
    type='COCOProtocolTTAModel', scales=(1.0, 1.25, 1.5), resize_to=(448, 448))
