"""Every command line in README.md that runs one of our scripts parses with that script's own
parser (nothing is executed), so the README and the flags cannot drift apart."""
import argparse
import importlib
import importlib.util
import os
import re
import shlex

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEHOLDER = '...'  # "the other flags as above": only the flags shown are checked


def readme_commands():
    """`python ...` command lines: every line of a fenced code block (backslash continuations
    joined, # comments dropped; `horovodrun ... python ...`: the python part) and every inline
    `python ...` code span."""
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    commands = []
    blocks = re.findall(r'^```[^\n]*\n(.*?)^```', text, flags=re.S | re.M)
    for block in blocks:
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.strip()
            if line.startswith('horovodrun') and ' python ' in line:
                line = line[line.index(' python ') + 1:]  # the command each rank runs
            if line.startswith('python'):
                commands.append(line)
    outside = re.sub(r'^```[^\n]*\n.*?^```', '', text, flags=re.S | re.M)
    commands += [' '.join(span.split()) for span in re.findall(r'`(python [^`]+)`', outside)]
    return commands


class Parsed(Exception):
    def __init__(self, parser, namespace):
        super().__init__()
        self.parser, self.namespace = parser, namespace


def parse_with_script(tokens, monkeypatch):
    """Run the script's main() until its ArgumentParser has parsed `tokens[2:]` (or the tokens
    after `-m MODULE`); returns (script name, parser, namespace or None for a partial line)."""
    if tokens[1] == '-m':
        name, argv = tokens[2], tokens[3:]
        module = importlib.import_module(name)
        if hasattr(module, '__path__'):  # a package: `python -m` runs its __main__
            module = importlib.import_module(name + '.__main__')
    else:
        name, argv = tokens[1], tokens[2:]
        path = os.path.join(REPO, name)
        assert os.path.isfile(path), 'README runs a script that does not exist: %s' % name
        spec = importlib.util.spec_from_file_location('readme_' + re.sub(r'\W', '_', name), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    partial = PLACEHOLDER in argv
    real_parse = argparse.ArgumentParser.parse_args

    def parse_only(parser, args=None, namespace=None):
        if partial:
            raise Parsed(parser, None)
        raise Parsed(parser, real_parse(parser, args, namespace))
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', parse_only)
    try:
        module.main(argv)
    except Parsed as done:
        return name, done.parser, done.namespace
    finally:
        monkeypatch.undo()
    raise AssertionError('%s returned without parsing its command line' % name)


def split_launch(tokens):
    """`python -m issegm.launch ... -- python SCRIPT ...` -> (launch part, inner command)."""
    if tokens[1:3] == ['-m', 'issegm.launch'] and '--' in tokens:
        cut = tokens.index('--')
        return tokens[:cut] + ['--', 'COMMAND'], tokens[cut + 1:]
    return tokens, None


def test_readme_has_the_commands_it_should():
    scripts = set()
    for line in readme_commands():
        tokens = shlex.split(line)
        scripts.add(tokens[2] if tokens[1] == '-m' else tokens[1])
    assert {'issegm/solve_AO.py', 'issegm/script-self-paced-self-trained-segresnet.py',
            'issegm/evaluate.py', 'issegm/train_src.py', 'issegm.launch',
            'issegm/prepare_data.py', 'issegm/check_data.py', 'issegm/predict.py'} <= scripts


def test_readme_data_steps_parse_as_meant(monkeypatch):
    """The data section: one prepare_data.py command per dataset, then a check_data.py command,
    before the paper's commands; each read by its script's parser as meant."""
    lines = readme_commands()
    prepared = {}
    for line in lines:
        tokens = shlex.split(line)
        if tokens[1] == 'issegm/prepare_data.py':
            _, _, args = parse_with_script(tokens, monkeypatch)
            assert args.data_root.startswith('DATA_ROOT_') and args.dataset not in prepared
            prepared[args.dataset] = lines.index(line)
    assert sorted(prepared) == ['cityscapes', 'gta', 'synthia']
    check = [line for line in lines if line.startswith('python issegm/check_data.py')]
    assert len(check) == 1
    _, _, args = parse_with_script(shlex.split(check[0]), monkeypatch)
    assert (args.dataset, args.data_root, args.full) == ('cityscapes', 'DATA_ROOT_CITYSCAPES',
                                                         False)
    first_round = min(k for k, line in enumerate(lines) if 'issegm/solve_AO.py' in line)
    assert max(prepared.values()) < lines.index(check[0]) < first_round


@pytest.mark.parametrize('line', readme_commands(), ids=lambda line: line[:70])
def test_readme_command_parses(line, monkeypatch):
    outer, inner = split_launch(shlex.split(line))
    for tokens in filter(None, (outer, inner)):
        try:
            name, parser, namespace = parse_with_script(tokens, monkeypatch)
        except SystemExit as exit:
            if exit.code == 0 and ('--help' in tokens or '-h' in tokens):
                continue  # argparse printed the help
            pytest.fail('README command does not parse: %s' % ' '.join(tokens))
        if namespace is None:  # a partial line: every flag shown must exist
            flags = [t for t in tokens[2:] if t.startswith('-') and t != '--']
            unknown = [f for f in flags if f not in parser._option_string_actions]
            assert not unknown, (name, unknown)
        if name.endswith(('solve_AO.py', 'script-self-paced-self-trained-segresnet.py')) \
                and namespace is not None:
            # the round script it names exists too
            assert os.path.isfile(os.path.join(REPO, namespace.self_training_script))


def test_readme_predict_commands_and_outputs(monkeypatch):
    """The README's predict.py command lines parse with inputs and output kinds predict.py
    accepts, and its table names every output folder."""
    from issegm.prediction.outputs import KINDS, requested_kinds
    lines = [line for line in readme_commands() if line.startswith('python issegm/predict.py')]
    assert len(lines) >= 3
    for line in lines:
        _, _, namespace = parse_with_script(shlex.split(line), monkeypatch)
        assert namespace.inputs and namespace.weights and namespace.output
        assert requested_kinds(namespace.outputs, namespace.confidence, namespace.save_probs)
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    for kind in KINDS:
        assert '`%s/NAME.' % kind in text, kind


# The two self-training commands of yzou2/CBST's README of record (the first release, commit
# 3972f57, October 2018), as written there: the SYNTHIA2City one names the per-round script by
# its first-release name, self-paced-self-trained-segresnet-public-v1.py.
README_OF_RECORD = [
    'python issegm/script-self-paced-self-trained-segresnet.py --num-round 12 --test-scales 1850 '
    '--scale-rate-range 0.7,1.3 --dataset synthia --dataset-tgt cityscapes --split train '
    '--split-tgt val --data-root /home/datasets/RAND_CITYSCAPES --data-root-tgt '
    '/home/datasets/cityscapes/data_original --output spst_syn2city/cbst_eccv_min0-8 --model '
    'cityscapes_rna-a1_cls16_s8 --weights models/synthia_rna-a1_cls16_s8_ep-0000.params '
    '--batch-images 2 --crop-size 500 --origin-size 1280 --origin-size-tgt 2048 --init-tgt-port '
    '0.2 --init-src-port 0.02 --max-src-port 0.06 --seed-int 0 --mine-port 0.8 --mine-id-number '
    '3 --mine-thresh 0.001 --base-lr 1e-4 --to-epoch 2 --source-sample-policy cumulative '
    '--self-training-script issegm/self-paced-self-trained-segresnet-public-v1.py --kc-policy cb '
    '--prefetch-threads 2 --gpus 2 --with-prior False',
    'python issegm/script-self-paced-self-trained-segresnet.py --num-round 5 --test-scales 1850 '
    '--scale-rate-range 0.7,1.3 --dataset gta --dataset-tgt cityscapes --split train --split-tgt '
    'val --data-root DATA_ROOT_GTA5 --data-root-tgt DATA_ROOT_CITYSCAPES --output '
    'spst_gta2city/cbst-sp --model cityscapes_rna-a1_cls19_s8 --weights '
    'models/gta_rna-a1_cls19_s8_ep-0000.params --batch-images 2 --crop-size 500 '
    '--origin-size-tgt 2048 --init-tgt-port 0.15 --init-src-port 0.03 --seed-int 0 --mine-port '
    '0.8 --mine-id-number 3 --mine-thresh 0.001 --base-lr 1e-4 --to-epoch 2 '
    '--source-sample-policy cumulative --self-training-script '
    'issegm/self-paced-self-trained-segresnet.py --kc-policy cb --prefetch-threads 2 --gpus 0 '
    '--with-prior True',
]


@pytest.mark.parametrize('line', README_OF_RECORD, ids=['synthia2city', 'gta2city'])
def test_readme_of_record_commands_parse_and_name_existing_scripts(line, monkeypatch):
    name, _, namespace = parse_with_script(shlex.split(line), monkeypatch)
    assert name == 'issegm/script-self-paced-self-trained-segresnet.py'
    assert os.path.isfile(os.path.join(REPO, namespace.self_training_script))
    assert (namespace.num_round, namespace.split_tgt) in ((12, 'val'), (5, 'val'))


@pytest.mark.slow
def test_first_release_round_script_runs_the_round_script(tmp_path):
    """The first release's per-round script name runs issegm.rounds.phase: the same flags and
    the same one-line errors as issegm/self-paced-self-trained-segresnet.py."""
    import subprocess
    import sys
    outputs = []
    for script in ('self-paced-self-trained-segresnet-public-v1.py',
                   'self-paced-self-trained-segresnet.py'):
        path = os.path.join(REPO, 'issegm', script)
        helped = subprocess.run([sys.executable, path, '--help'], capture_output=True, text=True,
                                cwd=str(tmp_path))
        failed = subprocess.run([sys.executable, path, '--phase', 'val', '--output',
                                 str(tmp_path / 'out'), '--weights', str(tmp_path / 'none.params')],
                                capture_output=True, text=True, cwd=str(tmp_path))
        assert helped.returncode == 0 and '--idx-round' in helped.stdout
        assert failed.returncode != 0 and failed.stderr.startswith('error:')
        outputs.append((helped.stdout.split('\n\n', 1)[1], failed.stderr))  # after usage
    assert outputs[0] == outputs[1]


def test_readme_is_a_users_guide_of_at_most_400_lines():
    """The README stays a user's guide (issue 28): details live in docs/, history in
    CHANGELOG.md, and every docs/ page it points to exists."""
    with open(os.path.join(REPO, 'README.md')) as f:
        text = f.read()
    assert len(text.splitlines()) <= 400
    pages = set(re.findall(r'`?(docs/[\w.-]+\.md|CHANGELOG\.md)`?', text))
    assert pages and all(os.path.isfile(os.path.join(REPO, p)) for p in pages), pages
