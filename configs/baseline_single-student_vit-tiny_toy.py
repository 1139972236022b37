# The single-student CAM baseline of the demo: one student of the toy DuPL
# config, trained on its own pseudo labels with the fixed threshold 0.7, no
# discrepancy loss, no GMM filter and no consistency loss (no hooks).
_base_ = ['./dupl_vit-tiny_toy.py']
model = dict(num_students=1, test_cfg=dict(student='s1'))
custom_hooks = []
