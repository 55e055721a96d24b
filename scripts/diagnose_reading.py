"""Where does reading a face fail? Linear probes on the VQ codes and on the decoder's hidden states.

    python scripts/diagnose_reading.py --tokenized runs/demo/tokenized [--model runs/demo/decoder/final]

1. Baselines on the test split: the majority answer per attribute, the mean training age.
2. What the codes hold, linearly: one weight vector per (grid position, code), summed over the
   grid (an EmbeddingBag), trained on the train split for attributes (BCE) and age (L1).
   How fast a reader can learn it: the same probe trained in one pass of minibatches of 32
   (Adam), scored after 1k / 2k / 4k / all faces read; and the same without positions (one
   weight vector per code, a bag of codes): what a reader that ignores where a code sits gets.
3. With --model: the decoder's own answers (`classify_attributes`, `estimate_age`), and the same
   kind of linear probe on its hidden states, per layer, at the `<sep>` that ends the attribute
   prompt: whether the decoder's representation holds what its answer does not say.
Figures are printed and written as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from talk2face_train.tokenized import load_tokenized
from talk2face.data.record import ATTRIBUTES
from talk2face.evaluation import face_metrics


def split_arrays(table, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes (N, h*w) int64, attributes (N, 40) int8 with -1 unknown, ages (N,) int) of the
    faces that are not edit results (each identity once), the first `limit` (0 = all)."""
    table = table.filter(lambda e: e == "", input_columns="edit_attribute")
    if limit:
        table = table.select(range(min(limit, len(table))))
    columns = table.with_format("numpy")
    return (np.stack(columns["codes"]).astype(np.int64), np.stack(columns["attributes"]).astype(np.int8),
            np.asarray(columns["age"]))


def attribute_scores(predicted: np.ndarray, truth: np.ndarray, names: list[str]) -> dict[str, float]:
    return {"mean_acc": face_metrics.mean_accuracy(predicted, truth, names),
            "balanced_acc": face_metrics.balanced_accuracy(predicted, truth, names)}


def fit_linear(train_x, train_attr, train_age, test_x, steps: int, lr: float, bag: int = 0):
    """A linear model trained full-batch with Adam: attribute logits and an age from `x`.

    Args:
        train_x, test_x: (N, F) float features, or with `bag` > 0 (N, h*w) code indices into a
            table of `bag` rows (one weight vector per position and code).
        train_attr: (N, A) 0/1 targets; train_age: (N,) years.
    Returns:
        (attribute probabilities (M, A), ages (M,)) on test_x.
    """
    torch.manual_seed(0)
    n_attr = train_attr.shape[1]
    if bag:
        model = torch.nn.EmbeddingBag(bag, n_attr + 1, mode="sum")
        torch.nn.init.zeros_(model.weight)
        bias = torch.nn.Parameter(torch.zeros(n_attr + 1))
        params = [*model.parameters(), bias]
        forward = lambda x: model(x) + bias  # noqa: E731
    else:
        mean, std = train_x.mean(0), train_x.std(0) + 1e-6
        train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
        model = torch.nn.Linear(train_x.shape[1], n_attr + 1)
        params = list(model.parameters())
        forward = model
    age_mean = train_age.float().mean()
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        out = forward(train_x)  # (N, A + 1)
        loss = F.binary_cross_entropy_with_logits(out[:, :n_attr], train_attr.float())
        loss = loss + (out[:, n_attr] + age_mean - train_age.float()).abs().mean() / 10
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        out = forward(test_x)
    return out[:, :n_attr].sigmoid().numpy(), (out[:, n_attr] + age_mean).numpy()


def reads_curve(train_codes, train_attr, train_age, test_codes, test_attr, test_age, names, n_codes: int,
                positions: bool, reads: tuple[int, ...] = (1024, 2048, 4096), batch: int = 32) -> dict[str, dict]:
    """One pass of minibatch Adam over the training faces: the test scores after each count of `reads`."""
    torch.manual_seed(0)
    n_cells = train_codes.shape[1]
    offsets = torch.arange(n_cells) * n_codes if positions else torch.zeros(n_cells, dtype=torch.long)
    x, x_test = torch.from_numpy(train_codes) + offsets, torch.from_numpy(test_codes) + offsets
    attr, age = torch.from_numpy(train_attr).float(), torch.from_numpy(train_age).float()
    model = torch.nn.EmbeddingBag((n_cells if positions else 1) * n_codes, attr.shape[1] + 1, mode="sum")
    torch.nn.init.zeros_(model.weight)
    bias = torch.nn.Parameter(torch.zeros(attr.shape[1] + 1))
    optimizer = torch.optim.Adam([*model.parameters(), bias], lr=0.05)
    order, curve = torch.randperm(len(x)), {}
    for start in range(0, len(x), batch):
        idx = order[start:start + batch]
        out = model(x[idx]) + bias  # (b, A + 1)
        loss = F.binary_cross_entropy_with_logits(out[:, :-1], attr[idx])
        loss = loss + (out[:, -1] + age.mean() - age[idx]).abs().mean() / 10
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done = start + len(idx)
        if done in reads or done == len(x):
            with torch.no_grad():
                out = model(x_test) + bias
            curve[f"reads_{done}"] = {**attribute_scores((out[:, :-1] >= 0).numpy(), test_attr, names),
                                      "age_mae": float((out[:, -1] + age.mean() - torch.from_numpy(test_age)).abs().mean())}
    return curve


