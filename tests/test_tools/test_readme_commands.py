# Copyright (c) OpenMMLab. All rights reserved.
"""Both READMEs name every tool and hook; the cheap README commands run:
``--help`` of every Python tool, every config path they name exists (the
example configs train in tests/test_integration/test_example_configs.py),
and tools/test.py stops at once on a missing checkpoint."""
import glob
import os
import os.path as osp
import re
import runpy
import subprocess
import sys

import mmseg
import pytest
from mmseg.registry import HOOKS

import mmseg_dupl  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
READMES = ['README.md', 'projects_readme.md']
TOOLS = sorted(
    osp.basename(p) for p in glob.glob(osp.join(REPO, 'tools', '*'))
    if p.endswith(('.py', '.sh')))


def _has_cli(tool: str) -> bool:
    with open(osp.join(REPO, 'tools', tool)) as f:
        return "if __name__ == '__main__':" in f.read()


# demo_report.py is the library of run_demo.py: no command line of its own
PY_TOOLS = [t for t in TOOLS if t.endswith('.py') and _has_cli(t)]


def _read(name: str) -> str:
    with open(osp.join(REPO, name)) as f:
        return f.read()


def _plugin_hooks() -> list:
    """The hooks the plugin registers (not the removed names it keeps
    registered only to raise an error)."""
    return sorted(name for name, cls in HOOKS.module_dict.items()
                  if cls.__module__.startswith('mmseg_dupl.')
                  and name in mmseg_dupl.engine.hooks.__all__)


@pytest.mark.parametrize('readme', READMES)
def test_readme_names_every_tool_and_hook(readme):
    text = _read(readme)
    missing = [t for t in TOOLS if t not in text]
    assert not missing, f'{readme} does not list {missing}'
    hooks = _plugin_hooks()
    assert 'CAMVisualizationHook' in hooks
    missing = [h for h in hooks if h not in text]
    assert not missing, f'{readme} does not list {missing}'


@pytest.mark.parametrize('readme', READMES)
def test_config_paths_in_readme_exist(readme):
    text = _read(readme)
    ours = set(re.findall(r'configs/[\w/.-]+\.py', text))
    assert ours
    missing = [p for p in ours if not osp.isfile(osp.join(REPO, p))]
    assert not missing, f'{readme} names missing configs {missing}'
    mim = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
    stock = set(re.findall(r'mmseg::([\w/.-]+\.py)', text))
    missing = [p for p in stock if not osp.isfile(osp.join(mim, p))]
    assert not missing, f'{readme} names missing mmseg configs {missing}'


@pytest.mark.parametrize('tool', PY_TOOLS)
def test_tool_help(tool, monkeypatch, capsys):
    path = osp.join(REPO, 'tools', tool)
    monkeypatch.setattr(sys, 'argv', [path, '--help'])
    monkeypatch.syspath_prepend(osp.dirname(path))  # as `python tools/x.py`
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(path, run_name='__main__')
    assert exc.value.code in (0, None)
    assert 'usage:' in capsys.readouterr().out


def test_test_tool_stops_on_a_missing_checkpoint(tmp_path):
    missing = str(tmp_path / 'no_such.pth')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'),
         osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py'), missing],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f'checkpoint not found: {missing}' in out
    assert len(out.strip().splitlines()) <= 2, out


def _section(text: str, title: str) -> str:
    """The text of ``## title`` up to the next ``## `` heading."""
    start = text.index(f'\n## {title}\n')
    end = text.find('\n## ', start + 1)
    return text[start:end if end > 0 else None]


def _block(section: str, lang: str) -> str:
    found = re.findall(rf'```{lang}\n(.*?)```', section, flags=re.S)
    assert len(found) == 1, found
    return found[0]


def _swap(text: str, swaps: list) -> str:
    """Replace each ``(old, new)`` present (a README path that is not
    swapped makes the command fail on a missing file)."""
    for old, new in swaps:
        text = text.replace(old, new)
    return text


