# The embedded toy dataset (tools/make_toy_voc.py; `make data`), VOC layout,
# five foreground classes, at 128x128.
_base_ = ['./voc12aug_wsss_448x448.py']
# Resolved from this file (the repository's data/toy_voc), so the config
# runs from any working directory.
data_root = '{{ fileDirname }}/../../../data/toy_voc'
crop_size = 128
toy_metainfo = dict(
    classes=('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle'),
    palette=[[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
             [0, 0, 128], [128, 0, 128]])
img_prefix = dict(img_path='JPEGImages', seg_map_path='SegmentationClass')
pack_train = dict(type='PackWSSSInputs', allow_gt_seg_map=False)
two_views = dict(
    type='MultiBranch',
    branch_field=['weak', 'strong'],
    weak=[pack_train],
    strong=[dict(type='StrongAug'), pack_train])
# The toy recipe: whole images resized to 128x128 as val resizes them, and
# flipped. VOC's random 0.5-2x rescales cropped to 448 and ToCo's colour
# jitter / grey / blur (`voc_style_train_pipeline`) cost the 300-iteration
# toy DuPL run 5.5 points of seg mIoU (both with PAR at half resolution),
# and its fully supervised bound 8.7 (means over three dataset/seed pairs,
# benchmarks/RESULTS.md, "What the toy recipe is made of"). The crop, now
# of the whole image, still records the valid box; DuPL's strong view keeps
# its own photometric augmentation.
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='Resize', scale=(crop_size, crop_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithValidBox', crop_size=crop_size, pad_val=0),
    two_views,
]
# VOC's training augmentation at the toy's crop size.
voc_style_train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithValidBox', crop_size=crop_size, pad_val=0),
    dict(type='ToCoColorAug'),
    two_views,
]
# Eval pipelines keep mmseg's loader names, which mmseg's inference API edits
# (inference_model drops the step named LoadAnnotations, MMSegInferencer
# replaces LoadImageFromFile); CheckSegMap refuses a mask with ids outside
# the classes or another size than its image, naming it.
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(crop_size, crop_size), keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMap'),
    dict(type='PackWSSSInputs'),
]
test_pipeline = val_pipeline
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMap'),
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
