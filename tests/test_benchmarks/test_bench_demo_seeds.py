# Copyright (c) OpenMMLab. All rights reserved.
"""benchmarks/bench_demo_seeds.py: the summary arithmetic (the training
runs themselves are the demo's, tested in tests/test_tools; the fully
supervised reference's run is tested here)."""
import copy
import json
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

from bench_demo_seeds import (fraction_of_fully_supervised,  # noqa: E402
                              lead_sentence,
                              paired_differences, parse_args, plan,
                              reference_sentence)


def _run(row, dataset, s1, ensemble=None):
    metrics = dict(seg_s1=dict(mIoU=s1))
    if ensemble is not None:
        metrics['seg_ensemble'] = dict(mIoU=ensemble)
    return dict(row=row, dataset=dataset, seed=dataset, metrics=metrics)


def test_paired_differences_subtract_dupl_on_the_same_pair():
    results = [
        _run('dupl', 0, 40., 42.), _run('dupl', 1, 50., 53.),
        _run('no_gmm', 0, 38., 41.), _run('no_gmm', 1, 46., 50.),
        _run('baseline', 0, 41.), _run('baseline', 1, 47.),
        _run('no_consistency', 1, 52., 54.),  # one pair only
    ]
    table = {r[0]: r[1:] for r in paired_differences(
        results, ['dupl', 'baseline', 'no_gmm', 'no_consistency'])}
    assert 'DuPL' not in table
    # no_gmm: s1 -2, -4 -> -3 ± 1.4; ensemble -1, -3 -> -2 ± 1.4
    assert table['DuPL, no GMM filter'] == [2, '-3.0 ± 1.4', '-2.0 ± 1.4']
    # the baseline's s1 against DuPL's s1 and ensemble
    assert table['single-student baseline'] == [2, '-1.0 ± 2.8',
                                                '-3.5 ± 3.5']
    assert table['DuPL, no consistency loss'] == [1, '+2.0', '+1.0']


def test_lead_sentence_says_inside_the_spread_when_it_is():
    results = [_run('dupl', 0, 40., 42.), _run('dupl', 1, 50., 53.),
               _run('baseline', 0, 41.), _run('baseline', 1, 47.)]
    text = lead_sentence(results, 4)
    assert 's1 +1.0 ± 2.8' in text and 'no lead can be claimed' in text


def test_paired_plan_runs_the_main_comparison_first():
    args = parse_args(['--rows', 'dupl', 'baseline', 'no_gmm'])
    jobs = plan(args)
    assert len(jobs) == 9
    assert {row for row, _, _ in jobs[:6]} == {'dupl', 'baseline'}
    assert all(d == s for _, d, s in jobs)


def test_dupl_share_of_the_fully_supervised_reference_is_paired():
    results = [
        _run('dupl', 0, 40., 42.), _run('dupl', 1, 45., 45.),
        _run('fully_supervised', 0, 50.), _run('fully_supervised', 1, 60.),
        _run('dupl', 2, 30., 30.),  # no reference on dataset 2: left out
    ]
    assert fraction_of_fully_supervised(results, 'seg_s1') == [80., 75.]
    assert fraction_of_fully_supervised(results, 'seg_ensemble') == [84.,
                                                                     75.]
    text = reference_sentence(results)
    assert '55.0 ± 7.1 seg mIoU' in text
    assert 's1 77.5 ± 3.5 %, ensemble 79.5 ± 6.4 %' in text
    assert reference_sentence([_run('dupl', 0, 40., 42.)]) == ''


