"""The paper's three claims on CIFAR-10 (its Table 2), row by row, judged
on the committed runs of the Table 2 sweep by three measures of each run's
test error: at the last epoch (the paper's), its mean over the last 20
epochs, and its lowest (chosen on the test set, so optimistic).

    python3 docs/results/table2_claims.py docs/results/table2

A claim holds where the rule is ahead of every rule it is claimed to beat
by more than 2 standard errors of the difference from the closest one;
each cell names that closest rule, the gap in points (positive: ahead, as
claimed) and in standard errors. Prints a Markdown table.
"""
import csv
import glob
import os
import statistics as st
import sys

ROWS = ["1x400", "1x800", "2x400", "2x800"]
MEASURES = {
    "last epoch": lambda e: e[-1],
    "mean of the last 20": lambda e: st.mean(e[-20:]),
    "lowest": min,
}
CLAIMS = [
    ("BP best overall", "bp", ["fa", "dfa", "bfa", "bdfa"]),
    ("BFA beats FA and DFA", "bfa", ["fa", "dfa"]),
    ("BDFA best asymmetric", "bdfa", ["fa", "dfa", "bfa"]),
]


def runs(folder):
    """{(row, rule): [test error (%) per epoch, one list per seed]}"""
    out = {}
    for f in glob.glob(os.path.join(folder, "*", "metrics.csv")):
        cell = dict(p.split("-", 1) for p in os.path.basename(os.path.dirname(f)).split("_"))
        with open(f) as fh:
            e = [100 * float(r["test_error"]) for r in csv.DictReader(fh)]
        out.setdefault((cell["hidden"], cell["rule"]), []).append(e)
    return out


def verdict(values, rule, others):
    gaps = []
    for b in others:
        a, o = values[rule], values[b]
        d = st.mean(o) - st.mean(a)
        if min(len(a), len(o)) < 2:
            gaps.append((float("nan"), d, b))
            continue
        se = (st.variance(a) / len(a) + st.variance(o) / len(o)) ** 0.5
        gaps.append((d / se if se > 0 else float("inf") * d, d, b))
    if any(z != z for z, _, _ in gaps):
        d, b = min((d, b) for _, d, b in gaps)
        return f"one seed: {d:+.2f} vs {b.upper()}"
    z, d, b = min(gaps)
    word = ("holds" if z > 2 else "ahead, not separated" if d > 0
            else "behind, not separated" if z > -2 else "fails")
    return f"{word} ({d:+.2f} vs {b.upper()}, {z:+.1f} se)"


def main(folder):
    all_runs = runs(folder)
    print("| row | measure | " + " | ".join(name for name, _, _ in CLAIMS) + " |")
    print("|---|---|" + "---|" * len(CLAIMS))
    for row in ROWS:
        for name, measure in MEASURES.items():
            values = {r: [measure(e) for e in es] for (h, r), es in all_runs.items() if h == row}
            if not all(r in values for _, rule, others in CLAIMS for r in [rule] + others):
                continue
            cells = [verdict(values, rule, others) for _, rule, others in CLAIMS]
            print(f"| {row} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/table2")
