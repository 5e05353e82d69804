#!/usr/bin/env python3
"""An independent check of `vigil evaluate --predictions`: the normalised utility of the
PhysioNet/Computing in Cardiology Challenge 2019, written in plain Python (no packages)
from the published definition (Reyna et al., Crit Care Med 2020;48(2):210), separately
from Vigil's Rust implementation.

usage: tools/challenge_utility.py LABELS PREDICTIONS
  LABELS       the challenge's stay files: a directory of .psv files or a .tar.gz of them
               (their SepsisLabel column)
  PREDICTIONS  a directory of files of the same names with PredictedProbability|PredictedLabel

Prints the normalised utility and the number of stays scored. Exit 1 if a stay has no
predictions or a different number of rows.
"""
import os
import sys
import tarfile

DT_EARLY, DT_OPTIMAL, DT_LATE = -12, -6, 3
MAX_U_TP, MIN_U_FN, U_FP, U_TN = 1.0, -2.0, -0.05, 0.0


def stay_utility(labels, predictions):
    if 1 in labels:
        septic = True
        t_sepsis = labels.index(1) - DT_OPTIMAL
    else:
        septic = False
        t_sepsis = float("inf")
    # u = m * t + b on each piece, as in the challenge's definition.
    m1 = MAX_U_TP / (DT_OPTIMAL - DT_EARLY)
    b1 = -m1 * DT_EARLY
    m2 = -MAX_U_TP / (DT_LATE - DT_OPTIMAL)
    b2 = -m2 * DT_LATE
    m3 = MIN_U_FN / (DT_LATE - DT_OPTIMAL)
    b3 = -m3 * DT_OPTIMAL
    total = 0.0
    for t, predicted in enumerate(predictions):
        if t > t_sepsis + DT_LATE:
            continue
        if septic and predicted:
            if t <= t_sepsis + DT_OPTIMAL:
                total += max(m1 * (t - t_sepsis) + b1, U_FP)
            else:
                total += m2 * (t - t_sepsis) + b2
        elif septic:
            if t > t_sepsis + DT_OPTIMAL:
                total += m3 * (t - t_sepsis) + b3
        elif predicted:
            total += U_FP
        else:
            total += U_TN
    return total


def labels_of(text):
    lines = text.strip().splitlines()
    column = lines[0].split("|").index("SepsisLabel")
    return [int(line.split("|")[column]) for line in lines[1:]]


def label_files(path):
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith(".psv"):
                with open(os.path.join(path, name)) as f:
                    yield name, f.read()
    else:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.isfile() and member.name.endswith(".psv"):
                    yield os.path.basename(member.name), archive.extractfile(member).read().decode()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    observed = best = inaction = 0.0
    stays = 0
    for name, text in label_files(sys.argv[1]):
        labels = labels_of(text)
        path = os.path.join(sys.argv[2], name)
        if not os.path.exists(path):
            sys.exit(f"{name}: no predictions in {sys.argv[2]}")
        with open(path) as f:
            rows = f.read().strip().splitlines()[1:]
        predictions = [int(row.split("|")[1]) for row in rows]
        if len(predictions) != len(labels):
            sys.exit(f"{name}: {len(predictions)} predictions for {len(labels)} hours")
        n = len(labels)
        optimal = [0] * n
        if 1 in labels:
            t_sepsis = labels.index(1) - DT_OPTIMAL
            for t in range(max(0, t_sepsis + DT_EARLY), min(t_sepsis + DT_LATE + 1, n)):
                optimal[t] = 1
        observed += stay_utility(labels, predictions)
        best += stay_utility(labels, optimal)
        inaction += stay_utility(labels, [0] * n)
        stays += 1
    print(f"normalised utility {(observed - inaction) / (best - inaction):.6f} over {stays} stays")


if __name__ == "__main__":
    main()
