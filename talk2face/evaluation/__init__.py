"""Metrics, the evaluator network, baselines and the report behind `make eval`.

Caption metrics (caption_metrics, ptb_tokenizer, caption_attributes) and face metrics
(face_metrics) need only numpy/torch; METEOR additionally needs Java and pycocoevalcap.
"""

from talk2face.evaluation.caption_attributes import attribute_precision_recall, caption_mentions
from talk2face.evaluation.caption_metrics import bleu, caption_scores, cider_d, meteor, rouge_l
from talk2face.evaluation.evaluator import EvaluatorConfig, FaceEvaluator
from talk2face.evaluation.ptb_tokenizer import ptb_tokenize

__all__ = [
    "EvaluatorConfig", "FaceEvaluator", "attribute_precision_recall", "bleu", "caption_mentions",
    "caption_scores", "cider_d", "meteor", "ptb_tokenize", "rouge_l",
]
