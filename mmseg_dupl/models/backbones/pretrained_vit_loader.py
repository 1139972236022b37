# Copyright (c) OpenMMLab. All rights reserved.
"""Load a ViT backbone's pretrained weights from an mmpretrain-format or a
timm-format (the reference's DeiT/ViT) checkpoint."""
from typing import Dict, Tuple

from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader
from torch import Tensor, nn

from mmseg_dupl.utils.checked_load import check_load_report, load_into
from .timm_vit_converter import timm_vit_to_mmpretrain

# Keys only timm's ViT/DeiT names have (mmpretrain: layers.*, projection).
_TIMM_MARKERS = ('blocks.', 'patch_embed.proj.')


def unwrap_state_dict(checkpoint: dict) -> Dict[str, Tensor]:
    """The tensors of a checkpoint: its ``state_dict`` (mmengine) or
    ``model`` (timm/DeiT releases) entry, else the dict itself."""
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def is_timm_vit(state_dict: Dict[str, Tensor]) -> bool:
    """Whether ``state_dict`` uses timm's ViT key names."""
    return any(key.startswith(_TIMM_MARKERS) for key in state_dict)


def backbone_state_dict(state_dict: Dict[str, Tensor], prefix: str,
                        filename: str) -> Tuple[Dict[str, Tensor], str]:
    """The backbone's tensors under mmpretrain's ViT key names.

    Args:
        state_dict (dict): The checkpoint's tensors.
        prefix (str): Prefix of the backbone keys in an mmpretrain-format
            file (``'backbone.'``); ignored for timm files, whose keys are
            bare.
        filename (str): The checkpoint, named in errors.

    Returns:
        tuple[dict, str]: The renamed tensors and the detected format,
        ``'timm'`` or ``'mmpretrain'``.

    Raises:
        KeyError: An mmpretrain-format file without a ``prefix`` key.
    """
    if is_timm_vit(state_dict):
        return timm_vit_to_mmpretrain(state_dict, prefix=''), 'timm'
    if not prefix:
        return dict(state_dict), 'mmpretrain'
    picked = {
        key[len(prefix):]: value
        for key, value in state_dict.items() if key.startswith(prefix)
    }
    if not picked:
        raise KeyError(
            f'{filename}: no key starts with {prefix!r} (init_cfg.prefix) '
            'and the keys are not timm ViT keys either; first keys: '
            f'{list(state_dict)[:5]}')
    return picked, 'mmpretrain'


def load_pretrained_vit(module: nn.Module,
                        checkpoint: str,
                        prefix: str = 'backbone.',
                        map_location: str = 'cpu',
                        allow_partial: bool = False) -> Tuple[int, int]:
    """Load a ViT checkpoint of either format into ``module``, and log the
    format and how many of the module's tensors it filled.

    Args:
        module (nn.Module): An mmpretrain ``VisionTransformer``.
        checkpoint (str): A path or URL (anything mmengine's
            ``CheckpointLoader`` reads).
        prefix (str): Backbone key prefix of mmpretrain-format files.
        map_location (str): Where to load the tensors.
        allow_partial (bool): Only warn when the file leaves tensors of
            ``module`` missing or of another shape; by default that raises
            ``CheckpointMismatchError`` naming them. Defaults to False.

    Returns:
        tuple[int, int]: Tensors loaded, tensors of ``module``.
    """
    loaded = CheckpointLoader.load_checkpoint(
        checkpoint, map_location=map_location, logger='current')
    state, fmt = backbone_state_dict(
        unwrap_state_dict(loaded), prefix, checkpoint)
    if fmt == 'timm':
        print_log(
            f'{checkpoint}: timm-format ViT keys, converted to mmpretrain '
            'names in memory (timm_vit_to_mmpretrain)',
            logger='current')
    report = load_into(module, state)
    check_load_report(report, f'{checkpoint} ({fmt} format)', allow_partial,
                      'backbone.init_cfg.allow_partial=True')
    total = sum(t for _, t in report.loaded.values())
    num_loaded = sum(n for n, _ in report.loaded.values())
    print_log(
        f'{type(module).__name__} backbone: {num_loaded}/{total} tensors '
        f'loaded from {checkpoint} ({fmt} format)',
        logger='current')
    return num_loaded, total
