# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL: two students that supervise each other with CAM pseudo labels."""
import copy
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmseg_dupl.utils.homography import warp_by_homography
from ..cam.cam_labels import label_to_aff_mask
from ..cam.multi_scale import autocast_cam_fn, multi_scale_cam
from ..losses.functional import (balanced_seg_loss, consistency_loss,
                                 multilabel_cls_loss, ptc_loss)
from ..pseudo_labelers.pseudo_labels import PseudoLabels
from ..refinement.refine_cams import denormalize_truncated
from ..schedules.dupl_schedule import DuPLSchedule
from ..schedules.dupl_train_state import WRITERS, DuPLTrainState
from ..schedules.phase_state import PhaseState
from ..utils.student_keys import share_single_student
from .batch_meta import crop_boxes, meta_tensor, split_branches
from .dual_student_config import (DEFAULT_TEST_CFG, DEFAULT_TRAIN_CFG,
                                  check_cfg_values, check_test_cfg_keys,
                                  check_train_cfg_keys, merged)
from .dual_student_inference import DualStudentInferenceMixin
from .labelling_stage import LabellingStage


@MODELS.register_module()
class DualStudentSegmentor(DualStudentInferenceMixin, BaseSegmentor):
    """DuPL's dual-student segmentor (algorithm.md §2-9).

    .. code:: text

        loss(), one call per batch, state = phase_state():
          pseudo_labels():                                  (public)
            CAMs:    student_k(weak) -> cls, cls_aux, S_k, F_k
                     multi_scale_cam(student_k) -> cam_k, cam_aux_k
            labels:  pseudo_labeler: tau_i; cam_k -PAR-> Y_k
                     -GMM(S_k)-> Y_k'                       (phase B, C)
          cross:   student 1 learns from Y_2', student 2 from Y_1'
          losses:  cls + ptc(F_k, T_k from cam_aux_k) + disc(F_1, F_2)
                   + seg(S_1, Y_2') + seg(S_2, Y_1') + consistency(
                   student_k(strong) warped back, argmax S_k, where
                   Y_peer' == 255)

    Both students are built from one ``student`` config and have
    independent parameters. A checkpoint of a single student (keys without
    the ``student1.``/``student2.`` prefix) loads into both.

    Run-time state (algorithm.md §9, "run-time path"): the model holds a
    :class:`DuPLTrainState` that hooks write before every iteration from
    ``runner.iter`` (``SetIterInfoHook``: the iteration, hence the label
    source and term weights; ``CosineThresholdHook``: tau_c;
    ``GMMNoiseFilterHook``: filter and consistency switches), each reading
    ``model.schedule`` (the ``DuPLSchedule`` of ``train_cfg``). Outside a
    runner, :meth:`follow_schedule` sets all of it. ``loss()`` with a part
    unset raises, naming the hook or call that sets it.

    Args:
        student (dict): Config of one student (``DuPLStudent``).
        num_classes (int): Foreground classes C (20 VOC, 80 COCO); the
            segmentation output has ``out_channels`` = C + 1.
        num_students (int): 2 for DuPL; 1 builds the single-student
            baseline (each term on its own labels, no discrepancy loss).
            Defaults to 2.
        discrepancy_loss (dict): Config of the feature discrepancy loss;
            its weight is ``train_cfg.loss_weights.disc`` (the module's own
            ``loss_weight`` must stay 1).
        pseudo_labeler (dict): Config of the pseudo-label stage (PAR, the
            GMM rule, ``ignore_index``). Defaults to the official
            ``DuPLPseudoLabeler``.
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
                 pseudo_labeler: ConfigType = dict(type='DuPLPseudoLabeler'),
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
        if getattr(self.discrepancy_loss, 'loss_weight', 1.0) != 1.0:
            raise ValueError(
                'model.discrepancy_loss.loss_weight must stay 1.0: the '
                'term is weighted by model.train_cfg.loss_weights.disc')
        self.pseudo_labeler = MODELS.build(pseudo_labeler)
        check_train_cfg_keys(train_cfg or {})
        check_test_cfg_keys(test_cfg or {})
        self.train_cfg = merged(DEFAULT_TRAIN_CFG, train_cfg)
        self.test_cfg = merged(DEFAULT_TEST_CFG, test_cfg)
        check_cfg_values(self.train_cfg, self.test_cfg, num_classes,
                         num_students)
        self.schedule = DuPLSchedule.from_train_cfg(self.train_cfg,
                                                    num_classes)
        self.train_state = DuPLTrainState()
        self.num_classes = num_classes
        self.out_channels = num_classes + 1
        self.align_corners = False
        # The last phase-C batch's GMM fits, per student (for the hook).
        self.last_noise_fits = None
        # CAMVisualizationHook's request (images to keep) and what is kept
        self.keep_visuals = 0
        self.last_visuals: Optional[dict] = None

    @property
    def students(self) -> Tuple[torch.nn.Module, ...]:
        """The students in order (one for the baseline)."""
        if self.student2 is None:
            return (self.student1, )
        return self.student1, self.student2

    @property
    def ignore_index(self) -> int:
        """The label of uncertain / removed pixels (the labeler's)."""
        return self.pseudo_labeler.ignore_index

    # ------------------------------------------------------------------
    # run-time state (written by the schedule hooks)
    # ------------------------------------------------------------------
    def set_train_iter(self, iteration: int) -> None:
        """The iteration to train (``SetIterInfoHook``): decides the label
        source and which loss terms are weighted."""
        if int(iteration) != iteration or iteration < 0:
            raise ValueError(f'set_train_iter: iteration must be an int >= '
                             f'0, got {iteration!r}')
        self.train_state.iteration = int(iteration)

    def set_class_thresholds(self, class_thresholds: Tensor) -> None:
        """tau_c, float32 (C,) (``CosineThresholdHook``)."""
        thresholds = torch.as_tensor(class_thresholds, dtype=torch.float32)
        if thresholds.shape != (self.num_classes, ):
            raise ValueError(
                f'set_class_thresholds: expected ({self.num_classes},) '
                f'thresholds, got {tuple(thresholds.shape)}')
        self.train_state.class_thresholds = thresholds

    def set_noise_filter(self, gmm_filter: bool, consistency: bool) -> None:
        """Phase C's switches (``GMMNoiseFilterHook``): whether the GMM
        filter runs and whether the consistency term is weighted."""
        self.train_state.gmm_filter = bool(gmm_filter)
        self.train_state.consistency = bool(consistency)

    def follow_schedule(self, iteration: int) -> None:
        """Set the whole run-time state of ``iteration`` from
        ``self.schedule``: what the three hooks do inside a runner. The
        one call a model outside a runner needs before ``loss()`` (or
        ``predict_on='pseudo'``)."""
        self.set_train_iter(iteration)
        self.set_class_thresholds(
            self.schedule.class_thresholds(iteration))
        self.set_noise_filter(
            self.schedule.gmm_filter_on(iteration),
            self.schedule.consistency_on(iteration))

    def phase_state(self) -> PhaseState:
        """The state ``loss()`` trains with, from ``train_state``.

        Raises:
            RuntimeError: A part of the state was never set.
        """
        state = self.train_state
        unset = state.unset(
            needs_phase_c=self.schedule.phases['gmm'] is not None)
        if unset:
            writers = sorted({WRITERS[name] for name in unset})
            raise RuntimeError(
                f'DualStudentSegmentor: no {", ".join(unset)} to train '
                f'with. In a runner, add {" and ".join(writers)} to '
                'custom_hooks (the DuPL configs inherit them from '
                'configs/_base_/models/dupl_vit-b16.py); outside one, call '
                'model.follow_schedule(iteration) first.')
        n = state.iteration
        weights = self.schedule.weights(n)
        computed = set(self.schedule.computed_terms(n))
        weights['consistency'] = 0.
        if state.consistency:
            weights['consistency'] = \
                self.schedule.base_weights['consistency']
            computed.add('consistency')
        return PhaseState(
            iteration=n,
            label_source=self.schedule.label_source(n),
            class_thresholds=state.class_thresholds,
            low_threshold=self.schedule.low,
            weights=weights,
            gmm_filter=bool(state.gmm_filter),
            computed=frozenset(computed))

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def pseudo_labels(self,
                      inputs: Tensor,
                      data_samples: SampleList,
                      state: Optional[PhaseState] = None,
                      students: Optional[Sequence[torch.nn.Module]] = None
                      ) -> LabellingStage:
        """DuPL's labelling stage on one batch of (weak) images: each
        student's forward and CAMs, tau_i and, from phase B on, the pseudo
        labels of every student's CAM, GMM-filtered in phase C.

        ``loss()`` runs it with autograd on; tools call it under
        ``torch.no_grad()``.

        Args:
            inputs (Tensor): Normalised images, (B, 3, H, W).
            data_samples (list[SegDataSample]): Their samples, with
                ``cls_labels`` (and optionally ``img_box``) metainfo.
            state (PhaseState, optional): Defaults to :meth:`phase_state`.
            students (Sequence[nn.Module], optional): Label with these
                students only (inference of one student's labels: without
                the GMM filter, a student's CAMs and labels depend on its
                own weights alone). Defaults to all.

        Returns:
            LabellingStage: Outputs, CAMs, tau_i and ``PseudoLabels``, per
            student of ``students``.
        """
        state = state or self.phase_state()
        students = self.students if students is None else tuple(students)
        cls_labels = meta_tensor(data_samples, 'cls_labels', inputs)
        img_box = crop_boxes(data_samples, inputs)
        outs = [student(inputs) for student in students]
        cams = [
            self.training_cams(student, inputs, out, cls_labels)
            for student, out in zip(students, outs)
        ]
        tau = self.pseudo_labeler.image_thresholds(state.class_thresholds,
                                                   cls_labels)
        segs = pseudo = None
        if state.label_source is not None:
            segs = [
                resize(o['seg'], inputs.shape[2:], mode='bilinear',
                       align_corners=False) for o in outs
            ]
            source = 0 if state.label_source == 'cam' else 1
            pseudo = self.pseudo_labeler(
                self.raw_images(inputs), [c[source] for c in cams],
                cls_labels, tau, state.low_threshold, img_box,
                seg_logits=segs if state.gmm_filter else None)
        return LabellingStage(state, outs, cams, tau, cls_labels, img_box,
                              segs, pseudo)

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
            and the logging scalar ``image_threshold`` (mean tau_i).
        """
        weak, strong, samples, strong_samples = split_branches(
            inputs, data_samples)
        stage = self.pseudo_labels(weak, samples)
        state, outs, cams = stage.state, stage.outputs, stage.cams
        visuals = self._start_visuals(weak, cams, stage.cls_labels)
        # Image- and token-level terms (every phase)
        losses = self._cls_and_ptc_losses(outs, cams, stage, state)
        losses.update(self._discrepancy_loss(outs, state))
        # Terms the reference computes but weights 0 are computed too, so
        # their parameters get zero gradients, not None (AdamW's step
        # counts and weight decay follow the reference; algorithm.md §9).
        pseudo = stage.pseudo
        if pseudo is not None:
            self._keep_label_visuals(visuals, pseudo)
            self.last_noise_fits = pseudo.fits
            targets = self._cross_assign(pseudo.filtered)
            # Segmentation and consistency against the peer's labels
            if 'seg' in state.computed:
                losses.update(
                    self._seg_losses(stage.seg_logits, targets,
                                     state.weights['seg']))
            if 'consistency' in state.computed and strong is not None:
                losses.update(
                    self._consistency_losses(strong, strong_samples,
                                             stage.seg_logits, targets,
                                             state.weights['consistency']))
        losses['image_threshold'] = stage.image_thresholds.mean().detach()
        return losses

    def training_cams(self, student: torch.nn.Module, weak: Tensor,
                      out: dict, cls_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Multi-scale ``(cam, cam_aux)`` of one student as the labelling
        stage makes them, (B, C, H, W) each, no grad (algorithm.md §3).

        ``out`` is the student's forward of ``weak``. With
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
                            stage: LabellingStage,
                            state: PhaseState) -> dict:
        """Each student's classification (both heads) and patch-token
        contrast terms; PTC learns the token labels of its aux CAM."""
        losses, weights = {}, state.weights
        cls_labels, tau = stage.cls_labels, stage.image_thresholds
        for k, (out, (_, cam_aux)) in enumerate(zip(outs, cams), start=1):
            if 'cls' in state.computed:
                losses[f's{k}.loss_cls'] = weights['cls'] * (
                    multilabel_cls_loss(out['cls'], cls_labels) +
                    multilabel_cls_loss(out['cls_aux'], cls_labels))
            if 'ptc' in state.computed:
                tokens = self.pseudo_labeler.token_labels(
                    cam_aux, out['feat'].shape[2:], cls_labels, tau,
                    state.low_threshold, stage.img_box)
                aff = label_to_aff_mask(tokens.flatten(1))
                losses[f's{k}.loss_ptc'] = weights['ptc'] * \
                    self._mean_over_image_groups(ptc_loss, out['feat'], aff)
        return losses

    def _discrepancy_loss(self, outs: List[dict], state: PhaseState) -> dict:
        """The feature discrepancy between the two students."""
        if 'disc' not in state.computed or len(outs) != 2:
            return {}
        return {
            'loss_disc':
            state.weights['disc'] *
            self.discrepancy_loss(outs[0]['feat'], outs[1]['feat'])
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
        ignore = self.ignore_index
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
                    b, s, t, self.train_cfg['conf_thr'], self.ignore_index),
                back, seg, target)
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

    def raw_images(self, inputs: Tensor) -> Tensor:
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
        names = ('student1', 'student2')[:len(self.students)]
        shared = share_single_student(state_dict, prefix, names)
        if shared and len(names) > 1:
            print_log(f'single-student checkpoint ({shared} keys): loaded '
                      f'into {", ".join(names)}', 'current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
