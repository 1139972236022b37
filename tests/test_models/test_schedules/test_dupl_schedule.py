# Copyright (c) OpenMMLab. All rights reserved.
"""DuPLSchedule: the phase state of an iteration (algorithm.md §7, §8, §9,
§12)."""
import pytest
import torch
from mmengine.config import Config

from mmseg_dupl.models.schedules.dupl_schedule import DuPLSchedule
from mmseg_dupl.models.segmentors.dual_student_config import (
    DEFAULT_TRAIN_CFG, merged)

# algorithm.md §7: the official per-class VOC targets (6 classes stay at 0.70).
VOC_END = [.70, .70, .70, .70, .55, .55, .55, .55, .70, .55,
           .55, .55, .55, .55, .55, .55, .55, .55, .70, .55]  # yapf: disable
VOC_CASES = [(1999, 0.70), (2000, 0.70), (6000, 0.682451), (11000, 0.624993),
             (15000, 0.576784), (19999, 0.55)]
COCO_CASES = [(0, 0.65), (12000, 0.65), (46000, 0.599999), (79999, 0.55)]


def _from_config(path: str) -> DuPLSchedule:
    """The schedule a shipped config's segmentor builds."""
    cfg = Config.fromfile(path).model
    train_cfg = merged(DEFAULT_TRAIN_CFG, cfg.train_cfg)
    return DuPLSchedule.from_train_cfg(train_cfg, cfg.num_classes)


@pytest.fixture(scope='module')
def voc():
    return _from_config('configs/dupl_vit-b_voc.py')


@pytest.fixture(scope='module')
def coco():
    return _from_config('configs/dupl_vit-b_coco.py')


@pytest.mark.parametrize('n, expected', VOC_CASES)
def test_voc_thresholds_descend_per_class(voc, n, expected):
    thr = voc.state(n).class_thresholds
    assert thr.dtype == torch.float32 and thr.shape == (20, )
    kept = torch.tensor(VOC_END) == 0.70
    torch.testing.assert_close(thr[kept], torch.full((6, ), 0.70))
    torch.testing.assert_close(
        thr[~kept], torch.full((14, ), expected), atol=1e-6, rtol=0)


@pytest.mark.parametrize('n, expected', COCO_CASES)
def test_coco_thresholds_start_at_12000(coco, n, expected):
    torch.testing.assert_close(
        coco.state(n).class_thresholds, torch.full((80, ), expected),
        atol=1e-6, rtol=0)


def test_threshold_is_the_former_hooks_float32_value(voc):
    # The hook computed the cosine in float64 and copied it into a float32
    # buffer: the same bits.
    from mmseg_dupl.models.schedules.cosine_descent import cosine_descent
    target = torch.tensor(VOC_END, dtype=torch.float64)
    for n in (0, 2000, 2001, 7777, 19998, 25000):
        ref = cosine_descent(
            torch.tensor(0.7, dtype=torch.float64), target, n - 2000, 18000)
        assert torch.equal(voc.class_thresholds(n), ref.float())


# (n, label source, seg weight, gmm filter, consistency weight): algorithm.md
# §9.
VOC_PHASES = [
    (0, None, 0., False, 0.),
    (1999, None, 0., False, 0.),
    (2000, 'cam', 0., False, 0.),  # labels made, weighted 0 (n <= 2000)
    (2001, 'cam', 0.2, False, 0.),
    (7999, 'cam', 0.2, False, 0.),
    (8000, 'cam', 0.2, True, 0.),  # filtered, consistency still 0
    (8001, 'cam', 0.2, True, 0.05),
    (19999, 'cam', 0.2, True, 0.05),
]


@pytest.mark.parametrize('n, source, seg, gmm, consistency', VOC_PHASES)
def test_voc_phase_brackets(voc, n, source, seg, gmm, consistency):
    state = voc.state(n)
    assert state.iteration == n
    assert state.label_source == source
    assert state.gmm_filter is gmm
    assert state.consistency is (consistency > 0)
    assert state.low_threshold == 0.25
    assert state.weights == dict(
        cls=1.0, ptc=0.2, disc=0.1, seg=seg, consistency=consistency)


