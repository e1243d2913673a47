import shutil

import pytest

from reku import sim

RUNTIMES = ["cpython", "micropython"]


def require_runtime(runtime):
    """The MicroPython runtime is part of the test environment (`make test` installs it): its absence is
    a failure, not a skip."""
    if runtime not in sim.available_runtimes():
        pytest.fail("runtime %s unavailable: node=%s, wasm package=%s (run `make test`, which installs it)"
                    % (runtime, shutil.which("node"), sim.micropython_mjs()))


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    require_runtime(request.param)
    return request.param


@pytest.fixture
def board(runtime):
    """A virtual pico board with the bundled home model, on each runtime."""
    with sim.VirtualBoard(runtime=runtime, model="home") as vb:
        yield vb


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the test item (item.rep_call...), for fixtures that act on a failure (the browser
    tests' screenshot)."""
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
