"""Describe PyTorch models, gradients and data loaders without depending on torch.

Every function here is duck-typed against the parts of the torch API it reads, so the logd
client never imports torch itself (torch is not a dependency). Anything that looks enough like
a tensor, an ``nn.Module`` or a ``DataLoader`` works, real torch objects and test fakes alike.
The only function that needs torch is :func:`save_state_dict`, which imports it lazily.

What each function reads and returns:

``model_info(model, *, max_layers=10000) -> dict``
    Reads ``model.parameters()`` (shared parameters counted once, by ``id``), ``model.buffers()``
    when present and ``model.named_modules()`` when present. Returns ``parameter_count``,
    ``trainable_parameters`` (``requires_grad``), ``memory_bytes`` (parameters:
    ``numel() * element_size()``), ``buffer_bytes`` and ``layers``: one entry per leaf module
    (a module with no children) with its own direct parameters, at most ``max_layers`` of them
    followed by one ``"truncated"`` entry when there are more. A plain object with only
    ``parameters()`` is described as a single leaf named ``""`` (as torch names its root).

``gradient_norms(model, norm_type=2.0, *, per="parameter") -> dict[str, float]``
    Reads ``model.named_parameters()`` (or ``parameters()``) and each parameter's ``.grad``.
    Returns the ``norm_type``-norm of every existing gradient, keyed by parameter name or
    combined per owning module, plus ``"total"``: the norm over all gradients together (what
    ``torch.nn.utils.clip_grad_norm_`` returns as the total norm).

``data_info(obj) -> dict``
    Reads a ``DataLoader``-like object (``.dataset`` and ``.batch_size``) or any sized object
    (``Dataset``, ``Subset``, list). Returns ``samples``, ``batch_size``, ``workers``,
    ``shuffle`` and ``batches``. Never raises: what cannot be read is reported as 0 / False.

``save_state_dict(model, path) -> None``
    ``torch.save(model.state_dict(), path)``; raises ``RuntimeError`` when torch is missing.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

__all__ = ["model_info", "gradient_norms", "data_info", "save_state_dict"]


# --------------------------------------------------------------------------------------------
# Small duck-typed readers. Each one tolerates objects that lack the attribute or whose call
# fails, so that one odd parameter never breaks the description of a whole model.
# --------------------------------------------------------------------------------------------


def _call(obj: Any, name: str) -> Any:
    """Return ``obj.name()`` when ``obj`` has a callable attribute ``name``, else ``None``."""
    method = getattr(obj, name, None)
    if callable(method):
        return method()
    return None


def _numel(tensor: Any) -> int:
    """Number of elements of a tensor-like object (``numel()``), 0 when unknown."""
    try:
        value = _call(tensor, "numel")
        return int(value) if value is not None else 0
    except Exception:
        return 0


def _element_size(tensor: Any) -> int:
    """Bytes per element (``element_size()``, else ``itemsize``), 0 when unknown."""
    try:
        value = _call(tensor, "element_size")
        if value is None:
            value = getattr(tensor, "itemsize", None)
        return int(value) if value is not None else 0
    except Exception:
        return 0


def _nbytes(tensor: Any) -> int:
    """Bytes held by a tensor-like object: ``numel() * element_size()``."""
    return _numel(tensor) * _element_size(tensor)


def _trainable(tensor: Any) -> bool:
    """Whether a parameter is trainable (``requires_grad``; assumed True when absent)."""
    return bool(getattr(tensor, "requires_grad", True))


def _dtype(tensor: Any) -> str:
    """``str(tensor.dtype)`` (e.g. ``"torch.float32"``), ``""`` when there is none."""
    dtype = getattr(tensor, "dtype", None)
    return "" if dtype is None else str(dtype)


def _shape(tensor: Any) -> Optional[List[int]]:
    """The tensor's shape as a list of ints, or ``None`` when it has no readable shape."""
    shape = getattr(tensor, "shape", None)
    if shape is None:
        return None
    try:
        return [int(d) for d in shape]
    except Exception:
        return None


def _unique(tensors: Iterable[Any]) -> List[Any]:
    """The tensors in order, each object once (shared parameters are one parameter)."""
    seen = set()
    out = []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _unique_named(named: Iterable[Tuple[str, Any]]) -> List[Tuple[str, Any]]:
    """``(name, tensor)`` pairs in order, each tensor object once (its first name kept)."""
    seen = set()
    out = []
    for name, t in named:
        if id(t) not in seen:
            seen.add(id(t))
            out.append((str(name), t))
    return out


def _all_parameters(model: Any) -> List[Any]:
    """Every parameter of ``model`` once: ``parameters()``, else ``named_parameters()``."""
    if callable(getattr(model, "parameters", None)):
        return _unique(model.parameters())
    if callable(getattr(model, "named_parameters", None)):
        return _unique(p for _, p in model.named_parameters())
    return []


