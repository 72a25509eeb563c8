#!/usr/bin/env python3
"""PyTorch side of `ecgnas bench train`: trains the networks ecgnas wrote to a folder with the
same initial weights, the same batch, the same loss and the same optimizer, and prints one JSON
object per network and batch size on stdout (steps per second, phase times, the loss trace).

    python3 scripts/bench_train.py DIR [--threads 2] [--repeats 5] [--secs 1.0]
                                       [--trace 50] [--device cpu|cuda]

DIR holds, per network and batch size, NAME-bB.json (the architecture, as ecgnas's genes) and
NAME-bB.safetensors (the variables by ecgnas's names, the inputs `x` and the targets `y`).
The network is built here from the genes exactly as ecgnas builds it (host/src/train/network.rs):
"same" zero padding of dilation * (k - 1) / 2 at both ends, the shortcut added before the
block's activation, window-2 pooling, a global average pool and the dense head.
Needs torch, numpy and safetensors; ecgnas itself never does.
"""
import argparse
import json
import math
import pathlib
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


def conv_out_len(length, k, s, d):
    span = d * (k - 1)
    padded = length + 2 * (span // 2)
    return 0 if padded <= span else (padded - span - 1) // s + 1


def activate(x, name):
    return F.relu(x) if name == "relu" else F.relu6(x)


class Block(nn.Module):
    def __init__(self, genes, c_in, length):
        super().__init__()
        k, s, d = genes["kernel"], genes["stride"], genes["dilation"]
        ch, pad = genes["channels"], d * (k - 1) // 2
        self.genes = genes
        if genes["kind"] == "standard":
            self.conv = nn.Conv1d(c_in, ch, k, s, padding=pad, dilation=d)
            self.pw = None
        else:
            self.conv = nn.Conv1d(c_in, c_in, k, s, padding=pad, dilation=d, groups=c_in)
            self.pw = nn.Conv1d(c_in, ch, 1)
        self.out_len = conv_out_len(length, k, s, d)
        needs_projection = genes["skip"] and (c_in != ch or self.out_len != length)
        self.proj = nn.Conv1d(c_in, ch, 1, s) if needs_projection else None
        if genes["pool"] != "none":
            self.out_len //= 2

    def forward(self, x):
        g = self.genes
        y = self.conv(x)
        if self.pw is not None:
            y = self.pw(activate(y, g["activation"]))
        if g["skip"]:
            y = y + (self.proj(x) if self.proj is not None else x)
        y = activate(y, g["activation"])
        if g["pool"] == "max2":
            y = F.max_pool1d(y, 2)
        elif g["pool"] == "avg2":
            y = F.avg_pool1d(y, 2)
        return y


class Net(nn.Module):
    def __init__(self, spec):
        super().__init__()
        arch = spec["architecture"]
        c, length = spec["in_channels"], spec["input_len"]
        self.blocks = nn.ModuleList()
        for genes in arch["blocks"]:
            block = Block(genes, c, length)
            self.blocks.append(block)
            c, length = genes["channels"], block.out_len
        hidden = arch["head"]["hidden"]
        self.hidden = nn.Linear(c, hidden) if hidden else None
        self.out = nn.Linear(hidden or c, arch["head"]["outputs"])

    def named_like_ecgnas(self):
        """The parameters under ecgnas's variable names."""
        names = {}
        for i, b in enumerate(self.blocks):
            parts = [("conv" if b.pw is None else "dw", b.conv), ("pw", b.pw), ("proj", b.proj)]
            for part, m in parts:
                if m is not None:
                    names[f"block{i}.{part}.weight"] = m.weight
                    names[f"block{i}.{part}.bias"] = m.bias
        for part, m in (("hidden", self.hidden), ("out", self.out)):
            if m is not None:
                names[f"head.{part}.weight"] = m.weight
                names[f"head.{part}.bias"] = m.bias
        return names

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        h = x.mean(-1)
        if self.hidden is not None:
            h = F.relu(self.hidden(h))
        return self.out(h)


def load(folder, spec_path, dev):
    spec = json.loads(spec_path.read_text())
    tensors = load_file(str(folder / spec["weights"]))
    net = Net(spec)
    params = net.named_like_ecgnas()
    missing = set(params) ^ (set(tensors) - {"x", "y"})
    if missing:
        sys.exit(f"{spec_path}: variables do not match ecgnas's: {sorted(missing)}")
    with torch.no_grad():
        for name, p in params.items():
            if tuple(tensors[name].shape) != tuple(p.shape):
                sys.exit(f"{spec_path}: {name} is {tuple(tensors[name].shape)}, expected {tuple(p.shape)}")
            p.copy_(tensors[name])
    return spec, net.to(dev), tensors["x"].to(dev), tensors["y"].to(dev)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--secs", type=float, default=1.0)
    ap.add_argument("--trace", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    folder = pathlib.Path(a.folder)
    specs = sorted(folder.glob("*.json"))
    if not specs:
        sys.exit(f"{folder}: no network specifications (*.json)")
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "device": a.device}), flush=True)
    for spec_path in specs:
        spec, net, x, y = load(folder, spec_path, dev)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        trace = []
        if spec["batch"] > 1 and a.trace > 0:
            for _ in range(a.trace):
                loss = F.binary_cross_entropy_with_logits(net(x), y)
                trace.append(loss.item())
                opt.zero_grad()
                loss.backward()
                opt.step()
            spec, net, x, y = load(folder, spec_path, dev)
            opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        phase = [0.0, 0.0, 0.0]

        def step():
            t0 = time.perf_counter()
            loss = F.binary_cross_entropy_with_logits(net(x), y)
            sync()
            t1 = time.perf_counter()
            opt.zero_grad()
            loss.backward()
            sync()
            t2 = time.perf_counter()
            opt.step()
            sync()
            t3 = time.perf_counter()
            phase[0] += t1 - t0
            phase[1] += t2 - t1
            phase[2] += t3 - t2

        t = time.perf_counter()
        n = 0
        while n < 3 or time.perf_counter() - t < 0.3:
            step()
            n += 1
        steps = max(3, math.ceil(a.secs / ((time.perf_counter() - t) / n)))
        phase[:] = [0.0, 0.0, 0.0]
        rates = []
        for _ in range(max(1, a.repeats)):
            t = time.perf_counter()
            for _ in range(steps):
                step()
            rates.append(steps / (time.perf_counter() - t))
        total = steps * len(rates)
        print(json.dumps({
            "name": spec["name"], "batch": spec["batch"],
            "steps_per_s": statistics.median_high(rates), "min": min(rates), "max": max(rates),
            "phase_ms": [1e3 * p / total for p in phase], "trace": trace,
        }), flush=True)


if __name__ == "__main__":
    main()
