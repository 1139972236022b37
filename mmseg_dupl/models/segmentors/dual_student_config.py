# Copyright (c) OpenMMLab. All rights reserved.
"""``train_cfg`` / ``test_cfg`` of ``DualStudentSegmentor``: defaults,
merging and checks that name the config key."""
import copy
import difflib
from typing import Mapping, Optional

from ..schedules.dupl_schedule import LOSS_TERMS, PHASE_KEYS
from .dual_student_inference import check_test_mode

# The official VOC run (algorithm.md §7, §9). ``phases``, ``thresholds``,
# ``loss_weights``, ``loss_after``, ``consistency_delay`` and
# ``noise_filter`` make the ``DuPLSchedule``, which the three schedule
# hooks (SetIterInfoHook, CosineThresholdHook, GMMNoiseFilterHook) apply
# at runner.iter. The pseudo-label stage (PAR, GMM rule, ignore index) is
# ``model.pseudo_labeler``.
DEFAULT_TRAIN_CFG = dict(
    cam_scales=(1.0, 0.5, 1.5),
    phases=dict(
        cam=2000,  # seg pseudo labels from here (phase B)
        gmm=8000,  # GMM filter, then consistency (phase C); None = never
        end=20000,  # the threshold descent ends (max_iters)
        descent=None,  # the threshold descent starts; None = cam
        aux_cam_until=None),  # COCO: aux-CAM seg labels up to here
    thresholds=dict(high=0.7, high_target=0.55, low=0.25),
    loss_weights=dict(cls=1.0, ptc=0.2, disc=0.1, seg=0.2, consistency=0.05),
    # Terms weighted only after a phase began (official `<=` brackets).
    loss_after=dict(seg='cam'),
    consistency_delay=1,  # VOC: consistency weighted from gmm + 1
    # False: phase C without the GMM filter (consistency stays).
    noise_filter=True,
    conf_thr=0.9,
    # Take the scale-1.0 un-flipped CAMs from the training forward (the
    # reference recomputes them; identical numbers).
    reuse_scale1_cam=True,
    # Optional speed switch: the CAM passes under autocast ('bfloat16' or
    # 'float16'); None keeps them in the training precision (official).
    cam_autocast=None,
    # Images over which the ratio-normalised losses are pooled; None pools
    # over the whole per-GPU batch, as the reference does.
    loss_group_size=None,
    cross_supervision=True)

DEFAULT_TEST_CFG = dict(
    mode='whole',  # 'whole' | 'slide' (mmseg's windows, seg logits only)
    crop_size=None,  # slide: window (h, w)
    stride=None,  # slide: step (h, w)
    predict_on='seg',  # 'seg' | 'cam' | 'cam_aux' | 'pseudo'
    student='s1',  # 's1' | 's2' | 'ensemble'
    cam_scales=(1.0, 0.5, 1.5),
    bkg_thr=0.5,
    # Each student's seg / CAM / aux-CAM labels and class logits in the
    # data samples (DualStudentMetric): False, 'val' (the runner's
    # validation loop only) or True (every predict); student_outputs.py.
    per_student_outputs=False)

# Keys of the pseudo-label stage, which is its own config: a user who
# writes them into train_cfg is told where they go.
LABELER_KEYS = {
    key: 'model.pseudo_labeler'
    for key in ('par', 'down_scale', 'gmm', 'fix_token_box', 'ignore_index')
}
NESTED_KEYS = dict(
    phases=PHASE_KEYS,
    thresholds=('high', 'high_target', 'low'),
    loss_weights=LOSS_TERMS)


def merged(defaults: dict, overrides: Optional[Mapping]) -> dict:
    """Copy of ``defaults`` updated one level deep with ``overrides``."""
    cfg = copy.deepcopy(defaults)
    for key, value in (overrides or {}).items():
        if isinstance(cfg.get(key), dict) and isinstance(value, Mapping):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def check_train_cfg_keys(train_cfg: Mapping,
                         prefix: str = 'model.train_cfg') -> None:
    """Reject unknown keys of ``train_cfg`` (before merging)."""
    for key, value in train_cfg.items():
        _check_known(key, DEFAULT_TRAIN_CFG, prefix,
                     LABELER_KEYS.get(key))
        if key in NESTED_KEYS and isinstance(value, Mapping):
            for sub in value:
                _check_known(sub, NESTED_KEYS[key], f'{prefix}.{key}')


def check_cfg_values(train_cfg: Mapping, test_cfg: Mapping, num_classes: int,
                     num_students: int) -> None:
    """Fail early, naming the config key, on bad values (the schedule's
    keys are checked by ``DuPLSchedule``)."""
    if num_classes < 1:
        raise ValueError(f'model.num_classes must be >= 1, got {num_classes}')
    if not 0. <= float(train_cfg['conf_thr']) <= 1.:
        raise ValueError('model.train_cfg.conf_thr must be in [0, 1], got '
                         f"{train_cfg['conf_thr']}")
    if train_cfg['cam_autocast'] not in (None, 'bfloat16', 'float16'):
        raise ValueError("model.train_cfg.cam_autocast must be None, "
                         f"'bfloat16' or 'float16', got "
                         f"{train_cfg['cam_autocast']!r}")
    if test_cfg['predict_on'] not in ('seg', 'cam', 'cam_aux', 'pseudo'):
        raise ValueError("model.test_cfg.predict_on must be one of 'seg', "
                         "'cam', 'cam_aux', 'pseudo', got "
                         f"{test_cfg['predict_on']!r}")
    check_test_mode(test_cfg)
    if num_students == 1 and test_cfg['student'] != 's1':
        raise ValueError("model.test_cfg.student must be 's1' with "
                         'num_students=1')
    if test_cfg['per_student_outputs'] not in (False, 'val', True):
        raise ValueError('model.test_cfg.per_student_outputs must be False, '
                         f"'val' or True, got "
                         f"{test_cfg['per_student_outputs']!r}")
    if test_cfg['student'] not in ('s1', 's2', 'ensemble'):
        raise ValueError("model.test_cfg.student must be 's1', 's2' or "
                         f"'ensemble', got {test_cfg['student']!r}")


def check_test_cfg_keys(test_cfg: Mapping,
                        prefix: str = 'model.test_cfg') -> None:
    """Reject unknown keys of ``test_cfg``."""
    for key in test_cfg:
        _check_known(key, DEFAULT_TEST_CFG, prefix)


def _check_known(key: str,
                 valid,
                 prefix: str,
                 moved_to: Optional[str] = None) -> None:
    """A ``ValueError`` naming ``prefix.key`` and the closest valid key (or
    where the key belongs, ``moved_to``)."""
    if key in valid:
        return
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ''
    if moved_to:
        hint = f'; it is a key of {moved_to}'
    raise ValueError(f'{prefix}.{key} is not a known key{hint}. Valid keys: '
                     f'{", ".join(sorted(valid))}')
