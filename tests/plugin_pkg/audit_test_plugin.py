"""A third-party check package used by the tests: found only through its entry point."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from audit.registry import CheckOutput, check
from audit.results import ConfidenceInterval, GroupValue, Metric


class ConstParams(BaseModel):
    """Parameters of const_metric."""

    model_config = ConfigDict(extra="forbid")
    value: float
    ci_half_width: float = 0.0
    groups: dict[str, float] = {}
    higher_is_better: bool = True
    text: str = ""


@check("const_metric", area="test", params=ConstParams, requires=[{"generate"}, {"predictions"}])
def const_metric(ctx, params: ConstParams) -> CheckOutput:
    """Report a constant metric (a plugin check for tests).

    Purpose: exercise the plugin path, gates and comparisons.
    Method: returns params.value as metric `value`, with optional CI and groups.
    Citation: none.
    Limitations: a test fixture.
    """
    ci = ConfidenceInterval(low=params.value - params.ci_half_width,
                            high=params.value + params.ci_half_width) if params.ci_half_width else None
    groups = {g: GroupValue(value=v, ci=ConfidenceInterval(low=v - params.ci_half_width,
                                                           high=v + params.ci_half_width))
              for g, v in params.groups.items()} or None
    draw = float(ctx.rng.random())
    return CheckOutput(metrics=[Metric(name="value", value=params.value, ci=ci, by_group=groups,
                                       higher_is_better=params.higher_is_better),
                                Metric(name="draw", value=draw)],
                       evidence=[{"text": params.text}] if params.text else [])


class NoParams(BaseModel):
    """No parameters."""

    model_config = ConfigDict(extra="forbid")


@check("always_raises", area="test", params=NoParams)
def always_raises(ctx, params: NoParams) -> CheckOutput:
    """A check that raises mid-run (tests failure isolation)."""
    raise RuntimeError("boom from always_raises")


@check("needs_attentions", area="test", params=NoParams, requires={"attentions", "predict_proba"})
def needs_attentions(ctx, params: NoParams) -> CheckOutput:
    """A check whose needs the fake causal LM lacks (tests skipping)."""
    return CheckOutput()
