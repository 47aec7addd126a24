"""Byte-level BPE tokenizers trained with ``tokenizers``, saved as transformers fast tokenizers.

Example::

    tok = train_tokenizer(texts, vocab_size=8192)
    tok.save_pretrained("runs/proxy")          # loads back with AutoTokenizer.from_pretrained
"""

from __future__ import annotations

from collections.abc import Iterable

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2,
                    model_max_length: int = 1024):
    """A byte-level BPE tokenizer with ``vocab_size`` entries (including the 256 bytes and the
    special tokens ``<|endoftext|>`` (eos/bos) and ``<|pad|>``); no special tokens are added
    when encoding, like GPT-2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
    )
