# Stage 2 on the toy dataset (the quick check of projects_readme.md): the
# SegFormer MiT-B0 stage-2 config with the toy set's six classes, 128 px
# crops and test size, and a short logger interval. The pseudo-label
# folder has no default; scale the 20k recipe for a short run:
#   python tools/train.py THIS_CONFIG --cfg-options \
#       train_dataloader.dataset.data_prefix.seg_map_path=/abs/labels \
#       train_cfg.max_iters=200 scale_schedule=True
# The ImageNet MiT-B0 weights are not loaded (init_cfg=None): the toy
# classes are not ImageNet's and the check runs offline.
_base_ = ['./segformer_mit-b0_4xb4-20k_pseudo-voc12aug-512x512.py']
data_root = '{{ fileDirname }}/../../data/toy_voc'
crop_size = (128, 128)
toy_metainfo = dict(
    classes=('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle'),
    palette=[[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
             [0, 0, 128], [128, 0, 128]])
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None),
    decode_head=dict(num_classes=len(toy_metainfo['classes'])))
# mmseg's VOC pipelines at the toy scale (its images are 96-192 px)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(512, 128),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=toy_metainfo,
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=toy_metainfo,
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# validate and save once, at the end (scale_schedule keeps that)
train_cfg = dict(val_interval=20000)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=20000))
