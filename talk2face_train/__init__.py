"""talk2face_train: training for the talk2face library, which never imports it.

The decoder (`train`; started from a pretrained LM: `pretrained_lm`), the image tokenizer (`vqgan`), the evaluator (`evaluator`), pre-tokenization
(`pretokenize`), the text tokenizer (`text_tokenizer`), training sequences (`sequences`), the
learning-rate schedule (`schedule`) and the measured precision (`precision`).
"""
