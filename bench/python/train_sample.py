"""Training steps/s and DDPM sampling time of the 2D GMM model in PyTorch (the baseline side of
bench/run.sh). Prints one JSON object. The same measurements as `difflab_bench train|sample`."""
import argparse
import json
import statistics
import sys
import time

import torch

import difflab_ref as ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "sample"])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--time-embedding", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1280)
    ap.add_argument("--train-size", type=int, default=12800)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=200, help="timed training steps per repeat")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps (training) or reverse steps (sampling)")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--timesteps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    threads = ref.set_threads(a.threads)
    torch.manual_seed(0)
    model = ref.Mlp(2, a.hidden, a.layers, a.time_embedding)
    process = ref.Process(ref.betas("linear", a.timesteps))
    gen = torch.Generator().manual_seed(1)
    times = []
    if a.what == "train":
        data = ref.gmm2d(a.train_size, 2)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
        model.train()
        steps_per_epoch = a.train_size // a.batch

        def run(steps):  # whole epochs as the engine runs them, the last one cut short
            done = 0
            while done < steps:
                _, s = ref.train_epoch(model, process, opt, data, a.batch, gen, min(steps_per_epoch, steps - done))
                done += s

        run(a.warmup)
        for _ in range(a.repeats):
            start = time.perf_counter()
            run(a.steps)
            times.append(time.perf_counter() - start)
        rate = a.steps / statistics.median(times)
        out = {"steps_per_s": rate, "seconds": times, "steps": a.steps}
    else:
        model.eval()
        warm_process = ref.Process(ref.betas("linear", a.warmup))
        ref.sample_ddpm(model, warm_process, torch.randn(a.samples, 2, generator=gen), gen)
        for _ in range(a.repeats):
            x = torch.randn(a.samples, 2, generator=gen)
            start = time.perf_counter()
            x = ref.sample_ddpm(model, process, x, gen)
            times.append(time.perf_counter() - start)
        out = {"seconds_median": statistics.median(times), "seconds": times,
               "samples": a.samples, "timesteps": a.timesteps}
    out.update({"side": "python", "what": a.what, "threads": threads, "torch": torch.__version__,
                "python": sys.version.split()[0]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
