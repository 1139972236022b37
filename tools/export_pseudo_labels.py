# Copyright (c) OpenMMLab. All rights reserved.
"""Export DuPL pseudo labels as mmseg PNG label maps, and print the
command that trains a stage-2 config (configs/stage2/) on them.

Runs a trained DuPL model over a split with the config's test pipeline
(without ``LoadAnnotations``: no mask is read) and the dataset's
image-level labels, and writes one PNG per image at its original size:

- ``--mode pseudo`` (default): the PAR-refined two-threshold training
  labels (``model.test_cfg.predict_on='pseudo'``), 255 where uncertain;
- ``--mode cam``: the CAM labels (``predict_on='cam'``, background where
  the best present-class CAM <= ``test_cfg.bkg_thr``).

It then prints the command that trains stage 2 on them: a config of
``configs/stage2/`` (mmseg's stock DeepLabV3+ R-50 or SegFormer MiT-B0 with
DuPL's GMM noise filter, ``GMMFilteredLoss``, on its decode head loss),
pointed at the labels and the source config's images and val masks through
``--cfg-options`` with absolute paths::

    python tools/export_pseudo_labels.py configs/dupl_vit-b_voc.py CKPT \\
        --split ImageSets/Segmentation/train_aug.txt \\
        --out-dir work_dirs/pseudo_voc
    # prints: .../tools/dist_train.sh .../configs/stage2/<arch>...py 4 \\
    #     --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=...
"""
import argparse
import os
import os.path as osp
import shlex
import sys
from collections import Counter
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import ProgressBar
from mmseg.registry import MODELS
from PIL import Image

# Repository root (the parent of tools/), for ``custom_imports``.
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

IGNORE_INDEX = 255
MODE_TO_PREDICT_ON = dict(pseudo='pseudo', cam='cam')

# --stage2-arch -> stage-2 config (a stock mmseg model + GMMFilteredLoss on
# mmseg's VOC dataset, see configs/stage2/).
STAGE2_CONFIGS = {
    'deeplabv3plus-r50':
    'configs/stage2/deeplabv3plus_r50-d8_4xb4-20k_pseudo-voc12aug-512x512.py',
    'segformer-mit-b0':
    'configs/stage2/segformer_mit-b0_4xb4-20k_pseudo-voc12aug-512x512.py',
}
VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
               'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep',
               'sofa', 'train', 'tvmonitor')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export DuPL pseudo labels (mmseg PNGs) and print the '
        'stage-2 training command')
    parser.add_argument('config', help='DuPL config file')
    parser.add_argument('checkpoint', help='DuPL checkpoint')
    parser.add_argument(
        '--split',
        default='ImageSets/Segmentation/train.txt',
        help='split file (relative to the test dataset data_root)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--mode',
        choices=sorted(MODE_TO_PREDICT_ON),
        default='pseudo',
        help='pseudo: PAR-refined two-threshold labels (255 uncertain); '
        'cam: CAM labels')
    parser.add_argument(
        '--uncertain-as-ignore',
        action=argparse.BooleanOptionalAction,
        default=True,
        help='keep 255 for uncertain pixels (default); with '
        '--no-uncertain-as-ignore they become background (0)')
    parser.add_argument(
        '--png-mode',
        choices=['P', 'L'],
        default='P',
        help="'P' (palette, as VOC's masks) or 'L' (grey) PNGs")
    parser.add_argument(
        '--stage2-arch',
        choices=sorted(STAGE2_CONFIGS),
        default='deeplabv3plus-r50',
        help='stage-2 config whose training command is printed')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device to run the model on')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the DuPL config, key=value')
    return parser.parse_args(argv)


def _drop_annotations(pipeline: list) -> list:
    """The pipeline without ``Load(Checked)Annotations`` (no mask is read)."""
    return [
        t for t in pipeline
        if str(t.get('type', '')).split('.')[-1] not in (
            'LoadAnnotations', 'LoadCheckedAnnotations')
    ]


def export_dataloader_cfg(cfg: Config, split: str) -> dict:
    """The test dataloader over ``split``, batch 1, no masks, in order."""
    loader = cfg.test_dataloader.copy()
    dataset = loader['dataset'].copy()
    dataset['ann_file'] = split
    dataset['test_mode'] = True
    dataset['pipeline'] = _drop_annotations(dataset['pipeline'])
    loader.update(
        dataset=dataset,
        batch_size=1,
        num_workers=0,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False))
    return loader


def build_model(cfg: Config, checkpoint: str, mode: str,
                device: str) -> torch.nn.Module:
    """The DuPL model in eval mode predicting ``mode`` labels."""
    model_cfg = cfg.model.copy()
    test_cfg = dict(model_cfg.get('test_cfg') or {})
    test_cfg['predict_on'] = MODE_TO_PREDICT_ON[mode]
    model_cfg['test_cfg'] = test_cfg
    from mmseg_dupl.models.schedules import trained_iteration
    model = MODELS.build(model_cfg)
    state = load_checkpoint(
        model, checkpoint, map_location='cpu', strict=True)
    # label with the thresholds of the checkpoint's last iteration (its
    # schedule's end for a checkpoint without meta.iter)
    trained = trained_iteration(state)
    model.follow_schedule(model.schedule.phases['end']
                          if trained is None else trained)
    return model.to(device).eval()


def png_palette(dataset_palette: list) -> List[int]:
    """768 palette entries: the dataset's colours, VOC's for the rest."""
    from mmseg_dupl.visualization.palette import voc_colormap
    colours = voc_colormap(256)
    for i, rgb in enumerate(dataset_palette[:256]):
        colours[i] = rgb
    return colours.reshape(-1).tolist()


