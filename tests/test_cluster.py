"""`tfgraft train` on a TF_CONFIG cluster of localhost processes (engine/cluster.py).

Real MobileNet v1 0.25/128 records of cats_and_dogs_filtered. Each test picks free
ports on 127.0.0.1, starts its tasks as `python -m tfgraft.tools.cli train` processes
and ends every one of them (kill in finally, timeouts on every wait).
"""
import glob
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tfgraft.engine.cluster import task_from_env
from tfgraft.graphs.errors import GraftError
from tfgraft.tools.cli import main
from tfgraft.engine.evaluation import evaluate_model

STEPS = 3000
WAIT = 900       # seconds any one process may take


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(('127.0.0.1', 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def make_cluster(**counts):
    ports = iter(free_ports(sum(counts.values())))
    return {job: ['127.0.0.1:%d' % next(ports) for _ in range(count)]
            for job, count in counts.items() if count}


class Cluster:
    """The task processes a test started; stop() kills what is still running."""

    def __init__(self, cluster, folder, flags):
        self.cluster, self.folder, self.flags = cluster, folder, flags
        self.processes = {}

    def start(self, kind, index=0, command='train'):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {'cluster': self.cluster, 'task': {'type': kind, 'index': index}}))
        name = '%s%d' % (kind, index)
        log = open(os.path.join(self.folder, name + '.log'), 'a')
        self.processes[name] = subprocess.Popen(
            [sys.executable, '-m', 'tfgraft.tools.cli', command] + self.flags,
            env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self.processes[name]

    def log(self, name):
        with open(os.path.join(self.folder, name + '.log')) as handle:
            return handle.read()

    def wait(self, name, timeout=WAIT):
        code = self.processes[name].wait(timeout=timeout)
        assert code == 0, self.log(name)[-3000:]

    def kill(self, name):
        self.processes[name].kill()
        self.processes[name].wait(timeout=60)

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=60)


def train_flags(records, model_dir, steps=STEPS, save_every=500):
    return ['--bottleneck_dir', records, '--model_dir', model_dir, '--how_many_training_steps',
            str(steps), '--eval_step_interval', '100', '--save_checkpoints_steps', str(save_every)]


def checkpoint_steps(model_dir):
    return sorted(int(re.search(r'-(\d+)\.index$', path).group(1))
                  for path in glob.glob(os.path.join(model_dir, 'model.ckpt-*.index')))


def wait_until(condition, what, timeout=WAIT):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            pytest.fail('timed out waiting for %s' % what)
        time.sleep(0.2)


