#!/usr/bin/env python3
"""Writes a corpus of small WFDB records covering the variants PhysioNet serves, and the
digital values PhysioNet's own Python reader (`wfdb.rdrecord`) reads back from them.

    python scripts/make_wfdb_corpus.py OUT_DIR

The records are written with the `wfdb` package (`wrsamp`, `Record.wrsamp`, `wfdb_to_mat`)
wherever it writes the format; formats it does not write (8, 61, 160, 310, 311) are packed
here byte by byte after PhysioNet's signal(5) description, beside headers written by
`Record.wrheader`. Headers of the text-level variants (exponent gains, missing fields, blank
and comment lines, CRLF) are edited as text after writing. Every record is then read back
with `wfdb.rdrecord(..., physical=False, smooth_frames=False)`, which is the reference:
OUT_DIR/expected.json holds what it returned, and OUT_DIR/refused.json lists the headers
(in OUT_DIR/refused) a reader must refuse, with the words its error must contain.

ecgnas's tests run this script (through $ECGNAS_PYTHON) and compare ecgnas's reader with
expected.json value by value.
"""

import json
import os
import struct
import sys

import numpy as np
import wfdb
from wfdb.io import _signal

OUT = None
SEED = np.random.default_rng(20240610)


def path(name):
    return os.path.join(OUT, name)