@torch.no_grad()
def hidden_states(model, faces: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Per layer (embeddings first), the hidden state at `<sep>` of the attribute prompt: [(N, H)]."""
    prompts = [model.task_prompt_ids("attributes", face=f) for f in faces]
    layers: list[list[np.ndarray]] = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = model._left_pad(prompts[start:start + batch_size])
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model.model(input_ids=ids, attention_mask=mask, position_ids=position_ids, output_hidden_states=True)
        for i, h in enumerate(out.hidden_states):  # (b, T, H); left-padded: <sep> is last
            if len(layers) <= i:
                layers.append([])
            layers[i].append(h[:, -1].float().cpu().numpy())
    return [np.concatenate(chunks) for chunks in layers]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenized", required=True, help="a pre-tokenized folder (talk2face tokenize)")
    parser.add_argument("--model", help="a decoder checkpoint folder to diagnose")
    parser.add_argument("--train-limit", type=int, default=0, help="training faces for the code probe (0 = all)")
    parser.add_argument("--hidden-train", type=int, default=2000, help="training faces for the hidden-state probes")
    parser.add_argument("--test-limit", type=int, default=500)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    dataset, meta = load_tokenized(args.tokenized)
    train_codes, train_attr, train_age = split_arrays(dataset["train"], args.train_limit)
    test_codes, test_attr, test_age = split_arrays(dataset["test"], args.test_limit)
    known = (train_attr >= 0).all(0) & (test_attr >= 0).all(0)
    names = [a for a, k in zip(ATTRIBUTES, known) if k]
    train_attr, test_attr = train_attr[:, known], test_attr[:, known]
    report: dict = {"attributes": len(names), "train_faces": len(train_codes), "test_faces": len(test_codes)}

    majority = np.tile(train_attr.mean(0) >= 0.5, (len(test_attr), 1))
    report["majority"] = {**attribute_scores(majority, test_attr, names),
                          "age_mae": float(np.abs(test_age - train_age.mean()).mean())}

    started = time.perf_counter()
    positions = train_codes.shape[1]
    offsets = torch.arange(positions) * meta["n_codes"]  # (h*w,): one table row per (position, code)
    probs, ages = fit_linear(torch.from_numpy(train_codes) + offsets, torch.from_numpy(train_attr),
                             torch.from_numpy(train_age), torch.from_numpy(test_codes) + offsets,
                             steps=300, lr=0.05, bag=positions * meta["n_codes"])
    report["code_probe"] = {**attribute_scores(probs >= 0.5, test_attr, names),
                            "age_mae": float(np.abs(ages - test_age).mean()), "seconds": time.perf_counter() - started}

    for key, positions in (("code_probe_one_pass", True), ("bag_of_codes_one_pass", False)):
        report[key] = reads_curve(train_codes, train_attr, train_age, test_codes, test_attr, test_age, names,
                                  meta["n_codes"], positions)

    if args.model:
        from talk2face.facade import Talk2Face

        model = Talk2Face.from_pretrained(args.model)
        answered = model._attribute_probs(list(test_codes), names)
        predicted = np.array([[a[n] >= 0.5 for n in names] for a in answered])
        ages_model = age_from_codes(model, test_codes)
        report["decoder_answers"] = {**attribute_scores(predicted, test_attr, names),
                                     "age_mae": float(np.abs(ages_model - test_age).mean())}
        h = args.hidden_train
        train_layers = hidden_states(model, train_codes[:h])
        test_layers = hidden_states(model, test_codes)
        report["hidden_probe"] = {}
        for layer, (tr, te) in enumerate(zip(train_layers, test_layers)):
            p, a = fit_linear(torch.from_numpy(tr), torch.from_numpy(train_attr[:h]), torch.from_numpy(train_age[:h]),
                              torch.from_numpy(te), steps=500, lr=0.01)
            report["hidden_probe"][f"layer_{layer}"] = {**attribute_scores(p >= 0.5, test_attr, names),
                                                       "age_mae": float(np.abs(a - test_age).mean())}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


def age_from_codes(model, codes: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The decoder's expected age for faces given as codes (estimate_age without the VQGAN)."""
    vocab = model.vocab
    out = []
    for start in range(0, len(codes), batch_size):
        prompts = [model.task_prompt_ids("age", face=f) for f in codes[start:start + batch_size]]
        if vocab.number_token_ids is None:  # ages of several tokens: each whole answer scored, as estimate_age does
            p = model._answer_log_probs(prompts, [np.append(a, vocab.eos_id) for a in vocab.age_ids]).softmax(-1).cpu()
        else:
            logits, _ = model._logits(prompts)
            p = logits[:, -1, torch.from_numpy(vocab.number_token_ids)].softmax(-1)  # (b, 121)
        out.append((p @ torch.arange(p.shape[1], dtype=p.dtype)).numpy())
    return np.concatenate(out)


if __name__ == "__main__":
    main()
