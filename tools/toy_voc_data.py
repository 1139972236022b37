# Copyright (c) OpenMMLab. All rights reserved.
"""A small synthetic dataset in the Pascal VOC layout, for smoke tests.

Demo and test data, not product: it lives in ``tools/`` (its CLI is
``tools/make_toy_voc.py``; the tests put ``tools/`` on ``sys.path``) and no
module of the installed package imports it.

``make_toy_voc`` writes::

    out_dir/
      JPEGImages/<name>.jpg              train, val and test images
      SegmentationClass/<name>.png       'P' mode masks (train and val only)
      ImageSets/Segmentation/{train,val,test}.txt
      cls_labels_onehot.npy              official label format, train + val
      toy_voc_meta.json                  classes, palette, arguments, stats

Masks hold 0 (background), 1..C (``TOY_CLASSES[1:]``) and 255 on a thin
(about 2 px) band along every object boundary, like VOC's ignore border.
Test images have no masks, like VOC test.

The scenes are built to be hard for a CAM baseline, so that the weakly
supervised pipeline has something to fix:

* five foreground classes (the first five VOC classes) with distinct shapes
  (top-view plane, two-wheeled frame, bird, sailing boat, bottle) but
  overlapping colours (blue birds and bottles against blue water and sky,
  green bottles on grass, white planes against clouds, brown hulls, birds
  and wooden floors);
* per-object textures and several textured background kinds;
* 1-3 objects per image (repeats allowed), 40-90 % of the short side,
  rotated, with occlusion between objects;
* image sides drawn from ``size_range`` (96-192 px by default), so some
  images are smaller than a 128 px crop;
* a co-occurrence bias, the classic CAM trap: an image with a boat gets the
  ``water`` background with probability ``boat_on_water`` (0.9), and an
  image without one only with ``water_without_boat`` (0.05). A classifier
  can then score 'boat' from the water, and its CAM spills onto the water.

Everything derives from one ``np.random.Generator(seed)``, and PIL encodes
deterministically, so the same arguments give the same bytes.
"""
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mmseg_dupl.datasets.cls_labels import (cls_labels_from_mask,
                                            write_cls_labels)
from mmseg_dupl.visualization.palette import voc_colormap

TOY_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle')
TOY_PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
               [0, 0, 128], [128, 0, 128]]
BACKGROUND_KINDS = ('grass', 'sky', 'water', 'indoor', 'road')
CLS_LABEL_FILE = 'cls_labels_onehot.npy'
IGNORE_INDEX = 255

_BOAT = TOY_CLASSES.index('boat')
_NUM_OBJECTS_P = (0.45, 0.35, 0.20)  # P(1), P(2), P(3) objects


# ---------------------------------------------------------------- textures
def _smooth_noise(rng: np.random.Generator, h: int, w: int,
                  cell: float) -> np.ndarray:
    """Value noise in [0, 1], ``(h, w)`` float32, feature size ~``cell``."""
    gh, gw = int(h / cell) + 2, int(w / cell) + 2
    grid = rng.random((gh, gw)).astype(np.float32)
    img = Image.fromarray(grid).resize((w, h), Image.BICUBIC)
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


def _blend(base: np.ndarray, colour: Sequence[float],
           alpha: np.ndarray) -> np.ndarray:
    """``base * (1 - alpha) + colour * alpha``, alpha ``(h, w)``."""
    a = alpha[..., None]
    return base * (1.0 - a) + np.asarray(colour, np.float32) * a


