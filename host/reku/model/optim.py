"""One optimizer step of ternary training, shared by `train()`'s loop and each pipelined forward-forward worker
(reku.model.ff.Pipeline): the learning-rate schedule, oscillation dampening, ternary flip monitoring and freezing."""

import math

import torch


class FlipMonitor:
    """Counts ternary flips between checks (rate = flips per weight per step) and, when asked, freezes
    weights whose flip frequency stays high (iterative freezing, Nagel et al. 2022)."""

    def __init__(self, mods):
        self.mods = list(mods)
        self.prev = [m.ternary()[0].detach().clone() for m in self.mods]
        self.ema = [torch.zeros_like(p) for p in self.prev]
        self.n = sum(p.numel() for p in self.prev)
        self.frozen = 0

    @torch.no_grad()
    def update(self):
        flips = 0
        for i, m in enumerate(self.mods):
            t = m.ternary()[0]
            if m.frozen is not None:
                t = torch.where(m.frozen, m.frozen_val, t)
            ch = (t != self.prev[i]).float()
            flips += int(ch.sum())
            self.ema[i].mul_(0.99).add_(ch, alpha=0.01)
            self.prev[i] = t.clone()
        return flips / self.n

    @torch.no_grad()
    def freeze(self, threshold):
        self.frozen = 0
        for i, m in enumerate(self.mods):
            f = self.ema[i] > threshold
            if m.frozen is None:
                m.frozen = f
                m.frozen_val = self.prev[i].clone()
            else:
                newly = f & ~m.frozen
                m.frozen_val = torch.where(newly, self.prev[i], m.frozen_val)
                m.frozen = m.frozen | f
            self.frozen += int(m.frozen.sum())
        return self.frozen / self.n


def dampening_loss(mods):
    """sum (w/alpha - clip(round(w/alpha)))^2 over ternary layers: pulls latent weights to their grid point."""
    tot = 0.0
    for m in mods:
        a = m.alpha().detach()
        z = m.weight / a
        tot = tot + ((z - torch.clamp(torch.round(z), -1, 1).detach()) ** 2).mean()
    return tot


def lr_at(cfg, step, frac):
    """The learning rate of a step: linear warm-up, then cosine decay over the run's progress `frac`."""
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup)) * 0.5 * (1 + math.cos(math.pi * frac))


def optimize(opt, total, clip, mon, cfg, step, frac, dampen, freeze_after):
    """One optimizer step (train()'s loop, and each pipelined forward-forward worker on its own layer): dampening
    of the monitored ternary layers, the step's learning rate (times each group's `scale`), backward, `clip()`,
    the step, flip counting and, past `freeze_after`, freezing. Returns the step's flip rate."""
    if dampen:
        total = total + dampen * frac * dampening_loss(mon.mods)
    for g in opt.param_groups:
        g["lr"] = lr_at(cfg, step, frac) * g["scale"]
    opt.zero_grad()
    total.backward()
    clip()
    opt.step()
    fr = mon.update()
    if freeze_after and frac >= freeze_after and step % 50 == 0:
        mon.freeze(cfg.freeze_threshold)
    return fr