def ecg_like(n, amplitude, lo, hi):
    """A spiky, ECG-like digital trace clipped into [lo, hi] (the format's valid range)."""
    t = np.arange(n)
    beat = np.exp(-(((t % 90) - 30) ** 2) / 8.0) * amplitude
    noise = SEED.integers(-amplitude // 20 - 1, amplitude // 20 + 2, n)
    return np.clip((beat + noise - amplitude // 4).astype(np.int64), lo, hi)


def valid_range(fmt):
    lo, hi = _signal.SAMPLE_VALUE_RANGE[fmt]
    invalid = _signal.INVALID_SAMPLE_VALUE[fmt]
    # The invalid code is the range's minimum: keep valid samples above it.
    return (lo + 1 if invalid is not None else lo), hi, invalid


def with_invalid(values, fmt, at):
    """Puts the format's invalid-sample code at the positions `at`."""
    invalid = _signal.INVALID_SAMPLE_VALUE[fmt]
    values = values.copy()
    if invalid is not None:
        values[at] = invalid
    return values


def checksum(values):
    return int(np.sum(np.asarray(values, dtype=np.int64)) % 65536)


def edit_header(name, edit):
    p = path(name + ".hea")
    with open(p, "rb") as f:
        text = f.read().decode("ascii")
    text = edit(text)
    with open(p, "wb") as f:
        f.write(text.encode("ascii"))


# --- records written entirely by wfdb -------------------------------------------------------


def wrsamp_one_format(fmt, n=257, name=None, invalid=True):
    """One record per format that wfdb writes: two signals, invalid samples in the first."""
    lo, hi, _ = valid_range(fmt)
    amplitude = min(hi, 2000)
    a = ecg_like(n, amplitude, lo, hi)
    if invalid:
        a = with_invalid(a, fmt, [3, 100])
    b = ecg_like(n, amplitude // 2, lo, hi)
    b[0], b[-1] = lo, hi  # the extremes of the valid range
    name = name or f"fmt{fmt}"
    wfdb.wrsamp(
        name,
        fs=360,
        units=["mV", "mV"],
        sig_name=["MLII", "V5"],
        d_signal=np.stack([a, b], axis=1),
        fmt=[fmt, fmt],
        adc_gain=[200.0, 200.0],
        baseline=[0, 0],
        write_dir=OUT,
    )
    return name


def several_files_byte_offset_baseline():
    """Three signals in two files of different formats; one file with a byte offset; a
    baseline other than the ADC zero."""
    n = 300
    a = ecg_like(n, 1500, -2047, 2047)
    b = ecg_like(n, 900, -2047, 2047)
    c = with_invalid(ecg_like(n, 20000, -32767, 32767), "16", [7])
    d = np.stack([a, b, c], axis=1)
    rec = wfdb.Record(
        record_name="files",
        n_sig=3,
        fs=500,
        sig_len=n,
        file_name=["files_a.dat", "files_a.dat", "files_b.dat"],
        fmt=["212", "212", "16"],
        byte_offset=[None, None, 6],
        adc_gain=[200.0, 200.0, 1000.0],
        baseline=[1024, -12, 5],
        units=["mV", "mV", "uV"],
        sig_name=["I", "II", "III"],
        adc_res=[12, 12, 16],
        adc_zero=[0, 0, 0],
        d_signal=d,
    )
    rec.set_d_features()
    rec.set_defaults()
    rec.wrsamp(write_dir=OUT)
    return "files"


def multi_frequency_and_counter():
    """Samples per frame 1, 4 and 2 (three rates in one file), a counter frequency with a
    base counter value."""
    frames = 120
    spf = [1, 4, 2]
    e = [ecg_like(frames * k, 1000, -32767, 32767) for k in spf]
    e[1] = with_invalid(e[1], "16", [5, 6])
    rec = wfdb.Record(
        record_name="multifreq",
        n_sig=3,
        fs=125,
        counter_freq=250,
        base_counter=10,
        sig_len=frames,
        file_name=["multifreq.dat"] * 3,
        fmt=["16"] * 3,
        samps_per_frame=spf,
        adc_gain=[100.0, 100.0, 50.0],
        baseline=[0, 0, 0],
        units=["mV", "mV", "mmHg"],
        sig_name=["ECG", "ECG_fast", "ABP"],
        adc_res=[16, 16, 16],
        adc_zero=[0, 0, 0],
        e_d_signal=e,
    )
    rec.set_d_features(expanded=True)
    rec.set_defaults()
    rec.wrsamp(expanded=True, write_dir=OUT)
    return "multifreq"


def skewed():
    """The second signal is skewed by 3 frames, the third (another file) by 1."""
    n = 200
    d = np.stack([ecg_like(n, 1000, -2047, 2047) for _ in range(2)], axis=1)
    rec = wfdb.Record(
        record_name="skew",
        n_sig=2,
        fs=250,
        sig_len=n,
        file_name=["skew.dat"] * 2,
        fmt=["212"] * 2,
        skew=[0, 3],
        adc_gain=[200.0, 200.0],
        baseline=[0, 0],
        units=["mV", "mV"],
        sig_name=["V1", "V2"],
        adc_res=[12, 12],
        adc_zero=[0, 0],
        d_signal=d,
    )
    rec.set_d_features()
    rec.set_defaults()
    rec.wrsamp(write_dir=OUT)
    return "skew"


def matlab_containers():
    """The MAT containers PhysioNet serves: Level 5, as wfdb's `wfdb_to_mat` (and WFDB's
    wfdb2mat) write it, and Level 4 as the CinC challenges store it (an int16 matrix `val`,
    header `16+24`), packed here after MATLAB's MAT-file format description."""
    from wfdb.io.convert.matlab import wfdb_to_mat

    # wfdb_to_mat converts physical values: no invalid samples in its source.
    source = wrsamp_one_format("16", n=150, name="matsrc", invalid=False)
    cwd = os.getcwd()
    os.chdir(OUT)
    try:
        wfdb_to_mat(source)
    finally:
        os.chdir(cwd)

    n, rows = 140, 3
    d = np.stack([with_invalid(ecg_like(n, 4000, -32767, 32767), "16", [9])] + [ecg_like(n, 3000, -32767, 32767) for _ in range(rows - 1)])
    with open(path("cinc.mat"), "wb") as f:
        f.write(struct.pack("<5i", 30, rows, n, 0, 4) + b"val\0")
        # Column-major: one frame (every signal's sample) after another.
        f.write(d.T.astype("<i2").tobytes())
    lines = [f"cinc {rows} 500 {n} 09:49:17 05/05/2020"]
    for i, name in enumerate(["I", "II", "III"]):
        lines.append(f"cinc.mat 16+24 1000/mV 16 0 {d[i][0]} {checksum(d[i])} 0 {name}")
    lines.append("#Dx: 164889003")
    with open(path("cinc.hea"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return [source, source + "m", "cinc"]


# --- formats wfdb does not write: packed here after signal(5) --------------------------------


def pack(fmt, frames, spf):
    """Bytes of a signal file holding `frames` (rows: one frame of every value)."""
    flat = np.asarray(frames, dtype=np.int64).reshape(-1)
    if fmt == "61":
        return flat.astype(">i2").tobytes()
    if fmt == "160":
        return (flat + 32768).astype("<u2").tobytes()
    if fmt == "8":
        # First differences, per signal (not per byte position).
        out = np.zeros_like(np.asarray(frames, dtype=np.int64))
        col = 0
        for k in spf:
            block = np.asarray(frames)[:, col : col + k].reshape(-1)
            previous = np.concatenate([[INIT8[col]], block[:-1]])
            diffs = block - previous
            assert diffs.min() >= -128 and diffs.max() <= 127
            out[:, col : col + k] = diffs.reshape(-1, k)
            col += k
        return out.reshape(-1).astype("<i1").tobytes()
    if fmt in ("310", "311"):
        v = (flat & 0x3FF).astype(np.uint32)
        groups = [v[i : i + 3] for i in range(0, len(v), 3)]
        out = bytearray()
        for g in groups:
            g3 = np.zeros(3, dtype=np.uint32)
            g3[: len(g)] = g
            if fmt == "310":
                w0 = (int(g3[0]) << 1) | ((int(g3[2]) & 0x1F) << 11)
                w1 = (int(g3[1]) << 1) | ((int(g3[2]) >> 5) << 11)
                word = w0.to_bytes(2, "little") + w1.to_bytes(2, "little")
                out += word[: {1: 2, 2: 4, 3: 4}[len(g)]]
            else:
                w = int(g3[0]) | (int(g3[1]) << 10) | (int(g3[2]) << 20)
                # WFDB writes the whole word for a trailing pair (as wfdb-python notes).
                out += w.to_bytes(4, "little")[: {1: 2, 2: 4, 3: 4}[len(g)]]
        return bytes(out)
    raise ValueError(fmt)


INIT8 = [40, -300]


def hand_packed(fmt, n, name=None):
    """Two signals in a format wfdb does not write; the header by `Record.wrheader`. For
    formats 310 and 311, `n` decides the trailing partial group (2n values in all)."""
    lo, hi, _ = valid_range(fmt)
    if fmt == "8":
        # Smooth enough for 8-bit differences; the second signal far from the first.
        a = (INIT8[0] + np.round(300 * np.sin(np.arange(n) / 9.0))).astype(np.int64)
        b = (INIT8[1] + np.round(200 * np.sin(np.arange(n) / 7.0))).astype(np.int64)
    else:
        a = with_invalid(ecg_like(n, min(hi, 1500), lo, hi), fmt, [2, n - 1])
        b = ecg_like(n, min(hi, 1500) // 2, lo, hi)
        b[0], b[1] = lo, hi
    d = np.stack([a, b], axis=1)
    name = name or f"fmt{fmt}"
    bits = _signal.BIT_RES[fmt]
    rec = wfdb.Record(
        record_name=name,
        n_sig=2,
        fs=200,
        sig_len=n,
        file_name=[name + ".dat"] * 2,
        fmt=[fmt, fmt],
        adc_gain=[400.0, 400.0],
        baseline=[0, 0],
        units=["mV", "mV"],
        sig_name=["A", "B"],
        adc_res=[bits, bits],
        adc_zero=[0, 0],
        init_value=[int(a[0]) if fmt != "8" else INIT8[0], int(b[0]) if fmt != "8" else INIT8[1]],
        checksum=[checksum(a), checksum(b)],
        block_size=[0, 0],
    )
    rec.wrheader(write_dir=OUT)
    with open(path(name + ".dat"), "wb") as f:
        f.write(pack(fmt, d, [1, 1]))
    return name


# --- header text variants ---------------------------------------------------------------------


def header_text_variants():
    """Header spellings PhysioNet's files use: exponent gains, a missing and a zero gain,
    missing units, duplicate names, ADC resolution 0, blank and comment lines anywhere, and
    CRLF or LF line endings; plus a checksum that does not match."""
    names = []
    n = 64
    d = np.stack([ecg_like(n, 3000, -32767, 32767) for _ in range(4)], axis=1)
    wfdb.wrsamp(
        "texts",
        fs=1000,
        units=["mV"] * 4,
        # wfdb refuses to write duplicate names: the header edit below renames "II_".
        sig_name=["II", "II_", "V1", "V2"],
        d_signal=d,
        fmt=["16"] * 4,
        adc_gain=[10520.0, 200.0, 200.0, 200.0],
        baseline=[0, 0, 0, 0],
        write_dir=OUT,
    )

    def rewrite(text):
        lines = text.strip("\n").split("\n")
        record, signals = lines[0], lines[1:5]
        f = [s.split(" ") for s in signals]
        # Signal 0: exponent gain. Signal 1: gain 0 with a baseline and no units (uncalibrated).
        # Signal 2: format, gain-less (every later field absent). Signal 3: ADC resolution 0.
        f[0][2] = "1.052e+04/mV"
        f[1][2] = "0(7)"
        f[1][8] = "II"
        f[2] = f[2][:2]
        f[3][3] = "0"
        body = [" ".join(x) for x in f]
        out = ["# written for ecgnas's reader tests", "", record, "  ", body[0], "# between signals", body[1], "", body[2], body[3], "# trailing comment", ""]
        return "\r\n".join(out)

    edit_header("texts", rewrite)
    names.append("texts")

    wfdb.wrsamp(
        "badsum",
        fs=250,
        units=["mV"],
        sig_name=["ECG"],
        d_signal=ecg_like(50, 1000, -32767, 32767).reshape(-1, 1),
        fmt=["16"],
        adc_gain=[200.0],
        baseline=[0],
        write_dir=OUT,
    )

    def wrong_checksum(text):
        lines = text.split("\n")
        f = lines[1].split(" ")
        f[6] = str((int(f[6]) + 1) % 65536)
        lines[1] = " ".join(f)
        return "\n".join(lines)

    edit_header("badsum", wrong_checksum)
    names.append("badsum")
    return names


def bad(name):
    return os.path.join(OUT, "refused", name)


def refused():
    """Headers a reader must refuse with a clear error, in OUT_DIR/refused."""
    os.makedirs(path("refused"), exist_ok=True)
    out = []
    with open(bad("flac.hea"), "w") as f:
        f.write("flac 1 500 100\nflac.dat 516 200/mV 16 0 0 0 0 ECG\n")
    with open(bad("flac.dat"), "wb") as f:
        f.write(b"fLaC" + bytes(60))
    out.append({"record": "flac", "error_contains": ["flac.hea", "516"]})
    with open(bad("multiseg.hea"), "w") as f:
        f.write("multiseg/2 1 360 200\nseg1 100\nseg2 100\n")
    out.append({"record": "multiseg", "error_contains": ["multiseg.hea", "multi-segment"]})
    with open(bad("short.hea"), "w") as f:
        f.write("short 1 360 1000\nshort.dat 16 200/mV 16 0 0 0 0 ECG\n")
    with open(bad("short.dat"), "wb") as f:
        f.write(bytes(100))
    out.append({"record": "short", "error_contains": ["short.dat", "1000"]})
    with open(bad("nodat.hea"), "w") as f:
        f.write("nodat 1 360 10\nnodat.dat 16 200/mV 16 0 0 0 0 ECG\n")
    out.append({"record": "nodat", "error_contains": ["nodat.dat"]})
    return out


# --- the reference --------------------------------------------------------------------------


# Signals whose header gives no gain or gain 0 (this script wrote them so).
UNCALIBRATED = {"texts": [1, 2]}


def read_back(name):
    """What wfdb's reader returns for one record: the reference ecgnas is compared with."""
    try:
        rec = wfdb.rdrecord(path(name), physical=False, smooth_frames=False)
        columns = rec.e_d_signal
    except ValueError:
        # wfdb 4.x fails to convert big-endian (format 61) samples unsmoothed; with one
        # sample per frame, the smoothed read holds the same values.
        rec = wfdb.rdrecord(path(name), physical=False)
        assert all(k == 1 for k in rec.samps_per_frame)
        columns = rec.d_signal.T
    signals = []
    for i in range(rec.n_sig):
        values = np.asarray(columns[i], dtype=np.int64)
        fmt = rec.fmt[i]
        invalid = _signal.INVALID_SAMPLE_VALUE.get(fmt)
        stated = rec.checksum[i] if rec.checksum else None
        signals.append(
            {
                "name": rec.sig_name[i],
                "units": rec.units[i],
                "fmt": fmt,
                "adc_gain": float(rec.adc_gain[i]),
                "baseline": int(rec.baseline[i]),
                # None where the header leaves the field out.
                "adc_res": None if rec.adc_res[i] is None else int(rec.adc_res[i]),
                "adc_zero": None if rec.adc_zero[i] is None else int(rec.adc_zero[i]),
                "samps_per_frame": int(rec.samps_per_frame[i]),
                "skew": int(rec.skew[i] or 0),
                "byte_offset": int(rec.byte_offset[i] or 0),
                "checksum": stated,
                "checksum_ok": None if stated is None else checksum(values) == stated % 65536,
                "n_invalid": 0 if invalid is None else int(np.sum(values == invalid)),
                # Python integers: numpy's int64 overflows on squares of format 32.
                "sum": sum(int(v) for v in values),
                "sum_sq": sum(int(v) * int(v) for v in values),
                "min": int(values.min()),
                "max": int(values.max()),
                "values": [int(v) for v in values],
            }
        )
    return {
        "record": name,
        "fs": float(rec.fs),
        "counter_freq": None if rec.counter_freq is None else float(rec.counter_freq),
        "base_counter": None if rec.base_counter is None else float(rec.base_counter),
        "n_samples": int(rec.sig_len),
        "uncalibrated": UNCALIBRATED.get(name, []),
        "signals": signals,
    }


def main():
    global OUT
    if len(sys.argv) != 2:
        sys.exit("usage: make_wfdb_corpus.py OUT_DIR")
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    names = [wrsamp_one_format(f) for f in ["80", "212", "16", "24", "32"]]
    names += [hand_packed(f, n) for f, n in [("8", 181), ("61", 90), ("160", 91), ("310", 100), ("311", 100)]]
    # The other trailing groups of 310 and 311: 202 values leave one over, 200 leave two.
    names += [hand_packed("310", 101, "fmt310b"), hand_packed("311", 101, "fmt311b")]
    names += [several_files_byte_offset_baseline(), multi_frequency_and_counter(), skewed()]
    names += header_text_variants()
    names += matlab_containers()
    expected = [read_back(n) for n in names]
    with open(path("expected.json"), "w") as f:
        json.dump({"wfdb_version": wfdb.__version__, "records": expected}, f, indent=1)
    with open(path("refused.json"), "w") as f:
        json.dump({"records": refused()}, f, indent=1)


if __name__ == "__main__":
    main()
