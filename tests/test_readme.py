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
            'issegm/prepare_data.py', 'issegm/check_data.py'} <= scripts


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
