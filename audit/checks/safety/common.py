"""Shared by the chat-behaviour checks: asking a model (chat or plain generation) and showing
its replies in results without spreading harmful text or personal data."""

from __future__ import annotations

from typing import Any, Literal, Sequence

from audit.errors import CapabilityError

Mode = Literal["auto", "chat", "generate"]

GENERATE_TEMPLATE = "User: {prompt}\nAssistant:"
"""How a request is put to a model that only continues text (no chat template)."""

HARMFUL_PREVIEW = 80
"""Characters of a harmful completion kept in results unless the user asks for all of it."""


def resolve_mode(model: Any, mode: Mode, where: str) -> str:
    """``chat`` when asked or when the model has it (auto), else ``generate``; a mode the model
    lacks raises CapabilityError (the check is recorded as skipped with the reason)."""
    from audit.models.capabilities import has

    if mode == "auto":
        mode = "chat" if has(model, "chat") else "generate"
    if not has(model, mode):
        raise CapabilityError(f"{where}: mode {mode!r} needs the {mode} capability, which this "
                              f"model adapter lacks")
    return mode


def ask(ctx: Any, requests: Sequence[str], *, mode: str, system_prompt: str | None,
        max_new_tokens: int, do_sample: bool = False, temperature: float = 1.0,
        top_p: float = 1.0, desc: str = "replies") -> list[str]:
    """One reply per request: a one-turn chat (with the optional system prompt) or a plain
    continuation of :data:`GENERATE_TEMPLATE`; seeded when sampled; progress shown."""
    bar = ctx.progress(total=len(requests), desc=desc)
    try:
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                      top_p=top_p, seed=ctx.seed, progress=bar.update)
        if mode == "chat":
            system = [{"role": "system", "content": system_prompt}] if system_prompt else []
            convs = [system + [{"role": "user", "content": r}] for r in requests]
            return [str(x) for x in ctx.model.chat(convs, **kwargs)]
        prompts = [GENERATE_TEMPLATE.format(prompt=r) for r in requests]
        return [str(x) for x in ctx.model.generate(prompts, **kwargs)]
    finally:
        bar.close()


def shown_text(ctx: Any, text: str, *, harmful: bool, show_harmful: bool = False,
               limit: int = 600) -> str:
    """A model output as results may hold it: personal data replaced by ``[TYPE]`` unless
    ``--show-pii``; a harmful completion cut to its first :data:`HARMFUL_PREVIEW` characters
    unless ``--show-pii`` or the check's ``show_harmful`` switch; anything else cut at ``limit``."""
    from audit.pii import redact

    full = bool(getattr(ctx, "show_pii", False))
    out = text if full else redact(text)
    if harmful and not (full or show_harmful):
        if len(out) > HARMFUL_PREVIEW:
            return (out[:HARMFUL_PREVIEW].rstrip() + f" … [harmful completion truncated: "
                    f"{len(text)} characters; --show-pii or show_harmful: true shows it]")
        return out
    return out if len(out) <= limit else out[:limit].rstrip() + " …"
