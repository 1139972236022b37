# Stage 2 of DuPL: mmseg's stock SegFormer MiT-B0 (its AdamW recipe, 20k
# iterations) trained on exported pseudo labels, with DuPL's GMM noise
# filter on the cross-entropy. Paths and the training command as in
# deeplabv3plus_r50-d8_4xb4-20k_pseudo-voc12aug-512x512.py.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/stage2_voc12aug_512x512.py',
]
checkpoint = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/'
              'segformer/mit_b0_20220624-7e0fe6dd.pth')
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(
        num_classes=21,
        loss_decode=dict(
            _delete_=True, type='GMMFilteredLoss', min_pixels=1306)))
# mmseg's SegFormer recipe (AdamW, warm-up then poly)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            pos_block=dict(decay_mult=0.),
            norm=dict(decay_mult=0.),
            head=dict(lr_mult=10.))))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=20000,
        by_epoch=False)
]
# Switches the decode loss's GMM filter on at iteration 8000 and logs what
# it removed (gmm.removed, gmm.mean_gap, gmm.skipped_*).
custom_hooks = [
    dict(
        type='GMMNoiseFilterHook',
        target='decode_head.loss_decode',
        start_iter=8000)
]
