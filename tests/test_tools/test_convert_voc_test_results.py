# Copyright (c) OpenMMLab. All rights reserved.
import importlib.util
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmseg_dupl.visualization.palette import voc_colormap

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'convert_voc_test_results.py')
SUBDIR = ('results', 'VOC2012', 'Segmentation', 'comp6_test_cls')


def load_tool():
    spec = importlib.util.spec_from_file_location('convert_voc', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def write_preds(folder, names, high=21, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    preds = {}
    for name in names:
        ids = rng.integers(0, high, (12, 17), dtype=np.uint8)
        Image.fromarray(ids).save(folder / f'{name}.png')
        preds[name] = ids
    return preds


def test_layout_palette_and_values(tmp_path):
    preds = write_preds(tmp_path / 'in', ['2008_000001', '2008_000002'])
    split = tmp_path / 'test.txt'
    split.write_text('2008_000001\n2008_000002\n')
    written = tool.convert(
        str(tmp_path / 'in'), str(tmp_path / 'out'), str(split))
    assert len(written) == 2
    for name, ids in preds.items():
        path = tmp_path.joinpath('out', *SUBDIR, f'{name}.png')
        img = Image.open(path)
        assert img.mode == 'P'
        assert np.array_equal(np.array(img), ids)
        palette = np.array(img.getpalette()).reshape(-1, 3)
        assert np.array_equal(palette, voc_colormap(256))
        assert palette[15].tolist() == [192, 128, 128]  # person


def test_single_file_input(tmp_path):
    write_preds(tmp_path, ['a'])
    written = tool.convert(str(tmp_path / 'a.png'), str(tmp_path / 'out'))
    assert [osp.basename(p) for p in written] == ['a.png']


def test_bad_files_are_named(tmp_path):
    src = tmp_path / 'in'
    write_preds(src, ['ok'])
    (src / 'notes.txt').write_text('x')
    with pytest.raises(ValueError, match='notes.txt'):
        tool.convert(str(src), str(tmp_path / 'out'))
    (src / 'notes.txt').unlink()
    write_preds(src, ['bad_ids'], high=30, seed=1)
    with pytest.raises(ValueError, match=r'bad_ids\.png: class ids \[2[1-9]'):
        tool.convert(str(src), str(tmp_path / 'out'))
    (src / 'bad_ids.png').unlink()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / 'colour.png')
    with pytest.raises(ValueError, match='colour.png: mode RGB'):
        tool.convert(str(src), str(tmp_path / 'out'))
    (src / 'colour.png').unlink()
    (src / 'fake.png').write_bytes(b'not a png')
    with pytest.raises(ValueError, match='fake.png'):
        tool.convert(str(src), str(tmp_path / 'out'))
    # nothing was written by the failed runs
    assert not (tmp_path / 'out').exists()


def test_split_coverage(tmp_path):
    write_preds(tmp_path / 'in', ['a', 'b'])
    split = tmp_path / 'test.txt'
    split.write_text('a\nc\n')
    with pytest.raises(
            ValueError, match='without a prediction: c .*'
            'not in .*: b'):
        tool.convert(str(tmp_path / 'in'), str(tmp_path / 'out'), str(split))


def test_cli(tmp_path):
    write_preds(tmp_path / 'in', ['a'])
    ok = subprocess.run(
        [sys.executable, TOOL,
         str(tmp_path / 'in'),
         str(tmp_path / 'out')],
        capture_output=True,
        text=True)
    assert ok.returncode == 0, ok.stderr
    assert 'wrote 1 predictions' in ok.stdout


def test_main_reports_errors(tmp_path, capsys):
    assert tool.main([str(tmp_path / 'missing'), str(tmp_path / 'o')]) == 1
    assert 'missing' in capsys.readouterr().err
