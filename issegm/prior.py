"""The spatial prior of phase val (--with-prior, docs/algorithm.md section 2 step 3): where its
file is by default and how it is read. issegm/make_prior.py builds one."""
import os

import numpy as np
import scipy.io

from util.errors import UserError

__all__ = ['PRIOR_KEY', 'default_prior_path', 'load_prior']

PRIOR_KEY = 'prior_array'


def default_prior_path(dataset):
    """spatial_prior/DATASET/prior_array.mat relative to the working directory, else the repo."""
    rel = os.path.join('spatial_prior', dataset, 'prior_array.mat')
    if os.path.isfile(rel):
        return rel
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(repo, rel)


def require_prior(path):
    """`path`, or a UserError when there is no file there."""
    if not path or not os.path.isfile(path):
        raise UserError('spatial prior not found: %s (build one with issegm/make_prior.py)'
                        % path)
    return path


def load_prior(path, num_classes, size_hw):
    """The float32 (C, H, W) prior of a .mat file; a UserError if missing, unreadable or of
    another shape than (num_classes, H, W)."""
    require_prior(path)
    try:
        mat = scipy.io.loadmat(path, variable_names=[PRIOR_KEY])
    except NotImplementedError:  # MATLAB v7.3 (HDF5) files
        raise UserError('cannot read spatial prior %s: MATLAB v7.3 files are not supported, '
                        'save it as v7 or older' % path)
    except Exception as e:
        raise UserError('cannot read spatial prior %s: %s' % (path, str(e).splitlines()[0]
                                                             if str(e) else type(e).__name__))
    if PRIOR_KEY not in mat:
        raise UserError('spatial prior %s has no variable %r' % (path, PRIOR_KEY))
    prior = np.asarray(mat[PRIOR_KEY])
    want = (int(num_classes),) + tuple(int(v) for v in size_hw)
    if prior.shape != want:
        raise UserError('spatial prior %s has shape %s, expected (classes, H, W) = %s'
                        % (path, 'x'.join(map(str, prior.shape)), 'x'.join(map(str, want))))
    if not np.issubdtype(prior.dtype, np.number):
        raise UserError('spatial prior %s holds %s values, expected numbers' % (path, prior.dtype))
    return np.ascontiguousarray(prior, dtype=np.float32)
