"""The tokenizer choice: character level over a small alphabet (the board's rkfw.infer.Tokenizer does the
encoding; this module holds the default alphabet and the measurement against a small BPE)."""

# id 0 = unknown, 1..len = these characters (input is lowercased), len+1 = SEP
ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789'%:.,?!-"


def train_bpe(texts, n_merges):
    """A small byte-pair encoding over the same alphabet (for the measurement only): list of merges."""
    from collections import Counter
    words = Counter()
    for t in texts:
        for w in t.lower().split(" "):
            if w:
                words[tuple(w) + (" ",)] += 1
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _n = pairs.most_common(1)[0]
        merges.append((a, b))
        new = Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        words = new
    return merges


def bpe_count(text, merges):
    n = 0
    for w in text.lower().split(" "):
        if not w:
            continue
        toks = list(w) + [" "]
        for a, b in merges:
            i, out = 0, []
            while i < len(toks):
                if i + 1 < len(toks) and toks[i] == a and toks[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(toks[i])
                    i += 1
            toks = out
        n += len(toks)
    return n


def measure(train_texts, test_texts, sizes=(128, 256, 512), d=80):
    """Tokens per query (char vs BPE with n merges) and the embedding bytes each vocabulary costs."""
    res = {"char": {"vocab": len(ALPHABET) + 2,
                    "tokens_per_query": sum(len(t) + 1 for t in test_texts) / len(test_texts)}}
    res["char"]["embedding_bytes"] = res["char"]["vocab"] * d
    for n in sizes:
        merges = train_bpe(train_texts, n)
        v = len(ALPHABET) + 2 + len(merges)
        res["bpe%d" % n] = {"vocab": v, "embedding_bytes": v * d, "merge_table_bytes": sum(len(a) + len(b) + 2 for a, b in merges),
                            "tokens_per_query": sum(bpe_count(t, merges) + 1 for t in test_texts) / len(test_texts)}
    return res


if __name__ == "__main__":      # python -m reku.model.tokenizer [SKILL_DIR]: the measurement in docs/model.md
    import json
    import sys

    from .. import paths
    from . import data
    from .skill import load_skill, read_jsonl
    sk = load_skill(sys.argv[1] if len(sys.argv) > 1 else paths.SKILLS / "home")
    train_texts = [e["query"] for e in data.generate(sk, 5000, seed=0)]
    test_texts = [e["query"] for e in (sk.test or read_jsonl(sk.path / "examples.jsonl"))]
    print(json.dumps(measure(train_texts, test_texts), indent=1))