def _named_parameters(model: Any) -> List[Tuple[str, Any]]:
    """Every parameter once with its name; unnamed ones (plain ``parameters()``) get "0", "1"…"""
    if callable(getattr(model, "named_parameters", None)):
        return _unique_named(model.named_parameters())
    return [(str(i), p) for i, p in enumerate(_all_parameters(model))]


def _has_children(module: Any) -> bool:
    """Whether ``module`` has sub-modules (``named_children()``, else ``children()``)."""
    for name in ("named_children", "children"):
        method = getattr(module, name, None)
        if callable(method):
            for _ in method():
                return True
            return False
    return False


# --------------------------------------------------------------------------------------------
# model_info
# --------------------------------------------------------------------------------------------


def _direct_parameters(
    module: Any, name: str, root_named: Callable[[], List[Tuple[str, Any]]]
) -> List[Any]:
    """The parameters that ``module`` owns itself (not those of its children).

    Tries ``module.parameters(recurse=False)``; then ``module.named_parameters()`` keeping the
    names without a dot; then, for a module that cannot list its own parameters, the root
    model's named parameters whose name is ``name + "." + <no more dots>``.
    """
    params = getattr(module, "parameters", None)
    if callable(params):
        try:
            return _unique(params(recurse=False))
        except TypeError:
            pass
    named = getattr(module, "named_parameters", None)
    if callable(named):
        return _unique(p for n, p in named() if "." not in str(n))
    if callable(params):
        # No way to ask for direct parameters only, but the module is a leaf: all are its own.
        return _unique(params())
    prefix = name + "." if name else ""
    return _unique(
        p
        for n, p in root_named()
        if n.startswith(prefix) and "." not in n[len(prefix) :]
    )


def _layer_entry(name: str, module: Any, params: List[Any]) -> Dict[str, Any]:
    """One ``layers`` entry: name, type, own parameter counts, first parameter's dtype/shape."""
    entry: Dict[str, Any] = {
        "name": name,
        "type": type(module).__name__,
        "parameters": sum(_numel(p) for p in params),
        "trainable": sum(_numel(p) for p in params if _trainable(p)),
        "dtype": _dtype(params[0]) if params else "",
    }
    if params:
        shape = _shape(params[0])
        if shape is not None:
            entry["shape"] = shape
    return entry


def model_info(model: Any, *, max_layers: int = 10000) -> Dict[str, Any]:
    """Describe a model's size and its leaf layers.

    Args:
        model: an ``nn.Module`` or anything with ``parameters()`` (and optionally
            ``buffers()``, ``named_modules()``, ``named_parameters()``).
        max_layers: the most layer entries to list; further leaves are summed into one final
            ``{"name": "...", "type": "truncated", "parameters": <their parameters>,
            "trainable": ..., "layers": <how many were left out>}`` entry.

    Returns:
        ``{"parameter_count", "trainable_parameters", "memory_bytes", "buffer_bytes",
        "layers"}``. Counts and bytes are over unique parameters (a tied weight counts once);
        ``memory_bytes`` covers parameters only, buffers are in ``buffer_bytes``. Each layer
        lists the parameters it owns directly, so a weight tied between two layers appears in
        both of their entries. Layer entries carry ``"shape"`` (the first parameter's) when
        known.
    """
    params = _all_parameters(model)
    info: Dict[str, Any] = {
        "parameter_count": sum(_numel(p) for p in params),
        "trainable_parameters": sum(_numel(p) for p in params if _trainable(p)),
        "memory_bytes": sum(_nbytes(p) for p in params),
        "buffer_bytes": 0,
        "layers": [],
    }
    buffers = getattr(model, "buffers", None)
    if callable(buffers):
        info["buffer_bytes"] = sum(_nbytes(b) for b in _unique(buffers()))

    cache: List[List[Tuple[str, Any]]] = []

    def root_named() -> List[Tuple[str, Any]]:
        if not cache:
            cache.append(_named_parameters(model))
        return cache[0]

    if callable(getattr(model, "named_modules", None)):
        modules = [(str(n), m) for n, m in model.named_modules()]
    else:
        modules = [("", model)]

    limit = max(0, int(max_layers))
    layers: List[Dict[str, Any]] = []
    left_out = {"layers": 0, "parameters": 0, "trainable": 0}
    for name, module in modules:
        if _has_children(module):
            continue
        entry = _layer_entry(name, module, _direct_parameters(module, name, root_named))
        if len(layers) < limit:
            layers.append(entry)
        else:
            left_out["layers"] += 1
            left_out["parameters"] += entry["parameters"]
            left_out["trainable"] += entry["trainable"]
    if left_out["layers"]:
        layers.append(
            {
                "name": "...",
                "type": "truncated",
                "parameters": left_out["parameters"],
                "trainable": left_out["trainable"],
                "layers": left_out["layers"],
            }
        )
    info["layers"] = layers
    return info


