"""`audit train-dp`: clipping, accounting, determinism, the baseline, outputs and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.dp.config import TrainConfig
from audit.errors import UsageError


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny labelled CSV and a text file over the tiny models' vocabulary."""
    import pandas as pd

    from tests.tiny_models import WORDS

    root = tmp_path_factory.mktemp("dp_data")
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) for _ in range(48)]
    labels = [int(("happy" in t) or ("good" in t) or ("calm" in t)) for t in texts]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(root / "d.csv", index=False)
    (root / "d.txt").write_text("\n".join(texts) + "\n")
    return {"csv": root / "d.csv", "txt": root / "d.txt"}


def _cfg(model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model=str(model), data=str(data), output=str(out), max_length=8, batch_size=8,
                physical_batch_size=8, epochs=1, noise_multiplier=1.0, overwrite=True,
                eval_fraction=0.25, max_train_samples=24)
    base.update(kw)
    return TrainConfig(**base)


def _run(cfg: TrainConfig, hooks=None):
    from audit.dp.train import train

    return train(cfg, hooks=hooks)


def _clip_probe(optimizer, seen: list[tuple[float, float]], module: list) -> None:
    """Wrap the optimizer's accumulation so each call's increment of ``summed_grad`` is measured.

    With physical batch size 1 every call handles exactly one example, so the increment is that
    example's clipped gradient, measured from outside Opacus, before noise is added.
    """
    import torch

    ghost = hasattr(optimizer, "accumulate") and type(optimizer).__name__.endswith("Clipping")
    name = "accumulate" if ghost else "clip_and_accumulate"
    original = getattr(optimizer, name)

    def probed() -> None:
        before = [None if p.summed_grad is None else p.summed_grad.clone()
                  for p in optimizer.params]
        if ghost:  # p.grad is already clipped; the raw norm is the one ghost clipping computed
            raw = module[0].per_sample_gradient_norms.sum()
        else:
            raw = torch.sqrt(sum((p.grad_sample.detach() ** 2).sum() for p in optimizer.params))
        original()
        inc = [p.summed_grad - (0 if b is None else b) for p, b in zip(optimizer.params, before)]
        seen.append((float(raw), float(torch.sqrt(sum((g ** 2).sum() for g in inc)))))

    setattr(optimizer, name, probed)


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_per_sample_gradients_are_clipped(mode, tiny_classifier_dir, data_files, tmp_path):
    """Hook-based, independent of Opacus' own bookkeeping: with one example per physical batch,
    the increment of the clipped-gradient sum (before noise) is that example's clipped gradient;
    its norm (computed here with torch) is <= max_grad_norm for every example, and some raw
    per-example norms exceed it, so clipping really happened."""
    seen: list[tuple[float, float]] = []
    c = 0.05
    cfg = _cfg(tiny_classifier_dir, data_files["csv"], tmp_path / mode, physical_batch_size=1,
               max_grad_norm=c, grad_sample_mode=mode, max_train_samples=8)
    module: list = []
    result = _run(cfg, hooks={"optimizer": lambda opt: _clip_probe(opt, seen, module),
                              "module": module.append})
    assert result.ledger["grad_sample_mode"] == mode
    nonempty = [(raw, clipped) for raw, clipped in seen if raw > 0]
    assert len(nonempty) >= 4
    assert all(clipped <= c * (1 + 1e-4) for _, clipped in nonempty)
    assert any(raw > c for raw, _ in nonempty)
    for raw, clipped in nonempty:  # clipping scales to exactly C, or leaves small ones alone
        assert clipped == pytest.approx(min(raw, c), rel=1e-3)


def _noise_probe(optimizer, stds: list[float]) -> None:
    """Wrap the optimizer's add_noise so the noise it really adds is measured: the standard
    deviation, over all trainable elements, of (gradient after add_noise - clipped sum)."""
    import torch

    original = optimizer.add_noise

    def probed() -> None:
        original()
        noise = torch.cat([(p.grad - p.summed_grad.view_as(p)).flatten()
                           for p in optimizer.params])
        stds.append(float(noise.std()))

    optimizer.add_noise = probed


