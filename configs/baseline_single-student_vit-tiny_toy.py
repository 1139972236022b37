# The single-student CAM baseline of the demo: one student of the toy DuPL
# config, trained on its own pseudo labels with the fixed threshold 0.7, no
# discrepancy loss, no GMM filter and no consistency loss.
_base_ = ['./dupl_vit-tiny_toy.py']
model = dict(
    num_students=1,
    train_cfg=dict(
        phases=dict(gmm=None),  # no GMM filter, hence no consistency
        thresholds=dict(high_target=0.7)),  # fixed threshold
    test_cfg=dict(student='s1'))
