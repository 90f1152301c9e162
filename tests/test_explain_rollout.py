"""Attention rollout, head entropy and the `attention` check (tiny models, no downloads)."""

from __future__ import annotations

import numpy as np
import pytest

from audit.checks.explain import rollout
from audit.errors import UsageError


def test_rollout_matches_hand_computation_two_layers():
    """Hand computation (Abnar & Zuidema 2020, residual 0.5*A + 0.5*I, rows renormalised):
    layer 1 mean attention [[.6,.4],[.2,.8]] -> [[.8,.2],[.1,.9]]; layer 2 [[1,0],[.5,.5]] ->
    [[1,0],[.25,.75]]; rollout = L2 @ L1 = [[.8,.2],[.275,.725]]. Two heads per layer average
    to these matrices."""
    layer1 = np.array([[[0.7, 0.3], [0.0, 1.0]], [[0.5, 0.5], [0.4, 0.6]]])
    layer2 = np.array([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]]])
    att = np.stack([layer1, layer2])
    expected = np.array([[0.8, 0.2], [0.275, 0.725]])
    np.testing.assert_allclose(rollout.attention_rollout(att), expected, atol=1e-12)


def test_rollout_renormalises_rows_that_do_not_sum_to_one():
    """With residual 1 the rollout is the identity whatever the attention (hand-derived)."""
    att = np.random.default_rng(0).random((3, 2, 4, 4))
    np.testing.assert_allclose(rollout.attention_rollout(att, residual=1.0), np.eye(4))


def test_head_entropy_uniform_and_one_hot():
    """Uniform rows have normalised entropy 1 and one-hot rows 0 (definition of entropy)."""
    n = 5
    uniform = np.full((1, 1, n, n), 1.0 / n)
    one_hot = np.zeros((1, 1, n, n))
    one_hot[..., 0] = 1.0
    att = np.concatenate([uniform, one_hot], axis=1)
    nats, norm = rollout.head_entropy(att)
    np.testing.assert_allclose(norm, [[1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(nats[0, 0], np.log(n))


def test_head_entropy_causal_normalises_by_visible_keys():
    """Uniform causal rows: row i spreads over i+1 keys, so its normalised entropy is 1."""
    n = 4
    att = np.tril(np.ones((n, n)))
    att = (att / att.sum(-1, keepdims=True))[None, None]
    assert rollout.is_causal(att)
    _, norm = rollout.head_entropy(att)
    assert norm[0, 0] == pytest.approx(1.0)


def test_bad_attention_shape_is_a_usage_error():
    """A non-square attention tensor is rejected with a one-line UsageError."""
    with pytest.raises(UsageError, match="shape"):
        rollout.validate_attentions(np.ones((2, 2, 3, 4)))
