#!/usr/bin/env python3
"""Writes a variant of the PhysioNet 2019 stay files, for the sensitivity analyses of
EVALUATION.md (what happens to Vigil's alerts when a hospital charts differently).

usage: tools/psv_variant.py ARCHIVE OUT_DIR [--drop COLUMN ...] [--keep COLUMN=P ...]
                           [--vitals-every N] [--skip-hours N]
  --drop COLUMN     blank a column (every cell NaN), as at a hospital that does not chart it
  --keep COLUMN=P   keep each charted cell of a column with probability P (seeded by the
                    file name: reproducible), as at a hospital charting it less often
  --vitals-every N  keep the vital signs (HR, O2Sat, Temp, SBP, MAP, DBP, Resp) only every
                    N-th hour, as on a ward charting every N hours; laboratory values and
                    labels are kept as they are
  --skip-hours N    leave out each stay's first N hours, as where Vigil starts watching a
                    patient later than the data's admission (hours observed then differ)

The data stay outside the repository: write OUT_DIR under /tmp or target/.
"""
import argparse
import os
import random
import tarfile

VITALS = {"HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("archive")
    p.add_argument("out")
    p.add_argument("--drop", action="append", default=[])
    p.add_argument("--keep", action="append", default=[])
    p.add_argument("--vitals-every", type=int, default=1)
    p.add_argument("--skip-hours", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tarfile.open(a.archive, "r:gz") as archive:
        for member in archive:
            if not (member.isfile() and member.name.endswith(".psv")):
                continue
            lines = archive.extractfile(member).read().decode().strip().splitlines()
            header = lines[0].split("|")
            blank = {i for i, c in enumerate(header) if c in a.drop}
            vitals = {i for i, c in enumerate(header) if c in VITALS}
            keep = {}
            for spec in a.keep:
                column, share = spec.split("=")
                keep.update({i: float(share) for i, c in enumerate(header) if c == column})
            rng = random.Random(os.path.basename(member.name))
            out = [lines[0]]
            rows = lines[1 + a.skip_hours:]
            if not rows:
                continue
            for h, line in enumerate(rows):
                cells = line.split("|")
                for i in blank:
                    cells[i] = "NaN"
                for i, share in keep.items():
                    if cells[i] != "NaN" and rng.random() >= share:
                        cells[i] = "NaN"
                if h % a.vitals_every:
                    for i in vitals:
                        cells[i] = "NaN"
                out.append("|".join(cells))
            with open(os.path.join(a.out, os.path.basename(member.name)), "w") as f:
                f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
