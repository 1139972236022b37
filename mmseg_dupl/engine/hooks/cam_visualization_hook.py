# Copyright (c) OpenMMLab. All rights reserved.
"""Draw DuPL's CAMs, pseudo labels and GMM-removed pixels while training."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch import Tensor

from mmseg_dupl.visualization.palette import voc_colormap
from mmseg_dupl.visualization import (cam_to_heatmap, colorize_label,
                                      make_grid, overlay)
from .unwrap import unwrap_model

DATA_BATCH = Optional[Union[dict, tuple, list]]
NOISY_COLOR = (255, 0, 0)


def _numpy(x: Union[Tensor, np.ndarray]) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().float().cpu().numpy() if x.is_floating_point() \
            else x.detach().cpu().numpy()
    return np.asarray(x)


def _fg_cam(cams: np.ndarray, present: Optional[np.ndarray]) -> np.ndarray:
    """Max over the present classes of one image's CAMs (C, H, W)."""
    if present is not None and present.any():
        cams = cams[present]
    return cams.max(axis=0)


def _noisy_panel(image: np.ndarray, noisy: np.ndarray,
                 alpha: float) -> np.ndarray:
    """The image with the GMM-removed pixels painted red."""
    paint = image.copy()
    paint[noisy.astype(bool)] = NOISY_COLOR
    return overlay(image, paint, max(alpha, 0.5))


