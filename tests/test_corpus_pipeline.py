"""The whole bottleneck pipeline on the bad-input corpus: used, skipped with a reason, 0 crashes."""
import os

import pytest

from corpus.make_corpus import make_corpus
from tfgraft.records import reader
from tfgraft.records.extract import write_bottlenecks
from tfgraft.records.verify import verify_records
from tfgraft.tools import cli


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('corpus') / 'photos')
    return root, make_corpus(root)


def test_corpus_through_the_real_pipeline(corpus, mobilenet_backbone, tmp_path):
    root, expected = corpus
    out = str(tmp_path / 'records')
    manifest = write_bottlenecks(root, mobilenet_backbone, out, batch_size=4,
                                 validation_percentage=0, testing_percentage=0,
                                 skip_empty_classes=True, progress=False)
    recorded = reader.load_split(out, 'train')['image_paths']
    skipped = {item['image_path']: item['reason'] for item in manifest['skipped']}

    for path, case in expected.items():
        if case.outcome == 'used':
            assert path in recorded, path
        elif case.outcome == 'skipped':
            assert path in skipped, path
            assert case.reason in skipped[path], (path, skipped[path])
        else:
            assert path not in recorded and path not in skipped, path
    assert 'empty_class/' in skipped
    assert len(recorded) == len(set(recorded)) == manifest['splits']['train']['count']
    assert sum(manifest['splits']['train']['per_class'].values()) == len(recorded)
    assert verify_records(out) == []


def test_empty_class_without_the_flag_is_one_clear_error(corpus, mobilenet_pb, tmp_path, capsys):
    root, _ = corpus
    code = cli.main(['bottlenecks', '--image_dir', root, '--graph', mobilenet_pb,
                     '--bottleneck_dir', str(tmp_path / 'out')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].startswith("tfgraft: error: class folder 'empty_class' has no images")
    assert not os.path.exists(tmp_path / 'out')
