# Example: mmseg's stock SegFormer MiT-B0 (ADE20K) whose OHEM threshold
# follows DuPL's cosine descent (CosineThresholdHook on any attribute).
#   python tools/train.py \
#       configs/examples/segformer_mit-b0_ohem-cosine-thr_ade20k-512x512.py
# OHEM trains on the pixels whose probability of the true class is below
# `thresh`; the hook moves it from 0.9 (most pixels count) to 0.7 (only the
# hard ones) over the run, as DuPL lowers its CAM threshold.
_base_ = ['mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmseg_dupl'], allow_failed_imports=False)
model = dict(
    decode_head=dict(
        sampler=dict(type='OHEMPixelSampler', thresh=0.9, min_kept=10000)))
custom_hooks = [
    dict(
        type='CosineThresholdHook',
        target='decode_head.sampler.thresh',
        start=0.9,
        end=0.7,
        begin_iter=0)  # end_iter: train_cfg.max_iters
]
