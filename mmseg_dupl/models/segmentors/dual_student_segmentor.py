# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL: two students that supervise each other with CAM pseudo labels."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmseg_dupl.utils.homography import warp_by_homography
from ..losses.functional import (balanced_seg_loss, consistency_loss,
                                 multilabel_cls_loss, per_pixel_ce, ptc_loss)
from ..utils.cam import (autocast_cam_fn, cam_to_label, label_to_aff_mask,
                         multi_scale_cam, scale_img_box)
from ..utils.gmm import filter_noisy_labels, gmm_noise_mask
from ..utils.loss_schedule import (current_iter, piecewise_weight,
                                   validate_weight_schedules)
from ..utils.par import PAR
from ..utils.pseudo_label import (denormalize_truncated,
                                  refine_cams_with_dynamic_thres)
from .dual_student_inference import DualStudentInferenceMixin

# The official VOC run (spec 9): weights as ``[(first_iter, weight)]``.
DEFAULT_TRAIN_CFG = dict(
    cam_scales=(1.0, 0.5, 1.5),
    high_thr=0.7,
    low_thr=0.25,
    # Which CAM makes the segmentation pseudo labels from which iteration
    # (VOC: final CAMs from 2000; COCO: aux CAMs from 8000, final > 12000).
    seg_label_cams=[(2000, 'cam')],
    loss_weights=dict(
        cls=1.0,
        ptc=0.2,
        disc=0.1,
        seg=[(2001, 0.2)],  # official bracket: 0 if n <= 2000
        reg=0.05),  # gated by ``consistency_on`` (GMMNoiseFilterHook)
    conf_thr=0.9,
    gmm=dict(min_loss=0.1, min_pixels=1000, min_mean_gap=1.0, gamma=0.95),
    par=dict(dilations=(1, 2, 4, 8, 12, 24), num_iter=10),
    down_scale=2,
    # Take the scale-1.0 un-flipped CAMs from the training forward (the
    # reference recomputes them; identical numbers).
    reuse_scale1_cam=True,
    # Optional speed switch: the CAM passes under autocast ('bfloat16' or
    # 'float16'); None keeps them in the training precision (official).
    cam_autocast=None,
    # Spec 4.1 quirk: the 448-pixel img_box is applied to the token grid.
    fix_token_box=False,
    # Images over which the ratio-normalised losses are pooled; None pools
    # over the whole per-GPU batch, as the reference does.
    loss_group_size=None,
    cross_supervision=True,
    ignore_index=255)

DEFAULT_TEST_CFG = dict(
    mode='whole',
    predict_on='seg',  # 'seg' | 'cam' | 'cam_aux' | 'pseudo'
    student='s1',  # 's1' | 's2' | 'ensemble'
    cam_scales=(1.0, 0.5, 1.5),
    bkg_thr=0.5)


