#!/usr/bin/env python3
"""The ecgnas benchmark: searches at equal budget against hand-designed baselines.

For each task (mitdb-aami: DS1 trains, its validation records choose, DS2 tests; cinc2017: the
records split 70/15/15 by recording), it runs `ecgnas search` with the `rl`, `random`,
`evolution`, `smbo` and `darts` strategies for the same number of trials (and `enas` and `darts`:
their one-shot phase first, then as
many candidates retrained from scratch), trains the baselines of
`models/baselines/` for that task, scores every final model once on the test split with
`ecgnas evaluate` (95% intervals by resampling records), prices it on the profile with
`ecgnas estimate`, and writes a Markdown report with a table and a quality-latency plot per
task. Everything it runs is through the `ecgnas` command line; it records its own command,
date, machine and versions. A killed run continues where it stopped (finished steps are kept
in the run folder and searches resume).

    python3 scripts/benchmark.py --ecgnas target/release/ecgnas --data ../shared/data \\
        --trials 12 --epochs 4 --out runs/benchmark --report docs/benchmarks.md
"""

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

TASKS = {
    # task: (data folder under --data, primary metric key of `evaluate --json`)
    "mitdb-aami": ("mitdb", "macro_f1"),
    "cinc2017": ("cinc2017", "challenge_f1"),
}
STRATEGIES = ["rl", "enas", "random", "evolution", "smbo", "darts"]
# MIT-BIH records 201 (DS1) and 202 (DS2) come from one subject: DS2 without 202 is the
# patient-disjoint test set (benchmark definitions, section 1.2).
DS2_WITHOUT_202 = "100,103,105,111,113,117,121,123,200,210,212,213,214,219,221,222,228,231,232,233,234"


class StepFailed(Exception):
    """An ecgnas command of the benchmark failed; the others still run."""


def run_json(cmd, log):
    """Runs an ecgnas command that prints JSON on stdout; its stderr goes to `log`."""
    with open(log, "a") as err:
        err.write("$ " + shlex.join(map(str, cmd)) + "\n")
        err.flush()
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    if out.returncode != 0:
        raise StepFailed(f"{shlex.join(map(str, cmd))} failed (exit {out.returncode}); see {log}")
    return json.loads(out.stdout)


