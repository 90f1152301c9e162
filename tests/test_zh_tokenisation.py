"""Tokenisation without spaces: Chinese text through word-level PLL (pll_word_l2r), SHAP text
masking, evidence highlighting in the report, and the word splitter they share.

Independent references: shap's own ``SimpleTokenizer`` and Partition explainer; a plainly
written PLL-word-l2r in this file (one forward pass per scored token, the word of a token taken
as the character its offsets start at) on a tiny masked LM; exact Shapley values of an additive
model (each character's weight); hand-written expected strings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audit.context import CheckContext
from audit.textseg import WordTokenizer, refine_word_ids, word_spans

ZH = "我的朋友是一名护士。她很能干。"


# --------------------------------------------------------------------------- the splitter
@pytest.mark.parametrize("text", ["Hello, world!", "  leading space", "a-b c.d", "...", "x"])
def test_word_spans_equal_shap_simple_tokenizer_without_cjk(text: str) -> None:
    """Text without CJK characters is split exactly as shap's SimpleTokenizer(r'\\W+') splits it."""
    from shap.maskers._text import SimpleTokenizer

    ref = SimpleTokenizer(r"\W+")(text)
    ours = WordTokenizer()(text)
    assert ours == {"input_ids": ref["input_ids"], "offset_mapping": ref["offset_mapping"]}


def test_word_spans_split_every_chinese_character() -> None:
    """Each CJK character is a piece; full-width punctuation separates like ASCII punctuation;
    Latin words inside Chinese stay whole."""
    pieces = [ZH[a:b] for a, b in word_spans(ZH)]
    assert pieces == list("我的朋友是一名护士") + list("她很能干")
    mixed = "用iPhone拍照很方便"
    assert [mixed[a:b] for a, b in word_spans(mixed)] == ["用", "iPhone", "拍", "照", "很", "方", "便"]


# --------------------------------------------------------------------------- a byte-level tokenizer
def byte_tokenizer():
    """A fast tokenizer with byte-level BPE and no merges: every Chinese character is three
    tokens with the same character offsets, and the pre-tokenizer makes a whole Chinese clause
    one 'word' (as GPT-2 style tokenizers do)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def test_tokenizer_word_ids_are_whole_clauses_and_get_split() -> None:
    """The tokenizer itself calls the clause one word; refine_word_ids gives one word per
    character (its three byte tokens), and leaves an English sentence's grouping alone."""
    tok = byte_tokenizer()
    enc = tok("护士很好", return_offsets_mapping=True, add_special_tokens=False)
    assert set(enc.word_ids()) == {0}
    assert refine_word_ids("护士很好", enc["offset_mapping"], enc.word_ids()) == \
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    en = "the nurse is kind"
    enc = tok(en, return_offsets_mapping=True, add_special_tokens=False)
    assert refine_word_ids(en, enc["offset_mapping"], enc.word_ids()) == enc.word_ids()


def test_pll_word_l2r_jobs_mask_only_the_rest_of_one_character(tiny_byte_mlm: Path) -> None:
    """The adapter's tokenize + word_l2r_jobs on Chinese: the first byte token of a character is
    scored with the character's other two masked, the second with the third, the third alone."""
    from audit.checks.bias.scoring import word_l2r_jobs
    from audit.models.hf import load_hf

    (enc,) = load_hf(str(tiny_byte_mlm)).tokenize(["护士"])
    masks = [job.mask for job in word_l2r_jobs(enc)]
    assert masks == [(1, 2, 3), (2, 3), (3,), (4, 5, 6), (5, 6), (6,)]


@pytest.fixture(scope="module")
def tiny_byte_mlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BertForMaskedLM (random, seeded) over the byte-level tokenizer."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    path = tmp_path_factory.mktemp("byte_mlm")
    tok = byte_tokenizer()
    tok.save_pretrained(str(path))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=128,
                        pad_token_id=tok.pad_token_id)
    BertForMaskedLM(config).eval().save_pretrained(str(path))
    return path


