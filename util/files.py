"""Small file helpers."""
import json
import os
import threading


def write_json(path, obj):
    """Write JSON atomically (temporary file beside it, then rename): a reader or a resumed run
    never sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, '.%s.tmp%d' % (os.path.basename(path), os.getpid()))
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def write_atomically(path, write):
    """Call write(binary file object) on a temporary file beside `path`, then rename it to
    `path`: a file that exists is whole (a resumed run may skip it). Safe from several threads
    and processes (the temporary name holds both ids)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, '.%s.%d-%d.tmp' % (os.path.basename(path), os.getpid(),
                                                  threading.get_ident()))
    try:
        with open(tmp, 'wb') as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
