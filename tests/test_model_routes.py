"""The float route (issue 8): `reku train --float` -> `reku quantize` (absmean ternarisation with gain refit,
int8 low-rank corrections under a byte budget, per-layer FP4/int8 under an activation budget). Tiny models,
a few hundred steps."""
import json
import subprocess
import sys

import numpy as np
import pytest

from reku import paths
from reku.model import ptq
from reku.model.reference import Reference
from rkfw import infer, kernels, rku
from rkfw.fp4 import act_bytes

SKILL = paths.SKILLS / "home"
QUERIES = ["turn on the kitchen light", "dim the bedroom to 30%", "lock the front door", "what's the weather", ""]


def reku(*args):
    return subprocess.run([sys.executable, "-m", "reku.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("route") / "f.pt"
    r = reku("train", "--float", "--skill", str(SKILL), "--out", str(out), "--size", "tiny", "--steps", "120",
             "--examples", "1500", "--quiet", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "float checkpoint" in r.stdout
    return out


def test_float_training_is_deterministic(ckpt, tmp_path):
    import torch
    again = tmp_path / "g.pt"
    r = reku("train", "--float", "--skill", str(SKILL), "--out", str(again), "--size", "tiny", "--steps", "120",
             "--examples", "1500", "--quiet", "--seed", "3")
    assert r.returncode == 0, r.stderr
    a, b = torch.load(ckpt, weights_only=False), torch.load(again, weights_only=False)
    assert a["arch"] == b["arch"] and a["kind"] == ptq.CKPT_KIND
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k


def _parity(blob, queries=QUERIES):
    """The numpy reference and the firmware engine agree on whole queries and step by step on random tokens."""
    m = rku.load(blob)
    r = Reference(m)
    eng = infer.Engine(m, kernels.PYTHON)
    for q in queries:
        assert eng.run(q)[0] == r.run(q)[0], q
    r.reset()
    eng._reset()
    for t in np.random.default_rng(0).integers(0, m.arch["n_in"] + m.arch["n_out"], size=25):
        eng.step(int(t))
        assert list(eng.h) == list(r.step(int(t)))
    return m


def _file_names(modules):
    """Tensor names in the .rku of the net's TLinear module names ("blocks.0.Wr" -> "l0.Wr")."""
    return [n.replace("blocks.", "l") for n in modules]


def test_correction_reduces_error_on_every_layer_and_fixed_rank(ckpt):
    blob, info = ptq.quantize(ckpt, svd_rank=2, n_calib=120, log=None)
    assert info["recon"] and all(r == 2 for r in info["ranks"].values())
    for name, (e0, e1) in info["recon"].items():
        assert e1 < e0, (name, e0, e1)
    m = _parity(blob)
    lr = [n for n in m.tensors if m.tensor(n).dtype == "lr"]
    assert sorted(lr) == sorted(n + ".lr" for n in _file_names(info["ranks"]))
    for n in lr:
        R, r, C = m.tensor(n).shape
        assert r == 2 and (R, C) == m.tensor(n[:-3]).shape


def test_refinement_moves_only_the_factors_and_lowers_the_loss(ckpt):
    """--refine-steps: the SVD's factors trained on calibration data; the ternary tensors, scales and every other
    tensor of the file stay byte for byte those of the unrefined quantization; the result is deterministic."""
    plain, p = ptq.quantize(ckpt, svd_rank=1, n_calib=120, log=None)
    blob, info = ptq.quantize(ckpt, svd_rank=1, n_calib=120, refine_steps=80, n_refine=600, log=None)
    assert info["refine_steps"] == 80 and p["calib_loss_refined"] is None
    assert info["calib_loss_refined"] < info["calib_loss_svd"] == p["calib_loss_svd"]
    a, b = rku.load(plain), rku.load(blob)
    assert len(blob) == len(plain) and sorted(a.tensors) == sorted(b.tensors)
    key = lambda m, n: (bytes(m.tensor(n).data), m.tensor(n).M, m.tensor(n).S)
    moved = [n for n in a.tensors if key(a, n) != key(b, n)]
    assert moved and all(b.tensor(n).dtype == "lr" for n in moved), moved
    for n in moved:
        assert np.frombuffer(bytes(b.tensor(n).data), np.int8).min() >= -127
    _parity(blob)
    again, _ = ptq.quantize(ckpt, svd_rank=1, n_calib=120, refine_steps=80, n_refine=600, log=None)
    assert again == blob


@pytest.mark.parametrize("kb", [0, 0.3, 1.0])
def test_svd_budget_is_respected(ckpt, kb):
    blob, info = ptq.quantize(ckpt, svd_budget_bytes=int(kb * 1024), n_calib=120, log=None)
    assert 0 <= info["svd_bytes"] <= kb * 1024
    assert info["bytes"] == len(blob) == info["bytes_plain"] + info["svd_bytes"]
    if kb >= 1.0:
        assert sum(info["ranks"].values()) > 0
    _parity(blob)


def test_act_budget_is_respected_and_uses_sensitivity(ckpt):
    net, _ = ptq.load_checkpoint(ckpt)
    all_i8 = act_bytes(net.d, net.f, ["i8"] * net.L)
    all_fp4 = act_bytes(net.d, net.f, ["fp4"] * net.L)
    assert all_fp4 < all_i8
    blob, info = ptq.quantize(ckpt, act_budget_bytes=all_i8, n_calib=120, log=None)
    assert info["acts"] == ["i8"] * net.L and len(info["sensitivity"]) == net.L
    blob, info = ptq.quantize(ckpt, svd_rank=1, act_budget_bytes=all_fp4, n_calib=120, log=None)
    assert info["act_ram"] <= all_fp4 and "fp4" in info["acts"]
    m = _parity(blob)
    assert m.arch["acts"] == info["acts"]
    with pytest.raises(ValueError, match="even with every layer FP4"):
        ptq.quantize(ckpt, act_budget_bytes=all_fp4 - 1, n_calib=60, log=None)


@pytest.mark.parametrize("acts,want", [(["i8", "i8"], 40 + (40 + 80) + 4 * 40),
                                       (["fp4", "i8"], 40 + (40 + 80) + 2 * 22 + 2 * 40),
                                       (["fp4", "fp4"], 40 + (22 + 43) + 4 * 22)])
def test_act_bytes_are_the_engines_buffers(acts, want):
    """The budget counts what the engine allocates: xs int8; x, xf packed (22 and 43 bytes for 40 and 80
    values) when every layer is FP4; each FP4 layer's prev and prevc packed."""
    from reku.model.synth import random_model
    assert act_bytes(40, 80, acts) == want
    tools = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
    e = infer.Engine(rku.load(random_model(tools, seed=3, d=40, f=80, layers=2, acts=acts)), kernels.PYTHON)
    bufs = [e.x, e.xs, e.xf] + e.prev + e.prevc
    assert sum(len(b) * b.itemsize for b in bufs) == want


def test_quantize_cli_and_micropython(ckpt, tmp_path):
    out = tmp_path / "q.rku"
    r = reku("quantize", "--checkpoint", str(ckpt), "--out", str(out), "--svd-budget-kb", "0.5", "--calib", "100",
             "--refine-steps", "30", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["bytes"] == out.stat().st_size and info["svd_bytes"] <= 512 and info["refine_steps"] == 30
    from test_model_parity import run_micropython
    blob = out.read_bytes()
    ref = Reference(rku.load(blob))
    got = run_micropython(blob, QUERIES, tmp_path)
    for q, g in zip(QUERIES, got):
        assert "error" not in g, g
        assert g["calls"] == ref.run(q)[0], q


def test_cli_errors_are_one_line(ckpt, tmp_path):
    r = reku("quantize", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.rku"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not found" in r.stderr
    r = reku("quantize", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x.rku"), "--svd-budget-kb", "-1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--svd-budget-kb" in r.stderr
    r = reku("quantize", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x.rku"), "--act-budget-kb", "0")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--act-budget-kb" in r.stderr
    r = reku("quantize", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x.rku"), "--refine-steps", "-5")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--refine-steps" in r.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    r = reku("quantize", "--checkpoint", str(bad), "--out", str(tmp_path / "x.rku"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a float checkpoint" in r.stderr
    r = reku("train", "--float", "--skill", str(SKILL), "--out", str(tmp_path / "x.pt"), "--algo", "ff")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--float" in r.stderr


@pytest.mark.parametrize("cfg", [dict(acts=["i8", "i8"]), dict(acts=["fp4", "fp4"]),
                                 dict(acts=["i8", "fp4"], lowrank=3)])
def test_inspect_counts_the_engines_buffers(cfg):
    """`reku inspect`'s RAM figure (inference_ram, read off the engine) is the bytes the engine's buffers take by
    their definition: int32 h, r, k, v, o (d each), hf (f), each layer's state (d), logits (O), q32 (dk), scores
    (max_in+1); int8 activations (act_bytes), pointer keys ((max_in+1) * dk), q8 (dk); uint16 ids (max_in) and the
    grammar's allowed set (O); with low-rank corrections, the int32 correction buffer, each correction's V @ x (r,
    int32 and int8) and, with FP4 layers, the unpacked input."""
    from reku.model.cli import inference_ram
    from reku.model.synth import random_model
    tools = json.loads((paths.SKILLS / "home" / "tools.json").read_text())
    m = rku.load(random_model(tools, seed=4, d=40, f=80, layers=2, **cfg))
    d, f, L, dk, mi, O = 40, 80, 2, m.arch["dk"], m.arch["max_in"], m.arch["n_out"]
    i32 = 5 * d + f + L * d + O + dk + (mi + 1)
    i8 = act_bytes(d, f, cfg["acts"]) + (mi + 1) * dk + dk
    if cfg.get("lowrank"):
        ranks = [t.shape[1] for t in m.tensors.values() if t.dtype == "lr"]
        assert ranks and set(ranks) == {cfg["lowrank"]}
        i32 += max(d, f, O, dk) + sum(ranks)
        i8 += sum(ranks) + (max(d, f) if "fp4" in cfg["acts"] else 0)
    assert inference_ram(m) == 4 * i32 + i8 + 2 * mi + 2 * O
