#!/usr/bin/env python3
"""Check an ecgnas model folder with the official ONNX tools.

1. `onnx.checker.check_model(..., full_check=True)` on model.onnx and model.int8.onnx.
2. onnxruntime runs both files on the windows `ecgnas predict --json` saw, and its
   probabilities are compared with ecgnas's (f32: at most --tolerance apart; int8: the decided
   labels the same on at least --min-agreement of the windows, and the quantised logits at
   most --max-steps apart when that is given).

Usage:
    check_onnx.py MODEL_DIR --csv WINDOWS.csv --f32 PREDICT_F32.json --int8 PREDICT_INT8.json

WINDOWS.csv is the CSV given to `ecgnas predict` (one column per lead, at the model's rate).
Prints one JSON object; exits 1 when a check fails.
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def session(path):
    options = ort.SessionOptions()
    # ORT's default optimisation fuses QDQ into int8 kernels that saturate on CPUs without
    # VNNI; the unfused graph is the QDQ semantics itself.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def windows_from_csv(path, manifest, starts):
    with open(path) as f:
        first = f.readline().split(",")[0].strip()
    try:
        float(first)
        header = 0
    except ValueError:
        header = 1
    data = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2, skiprows=header)
    leads = manifest["input"]["leads"]
    samples = manifest["input"]["samples"]
    data = data[:, :leads]
    return np.stack([data[s : s + samples].T for s in starts]).astype(np.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--csv", required=True)
    p.add_argument("--f32", required=True)
    p.add_argument("--int8", required=True)
    p.add_argument("--tolerance", type=float, default=1e-4)
    # Reported always; a limit only when given (differences of one step per tensor compound
    # over the layers, so the limit depends on the depth of the network).
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--min-agreement", type=float, default=0.95)
    args = p.parse_args()

    manifest = json.load(open(f"{args.model_dir}/manifest.json"))
    files = manifest["files"]
    report = {}
    for key in ("onnx", "int8_onnx"):
        path = f"{args.model_dir}/{files[key]}"
        onnx.checker.check_model(path, full_check=True)
        report[f"{key}_checker"] = "ok"

    predicted_f32 = json.load(open(args.f32))["windows"]
    predicted_int8 = json.load(open(args.int8))["windows"]
    starts = [w["start"] for w in predicted_f32]
    x = windows_from_csv(args.csv, manifest, starts)
    feeds = {"window": x}
    if manifest["input"]["side_inputs"] > 0:
        # `ecgnas predict` gives beat models the RR inputs of a regular rhythm.
        feeds["rr"] = np.ones((len(starts), manifest["input"]["side_inputs"]), np.float32)

    (ort_f32,) = session(f"{args.model_dir}/{files['onnx']}").run(["probabilities"], feeds)
    ecg_f32 = np.array([w["probabilities"] for w in predicted_f32], np.float32)
    f32_diff = float(np.abs(ort_f32 - ecg_f32).max())
    report["f32_max_abs_diff"] = f32_diff
    report["f32_ok"] = bool(f32_diff <= args.tolerance)

    ort_probs, ort_logits = session(f"{args.model_dir}/{files['int8_onnx']}").run(
        ["probabilities", "logits_int8"], feeds
    )
    ecg_int8 = np.array([w["probabilities"] for w in predicted_int8], np.float32)
    multi = manifest["output"] == "sigmoid"
    thresholds = np.array(manifest["thresholds"] or [0.5] * ecg_int8.shape[1], np.float32)

    def decide(probs):
        return probs >= thresholds if multi else np.argmax(probs, axis=1)

    agree = decide(ort_probs) == decide(ecg_int8)
    agreement = float(agree.all(axis=1).mean() if multi else agree.mean())
    ecg_logits = np.array([w["logits_int8"] for w in predicted_int8], np.int32)
    steps = int(np.abs(ort_logits.astype(np.int32) - ecg_logits).max())
    report["int8_max_step_diff"] = steps
    report["int8_label_agreement"] = agreement
    steps_ok = args.max_steps is None or steps <= args.max_steps
    report["int8_ok"] = bool(agreement >= args.min_agreement and steps_ok)
    report["windows"] = len(starts)
    report["onnxruntime"] = ort.__version__
    report["onnx"] = onnx.__version__
    print(json.dumps(report))
    return 0 if report["f32_ok"] and report["int8_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
