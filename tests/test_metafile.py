# Copyright (c) OpenMMLab. All rights reserved.
"""metafile.yaml (mmseg's model-zoo format) and projects_readme.md agree
with the repository: configs exist and load, numbers match, and every
command names existing files and parses."""
import importlib.util
import os.path as osp
import re
import shlex

import pytest
import yaml
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METAFILE = osp.join(REPO, 'metafile.yaml')
README = osp.join(REPO, 'projects_readme.md')


@pytest.fixture(scope='module')
def meta():
    with open(METAFILE) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope='module')
def readme():
    with open(README) as f:
        return f.read()


def _commands(text):
    """Every line of the ```shell blocks, as argument lists."""
    blocks = re.findall(r'```shell\n(.*?)```', text, flags=re.S)
    return [shlex.split(ln) for b in blocks for ln in b.splitlines()
            if ln.strip()]


def test_collections_and_models_are_well_formed(meta):
    collections = {c['Name'] for c in meta['Collections']}
    assert collections == {'DuPL'}
    for c in meta['Collections']:
        assert osp.isfile(osp.join(REPO, c['README']))
        assert c['Paper']['URL'].startswith('https://')
    names = [m['Name'] for m in meta['Models']]
    assert len(set(names)) == len(names)
    assert set(names) == {
        'dupl_vit-b_voc', 'dupl_vit-b-in21k_voc', 'dupl_vit-b_coco'
    }
    for model in meta['Models']:
        assert model['In Collection'] in collections
        assert osp.splitext(osp.basename(model['Config']))[0] == \
            model['Name']
        assert osp.isfile(osp.join(REPO, model['Code']))
        for result in model['Results']:
            assert result['Task'] == 'Semantic Segmentation'
            assert all(0 < v < 100 for v in result['Metrics'].values())


def test_every_config_exists_and_loads(meta):
    for model in meta['Models']:
        path = osp.join(REPO, model['Config'])
        assert osp.isfile(path), path
        cfg = Config.fromfile(path)
        assert cfg.model.type == 'DualStudentSegmentor'
        coco = 'COCO' in model['Metadata']['Training Data']
        assert cfg.model.num_classes == (80 if coco else 20)
        assert cfg.train_cfg.max_iters == model['Metadata']['Iterations']


def test_readme_results_are_the_metafile_numbers(meta, readme):
    table = readme[readme.index('## Results'):readme.index('## Citation')]
    rows = [r for r in table.splitlines() if r.startswith('| DuPL')]
    assert len(rows) == len(meta['Models'])
    for model, row in zip(meta['Models'], rows):
        assert model['Config'] in row
        assert '| official |' in row and 'not yet trained' in row
        cells = [c.strip() for c in row.split('|')]
        for value in (v for r in model['Results']
                      for v in r['Metrics'].values()):
            assert str(value) in cells, (model['Name'], value)
    assert 'has not yet been trained on VOC or COCO' in readme


def test_readme_sections_and_citation(readme):
    for section in ('## Description', '## Usage', '### Prerequisites',
                    '### Training commands', '### Testing commands',
                    '## Results', '## Citation', '## Checklist'):
        assert section in readme
    assert 'tools/dist_train.sh configs/dupl_vit-b_voc.py 4' in readme
    assert ('author={Wu, Yuanchen and Ye, Xichen and Yang, Kequan and Li, '
            'Jide and Li, Xiaoqiang}') in readme


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_commands_name_existing_files_and_parse(readme):
    commands = _commands(readme)
    assert len(commands) >= 10
    parsers = {
        'tools/export_pseudo_labels.py':
        _load_tool('export_pseudo_labels').parse_args,
        'tools/visualize_cams.py': _load_tool('visualize_cams').parse_args,
    }
    for cmd in commands:
        if cmd[0] == 'export':
            continue
        script = cmd[1] if cmd[0] == 'python' else cmd[0]
        assert osp.isfile(osp.join(REPO, script)), cmd
        args = cmd[2:] if cmd[0] == 'python' else cmd[1:]
        # configs of the repository (generated ones live in work_dirs/)
        for arg in args:
            if arg.startswith('configs/'):
                assert osp.isfile(osp.join(REPO, arg)), cmd
        if script in parsers:
            parsers[script](args)  # SystemExit on a bad flag
