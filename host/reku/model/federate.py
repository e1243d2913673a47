"""`reku federate`: federated fine-tuning of a deployed model across a fleet, on Flower (docs/learning.md).

Each client is one product: its feedback log (what `reku feedback pull` copied from its board) and generated replay
of the skill, trained locally by the QAT of `reku learn` for a few steps from the round's global weights. The
server aggregates with FedAvg or FedProx; what comes out is an ordinary .rku, refused (not written) when it lost
more than the tolerance on the skill's check set, as `reku learn` does.

Built on Flower's own parts (flwr 1.42, its legacy strategy API, which is the one SecAgg+ works with):
  - `run_simulation` (Ray backend): one virtual SuperNode per feedback file of --feedback-dir;
  - deployment: `flower-superlink` and one `flower-supernode` per product host, each started with
    --node-config 'feedback="FILE"'; `reku federate --superlink HOST:PORT` submits the run (`flwr run`);
  - differential privacy: `fixedclipping_mod` on the clients, `DifferentialPrivacyClientSideFixedClipping` on the
    server (Gaussian noise on the aggregate), epsilon from dp-accounting's RDP accountant;
  - secure aggregation: `secaggplus_mod` + `SecAggPlusWorkflow` (the server only sees the sum);
  - compression (ours, reku.model.compress): `compress_mod` on the client, decoded by the server's FleetStrategy.

The same two apps serve both runtimes: reku.model.fleet_apps's read the run config from Flower's Context (a
deployment); `apps(config)` binds one for the simulation."""

import functools
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .. import paths
from ..errors import RekuError

DEFAULTS = {
    "model": "home",               # .rku path or bundled skill name (on the server and on every product host)
    "skill": "",                   # skill directory; "" = the bundled skill the model was trained for
    "feedback-dir": "",            # simulation: one JSONL feedback file per client
    "out": "federated.rku",        # written by the server (with OUT.json, the report)
    "rounds": 20,
    "clients-per-round": 10,
    "min-clients": 2,
    "local-steps": 10,
    "lr": 1e-3,
    "share": 0.3,                  # share of each client's local examples that are its feedback (rest: replay)
    "replay": 300,                 # generated examples of the skill per client and round
    "strategy": "fedavg",          # or fedprox
    "mu": 0.01,                    # FedProx proximal weight
    "dp-noise": 0.0,               # noise multiplier z (0: no DP)
    "dp-clip": 0.5,                # L2 clipping norm of a client's update
    "dp-delta": 1e-5,
    "secagg": False,
    "compress": "",                # "" (dense float32), "topk" or "sign" (reku.model.compress)
    "density": 0.01,               # topk: the share of entries kept
    "seed": 0,
    "tolerance": 0.01,
    "check": 1000,                 # generated check requests (seed DEV_SEED) the new model must not get worse on
    "quiet": False,
}


def check_config(cfg):
    if cfg["strategy"] not in ("fedavg", "fedprox"):
        raise RekuError("--strategy must be fedavg or fedprox, got %r" % cfg["strategy"])
    if cfg["compress"] not in ("", "topk", "sign"):
        raise RekuError("--compress must be topk or sign, got %r" % cfg["compress"])
    if not 0 < cfg["density"] < 1:
        raise RekuError("--density is the share of entries top-k keeps, in (0, 1), got %s" % cfg["density"])
    if cfg["compress"] and (cfg["secagg"] or cfg["dp-noise"]):
        raise RekuError("--compress cannot be combined with --secagg or --dp-noise: SecAgg+ masks dense vectors, and "
                        "error feedback would carry unclipped updates past the DP clipping (docs/learning.md)")
    if cfg["dp-noise"] < 0 or cfg["dp-clip"] <= 0:
        raise RekuError("--dp-noise must be >= 0 and --dp-clip > 0")
    for k in ("rounds", "clients-per-round", "local-steps", "min-clients"):
        if int(cfg[k]) < 1:
            raise RekuError("--%s must be at least 1" % k)
    if cfg["secagg"] and cfg["clients-per-round"] < 3:
        raise RekuError("--secagg needs at least 3 clients per round (SecAgg+ shares keys among them)")
    return cfg


