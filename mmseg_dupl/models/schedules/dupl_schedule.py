# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's phase schedule: one owner, a pure function of the iteration."""
from typing import Dict, FrozenSet, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor

from .cosine_descent import cosine_descent
from .phase_state import PhaseState

LOSS_TERMS = ('cls', 'ptc', 'disc', 'seg', 'consistency')
PHASE_KEYS = ('cam', 'gmm', 'end', 'descent', 'aux_cam_until')
Threshold = Union[float, Sequence[float]]


class DuPLSchedule:
    """Everything DuPL switches by iteration, from ``model.train_cfg``.

    ``state(n)`` returns the :class:`PhaseState` of iteration ``n``; it
    depends on ``n`` alone, so a resumed run is exact. The official
    brackets (algorithm.md §7, §9, §12) as this class encodes them::

        label_source  None         n <  cam                   (phase A)
                      'cam_aux'    cam <= n <= aux_cam_until   (COCO only)
                      'cam'        otherwise
        tau_c(n)      cosine_descent(high, high_target, n - descent,
                                     end - descent)            (descent=cam)
        w_seg         0 while n <= cam (the official `<=` weight bracket)
        w_<term>      0 while n <= phases[loss_after[term]]    (COCO: ptc
                      after 'descent', disc after 'cam')
        gmm_filter    noise_filter and n >= gmm                 (phase C)
        w_consistency 0 unless n >= gmm + consistency_delay     (VOC 1,
                      COCO 0)

    ``phases.gmm=None`` gives a run without phase C: no GMM filter and no
    consistency (the single-student baseline). ``noise_filter=False``
    keeps phase C's consistency term without the filter, and
    ``loss_weights.consistency=0`` the filter without the consistency term.
    ``thresholds.high_target`` equal to ``thresholds.high`` gives a fixed
    threshold.

    In a runner, three hooks apply these brackets to the model at
    ``runner.iter`` (``SetIterInfoHook``: label source and term weights;
    ``CosineThresholdHook``: tau_c; ``GMMNoiseFilterHook``: filter and
    consistency); outside one, ``DualStudentSegmentor.follow_schedule(n)``
    applies all of them.

    Args:
        phases (dict): First iterations: ``cam`` (seg pseudo labels),
            ``gmm`` (GMM filter; None = never), ``end`` (end of the
            threshold descent, usually ``max_iters``), optional
            ``descent`` (start of the descent; default ``cam``) and
            ``aux_cam_until`` (last iteration of aux-CAM labels; default
            None).
        thresholds (dict): ``high`` (tau_h before the descent, one float),
            ``high_target`` (its end, a float or one per class) and ``low``
            (tau_l).
        loss_weights (dict): Weight of each term in ``LOSS_TERMS``.
        loss_after (dict): ``{term: phase}``: the term is weighted only for
            ``n > phases[phase]``. Defaults to ``dict(seg='cam')``.
        consistency_delay (int): Iterations from ``gmm`` to the first
            weighted consistency term. Defaults to 1 (official VOC).
        noise_filter (bool): Whether phase C runs the GMM noise filter.
            Defaults to True.
        num_classes (int): Foreground classes C.
        key (str): Config prefix named in errors.
    """

    def __init__(self,
                 phases: Mapping[str, Optional[int]],
                 thresholds: Mapping[str, Threshold],
                 loss_weights: Mapping[str, float],
                 loss_after: Optional[Mapping[str, str]] = None,
                 consistency_delay: int = 1,
                 noise_filter: bool = True,
                 num_classes: int = 20,
                 key: str = 'model.train_cfg') -> None:
        self.key = key
        self.phases = self._check_phases(phases)
        self.num_classes = num_classes
        self._high, self._target, self.low = self._check_thresholds(
            thresholds, num_classes)
        self._weights = self._check_weights(loss_weights)
        self.loss_after = self._check_loss_after(
            dict(seg='cam') if loss_after is None else loss_after)
        if int(consistency_delay) != consistency_delay or \
                consistency_delay < 0:
            raise ValueError(f'{key}.consistency_delay must be an int >= 0, '
                             f'got {consistency_delay!r}')
        self.consistency_delay = int(consistency_delay)
        if not isinstance(noise_filter, bool):
            raise ValueError(f'{key}.noise_filter must be True or False, got '
                             f'{noise_filter!r}')
        self.noise_filter = noise_filter

    @classmethod
    def from_train_cfg(cls, train_cfg: Mapping,
                       num_classes: int) -> 'DuPLSchedule':
        """The schedule of a (merged) ``DualStudentSegmentor.train_cfg``."""
        return cls(
            phases=train_cfg['phases'],
            thresholds=train_cfg['thresholds'],
            loss_weights=train_cfg['loss_weights'],
            loss_after=train_cfg['loss_after'],
            consistency_delay=train_cfg['consistency_delay'],
            noise_filter=train_cfg['noise_filter'],
            num_classes=num_classes)

    # ------------------------------------------------------------ checks
    def _check_phases(self, phases: Mapping) -> Dict[str, Optional[int]]:
        out = {}
        for name in PHASE_KEYS:
            value = phases.get(name)
            if value is None:
                if name in ('cam', 'end'):
                    raise ValueError(f'{self.key}.phases.{name} is required')
            elif not isinstance(value, int) or isinstance(value, bool) \
                    or value < 0:
                raise ValueError(f'{self.key}.phases.{name} must be an '
                                 f'iteration >= 0 or None, got {value!r}')
            out[name] = None if value is None else int(value)
        if out['descent'] is None:
            out['descent'] = out['cam']
        if out['end'] - out['descent'] < 2:
            raise ValueError(
                f'{self.key}.phases.end ({out["end"]}) must be at least 2 '
                'after phases.descent (default: phases.cam), '
                f'{out["descent"]}')
        return out

    def _check_thresholds(self, thresholds: Mapping, num_classes: int):
        high = thresholds.get('high')
        if not isinstance(high, (int, float)) or isinstance(high, bool):
            raise ValueError(f'{self.key}.thresholds.high must be one float '
                             f'(the start of the descent), got {high!r}')
        target = torch.as_tensor(
            thresholds.get('high_target', high), dtype=torch.float64)
        if target.dim() > 1 or (target.dim() == 1
                                and target.numel() != num_classes):
            raise ValueError(
                f'{self.key}.thresholds.high_target must be a float or '
                f'{num_classes} floats (one per class), got '
                f'{thresholds.get("high_target")!r}')
        low = float(thresholds.get('low', 0.25))
        values = torch.cat([target.flatten(), target.new_tensor([high, low])])
        if bool((values < 0).any() or (values > 1).any()):
            raise ValueError(f'{self.key}.thresholds must lie in [0, 1], '
                             f'got {dict(thresholds)}')
        if low > min(float(high), float(target.min())):
            raise ValueError(f'{self.key}.thresholds.low must not exceed '
                             'thresholds.high or thresholds.high_target')
        return torch.tensor(float(high), dtype=torch.float64), target, low

    def _check_weights(self, weights: Mapping) -> Dict[str, float]:
        out = {}
        for term in LOSS_TERMS:
            value = weights.get(term, 0.)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f'{self.key}.loss_weights.{term} must be a number >= 0 '
                    f'(when it starts is set by {self.key}.phases and '
                    f'{self.key}.loss_after), got {value!r}')
            out[term] = float(value)
        return out

    def _check_loss_after(self, loss_after: Mapping) -> Dict[str, str]:
        starts = ('cam', 'descent', 'gmm')
        for term, phase in loss_after.items():
            if term not in LOSS_TERMS or term == 'consistency':
                raise ValueError(
                    f'{self.key}.loss_after.{term}: not a term with a start '
                    f'of its own; one of {LOSS_TERMS[:-1]}')
            if phase not in starts or self.phases[phase] is None:
                raise ValueError(
                    f'{self.key}.loss_after.{term} must name a set phase '
                    f'{starts}, got {phase!r}')
        return dict(loss_after)

    # ----------------------------------------------------------- queries
    @property
    def base_weights(self) -> Dict[str, float]:
        """Each term's weight when on (``loss_weights``)."""
        return dict(self._weights)

    def state(self, n: int) -> PhaseState:
        """The whole phase state of 0-based iteration ``n``."""
        return PhaseState(
            iteration=int(n),
            label_source=self.label_source(n),
            class_thresholds=self.class_thresholds(n),
            low_threshold=self.low,
            weights=self.weights(n),
            gmm_filter=self.gmm_filter_on(n),
            computed=self.computed_terms(n))

    def computed_terms(self, n: int) -> FrozenSet[str]:
        """The terms the reference computes at ``n``, weighted or not
        (algorithm.md §9, "zero-weighted terms"): ``cls`` and ``disc``
        always; ``seg`` from ``phases.cam`` (weighted after it); ``ptc``
        always, or from ``phases.cam`` when it has a ``loss_after`` start
        (COCO: computed from 8000, weighted after 12000); ``consistency``
        from ``phases.gmm`` (VOC: weighted from gmm + 1). A term whose
        ``loss_weights`` entry is 0 is never computed."""
        cam, gmm = self.phases['cam'], self.phases['gmm']
        starts = dict(
            seg=cam,
            ptc=cam if 'ptc' in self.loss_after else 0,
            consistency=gmm)
        return frozenset(
            term for term, weight in self._weights.items()
            if weight > 0 and starts.get(term, 0) is not None
            and n >= starts.get(term, 0))

    def gmm_filter_on(self, n: int) -> bool:
        """Whether the GMM noise filter runs at ``n`` (phase C)."""
        gmm = self.phases['gmm']
        return self.noise_filter and gmm is not None and n >= gmm

    def consistency_on(self, n: int) -> bool:
        """Whether the consistency term is weighted at ``n``."""
        return self.weights(n)['consistency'] > 0

    def label_source(self, n: int) -> Optional[str]:
        """``None``, ``'cam_aux'`` or ``'cam'``: the CAM that makes the
        segmentation pseudo labels at ``n``."""
        if n < self.phases['cam']:
            return None
        until = self.phases['aux_cam_until']
        return 'cam_aux' if until is not None and n <= until else 'cam'

    def class_thresholds(self, n: int) -> Tensor:
        """tau_c(n), float32 (C,) (the float64 cosine cast once, as the
        former ``CosineThresholdHook`` wrote it into a float32 buffer)."""
        descent, end = self.phases['descent'], self.phases['end']
        value = cosine_descent(self._high, self._target, n - descent,
                               end - descent)
        return value.expand(self.num_classes).float()

    def weights(self, n: int) -> Dict[str, float]:
        """Weight of every loss term at ``n`` (0 = off)."""
        out = {}
        for term, weight in self._weights.items():
            if term == 'consistency':
                gmm = self.phases['gmm']
                on = gmm is not None and n >= gmm + self.consistency_delay
            else:
                after = self.loss_after.get(term)
                on = after is None or n > self.phases[after]
            out[term] = weight if on else 0.
        return out

    def late_phases(self, max_iters: int) -> Dict[str, int]:
        """Phases that a run of ``max_iters`` iterations never reaches
        (and ``end`` if the descent would stop before its target)."""
        late = {
            name: self.phases[name]
            for name in ('cam', 'descent', 'gmm')
            if self.phases[name] is not None and self.phases[name] >= max_iters
        }
        if self.phases['end'] > max_iters:
            late['end'] = self.phases['end']
        return late
