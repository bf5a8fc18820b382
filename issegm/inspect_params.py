"""Check a weight file against a model: `python issegm/inspect_params.py --model M --weights F`.

Exit 0 with a one-line summary when every parameter fits; exit 1 listing each missing,
unexpected and wrong-shape parameter by name otherwise.
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds `util`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.errors import UserError, cli_entry  # noqa: E402
from util.flags import FlagParser  # noqa: E402
from util.model_label import parse_model_label  # noqa: E402


def parse_args(argv):
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='model label, e.g. gta_rna-a1_cls19_s8')
    parser.add_argument('--weights', required=True, help='weight file (.params)')
    return parser.parse_args(argv)


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    parse_model_label(args.model)
    from util.symbol.resnet38 import parameter_shapes  # these import MXNet: after the flags
    from util.weights import check_fit, describe_misfit, load_weights
    expected = parameter_shapes(args.model)
    arg_params, aux_params = load_weights(args.weights)
    report = check_fit(expected, arg_params, aux_params)
    problems = describe_misfit(report)
    if problems:
        for line in problems:
            print(line)
        raise UserError('%s does not fit %s: %d missing, %d unexpected, %d wrong shape'
                        % (args.weights, args.model, len(report.missing), len(report.unexpected),
                           len(report.wrong_shape)))
    values = sum(v.size for v in list(arg_params.values()) + list(aux_params.values()))
    print('%s fits %s: %d arg + %d aux parameters, %.1f M values'
          % (args.weights, args.model, len(arg_params), len(aux_params), values / 1e6))
    return 0


if __name__ == '__main__':
    sys.exit(main())
