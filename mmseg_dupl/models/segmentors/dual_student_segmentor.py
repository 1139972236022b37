# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL: two students that supervise each other with CAM pseudo labels."""
import copy
import logging
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmseg_dupl.utils.homography import warp_by_homography
from ..losses.functional import (balanced_seg_loss, consistency_loss,
                                 multilabel_cls_loss, ptc_loss)
from ..pseudo_labelers.dupl_pseudo_labeler import DuPLPseudoLabeler
from ..pseudo_labelers.pseudo_labels import PseudoLabels
from ..schedules.dupl_schedule import DuPLSchedule
from ..schedules.iteration import current_iter, max_iters
from ..schedules.phase_state import PhaseState
from ..cam.multi_scale_cam import autocast_cam_fn, multi_scale_cam
from ..cam.cam_labels import label_to_aff_mask
from ..refinement.refine_cams import denormalize_truncated
from ..utils.student_keys import share_single_student
from .batch_meta import crop_boxes, meta_tensor, split_branches
from .dual_student_config import (DEFAULT_TEST_CFG, DEFAULT_TRAIN_CFG,
                                  check_cfg_values, check_test_cfg_keys,
                                  check_train_cfg_keys, merged)
from .dual_student_inference import DualStudentInferenceMixin


@MODELS.register_module()
class DualStudentSegmentor(DualStudentInferenceMixin, BaseSegmentor):
    """DuPL's dual-student segmentor (algorithm.md §2-9).

    .. code:: text

        loss(), one call per batch, state = DuPLSchedule.state(iter):
          CAMs:    student_k(weak) -> cls, cls_aux, S_k, F_k
                   multi_scale_cam(student_k) -> cam_k, cam_aux_k (no grad)
          labels:  pseudo_labeler: tau_i; cam_aux_k -> token labels T_k;
                   cam_k -PAR-> Y_k -GMM(S_k)-> Y_k'           (labeler)
          cross:   student 1 learns from Y_2', student 2 from Y_1'
          losses:  cls + ptc(F_k, T_k) + disc(F_1, F_2) + seg(S_1, Y_2')
                   + seg(S_2, Y_1') + consistency(student_k(strong)
                   warped back, argmax S_k, where Y_peer' == 255)

    Both students are built from one ``student`` config and have
    independent parameters. A checkpoint of a single student (keys without
    the ``student1.``/``student2.`` prefix) loads into both.

    What runs when is the ``DuPLSchedule`` of ``train_cfg.phases``,
    ``thresholds``, ``loss_weights``, ``loss_after`` and
    ``consistency_delay``, evaluated once per ``loss()`` call for the
    iteration mmengine's message hub holds (``RuntimeInfoHook`` writes
    ``runner.iter`` there; outside a runner use
    ``mmseg_dupl.models.schedules.set_iteration(n)``, and with nothing set
    the model runs its final phase). No hook is involved.

    Args:
        student (dict): Config of one student (``DuPLStudent``).
        num_classes (int): Foreground classes C (20 VOC, 80 COCO).
        num_students (int): 2 for DuPL; 1 builds the single-student
            baseline (each term on its own labels, no discrepancy loss).
            Defaults to 2.
        discrepancy_loss (dict): Config of the feature discrepancy loss;
            its weight is ``train_cfg.loss_weights.disc``.
        The pseudo-label stage is a ``DuPLPseudoLabeler`` built from
        ``train_cfg`` (``par``, ``down_scale``, ``gmm``, ``fix_token_box``,
        ``ignore_index``), kept as ``pseudo_labeler``.
        train_cfg (dict, optional): Overrides of ``DEFAULT_TRAIN_CFG``.
        test_cfg (dict, optional): Overrides of ``DEFAULT_TEST_CFG``.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
        pretrained (str, optional): Only None is accepted (what mmseg's
            ``init_model`` and ``benchmark.py`` set); the students' weights
            come from ``student.backbone.init_cfg``. Defaults to None.
    """

    def __init__(self,
                 student: ConfigType,
                 num_classes: int,
                 num_students: int = 2,
                 discrepancy_loss: ConfigType = dict(type='DiscrepancyLoss'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 pretrained: Optional[str] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if pretrained is not None:  # mmseg.apis.init_model passes None
            raise ValueError(
                'model.pretrained is not used by DualStudentSegmentor: set '
                'model.student.backbone.init_cfg.checkpoint instead')
        if num_students not in (1, 2):
            raise ValueError(f'model.num_students must be 1 or 2, got '
                             f'{num_students}')
        self.student1 = MODELS.build(copy.deepcopy(student))
        self.student2 = MODELS.build(copy.deepcopy(student)) \
            if num_students == 2 else None
        self.discrepancy_loss = MODELS.build(discrepancy_loss)
        check_train_cfg_keys(train_cfg or {})
        check_test_cfg_keys(test_cfg or {})
        self.train_cfg = merged(DEFAULT_TRAIN_CFG, train_cfg)
        self.test_cfg = merged(DEFAULT_TEST_CFG, test_cfg)
        check_cfg_values(self.train_cfg, self.test_cfg, num_classes,
                         num_students)
        self.schedule = DuPLSchedule.from_train_cfg(self.train_cfg,
                                                    num_classes)
        self._late_phases_checked = False
        cfg = self.train_cfg
        self.pseudo_labeler = DuPLPseudoLabeler(
            par=cfg['par'],
            down_scale=cfg['down_scale'],
            gmm=cfg['gmm'],
            fix_token_box=cfg['fix_token_box'],
            ignore_index=cfg['ignore_index'])
        self.fg_classes = num_classes
        self.num_classes = self.out_channels = num_classes + 1
        self.align_corners = False
        # CAMVisualizationHook's request (images to keep) and what is kept
        self.keep_visuals = 0
        self.last_visuals: Optional[dict] = None

    @property
    def students(self) -> Tuple[torch.nn.Module, ...]:
        """The students in order (one for the baseline)."""
        if self.student2 is None:
            return (self.student1, )
        return self.student1, self.student2

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, inputs: Union[Tensor, Dict[str, Tensor]],
             data_samples: Union[SampleList, Dict[str, SampleList]]) -> dict:
        """Compute all DuPL losses for one per-GPU batch.

        Args:
            inputs (Tensor | dict): ``(B, 3, H, W)`` weak views, or
                ``{'weak': (B, 3, H, W), 'strong': (B, 3, H', W')}``.
            data_samples (list | dict): Matching ``SegDataSample`` lists
                with metainfo ``cls_labels`` (and ``img_box``,
                ``homography_matrix``). No pixel labels are read.

        Returns:
            dict: Weighted loss terms (``s1.loss_cls``, ..., ``loss_disc``)
            and logging scalars (``thr_high``, the mean per-image tau_i;
            ``noise_ratio.s1``, ...).
        """
        weak, strong, samples, strong_samples = split_branches(
            inputs, data_samples)
        state = self.phase_state()
        cls_labels = meta_tensor(samples, 'cls_labels', weak)
        img_box = crop_boxes(samples, weak)
        # 1. CAMs: each student's forward, its multi-scale CAMs (no grad)
        outs = [student(weak) for student in self.students]
        cams = [self._train_cams(student, weak, out, cls_labels)
                for student, out in zip(self.students, outs)]
        visuals = self._start_visuals(weak, cams, cls_labels)
        tau = self.pseudo_labeler.image_thresholds(state.class_thresholds,
                                                   cls_labels)
        # 2. Image- and token-level terms (every phase)
        losses = self._cls_and_ptc_losses(outs, cams, cls_labels, tau,
                                          img_box, state)
        losses.update(self._discrepancy_loss(outs, state))
        use_consistency = state.consistency and strong is not None
        if state.label_source is not None and (state.weights['seg'] > 0
                                               or use_consistency):
            # 3. Pseudo labels, GMM-filtered in phase C, then crossed
            segs = [resize(o['seg'], weak.shape[2:], mode='bilinear',
                           align_corners=False) for o in outs]
            source = 0 if state.label_source == 'cam' else 1
            pseudo = self.pseudo_labeler(
                self._raw_image(weak), [c[source] for c in cams],
                cls_labels, tau, state.low_threshold, img_box,
                seg_logits=segs if state.gmm_filter else None)
            self._keep_label_visuals(visuals, pseudo)
            losses.update(self._noise_ratios(pseudo))
            targets = self._cross_assign(pseudo.filtered)
            # 4. Segmentation and consistency against the peer's labels
            losses.update(
                self._seg_losses(segs, targets, state.weights['seg']))
            if use_consistency:
                losses.update(
                    self._consistency_losses(strong, strong_samples, segs,
                                             targets,
                                             state.weights['consistency']))
        losses['thr_high'] = tau.mean().detach()
        return losses

    def phase_state(self) -> PhaseState:
        """The schedule's state at the current iteration (message hub)."""
        if not self._late_phases_checked:
            self._warn_late_phases()
        return self.schedule.state(current_iter())

    def _warn_late_phases(self) -> None:
        """Once per run: warn about phases a run never reaches."""
        total = max_iters()
        if total <= 0:
            return  # outside a runner: nothing to compare with
        self._late_phases_checked = True
        late = self.schedule.late_phases(total)
        if late:
            print_log(
                f'model.train_cfg.phases {late}: not reached within '
                f'train_cfg.max_iters={total}; scale the phases with '
                'max_iters', logger='current', level=logging.WARNING)

    def _train_cams(self, student: torch.nn.Module, weak: Tensor, out: dict,
                    cls_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Multi-scale ``(cam, cam_aux)`` of one student (no grad). With
        ``train_cfg.reuse_scale1_cam`` the un-flipped scale-1.0 CAMs come
        from the training forward's features instead of a second pass: the
        same numbers (CAMs are made before the optimizer step, and the
        configs use no dropout or drop-path), a fifth fewer CAM passes.
        Only the classes of the batch's images are upsampled and merged
        (every loss multiplies the others by 0)."""
        precomputed = None
        if self.train_cfg['reuse_scale1_cam']:
            with torch.no_grad():
                precomputed = student.cams_from_features(
                    out['feat_aux'].detach(), out['feat'].detach())
        cam_fn = autocast_cam_fn(student.cams, weak.device.type,
                                 self.train_cfg['cam_autocast'])
        with torch.no_grad():
            return multi_scale_cam(cam_fn, weak,
                                   self.train_cfg['cam_scales'], precomputed,
                                   classes=cls_labels)

    def _start_visuals(self, weak: Tensor, cams: List[tuple],
                       cls_labels: Tensor) -> Optional[dict]:
        """What ``CAMVisualizationHook`` draws, kept in ``last_visuals``
        when it asks (``keep_visuals`` = number of images), else None."""
        count = int(self.keep_visuals)
        if count <= 0:
            return None
        mean, std = self._norm_stats()
        image = denormalize_truncated(weak[:count].detach(), mean, std)
        self.last_visuals = dict(
            img=(image * 255).round().byte().permute(0, 2, 3, 1).cpu(),
            cams=[c[0][:count].detach().cpu() for c in cams],
            cls_labels=cls_labels[:count].detach().cpu())
        return self.last_visuals

    def _keep_label_visuals(self, visuals: Optional[dict],
                            pseudo: PseudoLabels) -> None:
        """Add the pseudo labels (and GMM-flagged pixels) to the kept
        visuals, when ``CAMVisualizationHook`` asked for them."""
        if visuals is None:
            return
        count = len(visuals['img'])
        visuals['labels'] = [y[:count] for y in pseudo.labels]
        if pseudo.noisy is not None:
            visuals['noisy'] = [m[:count] for m in pseudo.noisy]

    def _cls_and_ptc_losses(self, outs: List[dict], cams: List[tuple],
                            cls_labels: Tensor, tau: Tensor,
                            img_box: Optional[Tensor],
                            state: PhaseState) -> dict:
        """Each student's classification (both heads) and patch-token
        contrast terms; PTC learns the token labels of its aux CAM."""
        losses, weights = {}, state.weights
        for k, (out, (_, cam_aux)) in enumerate(zip(outs, cams), start=1):
            if weights['cls'] > 0:
                losses[f's{k}.loss_cls'] = weights['cls'] * (
                    multilabel_cls_loss(out['cls'], cls_labels) +
                    multilabel_cls_loss(out['cls_aux'], cls_labels))
            if weights['ptc'] > 0:
                tokens = self.pseudo_labeler.token_labels(
                    cam_aux, out['feat'].shape[2:], cls_labels, tau,
                    state.low_threshold, img_box)
                aff = label_to_aff_mask(tokens.flatten(1))
                losses[f's{k}.loss_ptc'] = weights['ptc'] * \
                    self._mean_over_image_groups(ptc_loss, out['feat'], aff)
        return losses

    def _discrepancy_loss(self, outs: List[dict], state: PhaseState) -> dict:
        """The feature discrepancy between the two students."""
        if state.weights['disc'] <= 0 or len(outs) != 2:
            return {}
        return {
            'loss_disc':
            state.weights['disc'] *
            self.discrepancy_loss(outs[0]['feat'], outs[1]['feat'])
        }

    @staticmethod
    def _noise_ratios(pseudo: PseudoLabels) -> dict:
        """Logged share of foreground labels the GMM filter removed."""
        if pseudo.noisy is None:
            return {}
        return {
            f'noise_ratio.s{k}': ratio
            for k, ratio in enumerate(pseudo.noise_ratios(), start=1)
        }

    def _cross_assign(self, labels: List[Tensor]) -> List[Tensor]:
        """The labels each student learns from: its peer's (DuPL), or its
        own (``train_cfg.cross_supervision=False`` or one student)."""
        if self.train_cfg['cross_supervision'] and len(labels) == 2:
            return labels[::-1]
        return labels

    def _seg_losses(self, segs: List[Tensor], targets: List[Tensor],
                    weight: float) -> dict:
        """Balanced CE of each student against its (peer's) labels."""
        ignore = self.train_cfg['ignore_index']
        return {
            f's{k}.loss_seg': weight * self._mean_over_image_groups(
                lambda s, y: balanced_seg_loss(s, y, ignore), seg, target)
            for k, (seg, target) in enumerate(zip(segs, targets), start=1)
        }

    def _consistency_losses(self, strong: Tensor, strong_samples: SampleList,
                            segs: List[Tensor], targets: List[Tensor],
                            weight: float) -> dict:
        """Consistency on the strong view over the peer-ignored pixels."""
        homography = meta_tensor(strong_samples, 'homography_matrix',
                                       strong).float()
        losses = {}
        for k, (student, seg, target) in enumerate(
                zip(self.students, segs, targets), start=1):
            strong_seg = student.seg_logits(strong)
            back = warp_by_homography(
                strong_seg,
                torch.linalg.inv(homography),
                seg.shape[2:],
                mode='bilinear',
                padding='border',
                src_frame_hw=strong.shape[2:])
            losses[f's{k}.loss_consistency'] = weight * \
                self._mean_over_image_groups(
                lambda b, s, t: consistency_loss(
                    b, s, t, self.train_cfg['conf_thr'],
                    self.train_cfg['ignore_index']), back, seg, target)
        return losses

    def _mean_over_image_groups(self, fn, *tensors: Tensor) -> Tensor:
        """Evaluate a batch-pooled loss per group of images and average,
        emulating the reference's per-GPU pooling inside one process."""
        size = self.train_cfg['loss_group_size']
        batch = tensors[0].shape[0]
        if not size or size >= batch:
            return fn(*tensors)
        chunks = zip(*(t.split(size) for t in tensors))
        values = [fn(*c) for c in chunks]
        return torch.stack(values).mean()

    # ------------------------------------------------------------------
    # inputs
    # ------------------------------------------------------------------
    def _norm_stats(self) -> Tuple[Tensor, Tensor]:
        """Mean and std (255 scale, RGB) used by the data preprocessor."""
        dp = self.data_preprocessor
        dp = getattr(dp, 'data_preprocessor', dp)
        if not getattr(dp, '_enable_normalize', False):
            raise ValueError('DualStudentSegmentor needs a data_preprocessor '
                             'with mean and std (PAR needs raw pixels).')
        return dp.mean.view(-1), dp.std.view(-1)

    def _raw_image(self, inputs: Tensor) -> Tensor:
        """Denormalised images in [0, 1] (the reference's truncating
        ``denormalize_img2``), what PAR sees; (B, 3, H, W)."""
        mean, std = self._norm_stats()
        return denormalize_truncated(inputs, mean, std)

    # ------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Load a dual checkpoint as is, or a single student's (bare
        ``backbone.*`` ... keys, or ``student1.*`` only) into every
        student, as mmdet's semi-supervised detectors do."""
        # The class thresholds were a buffer before the schedule moved into
        # DuPLSchedule; older checkpoints still carry it.
        state_dict.pop(f'{prefix}high_thr', None)
        names = ('student1', 'student2')[:len(self.students)]
        shared = share_single_student(state_dict, prefix, names)
        if shared and len(names) > 1:
            print_log(f'single-student checkpoint ({shared} keys): loaded '
                      f'into {", ".join(names)}', 'current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