@MODELS.register_module()
class DualStudentSegmentor(DualStudentInferenceMixin, BaseSegmentor):
    """DuPL's dual-student segmentor (spec 2-9).

    .. code:: text

        loss(): for each student k:
            multi_scale_cam(student_k) -> cam_k, cam_aux_k         (no grad)
            student_k(weak)            -> cls, cls_aux, seg_k, F_k
            cam_aux_k -> token labels T_k -> PTC(F_k, T_k)
            cam_k --PAR--> pseudo labels Y_k --GMM filter--> Y_k'
          L = cls + ptc + disc(F_1, F_2) + seg(S_1, Y_2') + seg(S_2, Y_1')
              + reg(student_k(strong) warped back, argmax S_k, Y_peer' == 255)

    Both students are built from one ``student`` config and have
    independent parameters. A checkpoint of a single student (keys without
    the ``student1.``/``student2.`` prefix) loads into both.

    The schedule state the hooks write: ``high_thr`` (per-class buffer,
    ``CosineThresholdHook``), ``noise_filter_on`` and ``consistency_on``
    (``GMMNoiseFilterHook``). Their defaults give a static-threshold run
    without GMM and consistency, so the model also trains without hooks.

    Args:
        student (dict): Config of one student (``DuPLStudent``).
        num_classes (int): Foreground classes C (20 VOC, 80 COCO).
        num_students (int): 2 for DuPL; 1 builds the single-student
            baseline (each term on its own labels, no discrepancy loss).
            Defaults to 2.
        discrepancy_loss (dict): Config of the feature discrepancy loss;
            its weight is ``train_cfg.loss_weights.disc``.
        train_cfg (dict, optional): Overrides of ``DEFAULT_TRAIN_CFG``.
        test_cfg (dict, optional): Overrides of ``DEFAULT_TEST_CFG``.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student: ConfigType,
                 num_classes: int,
                 num_students: int = 2,
                 discrepancy_loss: ConfigType = dict(type='DiscrepancyLoss'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if num_students not in (1, 2):
            raise ValueError(f'model.num_students must be 1 or 2, got '
                             f'{num_students}')
        self.student1 = MODELS.build(copy.deepcopy(student))
        self.student2 = MODELS.build(copy.deepcopy(student)) \
            if num_students == 2 else None
        self.discrepancy_loss = MODELS.build(discrepancy_loss)
        self.train_cfg = _merged(DEFAULT_TRAIN_CFG, train_cfg)
        self.test_cfg = _merged(DEFAULT_TEST_CFG, test_cfg)
        self._check_cfg(num_classes, num_students)
        self.par = PAR(**self.train_cfg['par'])
        self.fg_classes = num_classes
        self.num_classes = self.out_channels = num_classes + 1
        self.align_corners = False
        self.register_buffer(
            'high_thr',
            torch.full((num_classes, ), float(self.train_cfg['high_thr'])))
        self.noise_filter_on = False
        self.consistency_on = False
        # CAMVisualizationHook's request (images to keep) and what is kept
        self.keep_visuals = 0
        self.last_visuals: Optional[dict] = None

    def _check_cfg(self, num_classes: int, num_students: int) -> None:
        """Fail early, naming the config key, on bad values."""
        cfg, tcfg = self.train_cfg, self.test_cfg
        if num_classes < 1:
            raise ValueError(f'model.num_classes must be >= 1, got '
                             f'{num_classes}')
        validate_weight_schedules(cfg['loss_weights'])
        for key in ('high_thr', 'low_thr', 'conf_thr'):
            if not 0. <= float(cfg[key]) <= 1.:
                raise ValueError(f'model.train_cfg.{key} must be in [0, 1], '
                                 f'got {cfg[key]}')
        if cfg['cam_autocast'] not in (None, 'bfloat16', 'float16'):
            raise ValueError("model.train_cfg.cam_autocast must be None, "
                             f"'bfloat16' or 'float16', got "
                             f"{cfg['cam_autocast']!r}")
        if cfg['low_thr'] > cfg['high_thr']:
            raise ValueError('model.train_cfg.low_thr must not exceed '
                             'model.train_cfg.high_thr')
        for _, source in cfg['seg_label_cams']:
            if source not in ('cam', 'cam_aux'):
                raise ValueError('model.train_cfg.seg_label_cams sources '
                                 f"must be 'cam' or 'cam_aux', got {source}")
        if tcfg['predict_on'] not in ('seg', 'cam', 'cam_aux', 'pseudo'):
            raise ValueError("model.test_cfg.predict_on must be one of "
                             "'seg', 'cam', 'cam_aux', 'pseudo', got "
                             f"{tcfg['predict_on']!r}")
        if num_students == 1 and tcfg['student'] != 's1':
            raise ValueError("model.test_cfg.student must be 's1' with "
                             'num_students=1')
        if tcfg['student'] not in ('s1', 's2', 'ensemble'):
            raise ValueError("model.test_cfg.student must be 's1', 's2' or "
                             f"'ensemble', got {tcfg['student']!r}")

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
            and logging scalars (``thr_image``, the mean per-image tau_i;
            ``noise_ratio.s1``, ...).
        """
        weak, strong, samples, strong_samples = _split_branches(
            inputs, data_samples)
        n = current_iter()
        cfg = self.train_cfg
        weights = {
            k: piecewise_weight(v, n)
            for k, v in cfg['loss_weights'].items()
        }
        cls_labels = self._meta_tensor(samples, 'cls_labels', weak)
        img_box = self._img_box(samples, weak)
        high_thr = self._image_thresholds(cls_labels)

        outs = [s(weak) for s in self.students]
        cams = [self._train_cams(s, weak, o, cls_labels)
                for s, o in zip(self.students, outs)]
        visuals = self._start_visuals(weak, cams, cls_labels)
        losses = self._cls_ptc_disc_losses(outs, cams, cls_labels, img_box,
                                           high_thr, weights)
        source = _seg_label_source(cfg['seg_label_cams'], n)
        use_reg = self.consistency_on and strong is not None and \
            weights['reg'] > 0
        if source is not None and (weights['seg'] > 0 or use_reg):
            labels = self._seg_pseudo_labels(weak, cams, cls_labels,
                                             high_thr, img_box, source)
            segs = [resize(o['seg'], weak.shape[2:], mode='bilinear',
                           align_corners=False) for o in outs]
            if visuals is not None:
                visuals['labels'] = [y[:len(visuals['img'])] for y in labels]
            if self.noise_filter_on:
                filtered, ratios = self._filter_labels(segs, labels)
                if visuals is not None:
                    visuals['noisy'] = [(a != b)[:len(visuals['img'])]
                                        for a, b in zip(labels, filtered)]
                labels = filtered
                losses.update(ratios)
            cross = cfg['cross_supervision'] and len(labels) == 2
            peer = labels[::-1] if cross else labels
            losses.update(self._seg_losses(segs, peer, weights['seg']))
            if use_reg:
                losses.update(
                    self._reg_losses(strong, strong_samples, segs, peer,
                                     weights['reg']))
        losses['thr_image'] = high_thr.mean().detach()
        return losses

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

    def _cls_ptc_disc_losses(self, outs: List[dict], cams: List[tuple],
                             cls_labels: Tensor, img_box: Optional[Tensor],
                             high_thr: Tensor, weights: dict) -> dict:
        """Classification, PTC and discrepancy terms (every phase)."""
        losses = {}
        for k, (out, (_, cam_aux)) in enumerate(zip(outs, cams), start=1):
            if weights['cls'] > 0:
                losses[f's{k}.loss_cls'] = weights['cls'] * (
                    multilabel_cls_loss(out['cls'], cls_labels) +
                    multilabel_cls_loss(out['cls_aux'], cls_labels))
            if weights['ptc'] > 0:
                tokens = self._token_labels(cam_aux, out['feat'], cls_labels,
                                            img_box, high_thr)
                aff = label_to_aff_mask(tokens.flatten(1))
                losses[f's{k}.loss_ptc'] = weights['ptc'] * self._grouped(
                    ptc_loss, out['feat'], aff)
        if weights['disc'] > 0 and len(outs) == 2:
            losses['loss_disc'] = weights['disc'] * self.discrepancy_loss(
                outs[0]['feat'], outs[1]['feat'])
        return losses

    def _token_labels(self, cam_aux: Tensor, feat: Tensor, cls_labels: Tensor,
                      img_box: Optional[Tensor], high_thr: Tensor) -> Tensor:
        """PTC token labels from the aux CAM at token resolution (4.1)."""
        grid = feat.shape[2:]
        cam = resize(cam_aux, grid, mode='bilinear', align_corners=False)
        if img_box is not None and self.train_cfg['fix_token_box']:
            img_box = scale_img_box(img_box, cam_aux.shape[-1], grid[-1])
        return cam_to_label(
            cam,
            cls_labels,
            img_box=img_box,
            high_thr=high_thr,
            low_thr=self.train_cfg['low_thr'],
            ignore_index=self.train_cfg['ignore_index'])

    def _seg_pseudo_labels(self, weak: Tensor, cams: List[tuple],
                           cls_labels: Tensor, high_thr: Tensor,
                           img_box: Optional[Tensor],
                           source: str) -> List[Tensor]:
        """PAR-refined two-threshold pseudo labels of both students (4.3)."""
        mean, std = self._norm_stats()
        image = denormalize_truncated(weak, mean, std)
        index = 0 if source == 'cam' else 1
        return [
            refine_cams_with_dynamic_thres(
                image,
                cam[index] * cls_labels[:, :, None, None],
                cls_labels,
                high_thr,
                low_thr=self.train_cfg['low_thr'],
                img_box=img_box,
                down_scale=self.train_cfg['down_scale'],
                ignore_index=self.train_cfg['ignore_index'],
                par=self.par) for cam in cams
        ]

    def _filter_labels(self, segs: List[Tensor],
                       labels: List[Tensor]) -> Tuple[List[Tensor], dict]:
        """GMM noise filter on each producer's self-loss (spec 8), fitted
        for every image of both students in one batched call."""
        ignore = self.train_cfg['ignore_index']
        with torch.no_grad():
            ce = torch.cat([
                per_pixel_ce(s.detach().float(), y, ignore)
                for s, y in zip(segs, labels)
            ]).flatten(1)
            flat = torch.cat(labels).flatten(1)
            noisy = gmm_noise_mask(
                ce, flat, ignore_index=ignore, **self.train_cfg['gmm'])
        filtered = filter_noisy_labels(flat, noisy, ignore)
        count = len(labels)
        filtered = filtered.view(count, *labels[0].shape).unbind(0)
        ratios = {}
        for k, (y, mask) in enumerate(
                zip(labels, noisy.view(count, -1).unbind(0)), start=1):
            fg = ((y != 0) & (y != ignore)).sum().clamp(min=1)
            ratios[f'noise_ratio.s{k}'] = mask.sum().float() / fg
        return list(filtered), ratios

    def _seg_losses(self, segs: List[Tensor], targets: List[Tensor],
                    weight: float) -> dict:
        """Balanced CE of each student against its (peer's) labels."""
        ignore = self.train_cfg['ignore_index']
        return {
            f's{k}.loss_seg': weight * self._grouped(
                lambda s, y: balanced_seg_loss(s, y, ignore), seg, target)
            for k, (seg, target) in enumerate(zip(segs, targets), start=1)
        }

    def _reg_losses(self, strong: Tensor, strong_samples: SampleList,
                    segs: List[Tensor], targets: List[Tensor],
                    weight: float) -> dict:
        """Consistency on the strong view over the peer-ignored pixels."""
        homography = self._meta_tensor(strong_samples, 'homography_matrix',
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
            losses[f's{k}.loss_reg'] = weight * self._grouped(
                lambda b, s, t: consistency_loss(
                    b, s, t, self.train_cfg['conf_thr'],
                    self.train_cfg['ignore_index']), back, seg, target)
        return losses

    def _grouped(self, fn, *tensors: Tensor) -> Tensor:
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
    # metainfo helpers
    # ------------------------------------------------------------------
    @staticmethod
    def _meta_tensor(samples: SampleList, key: str, like: Tensor) -> Tensor:
        """Stack a per-sample metainfo array into a tensor on ``like``."""
        missing = [i for i, s in enumerate(samples) if key not in s]
        if missing:
            path = samples[missing[0]].metainfo.get('img_path', '?')
            raise KeyError(
                f'"{key}" is missing from the data samples (first: {path}). '
                f'Add it to the pipeline (PackWSSSInputs packs it).')
        values = [np.asarray(s.metainfo[key]) for s in samples]
        return torch.as_tensor(np.stack(values), device=like.device)

    def _img_box(self, samples: SampleList,
                 like: Tensor) -> Optional[Tensor]:
        if all('img_box' in s for s in samples):
            return self._meta_tensor(samples, 'img_box', like).long()
        return None

    def _image_thresholds(self, cls_labels: Tensor) -> Tensor:
        """Per-image tau_i: the max of the class thresholds over the
        image's present classes (spec 7)."""
        per_class = self.high_thr.to(cls_labels.device)[None].expand_as(
            cls_labels)
        present = cls_labels > 0
        masked = torch.where(present, per_class,
                             torch.full_like(per_class, -1.))
        tau = masked.max(dim=1).values
        # An image without a present class cannot happen in training
        # (the dataset refuses it); fall back to the mean to stay defined.
        return torch.where(tau < 0, per_class.mean(dim=1), tau)

    def _norm_stats(self) -> Tuple[Tensor, Tensor]:
        """Mean and std (255 scale, RGB) used by the data preprocessor."""
        dp = self.data_preprocessor
        dp = getattr(dp, 'data_preprocessor', dp)
        if not getattr(dp, '_enable_normalize', False):
            raise ValueError('DualStudentSegmentor needs a data_preprocessor '
                             'with mean and std (PAR needs raw pixels).')
        return dp.mean.view(-1), dp.std.view(-1)

    # ------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Load a dual checkpoint as is, or duplicate a single student's
        keys (``backbone.*``, ``classifier.*``, ``decode_head.*``, ...) into
        both students, as mmdet's semi-supervised detectors do."""
        single = [
            k for k in list(state_dict)
            if k.startswith(prefix) and k[len(prefix):].split('.')[0] in (
                'backbone', 'classifier', 'aux_classifier', 'decode_head')
        ]
        for key in single:
            rest = key[len(prefix):]
            value = state_dict.pop(key)
            for name in ('student1', 'student2')[:len(self.students)]:
                state_dict.setdefault(f'{prefix}{name}.{rest}', value)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _merged(defaults: dict, overrides: Optional[dict]) -> dict:
    """Copy of ``defaults`` updated one level deep with ``overrides``."""
    cfg = copy.deepcopy(defaults)
    for key, value in (overrides or {}).items():
        if isinstance(cfg.get(key), dict) and isinstance(value, dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def _seg_label_source(schedule: Sequence[Tuple[int, str]],
                      n: int) -> Optional[str]:
    """The CAM ('cam' or 'cam_aux') that makes seg labels at ``n``."""
    source = None
    for first_iter, name in schedule:
        if n >= first_iter:
            source = name
    return source


def _split_branches(inputs, data_samples):
    """``(weak, strong, weak_samples, strong_samples)`` from multi-branch
    or plain inputs (strong is None for plain ones)."""
    if isinstance(inputs, dict):
        return (inputs['weak'], inputs.get('strong'), data_samples['weak'],
                data_samples.get('strong'))
    return inputs, None, data_samples, None