def test_fully_supervised_reference_trains_on_masks_and_evaluates(
        toy_data_root, tmp_path):
    """The reference row's config: mmseg's EncoderDecoder with the toy
    student's backbone and decoder, trained on ground-truth masks with
    DuPL's crops and schedule, evaluated as the demo evaluates."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import run_demo
    from mmseg.models import EncoderDecoder
    cfg = run_demo.load_config(run_demo.FULLY_SUPERVISED_CONFIG, toy_data_root,
                               str(tmp_path), iters=2)
    toy = run_demo.load_config(run_demo.DUPL_CONFIG, toy_data_root,
                               str(tmp_path), iters=2)
    # the same network and budget as the DuPL toy run
    assert cfg.model.backbone == toy.model.student.backbone
    assert cfg.model.decode_head == toy.model.student.decode_head
    assert cfg.optim_wrapper == toy.optim_wrapper
    assert cfg.train_cfg.max_iters == toy.train_cfg.max_iters == 2
    cfg.model.backbone.init_cfg = None
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    # the demo trains the config's own hooks: none of DuPL's (they refuse
    # an EncoderDecoder), only the demo's progress bar
    assert [h['type'] for h in cfg.custom_hooks] == ['ProgressBarHook']
    runner = run_demo.train(cfg)['runner']
    assert isinstance(runner.model, EncoderDecoder)
    # it does see masks: the point of the reference
    batch = next(iter(runner.train_dataloader))
    assert all('gt_sem_seg' in s for s in batch['data_samples'])
    val_set = run_demo.split_dataset(cfg,
                                     cfg.val_dataloader.dataset.ann_file)
    metrics = run_demo.evaluate(runner.model, val_set)
    assert len(metrics['IoU']) == len(val_set.metainfo['classes']) == 6
    assert 0. <= metrics['mIoU'] <= 100.


def test_replace_section_keeps_the_other_sections(tmp_path):
    from bench_demo_seeds import SECTION, replace_section
    path = tmp_path / 'RESULTS.md'
    path.write_text(f'# Results\n\n## A\n\na\n\n{SECTION} (old)\n\nold\n\n'
                    '## B\n\nb\n')
    replace_section(str(path), f'{SECTION} (new)\n\nnew\n')
    text = path.read_text()
    assert text == (f'# Results\n\n## A\n\na\n\n{SECTION} (new)\n\nnew\n\n'
                    '## B\n\nb\n')
    assert [p.name for p in tmp_path.iterdir()] == ['RESULTS.md']


def _result_file(runs_dir, row, dataset, s1):
    classes = ['background', 'a', 'b']
    figure = dict(mIoU=s1, IoU=[s1] * len(classes))
    keys = ['seg_s1'] if 'fully' in row else [
        'seg_s1', 'seg_s2', 'seg_ensemble', 'cam_train', 'pseudo_train']
    run = dict(row=row, seed=dataset, data_root='d', seconds=60.,
               metrics={k: figure for k in keys}, classes=classes)
    path = runs_dir / f'{row}_d{dataset}_s{dataset}.json'
    path.write_text(json.dumps(run))


def test_recipe_table_has_its_own_rows_and_section(tmp_path):
    from bench_demo_seeds import SECTIONS, TABLE_ROWS, main
    args = parse_args(['--table', 'recipe'])
    assert args.rows == ['dupl', 'fully_supervised', 'dupl_pretrain96',
                         'fully_supervised_pretrain96',
                         'dupl_par_down2_pretrain96',
                         'dupl_par_down2_voc_crops_pretrain96',
                         'fully_supervised_voc_crops_pretrain96',
                         'dupl_narrow',
                         'dupl_par_down2_narrow_voc_crops',
                         'fully_supervised_narrow_voc_crops',
                         'dupl_par_down2_narrow_voc_crops_3x_iters']
    # the demo table's default is unchanged
    assert parse_args([]).rows == list(TABLE_ROWS['demo'])
    runs = tmp_path / 'runs'
    runs.mkdir()
    for dataset in (0, 1):
        _result_file(runs, 'dupl', dataset, 40. + dataset)
        _result_file(runs, 'dupl_narrow', dataset, 44. + 2 * dataset)
    results = tmp_path / 'RESULTS.md'
    results.write_text(f'# Results\n\n{SECTIONS["demo"]} (old)\n\ndemo\n')
    summary = tmp_path / 'summary.json'
    main(['--table', 'recipe', '--report-only', '--datasets', '0', '1',
          '--seeds', '0', '1', '--runs-dir', str(runs),
          '--results', str(results), '--summary', str(summary)])
    text = results.read_text()
    # the demo section stays; the recipe section is added next to it
    assert f'{SECTIONS["demo"]} (old)\n\ndemo\n' in text
    recipe = text[text.index(SECTIONS['recipe']):]
    assert '4 of 22 runs finished' in recipe
    # narrow minus DuPL on the same pair: +4, +5
    assert ('| DuPL, 64-d backbone (pretrained on 96 px) | 2 | +4.5 ± 0.7 |'
            in recipe)
    assert 'start from weights pretrained on 96 px mosaics' in recipe
    # no baseline in this table: no lead sentence; the demo's summary
    # (read by the demo report) is left alone
    assert 'DuPL minus the baseline' not in recipe
    assert not summary.exists()


def test_recipe_rows_undo_what_they_say(toy_data_root, tmp_path):
    """``_narrow`` swaps in the 64-d backbone, its weights and a decoder
    that reads it; ``_voc_crops`` VOC's rescale-and-crop and colour
    augmentation; ``_par_down2`` runs PAR at half resolution;
    ``_3x_iters`` scales every phase; ``_pretrain96`` loads the 128-d
    weights pretrained on 96 px mosaics."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import run_demo
    from bench_demo_seeds import (NARROW_CONFIG, PRETRAIN96_CHECKPOINT,
                                  ablate, row_model)
    config, students = row_model('dupl_par_down2_narrow_voc_crops_3x_iters')
    assert (config, students) == run_demo.DEMO_MODELS['dupl']
    cfg = run_demo.load_config(config, toy_data_root, str(tmp_path))
    demo = copy.deepcopy(cfg)
    ablate(cfg, 'dupl_par_down2_narrow_voc_crops_3x_iters')
    assert demo.model.pseudo_labeler.down_scale == 1
    assert cfg.model.pseudo_labeler.down_scale == 2
    assert cfg.train_cfg.max_iters == 900
    assert dict(cfg.model.train_cfg.phases) == {
        k: 3 * v for k, v in demo.model.train_cfg.phases.items()}
    assert cfg.param_scheduler[0].max_iters == 900

    narrow = run_demo.load_config(NARROW_CONFIG, toy_data_root,
                                  str(tmp_path)).model.student
    assert narrow.backbone.arch.embed_dims == 64
    assert narrow.backbone.init_cfg.checkpoint.endswith(
        'toy_vit-narrow_cls.pth')
    assert demo.model.student.backbone.arch.embed_dims == 128
    student = cfg.model.student
    assert student.backbone == narrow.backbone
    assert student.in_channels == student.decode_head.in_channels == 64

    config, students = row_model('fully_supervised_narrow_voc_crops')
    assert students == []
    cfg = run_demo.load_config(config, toy_data_root, str(tmp_path))
    ablate(cfg, 'fully_supervised_narrow_voc_crops')
    assert cfg.model.backbone == narrow.backbone
    assert cfg.model.decode_head.in_channels == 64

    # VOC-style crops: the config's own RandomRescale in place of the
    # whole-image resize, ToCo's colour augmentation after the crop, the
    # rest of each pipeline (the masks of the reference too) as it was
    for row, students in (('dupl_par_down2_voc_crops_pretrain96',
                           ['s1', 's2', 'ensemble']),
                          ('fully_supervised_voc_crops_pretrain96', [])):
        config, evaluated = row_model(row)
        assert evaluated == students
        cfg = run_demo.load_config(config, toy_data_root, str(tmp_path))
        before = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
        assert 'Resize' in before and 'ToCoColorAug' not in before
        ablate(cfg, row)
        pipeline = cfg.train_dataloader.dataset.pipeline
        expected = []
        for name in before:
            expected.append('RandomRescale' if name == 'Resize' else name)
            if name == 'RandomCropWithValidBox':
                expected.append('ToCoColorAug')
        assert [t['type'] for t in pipeline] == expected
        rescale = next(t for t in pipeline if t['type'] == 'RandomRescale')
        assert rescale == dict(type='RandomRescale', ratio_range=(0.5, 2.0))
        model = cfg.model.get('student', cfg.model)
        assert model.backbone.arch.embed_dims == 128
        # `_pretrain96`: the 128-d weights pretrained on 96 px mosaics
        assert model.backbone.init_cfg.checkpoint == PRETRAIN96_CHECKPOINT
    with pytest.raises(ValueError, match='unknown row'):
        ablate(cfg, 'dupl_4x_iters')


def test_replace_section_from_threads_at_once(tmp_path):
    """Two runs of the benchmark finishing together rewrite RESULTS.md from
    two threads of one process: each writes its own temporary sibling
    (they once shared a per-process name, and the second rename failed)."""
    from concurrent.futures import ThreadPoolExecutor

    from bench_demo_seeds import SECTION, replace_section
    path = tmp_path / 'RESULTS.md'
    path.write_text('# Results\n')

    def write(i):
        for _ in range(20):
            replace_section(str(path), f'{SECTION} ({i})\n\nbody {i}\n')

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(write, i) for i in range(4)]:
            future.result()
    text = path.read_text()
    assert text.startswith('# Results\n\n') and text.count(SECTION) == 1
    assert [p.name for p in tmp_path.iterdir()] == ['RESULTS.md']