def _reference_pll_word_l2r(path: Path, text: str) -> float:
    """PLL-word-l2r written out: for each non-special token p, mask p and every later token
    whose offsets start at the same character, and add log p(token p)."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    tok = AutoTokenizer.from_pretrained(str(path))
    model = BertForMaskedLM.from_pretrained(str(path)).eval()
    enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids, offs, special = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
    total = 0.0
    for p in range(len(ids)):
        if special[p]:
            continue
        masked = list(ids)
        for q in range(p, len(ids)):
            if not special[q] and offs[q][0] == offs[p][0]:
                masked[q] = tok.mask_token_id
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([masked])).logits[0, p]
        total += float(torch.log_softmax(logits.double(), -1)[ids[p]])
    return total


def test_pll_word_l2r_on_chinese_pair_matches_reference(tiny_byte_mlm: Path) -> None:
    """The batched masked-LM scorer (metric pll_word_l2r, as pair_preference calls it) scores a
    Chinese minimal pair exactly as the written-out reference does."""
    from audit.checks.bias.scoring import score_pairs_mlm
    from audit.models.hf import load_hf

    more, less = "她是护士。", "他是护士。"
    model = load_hf(str(tiny_byte_mlm))
    got = score_pairs_mlm(model, [(more, less)], "pll_word_l2r")
    assert got[0, 0] == pytest.approx(_reference_pll_word_l2r(tiny_byte_mlm, more), abs=1e-3)
    assert got[0, 1] == pytest.approx(_reference_pll_word_l2r(tiny_byte_mlm, less), abs=1e-3)


def test_adapter_tokenize_reports_word_ids_per_character(tiny_byte_mlm: Path) -> None:
    """The capability boundary (HFAdapter.tokenize) hands checks the same per-character words."""
    from audit.models.hf import load_hf

    (enc,) = load_hf(str(tiny_byte_mlm)).tokenize(["护士ok"])
    assert enc.word_ids == (None, 0, 0, 0, 1, 1, 1, 2, 2, None)


# --------------------------------------------------------------------------- SHAP masking
class CharModel:
    """A two-class model whose positive probability is 0.5 + the sum of character weights."""

    kind = "classifier"
    capabilities = frozenset({"predict_proba"})
    labels = ["neg", "pos"]

    def __init__(self, weights: dict[str, float]):
        self.weights = weights

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        p = np.array([0.5 + sum(self.weights.get(ch, 0.0) for ch in t) for t in texts])
        return np.stack([1 - p, p], axis=1)


def test_shap_text_attributes_chinese_characters_exactly() -> None:
    """shap_text on Chinese with no tokenizer: each character is a token, and for an additive
    model each character's attribution is its weight (exact Shapley values); with the old \\W+
    words the whole clause would have been one token."""
    from audit.registry import get_check

    weights = {"护": 0.2, "士": 0.1, "她": -0.05}
    spec = get_check("shap_text")
    ctx = CheckContext(model=CharModel(weights), seed=0, rng=np.random.default_rng(0),
                       check_id="shap", quiet=True)
    out = spec.fn(ctx, spec.params(texts=["她是一名护士。"], target="pos"))
    fig = out.figures[0]
    assert fig.data["tokens"] == ["她", "是", "一", "名", "护", "士"]
    scores = dict(zip(fig.data["tokens"], fig.data["scores"]))
    assert scores["护"] == pytest.approx(0.2, abs=1e-9)
    assert scores["士"] == pytest.approx(0.1, abs=1e-9)
    assert scores["她"] == pytest.approx(-0.05, abs=1e-9)
    assert scores["是"] == pytest.approx(0.0, abs=1e-9)


def test_lockstep_owen_equals_shap_on_chinese() -> None:
    """Our pooled Partition SHAP and shap.Explainer agree on Chinese texts with the
    character-splitting masker (model with an interaction, binding budget)."""
    import shap

    from audit.checks.explain.owen import explain_texts

    class Interacting(CharModel):
        def predict_proba(self, texts):
            p = super().predict_proba(texts)[:, 1] - 0.15 * np.array(
                [("不" in t and "好" in t) for t in texts])
            return np.stack([1 - p, p], axis=1)

    model = Interacting({"好": 0.3, "坏": -0.25, "很": 0.05, "不": -0.1})
    texts = ["这部电影不好看，演员演得很坏。", "饭菜很好吃，服务也不错。"]
    np.random.seed(0)
    ref = shap.Explainer(model.predict_proba, shap.maskers.Text(WordTokenizer()))(
        texts, max_evals=30, silent=True)
    ours = explain_texts(texts, model.predict_proba, lambda: shap.maskers.Text(WordTokenizer()),
                         max_evals=30)
    for r, o in zip(ref, ours):
        np.testing.assert_allclose(o["values"], r.values, atol=1e-12)
        assert len(o["segments"]) >= 10


# --------------------------------------------------------------------------- evidence highlighting
def test_detokenize_glues_chinese_and_keeps_english_spacing() -> None:
    """Chinese tokens and digit groups are joined without spaces (so PII split over tokens is
    still found); English word tokens still get spaces, WordPiece ## pieces still glue."""
    from audit.report.figures import detokenize

    text, spans = detokenize(["我", "的", "手机", "是", "138", "1234", "5678", "。"])
    assert text == "我的手机是13812345678。"
    assert [text[a:b] for a, b in spans] == ["我", "的", "手机", "是", "138", "1234", "5678", "。"]
    assert detokenize(["the", "nurse", "##s", "are", "kind", "."])[0] == "the nurses are kind."


def test_token_view_masks_chinese_pii_split_over_tokens() -> None:
    """A resident ID split into digit groups, and a mobile number in 3-4-4 groups, are masked
    token by token; the other Chinese tokens are shown as they are, in order."""
    from audit.report.figures import token_view

    tokens = ["身份证", "号", "1101", "0519", "4912", "3100", "2X", "，", "电话", "138", "1234",
              "5678", "。"]
    view = token_view({"tokens": tokens, "scores": [0.1] * len(tokens), "label": "x"}, False)
    shown = [t["text"] for t in view["items"]]
    assert shown == ["身份证", "号"] + ["[PII]"] * 5 + ["，", "电话"] + ["[PII]"] * 3 + ["。"]
    unmasked = [t["text"] for t in token_view({"tokens": tokens, "scores": [0.1] * len(tokens)},
                                              True)["items"]]
    assert unmasked == tokens


def test_report_shows_chinese_token_attributions_in_order() -> None:
    """A Chinese token_attributions figure rendered in report.html: the tokens appear as spans
    in order, each once, and the PII tokens do not appear."""
    from audit.report import render_html
    from audit.results import Figure
    from tests.report_fixtures import rich_run

    run = rich_run()
    tokens = ["她", "是", "一名", "护士", "，", "手机", "13812345678", "。"]
    run.checks[0].figures.append(Figure(kind="token_attributions", title="SHAP zh", data={
        "tokens": tokens, "scores": [0.3, 0.0, 0.1, 0.9, 0.0, 0.0, 0.2, 0.0], "label": "pos"}))
    html = render_html(run)
    figure = html.split("SHAP zh", 1)[1].split("</figure>", 1)[0]
    spans = [s.split(">", 1)[1] for s in figure.split('<span class="tok"')[1:]]
    texts = [s.split("</span>", 1)[0] for s in spans]
    assert texts == ["她", "是", "一名", "护士", "，", "手机", "[PII]", "。"]
    assert "13812345678" not in html