def _background(rng: np.random.Generator, kind: str, h: int,
                w: int) -> np.ndarray:
    """A textured background of one kind, float32 ``(h, w, 3)`` in 0..255."""
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    fine = rng.normal(0.0, 8.0, (h, w, 1)).astype(np.float32)
    if kind == 'grass':
        base = np.array([70, 135, 55], np.float32) * rng.uniform(0.8, 1.2)
        blades = _smooth_noise(rng, h // 4 + 1, w, 2.0)
        blades = np.asarray(Image.fromarray(blades).resize((w, h)))
        shade = 0.6 + 0.4 * _smooth_noise(rng, h, w, 20) + 0.3 * blades
        img = base * shade[..., None]
    elif kind == 'sky':
        top = np.array([70, 130, 220], np.float32)
        bottom = np.array([175, 205, 245], np.float32)
        img = np.broadcast_to(top + (bottom - top) * yy[..., None],
                              (h, w, 3)).copy()
        clouds = np.clip((_smooth_noise(rng, h, w, 28) - 0.55) * 4, 0, 1)
        img = _blend(img, (240, 240, 245), clouds)
    elif kind == 'water':
        base = np.array([30, 85, 135], np.float32) * rng.uniform(0.8, 1.2)
        period = rng.uniform(6.0, 14.0)
        phase = 4.0 * _smooth_noise(rng, h, w, 24) + 0.05 * xx
        waves = np.sin(2 * np.pi * yy * h / period + phase)
        img = base * (0.85 + 0.25 * waves[..., None])
        glint = (rng.random((h, w)) > 0.985) & (waves > 0.5)
        img = _blend(img, (225, 235, 245), glint.astype(np.float32))
    elif kind == 'indoor':
        wall = rng.uniform(150, 225, 3).astype(np.float32)
        img = np.broadcast_to(wall, (h, w, 3)).copy()
        step = int(rng.integers(10, 22))
        lines = ((np.arange(h)[:, None] % step == 0)
                 | (np.arange(w)[None, :] % step == 0))
        img = _blend(img, wall * 0.7, lines.astype(np.float32))
        floor = yy[:, 0] > rng.uniform(0.6, 0.8)
        grain = 0.8 + 0.2 * np.sin(yy * h * 1.7 + 3 * _smooth_noise(
            rng, h, w, 12))
        wood = np.array([125, 80, 40], np.float32) * grain[..., None]
        img[floor] = wood[floor]
    elif kind == 'road':
        img = np.full((h, w, 3), rng.uniform(90, 130), np.float32)
        img *= (0.8 + 0.4 * _smooth_noise(rng, h, w, 10))[..., None]
        fine = rng.normal(0.0, 18.0, (h, w, 1)).astype(np.float32)
        dash = (np.abs(xx - w * rng.uniform(0.3, 0.7)) < 2) & (
            (np.arange(h)[:, None] // 12) % 2 == 0)
        img = _blend(img, (230, 200, 60), dash.astype(np.float32))
    else:
        raise ValueError(f'unknown background kind {kind!r}')
    return img + fine


# ----------------------------------------------------------------- objects
def _ellipse(cx: float, cy: float, rx: float, ry: float,
             n: int = 24) -> List[Tuple[float, float]]:
    """Polygon approximation of an axis-aligned ellipse (local units)."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def _rect(x0: float, y0: float, x1: float,
          y1: float) -> List[Tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _choice(rng: np.random.Generator, options: Sequence) -> object:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, rgb: Sequence[int]) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.normal(0, 12, 3), 0,
                   255)


def _class_design(name: str, rng: np.random.Generator) -> dict:
    """Parts (in units of the object size, centred at 0), part colours,
    texture kind and allowed rotation for one object of class ``name``.

    A part is ``('poly', points, colour_idx)``,
    ``('line', p0, p1, width, colour_idx)`` or
    ``('ring', centre, radius, width, colour_idx)``.
    """
    if name == 'aeroplane':
        wing = [(0.08, 0.0), (-0.12, 0.0), (-0.22, 0.48), (-0.08, 0.48)]
        tail = [(-0.36, 0.0), (-0.46, 0.0), (-0.52, 0.17), (-0.44, 0.17)]
        mirror = [[(x, -y) for x, y in p] for p in (wing, tail)]
        parts = [('poly', _ellipse(0.0, 0.0, 0.5, 0.075), 0)]
        parts += [('poly', p, 0) for p in (wing, tail, *mirror)]
        colours = [_choice(rng, [(205, 205, 210), (240, 240, 240),
                                 (200, 60, 50), (170, 180, 195)])]
        return dict(parts=parts, colours=colours, texture='metal',
                    max_rot=180)
    if name == 'bicycle':
        rear, front = (-0.3, 0.15), (0.3, 0.15)
        seat, crank, bar = (-0.08, -0.18), (0.0, 0.15), (0.22, -0.25)
        parts = [('ring', rear, 0.2, 0.05, 1), ('ring', front, 0.2, 0.05, 1)]
        parts += [('line', a, b, 0.045, 0)
                  for a, b in ((rear, seat), (seat, crank), (crank, rear),
                               (seat, bar), (bar, front), (crank, bar))]
        colours = [_choice(rng, [(200, 30, 30), (30, 60, 200),
                                 (40, 160, 60), (230, 200, 40)]),
                   (35, 35, 35)]
        return dict(parts=parts, colours=colours, texture='plain',
                    max_rot=15)
    if name == 'bird':
        wing = [(-0.2, -0.05), (0.15, -0.05), (-0.05, 0.12), (-0.3, 0.1)]
        parts = [('poly', _ellipse(0.0, 0.0, 0.35, 0.2), 0),
                 ('poly', _ellipse(0.33, -0.15, 0.13, 0.12), 0),
                 ('poly', [(-0.3, 0.0), (-0.58, -0.12), (-0.58, 0.12)], 0),
                 ('poly', [(0.44, -0.19), (0.62, -0.13), (0.44, -0.09)], 1),
                 ('poly', wing, 2)]
        body = _choice(rng, [(120, 80, 40), (60, 95, 165), (35, 35, 40),
                             (220, 190, 60)])
        colours = [body, (235, 140, 30), np.asarray(body) * 0.6]
        return dict(parts=parts, colours=colours, texture='speckle',
                    max_rot=20)
    if name == 'boat':
        hull = [(-0.5, 0.1), (0.5, 0.1), (0.36, 0.35), (-0.36, 0.35)]
        parts = [('poly', hull, 0),
                 ('line', (0.0, 0.1), (0.0, -0.5), 0.035, 1),
                 ('poly', [(0.03, -0.46), (0.03, 0.06), (0.38, 0.06)], 2)]
        colours = [_choice(rng, [(120, 75, 35), (170, 40, 35),
                                 (230, 230, 225), (35, 55, 110)]),
                   (60, 45, 30), (245, 245, 240)]
        return dict(parts=parts, colours=colours, texture='planks',
                    max_rot=10)
    if name == 'bottle':
        shoulder = [(-0.15, -0.1), (0.15, -0.1), (0.06, -0.3), (-0.06, -0.3)]
        parts = [('poly', _rect(-0.15, -0.1, 0.15, 0.5), 0),
                 ('poly', shoulder, 0),
                 ('poly', _rect(-0.06, -0.45, 0.06, -0.29), 0),
                 ('poly', _rect(-0.07, -0.5, 0.07, -0.43), 1),
                 ('poly', _rect(-0.15, 0.08, 0.15, 0.3), 2)]
        colours = [_choice(rng, [(40, 115, 50), (100, 60, 20),
                                 (50, 85, 160), (175, 200, 200)]),
                   _choice(rng, [(200, 170, 40), (30, 30, 30)]),
                   _choice(rng, [(235, 225, 200), (200, 40, 40)])]
        return dict(parts=parts, colours=colours, texture='glass',
                    max_rot=25)
    raise ValueError(f'unknown toy class {name!r}')


def _place(points, centre, size: float, angle: float,
           flip: bool) -> List[Tuple[float, float]]:
    """Map local points to pixel coordinates (flip, rotate, scale, move)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2) * size
    if flip:
        pts[:, 0] = -pts[:, 0]
    c, s = np.cos(angle), np.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]]) + np.asarray(centre)
    return [tuple(p) for p in pts]


