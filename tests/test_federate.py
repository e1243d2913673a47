"""`reku federate`: the update codec (top-k + FP4 with error feedback), the privacy accountant, the settings it
refuses, and whole federations on Flower: the simulation engine (Ray) with compression, with SecAgg+ (which must
give what plain FedAvg gives) and with DP clipping and noise; and a real deployment: a `flower-superlink` and
three `flower-supernode` processes on localhost, two rounds, submitted by `reku federate --superlink`."""
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reku import paths
from reku.model import compress as C

pytest.importorskip("torch")
F = pytest.importorskip("reku.model.federate")
pytest.importorskip("flwr")          # the fleet extra, which `make test` installs

BIN = Path(sys.executable).parent
HOME = paths.SKILLS / "home" / "model.rku"
ROOMS = ["kitchen", "bedroom", "office", "garage", "garden", "hallway"]


# ---------------------------------------------------------------------------------------------------------------
# The codec

def test_values_on_the_fp4_grid_come_back_exactly():
    s = 0.25                                        # block scale = max / 6
    grid = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float32) * s
    v = np.concatenate([grid, -grid[1:], np.zeros(17, np.float32)])
    idx, codes, scales = C.encode(v, 1.0)
    assert scales[0] == np.float16(6 * s) / 6 and idx.tolist() == list(range(v.size))
    assert np.array_equal(C.decode(idx, codes, scales, v.size), v)


def test_top_k_keeps_the_largest_and_rounds_to_the_nearest_level():
    rng = np.random.default_rng(0)
    v = rng.normal(size=10_000).astype(np.float32)
    idx, codes, scales = C.encode(v, 0.01)
    assert idx.size == 100 and np.all(np.diff(idx.astype(np.int64)) > 0)
    kept = np.abs(v[idx])
    assert kept.min() >= np.sort(np.abs(v))[-100]
    d = C.decode(idx, codes, scales, v.size)
    assert np.count_nonzero(d) <= 100 and np.all(d[np.setdiff1d(np.arange(v.size), idx)] == 0)
    # nearest E2M1 level: the error is at most half the widest gap (6 - 4 = 2 levels of scale) per entry
    step = np.repeat(scales.astype(np.float32), C.BLOCK)[:100]
    assert np.all(np.abs(d[idx] - v[idx]) <= step * 1.0 + 1e-6)
    assert np.all(np.sign(d[idx]) == np.sign(v[idx]))
    # what travels: 4 B per position, half a byte per value, 2 B per 32 values
    assert C.wire_bytes((idx, codes, scales)) == 400 + 50 + 8
    assert C.wire_bytes((idx, codes, scales)) * 80 < v.nbytes              # 1% kept: > 80x smaller


def test_error_feedback_loses_nothing_only_delays_it():
    rng = np.random.default_rng(1)
    res, sent, total = None, np.zeros(5000, np.float32), np.zeros(5000, np.float32)
    for _ in range(30):
        delta = rng.normal(scale=0.01, size=5000).astype(np.float32)
        arrays, res = C.compress(delta, res, 0.02)
        sent += C.decode(*arrays, 5000)
        total += delta
    assert np.allclose(sent + res, total, atol=1e-5)
    assert np.linalg.norm(res) < np.linalg.norm(total)


def test_sign_code_with_error_feedback():
    rng = np.random.default_rng(2)
    v = rng.normal(size=1000).astype(np.float32)
    bits, scales = C.encode_sign(v)
    assert bits.dtype == np.uint8 and bits.size == 125 and scales.size == 32         # 1,000 / 8 and / 32
    assert C.wire_bytes((bits, scales)) == 125 + 64 and C.wire_bytes((bits, scales)) * 21 < v.nbytes
    d = C.decode_sign(bits, scales, v.size)
    assert np.array_equal(np.sign(d), np.sign(v))
    blk = np.abs(v[:32]).mean()
    assert np.allclose(np.abs(d[:32]), np.float16(blk), rtol=1e-3)
    res, sent, total = None, np.zeros(1000, np.float32), np.zeros(1000, np.float32)
    for _ in range(20):
        delta = rng.normal(scale=0.01, size=1000).astype(np.float32)
        arrays, res = C.compress(delta, res, 0, "sign")
        sent += C.expand(arrays, 1000, "sign")
        total += delta
    assert np.allclose(sent + res, total, atol=1e-5)
    with pytest.raises(ValueError, match="sign bytes"):
        C.decode_sign(bits[:-1], scales, 1000)


def test_a_damaged_update_is_refused():
    idx, codes, scales = C.encode(np.arange(100, dtype=np.float32), 0.5)
    with pytest.raises(ValueError, match="out of range"):
        C.decode(idx, codes, scales, 60)
    with pytest.raises(ValueError, match="not ascending"):
        C.decode(idx[::-1], codes, scales, 100)
    with pytest.raises(ValueError, match="code bytes"):
        C.decode(idx, codes[:-1], scales, 100)
    with pytest.raises(ValueError, match="density"):
        C.encode(np.ones(4), 0)


