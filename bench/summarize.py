"""Reads the figures bench/run.sh measured, prints them with the ratios difflab/python and writes
bench/results/<device>-<date>.json and .md."""
import argparse
import datetime
import json
import os
import platform
import sqlite3


def load(path):
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def elapsed(path):
    start, end = open(path).read().split()
    return float(end) - float(start)


def cpu_name():
    """The CPU's model name with its family and model numbers (a virtual machine's name is often
    generic, "Intel(R) Xeon(R) Processor": the numbers tell Sapphire Rapids, 143, from Emerald
    Rapids, 207, or AMD Zen 4, family 25)."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def runner_train_rate(db):
    """Training steps/s inside `runner sweep` (its own train_seconds), over all runs."""
    con = sqlite3.connect(db)
    steps, seconds = con.execute(
        "SELECT sum((SELECT max(step) FROM checkpoints c WHERE c.run_id = r.id)), sum(r.train_seconds) "
        "FROM runs r WHERE r.status = 'done'").fetchone()
    return steps / seconds if steps and seconds else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("results")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--sweep-set", default="")
    ap.add_argument("--quick", default="0")
    ap.add_argument("--build", default="")
    a = ap.parse_args()
    w = lambda name: os.path.join(a.work, name)
    train_d, train_p = load(w("train-difflab.json")), load(w("train-python.json"))
    sample_d, sample_p = load(w("sample-difflab.json")), load(w("sample-python.json"))
    sweep_d, sweep_p = elapsed(w("sweep-difflab.time")), elapsed(w("sweep-python.time"))
    sweep_p_out = load(w("sweep-python-out.json"))
    if train_p["threads"] != a.threads or train_d["threads"] != a.threads:
        raise SystemExit(f"thread counts differ: difflab {train_d['threads']}, python {train_p['threads']}")
    w1 = sweep_p_out.get("w1_seconds", 0.0)
    rows = [
        ("training steps/s (MLP 3x256, batch 1280, Adam)", train_d["steps_per_s"], train_p["steps_per_s"],
         train_d["steps_per_s"] / train_p["steps_per_s"], "higher is better"),
    ]
    if os.path.exists(w("train-difflab-torchgemm.json")):
        train_t = load(w("train-difflab-torchgemm.json"))
        rows.append(("  same, difflab with torch's BLAS (DIFFLAB_CPU_GEMM=torch)", train_t["steps_per_s"],
                     train_p["steps_per_s"], train_t["steps_per_s"] / train_p["steps_per_s"], "higher is better"))
    rows.append((f"sampling {sample_d['samples']} x {sample_d['timesteps']} DDPM steps, {sample_d['model']} (s)",
                 sample_d["seconds_median"], sample_p["seconds_median"],
                 sample_p["seconds_median"] / sample_d["seconds_median"], "speed-up"))
    if os.path.exists(w("sample-difflab-system-malloc.json")):
        sample_m = load(w("sample-difflab-system-malloc.json"))
        rows.append(("  same, difflab with glibc's default malloc (DIFFLAB_MALLOC=system)", sample_m["seconds_median"],
                     sample_p["seconds_median"], sample_p["seconds_median"] / sample_m["seconds_median"], "speed-up"))
    rows.append(("schedule_sweep.yaml wall time (s)", sweep_d, sweep_p, sweep_p / sweep_d, "speed-up"))
    if sweep_p_out.get("w1_method", "scipy") != "scipy":
        rows.append(("  same, python's W1 time left out (s)", sweep_d, sweep_p - w1, (sweep_p - w1) / sweep_d,
                     "speed-up, lower bound"))
    if os.path.exists(w("sweep-batched.time")):
        sweep_b = elapsed(w("sweep-batched.time"))
        rows.append(("schedule_sweep.yaml, runner sweep --batch-grid (s)", sweep_b, sweep_p, sweep_p / sweep_b, "speed-up"))
        if sweep_p_out.get("w1_method", "scipy") != "scipy":
            rows.append(("  same, python's W1 time left out (s)", sweep_b, sweep_p - w1, (sweep_p - w1) / sweep_b,
                         "speed-up, lower bound"))
    runner_rate = runner_train_rate(w("runs.sqlite"))
    overhead = None
    if os.path.exists(w("overhead.json")):
        overhead = load(w("overhead.json"))
    date = datetime.datetime.now(datetime.timezone.utc)
    result = {
        "date": date.isoformat(timespec="seconds"),
        "device": "cpu",
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": a.threads,
        "blas": train_d.get("blas"),
        "allocator": train_d.get("allocator"),
        "torch_python": train_p.get("torch"),
        "python": train_p.get("python"),
        "quick": a.quick == "1",
        "sweep_overrides": a.sweep_set,
        "train": {"difflab": train_d, "python": train_p},
        "sample": {"difflab": sample_d, "python": sample_p},
        "sweep": {"difflab_seconds": sweep_d, "python_seconds": sweep_p, "python": sweep_p_out,
                  "runner_train_steps_per_s": runner_rate},
        "rows": [{"workload": r[0].strip(), "difflab": r[1], "python": r[2], "difflab_over_python": r[3],
                  "note": r[4]} for r in rows],
        "runner_overhead": overhead,
    }
    lines = [
        f"difflab vs PyTorch (Python), {result['date']}, {result['cpu']}, {result['cores']} cores, {a.threads} threads, "
        f"BLAS {result['blas']}, difflab's linear layers: {train_d.get('cpu_gemm', 'torch')}, "
        f"allocator: {result['allocator']}",
        f"torch {result['torch_python']} (python {result['python']}); sweep overrides: {a.sweep_set or '(none)'}",
        "",
        "| workload | difflab | python | difflab/python |",
        "| --- | --- | --- | --- |",
    ]
    for name, d, p, ratio, note in rows:
        lines.append(f"| {name} | {d:.3g} | {p:.3g} | {ratio:.2f}x ({note}) |")
    if runner_rate:
        lines.append("")
        lines.append(f"`runner sweep` trained at {runner_rate:.1f} steps/s (the sweep file's model, its own train_seconds).")
    if overhead:
        lines.append(f"Runner overhead on {overhead['steps']} training steps (`difflab_bench overhead`, 3 rounds in one "
                     f"process): time outside the training loop (set-up, checkpoint files, store, logging) "
                     f"{100 * overhead['overhead']:.2f}% of the loop (rounds: "
                     + ", ".join(f"{100 * f:.2f}%" for f in overhead["outside_loop_fraction"])
                     + f"); whole run against the bare loop {100 * overhead['wall_ratio']:+.1f}% "
                     f"(engine {', '.join(f'{x:.2f}' for x in overhead['engine_seconds'])} s, bare "
                     f"{', '.join(f'{x:.2f}' for x in overhead['bare_loop_seconds'])} s: this machine's noise).")
    if sweep_p_out.get("w1_method", "scipy") != "scipy":
        lines.append(f"Python's exact W1 used {sweep_p_out['w1_method']} (no scipy here): {w1:.1f} s of its sweep.")
    if os.path.exists(w("bench.time")):
        result["bench_seconds"] = elapsed(w("bench.time"))
        lines.append(f"The whole bench took {result['bench_seconds'] / 60:.1f} min.")
    report = "\n".join(lines)
    print(report)
    if a.quick == "1":
        return  # a smoke run: nothing to keep
    stem = os.path.join(a.results, f"cpu-{date.strftime('%Y%m%d-%H%M')}")
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(report + "\n")
    print(f"\nwritten: {stem}.json, {stem}.md")


if __name__ == "__main__":
    main()
