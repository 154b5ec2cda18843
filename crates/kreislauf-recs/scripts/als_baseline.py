#!/usr/bin/env python3
"""Implicit-feedback ALS baseline on the exact split exported by kreislauf-recs.

Reads train.csv / test.csv (profile,item,kind,timestamp) and items.csv
(item,available) written by `kreislauf_recs::eval::write_split_csv`, trains
`implicit.als.AlternatingLeastSquares`, and prints JSON rows the Rust side
reads into its report table:

    {"rows": [{"name": "als", "precision": ..., "recall": ..., "ndcg": ...,
               "coverage": ..., "profiles": ...},
              {"name": "most-popular", ...}],
     "params": {...}}

Evaluation protocol and metrics are IDENTICAL to
crates/kreislauf-recs/src/eval/{mod.rs,metrics.rs}:

* evaluated profiles: >= 1 train interaction and a non-empty relevant set;
  --max-profiles N keeps the first N in lexicographic order of the id;
* relevant = distinct test items of the profile, not in its train history,
  available;
* recommendations: k items, never from the profile's train history, never
  unavailable;
* precision@k = hits in top k / k; recall@k = hits / |relevant|;
  NDCG@k = DCG / IDCG, binary gains, DCG = sum over hit ranks i (1-based) of
  1/log2(i+1), IDCG = sum_{i=1..min(k,|relevant|)} 1/log2(i+1);
  averaged over profiles;
* coverage = distinct recommended items / available items;
* --catalog C restricts the task to catalog C: relevant items and
  recommendations are items of C only (the Rust `target_catalog`);
* most-popular = train interaction count per item (unweighted), ties by the
  item string ascending. It is printed too, so matching the Rust
  most-popular row verifies that both sides compute the same metrics.

Hyper-parameters are tuned honestly: the last --validation-days of train are
held out as validation, a small grid is searched on it, and the best setting
is retrained on the full train set before touching the test set.

Install the dependency with `pip install implicit`.
"""

import argparse
import csv
import json
import math
import os
import sys

# Keep BLAS single-threaded (implicit warns otherwise and it is faster here).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

KIND_WEIGHTS = {"purchase": 1.0, "add_to_cart": 0.6, "click": 0.5, "view": 0.2, "engagement": 0.6}