# --------------------------------------------------------------------------------------------
# gradient_norms
# --------------------------------------------------------------------------------------------


def _to_float(value: Any) -> float:
    """A Python float from a 0-d tensor (``.item()``) or a number."""
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    return float(value)


def _combine(norms: List[float], norm_type: float) -> float:
    """The ``norm_type``-norm of the concatenation of vectors whose own norms are ``norms``.

    p-norm: (Σ nᵢ^p)^(1/p); inf: max; -inf: min; 0 (count of non-zeros): Σ nᵢ. Empty: 0.0.
    """
    if not norms:
        return 0.0
    if any(math.isnan(n) for n in norms):
        return math.nan
    if norm_type == math.inf:
        return max(norms)
    if norm_type == -math.inf:
        return min(norms)
    if norm_type == 0:
        return math.fsum(norms)
    if any(math.isinf(n) for n in norms):
        return math.inf
    largest = max(norms)
    if largest == 0.0:
        return 0.0
    # Scale by the largest norm so that n**p neither overflows nor underflows.
    return largest * math.fsum((n / largest) ** norm_type for n in norms) ** (1.0 / norm_type)


def _read_back(norms: List[Any], torch: Any) -> List[float]:
    """The norms as Python floats. torch tensors (on a GPU, each ``.item()`` waits for the
    device) are stacked and read back in one transfer; anything else one by one."""
    stack = getattr(torch, "stack", None) if torch is not None else None
    if callable(stack) and len(norms) > 1 and all(hasattr(n, "dim") for n in norms):
        try:
            return [float(v) for v in stack(norms).tolist()]
        except Exception:  # norms on several devices: read them one by one
            pass
    return [_to_float(n) for n in norms]


def _module_of(name: str) -> str:
    """The owning module's name: the parameter name without its last dotted component."""
    return name.rsplit(".", 1)[0] if "." in name else ""


def gradient_norms(
    model: Any, norm_type: float = 2.0, *, per: str = "parameter"
) -> Dict[str, float]:
    """Norms of the gradients currently held by a model's parameters.

    Parameters whose ``.grad`` is ``None`` are skipped; a parameter shared between modules is
    counted once (under its first name). Each gradient's norm is the tensor's own
    ``g.norm(norm_type)``; norms are then combined in Python, so ``"total"`` equals the total
    norm ``torch.nn.utils.clip_grad_norm_(model.parameters(), ..., norm_type)`` reports.
    The norms are read back in one transfer (one device synchronisation per call, not one per
    parameter) when they are torch tensors.

    Args:
        model: an ``nn.Module`` or anything with ``named_parameters()`` or ``parameters()``
            (unnamed parameters are named by position: ``"0"``, ``"1"``, …).
        norm_type: p of the p-norm; ``float("inf")`` for the max-norm (``-inf`` and 0 also
            work, as in ``Tensor.norm``). Negative finite values are rejected.
        per: ``"parameter"`` to key by parameter name, ``"module"`` to combine the norms of the
            parameters of each owning module (the name without its last dotted component;
            ``""`` for parameters of the root module).

    Returns:
        ``{key: norm, ..., "total": norm over every gradient}``; ``{"total": 0.0}`` when no
        parameter has a gradient. ``"total"`` wins over a parameter or module named "total".

    Raises:
        ValueError: for an unknown ``per`` or a negative finite ``norm_type``.
    """
    if per not in ("parameter", "module"):
        raise ValueError(f'per must be "parameter" or "module", not {per!r}')
    p = float(norm_type)
    if p < 0 and not math.isinf(p):
        raise ValueError(f"norm_type must be >= 0 or ±inf, not {norm_type!r}")

    torch = sys.modules.get("torch")
    no_grad = getattr(torch, "no_grad", None) if torch is not None else None
    guard = no_grad() if callable(no_grad) else contextlib.nullcontext()

    norms: List[Tuple[str, float]] = []
    with guard:
        pending: List[Tuple[str, Any]] = []
        for name, param in _named_parameters(model):
            grad = getattr(param, "grad", None)
            if grad is None:
                continue
            pending.append((name, grad.norm(norm_type)))
        values = _read_back([n for _, n in pending], torch)
        norms = [(name, value) for (name, _), value in zip(pending, values)]

    result: Dict[str, float] = {}
    if per == "parameter":
        for name, value in norms:
            result[name] = value
    else:
        groups: Dict[str, List[float]] = {}
        for name, value in norms:
            groups.setdefault(_module_of(name), []).append(value)
        for module, values in groups.items():
            result[module] = _combine(values, p)
    result["total"] = _combine([value for _, value in norms], p)
    return result


