"""Shared fixtures: tiny models built once per session (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CROWS_CSV = SHARED_DATA / "crows_pairs" / "crows_pairs_anonymized.csv"


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny BertForMaskedLM."""
    from tests.tiny_models import build_tiny_mlm

    return build_tiny_mlm(tmp_path_factory.mktemp("tiny_mlm"))


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny GPT2LMHeadModel."""
    from tests.tiny_models import build_tiny_gpt2

    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny BertForSequenceClassification (2 labels)."""
    from tests.tiny_models import build_tiny_classifier

    return build_tiny_classifier(tmp_path_factory.mktemp("tiny_clf"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny BertModel encoder."""
    from tests.tiny_models import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_enc"))


@pytest.fixture(scope="session")
def crows_csv() -> Path:
    """The real CrowS-Pairs CSV beside the checkout (skips when absent, as in a user's clone)."""
    if not CROWS_CSV.exists():
        pytest.skip(f"CrowS-Pairs data not found at {CROWS_CSV}")
    return CROWS_CSV


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny-model tests on one torch thread (tiny models gain nothing from two,
    and a busy 2-core machine punishes two badly); restores the previous setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
