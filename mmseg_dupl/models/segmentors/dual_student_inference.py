# Copyright (c) OpenMMLab. All rights reserved.
"""Inference of the dual-student segmentor: segmentation, CAM and pseudo
labels through mmseg's predict/postprocess contract."""
import dataclasses
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..cam.multi_scale import multi_scale_cam
from .batch_meta import meta_tensor
from .student_outputs import StudentOutputsMixin, cam_label_logits


def check_test_mode(test_cfg: Mapping) -> None:
    """``mode`` is ``'whole'`` or ``'slide'``; slide needs ``crop_size`` and
    ``stride`` (an int or ``(h, w)`` of positive ints) and slides the
    segmentation logits only."""
    mode = test_cfg['mode']
    if mode not in ('whole', 'slide'):
        raise ValueError("model.test_cfg.mode must be 'whole' or 'slide', "
                         f'got {mode!r}')
    if mode != 'slide':
        return
    for key in ('crop_size', 'stride'):
        value = test_cfg[key]
        pair = (value, value) if isinstance(value, int) else value
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(v, int) and v > 0 for v in pair)):
            raise ValueError(f"model.test_cfg.mode='slide' needs "
                             f'model.test_cfg.{key} as (h, w) positive ints, '
                             f'got {value!r}')
    if test_cfg['predict_on'] != 'seg':
        raise ValueError(
            "model.test_cfg.mode='slide' slides the segmentation logits; "
            f"predict_on={test_cfg['predict_on']!r} runs on whole images: "
            "set model.test_cfg.mode='whole'")


