"""What an image or label file's header says (format, size, colour, bit depth, complete),
read without decoding its pixels, and the problems of one listed sample found from it."""
import collections
import os
import struct
import zlib

from PIL import Image

from issegm.datacheck.problems import WARNING, Problem
from util.errors import not_a_file

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'

PNG_COLOURS = {0: 'grayscale', 2: 'RGB', 3: 'palette', 4: 'grayscale+alpha', 6: 'RGBA'}

# Pillow modes of other formats: (colour, bit depth)
PIL_MODES = {'1': ('grayscale', 1), 'L': ('grayscale', 8), 'P': ('palette', 8),
             'RGB': ('RGB', 8), 'RGBA': ('RGBA', 8), 'LA': ('grayscale+alpha', 8),
             'I;16': ('grayscale', 16), 'I': ('grayscale', 32), 'F': ('grayscale', 32),
             'CMYK': ('CMYK', 8), 'YCbCr': ('YCbCr', 8)}

TAIL_BYTES = 64  # where a complete file's end marker must be (PNG IEND, JPEG EOI)

Header = collections.namedtuple('Header', 'format width height colour depth complete')


class HeaderError(ValueError):
    """A file whose header cannot be read as an image."""


def read_header(path):
    """Format, size, colour type, bit depth and completeness of an image file, without decoding
    its pixels; raises HeaderError for a file that is not a readable image."""
    with open(path, 'rb') as f:
        head = f.read(33)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read()
    if not head:
        raise HeaderError('empty file')
    if head[:8] == PNG_SIGNATURE:
        if len(head) < 26 or head[12:16] != b'IHDR':
            raise HeaderError('PNG without its IHDR header (truncated or corrupt)')
        width, height, depth, colour = struct.unpack('>IIBB', head[16:26])
        return Header('PNG', width, height, PNG_COLOURS.get(colour, 'colour type %d' % colour),
                      depth, b'IEND' in tail)
    try:
        with Image.open(path) as img:
            fmt, (width, height), mode = img.format, img.size, img.mode
    except Image.DecompressionBombError as e:  # its size, from its header: too large to open
        raise HeaderError(str(e))
    except Exception:
        raise HeaderError('not an image file (no format Pillow knows)')
    colour, depth = PIL_MODES.get(mode, (mode, 8))
    complete = b'\xff\xd9' in tail if fmt == 'JPEG' else True
    return Header(fmt, width, height, colour, depth, complete)


def png_chunk_problem(path):
    """None, or what is wrong with the chunks of a PNG file: each chunk's length and CRC are
    checked, as a decoder would, without decompressing the pixels (a corrupt file that still
    ends with IEND)."""
    with open(path, 'rb') as f:
        if f.read(8) != PNG_SIGNATURE:
            return 'not a PNG file'
        while True:
            head = f.read(8)
            if len(head) < 8:
                return 'the file ends before its IEND chunk (truncated)'
            length, kind = struct.unpack('>I4s', head)
            data, crc = f.read(length), f.read(4)
            if len(data) < length or len(crc) < 4:
                return 'the file ends inside its %s chunk (truncated)' % kind.decode('latin-1')
            if zlib.crc32(kind + data) != struct.unpack('>I', crc)[0]:
                return 'its %s chunk is corrupt (CRC mismatch)' % kind.decode('latin-1')
            if kind == b'IEND':
                return None


def describe_header(header):
    """E.g. 'an 8-bit RGBA PNG'."""
    text = '%d-bit %s %s' % (header.depth, header.colour, header.format)
    return ('an ' if text[0] in '8aeiou' else 'a ') + text


def header_or_problem(path, what):
    """(Header, []) or (None, [the Problem why not])."""
    reason = not_a_file(path)
    if reason == 'not found':
        return None, [Problem(path, 'missing', '%s not found' % what)]
    if reason:  # a folder, a symbolic link loop, ...
        return None, [Problem(path, 'not-file', '%s %s' % (what, reason))]
    try:
        return read_header(path), []
    except (OSError, HeaderError) as e:
        return None, [Problem(path, 'not-image', 'cannot read the %s: %s' % (what, e))]


def truncation_problems(path, header, what):
    """[] or [the Problem of a file that ends before its end marker] (Header.complete)."""
    if header.complete:
        return []
    return [Problem(path, 'truncated', '%s is truncated: the %s file ends before its end '
                                       'marker (an interrupted download or copy?)'
                    % (what, header.format))]


def image_problems(path, header):
    """The problems of an image's header (8-bit RGB PNG expected)."""
    if header.format != 'PNG':
        return [Problem(path, 'image-format', 'image is a %s file (%s); expected an 8-bit RGB PNG '
                        'as the datasets ship them (a re-encoded image has other pixels)'
                        % (header.format, describe_header(header)))]
    if header.colour != 'RGB' or header.depth != 8:
        return [Problem(path, 'image-mode', 'image is %s; expected 8-bit RGB (3 channels)'
                        % describe_header(header))] + truncation_problems(path, header, 'image')
    return truncation_problems(path, header, 'image')


def _bad_label_kind(header):
    """(kind, message) of a label header that is not 8-bit single-channel PNG, or None."""
    if header.format != 'PNG':
        return 'label-format', ('label is a %s file; labels must be PNG (lossless: a JPEG '
                                'changes ids along every edge)' % header.format)
    if header.depth == 16 and header.colour in ('RGB', 'RGBA'):
        return 'label-16bit', ('label is a 16-bit %s PNG, as SYNTHIA\'s raw GT/LABELS (class id in '
                               'the R channel): convert them with `python issegm/prepare_data.py '
                               'synthia --data-root ROOT`, which writes 8-bit GT/labels/NAME.png'
                               % header.colour)
    if header.depth == 16:
        return 'label-16bit', ('label is a 16-bit %s PNG; expected 8-bit label ids'
                               % header.colour)
    if header.colour in ('RGB', 'RGBA'):
        return 'label-colour', ('label is %s colour image; expected one channel of label ids '
                                '(colour PNGs such as *_gtFine_color.png or SYNTHIA\'s GT/COLOR '
                                'show classes as colours, not ids)' % describe_header(header))
    if header.colour == 'palette' or (header.colour == 'grayscale' and header.depth == 8):
        return None
    return 'label-mode', 'label is %s; expected 8-bit label ids' % describe_header(header)


def label_problems(path, header):
    """The problems of a label's header (8-bit grayscale or palette PNG expected)."""
    bad = _bad_label_kind(header)
    problems = [] if bad is None else [Problem(path, bad[0], bad[1])]
    return problems + truncation_problems(path, header, 'label')


def pair_problems(image, label, labels_optional=False):
    """Problems of one listed sample from the file headers: (problems, label_ok), label_ok True
    when the label exists and its header is fine (so that its values can be read)."""
    image_header, problems = header_or_problem(image, 'image')
    if image_header is not None:
        problems += image_problems(image, image_header)
    if label is None:
        return problems, False
    if labels_optional and not_a_file(label) == 'not found':
        return problems + [Problem(label, 'missing-label', 'label not found', WARNING)], False
    label_header, label_found = header_or_problem(label, 'label')
    problems += label_found
    if label_header is None:
        return problems, False
    bad_label = label_problems(label, label_header)
    problems += bad_label
    if image_header is not None and (image_header.width, image_header.height) != \
            (label_header.width, label_header.height):
        problems.append(Problem(label, 'size-mismatch', 'label is %dx%d but its image %s is %dx%d'
                                % (label_header.width, label_header.height, image,
                                   image_header.width, image_header.height)))
    return problems, not bad_label