TOY_BENCHMARK_CFG = """
_base_ = [{base!r}]
# >= 200 test batches from the 12 toy val images (benchmark.py times 200)
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=False))
train_dataloader = dict(num_workers=0, persistent_workers=False)
"""


def _toy_swaps(toy: dict, tmp_path) -> list:
    """The README's VOC config, checkpoint, log and image, swapped for the
    toy checkpoint's; outputs under ``tmp_path``."""
    cfg = tmp_path / 'toy_analysis.py'
    cfg.write_text(TOY_BENCHMARK_CFG.format(base=toy['config']))
    logs = [p for p in glob.glob(
        osp.join(toy['work_dir'], '*', 'vis_data', '*.json'))
        if not p.endswith('scalars.json')]
    assert len(logs) == 1, logs
    val = osp.join(toy['data_root'], 'ImageSets', 'Segmentation', 'val.txt')
    image = osp.join(toy['data_root'], 'JPEGImages',
                     open(val).read().split()[0] + '.jpg')
    return [
        ('work_dirs/dupl_vit-b_voc/iter_20000.pth', toy['checkpoint']),
        ('work_dirs/dupl_vit-b_voc/TIMESTAMP/vis_data/TIMESTAMP.json',
         logs[0]),
        ('data/VOCdevkit/VOC2012/JPEGImages/2007_000033.jpg', image),
        ('configs/dupl_vit-b_voc.py', str(cfg)),
        ('work_dirs/', str(tmp_path) + '/'),
    ]


def test_readme_inference_section_runs(toy_checkpoint, tmp_path,
                                       monkeypatch):
    code = _block(_section(_read('README.md'), 'Inference'), 'python')
    code = _swap(code, _toy_swaps(toy_checkpoint, tmp_path) +
                 [("device='cuda:0'", "device='cpu'")])
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, 'README.md (Inference)', 'exec'), scope)
    assert scope['result'].pred_sem_seg.data.ndim == 3
    assert scope['ensemble'].test_cfg['student'] == 'ensemble'
    assert (tmp_path / 'inference' / 'overlay.png').is_file()
    assert len(list((tmp_path / 'inference' / 'vis').iterdir())) == 1
    assert len(list((tmp_path / 'inference' / 'pred').iterdir())) == 1


def test_readme_analysis_tools_run(toy_checkpoint, tmp_path):
    script = _block(_section(_read('README.md'), 'Analysis tools'), 'bash')
    script = _swap(script, _toy_swaps(toy_checkpoint, tmp_path))
    script = re.sub(r'^python ', f'{sys.executable} ', script, flags=re.M)
    script = script.replace('$(python ', f'$({sys.executable} ')
    env = dict(os.environ, MPLBACKEND='Agg')
    proc = subprocess.run(['bash', '-e', '-c', script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # benchmark.py: 200 timed batches, the JSON summary
    fps = re.findall(r'Overall fps: ([0-9.]+) img / s', out)
    assert len(fps) == 1 and float(fps[0]) > 0, out[-3000:]
    assert glob.glob(str(tmp_path / 'benchmark' / 'fps_*.json'))
    # analyze_logs.py: the curves of loss and mIoU
    assert 'metric is mIoU' in out and (tmp_path / 'curves.png').is_file()
    # get_flops.py: a positive count for the toy student
    flops = re.findall(r'Flops: ([0-9.]+)([KMGT]?)', out)
    assert flops and float(flops[0][0]) > 0, out[-3000:]
    # browse_dataset.py: 8 samples, weak and strong side by side
    pngs = sorted((tmp_path / 'browse').glob('*.png'))
    assert len(pngs) == 8
    from PIL import Image
    width = Image.open(pngs[0]).size[0]
    assert width == 128 + 4 + 96  # 128 px weak, 4 px gap, 0.75x strong
