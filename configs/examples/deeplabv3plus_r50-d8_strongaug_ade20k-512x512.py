# Example: mmseg's stock DeepLabV3+ R-50-D8 (ADE20K, fully supervised) with
# DuPL's StrongAug (RandAugment ops) instead of RandomFlip +
# PhotoMetricDistortion.
#   python tools/train.py \
#       configs/examples/deeplabv3plus_r50-d8_strongaug_ade20k-512x512.py
# StrongAug's defaults are DuPL's strong view (always flip, x0.75 rescale);
# in a supervised pipeline set flip_prob=0.5 and scale=None so that the
# 512x512 crop keeps its size and half of the images stay unflipped. The
# mask follows the flip (nearest neighbour, ignore fill).
_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-80k_ade20k-512x512.py'
]
custom_imports = dict(imports=['mmseg_dupl'], allow_failed_imports=False)
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='StrongAug', num_ops=2, flip_prob=0.5, scale=None),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
