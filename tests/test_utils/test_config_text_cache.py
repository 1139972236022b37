# Copyright (c) OpenMMLab. All rights reserved.
"""cache_config_formatting: mmengine's Config.pretty_text formats each
distinct text once, with the text yapf gives, and a changed config gets
its own new text."""
import os.path as osp

import mmengine.config.config as mmengine_config
import pytest
from mmengine.config import Config
from yapf.yapflib.yapf_api import FormatCode

import mmseg_dupl  # noqa: F401 (installs the cache)
from mmseg_dupl.utils import cache_config_formatting
from mmseg_dupl.utils.config_text_cache import cached_format_code

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = osp.join(REPO, 'configs', 'dupl_vit-tiny_toy.py')


class _Counting:
    """yapf's FormatCode, counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, text, style_config=None, **kwargs):
        self.calls += 1
        return FormatCode(text, style_config=style_config, **kwargs)


@pytest.fixture
def counted(monkeypatch):
    counting = _Counting()
    monkeypatch.setattr(mmengine_config, 'FormatCode',
                        cached_format_code(counting))
    return counting


def _uncached_text(cfg: Config) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mmengine_config, 'FormatCode', FormatCode)
        return cfg.pretty_text


def test_importing_the_package_installs_it_once():
    installed = mmengine_config.FormatCode
    assert getattr(installed, '_mmseg_dupl_cached', False)
    assert cache_config_formatting()
    assert mmengine_config.FormatCode is installed  # not wrapped twice


def test_same_text_as_yapf_formatted_once(counted):
    cfg = Config.fromfile(TOY_CONFIG)
    texts = [cfg.pretty_text for _ in range(3)]
    assert counted.calls == 1
    assert texts[0] == texts[1] == texts[2] == _uncached_text(cfg)
    # the formatted text still reads back as the same config
    assert Config.fromstring(texts[0], '.py').to_dict() == cfg.to_dict()


def test_a_changed_config_gets_its_own_text(counted):
    cfg = Config.fromfile(TOY_CONFIG)
    before = cfg.pretty_text
    cfg.train_cfg.max_iters = 12345
    after = cfg.pretty_text
    assert counted.calls == 2
    assert before != after and 'max_iters=12345' in after
    assert after == _uncached_text(cfg)


def test_unhashable_style_and_errors_go_to_yapf_each_time():
    counting = _Counting()
    cached = cached_format_code(counting)
    style = dict(based_on_style='pep8',
                 no_spaces_around_selected_binary_operators=['*'])
    assert cached('a = 1\n', style_config=style) == FormatCode(
        'a = 1\n', style_config=style)
    cached('a = 1\n', style_config=style)
    assert counting.calls == 2  # the list in the style: not cached
    for _ in range(2):
        with pytest.raises(Exception):
            cached('a = (\n', style_config=dict(based_on_style='pep8'))
    assert counting.calls == 4  # a failure is not remembered
