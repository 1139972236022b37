# Copyright (c) OpenMMLab. All rights reserved.
"""benchmarks/bench_confirmation_bias.py: one short benchmark (two rows, a
few iterations) writes its run files, figure and table; the summary
arithmetic on hand-made curves."""
import json
import os.path as osp
import pathlib
import shutil
import sys
import tempfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))

import bench_confirmation_bias as bench  # noqa: E402


@pytest.fixture
def short_data_dir():
    """A data folder with a short path: yapf (a Runner formats its config
    to log and dump it) takes seconds on a nested ``data_root`` longer than
    about 75 characters, which one under pytest's tmp_path is."""
    path = tempfile.mkdtemp(prefix='cb_')
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_short_benchmark_writes_figure_table_and_resumes(
        toy_data_root, tmp_path, short_data_dir):
    data_dir = short_data_dir
    shutil.copytree(toy_data_root, data_dir / 'toy_voc_seed0')
    (data_dir / 'toy_voc_seed0' / '.done').touch()
    runs, results = tmp_path / 'runs', tmp_path / 'RESULTS.md'
    figure = tmp_path / 'confirmation_bias.png'
    results.write_text('# Results\n\n## Other\n\nkept\n')
    argv = ['--rows', 'baseline', 'dupl', '--datasets', '0', '--seeds', '0',
            # 4 iterations: the shortest run that keeps DuPL's phases
            # (scale_schedule)
            '--iters', '4', '--monitor-every', '2', '--monitor-images', '2',
            '--val-every', '4', '--jobs', '0', '--data-dir', str(data_dir),
            '--runs-dir', str(runs), '--results', str(results),
            '--figure', str(figure)]
    bench.main(argv)
    with open(figure, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    for row, students in (('baseline', 1), ('dupl', 2)):
        with open(runs / f'{row}_d0_s0.json') as f:
            run = json.load(f)
        curves = run['curves']
        # the monitor before every 2nd iteration and after the last one
        for k in range(1, students + 1):
            assert sorted(map(int, curves[f'monitor/s{k}.cam_mIoU'])) == \
                [0, 2, 4]
            assert list(curves[f's{k}.seg_mIoU']) == ['4']
        assert ('monitor/feature_cosine' in curves) == (students == 2)
        assert 'monitor/s2.cam_mIoU' not in curves or students == 2
    text = results.read_text()
    assert '## Other\n\nkept' in text
    section = text[text.index(bench.SECTION):]
    assert '2 of 2 runs finished' in section
    assert '| single-student baseline | 1 |' in section
    assert 'Cosine similarity of the two students' in section
    # finished runs are not run again
    stamp = osp.getmtime(runs / 'dupl_d0_s0.json')
    bench.main(argv)
    assert osp.getmtime(runs / 'dupl_d0_s0.json') == stamp


def _run(row, dataset, cam, pseudo, seg):
    """A run file's content: curves ``{step: value}`` of student 1."""
    curve = lambda values: {str(10 * i): v for i, v in enumerate(values)}
    return dict(row=row, seed=dataset, data_root='d', seconds=1., iters=20,
                backbone_lr_mult=1.,
                curves={'monitor/s1.cam_mIoU': curve(cam),
                        'monitor/s1.pseudo_mIoU': curve(pseudo),
                        's1.seg_mIoU': curve(seg)})


def test_final_best_drop_and_paired_differences(tmp_path):
    runs = tmp_path / 'runs'
    runs.mkdir()
    made = {
        ('dupl', 0): _run('dupl', 0, [50, 60, 58], [40, 45, 44], [30, 40]),
        ('dupl', 1): _run('dupl', 1, [52, 62, 62], [41, 43, 43], [31, 41]),
        ('baseline', 0): _run('baseline', 0, [50, 58, 48], [40, 44, 38],
                              [30, 35]),
        ('baseline', 1): _run('baseline', 1, [52, 57, 51], [41, 42, 40],
                              [31, 36]),
    }
    # DuPL's student 2: a CAM curve only
    for d, cam2 in ((0, [40, 50, 45]), (1, [42, 52, 50])):
        made[('dupl', d)]['curves']['monitor/s2.cam_mIoU'] = {
            str(10 * i): v for i, v in enumerate(cam2)}
    for (row, d), run in made.items():
        (runs / f'{row}_d{d}_s{d}.json').write_text(json.dumps(run))
    args = bench.parse_args(['--rows', 'baseline', 'dupl', '--datasets', '0',
                             '1', '--seeds', '0', '1', '--runs-dir',
                             str(runs), '--iters', '20'])
    results = bench.load_results(args, bench.jobs_of(args))
    table = {r[0]: r[1:] for r in bench.summary_rows(results, args.rows)}
    # baseline CAM: final 48, 51; best 58, 57; drop 10, 6
    assert table['single-student baseline'][:4] == [
        2, '49.5 ± 2.1', '57.5 ± 0.7', '8.0 ± 2.8']
    # DuPL CAM drop: 2, 0
    assert table['DuPL'][3] == '1.0 ± 1.4'
    paired = {r[0]: r[1:] for r in bench.paired_rows(results, args.rows)}
    # baseline - DuPL: CAM final -10, -11; CAM drop +8, +6; pseudo final
    # -6, -3; pseudo drop +5, +2; seg final -5, -5; seg drop 0, 0
    assert paired['single-student baseline'] == [
        2, '-10.5 ± 0.7', '+7.0 ± 1.4', '-4.5 ± 2.1', '+3.5 ± 2.1',
        '-5.0 ± 0.0', '+0.0 ± 0.0']
    assert 'DuPL' not in paired
    # student 2's table has the two-student rows only: CAM final 45, 50;
    # best 50, 52; drop 5, 2
    assert bench.summary_rows(results, args.rows, 's2') == [
        ['DuPL', 2, '47.5 ± 3.5', '51.0 ± 1.4', '3.5 ± 2.1'] + ['–'] * 6]


def test_rows_change_what_they_say(toy_data_root, tmp_path):
    args = bench.parse_args(['--iters', '30', '--backbone-lr-mult', '0.5'])
    cfgs = {row: bench.regime_config(row, toy_data_root, str(tmp_path), 0,
                                     args) for row in bench.ROWS}
    assert cfgs['baseline'].model.num_students == 1
    dupl = cfgs['dupl'].model.train_cfg
    assert dupl.get('cross_supervision', True)
    assert cfgs['no_discrepancy'].model.train_cfg.loss_weights.disc == 0.
    assert cfgs['self_training'].model.train_cfg.cross_supervision is False
    for cfg in cfgs.values():
        assert cfg.train_cfg.max_iters == 30
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult \
            == 0.5
        monitor = [h for h in cfg.custom_hooks
                   if h['type'] == 'PseudoLabelMonitorHook']
        assert monitor == [dict(type='PseudoLabelMonitorHook', interval=2,
                                num_images=32)]
    with pytest.raises(ValueError, match='unknown row'):
        bench.regime_config('dupl_4x', toy_data_root, str(tmp_path), 0, args)
