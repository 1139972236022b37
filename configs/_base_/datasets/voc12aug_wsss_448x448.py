# PASCAL VOC 2012 + SBD train_aug (10,582 images) for WSSS: image-level
# labels only in training (algorithm.md §1). Layout under data_root:
#   JPEGImages/*.jpg, SegmentationClassAug/*.png,
#   ImageSets/Segmentation/{train_aug,val,test}.txt,
#   cls_labels_onehot.npy (official format; tools/make_cls_labels.py)
dataset_type = 'VOCWSSSDataset'
# Resolved from this file: the repository's data/VOCdevkit/VOC2012 from any
# working directory (set the dataloaders' data_root for VOC elsewhere).
data_root = '{{ fileDirname }}/../../../data/VOCdevkit/VOC2012'
crop_size = 448
cls_label_file = 'cls_labels_onehot.npy'
img_prefix = dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug')

# No mask is loaded in training; PackWSSSInputs refuses one if present.
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
# In-training validation as the reference: 448x448 resize (algorithm.md §10.1).
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
# The official final protocol runs at native resolution (algorithm.md §10.2).
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegMap'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=img_prefix,
        cls_label_file=cls_label_file,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=img_prefix,
        cls_label_file=cls_label_file,
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