# ---------------------------------------------------------------------------------------------------------------
# The model as the arrays that travel: the trainable parameters of reku.model.qat.Net, in order.

@functools.lru_cache(maxsize=4)
def base(model_ref, skill_ref):
    """(model bytes, rkfw.rku model, skill) named by the run config; cached per process (a Ray actor or a
    SuperNode's ClientApp process trains many rounds)."""
    from rkfw import rku
    from .skill import load_skill
    mpath = paths.model_file(model_ref)
    blob = mpath.read_bytes()
    try:
        model = rku.load(blob)
    except Exception as e:
        raise RekuError("%s is not a usable .rku model: %s" % (mpath, e)) from None
    sdir = Path(skill_ref) if skill_ref else paths.SKILLS / str(model.info().get("train", {}).get("skill", ""))
    if not (sdir / "tools.json").is_file():
        raise RekuError("no skill for %s: give --skill DIR (its tools.json and examples.jsonl)" % mpath)
    return blob, model, load_skill(sdir, lenient=True)


def new_net(model):
    from .qat import Net
    return Net.from_rku(model)


def get_weights(net):
    """The trainable parameters as float32 arrays; scalars as shape (1,): SecAgg+ in flwr 1.42 returns 16.0 for
    every 0-d array it aggregates (measured; docs/learning.md)."""
    return [np.atleast_1d(p.detach().cpu().numpy()).copy() for p in net.parameters()]


def set_weights(net, arrays):
    import torch
    params = list(net.parameters())
    if len(arrays) != len(params) or any(np.size(a) != p.numel() for a, p in zip(arrays, params)):
        raise RekuError("the weights received do not fit the model (%d arrays for %d parameters)"
                        % (len(arrays), len(params)))
    with torch.no_grad():
        for p, a in zip(params, arrays):
            p.copy_(torch.from_numpy(np.asarray(a, dtype=np.float32).reshape(tuple(p.shape))))