def _draw_parts(design: dict, h: int, w: int, centre, size: float,
                angle: float, flip: bool) -> np.ndarray:
    """Rasterise the parts into a map of ``colour_idx + 1`` (0 = none)."""
    canvas = Image.new('L', (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for part in design['parts']:
        kind, idx = part[0], part[-1] + 1
        if kind == 'poly':
            draw.polygon(_place(part[1], centre, size, angle, flip),
                         fill=idx)
        elif kind == 'line':
            p0, p1 = _place([part[1], part[2]], centre, size, angle, flip)
            width = max(4, int(round(part[3] * size)))
            draw.line([p0, p1], fill=idx, width=width)
        else:  # ring
            (cx, cy), = _place([part[1]], centre, size, angle, flip)
            r = part[2] * size
            width = max(4, int(round(part[3] * size)))
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=idx,
                         width=width)
    return np.asarray(canvas)


def _texture(rng: np.random.Generator, kind: str, h: int, w: int,
             centre, size: float, angle: float) -> np.ndarray:
    """Multiplicative shading ``(h, w)`` in the object's own frame."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = xx - centre[0], yy - centre[1]
    u = (dx * c + dy * s) / size  # along the object
    v = (-dx * s + dy * c) / size  # across the object
    noise = _smooth_noise(rng, h, w, 5)
    if kind == 'metal':
        return 0.85 + 0.25 * np.exp(-(v / 0.04)**2) + 0.1 * noise
    if kind == 'speckle':
        dots = (rng.random((h, w)) > 0.9).astype(np.float32)
        return 0.8 + 0.3 * noise - 0.35 * dots
    if kind == 'planks':
        return 0.8 + 0.15 * np.sign(np.sin(v * 40.0)) + 0.1 * noise
    if kind == 'glass':
        return 0.75 + 0.5 * np.exp(-((u + 0.07) / 0.04)**2) + 0.1 * noise
    return 0.9 + 0.2 * noise  # plain


def _render_object(rng: np.random.Generator, cls_id: int, h: int,
                   w: int) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one object: returns its mask ``(h, w)`` bool and colours."""
    design = _class_design(TOY_CLASSES[cls_id], rng)
    size = rng.uniform(0.4, 0.9) * min(h, w)
    centre = (rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h)
    angle = np.deg2rad(rng.uniform(-1, 1) * design['max_rot'])
    flip = bool(rng.random() < 0.5)
    parts = _draw_parts(design, h, w, centre, size, angle, flip)
    colours = np.stack(
        [np.zeros(3, np.float32)] +
        [_jitter(rng, col) for col in design['colours']])
    shade = _texture(rng, design['texture'], h, w, centre, size, angle)
    rgb = colours[parts] * shade[..., None]
    return parts > 0, rgb


# ------------------------------------------------------------------ scenes
def sample_scene_spec(rng: np.random.Generator, boat_on_water: float,
                      water_without_boat: float) -> Tuple[List[int], str]:
    """Draw the object classes and the background kind of one scene.

    Returns:
        Tuple[List[int], str]: class ids (1..C, drawing order) and the
        background kind (one of ``BACKGROUND_KINDS``).
    """
    num = 1 + int(rng.choice(len(_NUM_OBJECTS_P), p=_NUM_OBJECTS_P))
    classes = [int(c) for c in rng.integers(1, len(TOY_CLASSES), num)]
    p_water = boat_on_water if _BOAT in classes else water_without_boat
    others = [k for k in BACKGROUND_KINDS if k != 'water']
    kind = 'water' if rng.random() < p_water else str(_choice(rng, others))
    return classes, kind


def ignore_border(label: np.ndarray, ignore_index: int = IGNORE_INDEX
                  ) -> np.ndarray:
    """Set both pixels of every 4-neighbour pair with different labels to
    ``ignore_index`` (a ~2 px band on every boundary, like VOC's).

    Args:
        label (np.ndarray): ``(H, W)`` uint8 class ids.
        ignore_index (int): Value written on the band. Defaults to 255.

    Returns:
        np.ndarray: a new ``(H, W)`` uint8 label map.
    """
    edge = np.zeros(label.shape, dtype=bool)
    dv = label[1:, :] != label[:-1, :]
    dh = label[:, 1:] != label[:, :-1]
    edge[1:, :] |= dv
    edge[:-1, :] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    out = label.copy()
    out[edge] = ignore_index
    return out


def make_scene(rng: np.random.Generator, h: int, w: int,
               boat_on_water: float = 0.9,
               water_without_boat: float = 0.05) -> dict:
    """Render one scene.

    Args:
        rng (np.random.Generator): Source of all randomness.
        h (int): Image height.
        w (int): Image width.
        boat_on_water (float): P(water background | a boat is drawn).
        water_without_boat (float): P(water background | no boat).

    Returns:
        dict: ``img`` uint8 ``(h, w, 3)`` RGB, ``label`` uint8 ``(h, w)``
        (0..C and 255 on boundaries), ``background`` (kind) and ``drawn``
        (class ids in drawing order; later ones occlude earlier ones) and
        ``occluded_pixels`` (object pixels painted over by a later one).
    """
    while True:
        classes, kind = sample_scene_spec(rng, boat_on_water,
                                          water_without_boat)
        img = _background(rng, kind, h, w)
        label = np.zeros((h, w), dtype=np.uint8)
        occluded = 0
        for cls_id in classes:
            mask, rgb = _render_object(rng, cls_id, h, w)
            occluded += int(np.sum(mask & (label > 0)))
            img[mask] = rgb[mask]
            label[mask] = cls_id
        label = ignore_border(label)
        # Guard (never hit with the default sizes): every scene must keep
        # a visible foreground class, or it could not train a WSSS model.
        if np.any((label > 0) & (label < IGNORE_INDEX)):
            break
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    return dict(img=np.asarray(pil), label=label, background=kind,
                drawn=classes, occluded_pixels=occluded)


# --------------------------------------------------------------- writing
def _save_mask(label: np.ndarray, path: str) -> None:
    """Save a label map as a VOC-style 'P' PNG with the VOC palette."""
    h, w = label.shape
    png = Image.frombytes('P', (w, h), np.ascontiguousarray(label).tobytes())
    png.putpalette(voc_colormap().flatten().tolist())
    png.save(path)


def _prepare_out_dir(out_dir: str, overwrite: bool) -> None:
    """Create the VOC folders; refuse to mix with an earlier dataset."""
    managed = ['JPEGImages', 'SegmentationClass', 'ImageSets']
    existing = [d for d in managed if osp.exists(osp.join(out_dir, d))]
    if existing and not overwrite:
        raise FileExistsError(
            f'{out_dir} already holds {existing}; pass overwrite=True '
            '(--overwrite) to regenerate the toy dataset there')
    for d in existing:
        shutil.rmtree(osp.join(out_dir, d))
    for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(out_dir, d), exist_ok=True)


