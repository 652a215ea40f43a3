"""The 2D GMM schedule study written the way a PyTorch user writes it: the baseline of bench/.

Every piece does the same arithmetic as the difflab plugin of the same name (cited per
function), so that bench/run.sh compares the framework, not the workload.
"""
import math
import os
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

warnings.filterwarnings("ignore", message="scatter_reduce")


def set_threads(threads):
    """Torch's intra-op threads, set explicitly and checked (the bench compares equal threads)."""
    torch.set_num_threads(threads)
    got = torch.get_num_threads()
    if got != threads:
        raise SystemExit(f"torch.get_num_threads() is {got}, not the {threads} asked for")
    return got


# --- schedules (plugins/schedules/*.cpp), float64 betas of length T --------------------------
def betas(name, timesteps=1000, beta_start=1e-4, beta_end=0.02):
    T, b0, b1 = timesteps, beta_start, beta_end
    if name == "linear":
        return torch.linspace(b0, b1, T, dtype=torch.float64)
    if name == "cosine_beta":
        t = torch.arange(1, T + 1, dtype=torch.float64)
        return b0 + (b1 - b0) * (1.0 - torch.cos(t * (math.pi / (2.0 * T))))
    if name == "quadratic":  # the study's b0 + (b1 - b0)(t/T)^2
        t = torch.arange(1, T + 1, dtype=torch.float64)
        return b0 + (b1 - b0) * (t / T) ** 2
    if name == "scaled_linear":  # Ho et al.'s "quad"
        return torch.linspace(math.sqrt(b0), math.sqrt(b1), T, dtype=torch.float64) ** 2
    if name == "exponential":  # the study's b0 (b1 / b0)^(t/T)
        t = torch.arange(1, T + 1, dtype=torch.float64)
        return b0 * torch.pow(torch.tensor(b1 / b0, dtype=torch.float64), t / T)
    raise ValueError(f"unknown schedule {name}")


class Process:
    """The forward process tables (framework/src/api/diffusion.cpp): float64 math, float32 tables."""

    def __init__(self, b):
        alphas = 1.0 - b
        abar = torch.cumprod(alphas, 0)
        self.T = b.shape[0]
        f = lambda t: t.to(torch.float32).contiguous()
        self.betas, self.alphas, self.alpha_bars = f(b), f(alphas), f(abar)
        self.sqrt_ab, self.sqrt_1mab = f(abar.sqrt()), f((1.0 - abar).sqrt())

    def q_sample(self, x0, t, noise):  # Ho et al. 2020, eq. 4
        return self.sqrt_ab.index_select(0, t).view(-1, 1) * x0 + \
            self.sqrt_1mab.index_select(0, t).view(-1, 1) * noise


# --- the model (plugins/models/mlp.cpp, plain layers, epsilon prediction) --------------------
def timestep_embedding(t, dim):
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32)
    freqs = torch.exp(k * (-math.log(10000.0) / half))
    angles = t.float().reshape(-1, 1) * freqs.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], 1)


class Mlp(nn.Module):
    def __init__(self, data_dim=2, hidden=256, layers=3, time_embedding=128):
        super().__init__()
        self.embedding_dim = time_embedding
        self.input = nn.Linear(data_dim, hidden)
        self.time_in = nn.Linear(time_embedding, hidden)
        self.time_out = nn.Linear(hidden, hidden)
        self.blocks = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
        self.output = nn.Linear(hidden, data_dim)

    def forward(self, x, t):
        h = self.input(x) + self.time_out(F.silu(self.time_in(timestep_embedding(t, self.embedding_dim))))
        for layer in self.blocks:
            h = F.silu(layer(h))
        return self.output(h)


# --- data (plugins/datasets/gmm2d.cpp) ---------------------------------------------------------
def gmm2d(n, seed, components=8, radius=5.0, std=0.2):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, components, (n,), generator=g)
    angles = torch.arange(components, dtype=torch.float64) * (2.0 * math.pi / components)
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)
    noise = torch.randn((n, 2), generator=g, dtype=torch.float64)
    return (means.index_select(0, labels) + std * noise).to(torch.float32).contiguous()


