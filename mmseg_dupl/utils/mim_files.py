# Copyright (c) OpenMMLab. All rights reserved.
"""Where the configs, tools and toy weights are: the source checkout the
package is imported from, else ``mmseg_dupl/.mim`` of an installed package
(setup.py fills it, as mmseg's does)."""
import difflib
import glob
import os.path as osp

#: the prefix of an installed config name, as mmengine's ``mmseg::``
PREFIX = 'mmseg_dupl::'
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def mim_root() -> str:
    """The folder holding ``configs/``, ``tools/`` and ``checkpoints/``.

    Returns:
        str: The source checkout the package is imported from (a folder
        with ``setup.py`` and ``configs``), else ``<package>/.mim`` as
        setup.py filled it for a wheel or sdist. A checkout wins over its
        own ``.mim``, which a ``pip wheel .`` there leaves as a copy that
        would go stale.

    Raises:
        FileNotFoundError: If neither has a ``configs`` folder.
    """
    checkout = osp.dirname(PACKAGE_DIR)
    if osp.isfile(osp.join(checkout, 'setup.py')) and osp.isdir(
            osp.join(checkout, 'configs')):
        return checkout
    mim = osp.join(PACKAGE_DIR, '.mim')
    if osp.isdir(osp.join(mim, 'configs')):
        return mim
    raise FileNotFoundError(
        f'no configs next to {PACKAGE_DIR}: neither {PACKAGE_DIR}/.mim '
        '(filled by `pip install`) nor a source checkout')


def register_config_prefix() -> None:
    """Let mmengine resolve ``mmseg_dupl::`` in ``_base_`` and
    ``mmengine.hub.get_config`` (its ``MODULE2PACKAGE`` table only knows
    the OpenMMLab packages). mmengine then reads
    ``<installed package>/.mim/configs``; it requires a folder in the name
    (``mmseg_dupl::stage2/...``, ``mmseg_dupl::_base_/...``), so top-level
    configs go through :func:`get_config_path`."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault('mmseg_dupl', 'mmseg_dupl')


def get_config_path(name: str) -> str:
    """Absolute path of a shipped config.

    mmengine 0.10.7's ``Config.fromfile`` takes file paths only (for every
    package: ``Config.fromfile('mmseg::...')`` fails the same way), so::

        cfg = Config.fromfile(get_config_path('mmseg_dupl::dupl_vit-b_voc.py'))

    Args:
        name (str): ``'mmseg_dupl::dupl_vit-b_voc.py'``, or the same
            without the prefix; relative to ``configs/``.

    Returns:
        str: The file under :func:`mim_root`'s ``configs``.

    Raises:
        FileNotFoundError: Naming the closest shipped config.
    """
    if name.startswith(PREFIX):
        name = name[len(PREFIX):]
    elif '::' in name:
        raise ValueError(f'{name}: only the {PREFIX} prefix is resolved here')
    configs = osp.join(mim_root(), 'configs')
    path = osp.join(configs, name)
    if osp.isfile(path):
        return path
    shipped = sorted(
        osp.relpath(p, configs)
        for p in glob.glob(osp.join(configs, '**', '*.py'), recursive=True))
    close = difflib.get_close_matches(name, shipped, n=1)
    hint = f"; did you mean '{PREFIX}{close[0]}'?" if close else ''
    raise FileNotFoundError(f'{PREFIX}{name}: no such config in '
                            f'{configs}{hint}')
