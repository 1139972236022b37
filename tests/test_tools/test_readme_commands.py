# Copyright (c) OpenMMLab. All rights reserved.
"""Both READMEs name every tool and hook; the cheap README commands run:
``--help`` of every Python tool, every config path they name exists (the
example configs train in tests/test_integration/test_example_configs.py),
and tools/test.py stops at once on a missing checkpoint."""
import glob
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