def test_ledger_epsilon_matches_the_noise_actually_added(tiny_classifier_dir, data_files,
                                                         tmp_path):
    """PRV accountant. Rewritten: it used to compare the ledger's epsilon only with a fresh
    PRVAccountant fed the ledger's own logged numbers, which passes when the logged noise
    multiplier is not the one used (or no noise is added at all). Now the noise each step
    really adds is measured from outside Opacus: its standard deviation equals the ledger's
    noise multiplier x clip norm within 3 % at every step, and the ledger's epsilon equals a
    fresh PRVAccountant fed that measured multiplier, the sample rate and 2 epochs' steps."""
    from opacus.accountants import PRVAccountant

    from tests.dp_helpers import skip_noise

    stds: list[float] = []
    cfg = _cfg(tiny_classifier_dir, data_files["csv"], tmp_path / "prv", accountant="prv",
               max_train_samples=16, epochs=2, max_grad_norm=0.5, noise_multiplier=1.3)
    led = _run(cfg, hooks={"optimizer": lambda opt: _noise_probe(opt, stds)}).ledger
    assert len(stds) == led["steps"] == 2 * round(1 / led["sample_rate"])
    measured = float(np.mean(stds)) / led["max_grad_norm"]
    assert all(s == pytest.approx(1.3 * 0.5, rel=0.03) for s in stds)
    acct = PRVAccountant()
    acct.history = [(measured, led["sample_rate"], led["steps"])]
    assert led["epsilon"] == pytest.approx(acct.get_epsilon(delta=led["delta"]), rel=0.03)
    assert led["noise_multiplier"] == pytest.approx(measured, rel=0.03)
    assert led["delta"] < 1 / led["dataset"]["size"]
    quiet: list[float] = []  # the probe has teeth: with the noise skipped it measures zero
    _run(cfg, hooks={"optimizer": lambda opt: (skip_noise(opt), _noise_probe(opt, quiet))})
    assert quiet and max(quiet) == 0.0


def test_same_seed_same_ledger_and_baseline_same_batches(tiny_classifier_dir, data_files,
                                                           tmp_path):
    """Same seed -> byte-identical ledger (target-epsilon path); the ledger's epsilon equals a
    fresh Opacus RDPAccountant fed the logged (noise multiplier, sample rate, steps) to 1e-6;
    --no-dp with the same seed draws the same Poisson batches (equal data_order_sha256); the
    sampler with another seed draws other batches."""
    from opacus.accountants import RDPAccountant

    kw = dict(noise_multiplier=None, target_epsilon=4.0, grad_sample_mode="ghost")
    a = _run(_cfg(tiny_classifier_dir, data_files["csv"], tmp_path / "a", **kw))
    b = _run(_cfg(tiny_classifier_dir, data_files["csv"], tmp_path / "b", **kw))
    text = (a.output / "privacy_ledger.json").read_text()
    assert text == (b.output / "privacy_ledger.json").read_text()
    assert a.metrics["eval_loss"] == b.metrics["eval_loss"]
    led = a.ledger
    assert led["epsilon"] <= 4.0 + 1e-6 and led["epsilon"] > 3.0
    acct = RDPAccountant()
    acct.history = [(led["noise_multiplier"], led["sample_rate"], led["steps"])]
    assert led["epsilon"] == pytest.approx(acct.get_epsilon(delta=led["delta"]), abs=1e-6)
    base = _run(_cfg(tiny_classifier_dir, data_files["csv"], tmp_path / "base", no_dp=True))
    assert base.ledger["dp"] is False and base.ledger["epsilon"] is None
    assert base.ledger["data_order_sha256"] == a.ledger["data_order_sha256"]
    assert base.ledger["steps"] == a.ledger["steps"]
    from audit.dp.loop import make_loader

    draws = []
    for seed in (0, 0, 1):
        _, sampler, _ = make_loader(list(range(24)), 8, seed)
        draws.append([list(b) for b in sampler])
    assert draws[0] == draws[1] and draws[0] != draws[2]


