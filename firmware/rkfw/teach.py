# Teaching the board's memory of corrections (rkfw.memory: the lookup and the file's reader) a correction, listing
# and forgetting what it learnt (docs/learning.md). rkfw.admin imports this for FEEDBACK with outcome "corrected",
# MEMORY_LIST and MEMORY_FORGET and drops it after the reply. The file (its layout: rkfw.memory) is rewritten through
# a temporary file and a rename, then read back into RAM: what the board uses is always what survives a reset.
import json
import os
from struct import pack, unpack

from rkfw import memory as M
from rkfw.app import MEMORY_FILE
from rkfw.infer import K_TOKEN, fed_id
from rkfw.memory import HEAD, MAGIC, MAX_DEC, cap, load, tag_of

def record_for(engine, text, calls):
    """(key bytes, norm, [(decision number, token)]) of a correction: the request's key (rkfw.memory) and each token
    decision at which the engine, with what it has learnt so far, would not follow `calls` for `text`
    (teacher-forced along the corrected calls). The engine must have a memory (an empty one will do). ValueError
    when the calls cannot be produced for this text (rkfw.steps)."""
    from rkfw.steps import target_steps
    tok = engine.tok
    n = tok.encode(text, engine.ids)
    g = engine.grammar
    steps = target_steps(g, calls, text[:n], tok)
    m = engine.memory
    k = engine.kern
    xs = engine.xs
    engine.prefill(text)
    # the key: the centred average the query just computed is in xs until the first decision overwrites it
    key = bytes(xs)
    norm = M.isqrt(sum(v * v for v in xs))
    decisions = []
    j = 0
    for kind, choice, allowed in steps:
        g.next()
        k.quant_i8(engine.h, xs)
        if kind == K_TOKEN:
            if engine.choose() != choice:
                decisions.append((j, choice))
            j += 1
            g.feed(choice)
            if g.done:
                break
            fid = tok.n_in + choice
        else:
            g.feed(choice)
            fid = fed_id(kind, choice, engine.ids)
        engine.step(fid)
    return key, norm, decisions


def _records(path, tag, d):
    """[(offset, bytes, text, calls)] of the records in file `path` made for this model (oldest use first);
    [] when there is none or it belongs to another model."""
    out = []
    try:
        f = open(path, "rb")
    except OSError:
        return out
    with f:
        h = f.read(HEAD)
        if len(h) < HEAD or h[:4] != MAGIC or h[4:20] != tag or unpack("<H", h[20:22])[0] != d:
            return out
        off = HEAD
        for _ in range(unpack("<H", h[22:24])[0]):
            nd, nk, lt, lc = unpack("<HHHH", f.read(8))
            f.seek(d + 4 * nd, 1)
            text = f.read(lt).decode()
            calls = f.read(lc).decode()
            n = 8 + d + 4 * nd + lt + lc
            out.append((off, n, text, calls))
            off += n
    return out