def _dir_bytes(path: str) -> int:
    return sum(
        osp.getsize(osp.join(root, f)) for root, _, files in os.walk(path)
        for f in files)


def make_toy_voc(out_dir: str,
                 num_train: int = 400,
                 num_val: int = 100,
                 num_test: int = 20,
                 seed: int = 0,
                 size_range: Tuple[int, int] = (96, 192),
                 boat_on_water: float = 0.9,
                 water_without_boat: float = 0.05,
                 jpeg_quality: int = 90,
                 overwrite: bool = False) -> Dict:
    """Generate the toy VOC-layout dataset (see the module docstring).

    Args:
        out_dir (str): Output folder (created).
        num_train (int): Training images. Defaults to 400.
        num_val (int): Validation images (with masks). Defaults to 100.
        num_test (int): Test images (no masks). Defaults to 20.
        seed (int): Seed of the single random generator. Defaults to 0.
        size_range (Tuple[int, int]): Inclusive range of each image side,
            drawn independently for height and width. Defaults to
            (96, 192).
        boat_on_water (float): P(water | boat in the image). Defaults to
            0.9.
        water_without_boat (float): P(water | no boat). Defaults to 0.05.
        jpeg_quality (int): JPEG quality. Defaults to 90.
        overwrite (bool): Replace an earlier dataset in ``out_dir``.
            Defaults to False (raise ``FileExistsError``).

    Returns:
        dict: Summary (counts per split, images per class, background
        kinds, the bias statistics, bytes on disk).
    """
    lo, hi = size_range
    if not 16 <= lo <= hi:
        raise ValueError(f'size_range must satisfy 16 <= lo <= hi, got '
                         f'{size_range}')
    _prepare_out_dir(out_dir, overwrite)
    rng = np.random.default_rng(seed)
    splits = dict(train=num_train, val=num_val, test=num_test)
    labels, stats = {}, _new_stats()
    for split, count in splits.items():
        names = [f'{split}_{i:05d}' for i in range(count)]
        for name in names:
            h, w = (int(v) for v in rng.integers(lo, hi + 1, 2))
            scene = make_scene(rng, h, w, boat_on_water, water_without_boat)
            Image.fromarray(scene['img']).save(
                osp.join(out_dir, 'JPEGImages', name + '.jpg'),
                quality=jpeg_quality)
            vec = cls_labels_from_mask(scene['label'], len(TOY_CLASSES) - 1)
            if split != 'test':
                _save_mask(scene['label'],
                           osp.join(out_dir, 'SegmentationClass',
                                    name + '.png'))
                labels[name] = vec
            _update_stats(stats, split, scene, vec)
        with open(osp.join(out_dir, 'ImageSets', 'Segmentation',
                           split + '.txt'), 'w') as f:
            f.write(''.join(n + '\n' for n in names))
    write_cls_labels(labels, osp.join(out_dir, CLS_LABEL_FILE))
    summary = _finish_stats(stats, splits)
    summary.update(
        classes=list(TOY_CLASSES), palette=TOY_PALETTE, seed=seed,
        size_range=[lo, hi], cls_label_file=CLS_LABEL_FILE)
    with open(osp.join(out_dir, 'toy_voc_meta.json'), 'w') as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    summary['bytes_on_disk'] = _dir_bytes(out_dir)
    summary['out_dir'] = osp.abspath(out_dir)
    return summary