def save_label(label: np.ndarray, path: str, png_mode: str,
               palette: List[int]) -> None:
    """Write a (H, W) uint8 label map as a PNG."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    img = Image.fromarray(label.astype(np.uint8), mode='L')
    if png_mode == 'P':
        img = img.convert('P')
        img.putpalette(palette)
    img.save(path)


def label_name(img_path: str, img_dir: str, img_suffix: str) -> str:
    """``img_dir/<name><suffix>`` -> ``<name>`` (may contain folders)."""
    rel = osp.relpath(img_path, img_dir)
    if rel.startswith('..'):
        rel = osp.basename(img_path)
    if img_suffix and rel.endswith(img_suffix):
        return rel[:-len(img_suffix)]
    return osp.splitext(rel)[0]


def export_labels(model, dataloader, out_dir: str, keep_ignore: bool,
                  png_mode: str) -> Counter:
    """Predict and write one PNG per image; return the label histogram."""
    dataset = dataloader.dataset
    img_dir = dataset.data_prefix.get('img_path', '')
    palette = png_palette(list(dataset.metainfo.get('palette', [])))
    hist = Counter()
    progress = ProgressBar(len(dataset))
    for data in dataloader:
        with torch.no_grad():
            samples = model.test_step(data)
        for sample in samples:
            label = sample.pred_sem_seg.data[0].cpu().numpy()
            label = label.astype(np.uint8)
            if not keep_ignore:
                label[label == IGNORE_INDEX] = 0
            name = label_name(sample.img_path, img_dir, dataset.img_suffix)
            save_label(label, osp.join(out_dir, name + '.png'), png_mode,
                       palette)
            values, counts = np.unique(label, return_counts=True)
            hist.update(dict(zip(values.tolist(), counts.tolist())))
            progress.update()
    return hist


def _abs_data_root(dataset_cfg: dict) -> str:
    """A dataset config's data_root as an absolute path."""
    return osp.abspath(dataset_cfg.get('data_root') or '.')


def stage2_options(cfg: Config, split: str, label_dir: str) -> List[str]:
    """``--cfg-options`` that point a ``configs/stage2/`` config at the
    exported labels and at the source config's images and val masks, all
    as absolute paths (they run from any working directory)."""
    src = cfg.test_dataloader.dataset
    val = cfg.val_dataloader.dataset
    img_dir = src.get('data_prefix', {}).get('img_path', 'JPEGImages')
    split_path = split if osp.isabs(split) else osp.join(
        _abs_data_root(src), split)
    options = [
        f'train_dataloader.dataset.data_root={_abs_data_root(src)}',
        f'train_dataloader.dataset.ann_file={split_path}',
        f'train_dataloader.dataset.data_prefix.img_path={img_dir}',
        f'train_dataloader.dataset.data_prefix.seg_map_path={label_dir}',
    ]
    val_prefix = val.get('data_prefix', {})
    for loader in ('val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={_abs_data_root(val)}',
            f'{loader}.dataset.ann_file={val.ann_file}',
            f'{loader}.dataset.data_prefix.img_path='
            f'{val_prefix.get("img_path", "JPEGImages")}',
            f'{loader}.dataset.data_prefix.seg_map_path='
            f'{val_prefix.get("seg_map_path", "SegmentationClass")}',
        ]
    return options


def has_voc_class_ids(classes: Sequence[str]) -> bool:
    """Whether the class ids are mmseg's PASCAL VOC ids (or a prefix of
    them, as the toy set's), which the ``configs/stage2/`` configs use."""
    return tuple(classes) == VOC_CLASSES[:len(classes)]


def stage2_command(cfg: Config, args: argparse.Namespace,
                   label_dir: str) -> str:
    """The shell command that trains stage 2 on the exported labels."""
    config = osp.join(REPO_ROOT, STAGE2_CONFIGS[args.stage2_arch])
    options = stage2_options(cfg, args.split, label_dir)
    return ' '.join(
        [shlex.quote(osp.join(REPO_ROOT, 'tools', 'dist_train.sh')),
         shlex.quote(config), '4', '--cfg-options'] +
        [shlex.quote(o) for o in options])


def main(argv: Optional[List[str]] = None) -> Optional[str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    dataloader = Runner.build_dataloader(
        export_dataloader_cfg(cfg, args.split))
    dataset = dataloader.dataset
    if 'classes' not in dataset.metainfo:
        raise ValueError(f'{args.config}: test_dataloader.dataset has no '
                         'metainfo classes; the label PNGs need them')
    model = build_model(cfg, args.checkpoint, args.mode, args.device)
    hist = export_labels(model, dataloader, out_dir,
                         args.uncertain_as_ignore, args.png_mode)
    total = max(sum(hist.values()), 1)
    shares = ', '.join(f'{k}: {v / total:.3f}'
                       for k, v in sorted(hist.items()))
    print(f'\nwrote {len(dataset)} {args.mode} label maps to {out_dir} '
          f'(pixel shares {shares})')
    if not has_voc_class_ids(dataset.metainfo['classes']):
        print(f'{args.config}: no stage-2 config for these classes '
              '(configs/stage2/ holds PASCAL VOC ones); base one on them')
        return None
    command = stage2_command(cfg, args, out_dir)
    print('train stage 2 on them (GPUs, or gloo processes on a CPU host; '
          f'or python tools/train.py with the same options):\n{command}')
    return command


if __name__ == '__main__':
    main()
