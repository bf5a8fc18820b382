"""Read an MXNet CUDA wheel without installing it (docs/gpu-wheels.md holds the readings):
`python benchmarks/tools/read_cuda_wheel.py WHEEL...` prints, per wheel, one JSON line with the
GPU architectures of the cubins in libmxnet.so's .nv_fatbin section (sm_XX), its PTX targets
(compute_XX: none means no kernels for a newer GPU generation), the libraries it needs
(readelf -d, NEEDED), the libraries the wheel bundles, and the sizes. Needs readelf (binutils);
no CUDA toolkit (cuobjdump) is needed: the fatbin headers are read here.
"""
import collections
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

FATBIN_MAGIC = 0xBA55ED50  # a fatbin container's header: magic, version, header size, size
ENTRY_KINDS = {1: 'compute', 2: 'sm'}  # an entry's kind: 1 PTX, 2 cubin (ELF)


def elf_sections(path):
    """{section name: (file offset, size)} of a 64-bit little-endian ELF file."""
    with open(path, 'rb') as f:
        head = f.read(64)
        if head[:4] != b'\x7fELF' or head[4] != 2:
            raise ValueError('%s is not a 64-bit ELF file' % path)
        shoff, = struct.unpack_from('<Q', head, 0x28)
        entsize, count, names_index = struct.unpack_from('<HHH', head, 0x3A)
        f.seek(shoff)
        raw = f.read(entsize * count)
        headers = [struct.unpack_from('<IIQQQQIIQQ', raw, i * entsize) for i in range(count)]
        f.seek(headers[names_index][4])
        names = f.read(headers[names_index][5])
    return {names[h[0]:names.index(b'\0', h[0])].decode(): (h[4], h[5]) for h in headers}


def fatbin_entries(data):
    """(number of containers, Counter of (kind, arch)) of a .nv_fatbin section's bytes; an
    entry's header: kind (u16), version (u16), header size (u32), payload size (u64), ..., the
    architecture (u32) at byte 28 (checked against nvcc's -fatbin output)."""
    counts, containers, pos = collections.Counter(), 0, 0
    while pos + 16 <= len(data):
        magic, _, header_size, size = struct.unpack_from('<IHHQ', data, pos)
        if magic != FATBIN_MAGIC:  # padding between containers
            pos += 8
            continue
        containers += 1
        entry, end = pos + header_size, pos + header_size + size
        while entry < end:
            kind, _, entry_header, payload = struct.unpack_from('<HHIQ', data, entry)
            arch, = struct.unpack_from('<I', data, entry + 28)
            counts[ENTRY_KINDS.get(kind, 'kind%d' % kind), arch] += 1
            entry += entry_header + payload
        pos = end
    return containers, counts


def needed_libraries(path):
    """The NEEDED entries of a shared library's dynamic section (readelf -d)."""
    out = subprocess.run(['readelf', '-d', path], capture_output=True, text=True,
                         check=True).stdout
    return [line.split('[', 1)[1].rstrip(']') for line in out.splitlines() if '(NEEDED)' in line]


def read_wheel(wheel):
    """The readings of one wheel as a dict (libmxnet.so unpacked to a temporary folder)."""
    folder = tempfile.mkdtemp()
    try:
        with zipfile.ZipFile(wheel) as z:
            lib = z.extract('mxnet/libmxnet.so', folder)
            bundled = sorted(os.path.basename(n) for n in z.namelist()
                             if n.startswith('mxnet/') and '.so' in os.path.basename(n))
        offset, size = elf_sections(lib)['.nv_fatbin']
        with open(lib, 'rb') as f:
            f.seek(offset)
            containers, counts = fatbin_entries(f.read(size))
        return {'wheel': os.path.basename(wheel), 'wheel_bytes': os.path.getsize(wheel),
                'libmxnet_bytes': os.path.getsize(lib), 'fatbin_containers': containers,
                'cubins': sorted('sm_%d' % a for k, a in counts if k == 'sm'),
                'ptx': sorted('compute_%d' % a for k, a in counts if k == 'compute'),
                'needed': needed_libraries(lib), 'bundled': bundled}
    finally:
        shutil.rmtree(folder)


if __name__ == '__main__':
    for path in sys.argv[1:]:
        print(json.dumps(read_wheel(path)), flush=True)