def read_interactions(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return [(row["profile"], row["item"], row["kind"], int(row["timestamp"])) for row in csv.DictReader(handle)]


def read_items(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return [(row["item"], row["available"].strip().lower() == "true") for row in csv.DictReader(handle)]


def build_cases(train, test, available, max_profiles, catalog=None):
    seen = {}
    for profile, item, _, _ in train:
        seen.setdefault(profile, set()).add(item)
    relevant = {}
    for profile, item, _, _ in test:
        in_target = catalog is None or item.split(":", 1)[0] == catalog
        if profile in seen and item in available and in_target and item not in seen[profile]:
            relevant.setdefault(profile, set()).add(item)
    profiles = sorted(p for p in relevant if relevant[p])
    if max_profiles is not None:
        profiles = profiles[:max_profiles]
    return [(p, seen[p], relevant[p]) for p in profiles]


def metrics_row(name, recommendations, cases, k, recommendable):
    precision = recall = ndcg = 0.0
    distinct = set()
    for (profile, _, relevant), recs in zip(cases, recommendations):
        recs = recs[:k]
        hit_ranks = [rank for rank, item in enumerate(recs) if item in relevant]
        precision += len(hit_ranks) / k
        recall += len(hit_ranks) / len(relevant)
        dcg = sum(1.0 / math.log2(rank + 2) for rank in hit_ranks)
        idcg = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
        ndcg += dcg / idcg if idcg > 0 else 0.0
        distinct.update(recs)
    count = max(len(cases), 1)
    return {
        "name": name,
        "precision": precision / count,
        "recall": recall / count,
        "ndcg": ndcg / count,
        "coverage": len(distinct) / recommendable if recommendable else 0.0,
        "profiles": len(cases),
    }


def most_popular(train, cases, available, k):
    counts = {}
    for _, item, _, _ in train:
        counts[item] = counts.get(item, 0) + 1
    ranking = sorted((item for item in counts if item in available), key=lambda item: (-counts[item], item))
    result = []
    for _, seen, _ in cases:
        recs = []
        for item in ranking:
            if item not in seen:
                recs.append(item)
                if len(recs) == k:
                    break
        result.append(recs)
    return result


def user_item_matrix(train, users, items):
    rows, cols, values = [], [], []
    for profile, item, kind, _ in train:
        rows.append(users[profile])
        cols.append(items[item])
        values.append(KIND_WEIGHTS.get(kind, 0.5))
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def als_recommend(train, cases, item_list, available, k, params, seed, threads):
    from implicit.als import AlternatingLeastSquares

    items = {item: index for index, item in enumerate(item_list)}
    users = {}
    for profile, _, _, _ in train:
        users.setdefault(profile, len(users))
    train = [row for row in train if row[1] in items]
    matrix = user_item_matrix(train, users, items)
    model = AlternatingLeastSquares(
        factors=params["factors"],
        regularization=params["regularization"],
        alpha=params["alpha"],
        iterations=params["iterations"],
        random_state=seed,
        num_threads=threads,
    )
    model.fit(matrix, show_progress=False)
    unavailable = np.array([items[item] for item in item_list if item not in available], dtype=np.int32)
    user_ids = np.array([users[profile] for profile, _, _ in cases], dtype=np.int32)
    if len(user_ids) == 0:
        return []
    ids, _ = model.recommend(
        user_ids,
        matrix[user_ids],
        N=k,
        filter_already_liked_items=True,
        filter_items=unavailable if len(unavailable) else None,
    )
    return [[item_list[index] for index in row if index >= 0] for row in ids]


def tune(train, item_list, available, k, seed, threads, validation_days, catalog):
    cut = max(ts for _, _, _, ts in train) - validation_days * 86400
    fit = [row for row in train if row[3] < cut]
    validation = [row for row in train if row[3] >= cut]
    cases = build_cases(fit, validation, available, None, catalog)
    grid = [
        {"factors": factors, "regularization": regularization, "alpha": alpha, "iterations": 20}
        for factors in (8, 16, 32, 64, 128)
        for regularization in (0.01, 0.1, 1.0)
        for alpha in (0.5, 2.0, 10.0, 40.0)
    ]
    best = None
    for params in grid:
        recs = als_recommend(fit, cases, item_list, available, k, params, seed, threads)
        score = metrics_row("als", recs, cases, k, 1)["ndcg"]
        if best is None or score > best[0]:
            best = (score, params)
    return best[1], best[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--items", required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-profiles", type=int, default=None)
    parser.add_argument("--catalog", default=None, help="restrict the task to one catalog")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--validation-days", type=int, default=30)
    parser.add_argument("--no-tune", action="store_true", help="use the default parameters")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--regularization", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()

    train = read_interactions(args.train)
    test = read_interactions(args.test)
    item_rows = read_items(args.items)
    item_list = [item for item, _ in item_rows]
    available = {item for item, flag in item_rows if flag}
    # Candidates outside the target catalog are simply not recommendable.
    targets = {item for item in available if args.catalog is None or item.split(":", 1)[0] == args.catalog}
    seed = args.seed % (2**31)

    if args.no_tune:
        params = {
            "factors": args.factors,
            "regularization": args.regularization,
            "alpha": args.alpha,
            "iterations": args.iterations,
        }
        validation_ndcg = None
    else:
        params, validation_ndcg = tune(train, item_list, targets, args.k, seed, args.threads, args.validation_days, args.catalog)

    cases = build_cases(train, test, targets, args.max_profiles, args.catalog)
    als = als_recommend(train, cases, item_list, targets, args.k, params, seed, args.threads)
    popular = most_popular(train, cases, targets, args.k)
    rows = [
        metrics_row("als", als, cases, args.k, len(targets)),
        metrics_row("most-popular", popular, cases, args.k, len(targets)),
    ]
    json.dump({"rows": rows, "params": dict(params, validation_ndcg=validation_ndcg)}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
