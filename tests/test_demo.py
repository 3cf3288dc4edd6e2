"""The README's first command: the demo runs end to end on embedded data."""
import os
import re

import pytest

from tfgraft.tools import cli


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    work_dir = str(tmp_path / 'demo')
    assert cli.main(['demo', '--work_dir', work_dir]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r'demo test accuracy: ([\d.]+)%', out).group(1))
    assert accuracy >= 80.0
    for name in ('rootstock/rootstock.pb', 'rootstock/rootstock.card.json', 'output_graph.pb',
                 'output_labels.txt', 'model/params.json', 'bottlenecks/manifest.json'):
        assert os.path.isfile(os.path.join(work_dir, name)), name
    assert '-> faces' in out and '-> non_faces' in out
    # A re-run reuses the rootstock and the records.
    assert cli.main(['demo', '--work_dir', work_dir]) == 0
    again = capsys.readouterr()
    assert 'rootstock: reusing' in again.out and 'up to date' in again.err