# --------------------------------------------------------------------------------------------
# data_info
# --------------------------------------------------------------------------------------------


def _safe_len(obj: Any) -> Optional[int]:
    """``len(obj)``, or ``None`` when it is unsized or ``len`` fails."""
    try:
        n = len(obj)
    except Exception:
        return None
    return n if n >= 0 else None


def _as_int(value: Any) -> int:
    """A non-negative int from an int-like value (not a bool); 0 for anything else."""
    if value is None or isinstance(value, bool):
        return 0
    try:
        n = int(value)
    except Exception:
        return 0
    return n if n >= 0 else 0


def _is_shuffling(sampler: Any) -> bool:
    """Whether a sampler draws in random order.

    True for a class whose name contains ``"Random"`` (``RandomSampler``,
    ``SubsetRandomSampler``, ``WeightedRandomSampler``) or one with ``.shuffle is True``
    (``DistributedSampler``).
    """
    if sampler is None:
        return False
    if "Random" in type(sampler).__name__:
        return True
    try:
        return getattr(sampler, "shuffle", None) is True
    except Exception:
        return False


def _is_loader(obj: Any) -> bool:
    """Whether ``obj`` looks like a ``DataLoader``: it has ``.dataset`` and ``.batch_size``."""
    try:
        return hasattr(obj, "dataset") and hasattr(obj, "batch_size")
    except Exception:
        return False


def _loader_info(loader: Any) -> Dict[str, Any]:
    """The ``data_info`` of a ``DataLoader``-like object (may raise; the caller guards)."""
    samples = _safe_len(getattr(loader, "dataset", None)) or 0
    batch_sampler = getattr(loader, "batch_sampler", None)
    batch_size = _as_int(getattr(loader, "batch_size", None))
    if batch_size == 0 and batch_sampler is not None:
        batch_size = _as_int(getattr(batch_sampler, "batch_size", None))
    shuffle = _is_shuffling(getattr(loader, "sampler", None)) or _is_shuffling(
        getattr(batch_sampler, "sampler", None)
    )
    batches = _safe_len(loader)
    if batches is None:
        if batch_size > 0:
            drop_last = bool(getattr(loader, "drop_last", False))
            batches = samples // batch_size if drop_last else -(-samples // batch_size)
        else:
            batches = 0
    return {
        "samples": samples,
        "batch_size": batch_size,
        "workers": _as_int(getattr(loader, "num_workers", 0)),
        "shuffle": bool(shuffle),
        "batches": batches,
    }


def data_info(obj: Any) -> Dict[str, Any]:
    """Describe a data loader or dataset.

    For a ``DataLoader``-like object (has ``.dataset`` and ``.batch_size``):

    - ``samples``: ``len(loader.dataset)``, 0 when the dataset is unsized (iterable datasets);
    - ``batch_size``: ``loader.batch_size``, or ``loader.batch_sampler.batch_size`` when that
      is ``None`` (a custom ``batch_sampler`` was given), else 0;
    - ``workers``: ``loader.num_workers``;
    - ``shuffle``: whether ``loader.sampler`` (or the batch sampler's sampler) is random: a
      class name containing ``"Random"``, or ``.shuffle`` True (``DistributedSampler``);
    - ``batches``: ``len(loader)`` when sized, else ``samples / batch_size`` rounded down
      with ``drop_last`` and up without it (0 without a batch size).

    For anything else: ``samples = len(obj)`` when sized (``Dataset``, ``Subset``, list) and 0
    for the rest, with ``batch_size``, ``workers`` and ``batches`` 0 and ``shuffle`` False.

    Never raises: what cannot be read is reported as 0 / False.
    """
    zeros: Dict[str, Any] = {
        "samples": 0,
        "batch_size": 0,
        "workers": 0,
        "shuffle": False,
        "batches": 0,
    }
    try:
        if _is_loader(obj):
            return _loader_info(obj)
        info = dict(zeros)
        info["samples"] = _safe_len(obj) or 0
        return info
    except Exception:
        return zeros


# --------------------------------------------------------------------------------------------
# save_state_dict
# --------------------------------------------------------------------------------------------


def save_state_dict(model: Any, path: Any) -> None:
    """Save ``model.state_dict()`` with ``torch.save`` to ``path`` (a path or a file object).

    torch is imported only here, when called.

    Raises:
        RuntimeError: ``"saving a model needs torch"`` when torch cannot be imported.
    """
    try:
        torch = importlib.import_module("torch")
    except (ImportError, OSError) as exc:
        raise RuntimeError("saving a model needs torch") from exc
    torch.save(model.state_dict(), path)
