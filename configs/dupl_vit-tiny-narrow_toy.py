# The toy DuPL run with a backbone half as wide as the demo's (64-d, 2 heads;
# the first demo's): a row of the recipe table of
# benchmarks/bench_demo_seeds.py (`--table recipe`). Its pretrained weights
# are committed next to the demo's; `python tools/pretrain_toy_backbone.py
# --dupl-config configs/dupl_vit-tiny-narrow_toy.py --out
# checkpoints/toy_vit-narrow_cls.pth --check` rebuilds them (about 4 min on
# 2 cores) and compares them byte for byte.
_base_ = ['./dupl_vit-tiny_toy.py']
embed_dims = 64
model = dict(
    student=dict(
        in_channels=embed_dims,
        backbone=dict(
            arch=dict(
                embed_dims=embed_dims,
                num_heads=2,
                feedforward_channels=embed_dims * 4),
            init_cfg=dict(
                checkpoint='{{ fileDirname }}/../checkpoints/'
                'toy_vit-narrow_cls.pth')),
        decode_head=dict(in_channels=embed_dims)))
# The settings its committed weights were pretrained with: the 96 px
# mosaics (48 px tiles) of the recipe table's 64-d rows (the 128-d demo
# backbone's default is 128 px; tools/pretrain_toy_backbone.py).
toy_pretrain = dict(img_size=96)
