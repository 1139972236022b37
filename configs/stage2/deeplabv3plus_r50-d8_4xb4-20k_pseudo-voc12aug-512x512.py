# Stage 2 of DuPL: mmseg's stock DeepLabV3+ R-50-D8 (20k iterations, batch
# 4 x 4) trained on exported pseudo labels, with DuPL's GMM noise filter on
# the decode head's cross-entropy. See
# configs/_base_/datasets/voc12aug_pseudo_labels_512x512.py for the paths:
#   python tools/export_pseudo_labels.py configs/dupl_vit-b_voc.py CKPT \
#       --split ImageSets/Segmentation/train_aug.txt --out-dir LABELS
# prints the command that trains this config on LABELS.
# SyncBN (mmseg's default) runs on GPUs; `python tools/train.py` reverts it
# to BN, and tools/dist_train.sh on a host without CUDA does too
# (CPULaunchRunner).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/stage2_voc12aug_512x512.py',
]
data_preprocessor = dict(size=(512, 512))
# The exported labels are noisy: from iteration 8000 on (DuPL's 8k of 20k,
# GMMNoiseFilterHook below), a
# two-component GMM of each image's CE removes high-loss foreground pixels.
# min_pixels is DuPL's 1000 per 448x448 crop, scaled to the 512x512 crop.
# `_delete_=True` drops the stock CrossEntropyLoss keys (use_sigmoid, ...).
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        num_classes=21,
        loss_decode=dict(
            _delete_=True, type='GMMFilteredLoss', min_pixels=1306)),
    auxiliary_head=dict(num_classes=21))
# Switches the decode loss's GMM filter on at iteration 8000 and logs what
# it removed (gmm.removed, gmm.mean_gap, gmm.skipped_*).
custom_hooks = [
    dict(
        type='GMMNoiseFilterHook',
        target='decode_head.loss_decode',
        start_iter=8000)
]
