#!/usr/bin/python3
"""Independent reader of TensorBoard event files: checks every TFRecord's masked CRC-32C and
decodes Event / Summary protos by their wire format. Prints one JSON line per scalar:
{"step": s, "tag": t, "value": v}; the first record must carry file_version brain.Event:2."""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 1:
            v = buf[i:i + 8]
            i += 8
        elif wire == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wire == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, v


def main(path):
    data = open(path, "rb").read()
    i, first = 0, True
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        assert hcrc == masked(header), "bad length crc"
        payload = data[i + 12:i + 12 + n]
        (pcrc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        assert pcrc == masked(payload), "bad payload crc"
        i += 16 + n
        step = 0
        for f, v in fields(payload):
            if f == 2:
                step = v
            if f == 3:
                assert first and v == b"brain.Event:2", v
            if f == 5:
                for vf, value in fields(v):
                    tag, simple = None, None
                    for ff, fv in fields(value):
                        if ff == 1:
                            tag = fv.decode()
                        if ff == 2:
                            (simple,) = struct.unpack("<f", fv)
                    print(json.dumps({"step": step, "tag": tag, "value": simple}))
        first = False


if __name__ == "__main__":
    main(sys.argv[1])
