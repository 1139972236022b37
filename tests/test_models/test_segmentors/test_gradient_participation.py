# Copyright (c) OpenMMLab. All rights reserved.
"""Which parameters receive a gradient (None, zero or non-zero) at each
iteration across the phase boundaries, against the reference's brackets
(algorithm.md §9, "zero-weighted terms"), and AdamW's step counts."""
import pytest
import torch

import mmseg_dupl  # noqa: F401

from golden_trajectory import build_model, train

GROUPS = {
    'decoder': 'decode_head.',
    'classifier': '.classifier.',
    'aux_classifier': 'aux_classifier.',
    'backbone': 'backbone.layers.',
}
# Per schedule, per group: the grad kind at iterations 0..7. Tiny phases:
# seg labels from cam=2 (seg weighted 0 there: decoders get zeros, as the
# reference's `n <= cam_iters` bracket gives them), GMM from 5.
VOC_LIKE = dict(phases=dict(cam=2, gmm=5, end=12))
COCO_LIKE = dict(
    phases=dict(cam=2, aux_cam_until=3, descent=3, gmm=5, end=12),
    thresholds=dict(high=0.65, high_target=0.55, low=0.25),
    loss_after=dict(ptc='descent', disc='cam'),
    consistency_delay=0)
EXPECTED = {
    'decoder': ['none', 'none', 'zero'] + ['nonzero'] * 5,
    'classifier': ['nonzero'] * 8,
    'aux_classifier': ['nonzero'] * 8,
    'backbone': ['nonzero'] * 8,
}


def _kind(grad) -> str:
    if grad is None:
        return 'none'
    return 'zero' if not grad.any() else 'nonzero'


@pytest.mark.parametrize('train_cfg', [VOC_LIKE, COCO_LIKE],
                         ids=['voc', 'coco'])
def test_gradient_participation_follows_the_reference(train_cfg):
    torch.set_num_threads(1)
    model = build_model(**train_cfg)
    table = {group: [] for group in GROUPS}
    steps = []

    def record(n, model, optimizer):
        for group, key in GROUPS.items():
            kinds = {_kind(p.grad) for name, p in model.named_parameters()
                     if key in name and p.requires_grad}
            assert len(kinds) == 1, (n, group, kinds)
            table[group].append(kinds.pop())

    def count_steps(n, model, optimizer):
        decoder = model.student1.decode_head.conv_seg.weight
        step = optimizer.state.get(decoder, {}).get('step')
        steps.append(None if step is None else int(step))

    train(model, on_grads=record, on_step=count_steps)
    assert table == EXPECTED
    # After iteration n >= cam AdamW has stepped each decoder parameter
    # n - cam + 1 times (the zero-gradient step at cam included), as the
    # reference; before cam the decoders have no AdamW state.
    cam = train_cfg['phases']['cam']
    assert steps == [None if n < cam else n - cam + 1 for n in range(8)]
