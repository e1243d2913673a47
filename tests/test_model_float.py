"""The integer reference against the float (fake-quantised) PyTorch model it is exported from: the
residual streams agree within a stated bound (int8 layers 5%, FP4 layers 15% relative L2 error)."""
import json

import numpy as np
import pytest
import torch

from reku import paths
from reku.model.qat import Net
from reku.model.reference import Reference
from reku.model.skill import compile_schema
from reku.model.tokenizer import ALPHABET
from reku.model.objective import build_model_bytes
from rkfw import rku

TOOLS = json.loads((paths.SKILLS / "home" / "tools.json").read_text())


@pytest.mark.parametrize("acts,bound", [(["i8", "i8"], 0.05), (["fp4", "i8"], 0.15)])
def test_integer_path_tracks_float_model(acts, bound):
    schema, vocab = compile_schema(TOOLS)
    torch.manual_seed(0)
    net = Net(len(ALPHABET) + 2, len(vocab), d=40, f=80, layers=2, acts=acts)
    m = rku.load(build_model_bytes(net, schema, vocab, "t"))
    r = Reference(m)
    r.reset()
    ids = np.random.default_rng(0).integers(0, m.arch["n_in"] + m.arch["n_out"], 40)
    with torch.no_grad():
        hf = net(torch.tensor(ids)[None])[0].numpy() * 256.0
    errs = []
    for t, i in enumerate(ids):
        hi = r.step(int(i))
        errs.append(np.linalg.norm(hi - hf[t]) / np.linalg.norm(hf[t]))
    assert max(errs) < bound, max(errs)
