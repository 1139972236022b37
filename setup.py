# Copyright (c) OpenMMLab. All rights reserved.
"""Install mmseg_dupl: DuPL weakly supervised segmentation for MMSeg 1.x.

As mmseg's setup.py, the files a user runs besides the package (``configs/``,
``tools/``, the toy backbone weights of ``checkpoints/`` and the model index)
go into ``mmseg_dupl/.mim``: copied for a wheel or sdist, symlinked for an
editable install. ``mmseg_dupl.utils.get_config_path('mmseg_dupl::NAME')``
and mmengine's ``mmseg_dupl::`` prefix find the configs there.
"""
import os
import os.path as osp
import platform
import shutil
import sys
import warnings

from setuptools import find_packages, setup

#: what goes into mmseg_dupl/.mim (the toy config loads
#: ../checkpoints/toy_vit_cls.pth relative to itself)
MIM_FILES = ('configs', 'tools', 'checkpoints', 'model-index.yml',
             'metafile.yaml')
#: never shipped: the pretraining's run folders next to the weights
MIM_IGNORE = shutil.ignore_patterns('*_work', '__pycache__', '*.pyc')


def get_version() -> str:
    """Read ``__version__`` from mmseg_dupl/version.py without importing."""
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmseg_dupl', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Fill ``mmseg_dupl/.mim`` (mmseg's ``add_mim_extension``): symlinks
    for an editable install (``develop``, or PEP 660's ``editable_wheel``),
    copies for ``bdist_wheel`` / ``sdist`` / ``build``; other commands
    (``egg_info``, ``dist_info``) leave it as it is."""
    editable = {'develop', 'editable_wheel'} & set(sys.argv)
    if editable:
        mode = 'copy' if platform.system() == 'Windows' else 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'install'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    repo_path = osp.dirname(osp.abspath(__file__))
    mim_path = osp.join(repo_path, 'mmseg_dupl', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for filename in MIM_FILES:
        src_path = osp.join(repo_path, filename)
        tar_path = osp.join(mim_path, filename)
        if not osp.exists(src_path):
            warnings.warn(f'{src_path} not found: not added to .mim')
            continue
        if osp.isfile(tar_path) or osp.islink(tar_path):
            os.remove(tar_path)
        elif osp.isdir(tar_path):
            shutil.rmtree(tar_path)
        if mode == 'symlink':
            os.symlink(osp.relpath(src_path, mim_path), tar_path)
        elif osp.isfile(src_path):
            shutil.copyfile(src_path, tar_path)
        else:
            shutil.copytree(src_path, tar_path, ignore=MIM_IGNORE)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmseg_dupl',
        version=get_version(),
        description='DuPL (CVPR 2024) weakly supervised semantic segmentation '
        'as an MMSegmentation 1.x plugin',
        packages=find_packages(
            exclude=('configs', 'tools', 'tests', 'benchmarks')),
        include_package_data=True,
        python_requires='>=3.8',
        install_requires=[
            'mmengine>=0.10.7,<1.0.0',
            'mmsegmentation>=1.2.2,<1.3.0',
            'mmpretrain>=1.2.0,<1.3.0',
            'numpy',
        ],
        extras_require=dict(
            tests=['pytest', 'pytest-xdist', 'filelock', 'scikit-learn'],
            crf=['pydensecrf2'],
            analysis=['seaborn']),
        zip_safe=False,
    )
