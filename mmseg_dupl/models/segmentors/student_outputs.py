# Copyright (c) OpenMMLab. All rights reserved.
"""Every student's segmentation, CAM labels and class scores in the data
samples of one predict pass, for ``DualStudentMetric`` (the reference's
in-training validation, algorithm.md §10.1)."""
import torch
from mmengine.structures import PixelData
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList
from torch import Tensor

from ..cam.multi_scale import multi_scale_cam
from .batch_meta import meta_tensor

#: The label maps written per student, in this order.
STUDENT_MAPS = ('seg', 'cam', 'cam_aux')


def student_field(kind: str, k: int) -> str:
    """Name of a per-student data-sample field: ``pred_{kind}_s{k}`` for
    the label maps of ``STUDENT_MAPS`` (PixelData, (1, H, W) at
    ``ori_shape``), ``cls_logits_s{k}`` for ``kind='cls_logits'`` (the
    classifier's (C,) logits)."""
    if kind == 'cls_logits':
        return f'cls_logits_s{k}'
    return f'pred_{kind}_s{k}'


def cam_label_logits(cam: Tensor, cls_labels: Tensor,
                     bkg_thr: float) -> Tensor:
    """K-channel scores whose argmax is the eval CAM label
    (``cam_to_bkg_label``, algorithm.md §10.1): a constant ``bkg_thr``
    channel (index 0 wins ties: ``v <= bkg_thr`` is bg) and the present
    classes' CAMs (absent ones 0). Bilinear resizing keeps the argmax
    equal to the label of the resized CAM.

    Args:
        cam (Tensor): Normalised CAMs, (B, C, H, W).
        cls_labels (Tensor): Multi-hot image labels, (B, C).
        bkg_thr (float): The background threshold.

    Returns:
        Tensor: (B, C + 1, H, W).
    """
    cam = cam * cls_labels.to(cam)[:, :, None, None]
    return torch.cat([torch.full_like(cam[:, :1], bkg_thr), cam], dim=1)


class StudentOutputsMixin:
    """Each student's predictions in the data samples, in the same
    predict pass as the main one (``test_cfg.per_student_outputs``):

    - ``False`` (default): nothing added; ``predict`` as before.
    - ``'val'``: added in ``val_step`` only, i.e. in the runner's
      validation loop (the DuPL configs); ``tools/test.py`` (``test_step``)
      and ``--tta`` are unchanged.
    - ``True``: added in every ``predict`` (e.g. ``tools/test.py`` with a
      ``DualStudentMetric`` test evaluator).

    Per student k (:func:`student_field`): ``pred_seg_s{k}`` (argmax of
    its segmentation logits), ``pred_cam_s{k}`` / ``pred_cam_aux_s{k}``
    (its multi-scale CAM / aux CAM with the image labels, bg where the
    best present-class CAM <= ``test_cfg.bkg_thr``), each at ``ori_shape``
    through mmseg's ``postprocess_result`` (padding, flip, bilinear
    resize, as the main prediction), and ``cls_logits_s{k}`` (C,).

    It relies on the segmentor's ``students``, ``test_cfg`` and
    ``postprocess_result``.
    """

    _in_val_step = False

    def val_step(self, data) -> SampleList:
        """``BaseModel.val_step``; marks the pass as validation so that
        ``per_student_outputs='val'`` applies."""
        self._in_val_step = True
        try:
            return super().val_step(data)
        finally:
            self._in_val_step = False

    def wants_student_outputs(self) -> bool:
        """Whether this ``predict`` adds the per-student outputs."""
        mode = self.test_cfg.get('per_student_outputs', False)
        return mode is True or (mode == 'val' and self._in_val_step)

    @torch.no_grad()
    def add_student_outputs(self, inputs: Tensor,
                            data_samples: SampleList) -> None:
        """Write every student's label maps and class logits into
        ``data_samples`` (in place).

        Args:
            inputs (Tensor): Normalised images, (B, 3, H, W).
            data_samples (list[SegDataSample]): Their samples, with
                ``cls_labels`` metainfo (the CAM labels use the image
                labels, as the reference's validation).
        """
        cls_labels = meta_tensor(data_samples, 'cls_labels', inputs)
        for k, student in enumerate(self.students, start=1):
            out = student(inputs)
            # scale 1.0 from this forward's features (identical numbers)
            scale1 = student.cams_from_features(out['feat_aux'], out['feat'])
            cam, cam_aux = multi_scale_cam(student.cams, inputs,
                                           self.test_cfg['cam_scales'],
                                           scale1)
            bkg_thr = self.test_cfg['bkg_thr']
            maps = dict(
                seg=resize(
                    out['seg'],
                    inputs.shape[2:],
                    mode='bilinear',
                    align_corners=self.align_corners),
                cam=cam_label_logits(cam, cls_labels, bkg_thr),
                cam_aux=cam_label_logits(cam_aux, cls_labels, bkg_thr))
            for kind in STUDENT_MAPS:
                self._store_labels(maps[kind], data_samples,
                                   student_field(kind, k))
            for sample, logits in zip(data_samples, out['cls']):
                sample.set_field(logits.detach(),
                                 student_field('cls_logits', k))

    def _store_labels(self, logits: Tensor, data_samples: SampleList,
                      name: str) -> None:
        """Argmax of ``logits`` (B, K, H, W) at each sample's
        ``ori_shape`` (mmseg's ``postprocess_result``) as ``name``."""
        scratch = [SegDataSample(metainfo=s.metainfo) for s in data_samples]
        scratch = self.postprocess_result(logits, scratch)
        for sample, done in zip(data_samples, scratch):
            sample.set_field(PixelData(data=done.pred_sem_seg.data), name)
