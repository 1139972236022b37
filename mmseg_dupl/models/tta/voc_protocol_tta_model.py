# Copyright (c) OpenMMLab. All rights reserved.
"""The official DuPL VOC evaluation protocol as an mmseg TTA model."""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

# algorithm.md §10.2 lists (1.0, 1.5, 1.25); the order does not matter for a
# max.
VOC_SCALES = (1.0, 1.25, 1.5)


def scaled_size(height: int, width: int, scale: float) -> Tuple[int, int]:
    """``(int(h * s), int(w * s))``: the reference floors, unlike mmcv's
    ``Resize(scale_factor=s)``, which rounds."""
    return int(height * scale), int(width * scale)


def flip_sum(logits: Tensor, size: Sequence[int]) -> Tensor:
    """Resize the logits of ``[x, flip(x)]`` and add them, un-flipped.

    Args:
        logits (Tensor): ``(2, K, h, w)`` logits of an image and of its
            horizontal flip.
        size (Sequence[int]): Output ``(H, W)``.

    Returns:
        Tensor: ``(1, K, H, W)`` = ``up(l[0]) + flip(up(l[1]))``.
    """
    up = F.interpolate(
        logits, size=tuple(size), mode='bilinear', align_corners=False)
    return up[:1] + up[1:].flip(-1)


