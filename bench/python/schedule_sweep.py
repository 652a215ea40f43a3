"""experiments/schedule_sweep.yaml done the PyTorch way: the baseline of bench/run.sh's sweep figure.

Reads the same sweep file (and the same --set overrides, simple scalar keys only) and does the
same work as `runner sweep`: for each schedule of the axis, train the MLP, save a checkpoint
(model, optimizer, generator) every checkpoint_every epochs and at the end, and evaluate each
checkpoint: test_loss, then per sampler (ddpm, ddim) num_samples samples saved as .npy, MMD and
exact W1 against the test split; losses and metrics go to SQLite. Prints one JSON object.
"""
import argparse
import json
import os
import sqlite3
import sys
import time

import numpy as np
import torch
import yaml

import difflab_ref as ref


def apply_set(config, assignment):
    key, value = assignment.split("=", 1)
    node = config
    parts = key.split(".")
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = yaml.safe_load(value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", required=True, help="folder for checkpoints, samples and runs.sqlite")
    a = ap.parse_args()
    threads = ref.set_threads(a.threads)
    with open(a.file) as f:
        cfg = yaml.safe_load(f)
    for s in a.set:
        apply_set(cfg, s)
    ds, mc, sc, tc, ev = cfg["dataset"], cfg["model"], cfg["schedule"], cfg["train"], cfg["evaluation"]
    assert ds["plugin"] == "gmm2d" and mc["plugin"] == "mlp"
    schedules = cfg["sweep"]["schedule.plugin"]
    os.makedirs(a.out, exist_ok=True)
    db = sqlite3.connect(os.path.join(a.out, "runs.sqlite"))
    db.executescript("""
      CREATE TABLE IF NOT EXISTS losses (run TEXT, epoch INT, loss REAL);
      CREATE TABLE IF NOT EXISTS metrics (run TEXT, epoch INT, sampler TEXT, metric TEXT, value REAL);
    """)
    start_all = time.perf_counter()
    w1_seconds, w1_method, results = 0.0, "", []
    seed = int(cfg.get("seed", 0))
    train = ref.gmm2d(int(ds.get("train_size", 12800)), seed * 1000 + 1, ds["components"], ds["radius"], ds["std"])
    test = ref.gmm2d(int(ds.get("test_size", 2000)), seed * 1000 + 2, ds["components"], ds["radius"], ds["std"])
    batch = min(int(tc["batch_size"]), train.shape[0])
    for run, name in enumerate(schedules):
        torch.manual_seed(seed * 1000 + run)
        model = ref.Mlp(2, mc["hidden"], mc["layers"], mc["time_embedding"])
        process = ref.Process(ref.betas(name, sc["timesteps"], sc["beta_start"], sc["beta_end"]))
        opt = torch.optim.Adam(model.parameters(), lr=float(tc["lr"]))
        gen = torch.Generator().manual_seed(seed * 1000 + 100 + run)
        epochs = int(tc["epochs"])
        for epoch in range(1, epochs + 1):
            model.train()
            loss, _ = ref.train_epoch(model, process, opt, train, batch, gen)
            db.execute("INSERT INTO losses VALUES (?, ?, ?)", (name, epoch, loss))
            if epoch % int(tc["checkpoint_every"]) != 0 and epoch != epochs:
                continue
            folder = os.path.join(a.out, name, f"epoch-{epoch:06d}")
            os.makedirs(folder, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "generator": gen.get_state(), "epoch": epoch}, os.path.join(folder, "checkpoint.pt"))
            db.commit()
            model.eval()
            eval_gen = torch.Generator().manual_seed(seed * 1000 + epoch)
            rows = [(name, epoch, "", "test_loss", ref.test_loss(model, process, test, eval_gen))]
            for sampler in ev["samplers"]:
                x_T = torch.randn(int(ev["num_samples"]), 2, generator=eval_gen)
                if sampler["plugin"] == "ddpm":
                    samples = ref.sample_ddpm(model, process, x_T, eval_gen)
                else:
                    samples = ref.sample_ddim(model, process, x_T, eval_gen, sampler.get("steps", 50), sampler.get("eta", 0.0))
                np.save(os.path.join(folder, f"samples-{sampler['plugin']}.npy"), samples.numpy())
                rows.append((name, epoch, sampler["plugin"], "mmd", ref.mmd(samples, test)))
                w1_start = time.perf_counter()
                w1, w1_method = ref.wasserstein(samples, test, eval_gen)
                w1_seconds += time.perf_counter() - w1_start
                rows.append((name, epoch, sampler["plugin"], "wasserstein", w1))
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
            db.commit()
            if epoch == epochs:
                results.append({r[1] and f"{r[2] or 'model'}/{r[3]}": r[4] for r in rows} | {"schedule": name})
    wall = time.perf_counter() - start_all
    print(json.dumps({"side": "python", "what": "sweep", "seconds": wall, "w1_seconds": w1_seconds,
                      "w1_method": w1_method, "threads": threads, "final": results}))


if __name__ == "__main__":
    main()
