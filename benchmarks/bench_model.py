"""The bundled models against issue 3's targets: held-out accuracy (`reku eval --json` on each skill's
test.jsonl), size and bits per ternary weight, and the estimated peak heap per board (`reku inspect --json`).

    python benchmarks/bench_model.py --out benchmarks/results

writes model.json. Every skill under skills/ with a model.rku and a test.jsonl is measured; the targets are
those of the home skill (the bundled model)."""
import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REKU = [sys.executable, "-c", "import sys; from reku.cli import main; sys.exit(main())"]


def reku_json(*args):
    r = subprocess.run(REKU + list(args) + ["--json"], capture_output=True, text=True, cwd=str(ROOT))
    if r.returncode != 0:
        raise SystemExit("reku %s failed: %s" % (" ".join(args), r.stderr.strip()))
    return json.loads(r.stdout.strip().splitlines()[-1])


def target(what, value, op, limit):
    ok = value >= limit if op == ">=" else value <= limit
    return {"what": what, "value": value, "op": op, "limit": limit, "ok": bool(ok)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true", help="accepted for `reku bench --quick`; same run")
    args = ap.parse_args()
    res = {"name": "model", "command": "python benchmarks/bench_model.py --out benchmarks/results",
           "machine": "%s, %s, Python %s" % (platform.machine(), platform.system(), platform.python_version()),
           "skills": {}}
    for skill in sorted(p for p in (ROOT / "skills").iterdir() if (p / "model.rku").exists()
                        and (p / "test.jsonl").exists()):
        ev = reku_json("eval", "--model", str(skill / "model.rku"), "--data", str(skill / "test.jsonl"))
        ins = reku_json("inspect", str(skill / "model.rku"))
        res["skills"][skill.name] = {"eval": ev, "inspect": ins}
        print("%-8s exact %.3f  no-call %.3f  valid %.3f  (n=%d)  %d bytes  %.3f bits/weight" % (
            skill.name, ev["exact_match"], ev["no_call_accuracy"], ev["valid"], ev["n"], ins["file_bytes"],
            ins["bits_per_ternary_weight"]))
    home = res["skills"]["home"]
    ev, ins = home["eval"], home["inspect"]
    pico = ins["boards"]["pico"]
    res["targets"] = [
        target("home: exact match on the held-out test set", round(ev["exact_match"], 4), ">=", 0.95),
        target("home: no-call accuracy on the held-out test set", round(ev["no_call_accuracy"], 4), ">=", 0.95),
        target("home: valid calls (fraction)", ev["valid"], ">=", 1.0),
        target("home: model file bytes (stock Pico, no ROMFS)", ins["file_bytes"], "<=", 128 * 1024),
        target("home: bits per ternary weight incl. scales", round(ins["bits_per_ternary_weight"], 4), "<=", 1.62),
        target("home: estimated peak heap on a Pico during a query, bytes (reku inspect; measured figure in "
               "docs/firmware.md)", pico["peak_heap"], "<=", 160 * 1024),
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(json.dumps(res, indent=2) + "\n")
    for t in res["targets"]:
        print("%s: %s %s %s -> %s" % (t["what"], t["value"], t["op"], t["limit"], "ok" if t["ok"] else "MISSED"))


if __name__ == "__main__":
    main()