# (n, label source, ptc, disc, seg, gmm, consistency): algorithm.md §12.
COCO_PHASES = [
    (0, None, 0., 0., 0., False, 0.),
    (8000, 'cam_aux', 0., 0., 0., False, 0.),  # loss is L_cls only
    (8001, 'cam_aux', 0., 0.05, 0.2, False, 0.),
    (12000, 'cam_aux', 0., 0.05, 0.2, False, 0.),
    (12001, 'cam', 0.2, 0.05, 0.2, False, 0.),
    (31999, 'cam', 0.2, 0.05, 0.2, False, 0.),
    (32000, 'cam', 0.2, 0.05, 0.2, True, 0.05),  # consistency at 32000
]


@pytest.mark.parametrize('n, source, ptc, disc, seg, gmm, consistency',
                         COCO_PHASES)
def test_coco_phase_brackets(coco, n, source, ptc, disc, seg, gmm,
                             consistency):
    state = coco.state(n)
    assert state.label_source == source
    assert state.gmm_filter is gmm
    assert state.weights == dict(
        cls=1.0, ptc=ptc, disc=disc, seg=seg, consistency=consistency)


def test_baseline_config_has_fixed_threshold_no_gmm_no_consistency():
    schedule = _from_config('configs/baseline_single-student_vit-tiny_toy.py')
    for n in (0, 100, 101, 300, 301, 599, 10**9):
        state = schedule.state(n)
        assert not state.gmm_filter and not state.consistency
        torch.testing.assert_close(state.class_thresholds,
                                   torch.full((5, ), 0.7))
    assert schedule.state(101).weights['seg'] == 0.2
    assert schedule.state(100).label_source == 'cam'


def _tiny(**kwargs):
    args = dict(
        phases=dict(cam=2, gmm=5, end=12),
        thresholds=dict(high=0.7, high_target=0.55, low=0.25),
        loss_weights=dict(
            cls=1.0, ptc=0.2, disc=0.1, seg=0.2, consistency=0.05),
        num_classes=3)
    args.update(kwargs)
    return DuPLSchedule(**args)


def test_state_depends_on_the_iteration_alone():
    a, b = _tiny(), _tiny()
    for n in (7, 3, 11, 0, 7):
        sa, sb = a.state(n), b.state(n)
        assert sa.weights == sb.weights and sa.label_source == \
            sb.label_source
        assert torch.equal(sa.class_thresholds, sb.class_thresholds)


def test_late_phases():
    schedule = _tiny()
    assert schedule.late_phases(12) == {}
    assert schedule.late_phases(5) == dict(gmm=5, end=12)
    assert schedule.late_phases(2) == dict(cam=2, descent=2, gmm=5, end=12)


@pytest.mark.parametrize('kwargs, match', [
    (dict(phases=dict(gmm=5, end=12)), 'phases.cam is required'),
    (dict(phases=dict(cam=2, gmm='5', end=12)), 'phases.gmm'),
    (dict(phases=dict(cam=2, end=3)), 'phases.end'),
    (dict(thresholds=dict(high=[0.7], low=0.25)), 'thresholds.high'),
    (dict(thresholds=dict(high=0.7, high_target=[.5, .5], low=.25)),
     'thresholds.high_target'),
    (dict(thresholds=dict(high=0.7, high_target=0.5, low=0.6)),
     'thresholds.low'),
    (dict(thresholds=dict(high=1.7, low=0.2)), 'thresholds must lie'),
    (dict(loss_weights=dict(seg=-1.)), 'loss_weights.seg'),
    (dict(loss_after=dict(consistency='gmm')), 'loss_after.consistency'),
    (dict(loss_after=dict(ptc='aux_cam_until')), 'loss_after.ptc'),
    (dict(phases=dict(cam=2, gmm=None, end=12), loss_after=dict(ptc='gmm')),
     'loss_after.ptc'),
    (dict(consistency_delay=-1), 'consistency_delay'),
])
def test_bad_arguments_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kwargs)
