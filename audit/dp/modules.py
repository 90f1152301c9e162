"""Make a transformers model trainable with Opacus, and undo the changes before saving.

Known pitfalls handled here (see DESIGN.md):
- GPT-2's ``Conv1D`` has no Opacus grad sampler (Opacus would fall back to slow functorch); it is
  swapped for an equivalent ``nn.Linear`` for training and swapped back before ``save_pretrained``.
- Layers Opacus cannot train (BatchNorm, ...) are replaced by ``ModuleValidator.fix``; whatever
  is still unsupported afterwards is a one-line error naming the module.
- Ghost clipping cannot handle tied weights (e.g. GPT-2's ``lm_head`` tied to ``wte``): the mode
  falls back to ``hooks`` with a message.
"""

from __future__ import annotations

from typing import Any, Callable

from audit.errors import usage


def swap_conv1d_to_linear(model: Any) -> list[str]:
    """Replace every transformers ``Conv1D`` by an ``nn.Linear`` with the same function.

    Returns the dotted names of the swapped modules (needed by :func:`swap_linear_to_conv1d`).
    """
    import torch
    from transformers.pytorch_utils import Conv1D

    names = [n for n, m in model.named_modules() if isinstance(m, Conv1D)]
    for name in names:
        conv = model.get_submodule(name)
        n_in, n_out = conv.weight.shape
        lin = torch.nn.Linear(n_in, n_out, bias=conv.bias is not None,
                              device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(conv.weight.t())
            if conv.bias is not None:
                lin.bias.copy_(conv.bias)
        _set_submodule(model, name, lin)
    return names


def swap_linear_to_conv1d(model: Any, names: list[str]) -> None:
    """Undo :func:`swap_conv1d_to_linear` for the modules called ``names``."""
    import torch
    from transformers.pytorch_utils import Conv1D

    for name in names:
        lin = model.get_submodule(name)
        conv = Conv1D(lin.out_features, lin.in_features).to(lin.weight.device, lin.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(lin.weight.t())
            if lin.bias is not None:
                conv.bias.copy_(lin.bias)
        _set_submodule(model, name, conv)


def _set_submodule(model: Any, name: str, new: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def tied_parameters(model: Any) -> list[list[str]]:
    """Groups of parameter names that share one tensor (tied or shared weights)."""
    owners: dict[int, list[str]] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for p_name, param in module.named_parameters(recurse=False, remove_duplicate=False):
            if param.requires_grad:
                full = f"{mod_name}.{p_name}" if mod_name else p_name
                owners.setdefault(id(param), []).append(full)
    return [names for names in owners.values() if len(names) > 1]


def fix_for_opacus(model: Any) -> Any:
    """Validate ``model`` for Opacus, fixing what ModuleValidator can; a one-line error otherwise."""
    from opacus.validators import ModuleValidator

    model.train()
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        model = ModuleValidator.fix(model)
        errors = ModuleValidator.validate(model, strict=False)
    if errors:
        first = " ".join(str(errors[0]).split())
        raise usage("train-dp", "--model", f"cannot be trained with DP-SGD: {first}",
                    "replace that module, or freeze its parameters")
    return model


def choose_grad_sample_mode(model: Any, requested: str,
                            log: Callable[[str], None]) -> str:
    """The grad-sample mode to use: ``requested``, or ``hooks`` when ghost clipping cannot work."""
    if requested != "ghost":
        return requested
    tied = tied_parameters(model)
    if tied:
        log(f"ghost clipping cannot handle tied weights ({' = '.join(tied[0])}); "
            "falling back to --grad-sample-mode hooks")
        return "hooks"
    return "ghost"