@MODELS.register_module()
class VOCProtocolTTAModel(BaseTTAModel):
    """DuPL's official VOC evaluation (algorithm.md §10.2,
    ``eval_seg_voc.py``).

    For each image, at its native resolution (the ``tta_pipeline`` must
    not resize)::

        for s in scales:                        # (1.0, 1.25, 1.5)
            x_s = bilinear(x, (int(h*s), int(w*s)))   # normalised input
            l   = raw logits of [x_s, flip(x_s)]      # decoder resolution
            m_s = up(l[0]) + flip(up(l[1]))           # up: to label size
        logits = max over s of m_s  (element-wise);  pred = argmax

    ``seg_logits`` (``(K, H, W)`` at ``ori_shape``) and ``pred_sem_seg``
    are written to the data samples, so :class:`mmseg.evaluation.IoUMetric`,
    ``--out``, ``--show-dir`` and
    :class:`mmseg_dupl.evaluation.CRFIoUMetric` (the protocol's DenseCRF
    step) work unchanged.

    **Why the scales run inside the model, on one native-resolution view**,
    rather than as mmcv ``TestTimeAug`` views merged in ``merge_preds``
    (as :class:`mmseg.models.SegTTAModel` does): a view's prediction has
    gone through the segmentor's ``predict``, whose logits are resized to
    the input and then to ``ori_shape`` (two bilinear resizes, where the
    reference resizes the decoder output once), and ``Resize`` rounds the
    scaled size and resizes the uint8 image with cv2 where the reference
    floors it and resizes the normalised float tensor. Both change the
    numbers, so the views could only approximate the protocol. Here the
    scaling, flipping and resizing are the reference's torch ops on the
    preprocessed tensor, and the result equals it to float precision.

    Slide inference: with ``model.test_cfg.mode='slide'`` every scaled
    (and flipped) view is predicted with the segmentor's sliding windows
    (``crop_size``, ``stride``); the merge is unchanged.

    Student choice: for a model with ``students`` (``DualStudentSegmentor``)
    the raw logits are those of ``model.test_cfg.student``: ``'s1'``,
    ``'s2'`` or ``'ensemble'`` (mean of both students' logits, algorithm.md
    §15.2).
    Any other mmseg segmentor works too: its ``mode='tensor'`` output (the
    decode head's logits) is used.

    Usage (``tools/test.py --tta`` swaps in ``tta_model`` and
    ``tta_pipeline``)::

        tta_model = dict(type='VOCProtocolTTAModel')
        tta_pipeline = [                 # native resolution, no TestTimeAug
            dict(type='LoadCheckedImageFromFile'),
            dict(type='LoadCheckedAnnotations'),
            dict(type='PackWSSSInputs'),
        ]

    A pipeline wrapped in ``TestTimeAug`` with a single view is accepted;
    several views are refused.

    Args:
        module (dict | nn.Module): The segmentor.
        scales (Sequence[float]): Input scales. Defaults to
            ``(1.0, 1.25, 1.5)``.
        flip (bool): Add the horizontal-flip logits within each scale.
            Defaults to True.
        data_preprocessor (dict, optional): Overrides the segmentor's.
    """

    def __init__(self,
                 module: Union[dict, torch.nn.Module],
                 scales: Sequence[float] = VOC_SCALES,
                 flip: bool = True,
                 data_preprocessor: Union[dict, None] = None) -> None:
        super().__init__(module=module, data_preprocessor=data_preprocessor)
        if not scales or any(float(s) <= 0 for s in scales):
            raise ValueError(f'tta_model.scales must be positive numbers, '
                             f'got {scales}')
        self.scales = tuple(float(s) for s in scales)
        self.flip = flip
        self._check_predict_on()

    def _check_predict_on(self) -> None:
        """The protocol is defined on segmentation logits only."""
        test_cfg = getattr(self.module, 'test_cfg', None) or {}
        predict_on = test_cfg.get('predict_on', 'seg')
        if predict_on != 'seg':
            raise ValueError(
                f'{type(self).__name__} evaluates segmentation logits; '
                f"model.test_cfg.predict_on must be 'seg', got "
                f'{predict_on!r}')

    # ------------------------------------------------------------------
    def test_step(self, data: Union[dict, tuple, list]) -> SampleList:
        """Preprocess one native-resolution batch and run the protocol.

        Args:
            data (dict): A batch from the dataloader: ``inputs`` (list of
                ``(3, H, W)`` uint8 tensors) and ``data_samples``; or the
                same wrapped as a single ``TestTimeAug`` view.

        Returns:
            list[SegDataSample]: The samples with ``seg_logits``
            ``(K, H, W)`` and ``pred_sem_seg`` ``(1, H, W)`` at
            ``ori_shape``.
        """
        data = self._single_view(data)
        data = self.module.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        with torch.no_grad():
            for i, sample in enumerate(samples):
                image = _unpad(inputs[i:i + 1], sample.metainfo)
                logits = self.protocol_logits(
                    image, tuple(sample.metainfo['ori_shape'][:2]))[0]
                if sample.metainfo.get('flip', False):
                    logits = _unflip(logits, sample.metainfo)
                sample.set_data({
                    'seg_logits':
                    PixelData(data=logits),
                    'pred_sem_seg':
                    PixelData(data=logits.argmax(0, True))
                })
        return samples

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Not used: :meth:`test_step` merges inside the model."""
        raise NotImplementedError(
            f'{type(self).__name__} merges scales in test_step()')

    def protocol_logits(self, image: Tensor,
                        out_size: Tuple[int, int]) -> Tensor:
        """algorithm.md §10.2 on one preprocessed image.

        Args:
            image (Tensor): ``(1, 3, H, W)`` normalised image.
            out_size (tuple[int, int]): Label size ``(H_l, W_l)``.

        Returns:
            Tensor: ``(1, K, H_l, W_l)`` max over scales of the flip-summed
            logits.
        """
        merged = None
        for scale in self.scales:
            logits = self.scale_logits(image, scale)
            logits = flip_sum(logits, out_size) if self.flip else \
                _resize(logits, out_size)
            merged = logits if merged is None else torch.max(merged, logits)
        return merged

    def scale_logits(self, image: Tensor, scale: float) -> Tensor:
        """Raw logits of the image at ``scale`` (and of its flip).

        Args:
            image (Tensor): ``(1, 3, H, W)`` normalised image.
            scale (float): Relative size; ``(int(H*s), int(W*s))``.

        Returns:
            Tensor: ``(2, K, h, w)`` ([x_s, flip(x_s)]) with ``flip``,
            else ``(1, K, h, w)``, at the decoder's resolution.
        """
        height, width = image.shape[2:]
        if scale != 1.0:
            image = _resize(image, scaled_size(height, width, scale))
        if self.flip:
            image = torch.cat([image, image.flip(-1)])
        return self.raw_logits(image)

    def raw_logits(self, inputs: Tensor) -> Tensor:
        """Decoder-resolution logits ``(B, K, h, w)`` of the chosen
        student(s) (``test_cfg.student``), or of any mmseg segmentor. With
        ``model.test_cfg.mode='slide'`` each scaled view goes through the
        segmentor's ``slide_inference`` instead (logits at the view's
        resolution, from mmseg's windows)."""
        test_cfg = getattr(self.module, 'test_cfg', None) or {}
        if test_cfg.get('mode', 'whole') == 'slide':
            metas = [dict(img_shape=inputs.shape[2:]) for _ in inputs]
            return self.module.slide_inference(inputs, metas)
        students = getattr(self.module, 'students', None)
        if students is None:
            out = self.module(inputs, mode='tensor')
            return out[0] if isinstance(out, (list, tuple)) else out
        choice = self.module.test_cfg.get('student', 's1')
        picked = dict(
            s1=students[:1], s2=students[1:2], ensemble=students).get(choice)
        if not picked:
            raise ValueError(f'model.test_cfg.student={choice!r} is not '
                             f'available for a model with {len(students)} '
                             'student(s)')
        return torch.stack([s.seg_logits(inputs) for s in picked]).mean(0)

    @staticmethod
    def _single_view(data: Union[dict, tuple, list]) -> dict:
        """Unwrap a one-view ``TestTimeAug`` batch; refuse several."""
        if not isinstance(data, dict):
            raise TypeError('VOC/COCO protocol TTA models expect a dict '
                            f'batch, got {type(data)}')
        samples = data['data_samples']
        if samples and isinstance(samples[0], (list, tuple)):
            if len(samples) != 1:
                raise ValueError(
                    'the protocol TTA models run the scales and flips '
                    'themselves: use a tta_pipeline without TestTimeAug '
                    f'(got {len(samples)} views)')
            return {k: v[0] for k, v in data.items()}
        return data


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    return F.interpolate(
        x, size=tuple(size), mode='bilinear', align_corners=False)


def _unpad(inputs: Tensor, metainfo: dict) -> Tensor:
    """Drop the data preprocessor's padding (``padding_size`` =
    left, right, top, bottom)."""
    left, right, top, bottom = metainfo.get('padding_size', [0] * 4)
    height, width = inputs.shape[2:]
    return inputs[:, :, top:height - bottom, left:width - right]


def _unflip(logits: Tensor, metainfo: dict) -> Tensor:
    """Undo a pipeline flip of ``(K, H, W)`` logits."""
    horizontal = metainfo.get('flip_direction') == 'horizontal'
    return logits.flip(-1 if horizontal else -2)