class DualStudentInferenceMixin(StudentOutputsMixin):
    """``predict``, ``encode_decode`` and ``_forward`` of
    ``DualStudentSegmentor``, by ``test_cfg``:

    - ``student``: ``'s1'``, ``'s2'`` or ``'ensemble'`` (mean of logits or
      CAMs); chosen in the config, never from validation labels.
    - ``mode``: ``'whole'`` or ``'slide'`` (with ``crop_size`` and
      ``stride``, mmseg's sliding windows) for the segmentation logits;
      CAM and pseudo-label predictions run on whole images (the config
      check refuses ``'slide'`` with them).
    - ``predict_on``: ``'seg'`` (segmentation logits), ``'cam'`` /
      ``'cam_aux'`` (CAM labels with the dataset's image labels, bg where
      the best present-class CAM <= ``bkg_thr``, algorithm.md §10.1) or
      ``'pseudo'`` (the PAR-refined two-threshold training labels before
      the GMM filter, 255 where uncertain, from ``pseudo_labels()`` with
      the model's run-time state; a model whose state was never set labels
      with the schedule's end, ``train_cfg.phases.end``, and logs so).
      A pseudo-label prediction also carries ``cam_sem_seg``: the CAM
      labels (as ``'cam'``) of the CAMs those pseudo labels were made from
      (``train_cfg.cam_scales``), so one pass scores both; with equal
      ``train_cfg`` and ``test_cfg`` ``cam_scales`` (the default) they are
      the labels ``'cam'`` predicts.

    It relies on the segmentor's ``students``, ``test_cfg``,
    ``pseudo_labeler``, ``schedule``, ``phase_state``, ``pseudo_labels``
    and ``raw_images``.
    """

    def _predict_students(self) -> Sequence[torch.nn.Module]:
        """The student(s) that ``test_cfg.student`` names."""
        choice = self.test_cfg['student']
        return {
            's1': (self.student1, ),
            's2': (self.student2, ),
            'ensemble': self.students
        }[choice]

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Segmentation logits ``(B, K, H, W)`` at input resolution of the
        student(s) chosen by ``test_cfg.student`` (ensemble: mean)."""
        logits = torch.stack(
            [s.seg_logits(inputs) for s in self._predict_students()]).mean(0)
        return resize(logits, inputs.shape[2:], mode='bilinear',
                      align_corners=self.align_corners)

    def inference(self,
                  inputs: Tensor,
                  batch_img_metas: Optional[List[dict]] = None) -> Tensor:
        """Segmentation logits ``(B, K, H, W)`` at input resolution by
        ``test_cfg.mode``: ``'whole'`` (:meth:`encode_decode` on the whole
        input) or ``'slide'`` (:meth:`slide_inference`)."""
        if self.test_cfg['mode'] == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return self.encode_decode(inputs, batch_img_metas)

    def slide_inference(self,
                        inputs: Tensor,
                        batch_img_metas: Optional[List[dict]] = None
                        ) -> Tensor:
        """mmseg's sliding-window inference (``EncoderDecoder``'s): windows
        of ``test_cfg.crop_size`` ``(h, w)`` every ``test_cfg.stride``
        ``(h, w)`` pixels, the last one of a row or column moved back to
        end at the border (one window of the whole side where the input is
        smaller than the crop), each through :meth:`encode_decode` (so per
        student, or the mean of both for ``'ensemble'``), and the logits
        averaged where windows overlap.

        Args:
            inputs (Tensor): ``(B, 3, H, W)`` preprocessed images.
            batch_img_metas (list[dict], optional): Not needed here; kept
                for mmseg's signature.

        Returns:
            Tensor: ``(B, K, H, W)`` logits.
        """
        h_crop, w_crop = _pair(self.test_cfg['crop_size'])
        h_stride, w_stride = _pair(self.test_cfg['stride'])
        batch, _, h_img, w_img = inputs.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        preds = inputs.new_zeros((batch, self.out_channels, h_img, w_img))
        count = inputs.new_zeros((batch, 1, h_img, w_img))
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2 = min(h_idx * h_stride + h_crop, h_img)
                x2 = min(w_idx * w_stride + w_crop, w_img)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                crop = inputs[:, :, y1:y2, x1:x2]
                preds[:, :, y1:y2, x1:x2] += self.encode_decode(crop, None)
                count[:, :, y1:y2, x1:x2] += 1
        return preds / count

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """``(F_aux, F)`` of student 1."""
        return self.student1.extract_feat(inputs)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Predict with ``test_cfg.predict_on``: ``seg`` (segmentation
        logits), ``cam`` / ``cam_aux`` (CAM labels with the dataset's image
        labels, bg where the best present-class CAM <= ``bkg_thr``) or
        ``pseudo`` (the PAR-refined two-threshold training labels, 255 where
        uncertain). Fills ``pred_sem_seg`` (and ``seg_logits``) at
        ``ori_shape`` so mmseg's IoUMetric, ``--out`` and ``--show-dir``
        work unchanged."""
        if data_samples is None:
            metas = dict(ori_shape=inputs.shape[2:], padding_size=[0] * 4)
            data_samples = [SegDataSample(metainfo=metas) for _ in inputs]
        if self.wants_student_outputs():  # test_cfg.per_student_outputs
            self.add_student_outputs(inputs, data_samples)
        predict_on = self.test_cfg['predict_on']
        if predict_on == 'seg':
            logits = self.inference(inputs, None)
        elif predict_on in ('cam', 'cam_aux'):
            logits = self._cam_logits(inputs, data_samples, predict_on)
        else:
            labels, cam = self._pseudo_predict(inputs, data_samples)
            self._store_labels(
                cam_label_logits(
                    cam, meta_tensor(data_samples, 'cls_labels', inputs),
                    self.test_cfg['bkg_thr']), data_samples, 'cam_sem_seg')
            return self._postprocess_labels(labels, data_samples)
        return self.postprocess_result(logits, data_samples)

    def _cams(self, inputs: Tensor, which: str) -> Tensor:
        """Multi-scale CAM ``(B, C, H, W)`` of the chosen student(s)."""
        index = 0 if which == 'cam' else 1
        cams = [
            multi_scale_cam(s.cams, inputs, self.test_cfg['cam_scales'])[index]
            for s in self._predict_students()
        ]
        return torch.stack(cams).mean(0)

    def _cam_logits(self, inputs: Tensor, data_samples: SampleList,
                    which: str) -> Tensor:
        """CAM scores as K-channel logits whose argmax is algorithm.md §10.1's
        CAM
        label: a constant ``bkg_thr`` background channel (index 0 wins
        ties, matching ``v <= bkg_thr -> bg``) and the CAMs of the present
        classes (absent classes score 0)."""
        cls_labels = meta_tensor(data_samples, 'cls_labels', inputs)
        return cam_label_logits(self._cams(inputs, which), cls_labels,
                                self.test_cfg['bkg_thr'])

    def _pseudo_predict(self, inputs: Tensor,
                        data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """The training-time pseudo labels (before the GMM filter) of the
        chosen student(s) ``(B, H, W)`` (ensemble: of the mean CAM), and
        the labelling stage's multi-scale CAM (``'cam'`` head) of the
        chosen student(s) ``(B, C, H, W)`` (ensemble: mean)."""
        state = dataclasses.replace(self._labelling_state(), gmm_filter=False)
        # one student's labels need its CAMs alone: label with it only
        stage = self.pseudo_labels(inputs, data_samples, state,
                                   self._predict_students())
        if stage.pseudo is None:
            raise RuntimeError(
                "predict_on='pseudo': iteration "
                f'{state.iteration} is in phase A (before '
                'train_cfg.phases.cam), which makes no seg pseudo labels')
        if self.test_cfg['student'] != 'ensemble':
            return stage.pseudo.labels[0], stage.cams[0][0]
        mean_cams = [torch.stack(c).mean(0) for c in zip(*stage.cams)]
        source = 0 if state.label_source == 'cam' else 1
        labels = self.pseudo_labeler.seg_labels(
            self.raw_images(inputs), mean_cams[source], stage.cls_labels,
            stage.image_thresholds, state.low_threshold, stage.img_box)
        return labels, mean_cams[0]

    def _labelling_state(self):
        """The run-time state, or the schedule's end for a model whose
        state was never set (a loaded checkpoint outside training)."""
        if self.train_state.iteration is not None:
            return self.phase_state()
        end = self.schedule.phases['end']
        if not getattr(self, '_end_state_logged', False):
            self._end_state_logged = True
            print_log(
                "predict_on='pseudo': no training iteration set; labelling "
                f'with the thresholds of train_cfg.phases.end ({end}). Call '
                'model.follow_schedule(n) for those of iteration n.',
                logger='current')
        return self.schedule.state(end)

    def _postprocess_labels(self, labels: Tensor,
                            data_samples: SampleList) -> SampleList:
        """Undo padding and flip of label maps, resize (nearest) to
        ``ori_shape`` and store them as ``pred_sem_seg``."""
        height, width = labels.shape[1:]
        for label, sample in zip(labels, data_samples):
            left, right, top, bottom = sample.metainfo.get(
                'padding_size', [0] * 4)
            label = label[top:height - bottom, left:width - right]
            if sample.metainfo.get('flip', False):
                dims = (1, ) if sample.metainfo.get(
                    'flip_direction') == 'horizontal' else (0, )
                label = label.flip(dims=dims)
            label = F.interpolate(
                label[None, None].float(),
                size=tuple(sample.metainfo['ori_shape'][:2]),
                mode='nearest')[0].long()
            sample.set_data(dict(pred_sem_seg=PixelData(data=label)))
        return data_samples

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tuple[Tensor, Tensor]:
        """Raw segmentation logits ``(B, K, h, w)`` of every student."""
        return tuple(s.seg_logits(inputs) for s in self.students)


def _pair(value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``n`` -> ``(n, n)``; a pair unchanged (as ints)."""
    if isinstance(value, int):
        return value, value
    height, width = value
    return int(height), int(width)