def flat(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


def unflat(v, like):
    out, i = [], 0
    for a in like:
        out.append(v[i:i + a.size].reshape(a.shape).astype(np.float32))
        i += a.size
    return out


def model_bytes(model, skill, weights, model_id, extra):
    """The .rku of `weights` on the shape of `model`."""
    from .objective import build_model_bytes
    from .rkufile import refusals
    from .skill import compile_schema
    net = new_net(model)
    set_weights(net, weights)
    schema, vocab = compile_schema(skill, refuse=refusals(model) > 0)
    return build_model_bytes(net, schema, vocab, model_id, extra)


# ---------------------------------------------------------------------------------------------------------------
# A client: one product's feedback, trained locally.

def client_examples(cfg, node_config):
    """(train half, held-out half) of this product's feedback: the file its SuperNode was started with
    (node config "feedback"), or in the simulation the partition-id'th file of feedback-dir."""
    from .learn import read_feedback, split
    if "feedback" in node_config:
        f = Path(str(node_config["feedback"]))
    else:
        files = feedback_files(cfg["feedback-dir"])
        f = files[int(node_config["partition-id"]) % len(files)]
    examples, _ = read_feedback([f])
    return split(examples)


def feedback_files(d):
    files = sorted(Path(d).glob("*.jsonl")) if d else []
    if not files:
        raise RekuError("no feedback files (*.jsonl) in %r: one file per product (`reku feedback pull --out`)" % d)
    return files


def local_train(cfg, weights, train_fb, rnd, node, mu=0.0):
    """This product's new weights after cfg["local-steps"] QAT steps from `weights`."""
    import torch
    from . import data as datagen
    from .learn import mix
    from .train import TrainConfig, train
    torch.set_num_threads(1)
    _, model, skill = base(cfg["model"], cfg["skill"])
    net = new_net(model)
    set_weights(net, weights)
    from .rkufile import refusals
    refuse = refusals(model)
    replay = datagen.generate(skill, int(cfg["replay"]), seed=1000003 * (rnd + 1) + node + cfg["seed"],
                              refusals=refuse)
    examples, _ = mix(replay, train_fb, cfg["share"])
    penalty = None
    if mu > 0:                                # FedProx: mu/2 ||w - w_global||^2
        ref = [p.detach().clone() for p in net.parameters()]
        penalty = lambda n: 0.5 * mu * sum(((p - r) ** 2).sum() for p, r in zip(n.parameters(), ref))  # noqa: E731
    tc = TrainConfig(steps=int(cfg["local-steps"]), seed=cfg["seed"] + rnd * 7919 + node, lr=cfg["lr"], warmup=1,
                     eval_every=0, freeze_after=0, dampen=0, refusals=refuse)
    train(skill, tc, init=net, examples=examples, log=lambda s: None, penalty=penalty)
    return get_weights(net), len(examples)


def evaluate_counts(cfg, weights, data):
    """{"n", "exact"} counts of the model with `weights` on data."""
    from rkfw import rku
    from .evaluate import evaluate_model
    _, model, skill = base(cfg["model"], cfg["skill"])
    res = evaluate_model(rku.load(model_bytes(model, skill, weights, "eval", None)), data)
    n = res["n"]
    return {"n": n, "exact": int(round(res["exact_match"] * n))}


def _client_fn(bound):
    def client_fn(context):
        from flwr.client import NumPyClient
        cfg = bound or check_config(dict(DEFAULTS, **context.run_config))
        node_config = context.node_config
        train_fb, held_fb = client_examples(cfg, node_config)
        node = int(node_config.get("partition-id", context.node_id % 1000003))

        class Product(NumPyClient):
            def fit(self, parameters, config):
                w, n = local_train(cfg, parameters, train_fb, int(config.get("server_round", 0)), node,
                                   mu=float(config.get("proximal_mu", 0.0)))
                return w, max(1, len(train_fb)), {"examples": n}

            def evaluate(self, parameters, config):
                c = evaluate_counts(cfg, parameters, held_fb) if held_fb else {"n": 0, "exact": 0}
                return float(c["n"] - c["exact"]), max(1, c["n"]), c
        return Product().to_client()
    return client_fn


def compress_mod(msg, ctxt, call_next):
    """Client mod: the reply's weights become the product's update (its weights - the round's global weights)
    plus its residual, coded by the run's codec (reku.model.compress); the residual stays in the product's
    Context."""
    from flwr.app import ArrayRecord
    from flwr.app.message_type import MessageType
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat
    from . import compress
    if msg.metadata.message_type != MessageType.TRAIN:
        return call_next(msg, ctxt)
    fit_ins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    codec, density = str(fit_ins.config["compress"]), float(fit_ins.config["density"])
    glob = parameters_to_ndarrays(fit_ins.parameters)
    out = call_next(msg, ctxt)
    if out.has_error():
        return out
    res = compat.recorddict_to_fitres(out.content, keep_input=True)
    delta = flat(parameters_to_ndarrays(res.parameters)) - flat(glob)
    key = "reku.residual"
    residual = ctxt.state.array_records[key].to_numpy_ndarrays()[0] if key in ctxt.state.array_records else None
    arrays, residual = compress.compress(delta, residual, density, codec)
    ctxt.state.array_records[key] = ArrayRecord([residual])
    res.parameters = ndarrays_to_parameters(list(arrays))
    res.metrics["codec"] = codec
    out.content = compat.fitres_to_recorddict(res, keep_input=True)
    return out


def _when(key, mod, bound):
    """The mod, applied only in runs whose config sets `key`."""
    def wrapped(msg, ctxt, call_next):
        cfg = bound or dict(DEFAULTS, **ctxt.run_config)
        return mod(msg, ctxt, call_next) if cfg[key] else call_next(msg, ctxt)
    return wrapped


def make_client_app(bound=None):
    from flwr.client import ClientApp
    from flwr.client.mod import fixedclipping_mod, secaggplus_mod
    return ClientApp(client_fn=_client_fn(bound), mods=[_when("secagg", secaggplus_mod, bound),
                                                        _when("dp-noise", fixedclipping_mod, bound),
                                                        _when("compress", compress_mod, bound)])


# ---------------------------------------------------------------------------------------------------------------
# The server.

def dp_epsilon(noise, q, rounds, delta):
    """Epsilon of `rounds` rounds of the subsampled Gaussian mechanism (noise multiplier `noise`, each client in a
    round with probability q), by dp-accounting's RDP accountant. Flower samples a fixed number of clients per
    round; accounting it as Poisson sampling with q = clients-per-round / clients is the usual approximation
    (McMahan et al. 2018, DP-FedAvg)."""
    if noise <= 0:
        return math.inf
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant
    acc = RdpAccountant(orders=list(range(2, 65)) + [128, 256, 512])
    ev = dp_accounting.GaussianDpEvent(noise)
    if q < 1:
        ev = dp_accounting.PoissonSampledDpEvent(q, ev)
    acc.compose(ev, int(rounds))
    return float(acc.get_epsilon(delta))


class FleetStrategy:
    """Wraps a Flower strategy: decodes compressed updates before the inner strategy aggregates, counts the bytes
    each client sent, asks the clients to evaluate only after the last round, evaluates the check set on the
    server (before and after), prints a progress bar and keeps the last aggregate."""

    def __init__(self, inner, cfg, num_clients, check):
        self.inner, self.cfg, self.num_clients, self.check = inner, cfg, num_clients, check
        self.glob = None
        self.latest = None
        self.rounds = []
        self.evaluation = None
        self.check_before = self.check_after = None
        self.t0 = time.time()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def initialize_parameters(self, client_manager):
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round, parameters, client_manager):
        self.glob = parameters
        ins = self.inner.configure_fit(server_round, parameters, client_manager)
        for _, fi in ins:
            fi.config["server_round"] = server_round
            if self.cfg["compress"]:
                fi.config["compress"] = self.cfg["compress"]
                fi.config["density"] = float(self.cfg["density"])
        return ins

    def aggregate_fit(self, server_round, results, failures):
        from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
        from . import compress
        sent = [sum(len(t) for t in r.parameters.tensors) for _, r in results]
        glob = parameters_to_ndarrays(self.glob)
        g = flat(glob)
        norms = []
        for _, r in results:
            if self.cfg["compress"]:
                dense = compress.expand(parameters_to_ndarrays(r.parameters), g.size, self.cfg["compress"])
                r.parameters = ndarrays_to_parameters(unflat(g + dense, glob))
            if not self.cfg["secagg"]:
                norms.append(float(np.linalg.norm(flat(parameters_to_ndarrays(r.parameters)) - g)))
        params, metrics = self.inner.aggregate_fit(server_round, results, failures)
        if params is not None:
            self.latest = params
        row = {"round": server_round, "clients": len(results), "failures": len(failures),
               "bytes_per_client": None if self.cfg["secagg"] else (sum(sent) / len(sent) if sent else 0),
               "update_norm": float(np.median(norms)) if norms else None,
               "seconds": round(time.time() - self.t0, 1)}
        self.rounds.append(row)
        if not self.cfg["quiet"]:
            R = int(self.cfg["rounds"])
            n = int(24 * server_round / R)
            print("[%s%s] round %d/%d  %d clients%s  %.0fs" % (
                "=" * n, " " * (24 - n), server_round, R, len(results),
                "" if row["bytes_per_client"] is None else "  %.1f KB/client" % (row["bytes_per_client"] / 1024),
                row["seconds"]), file=sys.stderr, flush=True)
        return params, metrics

    def configure_evaluate(self, server_round, parameters, client_manager):
        if server_round != int(self.cfg["rounds"]):
            return []
        from flwr.common import EvaluateIns
        clients = client_manager.sample(num_clients=client_manager.num_available(),
                                        min_num_clients=int(self.cfg["min-clients"]))
        return [(c, EvaluateIns(parameters, {})) for c in clients]

    def aggregate_evaluate(self, server_round, results, failures):
        tot = {"n": 0, "exact": 0, "clients": len(results), "failures": len(failures)}
        for _, r in results:
            tot["n"] += int(r.metrics.get("n", 0))
            tot["exact"] += int(r.metrics.get("exact", 0))
        tot["exact_match"] = tot["exact"] / tot["n"] if tot["n"] else None
        self.evaluation = tot
        return None, {}

    def evaluate(self, server_round, parameters):
        from flwr.common import parameters_to_ndarrays
        if server_round not in (0, int(self.cfg["rounds"])) or not self.check:
            return None
        c = evaluate_counts(self.cfg, parameters_to_ndarrays(parameters), self.check)
        if server_round == 0:
            self.check_before = c
        else:
            self.check_after = c
        return None


