# The embedded toy dataset (tools/make_toy_voc.py; `make data`), VOC layout,
# five foreground classes. Same pipelines as VOC at a 128 crop.
_base_ = ['./voc12aug_wsss_448x448.py']
data_root = 'data/toy_voc'
crop_size = 128
toy_metainfo = dict(
    classes=('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle'),
    palette=[[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
             [0, 0, 128], [128, 0, 128]])
img_prefix = dict(img_path='JPEGImages', seg_map_path='SegmentationClass')
pack_train = dict(type='PackWSSSInputs', allow_gt_seg_map=False)
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithValidBox', crop_size=crop_size, pad_val=0),
    dict(type='ToCoColorAug'),
    dict(
        type='MultiBranch',
        branch_field=['weak', 'strong'],
        weak=[pack_train],
        strong=[dict(type='StrongAug'), pack_train]),
]
val_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='Resize', scale=(crop_size, crop_size), keep_ratio=False),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackWSSSInputs'),
]
test_pipeline = val_pipeline
tta_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=toy_metainfo,
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=img_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=toy_metainfo,
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=img_prefix,
        pipeline=val_pipeline))
test_dataloader = val_dataloader
