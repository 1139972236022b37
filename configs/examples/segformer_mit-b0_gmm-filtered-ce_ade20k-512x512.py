# Example: mmseg's stock SegFormer MiT-B0 (ADE20K) with DuPL's GMM noise
# filter on its decode loss, for training on noisy labels.
#   python tools/train.py \
#       configs/examples/segformer_mit-b0_gmm-filtered-ce_ade20k-512x512.py
# `_delete_=True` replaces the stock CrossEntropyLoss dict instead of merging
# into it; without it the stock keys (use_sigmoid, ...) reach
# GMMFilteredLoss and the build fails with an unexpected keyword argument.
_base_ = ['mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmseg_dupl'], allow_failed_imports=False)
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='GMMFilteredLoss',
            # the wrapped loss: the stock one, averaged over labelled pixels
            loss_cfg=dict(
                type='CrossEntropyLoss', loss_weight=1.0,
                avg_non_ignore=True))))
# The filter is off until start_iter, then on: 40% of the schedule (DuPL: 8k
# of 20k). The hook also logs what it removed (gmm.removed, gmm.mean_gap,
# gmm.skipped_pixels, gmm.skipped_gap).
custom_hooks = [
    dict(
        type='GMMNoiseFilterHook',
        target='decode_head.loss_decode',
        start_iter=64000)
]
