"""Tiny transformers models built from configs, with a word-level tokenizer: no downloads.

Each builder saves a folder (safetensors + tokenizer) that ``audit.models.hf.load_hf`` loads.
Weights are random but seeded, so tests are deterministic.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "the a an he she they him her his man woman men women person people doctor nurse engineer "
    "teacher worked as is was were good bad kind lazy smart poor rich black white asian old young "
    "christian muslim jewish gay straight disabled likes hates loves cat dog house car city "
    "and or not very happy sad angry calm . , ! ? my pin secret number code one two three four "
    "five six seven eight nine zero stressed relaxed today work home money family friend"
).split()

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_word_tokenizer(path: Path, words: list[str] | None = None):
    """A BertTokenizerFast over a fixed word list (``vocab=`` dict, as transformers 5 needs)."""
    from transformers import BertTokenizerFast

    vocab_words = SPECIAL + sorted(set(words or WORDS))
    vocab = {w: i for i, w in enumerate(vocab_words)}
    tok = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    assert len(tok) == len(vocab), f"tokenizer vocabulary {len(tok)} != {len(vocab)}"
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(path))
    return tok


def _bert_config(tok, **extra):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                      pad_token_id=tok.pad_token_id, **extra)


def build_tiny_mlm(path: Path, seed: int = 0) -> Path:
    """A 2-layer BertForMaskedLM (hidden 32) with the word tokenizer, saved to ``path``."""
    import torch
    from transformers import BertForMaskedLM

    path = Path(path)
    tok = tiny_word_tokenizer(path)
    torch.manual_seed(seed)
    model = BertForMaskedLM(_bert_config(tok)).eval()
    model.save_pretrained(str(path))
    return path


def build_tiny_classifier(path: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A 2-layer BertForSequenceClassification with the word tokenizer, saved to ``path``."""
    import torch
    from transformers import BertForSequenceClassification

    path = Path(path)
    tok = tiny_word_tokenizer(path)
    torch.manual_seed(seed)
    labels = {i: f"label_{i}" for i in range(num_labels)}
    config = _bert_config(tok, num_labels=num_labels, id2label=labels,
                          label2id={v: k for k, v in labels.items()})
    BertForSequenceClassification(config).eval().save_pretrained(str(path))
    return path


def build_tiny_encoder(path: Path, seed: int = 0) -> Path:
    """A 2-layer BertModel (no head), like the MiniLM encoder but tiny."""
    import torch
    from transformers import BertModel

    path = Path(path)
    tok = tiny_word_tokenizer(path)
    torch.manual_seed(seed)
    BertModel(_bert_config(tok)).eval().save_pretrained(str(path))
    return path


def build_tiny_gpt2(path: Path, seed: int = 0) -> Path:
    """A 2-layer GPT2LMHeadModel (n_embd 32) with a word-level fast tokenizer, saved to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab_words = ["<|endoftext|>", "<unk>"] + sorted(set(WORDS))
    vocab = {w: i for i, w in enumerate(vocab_words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Punctuation()])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="<unk>",
                                  pad_token="<|endoftext|>")
    assert len(tok) == len(vocab)
    tok.save_pretrained(str(path))
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=2, n_head=4,
                        bos_token_id=0, eos_token_id=0, pad_token_id=0)
    GPT2LMHeadModel(config).eval().save_pretrained(str(path))
    return path