def _new_stats() -> dict:
    return dict(images_per_class={}, backgrounds={}, boat=0, boat_water=0,
                water=0, small=0, occluded=0, fg_pixels=0.0, ignore_pixels=0.0,
                pixels=0.0)


def _update_stats(stats: dict, split: str, scene: dict,
                  vec: np.ndarray) -> None:
    """Accumulate per-split class counts and the bias statistics."""
    per = stats['images_per_class'].setdefault(
        split, [0] * (len(TOY_CLASSES) - 1))
    for c in np.flatnonzero(vec):
        per[c] += 1
    kind = scene['background']
    stats['backgrounds'][kind] = stats['backgrounds'].get(kind, 0) + 1
    has_boat = bool(vec[_BOAT - 1])
    stats['boat'] += has_boat
    stats['water'] += kind == 'water'
    stats['boat_water'] += has_boat and kind == 'water'
    label = scene['label']
    stats['small'] += min(label.shape) < 128
    stats['occluded'] += scene['occluded_pixels'] > 0
    stats['fg_pixels'] += float(np.sum((label > 0) & (label < 255)))
    stats['ignore_pixels'] += float(np.sum(label == 255))
    stats['pixels'] += float(label.size)


def _finish_stats(stats: dict, splits: Dict[str, int]) -> dict:
    """Turn accumulated counts into the summary fields."""
    return dict(
        num_images=dict(splits),
        images_per_class={
            s: dict(zip(TOY_CLASSES[1:], v))
            for s, v in stats['images_per_class'].items()
        },
        backgrounds=dict(sorted(stats['backgrounds'].items())),
        boat_images_on_water=round(stats['boat_water'] / max(
            stats['boat'], 1), 4),
        water_images_with_boat=round(stats['boat_water'] / max(
            stats['water'], 1), 4),
        images_smaller_than_128=stats['small'],
        images_with_occlusion=stats['occluded'],
        foreground_fraction=round(stats['fg_pixels'] / stats['pixels'], 4),
        ignore_fraction=round(stats['ignore_pixels'] / stats['pixels'], 4))