# --- training (framework/src/training/train_step.cpp and the engine's epoch loop) ----------------------
def train_step(model, process, optimizer, x0, gen):
    t = torch.randint(0, process.T, (x0.shape[0],), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    loss = F.mse_loss(model(process.q_sample(x0, t, noise), t.float()), noise)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_epoch(model, process, optimizer, data, batch, gen, max_steps=None):
    """One epoch: a permutation, full batches only, the loss read back once. Returns (loss, steps)."""
    n = data.shape[0]
    order = torch.randperm(n, generator=gen)
    loss_sum = torch.zeros(())
    steps = n // batch if max_steps is None else min(n // batch, max_steps)
    for b in range(steps):
        x0 = data.index_select(0, order[b * batch:(b + 1) * batch])
        loss_sum += train_step(model, process, optimizer, x0, gen)
    return loss_sum.item() / max(1, steps), steps


# --- samplers (plugins/samplers/ddpm.cpp, ddim.cpp) -------------------------------------------
@torch.no_grad()
def sample_ddpm(model, p, x, gen):  # Ho et al. 2020, Algorithm 2, sigma_t^2 = beta_t
    for i in range(p.T - 1, -1, -1):
        t = torch.full((x.shape[0],), float(i))
        eps = model(x, t)
        mean = (x - (p.betas[i] / p.sqrt_1mab[i]) * eps) / p.alphas[i].sqrt()
        x = mean + p.betas[i].sqrt() * torch.randn(x.shape, generator=gen) if i > 0 else mean
    return x


@torch.no_grad()
def sample_ddim(model, p, x, gen, steps=50, eta=0.0):  # Song et al. 2021, eq. 12
    tau = [i * p.T // steps for i in range(steps)]
    one = torch.ones(())
    for i in range(steps - 1, -1, -1):
        t = torch.full((x.shape[0],), float(tau[i]))
        eps = model(x, t)
        a_t = p.alpha_bars[tau[i]]
        a_prev = p.alpha_bars[tau[i - 1]] if i > 0 else one
        x0 = (x - (1.0 - a_t).sqrt() * eps) / a_t.sqrt()
        sigma = eta * ((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev)).sqrt()
        x = a_prev.sqrt() * x0 + (1.0 - a_prev - sigma ** 2).clamp_min(0).sqrt() * eps
        if eta > 0 and i > 0:
            x = x + sigma * torch.randn(x.shape, generator=gen)
    return x


# --- metrics (plugins/metrics/test_loss.cpp, mmd.cpp, wasserstein.cpp) -------------------------
@torch.no_grad()
def test_loss(model, p, x, gen, repeats=4, batch=4096):
    se, count = 0.0, 0
    for _ in range(repeats):
        for s in range(0, x.shape[0], batch):
            x0 = x[s:s + batch]
            t = torch.randint(0, p.T, (x0.shape[0],), generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            out = model(p.q_sample(x0, t, noise), t.float())
            se += (out.double() - noise.double()).pow(2).sum().item()
            count += out.numel()
    return se / count


def mmd(x, y, bandwidths=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0)):  # Gretton et al. 2012, eq. 3 (unbiased)
    x, y = x.double(), y.double()

    def ksum(a, b):
        d2 = (a.square().sum(1, keepdim=True) + b.square().sum(1).unsqueeze(0) - 2.0 * a @ b.t()).clamp_min(0)
        return sum(torch.exp(d2 / (-2.0 * s * s)).sum().item() for s in bandwidths)

    m, n, k = x.shape[0], y.shape[0], len(bandwidths)
    return (ksum(x, x) - m * k) / (m * (m - 1)) + (ksum(y, y) - n * k) / (n * (n - 1)) - \
        2.0 * ksum(x, y) / (m * n)


def _assignment_auction(cost, final_eps):
    """Jacobi auction with epsilon scaling (Bertsekas 1988), vectorised: cost within n eps of optimal."""
    n = cost.shape[0]
    value = -cost
    price = torch.zeros(n, dtype=cost.dtype)
    eps = float(cost.max() - cost.min()) / 4.0
    while True:
        owner = torch.full((n,), -1, dtype=torch.long)  # row of each column
        col4row = torch.full((n,), -1, dtype=torch.long)
        while True:
            free = (col4row < 0).nonzero().flatten()
            if free.numel() == 0:
                break
            net = value.index_select(0, free) - price
            top, cols = net.topk(2, dim=1)
            bids = top[:, 0] - top[:, 1] + eps
            best = cols[:, 0]
            # Each column goes to its highest bidder this round.
            highest = torch.full((n,), -math.inf, dtype=cost.dtype).scatter_reduce(0, best, bids, "amax")
            won = bids == highest.index_select(0, best)
            winners, won_cols = free[won], best[won]
            won_cols, first = torch.unique(won_cols, return_inverse=True)
            pick = torch.full((won_cols.numel(),), n, dtype=torch.long).scatter_reduce(
                0, first, torch.arange(first.numel()), "amin")
            winners = winners[pick]
            previous = owner.index_select(0, won_cols)
            col4row[previous[previous >= 0]] = -1
            owner[won_cols] = winners
            col4row[winners] = won_cols
            price[won_cols] += highest[won_cols]
        if eps <= final_eps:
            return col4row
        eps = max(eps / 4.0, final_eps)


def wasserstein(x, y, gen):
    """Exact W1 of equal-size sets (the larger set subsampled): scipy's linear_sum_assignment when
    there is scipy, else an auction whose mean cost is within 1e-6 of the optimum."""
    x, y = x.double(), y.double()
    n = min(x.shape[0], y.shape[0])
    if x.shape[0] > n:
        x = x.index_select(0, torch.randperm(x.shape[0], generator=gen)[:n])
    if y.shape[0] > n:
        y = y.index_select(0, torch.randperm(y.shape[0], generator=gen)[:n])
    cost = torch.cdist(x, y, 2.0, compute_mode="use_mm_for_euclid_dist_if_necessary" if x.shape[1] > 64
                       else "donot_use_mm_for_euclid_dist")
    try:
        from scipy.optimize import linear_sum_assignment
        rows, cols = linear_sum_assignment(cost.numpy())
        return float(cost.numpy()[rows, cols].mean()), "scipy"
    except ImportError:
        col4row = _assignment_auction(cost, 1e-6)
        return float(cost.gather(1, col4row.view(-1, 1)).mean()), "auction(eps=1e-6)"
