"""UCI Adult (Census Income): 14 attributes, binary label income > 50K.

Categorical attributes are one-hot encoded over the categories seen in the training
file; numeric ones are kept as floats (standardisation is the transform's job).
Rows with missing values ('?') keep them as their own category.
"""
from __future__ import annotations

import csv
import io
from typing import List, Tuple

import numpy as np

from mi_defense.errors import DataError

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income"]
NUMERIC = {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"}


def parse_rows(text: str, where: str) -> List[List[str]]:
    rows = []
    for i, row in enumerate(csv.reader(io.StringIO(text), skipinitialspace=True)):
        if not row or (len(row) == 1 and (not row[0].strip() or row[0].startswith("|"))):
            continue  # blank lines and adult.test's '|1x3 Cross validator' first line
        if len(row) != len(COLUMNS):
            raise DataError(f"{where}: line {i + 1} has {len(row)} fields, expected {len(COLUMNS)}; "
                            "the file is not UCI Adult")
        rows.append([c.strip() for c in row])
    if not rows:
        raise DataError(f"{where}: no data rows")
    return rows


def encode(train_rows, test_rows) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, List[str]]:
    cats = {}
    for j, col in enumerate(COLUMNS[:-1]):
        if col not in NUMERIC:
            cats[col] = sorted({r[j] for r in train_rows})
    names = []
    for col in COLUMNS[:-1]:
        names += [col] if col in NUMERIC else [f"{col}={v}" for v in cats[col]]

    def enc(rows, where):
        x = np.zeros((len(rows), len(names)), np.float32)
        y = np.zeros(len(rows), np.int64)
        for i, r in enumerate(rows):
            k = 0
            for j, col in enumerate(COLUMNS[:-1]):
                if col in NUMERIC:
                    try:
                        x[i, k] = float(r[j])
                    except ValueError:
                        raise DataError(f"{where}: row {i + 1}: '{r[j]}' is not a number in column {col}") from None
                    k += 1
                else:
                    vals = cats[col]
                    if r[j] in vals:
                        x[i, k + vals.index(r[j])] = 1.0
                    k += len(vals)
            label = r[-1].rstrip(".")
            if label not in (">50K", "<=50K"):
                raise DataError(f"{where}: row {i + 1}: income label '{r[-1]}' is neither '>50K' nor '<=50K'")
            y[i] = int(label == ">50K")
        return x, y

    x_tr, y_tr = enc(train_rows, "adult.data")
    x_te, y_te = enc(test_rows, "adult.test")
    return x_tr, y_tr, x_te, y_te, names
