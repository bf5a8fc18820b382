"""The settings of one phase of a round: built from the per-round script's flags by
issegm/self_training.py (check_args), read by issegm/phase_val.py and issegm/phase_train.py.
No MXNet, so the flags are checked before it is imported."""
import dataclasses
from typing import Optional, Tuple

from issegm.crst.settings import CrstSettings
from issegm.sampling import CropSettings
from util.model_label import ModelLabel

__all__ = ['DataSplit', 'RoundSettings', 'ValSettings', 'TrainSettings']


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """A split of a dataset: the name of its tables (issegm.datasets.get_dataset), the split
    name or .lst path, and the root the list's paths are relative to."""
    dataset: str
    split: str
    data_root: Optional[str]


@dataclasses.dataclass(frozen=True)
class RoundSettings:
    """What both phases of round `idx_round` read. log_file: --log-file, else
    OUTPUT/roundR-PHASE.log; argv: the phase's command line, which its done marker records."""
    output: str
    idx_round: int
    phase: str
    model: str
    parsed_model: ModelLabel
    weights: str
    gpus: str
    source: DataSplit
    target: DataSplit
    crst: CrstSettings
    log_file: str
    debug: bool
    progress: bool
    argv: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ValSettings:
    """Phase val: pseudo-label round.target at test scale test_scales[0] (one scale), keeping
    the tgt_port most confident pixels by policy kc_policy; prior_path: the spatial prior .mat
    with --with-prior, else None; mining statistics from mine_id_number and mine_thresh."""
    round: RoundSettings
    test_scales: Tuple[int, ...]
    test_flipping: bool
    test_steps: int
    tgt_port: float
    kc_policy: str
    prior_path: Optional[str]
    mine_id_number: int
    mine_thresh: float
    keep_probmaps: bool


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Phase train: retrain on src_port of round.source (drawn with `seed`) and the
    pseudo-labelled target, crops as `crops` says (phase train adds the mining classes of the
    statistics under mine_id_address and the number of classes), epochs from_epoch ..
    stop_epoch of an lr schedule to to_epoch."""
    round: RoundSettings
    src_port: float
    seed: int
    origin_size: int
    origin_size_tgt: int
    batch_images: int
    crops: CropSettings
    mine_id_address: Optional[str]
    prefetch_threads: int
    prefetcher: str
    cache_images: bool
    kvstore: str
    from_epoch: int
    stop_epoch: int
    to_epoch: int
    lr_type: str
    lr_steps: str
    base_lr: float
    weight_decay: float
    mirror: bool = False  # --backward-do-mirror: recompute each residual unit (util/mirroring.py)
