"""Small file helpers."""
import json
import os


def write_json(path, obj):
    """Write JSON atomically (temporary file beside it, then rename): a reader or a resumed run
    never sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, '.%s.tmp%d' % (os.path.basename(path), os.getpid()))
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)