def _write(app, keep, new=None):
    """Rewrite the memory file with the records `keep` (from _records, in that order) and the record `new`
    ((key, norm, decisions), text, calls) last, then load it into the engine. No records: the file is removed. If
    writing fails (a full filesystem), the file stays as it was and the engine keeps using it; the error propagates."""
    path = MEMORY_FILE
    e = app.engine
    d = e.d
    e.memory = None
    if not keep and new is None:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as out:
            ndec = sum(_decisions(r, d) for r in keep) + (len(new[0][2]) if new is not None else 0)
            out.write(MAGIC + tag_of(app.model) + pack("<HHH", d, len(keep) + (new is not None), ndec))
            if keep:
                with open(path, "rb") as f:
                    for off, n, text, calls in keep:
                        f.seek(off)
                        out.write(f.read(n))
            if new is not None:
                (key, norm, decisions), text, calls = new
                t = text.encode()
                c = calls.encode()
                out.write(pack("<HHHH", len(decisions), norm, len(t), len(c)))
                out.write(key)
                for j, token in decisions:
                    out.write(pack("<HH", j, token))
                out.write(t)
                out.write(c)
        try:
            os.rename(tmp, path)
        except OSError:             # a filesystem whose rename does not replace
            os.remove(path)
            os.rename(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    finally:
        e.memory = load(e, path, tag_of(app.model), cap(app.config))


def _oldest_first(app, recs):
    """recs (all of the file, in file order) ordered oldest use first: the order the engine counted since the file
    was read (records it left out for want of room count as oldest)."""
    m = app.engine.memory
    if m is None:
        return recs
    base = len(recs) - m.records
    order = sorted(range(len(recs)), key=lambda j: m.used[j - base] if j >= base else -1)
    return [recs[j] for j in order]


def teach(app, text, calls):
    """Learn `calls` as the answer to `text`. Returns {"decisions": decisions stored (0: the board already answers
    so, nothing changes), "entries", "cap", "evicted"}; a record for the same text is replaced; the least recently
    used records make room. ValueError: the calls cannot be produced for this text."""
    e = app.engine
    d = e.d
    tag = tag_of(app.model)
    n_cap = cap(app.config)
    recs = _records(MEMORY_FILE, tag, d)
    rec = _record(e, text, calls)
    if rec[2] and [r for r in recs if r[2] == text]:    # relearnt from scratch: the old answer must not vote
        _write(app, [r for r in _oldest_first(app, recs) if r[2] != text])
        recs = _records(MEMORY_FILE, tag, d)
        rec = _record(e, text, calls)
    evicted = 0
    if rec[2]:
        if len(rec[2]) > MAX_DEC * n_cap:
            raise ValueError("the correction needs %d decisions and the memory holds %d (reku.json memory_records)"
                             % (len(rec[2]), MAX_DEC * n_cap))
        recs = _oldest_first(app, recs)
        while recs and (len(recs) + 1 > n_cap or sum(_decisions(r, d) for r in recs) + len(rec[2]) > MAX_DEC * n_cap):
            recs.pop(0)
            evicted += 1
        _write(app, recs, (rec, text, json.dumps(calls, separators=(",", ":"))))
    m = e.memory
    return {"decisions": len(rec[2]), "entries": m.records if m else 0, "cap": n_cap, "evicted": evicted}


def _record(e, text, calls):
    """record_for() with the engine's memory, or with an empty one where it has none."""
    if e.memory is not None:
        return record_for(e, text, calls)
    e.memory = M.Memory(e)                  # an empty memory computes the request's key
    try:
        return record_for(e, text, calls)
    finally:
        e.memory = None


def _decisions(r, d):
    """Decisions of a record from _records (its byte count less the rest)."""
    return (r[1] - 8 - d - len(r[2].encode()) - len(r[3].encode())) // 4


def listing(app):
    """What the board has learnt: {"model", "cap", "entries": [{"text", "calls", "decisions"}]}, oldest use
    first; a file made for another model is not listed: "stale" gives its size."""
    e = app.engine
    d = e.d
    tag = tag_of(app.model)
    recs = _records(MEMORY_FILE, tag, d)
    out = {"model": tag.decode(), "cap": cap(app.config),
           "entries": [{"text": t, "calls": json.loads(c), "decisions": _decisions((o, n, t, c), d)}
                       for o, n, t, c in recs]}
    if not recs:
        try:
            out["stale"] = os.stat(MEMORY_FILE)[6]
        except OSError:
            pass
    return out


def forget(app, index=None):
    """Forget entry `index` (as listed), or everything (None; also a stale file). Returns the entries left."""
    e = app.engine
    recs = _records(MEMORY_FILE, tag_of(app.model), e.d)
    if index is None:
        recs = []
    elif not 0 <= index < len(recs):
        raise ValueError("no entry %d (the memory has %d)" % (index, len(recs)))
    else:
        recs.pop(index)
    _write(app, recs)
    return len(recs)