def build_strategy(cfg, num_clients, initial):
    from flwr.common import ndarrays_to_parameters
    from flwr.server import strategy as S
    per_round = min(int(cfg["clients-per-round"]), num_clients)
    frac = per_round / num_clients
    kw = dict(fraction_fit=frac, min_fit_clients=per_round, min_available_clients=max(per_round,
              int(cfg["min-clients"])), fraction_evaluate=0.0, min_evaluate_clients=0,
              initial_parameters=ndarrays_to_parameters(initial), accept_failures=False)
    inner = S.FedProx(proximal_mu=cfg["mu"], **kw) if cfg["strategy"] == "fedprox" else S.FedAvg(**kw)
    if cfg["dp-noise"]:
        inner = S.DifferentialPrivacyClientSideFixedClipping(inner, noise_multiplier=cfg["dp-noise"],
                                                             clipping_norm=cfg["dp-clip"],
                                                             num_sampled_clients=per_round)
    return inner, per_round


def _server_main(bound):
    def main(grid, context):
        from flwr.server import LegacyContext, ServerConfig
        from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
        from . import data as datagen
        from .learn import DEV_SEED
        cfg = bound or check_config(dict(DEFAULTS, **context.run_config))
        blob, model, skill = base(cfg["model"], cfg["skill"])
        num_clients = int(cfg.get("num-clients") or 0)
        if not num_clients:          # deployment: the SuperNodes connected now
            deadline = time.time() + 60
            while len(list(grid.get_node_ids())) < int(cfg["min-clients"]) and time.time() < deadline:
                time.sleep(1)
            num_clients = len(list(grid.get_node_ids()))
        from .rkufile import refusals
        check = datagen.generate(skill, int(cfg["check"]), seed=DEV_SEED, refusals=refusals(model)) \
            if cfg["check"] else None
        inner, per_round = build_strategy(cfg, num_clients, get_weights(new_net(model)))
        fleet = FleetStrategy(inner, cfg, num_clients, check)
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=int(cfg["rounds"])), strategy=fleet)
        fit = SecAggPlusWorkflow(num_shares=per_round, reconstruction_threshold=max(2, per_round // 2 + 1),
                                 max_weight=10000.0) if cfg["secagg"] else None
        DefaultWorkflow(fit_workflow=fit)(grid, legacy)
        finish(cfg, fleet, blob, model, skill, num_clients, per_round)
    return main


def finish(cfg, fleet, blob, model, skill, num_clients, per_round):
    """Write the new .rku (unless it got worse on the check set) and OUT.json."""
    from flwr.common import parameters_to_ndarrays
    weights = parameters_to_ndarrays(fleet.latest)
    key = [model.sha256, {k: v for k, v in cfg.items() if k not in ("out", "quiet")}]
    model_id = "%s-%s" % (skill.name, hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8])
    extra = dict(model.info().get("train", {}), federated={"rounds": int(cfg["rounds"]), "clients": num_clients,
                                                           "strategy": cfg["strategy"]})
    new = model_bytes(model, skill, weights, model_id, extra)
    b, a = fleet.check_before, fleet.check_after
    drop = (b["exact"] - a["exact"]) / b["n"] if b and a else None
    dp = None
    if cfg["dp-noise"]:
        dp = {"noise_multiplier": cfg["dp-noise"], "clip": cfg["dp-clip"], "delta": cfg["dp-delta"],
              "sampling_rate": per_round / num_clients,
              "epsilon": dp_epsilon(cfg["dp-noise"], per_round / num_clients, int(cfg["rounds"]), cfg["dp-delta"])}
    sent = [r["bytes_per_client"] for r in fleet.rounds if r["bytes_per_client"] is not None]
    report = {"model": model.model_id, "new_model": model_id, "clients": num_clients, "clients_per_round": per_round,
              "config": cfg, "rounds": fleet.rounds, "seconds": round(time.time() - fleet.t0, 1),
              "dense_bytes": int(flat(weights).nbytes), "bytes_per_client": sum(sent) / len(sent) if sent else None,
              "check_before": b, "check_after": a, "check_drop": drop, "feedback_held_out": fleet.evaluation,
              "dp": dp, "refused": drop is not None and drop > cfg["tolerance"]}
    out = Path(cfg["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if not report["refused"]:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(new)
        tmp.replace(out)
    Path(str(out) + ".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    return report


def make_server_app(bound=None):
    from flwr.serverapp import ServerApp
    app = ServerApp()
    app.main()(_server_main(bound))
    return app


def apps(cfg):
    """(ServerApp, ClientApp) bound to cfg (the simulation's run config)."""
    return make_server_app(cfg), make_client_app(cfg)


# ---------------------------------------------------------------------------------------------------------------
# The command.

def simulate(cfg):
    """Run the federation in Flower's simulation engine; returns the report (also written to OUT.json)."""
    import logging
    import os
    saved = dict(os.environ)        # Ray sets PYTHONPATH (the whole sys.path) and more for its workers: not ours
    from flwr.simulation import run_simulation
    files = feedback_files(cfg["feedback-dir"])
    base(cfg["model"], cfg["skill"])                       # a missing model or skill: one line, before Ray starts
    cfg = dict(cfg, **{"num-clients": len(files)})
    server, client = apps(cfg)
    if cfg["quiet"]:
        logging.getLogger("flwr").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")     # no GPU here: keep Ray's warning quiet
    try:
        run_simulation(server_app=server, client_app=client, num_supernodes=len(files),
                       backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": 2, "include_dashboard": False,
                                                     "logging_level": "ERROR", "log_to_driver": False}})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    rp = Path(str(cfg["out"]) + ".json")
    if not rp.is_file():
        raise RekuError("the federation ended without a result (see Flower's log above)")
    return json.loads(rp.read_text())


APP_PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "reku-fleet"
version = "1.0.0"
description = "reku federated fine-tuning (the apps live in the installed reku package)"
license = "MIT"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "reku"

[tool.flwr.app.components]
serverapp = "reku.model.fleet_apps:server_app"
clientapp = "reku.model.fleet_apps:client_app"

[tool.flwr.app.config]
%s
"""


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def write_app(d, cfg):
    """The Flower App directory `flwr run` bundles: a pyproject naming our two apps and the run config."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    body = "\n".join("%s = %s" % (k, toml_value(v)) for k, v in cfg.items() if k != "num-clients")
    (d / "pyproject.toml").write_text(APP_PYPROJECT % body)
    return d


def deploy(cfg, superlink, home):
    """Submit the run to a SuperLink (its Control API address) with `flwr run --stream`; waits for the end."""
    import os
    import subprocess
    home = Path(home)
    app = write_app(home / "app", cfg)
    (home / "config.toml").write_text('[superlink]\ndefault = "reku"\n\n[superlink.reku]\naddress = "%s"\n'
                                      'insecure = true\n' % superlink)
    flwr = Path(sys.executable).with_name("flwr")
    env = dict(os.environ, FLWR_HOME=str(home))
    proc = subprocess.Popen([str(flwr), "run", str(app), "reku", "--stream"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    box, why = None, []                       # flwr prints its error in a box: "╭─ Error ─╮ │ text │ ╰──╯"
    started = False                           # its output is shown once the run started (before: one line)
    for line in proc.stdout:
        started = started or line.startswith("Successfully started run")
        if started and not cfg["quiet"]:
            sys.stderr.write(line)
        if line.startswith("╭"):
            box = []
        elif line.startswith("╰") and box is not None:
            why, box = box, None
        elif box is not None and line.strip(" \n│"):
            box.append(line.strip(" \n│"))
    if proc.wait():
        raise RekuError("flwr run ended with status %d (SuperLink %s): %s" % (proc.returncode, superlink,
                                                                          " ".join(why) or "see its output"))


def configure(p):
    p.add_argument("--model", required=True, help="the deployed model (.rku file or bundled skill name); in a "
                   "deployment the same path must exist on every product host")
    p.add_argument("--out", required=True, help="the new .rku (written only when it is not worse; OUT.json: report)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--feedback-dir", metavar="DIR", help="simulate: one virtual product per *.jsonl file in DIR")
    src.add_argument("--superlink", metavar="HOST:PORT", help="deploy: the SuperLink's Control API (products "
                     "are `flower-supernode --node-config 'feedback=\"FILE\"'`)")
    p.add_argument("--skill", default="", help="skill directory (default: the bundled skill the model was "
                   "trained for)")
    for k in ("rounds", "clients-per-round", "local-steps", "replay", "seed", "check", "min-clients"):
        p.add_argument("--" + k, type=int, default=DEFAULTS[k])
    for k in ("lr", "share", "mu", "dp-noise", "dp-clip", "dp-delta", "density", "tolerance"):
        p.add_argument("--" + k, type=float, default=DEFAULTS[k])
    p.add_argument("--compress", choices=("topk", "sign"), default="", help="compress the updates products send: "
                   "top-k (--density) + FP4, or one sign bit per entry with block scales; both with error feedback")
    p.add_argument("--strategy", choices=("fedavg", "fedprox"), default="fedavg")
    p.add_argument("--secagg", action="store_true", help="secure aggregation (SecAgg+): the server sees only the sum")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args):
    import tempfile
    keys = [k for k in DEFAULTS if k not in ("feedback-dir", "quiet")]
    cfg = {k: getattr(args, k.replace("-", "_")) for k in keys}
    cfg["model"] = str(paths.model_file(args.model).resolve())
    cfg["out"] = str(Path(args.out).resolve())
    if args.skill:
        cfg["skill"] = str(Path(args.skill).resolve())
    cfg["feedback-dir"] = str(Path(args.feedback_dir).resolve()) if args.feedback_dir else ""
    cfg["quiet"] = bool(args.json)
    cfg = check_config(cfg)
    base(cfg["model"], cfg["skill"])
    if args.feedback_dir:
        rep = simulate(cfg)
    else:
        with tempfile.TemporaryDirectory() as home:
            deploy(cfg, args.superlink, home)
        rp = Path(cfg["out"] + ".json")
        if not rp.is_file():
            raise RekuError("the run ended without a report at %s (the ServerApp writes it on the SuperLink's host)"
                            % rp)
        rep = json.loads(rp.read_text())
    if args.json:
        print(json.dumps(rep))
        return 0 if not rep["refused"] else 1
    b, a = rep["check_before"], rep["check_after"]
    print("%d clients, %d per round, %d rounds in %.0f s" % (rep["clients"], rep["clients_per_round"],
                                                              len(rep["rounds"]), rep["seconds"]))
    if b and a:
        print("  check set exact %.3f -> %.3f (%d)" % (b["exact"] / b["n"], a["exact"] / a["n"], b["n"]))
    ev = rep["feedback_held_out"]
    if ev and ev["n"]:
        print("  products' held-out feedback exact %.3f (%d requests, %d products)" % (ev["exact_match"], ev["n"],
                                                                                      ev["clients"]))
    if rep["bytes_per_client"] is not None:
        print("  %.1f KB per client per round (dense: %.1f KB)" % (rep["bytes_per_client"] / 1024,
                                                                    rep["dense_bytes"] / 1024))
    if rep["dp"]:
        print("  differential privacy: epsilon %.2f at delta %g" % (rep["dp"]["epsilon"], rep["dp"]["delta"]))
    if rep["refused"]:
        print("refused: the check set lost %.1f points (tolerance %.1f); nothing written"
              % (100 * rep["check_drop"], 100 * cfg["tolerance"]))
        return 1
    print("wrote %s" % cfg["out"])
    return 0