def cached(path, make):
    """The JSON at `path`, or `make()` written there: a rerun skips finished steps."""
    if path.exists():
        return json.loads(path.read_text())
    value = make()
    path.write_text(json.dumps(value, indent=2) + "\n")
    return value


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def version(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def interval(report, key):
    ci = report.get("ci95", {}).get("primary" if key == "primary" else key)
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def num(value):
    """A metric with three decimals; `-` where it is undefined (no example of a class)."""
    return "-" if value is None else f"{value:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ecgnas", default="target/release/ecgnas", help="the ecgnas binary")
    parser.add_argument("--data", default="../shared/data", help="folder holding mitdb/ and cinc2017/")
    parser.add_argument("--tasks", default="mitdb-aami,cinc2017")
    parser.add_argument("--profile", default="nrf52840")
    parser.add_argument("--trials", type=int, default=12, help="trials per search")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per child, and for the baselines")
    parser.add_argument("--budget", action="append", default=[], metavar="TASK=TRIALS:EPOCHS",
                        help="another budget for one task (every strategy and baseline of it), e.g. mitdb-aami=8:3")
    parser.add_argument("--report-only", action="store_true",
                        help="run no new search: those not already in the run folder are listed as not run")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="the searches to run")
    parser.add_argument("--enas-epochs", type=int, default=6, help="supernet epochs of the enas search")
    parser.add_argument("--enas-steps", type=int, default=40, help="shared-weight steps per supernet epoch")
    parser.add_argument("--darts-epochs", type=int, default=4, help="darts: epochs of the relaxed phase")
    parser.add_argument("--darts-steps", type=int, default=20, help="darts: weight and architecture steps per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-latency-factor", type=float, default=10.0,
                        help="children over this many times the profile's latency budget are not trained")
    parser.add_argument("--out", default="runs/benchmark", help="run folder (resumable)")
    parser.add_argument("--report", default="docs/benchmarks.md")
    args = parser.parse_args()

    ecgnas = str(Path(args.ecgnas).resolve())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        with open(out / "commands.txt", "a") as f:
            f.write(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: python3 scripts/benchmark.py "
                    + shlex.join(sys.argv[1:]) + "\n")
    log = out / "benchmark.log"
    report_path = Path(args.report)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    baselines_dir = Path(__file__).resolve().parent.parent / "models" / "baselines"
    started = datetime.datetime.now(datetime.timezone.utc)

    budgets = {}
    for spec in args.budget:
        try:
            task, rest = spec.split("=")
            trials, epochs = (int(v) for v in rest.split(":"))
        except ValueError:
            sys.exit(f"benchmark: --budget {spec}: expected TASK=TRIALS:EPOCHS")
        budgets[task] = (trials, epochs)

    sections = []
    for task in args.tasks.split(","):
        trials, epochs = budgets.get(task, (args.trials, args.epochs))
        if task not in TASKS:
            sys.exit(f"benchmark: unknown task {task} (known: {', '.join(TASKS)})")
        folder, metric = TASKS[task]
        data = Path(args.data) / folder
        if not data.is_dir():
            sys.exit(f"benchmark: {data} is not a folder of {task} records")
        task_out = out / task
        task_out.mkdir(exist_ok=True)
        rows = []

        def score(name, kind, model_dir, wall_s, validation):
            evaluation = cached(task_out / f"{name}.evaluate.json", lambda: run_json(
                [ecgnas, "evaluate", model_dir, "--data", data, "--task", task, "--split", "test",
                 "--precision", "int8", "--json"], log))
            cost = cached(task_out / f"{name}.estimate.json", lambda: run_json(
                [ecgnas, "estimate", model_dir, "--profile", args.profile, "--json"], log))
            disjoint = None
            if task == "mitdb-aami":
                disjoint = cached(task_out / f"{name}.evaluate-without-202.json", lambda: run_json(
                    [ecgnas, "evaluate", model_dir, "--data", data, "--task", task, "--records", DS2_WITHOUT_202,
                     "--precision", "int8", "--json"], log))
            rows.append({
                "disjoint": disjoint["metrics"][metric] if disjoint else None,
                "disjoint_ci": interval(disjoint, "primary") if disjoint else "",
                "method": name, "kind": kind,
                "test": evaluation["metrics"][metric],
                "test_ci": interval(evaluation, "primary"),
                "validation": validation,
                "n_test": evaluation["n_examples"], "n_test_records": evaluation["n_records"],
                "latency_ms": cost["latency_ms"], "sram_bytes": cost["sram_bytes"],
                "flash_bytes": cost["flash_bytes"], "macs": cost["macs"],
                "wall_s": wall_s,
            })

        for strategy in args.strategies.split(","):
            if strategy not in STRATEGIES:
                sys.exit(f"benchmark: unknown strategy {strategy} (known: {', '.join(STRATEGIES)})")
            run_dir = task_out / strategy
            def search():
                cmd = [ecgnas, "search", "--data", data, "--task", task, "--profile", args.profile,
                       "--strategy", strategy, "--trials", str(trials), "--epochs", str(epochs),
                       "--seed", str(args.seed), "--max-latency-factor", str(args.max_latency_factor),
                       "--out", run_dir, "--json"]
                if strategy == "enas":
                    cmd += ["--enas-epochs", str(args.enas_epochs), "--enas-steps", str(args.enas_steps)]
                if strategy == "darts":
                    cmd += ["--darts-epochs", str(args.darts_epochs), "--darts-steps", str(args.darts_steps)]
                if (run_dir / "trials.sqlite").exists():
                    cmd.append("--resume")
                t0 = time.monotonic()
                result = run_json(cmd, log)
                result["wall_s"] = time.monotonic() - t0
                return result
            if args.report_only and not (task_out / f"{strategy}.search.json").exists():
                rows.append({"method": strategy, "kind": "search", "missing": "not run"})
                continue
            try:
                result = cached(task_out / f"{strategy}.search.json", search)
            except StepFailed as e:
                print(f"benchmark: {e}", file=sys.stderr)
                rows.append({"method": strategy, "kind": "search", "missing": "failed (see the log)"})
                continue
            if not result.get("best"):
                rows.append({"method": strategy, "kind": "search", "missing": "no feasible trial"})
                continue
            # The trials' own wall time, from the trial store's export: it survives a resume.
            with open(run_dir / "trials.csv") as f:
                trial_s = sum(float(row["wall_s"] or 0) for row in csv.DictReader(f))
            score(strategy, "search", run_dir / "best", trial_s, result["best"]["quality"])

        for path in sorted(baselines_dir.glob("*.json")):
            baseline = json.loads(path.read_text())
            if task not in baseline["tasks"]:
                continue
            name = baseline["name"]
            model_dir = task_out / name
            def train():
                t0 = time.monotonic()
                with open(log, "a") as err:
                    cmd = [ecgnas, "train", path, "--data", data, "--task", task, "--profile", args.profile,
                           "--epochs", str(epochs), "--seed", str(args.seed), "--out", model_dir]
                    err.write("$ " + shlex.join(map(str, cmd)) + "\n")
                    err.flush()
                    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
                if done.returncode != 0:
                    sys.exit(f"benchmark: training {name} failed; see {log}")
                metrics = json.loads((model_dir / "metrics.json").read_text())
                return {"wall_s": time.monotonic() - t0, "validation": metrics["primary"],
                        "reference": baseline["reference"]}
            trained = cached(task_out / f"{name}.train.json", train)
            score(name, "baseline", model_dir, trained["wall_s"], trained["validation"])

        with open(task_out / "results.csv", "w", newline="") as f:
            fields = ["method", "kind", "test", "validation", "latency_ms", "sram_bytes", "flash_bytes",
                      "macs", "wall_s"]
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                if "missing" not in row:
                    writer.writerow(row)
        plot = report_path.parent / f"benchmarks-{task}.svg"
        subprocess.run([ecgnas, "plot", task_out / "results.csv", "--x", "latency_ms", "--y", "test",
                        "--group", "method", "--title", f"{task}: test {metric} against latency on {args.profile}",
                        "--out", plot], check=True)
        sections.append((task, metric, rows, plot, trials, epochs))

    finished = datetime.datetime.now(datetime.timezone.utc)
    command = "python3 scripts/benchmark.py " + shlex.join(sys.argv[1:])
    history = (out / "commands.txt").read_text().splitlines() if (out / "commands.txt").exists() else []
    lines = [
        "# ecgnas benchmarks",
        "",
        f"Written by `{command}`, {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC, from the results in "
        f"`{args.out}` gathered by these runs of the script (every ecgnas command they ran is in "
        f"`{args.out}/benchmark.log`):",
        "",
    ]
    lines += [f"- `{line}`" for line in history] + [""]
    lines += [
        f"- machine: {machine()}; training on the CPU",
        f"- versions: {version([ecgnas, '--version'])}; {version(['rustc', '--version'])}; Python {platform.python_version()}",
        f"- profile `{args.profile}`; seed {args.seed}; every search of a task has the same budget of trained trials "
        f"(below; `enas` first trains its supernet for {args.enas_epochs} epochs of {args.enas_steps} steps), and its "
        f"baselines are trained for as many epochs; children predicted above {args.max_latency_factor:g} times "
        "the profile's latency budget are not trained",
        "- test figures: the int8 model (what the device runs) on the task's test split, scored once, with the 95% "
        "interval of 200 bootstrap resamples of the test records; validation: the figure the search or the "
        "training chose the model by",
        "- latency, SRAM (arena, buffers, stack) and flash: the calibrated cost model of the profile",
        "- wall time: a search's trials (the sum of their wall times in the trial store; the final retraining "
        "of the best is not counted), or the baseline's one training; 2 CPU cores, shared with other work",
        "",
    ]
    for task, metric, rows, plot, trials, epochs in sections:
        extra = task == "mitdb-aami"
        lines += [f"## {task}", "", f"Budget: {trials} trials x {epochs} epochs per search.", "",
                  f"| method | kind | test {metric} [95% CI] |" + (" DS2 without 202 [95% CI] |" if extra else "")
                  + " validation | latency (ms) | SRAM (B) | flash (B) | MACs | wall time (s) |",
                  "|---|---|---|" + ("---|" if extra else "") + "---|---|---|---|---|---|"]
        for r in rows:
            if "missing" in r:
                lines.append(f"| {r['method']} | {r['kind']} | {r['missing']} |" + (" |" if extra else "") + " | | | | | |")
                continue
            lines.append(
                f"| {r['method']} | {r['kind']} | {num(r['test'])}{r['test_ci']} | "
                + (f"{num(r['disjoint'])}{r['disjoint_ci']} | " if extra else "")
                + f"{num(r['validation'])} | "
                f"{r['latency_ms']:.1f} | {r['sram_bytes']:,} | {r['flash_bytes']:,} | {r['macs']:,} | {r['wall_s']:.0f} |")
        n = next((r for r in rows if "n_test" in r), None)
        if n:
            lines += ["", f"Test split: {n['n_test']:,} examples from {n['n_test_records']} records."]
        lines += ["", f"![{task}: test {metric} against latency]({plot.name})", ""]
    report_path.write_text("\n".join(lines) + "\n")
    print(f"benchmark: wrote {report_path}")


if __name__ == "__main__":
    main()
