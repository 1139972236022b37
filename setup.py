# Copyright (c) OpenMMLab. All rights reserved.
"""Install mmseg_dupl: DuPL weakly supervised segmentation for MMSeg 1.x."""
import os.path as osp

from setuptools import find_packages, setup


def get_version() -> str:
    """Read ``__version__`` from mmseg_dupl/version.py without importing."""
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmseg_dupl', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


setup(
    name='mmseg_dupl',
    version=get_version(),
    description='DuPL (CVPR 2024) weakly supervised semantic segmentation '
    'as an MMSegmentation 1.x plugin',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
    python_requires='>=3.8',
    install_requires=[
        'mmengine>=0.10.7,<1.0.0',
        'mmsegmentation>=1.2.2,<1.3.0',
        'mmpretrain>=1.2.0,<1.3.0',
        'numpy',
    ],
    extras_require=dict(tests=['pytest', 'scikit-learn'], crf=['pydensecrf2']),
    zip_safe=False,
)