def test_outputs_and_causal_lm_round_trip(tiny_gpt2_dir, data_files, tmp_path):
    """GPT-2 (tied embeddings, Conv1D): ghost falls back to hooks with a message, and the saved
    folder reloads with transformers and reproduces the recorded held-out loss (so Conv1D was
    restored correctly); the folder holds safetensors, ledger, metrics and split."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit.dp.data import encode, read_texts
    from audit.dp.evaluate import per_example_losses

    res = _run(_cfg(tiny_gpt2_dir, data_files["txt"], tmp_path / "lm", grad_sample_mode="ghost",
                    max_train_samples=16))
    assert res.ledger["grad_sample_mode"] == "hooks" and res.ledger["model"]["task"] == "causal_lm"
    assert any("tied weights" in m for m in res.messages)
    names = {p.name for p in res.output.iterdir()}
    assert {"model.safetensors", "privacy_ledger.json", "train_metrics.json", "split.json"} <= names
    split = json.loads((res.output / "split.json").read_text())
    texts = read_texts(data_files["txt"], label_column=None).texts
    model = AutoModelForCausalLM.from_pretrained(res.output)
    tok = AutoTokenizer.from_pretrained(res.output)
    ds = encode(tok, [texts[i] for i in split["eval_rows"]], None, 8, "causal_lm")
    loss, _ = per_example_losses(model, ds, "causal_lm", 8)
    assert float(loss.mean()) == pytest.approx(res.metrics["eval_loss"], abs=1e-5)
    assert not set(split["train_rows"]) & set(split["eval_rows"])
    assert torch.is_tensor(model.lm_head.weight)


@pytest.mark.parametrize("flags,match", [
    (["--epsilon", "0"], "--epsilon"), (["--epsilon", "-1"], "--epsilon"),
    (["--epsilon", "nan"], "--epsilon"), (["--epsilon", "8", "--delta", "1"], "--delta"),
    (["--epsilon", "8", "--delta", "1.5"], "--delta"),
    (["--epsilon", "8", "--delta", "0"], "--delta"),
    ([], "neither a target epsilon"), (["--noise-multiplier", "-2"], "--noise-multiplier"),
    (["--epsilon", "8", "--max-grad-norm", "0"], "--max-grad-norm"),
])
def test_bad_privacy_input_is_a_one_line_usage_error(flags, match, data_files, tmp_path, capsys):
    """epsilon <= 0, delta outside (0, 1) and similar: exit 4 with one line naming the flag."""
    from audit.cli import main

    code = main(["train-dp", "--model", str(tmp_path), "--data", str(data_files["csv"]),
                 "--out", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 4 and match in err and len(err.splitlines()) == 1


def test_config_validation_directly() -> None:
    """The same rules through the library API raise UsageError."""
    with pytest.raises(UsageError, match="--delta"):
        TrainConfig(model="m", data="d", output="o", target_epsilon=1.0, delta=1.0).validate()
    with pytest.raises(UsageError, match="--epsilon"):
        TrainConfig(model="m", data="d", output="o", target_epsilon=0.0).validate()
    TrainConfig(model="m", data="d", output="o", no_dp=True).validate()


def test_unfixable_module_error_names_the_module(monkeypatch) -> None:
    """BatchNorm is replaced by ModuleValidator.fix; a module that stays unsupported is a
    one-line usage error that names it."""
    import torch
    from opacus.validators import ModuleValidator
    from opacus.validators.errors import UnsupportedModuleError

    from audit.dp.modules import fix_for_opacus

    fixed = fix_for_opacus(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)))
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in fixed.modules())
    monkeypatch.setattr(ModuleValidator, "validate", classmethod(
        lambda cls, module, strict=False: [UnsupportedModuleError("encoder.weird: WeirdLayer")]))
    with pytest.raises(UsageError, match="encoder.weird"):
        fix_for_opacus(torch.nn.Linear(2, 2))


@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_per_sample_gradients_match_autograd_with_tied_embeddings(tiny_gpt2_dir):
    """Independent: for GPT-2 (lm_head tied to wte, Conv1D swapped for Linear, position_ids
    passed per sample) Opacus' per-example gradients equal autograd's gradient of each example
    computed alone, for every parameter, the tied one included."""
    import copy

    import torch
    from opacus import GradSampleModule
    from transformers import GPT2LMHeadModel

    from audit.dp.model import model_inputs, per_sample_loss
    from audit.dp.modules import swap_conv1d_to_linear, tied_parameters

    model = GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).train()  # Opacus hooks need train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    assert tied_parameters(model) and swap_conv1d_to_linear(model)
    ref = copy.deepcopy(model)
    ids = torch.randint(2, 40, (3, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    wrapped = GradSampleModule(model, loss_reduction="sum")
    logits = wrapped(**model_inputs(model.config, ids, mask)).logits
    per_sample_loss("causal_lm", logits, ids).sum().backward()
    ref_params = dict(ref.named_parameters())
    for i in range(3):
        ref.zero_grad()
        out = ref(**model_inputs(ref.config, ids[i:i + 1], mask[i:i + 1])).logits
        per_sample_loss("causal_lm", out, ids[i:i + 1]).sum().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.grad_sample[i], ref_params[name].grad,
                                       rtol=1e-4, atol=1e-6)


def test_train_only_restricts_trainable_parameters(tiny_classifier_dir):
    """--train-only keeps exactly the parameters with the given name prefixes trainable; a
    prefix that matches nothing is a usage error naming real prefixes."""
    from transformers import AutoModelForSequenceClassification

    from audit.dp.loop import restrict_trainable

    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir)
    restrict_trainable(model, ["classifier."])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    with pytest.raises(UsageError, match="bert.encoder"):
        restrict_trainable(model, ["nothing."])


def _train_cli(model: Path, data: Path, out: Path, *flags: str) -> dict:
    """`audit train-dp` on the smallest setup (8 rows, batch 8, max length 8); train_metrics.json."""
    from audit.cli import main

    code = main(["train-dp", "--model", str(model), "--data", str(data), "--out", str(out),
                 "--max-length", "8", "--batch-size", "8", "--physical-batch-size", "8",
                 "--noise-multiplier", "1.0", "--eval-fraction", "0.25",
                 "--max-train-samples", "8", "--quiet", *flags])
    assert code == 0
    return json.loads((out / "train_metrics.json").read_text())


def test_train_dp_energy_goes_to_metrics_not_the_ledger(tiny_classifier_dir, data_files,
                                                        tmp_path):
    """`train-dp --country FRA` records energy and CO2e in train_metrics.json; CO2e / energy is
    France's grid intensity read independently from codecarbon's bundled table (g/kWh); two
    measured runs and a --no-carbon run with the same seed write byte-identical ledgers, which
    hold no energy figure; --no-carbon records energy as not measured (null, never 0)."""
    pytest.importorskip("codecarbon")
    import codecarbon

    table = json.loads((Path(codecarbon.__file__).parent / "data" / "private_infra"
                        / "global_energy_mix.json").read_text())
    runs = {name: _train_cli(tiny_classifier_dir, data_files["csv"], tmp_path / name, *flags)
            for name, flags in [("a", ["--country", "FRA"]), ("b", ["--country", "fra"]),
                                ("off", ["--no-carbon"])]}
    env = runs["a"]["environment"]
    assert env["energy_kwh"] > 0 and env["country_iso_code"] == "FRA" and env["cpu_model"]
    assert env["co2e_kg"] * 1000 / env["energy_kwh"] == pytest.approx(
        table["FRA"]["carbon_intensity"], rel=1e-6)
    assert runs["b"]["environment"]["co2e_kg"] > 0
    assert runs["off"]["environment"]["energy_kwh"] is None
    assert runs["off"]["environment"]["co2e_kg"] is None
    assert "--no-carbon" in runs["off"]["environment"]["note"]
    ledgers = [(tmp_path / n / "privacy_ledger.json").read_bytes() for n in ("a", "b", "off")]
    assert ledgers[0] == ledgers[1] == ledgers[2]
    assert b"energy" not in ledgers[0] and b"co2" not in ledgers[0]


def test_train_dp_energy_without_country_and_bad_country(tiny_classifier_dir, data_files,
                                                         tmp_path, capsys):
    """No --country: energy only (CO2e null, with the reason); an unknown country is a one-line
    usage error (exit 4) rather than codecarbon's silent world-average fallback."""
    pytest.importorskip("codecarbon")
    from audit.cli import main

    env = _train_cli(tiny_classifier_dir, data_files["csv"], tmp_path / "none")["environment"]
    assert env["energy_kwh"] > 0 and env["co2e_kg"] is None and "country" in env["note"]
    capsys.readouterr()  # drop the first run's progress output
    code = main(["train-dp", "--model", str(tiny_classifier_dir), "--data",
                 str(data_files["csv"]), "--out", str(tmp_path / "x"), "--noise-multiplier", "1",
                 "--country", "XYZ"])
    err = capsys.readouterr().err.strip()
    assert code == 4 and "--country" in err and len(err.splitlines()) == 1
