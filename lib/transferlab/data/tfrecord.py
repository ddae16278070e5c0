"""Reading ``tf.train.Example`` records from TFRecord files without TensorFlow (for DMLab's only public archive).

DMLab (VTAB) is published only as TFRecord shards of ``tf.train.Example`` protos (``image``: JPEG bytes, ``label``:
int64, ``filename``: bytes). Installing TensorFlow to copy JPEG bytes out would dwarf the rest of the environment,
and both formats are small and stable, so this module reads them directly:

- TFRecord: ``uint64 length | uint32 masked crc(length) | data | uint32 masked crc(data)`` (little-endian). The CRCs
  are not checked here: the archive's sha256 is, before anything is read.
- ``Example`` = {1: ``Features``}; ``Features`` = repeated {1: map entry {1: key, 2: ``Feature``}}; ``Feature`` = one
  of {1: ``BytesList``, 2: ``FloatList``, 3: ``Int64List``}, each a repeated field 1 (int64s packed or not).

Wire format reference: https://protobuf.dev/programming-guides/encoding/ ; the record framing:
https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO


class RecordError(ValueError):
    """A TFRecord file or an Example in it is truncated or malformed."""


def records(fh: BinaryIO) -> Iterator[bytes]:
    """The payloads of a TFRecord stream, in order."""
    while True:
        head = fh.read(12)
        if not head:
            return
        if len(head) < 12:
            raise RecordError("truncated record header")
        (length,) = struct.unpack("<Q", head[:8])
        data = fh.read(length)
        if len(data) < length or len(fh.read(4)) < 4:
            raise RecordError(f"truncated record (expected {length} bytes)")
        yield data


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise RecordError("bad varint")
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialised message; fixed-width values are skipped."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, wire, value
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise RecordError("truncated length-delimited field")
            yield number, wire, buf[i : i + n]
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise RecordError(f"unsupported wire type {wire}")


def _values(feature: bytes) -> list:
    """The values of one ``Feature``: bytes for a BytesList, ints for an Int64List (floats are not needed)."""
    out: list = []
    for kind, _, lst in fields(feature):
        if kind not in (1, 3) or not isinstance(lst, bytes):
            continue
        for _, wire, v in fields(lst):
            if kind == 1:
                out.append(v)
            elif wire == 0:
                out.append(v - (1 << 64) if v >= 1 << 63 else v)
            else:  # packed int64s
                j = 0
                while j < len(v):
                    x, j = _varint(v, j)
                    out.append(x - (1 << 64) if x >= 1 << 63 else x)
    return out


def example(buf: bytes) -> dict[str, list]:
    """A ``tf.train.Example`` as {feature name: list of values}."""
    feats: dict[str, list] = {}
    for number, _, body in fields(buf):
        if number != 1 or not isinstance(body, bytes):
            continue
        for _, _, entry in fields(body):
            key, value = "", b""
            for n, _, v in fields(entry):  # type: ignore[arg-type]
                if n == 1:
                    key = v.decode()  # type: ignore[union-attr]
                elif n == 2:
                    value = v  # type: ignore[assignment]
            feats[key] = _values(value)
    return feats