#: toy split -> COCO 2014 subset folder and split file (ToCo/DuPL layout)
COCO_SUBSETS = dict(
    train=('train2014', 'train.txt'),
    val=('val2014', 'val_part.txt'),
    test=('test2014', 'test.txt'))


def to_coco_layout(out_dir: str) -> Dict[str, int]:
    """Rearrange a toy dataset written by :func:`make_toy_voc` in place
    into the COCO WSSS layout that ``COCOWSSSDataset`` and
    ``configs/_base_/datasets/coco14_wsss_448x448.py`` read::

        out_dir/
          JPEGImages/{train2014,val2014,test2014}/<name>.jpg
          SegmentationClass/{train2014,val2014}/<name>.png
          train.txt, val_part.txt, test.txt     names without suffix
          cls_labels_onehot.npy, toy_voc_meta.json   (unchanged)

    Args:
        out_dir (str): A toy dataset in the VOC layout.

    Returns:
        dict: Number of images moved per subset folder.
    """
    split_dir = osp.join(out_dir, 'ImageSets', 'Segmentation')
    moved = {}
    for split, (subset, list_name) in COCO_SUBSETS.items():
        with open(osp.join(split_dir, split + '.txt')) as f:
            names = f.read().split()
        if not names:
            continue  # e.g. --num-test 0
        for kind, suffix in (('JPEGImages', '.jpg'),
                             ('SegmentationClass', '.png')):
            src = [osp.join(out_dir, kind, n + suffix) for n in names]
            if kind == 'SegmentationClass' and not any(map(osp.exists,
                                                           src)):
                continue  # the test split has no masks
            os.makedirs(osp.join(out_dir, kind, subset), exist_ok=True)
            for name, path in zip(names, src):
                os.replace(path, osp.join(out_dir, kind, subset,
                                          name + suffix))
        with open(osp.join(out_dir, list_name), 'w') as f:
            f.write(''.join(n + '\n' for n in names))
        moved[subset] = len(names)
    shutil.rmtree(osp.join(out_dir, 'ImageSets'))
    return moved