# ---------------------------------------------------------------------------------------------------------------
# Privacy accounting and settings

def test_epsilon_from_the_rdp_accountant():
    # without subsampling the Gaussian mechanism's RDP is T * alpha / (2 z^2); the classic conversion
    # eps = min_alpha RDP + log(1/delta) / (alpha - 1) bounds what the accountant gives (it converts more tightly)
    z, T, delta = 3.0, 20, 1e-5
    classic = min(T * a / (2 * z * z) + math.log(1 / delta) / (a - 1) for a in range(2, 65))
    eps = F.dp_epsilon(z, 1.0, T, delta)
    assert 0.85 * classic < eps <= classic
    assert F.dp_epsilon(0.8, 0.1, 20, delta) < eps                    # sampling amplifies privacy
    assert F.dp_epsilon(0.8, 0.1, 40, delta) > F.dp_epsilon(0.8, 0.1, 20, delta)
    assert F.dp_epsilon(1.0, 0.1, 20, delta) < F.dp_epsilon(0.8, 0.1, 20, delta)
    assert F.dp_epsilon(0, 0.1, 20, delta) == math.inf


def reku(*args, **kw):
    return subprocess.run([str(BIN / "reku"), *map(str, args)], capture_output=True, text=True, **kw)


def test_bad_settings_get_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for args, msg in [(["--feedback-dir", tmp_path / "empty"], "no feedback files (*.jsonl)"),
                      (["--feedback-dir", tmp_path, "--compress", "topk", "--secagg"], "cannot be combined"),
                      (["--feedback-dir", tmp_path, "--compress", "sign", "--dp-noise", "1"], "cannot be combined"),
                      (["--feedback-dir", tmp_path, "--density", "1.5"], "--density is the share"),
                      (["--feedback-dir", tmp_path, "--compress", "zip"], "invalid choice: 'zip'"),
                      (["--feedback-dir", tmp_path, "--secagg", "--clients-per-round", "2"], "at least 3 clients"),
                      (["--feedback-dir", tmp_path, "--model", tmp_path / "none.rku"], "none.rku"),
                      (["--superlink", "127.0.0.1:1"], "Connection to the SuperLink is unavailable")]:
        model = [] if "--model" in args else ["--model", "home"]
        r = reku("federate", *model, "--out", tmp_path / "o.rku", *args)
        assert r.returncode != 0 and msg in r.stderr, (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert not (tmp_path / "o.rku").exists()


# ---------------------------------------------------------------------------------------------------------------
# Whole federations

def homes(d, n=3):
    """n products, each with its own phrasing of two requests the bundled model does not know."""
    d.mkdir(parents=True, exist_ok=True)
    ways = [("make it dark in the %s", lambda r: [{"name": "set_light", "arguments": {"room": r, "state": "off"}}]),
            ("crank the %s fan", lambda r: [{"name": "set_fan", "arguments": {"room": r, "speed": "high"}}]),
            ("tidy up the %s", lambda r: [{"name": "vacuum", "arguments": {"action": "start", "room": r}}])]
    for i in range(n):
        lines = [{"t": j, "text": ways[(i + k) % 3][0] % r, "outcome": "corrected", "calls": [],
                  "corrected": ways[(i + k) % 3][1](r)} for k in range(2) for j, r in enumerate(ROOMS)]
        (d / ("p%d.jsonl" % i)).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return d


def simulate(tmp_path, name, **kw):
    cfg = dict(F.DEFAULTS, **{"model": str(HOME), "feedback-dir": str(homes(tmp_path / "fb")), "rounds": 2,
                              "clients-per-round": 3, "local-steps": 2, "check": 40, "quiet": True,
                              "out": str(tmp_path / (name + ".rku"))})
    cfg.update({k.replace("_", "-"): v for k, v in kw.items()})
    return F.simulate(F.check_config(cfg))


def weights_of(path):
    from rkfw import rku
    return rku.load(Path(path).read_bytes())


def test_simulated_fleet_with_compressed_updates(tmp_path):
    rep = simulate(tmp_path, "c", compress="topk", density=0.02)
    assert [r["round"] for r in rep["rounds"]] == [1, 2] and all(r["clients"] == 3 for r in rep["rounds"])
    assert rep["dense_bytes"] == 4 * sum(p.numel() for p in F.new_net(weights_of(HOME)).parameters())
    assert all(r["bytes_per_client"] * 20 < rep["dense_bytes"] for r in rep["rounds"])
    ev = rep["feedback_held_out"]
    held = sum(len(F.client_examples(rep["config"], {"partition-id": i})[1]) for i in range(3))
    assert ev["clients"] == 3 and ev["n"] == held
    assert rep["check_before"]["n"] == 40 and not rep["refused"]
    new = weights_of(tmp_path / "c.rku")
    assert new.info()["train"]["federated"] == {"rounds": 2, "clients": 3, "strategy": "fedavg"}
    assert new.model_id == rep["new_model"] != weights_of(HOME).model_id
    r = reku("eval", "--model", tmp_path / "c.rku", "--data", paths.SKILLS / "home" / "test.jsonl", "--json")
    assert r.returncode == 0, r.stderr


def test_secure_aggregation_gives_what_fedavg_gives(tmp_path):
    plain = simulate(tmp_path, "plain")
    sa = simulate(tmp_path, "sa", secagg=True)
    assert sa["bytes_per_client"] is None and plain["bytes_per_client"] > 1_000_000      # the server saw only sums
    a, b = weights_of(tmp_path / "plain.rku"), weights_of(tmp_path / "sa.rku")
    differ = total = 0
    for name, t in a.tensors.items():
        if name in ("meta",):
            continue
        x, y = np.frombuffer(bytes(t.data), np.uint8), np.frombuffer(bytes(b.tensors[name].data), np.uint8)
        differ += int(np.count_nonzero(x != y))
        total += x.size
    assert differ <= 0.002 * total, (differ, total)        # SecAgg+ quantizes to 2^22 levels: a rare flip


def test_differential_privacy_clips_and_counts(tmp_path):
    env = dict(os.environ)
    rep = simulate(tmp_path, "dp", dp_noise=0.05, dp_clip=0.2, tolerance=1.0)
    assert dict(os.environ) == env          # Ray's PYTHONPATH for its workers does not leak into the caller
    assert rep["dp"]["sampling_rate"] == 1.0
    assert rep["dp"]["epsilon"] == pytest.approx(F.dp_epsilon(0.05, 1.0, 2, 1e-5))
    assert all(r["update_norm"] <= 0.2 + 1e-4 for r in rep["rounds"])      # what the server saw: clipped


def test_fedprox_keeps_a_product_near_the_global_model(tmp_path):
    cfg = F.check_config(dict(F.DEFAULTS, **{"model": str(HOME), "feedback-dir": str(homes(tmp_path / "fb")),
                                             "local-steps": 3, "replay": 40, "lr": 3e-3}))
    train_fb, held = F.client_examples(cfg, {"partition-id": 0})
    assert train_fb and held and not {e["query"] for e in train_fb} & {e["query"] for e in held}
    w0 = F.get_weights(F.new_net(F.base(cfg["model"], "")[1]))
    moved = {}
    for mu in (0.0, 100.0):
        w, n = F.local_train(cfg, w0, train_fb, 1, 0, mu=mu)
        assert n > 40 and [a.shape for a in w] == [a.shape for a in w0]
        moved[mu] = float(np.linalg.norm(F.flat(w) - F.flat(w0)))
    assert 0 < moved[100.0] < 0.9 * moved[0.0], moved


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_three_supernodes_and_a_superlink_on_localhost(tmp_path):
    fb = homes(tmp_path / "fb")
    env = dict(os.environ, PATH="%s:%s" % (BIN, os.environ.get("PATH", "")), FLWR_HOME=str(tmp_path / "flwr"))
    link = free_port()
    procs, logs = [], []

    def start(name, *args):
        log = open(tmp_path / (name + ".log"), "w")
        logs.append(log)
        procs.append(subprocess.Popen([str(BIN / name.split(".")[0]), *args], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=tmp_path))
    try:
        start("flower-superlink", "--insecure", "--port", str(link))
        deadline = time.time() + 60
        while True:                                    # its HTTP API up before the SuperNodes and the run
            try:
                socket.create_connection(("127.0.0.1", link), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline and procs[0].poll() is None, (tmp_path / "flower-superlink.log"
                                                                            ).read_text()[-2000:]
                time.sleep(0.3)
        for i in range(3):
            start("flower-supernode.%d" % i, "--insecure", "--superlink", "127.0.0.1:%d" % link,
                  "--port", str(free_port()), "--node-config", 'feedback="%s"' % (fb / ("p%d.jsonl" % i)))
        out = tmp_path / "fleet.rku"
        r = reku("federate", "--model", "home", "--superlink", "127.0.0.1:%d" % link, "--out", out,
                 "--rounds", 2, "--clients-per-round", 3, "--min-clients", 3, "--local-steps", 2, "--check", 40,
                 "--secagg", "--json", env=env, cwd=tmp_path, timeout=400)
        assert r.returncode == 0, r.stderr[-3000:] + "".join(
            (tmp_path / (n + ".log")).read_text()[-2000:] for n in ("flower-superlink", "flower-supernode.0"))
        rep = json.loads(r.stdout)
        assert rep["clients"] == 3 and [x["clients"] for x in rep["rounds"]] == [3, 3]
        assert rep["feedback_held_out"]["clients"] == 3 and rep["feedback_held_out"]["n"] > 0
        assert weights_of(out).model_id == rep["new_model"]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
