# Heap of the firmware during queries, measured by MicroPython itself (benchmarks/bench_board.py runs it).
# Runs on any MicroPython with the firmware importable and, in the current directory, model.rku, board.json and
# queries.json: the WebAssembly build (bench_board's node runner), or a board or qemu-emulated board through
# `mpremote mount` (bench_board.py --heap-on PORT). gc.mem_alloc() after gc.collect() at each boot stage; per
# query, what App.handle(QUERY) allocates with the collector off (nothing freed): resident + that bounds the
# peak from above. Prints one line "RESULT {json}".
import gc
import json

gc.collect()
res = {"start": gc.mem_alloc()}
stages = []


def stage(name):
    gc.collect()
    stages.append([name, gc.mem_alloc()])


try:
    f = open('model.rku', 'rb')             # first, as firmware/main.py does: one block while the heap is empty
    buf = f.read()
    f.close()
    stage("model file read into RAM")
    try:
        import rkernel                      # the native module, where there is one (a natmod lives on the heap)
        stage("native module rkernel imported")
    except ImportError:
        pass
    from rkfw import app, proto, status, transport
    stage("firmware code imported (rkfw.app, proto, port, status, transport)")
    a = app.App(app.read_profile(), {})
    stage("App constructed (profile, config, buffers)")
    from rkfw import infer, kernels, rku
    stage("inference code imported (rkfw.rku, infer, kernels)")
    res["tier"] = kernels.TIER
    m = rku.load(buf)
    stage("model parsed (rku.load)")
    e = infer.Engine(m)
    stage("engine built (state, buffers, grammar)")
    a.model, a.engine, a.model_path, a.model_error = m, e, "model.rku", None
    m = e = buf = None
    gc.collect()
    res["resident"] = gc.mem_alloc()
    res["stages"] = stages
    res["model_error"] = a.model_error
    qs = json.load(open('queries.json'))
    ok = 0
    per = []
    if a.engine is not None:
        for i in range(len(qs)):
            payload = qs[i].encode()
            gc.collect()
            gc.disable()
            a0 = gc.mem_alloc()
            reply = a.handle((proto.QUERY, i + 1, payload))
            per.append(gc.mem_alloc() - a0)
            gc.enable()
            ev = proto.Decoder().feed(reply)
            if ev and isinstance(ev[0], tuple) and ev[0][0] == proto.QUERY | proto.REPLY:
                ok += 1
    res["answered"] = ok
    res["query_alloc"] = per
except MemoryError as e:
    res["error"] = "MemoryError: %s" % e
    res["stages"] = stages
print("RESULT " + json.dumps(res))
