"""A small seeded fuzz run (tests/corpus/fuzz.py): mutated JPEGs, graphs and weight
files are used or refused, never crash or hang, and no pickle payload runs."""
import os
import pickle

import numpy as np
import pytest

from corpus import fuzz


@pytest.fixture(scope='module')
def fuzz_results(mobilenet_pb, cats_and_dogs, tmp_path_factory):
    return fuzz.run_fuzz(seed=1, jpegs=30, pbs=15, npys=15, work=str(tmp_path_factory.mktemp('fuzz')))


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['jpeg', 'pb', 'npy'])
def test_every_case_is_used_or_refused(fuzz_results, kind):
    counts = fuzz_results[kind]
    assert counts['crashes'] == 0 and counts['hangs'] == 0, counts['failures']
    assert counts['ok'] + counts['refused'] == counts['cases'] > 0
    assert counts['refused'] > 0  # the mutations do reach the checks


@pytest.mark.slow
def test_no_pickle_payload_ran(fuzz_results):
    assert fuzz_results['npy']['markers'] == []


def test_hostile_pickles_are_refused(tmp_path):
    """Every payload, alone or inside a weight dict, is refused before it runs."""
    from tfgraft.graphs.errors import GraftError
    from tfgraft.graphs.npy_standin import standin_weights
    from tfgraft.graphs.npy_weights import load_weights
    source = str(tmp_path / 'source.npy')
    np.save(source, {layer: list(pair) for layer, pair in
                     standin_weights('alexnet', width_divisor=8).items()}, allow_pickle=True)
    with open(source, 'rb') as handle:
        header = handle.read()[:fuzz.pickle_start(source)]
    marker = str(tmp_path / 'marker')
    for number, (function, argument) in enumerate(fuzz.payloads(marker)):
        for held in (fuzz.Payload(function, argument), {'conv1': [fuzz.Payload(function, argument)]}):
            path = str(tmp_path / ('payload_%d.npy' % number))
            with open(path, 'wb') as handle:
                handle.write(header + pickle.dumps(held, protocol=4))
            with pytest.raises(GraftError, match='refused'):
                load_weights(path)
    assert not os.path.exists(marker)


@pytest.mark.slow
def test_worker_reports_a_crash_and_restarts(tmp_path, mobilenet_pb, cats_and_dogs):
    """The harness itself: a worker killed by a signal is counted, the next case still runs."""
    worker = fuzz.Worker(mobilenet_pb, '', str(tmp_path / 'log'))
    try:
        worker.start()
        worker.process.kill()
        outcome, detail = worker.run({'kind': 'npy', 'path': str(tmp_path / 'none.npy')}, 30)
        assert outcome == 'crash' and 'signal' in detail
        assert worker.run({'kind': 'npy', 'path': str(tmp_path / 'none.npy')}, 60)[0] == 'refused'
    finally:
        worker.close()