def test_tf_config_is_read_and_checked():
    cluster = make_cluster(chief=1, worker=2, ps=1)
    task = task_from_env({'TF_CONFIG': json.dumps({'cluster': cluster,
                                                   'task': {'type': 'worker', 'index': 1}})})
    assert (task.type, task.index, task.num_workers, task.worker_index) == ('worker', 1, 3, 2)
    assert task.session_config().device_filters == ['/job:ps', '/job:worker/task:1']
    assert task_from_env({}) is None and task_from_env({'TF_CONFIG': ''}) is None
    for bad in ('{not json', json.dumps({'cluster': {'worker': ['a:1']}, 'task': {'type': 'worker'}}),
                json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': 2}})):
        with pytest.raises(GraftError):
            task_from_env({'TF_CONFIG': bad})


@pytest.mark.slow
def test_ps_chief_worker_and_evaluator_train_as_well_as_one_process(cats_dogs_records, tmp_path):
    single = str(tmp_path / 'single')
    assert main(['train'] + train_flags(cats_dogs_records, single)) == 0
    alone = evaluate_model(single, cats_dogs_records, 'validation')

    model_dir = str(tmp_path / 'cluster')
    tasks = Cluster(make_cluster(chief=1, worker=1, ps=1, evaluator=1), str(tmp_path),
                    train_flags(cats_dogs_records, model_dir))
    try:
        for kind in ('ps', 'chief', 'worker', 'evaluator'):
            tasks.start(kind)
        tasks.wait('chief0')
        tasks.wait('ps0', timeout=120)          # ends by itself once the chief is done
        tasks.wait('worker0', timeout=300)
        tasks.wait('evaluator0', timeout=600)
    finally:
        tasks.stop()
    worker_log = tasks.log('worker0')
    assert 'worker 0 starts at global step' in worker_log
    assert checkpoint_steps(model_dir)[-1] >= STEPS
    together = evaluate_model(model_dir, cats_dogs_records, 'validation')
    print('validation accuracy: one process %.4f, cluster %.4f'
          % (alone['accuracy'], together['accuracy']))
    assert together['count'] == alone['count'] == 1000
    assert abs(together['accuracy'] - alone['accuracy']) <= 0.01
    # the evaluator's last line is the final checkpoint's validation accuracy
    evaluated = re.findall(r'evaluator: step (\d+) validation accuracy ([\d.]+)%',
                           tasks.log('evaluator0'))
    assert evaluated and int(evaluated[-1][0]) >= STEPS
    assert abs(float(evaluated[-1][1]) - together['accuracy'] * 100) < 0.051
    assert glob.glob(os.path.join(model_dir, 'validation', 'events.out.tfevents.*'))


@pytest.mark.slow
def test_a_killed_worker_does_not_stop_the_chief(cats_dogs_records, tmp_path):
    model_dir = str(tmp_path / 'model')
    tasks = Cluster(make_cluster(chief=1, worker=1, ps=1), str(tmp_path),
                    train_flags(cats_dogs_records, model_dir, save_every=100))
    try:
        for kind in ('ps', 'chief', 'worker'):
            tasks.start(kind)
        wait_until(lambda: 'starts at global step' in tasks.log('worker0')
                   and checkpoint_steps(model_dir), 'the worker to train')
        tasks.kill('worker0')
        tasks.wait('chief0')
        tasks.wait('ps0', timeout=120)
    finally:
        tasks.stop()
    assert checkpoint_steps(model_dir)[-1] >= STEPS
    assert evaluate_model(model_dir, cats_dogs_records, 'validation')['accuracy'] >= 0.85


@pytest.mark.slow
def test_a_killed_chief_restarted_resumes_from_its_last_checkpoint(cats_dogs_records, tmp_path):
    model_dir = str(tmp_path / 'model')
    tasks = Cluster(make_cluster(chief=1, ps=1), str(tmp_path),
                    train_flags(cats_dogs_records, model_dir, save_every=100))
    try:
        tasks.start('ps')
        tasks.start('chief')
        wait_until(lambda: checkpoint_steps(model_dir), 'a first checkpoint')
        tasks.kill('chief0')
        last = int(tf.train.latest_checkpoint(model_dir).rsplit('-', 1)[1])
        assert 0 < last < STEPS
        tasks.start('chief')                      # same TF_CONFIG, same command
        tasks.wait('chief0')
        tasks.wait('ps0', timeout=120)
    finally:
        tasks.stop()
    log = tasks.log('chief0')
    assert 'chief restores model.ckpt-%d\n' % last in log
    assert 'chief 0 starts at global step %d of %d' % (last, STEPS) in log
    assert checkpoint_steps(model_dir)[-1] >= STEPS


@pytest.mark.slow
def test_finetune_on_a_cluster_trains_the_backbone_with_the_workers(mobilenet_pb, mobilenet_backbone,
                                                                   cats_and_dogs, tmp_path):
    """A small image folder (links to 24 + 10 real photos a class); stage 1 in one process,
    then stage 2 on ps + chief + worker + evaluator."""
    from tfgraft.records.extract import write_bottlenecks
    images = tmp_path / 'images'
    for split, count in (('train', 24), ('validation', 10)):
        for kind in ('cats', 'dogs'):
            folder = images / split / kind
            folder.mkdir(parents=True)
            source = os.path.join(cats_and_dogs, split, kind)
            for name in sorted(os.listdir(source))[:count]:
                os.symlink(os.path.join(source, name), str(folder / name))
    records, model_dir = str(tmp_path / 'records'), str(tmp_path / 'model')
    write_bottlenecks(str(images), mobilenet_backbone, records, batch_size=64, progress=False)
    assert main(['train', '--bottleneck_dir', records, '--model_dir', model_dir,
                 '--how_many_training_steps', '50']) == 0
    tasks = Cluster(make_cluster(chief=1, worker=1, ps=1, evaluator=1), str(tmp_path),
                    ['--image_dir', str(images), '--model_dir', model_dir, '--graph', mobilenet_pb,
                     '--fine_tune_at', '12', '--epochs', '4', '--batch_size', '4'])
    try:
        for kind in ('ps', 'chief', 'worker', 'evaluator'):
            tasks.start(kind, command='finetune')
        tasks.wait('chief0')
        tasks.wait('ps0', timeout=120)
        tasks.wait('worker0', timeout=300)
        tasks.wait('evaluator0', timeout=300)
    finally:
        tasks.stop()
    stages = json.load(open(os.path.join(model_dir, 'params.json')))['fine_tune']['stages']
    start = stages[0]['start_step']
    last = start + 4 * (48 // 4)     # 4 epochs of 12 steps; asynchronous workers may each
    assert start == 50 and last <= checkpoint_steps(model_dir)[-1] <= last + 1    # pass it once
    joined = re.search(r'worker 0 starts at global step (\d+) of %d' % last, tasks.log('worker0'))
    assert joined and start <= int(joined.group(1)) < last      # the worker trained some steps
    evaluated = re.findall(r'evaluator: step (\d+) validation accuracy', tasks.log('evaluator0'))
    assert evaluated and int(evaluated[-1]) >= last
    before = tf.train.load_checkpoint(os.path.join(model_dir, 'model.ckpt-%d' % start))
    after = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
    tuned = [name for name in after.get_variable_to_shape_map()
             if name.startswith('backbone_trainable/') and 'RMSProp' not in name]
    assert tuned and any(not np.array_equal(before.get_tensor(n), after.get_tensor(n)) for n in tuned)
