"""The general prior (reku.model.prior, issue 19): its generated data, transfer into a skill's network, and
`reku prior build` / `reku train --prior`."""

import numpy as np
import pytest

from reku import paths
from reku.cli import main
from reku.model import data
from reku.model.phrase import schema_lines
from reku.model.prior import DOMAINS, prior_skill, transfer
from reku.model.skill import compile_schema, load_skill
from rkfw import infer, rku


def test_prior_skill_is_generated_from_schemas_only():
    sk = prior_skill()
    assert len(sk.fns) >= 100 and len(DOMAINS) >= 15 and sk.examples == []
    lines = schema_lines(sk)
    assert all(lines[fn] for fn in sk.fns)
    gen = data.generate(sk, 3000, seed=1, schema=1.0, refusals=data.REFUSALS)
    called = {c["name"] for ex in gen for c in ex["calls"]}
    assert len(called) > 0.9 * len(sk.fns)
    assert any("refuse" in ex for ex in gen) and any(not ex["calls"] and "refuse" not in ex for ex in gen)
    # none of a bundled skill's example lines or test requests (but for two- and three-word commands that any
    # template says, "pause playback", and the generator's own negatives): the few-example benchmark starts from the
    # prior fairly
    texts = {ex["query"].lower() for ex in gen}
    for name in ("home", "car", "greenhouse"):
        skill = load_skill(paths.SKILLS / name)
        for ex in skill.examples + skill.test:
            if ex["calls"] and "{" not in ex["query"] and len(ex["query"].split()) > 3 \
                    and ex["query"].lower() not in data.GENERIC_NEGATIVES:
                assert ex["query"].lower() not in texts, ex["query"]


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory):
    out = tmp_path_factory.mktemp("prior") / "prior.rku"
    rc = main(["prior", "build", "--out", str(out), "--dims", "25,50,1", "--steps", "30", "--eval-every", "15",
               "--examples", "600", "--quiet"])
    assert rc == 0 and out.exists()
    return out


def test_transfer_keeps_what_is_not_particular_to_a_skill(tiny_prior):
    from reku.model.objective import build_model_bytes
    prior = rku.load(tiny_prior.read_bytes())
    skill = load_skill(paths.SKILLS / "greenhouse")
    schema, vocab = compile_schema(skill)
    net = transfer(prior, len(vocab))
    assert (net.d, net.f, net.L, net.n_out) == (prior.arch["d"], prior.arch["f"], prior.arch["layers"], len(vocab))
    new = rku.load(build_model_bytes(net, schema, vocab, "t"))
    for name in prior.tensors:
        if name.startswith("l0.") or name in ("ptr_k", "ptr_q", "sig"):
            assert bytes(new.tensor(name).data) == bytes(prior.tensor(name).data), name
    # embedding: characters and the fixed output tokens kept; the skill's own tokens are new rows
    from reku.model.reference import unpack_ternary
    e0, e1 = prior.tensor("emb"), new.tensor("emb")
    E0 = unpack_ternary(e0.data, *e0.shape)
    E1 = unpack_ternary(e1.data, *e1.shape)
    keep = prior.arch["n_in"] + len(infer.FIXED)
    assert np.array_equal(E0[:keep], E1[:keep])
    assert E1.shape[0] == prior.arch["n_in"] + len(vocab) != E0.shape[0]
    h0, h1 = prior.tensor("head"), new.tensor("head")
    H0 = unpack_ternary(h0.data, *h0.shape)
    H1 = unpack_ternary(h1.data, *h1.shape)
    assert np.array_equal(H0[:len(infer.FIXED)], H1[:len(infer.FIXED)])


def test_train_starts_from_the_prior_when_asked(tiny_prior, tmp_path, capsys):
    args = ["train", "--skill", str(paths.SKILLS / "greenhouse"), "--steps", "10", "--eval-every", "5",
            "--examples", "300"]
    assert main(args + ["--out", str(tmp_path / "a.rku"), "--prior", str(tiny_prior)]) == 0
    out = capsys.readouterr().out
    assert "from the prior" in out and "d=25 f=50 layers=1" in out
    first_id = rku.load((tmp_path / "a.rku").read_bytes()).model_id
    assert main(args + ["--out", str(tmp_path / "b.rku"), "--prior", "none", "--dims", "25,50,1"]) == 0
    assert "from the prior" not in capsys.readouterr().out
    assert rku.load((tmp_path / "b.rku").read_bytes()).model_id != first_id
    # --dims asks for another shape: said, and from scratch
    assert main(args + ["--out", str(tmp_path / "c.rku"), "--prior", str(tiny_prior), "--dims", "30,60,1"]) == 0
    cap = capsys.readouterr()
    assert "not starting from the prior" in cap.err and "from the prior," not in cap.out
    # a missing prior: one line
    assert main(args + ["--out", str(tmp_path / "d.rku"), "--prior", str(tmp_path / "none.rku")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--prior" in err[0] and "no such file" in err[0]
