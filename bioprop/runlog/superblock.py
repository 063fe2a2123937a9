"""The HDF5 superblock's file consistency flags: read them, and clear them as ``h5clear -s`` does.

A file written in HDF5's newest format (superblock version 2 or 3, what ``libver="latest"``
and SWMR mode need) carries, in its superblock, flags that say a writer has it open:
bit 0 "open for write", bit 2 "open for SWMR write". HDF5 sets them when a writer opens the
file and clears them when it closes it; a writer that is killed leaves them set, and from
then on HDF5 refuses the file to every reader except a SWMR one, with "file is already open
for write". ``h5clear -s`` (hdf5-tools) clears them; :func:`clear_flags` does the same here,
byte for byte (checked against ``h5clear -s``), with no HDF5 tool installed.

The superblock (HDF5 File Format Specification, version 3.0, section II.A, "Superblock
version 2 and 3"): the signature (8 bytes), the version, the size of offsets and of lengths
(1 byte each), the flags (1 byte), then four addresses (base address, superblock extension,
end of file, root group object header), and a Jenkins lookup3 checksum of everything before
it. It lies at offset 0, or 512, 1024, 2048... when the file has a user block.

* :func:`read_superblock` — where the superblock is, its version, flags and end-of-file address.
* :func:`clear_flags` — clear the flags in one write of the whole superblock.
* :func:`lookup3` — Bob Jenkins' lookup3 ``hashlittle``, HDF5's metadata checksum.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["HDF5_SIGNATURE", "WRITE", "SWMR_WRITE", "Superblock", "read_superblock", "clear_flags", "lookup3"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: the flags HDF5 sets for a writer (bit 0) and a SWMR writer (bit 2)
WRITE, SWMR_WRITE = 0x1, 0x4

#: offset of the flags byte after the signature, version and the two sizes
_FLAGS_AT = 11
_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class Superblock:
    """What :func:`clear_flags` needs of a file's superblock.

    Attributes
    ----------
    offset : int
        Where it starts in the file (0 unless there is a user block).
    version : int
        0 and 1 keep no consistency flags; 2 and 3 do.
    flags : int
        The file consistency flags (0: no writer has the file open).
    end_of_file : int
        The end-of-file address HDF5 stored (relative to the base address), or -1 (v0/v1).
    raw : bytes
        The whole superblock, checksum included (versions 2 and 3), else b"".
    """

    offset: int
    version: int
    flags: int
    end_of_file: int
    raw: bytes


def read_superblock(fd) -> Superblock | None:
    """The superblock of the open file `fd` (an OS file descriptor), or None if not HDF5."""
    size = os.fstat(fd).st_size
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size:
        head = os.pread(fd, 12, offset)
        if head[:8] == HDF5_SIGNATURE:
            break
        offset = 512 if offset == 0 else 2 * offset  # user blocks are 512 · 2^k bytes
    else:
        return None
    version = head[8] if len(head) > 8 else -1
    if version not in (2, 3):  # v0/v1 have no flags (and HDF5 never sets any there)
        return Superblock(offset, version, 0, -1, b"")
    n = head[9]  # size of offsets
    raw = os.pread(fd, 12 + 4 * n + 4, offset)
    if len(raw) < 12 + 4 * n + 4:
        return None
    base = int.from_bytes(raw[12:12 + n], "little")
    eof = int.from_bytes(raw[12 + 2 * n:12 + 3 * n], "little")
    return Superblock(offset, version, raw[_FLAGS_AT], base + eof, raw)


def clear_flags(fd, block: Superblock):
    """Clear the consistency flags of `block` in the file `fd`, and sync it.

    The superblock is rewritten whole by one ``pwrite`` of under 100 bytes within one disk
    sector: a kill leaves the old superblock or the new one, never a mix, and clearing flags
    that are clear changes nothing.
    """
    raw = bytearray(block.raw)
    raw[_FLAGS_AT] = 0
    raw[-4:] = lookup3(bytes(raw[:-4])).to_bytes(4, "little")
    os.pwrite(fd, bytes(raw), block.offset)
    os.fsync(fd)


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of `data` (2006, public domain), as HDF5's
    ``H5_checksum_lookup3`` computes it for metadata checksums."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    i = 0
    while length > 12:  # mix() of every 12-byte block but the last
        a = (a + int.from_bytes(data[i:i + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 4); c = (c + b) & _MASK        # noqa: E702
        b = ((b - a) & _MASK) ^ _rot(a, 6); a = (a + c) & _MASK        # noqa: E702
        c = ((c - b) & _MASK) ^ _rot(b, 8); b = (b + a) & _MASK        # noqa: E702
        a = ((a - c) & _MASK) ^ _rot(c, 16); c = (c + b) & _MASK       # noqa: E702
        b = ((b - a) & _MASK) ^ _rot(a, 19); a = (a + c) & _MASK       # noqa: E702
        c = ((c - b) & _MASK) ^ _rot(b, 4); b = (b + a) & _MASK        # noqa: E702
        i += 12
        length -= 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)  # the last block, zero-padded
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c = ((c ^ b) - _rot(b, 14)) & _MASK  # final()
    a = ((a ^ c) - _rot(c, 11)) & _MASK
    b = ((b ^ a) - _rot(a, 25)) & _MASK
    c = ((c ^ b) - _rot(b, 16)) & _MASK
    a = ((a ^ c) - _rot(c, 4)) & _MASK
    b = ((b ^ a) - _rot(a, 14)) & _MASK
    c = ((c ^ b) - _rot(b, 24)) & _MASK
    return c
