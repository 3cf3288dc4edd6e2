"""The MobileNetV2 transfer-learning tutorial's recipe on real MobileNetV2 weights; prints
stage 1 and stage 2 validation accuracy next to the tutorial's 97.65% -> 97.92%.

Rootstock: the Teachable Machine export in the assets (Keras MobileNetV2 0.35/224),
converted with `tfgraft convert keras --model`. Data: cats_and_dogs_filtered, train/
to train, validation/ (1000 images) to score.
  stage 1  frozen base, the `logit` head (dropout 0.2, one logit), Adam 3e-4,
           10 epochs of batch 32 on the cached bottlenecks (`tfgraft train`)
  stage 2  unfrozen from Keras layer 100, RMSprop at 3e-5 (a tenth), horizontal flips
           and rotations up to 0.2 of a turn, 10 more epochs (`tfgraft finetune`)

usage: python benchmarks/mobilenet_v2_recipe.py [--work_dir DIR] [--stage2_epochs N]
Re-running with the same --work_dir reuses the graph and records already made.
"""
import argparse
import os
import sys
import time

TUTORIAL = (0.9765, 0.9792)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--assets', default=os.environ.get('TFGRAFT_ASSETS') or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'assets'))
    parser.add_argument('--work_dir', default='/tmp/tfgraft_mobilenet_v2_recipe')
    parser.add_argument('--stage1_epochs', type=int, default=10)
    parser.add_argument('--stage2_epochs', type=int, default=10)
    parser.add_argument('--fine_tune_at', type=int, default=100)
    args = parser.parse_args()
    from tfgraft.tools.cli import main as tfgraft
    from tfgraft.engine.evaluation import evaluate_model
    images = os.path.join(args.assets, 'cats_and_dogs_filtered')
    graph = os.path.join(args.work_dir, 'mobilenet_v2_0.35_224.pb')
    records = os.path.join(args.work_dir, 'records')
    model_dir = os.path.join(args.work_dir, 'model')
    os.makedirs(args.work_dir, exist_ok=True)
    started = time.time()
    if not os.path.isfile(graph):
        assert tfgraft(['convert', 'keras', '--model', os.path.join(
            args.assets, 'keras_mobilenet_v2_0.35_224', 'keras_model.h5'), '--output_graph', graph]) == 0
    assert tfgraft(['bottlenecks', '--image_dir', images, '--graph', graph, '--bottleneck_dir', records]) == 0
    steps = args.stage1_epochs * (2000 // 32)
    assert tfgraft(['train', '--bottleneck_dir', records, '--model_dir', model_dir, '--head', 'logit',
                    '--optimizer', 'adam', '--learning_rate', '3e-4', '--dropout', '0.2',
                    '--train_batch_size', '32', '--how_many_training_steps', str(steps),
                    '--eval_step_interval', '62']) == 0
    stage1 = evaluate_model(model_dir, records, 'validation')['accuracy']
    print('stage 1 done after %.0f s' % (time.time() - started), flush=True)
    from tfgraft.engine.augment import Augmentation
    from tfgraft.engine.finetune import finetune
    result = finetune(images, model_dir, graph=graph, fine_tune_at=args.fine_tune_at,
                      epochs=args.stage2_epochs, batch_size=32, optimizer='rmsprop',
                      learning_rate=3e-5, augmentation=Augmentation(flip_left_right=True, rotation=0.2),
                      progress=True)
    stage2 = result['after']['accuracy']
    print('\nMobileNetV2 0.35/224 (Teachable Machine weights), cats_and_dogs_filtered validation (N=%d)'
          % result['after']['count'])
    print('stage 1 (frozen base, logit head, Adam 3e-4, %d epochs): %.2f%%   tutorial %.2f%%'
          % (args.stage1_epochs, stage1 * 100, TUTORIAL[0] * 100))
    print('stage 2 (from Keras layer %d, RMSprop 3e-5, flips + rotations, %d epochs): %.2f%%   tutorial %.2f%%'
          % (args.fine_tune_at, args.stage2_epochs, stage2 * 100, TUTORIAL[1] * 100))
    print('wall time %.0f s' % (time.time() - started))
    return 0


if __name__ == '__main__':
    sys.exit(main())
