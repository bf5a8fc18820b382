"""The house rules of issegm/ and util/, read from the code itself (ast): short functions with
few parameters, `class X:`, short module docstrings, nothing written into a parsed `args`,
and imports that never run back up (util/ never imports issegm/, library modules never import
scripts, no import cycles)."""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 60
MAX_PARAMS = 8
MAX_DOCSTRING_LINES = 6


def _modules():
    """{module name: (path, ast)} of every .py file under issegm/ and util/."""
    out = {}
    for top in ('issegm', 'util'):
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            for name in sorted(files):
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
                    with open(path) as f:
                        out[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = (
                            path, ast.parse(f.read()))
    return out


MODULES = _modules()


def _functions():
    for name, (_, tree) in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield name, node


def _params(node):
    a = node.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    names = [n for n in names if n not in ('self', 'cls')]
    return names + (['*' + a.vararg.arg] if a.vararg else []) + \
        (['**' + a.kwarg.arg] if a.kwarg else [])


def test_functions_are_short_and_take_few_parameters():
    long = ['%s.%s: %d lines' % (m, f.name, f.end_lineno - f.lineno + 1)
            for m, f in _functions() if f.end_lineno - f.lineno + 1 > MAX_LINES]
    wide = ['%s.%s: %d parameters' % (m, f.name, len(_params(f)))
            for m, f in _functions() if len(_params(f)) > MAX_PARAMS]
    assert not long and not wide, long + wide


def test_classes_are_written_class_x():
    old_style = ['%s.%s' % (name, node.name) for name, (_, tree) in MODULES.items()
                 for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                 and any(isinstance(b, ast.Name) and b.id == 'object' for b in node.bases)]
    assert not old_style


def test_module_docstrings_are_a_few_lines():
    """The long explanations live in docs/ (algorithm.md, internals.md)."""
    long = []
    for name, (_, tree) in MODULES.items():
        doc = ast.get_docstring(tree, clean=True)
        if doc is not None and len(doc.splitlines()) > MAX_DOCSTRING_LINES:
            long.append('%s: %d lines' % (name, len(doc.splitlines())))
    assert not long, long


def test_nothing_is_written_into_the_parsed_args():
    """The scripts turn their flags into settings objects; `args.X = ...` is not done."""
    writes = []
    for name, (_, tree) in MODULES.items():
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                for t in ast.walk(target):
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and \
                            t.value.id == 'args':
                        writes.append('%s:%d args.%s' % (name, node.lineno, t.attr))
    assert not writes, writes


def _is_script(tree):
    """A module with an `if __name__ == '__main__':` block."""
    return any(isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
               and isinstance(node.test.left, ast.Name) and node.test.left.id == '__name__'
               for node in tree.body)


def _imports(name, tree):
    """The project modules `name` imports (at any depth of its code)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module] + ['%s.%s' % (node.module, a.name) for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in MODULES and c != name}
    return found


IMPORTS = {name: _imports(name, tree) for name, (_, tree) in MODULES.items()}
SCRIPTS = {name for name, (_, tree) in MODULES.items() if _is_script(tree)}


def test_util_never_imports_issegm():
    up = ['%s -> %s' % (m, i) for m, deps in IMPORTS.items() if m.startswith('util')
          for i in deps if i.startswith('issegm')]
    assert not up, up


@pytest.mark.parametrize('script', ['issegm.rounds.orchestrator', 'issegm.rounds.phase'])
def test_library_modules_and_the_two_round_scripts_import_no_script(script):
    assert script in SCRIPTS
    libraries = [m for m in MODULES if m not in SCRIPTS]
    wrong = ['%s -> %s' % (m, i) for m in libraries + [script] for i in IMPORTS[m]
             if i in SCRIPTS]
    assert not wrong, wrong


def test_no_import_cycles():
    state, cycles = {}, []

    def visit(module, path):
        state[module] = 'open'
        for dep in sorted(IMPORTS[module]):
            if state.get(dep) == 'open':
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[module] = 'done'

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def _is_argparse_action(tree, function):
    """`function` is a method of an argparse.Action subclass (whose __call__ argparse calls
    with the namespace)."""
    return any(isinstance(node, ast.ClassDef) and function in node.body
               and any(isinstance(b, ast.Attribute) and b.attr == 'Action' for b in node.bases)
               for node in ast.walk(tree))


def test_no_library_function_takes_the_parsed_flags():
    """Library modules (no `__main__` block) take settings, never the argparse namespace: no
    parameter named `args` or `namespace`, none annotated `argparse.Namespace`, and no
    settings object holding a Namespace field (the scripts turn their flags into settings)."""
    found = []
    for name, (_, tree) in MODULES.items():
        if name in SCRIPTS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    not _is_argparse_action(tree, node):
                a = node.args
                for p in a.posonlyargs + a.args + a.kwonlyargs:
                    if p.arg in ('args', 'namespace') or 'Namespace' in ast.dump(
                            p.annotation or ast.Constant(None)):
                        found.append('%s.%s(%s)' % (name, node.name, p.arg))
            if isinstance(node, ast.AnnAssign) and 'Namespace' in ast.dump(node.annotation):
                found.append('%s:%d %s' % (name, node.lineno, ast.dump(node.target)))
    assert not found, found


MAX_MODULE_LINES = 400


def _lines(path):
    with open(path) as f:
        return len(f.read().splitlines())


def test_modules_are_at_most_400_lines():
    long = ['%s: %d lines' % (name, _lines(path)) for name, (path, _) in MODULES.items()
            if _lines(path) > MAX_MODULE_LINES]
    assert not long, long


def test_no_parameter_packs_four_values():
    """A parameter unpacked into four or more names is several parameters in a tuple (the
    8-parameter rule dodged): pass them by name, or as a named type read by attribute."""
    packed = []
    for name, (_, tree) in MODULES.items():
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            params = set(_params(function))
            for node in ast.walk(function):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and \
                        node.value.id in params and any(isinstance(t, ast.Tuple) and
                                                        len(t.elts) >= 4 for t in node.targets):
                    packed.append('%s.%s' % (name, function.name))
    assert not packed, packed


def test_setup_installs_every_package():
    """setup.py lists its packages by hand: a package missing there is left out of a
    non-editable install (`pip install .`), and its imports fail only there."""
    with open(os.path.join(REPO, 'setup.py')) as f:
        tree = ast.parse(f.read())
    listed = [ast.literal_eval(k.value) for node in ast.walk(tree) if isinstance(node, ast.Call)
              for k in node.keywords if k.arg == 'packages']
    packages = sorted(name for name, (path, _) in MODULES.items()
                      if os.path.basename(path) == '__init__.py')
    assert listed and sorted(listed[0]) == packages
