#!/usr/bin/env bash
# Reads all of MIT-BIH with ecgnas and with wfdb-python (the peer), one core each, in one run.
# Needs `pip install wfdb` for the peer; prints both figures and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(realpath "${1:-../shared/data/mitdb}")"
ours=$(taskset -c 0 cargo bench -q -p ecgnas --bench read_mitdb -- "$data" | tail -1)
echo "$ours"
peer=$(taskset -c 0 python3 - "$data" <<'PY'
import sys, time, glob, os
import wfdb
folder = sys.argv[1]
names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(folder, "*.hea")))
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    n = 0
    for name in names:
        r = wfdb.rdrecord(os.path.join(folder, name), physical=False)
        a = wfdb.rdann(os.path.join(folder, name), "atr")
        n += r.d_signal.size
    best = min(best, time.perf_counter() - t)
print(f"wfdb-python {wfdb.__version__} rdrecord(physical=False)+rdann: {len(names)} records, {n/1e6:.1f} M samples in {best:.3f} s (best of 3, one core)")
PY
)
echo "$peer"
python3 - "$ours" "$peer" <<'PY'
import re, sys
t = [float(re.search(r"in ([0-9.]+) s", s).group(1)) for s in sys.argv[1:3]]
print(f"ratio: ecgnas is {t[1]/t[0]:.1f}x faster than wfdb-python")
PY