def draw_dupl_visuals(visuals: Dict[str, object], num_images: int,
                      alpha: float,
                      palette: Sequence[Sequence[int]]) -> np.ndarray:
    """One grid, a row per image, of what the segmentor kept.

    Columns: image | CAM of student k (max over the image's classes,
    over the image) for each k | pseudo label Y_k before the filter for
    each k (255 white) | pixels removed from Y_k by the GMM filter (red)
    for each k. Columns whose entry is absent are left out.

    Args:
        visuals (dict): ``img`` (N, H, W, 3) uint8 RGB; ``cams``: per
            student (N, C, H, W) in [0, 1]; optional ``cls_labels``
            (N, C), ``labels`` per student (N, H, W) and ``noisy`` per
            student (N, H, W) bool.
        num_images (int): Rows drawn at most.
        alpha (float): Heat-map weight of the overlays.
        palette (Sequence): RGB colour per label id.

    Returns:
        np.ndarray: (H', W', 3) uint8 grid.
    """
    for key in ('img', 'cams'):
        if visuals.get(key) is None:
            raise KeyError(f'CAMVisualizationHook: last_visuals lacks {key!r}'
                           ' (see the hook docstring for the format)')
    images = _numpy(visuals['img'])
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError('CAMVisualizationHook: last_visuals["img"] must be '
                         f'(N, H, W, 3) uint8 RGB, got {images.shape}')
    images = images.astype(np.uint8)
    cams = [_numpy(c) for c in visuals['cams']]
    present = visuals.get('cls_labels')
    present = None if present is None else _numpy(present) > 0
    labels = [_numpy(y) for y in visuals.get('labels') or []]
    noisy = [_numpy(m) for m in visuals.get('noisy') or []]
    panels: List[np.ndarray] = []
    rows = min(num_images, len(images))
    for i in range(rows):
        img = images[i]
        row = [img]
        for cam in cams:
            fg = _fg_cam(cam[i], None if present is None else present[i])
            row.append(overlay(img, cam_to_heatmap(fg), alpha))
        row += [colorize_label(y[i], palette) for y in labels]
        row += [_noisy_panel(img, m[i], alpha) for m in noisy]
        panels += row
    return make_grid(panels, ncols=len(panels) // rows)


@HOOKS.register_module()
class CAMVisualizationHook(Hook):
    """Every ``interval`` training iterations, draw the CAMs of both
    students, their pseudo labels and the pixels the GMM filter removed
    for the first ``num_images`` images of the batch, to the runner's
    visualizer backends (local files, TensorBoard, ... as configured).

    The hook cannot see tensors inside ``loss()``, so the model keeps
    them on request. Interface (on the unwrapped model):

    - ``model.<flag_attr>`` (int): the hook sets it to ``num_images``
      before the iterations it draws and to 0 before the others (only on
      the main process, the one that writes images);
    - ``model.<visuals_attr>`` (dict or None): what the model kept during
      the last ``loss()`` call with the flag set, the first ``flag``
      images, detached (any device)::

          img         (N, H, W, 3) uint8 RGB weak view (denormalised)
          cams        per student (N, C, H, W) CAMs in [0, 1]
          cls_labels  (N, C) multi-hot                        (optional)
          labels      per student (N, H, W) pseudo labels before the
                      GMM filter, 255 ignored        (optional: phase B+)
          noisy       per student (N, H, W) bool, removed by the filter
                                                     (optional: phase C)

    After drawing, the hook sets ``<visuals_attr>`` back to None so the
    tensors are freed. The grid (see :func:`draw_dupl_visuals`) goes to
    ``runner.visualizer.add_image(name, grid, step=runner.iter + 1)``;
    ``LocalVisBackend`` writes ``vis_data/vis_image/<name>_<step>.png``.

    Args:
        interval (int): Draw every ``interval`` iterations. Defaults
            to 500.
        num_images (int): Images of the batch drawn. Defaults to 2.
        alpha (float): Heat-map weight in the overlays. Defaults to 0.5.
        name (str): Image name given to the backends. Defaults to
            'dupl_cams'.
        palette (list, optional): Label colours; defaults to the training
            dataset's ``metainfo['palette']``, else the VOC colour map.
        flag_attr (str): Model attribute of the request. Defaults to
            'keep_visuals'.
        visuals_attr (str): Model attribute holding the visuals. Defaults
            to 'last_visuals'.
    """

    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 500,
                 num_images: int = 2,
                 alpha: float = 0.5,
                 name: str = 'dupl_cams',
                 palette: Optional[Sequence[Sequence[int]]] = None,
                 flag_attr: str = 'keep_visuals',
                 visuals_attr: str = 'last_visuals') -> None:
        if interval < 1 or num_images < 1:
            raise ValueError('CAMVisualizationHook: interval and num_images '
                             f'must be >= 1, got {interval}, {num_images}')
        if not 0. <= alpha <= 1.:
            raise ValueError('CAMVisualizationHook: alpha must be in [0, 1],'
                             f' got {alpha}')
        if '/' in name:
            raise ValueError('CAMVisualizationHook: name must not contain '
                             f"'/' (it is a file name), got {name!r}")
        self.interval = interval
        self.num_images = num_images
        self.alpha = alpha
        self.name = name
        self.palette = palette
        self.flag_attr = flag_attr
        self.visuals_attr = visuals_attr

    def before_train(self, runner) -> None:
        """Fail fast on a model without the interface; pick the palette."""
        model = unwrap_model(runner)
        if not hasattr(model, self.flag_attr):
            raise AttributeError(
                f'CAMVisualizationHook: {type(model).__name__} has no '
                f'attribute {self.flag_attr!r} (hook argument flag_attr); '
                'the model must keep visuals on request')
        if self.palette is None:
            self.palette = self._dataset_palette(runner)

    @staticmethod
    def _dataset_palette(runner) -> List[List[int]]:
        try:
            meta = runner.train_dataloader.dataset.metainfo
            palette = list(meta['palette'])
        except (AttributeError, KeyError, TypeError):
            palette = []
        return palette if palette else voc_colormap(256).tolist()

    def _due(self, runner) -> bool:
        return self.every_n_train_iters(runner, self.interval) and \
            is_main_process()

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Request the visuals on the iterations that draw."""
        setattr(unwrap_model(runner), self.flag_attr,
                self.num_images if self._due(runner) else 0)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Draw what the model kept, then release it."""
        if not self._due(runner):
            return
        model = unwrap_model(runner)
        visuals = getattr(model, self.visuals_attr, None)
        setattr(model, self.flag_attr, 0)
        if visuals is None:
            runner.logger.warning(
                f'CAMVisualizationHook: {type(model).__name__}.'
                f'{self.visuals_attr} is None at iteration {runner.iter + 1}'
                '; nothing drawn')
            return
        with torch.no_grad():
            grid = draw_dupl_visuals(visuals, self.num_images, self.alpha,
                                     self.palette or voc_colormap(256))
        runner.visualizer.add_image(self.name, grid, step=runner.iter + 1)
        setattr(model, self.visuals_attr, None)
