# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg's IoUMetric on DenseCRF-refined predictions, computed streaming."""
import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Deque, Optional, Sequence, Tuple

import mmcv
import mmengine.fileio as fileio
import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

from ..dense_crf import dense_crf

#: algorithm.md §10.2, the official ``DenseCRF`` parameters
DEFAULT_CRF_CFG = dict(
    n_iter=10, gauss_sxy=1, gauss_compat=1, bi_sxy=121, bi_srgb=5, bi_compat=4)


@METRICS.register_module()
class CRFIoUMetric(IoUMetric):
    """:class:`mmseg.evaluation.IoUMetric` of DenseCRF-refined predictions.

    DenseCRF (:func:`mmseg_dupl.evaluation.dense_crf`, algorithm.md §10.2) as
    an
    option of the test config: for every data sample, ``process()`` takes
    the model's ``seg_logits`` ``(K, H, W)`` at ``ori_shape`` (set by every
    mmseg segmentor's ``predict`` and by the protocol TTA models) and the
    image read from ``img_path`` (RGB uint8, resized to the logits' size
    if needed), and submits the CRF to a pool of worker processes. Results
    are collected in submission order into IoUMetric's intersect/union
    statistics (and PNGs with ``output_dir``), so no per-image logit file
    is written and memory stays flat: at most ``max_pending`` images are in
    flight; past that, ``process()`` waits for the oldest.

    The queue is drained in :meth:`evaluate`, before the results are
    gathered across ranks (``compute_metrics`` runs after the gather, which
    would be too late in distributed testing); ``compute_metrics`` then
    scores as IoUMetric does. ``output_dir`` / ``format_only`` behave as in
    IoUMetric (the PNGs are the CRF labels), so ``tools/test.py --out DIR``
    writes CRF predictions.

    Usage::

        tools/test.py CONFIG CKPT --cfg-options \\
            test_evaluator.type=CRFIoUMetric test_evaluator.num_workers=2

        # with the official VOC protocol (multi-scale + flip, then CRF)
        tools/test.py CONFIG CKPT --tta --cfg-options \\
            tta_model.type=VOCProtocolTTAModel \\
            test_evaluator.type=CRFIoUMetric test_evaluator.num_workers=8

    Args:
        num_workers (int): CRF worker processes; 0 runs the CRF inline in
            the test loop. Defaults to 0.
        max_pending (int, optional): Images in flight at most. Defaults to
            ``2 * num_workers``.
        crf_cfg (dict, optional): Overrides of :data:`DEFAULT_CRF_CFG`
            (``dense_crf`` keyword arguments).
        mp_context (str, optional): ``multiprocessing`` start method of the
            pool ('fork', 'spawn', 'forkserver'). Defaults to None (the
            platform default).
        backend_args (dict, optional): File backend to read ``img_path``.
        **kwargs: :class:`IoUMetric` arguments (``iou_metrics``,
            ``ignore_index``, ``output_dir``, ``format_only``, ``prefix``,
            ...).
    """

    def __init__(self,
                 num_workers: int = 0,
                 max_pending: Optional[int] = None,
                 crf_cfg: Optional[dict] = None,
                 mp_context: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if int(num_workers) < 0:
            raise ValueError('test_evaluator.num_workers must be >= 0, got '
                             f'{num_workers}')
        unknown = set(crf_cfg or {}) - set(DEFAULT_CRF_CFG)
        if unknown:
            raise ValueError(f'test_evaluator.crf_cfg: unknown keys '
                             f'{sorted(unknown)}; known: '
                             f'{sorted(DEFAULT_CRF_CFG)}')
        self.num_workers = int(num_workers)
        self.max_pending = max(1, max_pending or 2 * self.num_workers)
        self.crf_cfg = {**DEFAULT_CRF_CFG, **(crf_cfg or {})}
        self.mp_context = mp_context
        self.backend_args = backend_args
        self._executor: Optional[ProcessPoolExecutor] = None
        self._pending: Deque[Tuple[Future, dict]] = deque()

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Submit the CRF of every sample; score the finished ones.

        Args:
            data_batch (dict): A batch from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs with
                ``seg_logits`` ``(K, H, W)``, ``img_path`` and, unless
                ``format_only``, ``gt_sem_seg``.
        """
        for sample in data_samples:
            logits = self._logits(sample)
            image = self._image(sample['img_path'], logits.shape[1:])
            light = {
                k: v
                for k, v in sample.items()
                if k not in ('seg_logits', 'pred_sem_seg')
            }
            if self.num_workers == 0:
                future: Future = Future()
                future.set_result(dense_crf(image, logits, **self.crf_cfg))
            else:
                future = self._get_executor().submit(dense_crf, image, logits,
                                                     **self.crf_cfg)
            self._pending.append((future, light))
            while len(self._pending) > self.max_pending:
                self._finish_oldest()

    def evaluate(self, size: int) -> dict:
        """Drain the CRF queue, then evaluate as IoUMetric."""
        self._drain()
        return super().evaluate(size)

    def compute_metrics(self, results: list) -> dict:
        """IoUMetric's metrics (the queue is already empty here)."""
        self._drain()
        return super().compute_metrics(results)

    # ------------------------------------------------------------------
    def _logits(self, sample: dict) -> np.ndarray:
        """``(K, H, W)`` float32 logits of a sample, or a clear error."""
        if 'seg_logits' not in sample:
            raise KeyError(
                f'CRFIoUMetric: no seg_logits in the prediction of '
                f"{sample.get('img_path', '<unknown>')}; the model must "
                "predict logits (model.test_cfg.predict_on='seg' or 'cam')")
        logits = sample['seg_logits']['data']
        if isinstance(logits, torch.Tensor):
            logits = logits.detach().float().cpu().numpy()
        return np.ascontiguousarray(logits, dtype=np.float32)

    def _image(self, img_path: str, size: Tuple[int, int]) -> np.ndarray:
        """RGB uint8 image of ``img_path`` at ``size`` (H, W)."""
        try:
            data = fileio.get(img_path, backend_args=self.backend_args)
            image = mmcv.imfrombytes(data, flag='color', channel_order='rgb')
        except Exception as err:
            raise OSError(f'CRFIoUMetric: cannot read {img_path}: '
                          f'{err}') from err
        if image is None:
            raise OSError(f'CRFIoUMetric: cannot decode {img_path}')
        if image.shape[:2] != tuple(size):
            # The logits are at ori_shape: bring the image there.
            image = mmcv.imresize(
                image, (int(size[1]), int(size[0])), interpolation='bilinear')
        return np.ascontiguousarray(image, dtype=np.uint8)

    def _get_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context(self.mp_context) \
                if self.mp_context else None
            self._executor = ProcessPoolExecutor(
                max_workers=self.num_workers, mp_context=context)
        return self._executor

    def _finish_oldest(self) -> None:
        """Wait for the oldest CRF and score it with IoUMetric."""
        future, light = self._pending.popleft()
        try:
            labels = future.result()
        except Exception as err:
            raise RuntimeError(f"CRFIoUMetric: DenseCRF failed on "
                               f"{light.get('img_path')}: {err}") from err
        light['pred_sem_seg'] = dict(data=torch.from_numpy(labels)[None])
        super().process({}, [light])

    def _drain(self) -> None:
        """Finish every pending CRF and release the worker processes."""
        while self._pending:
            self._finish_oldest()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
