# Copyright (c) OpenMMLab. All rights reserved.
"""Watch the quality of the pseudo labels while training (issue 22)."""
import copy
import dataclasses
import math
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import DATASETS, HOOKS
from torch import Tensor

from mmseg_dupl.evaluation.label_quality import LabelQuality
from mmseg_dupl.models.cam.cam_labels import cam_to_bkg_label
from .unwrap import unwrap_model

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class PseudoLabelMonitorHook(Hook):
    """Every ``interval`` iterations, score the labels training would use
    at that iteration on a fixed subset of training images that carry
    masks, and send the scores to the message hub and every visualizer
    backend (``monitor/<name>``, step = iteration).

    At iteration n (before it runs, after the schedule hooks set the
    model's state for n) and once after the last, with the model in eval
    mode and no gradients, ``model.pseudo_labels(images, samples, state)``
    makes, per student k, the CAMs and the pseudo labels of n (PAR, the
    two thresholds with tau_i, and the GMM filter in phase C), exactly as
    ``loss()`` would on these images (the subset's pipeline, no training
    augmentation). Scores per student (``LabelQuality``, %):

    - ``s{k}.cam_mIoU``: the CAM labels of the eval rule
      (``cam_to_bkg_label``, ``model.test_cfg.bkg_thr``; algorithm.md
      §10.1) made from the training CAMs;
    - ``s{k}.pseudo_mIoU`` / ``s{k}.pseudo_coverage``: the pseudo labels
      before the GMM filter, scored on the pixels they label / the share
      they label; in phase A, where training uses none yet, the labels the
      CAMs would give with the current tau_c;
    - ``s{k}.filtered_mIoU`` / ``s{k}.filtered_coverage``: the same after
      the GMM filter (only while it runs);
    - ``s{k}.over_activation`` and ``s{k}.over_activation.<class>``: the
      share of the pseudo labels (before the filter) of each class that
      lies outside its objects; ``s{k}.cam_over_activation``: the same
      (mean over classes) for the CAM labels;
    - ``feature_cosine`` (two students only, in [-1, 1], not %): the mean
      cosine similarity of the students' final features, per channel over
      the spatial axis (what the discrepancy loss pushes down): whether
      the two students still differ.

    The masks are read by this hook only, from its own dataset; the
    training batches and the loss never see them
    (tests/test_integration/test_no_pixel_labels_in_training.py). The
    hook draws no random numbers, so a run with it trains exactly as a run
    without. Off by default: add it to ``custom_hooks``. Works for any
    model with ``pseudo_labels`` / ``phase_state`` (DuPL and the
    single-student baseline).

    Args:
        interval (int): Iterations between two reports. Defaults to 50.
        num_images (int): Size of the fixed subset (evenly spaced over the
            dataset). Defaults to 16.
        batch_size (int): Images per forward. Defaults to 4.
        dataset (dict, optional): Dataset config of the images with
            masks. Defaults to the training dataset with ``pipeline``.
        pipeline (list[dict], optional): Pipeline of the default dataset;
            it must load the masks and must not flip. Defaults to the
            config's ``val_dataloader.dataset.pipeline`` (DuPL's resizes
            the image as training does and loads the mask).

    Attributes:
        seconds (float): Wall seconds spent scoring so far (logged after
            training: what the monitor cost the run).
    """

    priority = 'LOW'  # after the schedule hooks have set the model's state

    def __init__(self,
                 interval: int = 50,
                 num_images: int = 16,
                 batch_size: int = 4,
                 dataset: Optional[dict] = None,
                 pipeline: Optional[List[dict]] = None) -> None:
        for name, value in (('interval', interval),
                            ('num_images', num_images),
                            ('batch_size', batch_size)):
            if int(value) != value or value < 1:
                raise ValueError(f'PseudoLabelMonitorHook: {name} must be '
                                 f'an int >= 1, got {value!r}')
        if dataset is not None and pipeline is not None:
            raise ValueError('PseudoLabelMonitorHook: give dataset (with '
                             'its pipeline) or pipeline, not both')
        self.interval = int(interval)
        self.num_images = int(num_images)
        self.batch_size = int(batch_size)
        self.dataset = dataset
        self.pipeline = pipeline
        self._batches: List[dict] = []
        self._classes: Sequence[str] = ()
        # Wall seconds spent scoring, so a run can state what the monitor
        # cost (the demo keeps it under 10 % of its training time).
        self.seconds = 0.0

    # ------------------------------------------------------------ hooks
    def before_train(self, runner) -> None:
        """Check the model and load the fixed subset (images and masks)."""
        model = unwrap_model(runner)
        for name in ('pseudo_labels', 'phase_state', 'students'):
            if not hasattr(model, name):
                raise TypeError(
                    f'PseudoLabelMonitorHook: {type(model).__name__} has no '
                    f'{name}; the hook monitors DualStudentSegmentor '
                    'pseudo labels')
        if is_main_process():
            self._load_subset(runner)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        if runner.iter % self.interval == 0:
            self._report(runner)

    def after_train(self, runner) -> None:
        """The final weights (step ``max_iters``), and the monitor's cost."""
        self._report(runner)
        if is_main_process():
            runner.logger.info(f'pseudo-label monitor: {self.seconds:.1f} s '
                               'spent scoring in this run')

    # ------------------------------------------------------------ work
    def _load_subset(self, runner) -> None:
        """``num_images`` evenly spaced images of the dataset, collated."""
        cfg = copy.deepcopy(self.dataset)
        if cfg is None:
            cfg = copy.deepcopy(runner.cfg.train_dataloader.dataset)
            if 'pipeline' not in cfg:
                raise ValueError(
                    'PseudoLabelMonitorHook: train_dataloader.dataset has no '
                    'pipeline (a wrapped dataset?); give the hook dataset=')
            cfg['pipeline'] = copy.deepcopy(
                self.pipeline or self._val_pipeline(runner.cfg))
        dataset = DATASETS.build(cfg)
        count = min(self.num_images, len(dataset))
        indices = np.unique(np.linspace(0, len(dataset) - 1, count).round())
        samples = [dataset[int(i)] for i in indices]
        for i, sample in zip(indices, samples):
            data_sample = sample['data_samples']
            if 'gt_sem_seg' not in data_sample:
                raise ValueError(
                    'PseudoLabelMonitorHook: the subset\'s pipeline loads no '
                    f'mask ({data_sample.metainfo.get("img_path", i)}); add '
                    'LoadCheckedAnnotations to its pipeline')
            if data_sample.metainfo.get('flip', False):
                raise ValueError('PseudoLabelMonitorHook: the subset\'s '
                                 'pipeline must not flip')
        self._batches = [
            pseudo_collate(samples[i:i + self.batch_size])
            for i in range(0, len(samples), self.batch_size)
        ]
        self._classes = dataset.metainfo['classes']

    @staticmethod
    def _val_pipeline(cfg) -> List[dict]:
        """The config's val pipeline, the subset's default."""
        loader = cfg.get('val_dataloader') or {}
        pipeline = (loader.get('dataset') or {}).get('pipeline')
        if not pipeline:
            raise ValueError(
                'PseudoLabelMonitorHook: the config has no '
                'val_dataloader.dataset.pipeline to load the subset with; '
                'give the hook pipeline= (one that loads the masks)')
        return pipeline

    def _report(self, runner) -> None:
        """Score the labels of the current state; send the scalars."""
        if not is_main_process():
            return
        model = unwrap_model(runner)
        start = time.perf_counter()
        scores = self.scores(model)
        self.seconds += time.perf_counter() - start
        runner.visualizer.add_scalars(
            {f'monitor/{k}': v for k, v in scores.items()}, step=runner.iter)
        for key, value in scores.items():
            runner.message_hub.update_scalar(f'monitor/{key}', value)
        brief = '  '.join(f'{k}: {v:.2f}' for k, v in scores.items()
                          if '.over_activation.' not in k)
        runner.logger.info(f'pseudo-label monitor, iteration {runner.iter} '
                           f'({len(self._batches)} batches of train images '
                           f'with masks): {brief}')

    @torch.no_grad()
    def scores(self, model) -> Dict[str, float]:
        """The scores of ``model``'s current state on the subset."""
        state = model.phase_state()
        if state.label_source is None:  # phase A: what the CAMs would give
            state = dataclasses.replace(state, label_source='cam')
        training = model.training
        model.eval()
        try:
            qualities, cosines = self._accumulate(model, state)
        finally:
            model.train(training)
        scores = {}
        for (k, kind), quality in qualities.items():
            for name, value in quality.scores(self._classes).items():
                if name == 'mIoU' or (name == 'coverage' and kind != 'cam'):
                    scores[f's{k}.{kind}_{name}'] = value
                elif kind == 'pseudo' and name.startswith('over_activation'):
                    scores[f's{k}.{name}'] = value
                elif kind == 'cam' and name == 'over_activation':
                    scores[f's{k}.cam_over_activation'] = value
        scores = {k: v for k, v in scores.items() if not math.isnan(v)}
        if cosines:
            scores['feature_cosine'] = round(
                float(torch.cat(cosines).mean()), 4)
        return dict(sorted(scores.items()))

    def _accumulate(self, model, state) -> tuple:
        """``LabelQuality`` per (student, cam / pseudo / filtered), and the
        per-image, per-channel feature cosines of the two students."""
        num_classes = len(self._classes)
        ignore = model.ignore_index
        qualities: Dict[tuple, LabelQuality] = {}
        cosines: List[Tensor] = []
        for batch in self._batches:
            data = model.data_preprocessor(batch, False)
            samples = data['data_samples']
            stage = model.pseudo_labels(data['inputs'], samples, state)
            for k, (cam, _) in enumerate(stage.cams, start=1):
                maps = dict(
                    cam=cam_to_bkg_label(cam, stage.cls_labels,
                                         model.test_cfg['bkg_thr']),
                    pseudo=stage.pseudo.labels[k - 1])
                if stage.pseudo.noisy is not None:
                    maps['filtered'] = stage.pseudo.filtered[k - 1]
                for kind, labels in maps.items():
                    quality = qualities.setdefault(
                        (k, kind), LabelQuality(num_classes, ignore))
                    for label, sample in zip(labels, samples):
                        quality.add(
                            _at_mask_size(label, sample.metainfo),
                            sample.gt_sem_seg.data[0])
            if len(stage.outputs) == 2:
                feats = [o['feat'].flatten(2) for o in stage.outputs]
                cosines.append(
                    F.cosine_similarity(*feats, dim=2).flatten().cpu())
        return qualities, cosines


def _at_mask_size(label: Tensor, meta: dict) -> Tensor:
    """A (H, W) label map of the network input without its padding,
    resized (nearest) to the mask's ``ori_shape``."""
    height, width = label.shape
    left, right, top, bottom = meta.get('padding_size', [0] * 4)
    label = label[top:height - bottom, left:width - right]
    return F.interpolate(
        label[None, None].float(), size=tuple(meta['ori_shape'][:2]),
        mode='nearest')[0, 0].long()
