"""Caption metrics with the numbers of the COCO caption evaluation code (pycocoevalcap 1.2).

Every function takes `references` (per image, a list of reference captions) and `candidates`
(per image, one generated caption), already tokenized: tokens separated by spaces, as
`ptb_tokenize` writes them. `caption_scores` tokenizes raw text and runs them all.

What exactly is computed (written from the papers; the quirks follow pycocoevalcap's scorers so
that numbers are comparable with published ones):

- BLEU-1..4 (Papineni et al. 2002), corpus level: clipped n-gram matches and candidate n-gram
  counts are summed over all images, then one brevity penalty exp(1 - r/c) from the summed
  lengths. The reference length r of each image is the "closest" one: the reference length
  nearest to the candidate's, the shorter one on a tie. Every ratio adds 1e-15 to the numerator
  and 1e-9 to the denominator (so a zero count gives ~0, not an error).
- ROUGE-L (Lin 2004): LCS precision and recall against each reference; the MAXIMUM precision and
  the MAXIMUM recall (possibly from different references) are combined with
  F = (1 + b^2) P R / (R + b^2 P), b = 1.2. Averaged over images.
- CIDEr-D (Vedantam et al. 2015), which is what pycocoevalcap calls `Cider`: TF-IDF vectors of
  1..4-grams, IDF = log(#images) - log(max(1, document frequency over the references of the
  evaluated set)); per n the candidate weight is CLIPPED to the reference weight, cosine-like
  similarity min(g_c, g_r) * g_r / (|g_c| |g_r|), times a Gaussian length penalty
  exp(-d^2 / (2 * 6^2)); averaged over n and references, times 10. QUIRK: the length d is the
  difference of BIGRAM counts (pycocoevalcap counts n-grams of index 1), i.e. of word counts
  minus one; we keep it. No stemming, no stop words (as in pycocoevalcap, not the paper).
- METEOR 1.5 through pycocoevalcap's own jar, only where Java and pycocoevalcap are installed.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence

from talk2face.evaluation.ptb_tokenizer import ptb_tokenize

NGram = tuple[str, ...]
_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's BLEU smoothing constants


def _check(references: Sequence[Sequence[str]], candidates: Sequence[str]) -> None:
    if len(references) != len(candidates):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"image {i}: references must be a non-empty list of captions")


def ngram_counts(tokens: Sequence[str], n: int) -> Counter[NGram]:
    """All 1..n-grams of a token list with their counts."""
    return Counter(tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))


def bleu(
    references: Sequence[Sequence[str]], candidates: Sequence[str], n: int = 4
) -> tuple[list[float], list[list[float]]]:
    """Corpus BLEU-1..n, and the same per image.

    Args:
        references: per image, its tokenized reference captions.
        candidates: per image, one tokenized candidate caption.
        n: the largest n-gram order.

    Returns:
        (corpus, per_image): corpus[k-1] is BLEU-k; per_image[k-1][i] is BLEU-k of image i.
    """
    _check(references, candidates)

    def combine(correct: list[float], guess: list[float], test_len: float, ref_len: float) -> list[float]:
        scores, product = [], 1.0
        for k in range(n):
            product *= (correct[k] + _TINY) / (guess[k] + _SMALL)
            scores.append(product ** (1.0 / (k + 1)))
        ratio = (test_len + _TINY) / (ref_len + _SMALL)
        penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
        return [s * penalty for s in scores]

    totals_correct, totals_guess = [0.0] * n, [0.0] * n
    total_test = total_ref = 0.0
    per_image: list[list[float]] = [[] for _ in range(n)]
    for refs, cand in zip(references, candidates):
        words = cand.split()
        ref_words = [r.split() for r in refs]
        max_ref: Counter[NGram] = Counter()
        for rw in ref_words:
            max_ref |= ngram_counts(rw, n)  # element-wise max over references
        counts = ngram_counts(words, n)
        correct = [0.0] * n
        for gram, count in counts.items():
            correct[len(gram) - 1] += min(count, max_ref[gram])
        guess = [float(max(0, len(words) - k)) for k in range(n)]
        ref_len = min((abs(len(rw) - len(words)), len(rw)) for rw in ref_words)[1]
        for k, score in enumerate(combine(correct, guess, len(words), ref_len)):
            per_image[k].append(score)
        totals_correct = [a + b for a, b in zip(totals_correct, correct)]
        totals_guess = [a + b for a, b in zip(totals_guess, guess)]
        total_test += len(words)
        total_ref += ref_len
    return combine(totals_correct, totals_guess, total_test, total_ref), per_image


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a) * len(b)))."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(
    references: Sequence[Sequence[str]], candidates: Sequence[str], beta: float = 1.2
) -> tuple[float, list[float]]:
    """ROUGE-L F-score (max precision and max recall over references), mean over images.

    Args:
        references: per image, its tokenized reference captions.
        candidates: per image, one tokenized candidate caption.
        beta: weight of recall over precision (COCO uses 1.2).

    Returns:
        (mean, per_image).
    """
    _check(references, candidates)
    scores = []
    for refs, cand in zip(references, candidates):
        words = cand.split()
        precision = recall = 0.0
        for ref in refs:
            ref_words = ref.split()
            lcs = lcs_length(ref_words, words)
            if words and ref_words:  # an empty caption has no common subsequence: score 0
                precision = max(precision, lcs / len(words))
                recall = max(recall, lcs / len(ref_words))
        if precision > 0 and recall > 0:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return sum(scores) / len(scores), scores


def cider_d(
    references: Sequence[Sequence[str]], candidates: Sequence[str], n: int = 4, sigma: float = 6.0
) -> tuple[float, list[float]]:
    """CIDEr-D as pycocoevalcap's `Cider` computes it (IDF from the references of this set).

    Args:
        references: per image, its tokenized reference captions.
        candidates: per image, one tokenized candidate caption.
        n: the largest n-gram order.
        sigma: width of the Gaussian length penalty.

    Returns:
        (mean, per_image).
    """
    _check(references, candidates)
    ref_counts = [[ngram_counts(r.split(), n) for r in refs] for refs in references]
    document_frequency: Counter[NGram] = Counter()
    for counts in ref_counts:
        document_frequency.update(set().union(*counts))
    log_images = math.log(len(references))

    def tfidf(counts: Counter[NGram]) -> tuple[list[dict[NGram, float]], list[float], int]:
        """Per order: n-gram -> tf * idf, the vector norms, and the (bigram) length."""
        vectors: list[dict[NGram, float]] = [{} for _ in range(n)]
        for gram, tf in counts.items():
            vectors[len(gram) - 1][gram] = tf * (log_images - math.log(max(1.0, document_frequency[gram])))
        norms = [math.sqrt(sum(w * w for w in v.values())) for v in vectors]
        length = sum(tf for gram, tf in counts.items() if len(gram) == 2)  # the quirk, see top
        return vectors, norms, length

    scores = []
    for cand, refs in zip(candidates, ref_counts):
        vec, norm, length = tfidf(ngram_counts(cand.split(), n))
        total = 0.0
        for ref in refs:
            ref_vec, ref_norm, ref_length = tfidf(ref)
            penalty = math.exp(-((length - ref_length) ** 2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(w, ref_vec[k].get(g, 0.0)) * ref_vec[k].get(g, 0.0) for g, w in vec[k].items())
                if norm[k] != 0 and ref_norm[k] != 0:
                    dot /= norm[k] * ref_norm[k]
                total += dot * penalty / n
        scores.append(10.0 * total / len(refs))
    return sum(scores) / len(scores), scores


def meteor_available() -> bool:
    """Whether METEOR can run: Java on PATH and pycocoevalcap (which ships the METEOR 1.5 jar)."""
    if shutil.which("java") is None:
        return False
    try:
        import pycocoevalcap.meteor.meteor  # noqa: F401
    except ImportError:
        return False
    return True


def meteor(references: Sequence[Sequence[str]], candidates: Sequence[str]) -> float | None:
    """METEOR 1.5 via pycocoevalcap's jar; None when Java or pycocoevalcap is missing or fails.

    Args:
        references: per image, its tokenized reference captions.
        candidates: per image, one tokenized candidate caption.

    Returns:
        the corpus METEOR score, or None.
    """
    _check(references, candidates)
    if not meteor_available():
        return None
    from pycocoevalcap.meteor.meteor import Meteor

    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [cand] for i, cand in enumerate(candidates)}
    try:
        scorer = Meteor()
        score, _ = scorer.compute_score(gts, res)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None  # a JVM that cannot start (e.g. too little memory) must not stop the report
    return float(score)


def caption_scores(
    references: Sequence[Sequence[str]], candidates: Sequence[str], with_meteor: bool = True
) -> dict[str, float]:
    """Tokenize raw captions like pycocoevalcap and compute every caption metric.

    Args:
        references: per image, its raw reference captions (at least one).
        candidates: per image, one raw generated caption.
        with_meteor: try METEOR (skipped silently where Java is missing).

    Returns:
        {"BLEU-1".."BLEU-4", "ROUGE-L", "CIDEr-D"[, "METEOR"]} -> corpus score.
    """
    _check(references, candidates)
    refs = [[ptb_tokenize(r) for r in rs] for rs in references]
    cands = [ptb_tokenize(c) for c in candidates]
    bleus, _ = bleu(refs, cands)
    scores = {f"BLEU-{k + 1}": b for k, b in enumerate(bleus)}
    scores["ROUGE-L"] = rouge_l(refs, cands)[0]
    scores["CIDEr-D"] = cider_d(refs, cands)[0]
    if with_meteor:
        value = meteor(refs, cands)
        if value is not None:
            scores["METEOR"] = value
    return scores
