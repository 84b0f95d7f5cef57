"""Tests for logd.torch_helpers: against small fakes of the torch API, and real torch if present."""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

try:
    from logd import torch_helpers as th
except ImportError:  # logd/__init__.py not written yet: run with PYTHONPATH=src/logd
    import torch_helpers as th


# --------------------------------------------------------------------------------------------
# Fakes mimicking the surface of torch that torch_helpers reads.
# --------------------------------------------------------------------------------------------


class FakeScalar:
    """A 0-d tensor: only ``item()``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


class FakeTensor:
    """A flat tensor of Python floats with the attributes torch_helpers reads."""

    def __init__(
        self,
        values: Sequence[float],
        *,
        shape: Optional[Tuple[int, ...]] = None,
        dtype: str = "torch.float32",
        element_size: int = 4,
        requires_grad: bool = True,
    ) -> None:
        self.values = list(values)
        self.shape = tuple(shape) if shape is not None else (len(self.values),)
        self.dtype = dtype
        self._element_size = element_size
        self.requires_grad = requires_grad
        self.grad: Optional[FakeTensor] = None

    def numel(self) -> int:
        return len(self.values)

    def element_size(self) -> int:
        return self._element_size

    def norm(self, p: float = 2.0) -> FakeScalar:
        return FakeScalar(reference_norm(self.values, p))


def reference_norm(values: Sequence[float], p: float) -> float:
    """The p-norm of a flat list, written independently of torch_helpers."""
    if p == math.inf:
        return max((abs(v) for v in values), default=0.0)
    return sum(abs(v) ** p for v in values) ** (1.0 / p)


def param(n: int, *, grad: Optional[Sequence[float]] = None, **kwargs: Any) -> FakeTensor:
    """A parameter of ``n`` ones, optionally holding a gradient."""
    t = FakeTensor([1.0] * n, **kwargs)
    if grad is not None:
        t.grad = FakeTensor(grad)
    return t


class FakeModule:
    """An ``nn.Module`` look-alike: parameters, buffers and children, named like torch names them."""

    def __init__(self, **members: Any) -> None:
        self._params: "OrderedDict[str, FakeTensor]" = OrderedDict()
        self._buffers: "OrderedDict[str, FakeTensor]" = OrderedDict()
        self._children: "OrderedDict[str, FakeModule]" = OrderedDict()
        for name, value in members.items():
            if isinstance(value, FakeModule):
                self._children[name] = value
            else:
                self._params[name] = value

    def add_buffer(self, name: str, tensor: FakeTensor) -> "FakeModule":
        self._buffers[name] = tensor
        return self

    def named_children(self) -> Iterator[Tuple[str, "FakeModule"]]:
        return iter(self._children.items())

    def children(self) -> Iterator["FakeModule"]:
        return iter(self._children.values())

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "FakeModule"]]:
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[Tuple[str, FakeTensor]]:
        # Like torch: each parameter object once, under its first name.
        seen = set()
        for module_name, module in self.named_modules(prefix) if recurse else [(prefix, self)]:
            for name, p in module._params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[FakeTensor]:
        # Deliberately NOT deduplicated: torch_helpers must dedupe shared parameters itself.
        for _, module in self.named_modules() if recurse else [("", self)]:
            yield from module._params.values()

    def buffers(self) -> Iterator[FakeTensor]:
        for _, module in self.named_modules():
            yield from module._buffers.values()


class Linear(FakeModule):
    pass


class ReLU(FakeModule):
    pass


class Sequential(FakeModule):
    pass


class OldModule(FakeModule):
    """A module whose ``parameters()`` takes no ``recurse`` argument."""

    def parameters(self) -> Iterator[FakeTensor]:  # type: ignore[override]
        return super().parameters()


class PlainModel:
    """Not a module at all: only ``parameters()``."""

    def __init__(self, params: List[FakeTensor]) -> None:
        self._params = params

    def parameters(self) -> Iterator[FakeTensor]:
        return iter(self._params)


def mlp() -> FakeModule:
    """Sequential(Linear(3→4), ReLU, Sequential(Linear(4→2) frozen)) with a buffer."""
    return Sequential(
        **{
            "0": Linear(weight=param(12, shape=(4, 3)), bias=param(4)),
            "1": ReLU(),
            "2": Sequential(
                head=Linear(
                    weight=param(8, shape=(2, 4), requires_grad=False),
                    bias=param(2, requires_grad=False),
                )
            ),
        }
    ).add_buffer("running", FakeTensor([0.0] * 5, dtype="torch.float64", element_size=8))


# --------------------------------------------------------------------------------------------
# model_info
# --------------------------------------------------------------------------------------------


def test_model_info_counts_memory_and_leaf_layers() -> None:
    info = th.model_info(mlp())
    assert info["parameter_count"] == 12 + 4 + 8 + 2
    assert info["trainable_parameters"] == 12 + 4
    assert info["memory_bytes"] == (12 + 4 + 8 + 2) * 4
    assert info["buffer_bytes"] == 5 * 8
    assert info["layers"] == [
        {
            "name": "0",
            "type": "Linear",
            "parameters": 16,
            "trainable": 16,
            "dtype": "torch.float32",
            "shape": [4, 3],
        },
        {"name": "1", "type": "ReLU", "parameters": 0, "trainable": 0, "dtype": ""},
        {
            "name": "2.head",
            "type": "Linear",
            "parameters": 10,
            "trainable": 0,
            "dtype": "torch.float32",
            "shape": [2, 4],
        },
    ]


def test_model_info_layers_hold_only_direct_parameters() -> None:
    # A leaf-less parent with its own parameter: the parent is not listed, and the leaf's count
    # excludes the parent's parameter.
    model = Sequential(scale=param(1), inner=Linear(weight=param(6)))
    info = th.model_info(model)
    assert [(layer["name"], layer["parameters"]) for layer in info["layers"]] == [("inner", 6)]
    assert info["parameter_count"] == 7


def test_model_info_counts_shared_parameters_once() -> None:
    shared = param(10, shape=(2, 5))
    model = Sequential(enc=Linear(weight=shared), dec=Linear(weight=shared, bias=param(2)))
    # The fake's parameters() yields the shared weight twice: model_info must dedupe by id.
    assert sum(p.numel() for p in model.parameters()) == 22
    info = th.model_info(model)
    assert info["parameter_count"] == 12
    assert info["trainable_parameters"] == 12
    assert info["memory_bytes"] == 12 * 4
    # Each layer still reports the parameters it owns, tied or not.
    assert [(layer["name"], layer["parameters"]) for layer in info["layers"]] == [
        ("enc", 10),
        ("dec", 12),
    ]


def test_model_info_truncates_layers() -> None:
    model = Sequential(**{str(i): Linear(weight=param(i + 1)) for i in range(5)})
    info = th.model_info(model, max_layers=2)
    assert [layer["name"] for layer in info["layers"]] == ["0", "1", "..."]
    assert info["layers"][-1] == {
        "name": "...",
        "type": "truncated",
        "parameters": 3 + 4 + 5,
        "trainable": 3 + 4 + 5,
        "layers": 3,
    }
    assert info["parameter_count"] == 15
    # Exactly at the limit: nothing truncated.
    assert [layer["name"] for layer in th.model_info(model, max_layers=5)["layers"]] == list(
        "01234"
    )
    assert th.model_info(model, max_layers=0)["layers"] == [
        {"name": "...", "type": "truncated", "parameters": 15, "trainable": 15, "layers": 5}
    ]


def test_model_info_module_without_recurse_argument() -> None:
    model = Sequential(a=OldModule(weight=param(3)), b=Linear(weight=param(2)))
    info = th.model_info(model)
    assert [(layer["name"], layer["type"], layer["parameters"]) for layer in info["layers"]] == [
        ("a", "OldModule", 3),
        ("b", "Linear", 2),
    ]


def test_model_info_plain_object_with_parameters() -> None:
    model = PlainModel([param(3, dtype="torch.float16", element_size=2), param(5)])
    info = th.model_info(model)
    assert info["parameter_count"] == 8
    assert info["trainable_parameters"] == 8
    assert info["memory_bytes"] == 3 * 2 + 5 * 4
    assert info["buffer_bytes"] == 0
    assert info["layers"] == [
        {
            "name": "",
            "type": "PlainModel",
            "parameters": 8,
            "trainable": 8,
            "dtype": "torch.float16",
            "shape": [3],
        }
    ]


def test_model_info_of_an_object_without_parameters() -> None:
    info = th.model_info(object())
    assert info["parameter_count"] == 0
    assert info["memory_bytes"] == 0
    assert info["layers"] == [
        {"name": "", "type": "object", "parameters": 0, "trainable": 0, "dtype": ""}
    ]


# --------------------------------------------------------------------------------------------
# gradient_norms
# --------------------------------------------------------------------------------------------

GRADS: Dict[str, List[float]] = {
    "enc.weight": [3.0, -4.0, 0.5],
    "enc.bias": [-1.0, 2.0],
    "dec.weight": [0.25, -7.0, 1.0, 1.0],
    # dec.bias has no gradient
}


def grad_model() -> FakeModule:
    return Sequential(
        enc=Linear(weight=param(3, grad=GRADS["enc.weight"]), bias=param(2, grad=GRADS["enc.bias"])),
        dec=Linear(weight=param(4, grad=GRADS["dec.weight"]), bias=param(2)),
    )


def flat(names: Sequence[str]) -> List[float]:
    return [v for name in names for v in GRADS[name]]


@pytest.mark.parametrize("p", [2.0, 1.0, math.inf])
def test_gradient_norms_per_parameter(p: float) -> None:
    norms = th.gradient_norms(grad_model(), p)
    assert set(norms) == {"enc.weight", "enc.bias", "dec.weight", "total"}  # dec.bias skipped
    for name, values in GRADS.items():
        assert norms[name] == pytest.approx(reference_norm(values, p), rel=1e-12)
    assert norms["total"] == pytest.approx(reference_norm(flat(list(GRADS)), p), rel=1e-12)


def test_gradient_norms_known_values() -> None:
    norms = th.gradient_norms(grad_model(), 2.0)
    assert norms["enc.weight"] == pytest.approx(math.sqrt(25.25))
    assert norms["total"] == pytest.approx(math.sqrt(25.25 + 5 + 0.0625 + 49 + 2))
    assert th.gradient_norms(grad_model(), math.inf)["total"] == 7.0
    assert th.gradient_norms(grad_model(), 1)["total"] == pytest.approx(7.5 + 3 + 9.25)


@pytest.mark.parametrize("p", [2.0, 1.0, math.inf])
def test_gradient_norms_per_module(p: float) -> None:
    norms = th.gradient_norms(grad_model(), p, per="module")
    assert set(norms) == {"enc", "dec", "total"}
    assert norms["enc"] == pytest.approx(reference_norm(flat(["enc.weight", "enc.bias"]), p))
    assert norms["dec"] == pytest.approx(reference_norm(flat(["dec.weight"]), p))
    assert norms["total"] == pytest.approx(reference_norm(flat(list(GRADS)), p))


def test_gradient_norms_root_parameters_group_under_empty_module() -> None:
    model = Sequential(scale=param(1, grad=[-2.0]), inner=Linear(weight=param(2, grad=[1.0, 1.0])))
    assert th.gradient_norms(model, per="module") == {
        "": pytest.approx(2.0),
        "inner": pytest.approx(math.sqrt(2.0)),
        "total": pytest.approx(math.sqrt(6.0)),
    }


def test_gradient_norms_without_gradients() -> None:
    assert th.gradient_norms(mlp()) == {"total": 0.0}
    assert th.gradient_norms(mlp(), per="module") == {"total": 0.0}


def test_gradient_norms_shared_parameter_counted_once() -> None:
    shared = param(2, grad=[3.0, 4.0])
    model = Sequential(a=Linear(weight=shared), b=Linear(weight=shared))
    assert th.gradient_norms(model) == {"a.weight": 5.0, "total": 5.0}


def test_gradient_norms_plain_parameters_are_named_by_position() -> None:
    model = PlainModel([param(2, grad=[3.0, 4.0]), param(1), param(1, grad=[12.0])])
    assert th.gradient_norms(model) == {
        "0": pytest.approx(5.0),
        "2": pytest.approx(12.0),
        "total": pytest.approx(13.0),
    }


def test_gradient_norms_accepts_plain_float_norms() -> None:
    class FloatNormTensor:
        def norm(self, p: float) -> float:
            return 6.0

    class P:
        grad = FloatNormTensor()

    assert th.gradient_norms(PlainModel([P(), P()]))["total"] == pytest.approx(math.sqrt(72.0))


def test_gradient_norms_propagates_nan_and_inf() -> None:
    model = PlainModel([param(1, grad=[1.0]), param(1, grad=[math.inf])])
    assert th.gradient_norms(model)["total"] == math.inf
    model = PlainModel([param(1, grad=[1.0]), param(1, grad=[math.nan])])
    assert math.isnan(th.gradient_norms(model)["total"])


def test_gradient_norms_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        th.gradient_norms(grad_model(), per="layer")
    with pytest.raises(ValueError):
        th.gradient_norms(grad_model(), -1.0)


# --------------------------------------------------------------------------------------------
# data_info
# --------------------------------------------------------------------------------------------


class RandomSampler:
    def __init__(self, data: Any) -> None:
        self.data = data


class SequentialSampler(RandomSampler):
    pass


class DistributedSampler:
    def __init__(self, shuffle: bool) -> None:
        self.shuffle = shuffle


class BatchSampler:
    def __init__(self, sampler: Any, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size


class Subset:
    def __init__(self, dataset: Any, indices: List[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)


class Unsized:
    """An iterable dataset without ``__len__``."""

    def __iter__(self) -> Iterator[int]:
        return iter(range(10))


class FakeLoader:
    """A DataLoader without ``__len__`` (so batches are computed from samples)."""

    def __init__(
        self,
        dataset: Any,
        batch_size: Optional[int] = 1,
        *,
        sampler: Any = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.sampler = sampler if sampler is not None else SequentialSampler(dataset)
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.drop_last = drop_last


class SizedLoader(FakeLoader):
    def __len__(self) -> int:
        return 99


def test_data_info_loader_shuffled() -> None:
    data = list(range(100))
    loader = FakeLoader(data, 32, sampler=RandomSampler(data), num_workers=4)
    assert th.data_info(loader) == {
        "samples": 100,
        "batch_size": 32,
        "workers": 4,
        "shuffle": True,
        "batches": 4,
    }


def test_data_info_loader_sequential_drop_last() -> None:
    loader = FakeLoader(list(range(100)), 32, drop_last=True)
    assert th.data_info(loader) == {
        "samples": 100,
        "batch_size": 32,
        "workers": 0,
        "shuffle": False,
        "batches": 3,
    }


def test_data_info_uses_len_of_a_sized_loader() -> None:
    assert th.data_info(SizedLoader(list(range(10)), 5))["batches"] == 99


def test_data_info_distributed_sampler() -> None:
    data = list(range(10))
    assert th.data_info(FakeLoader(data, 2, sampler=DistributedSampler(True)))["shuffle"] is True
    assert th.data_info(FakeLoader(data, 2, sampler=DistributedSampler(False)))["shuffle"] is False


def test_data_info_batch_sampler() -> None:
    data = list(range(50))
    loader = FakeLoader(data, None, batch_sampler=BatchSampler(RandomSampler(data), 8))
    assert th.data_info(loader) == {
        "samples": 50,
        "batch_size": 8,
        "workers": 0,
        "shuffle": True,
        "batches": 7,
    }
    # A batch sampler without a batch size: batch_size and batches fall back to 0.
    assert th.data_info(FakeLoader(data, None, batch_sampler=object()))["batch_size"] == 0
    assert th.data_info(FakeLoader(data, None, batch_sampler=object()))["batches"] == 0


def test_data_info_unsized_dataset() -> None:
    assert th.data_info(FakeLoader(Unsized(), 4, num_workers=2)) == {
        "samples": 0,
        "batch_size": 4,
        "workers": 2,
        "shuffle": False,
        "batches": 0,
    }


def test_data_info_datasets() -> None:
    zeros = {"samples": 0, "batch_size": 0, "workers": 0, "shuffle": False, "batches": 0}
    assert th.data_info(list(range(7))) == dict(zeros, samples=7)
    assert th.data_info(Subset(list(range(100)), [1, 5, 9])) == dict(zeros, samples=3)
    assert th.data_info(Unsized()) == zeros


def test_data_info_never_raises() -> None:
    zeros = {"samples": 0, "batch_size": 0, "workers": 0, "shuffle": False, "batches": 0}

    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(name)

        def __len__(self) -> int:
            raise RuntimeError("len")

    class BrokenLoader:
        dataset = Hostile()
        batch_size = "lots"
        num_workers = None

        @property
        def sampler(self) -> Any:
            raise RuntimeError("sampler")

    for junk in (None, 42, 3.5, object(), Hostile()):
        assert th.data_info(junk) == zeros
    assert th.data_info(BrokenLoader()) == zeros


# --------------------------------------------------------------------------------------------
# save_state_dict without torch
# --------------------------------------------------------------------------------------------


def test_save_state_dict_without_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # A None entry in sys.modules makes "import torch" fail, whether torch is installed or not.
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(RuntimeError, match="saving a model needs torch"):
        th.save_state_dict(mlp(), tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


# --------------------------------------------------------------------------------------------
# Real torch (skipped when torch is not installed)
# --------------------------------------------------------------------------------------------


def real_model() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 4),
        torch.nn.BatchNorm1d(4),
    )


def test_torch_model_info() -> None:
    torch = pytest.importorskip("torch")
    model = real_model()
    info = th.model_info(model)
    assert info["parameter_count"] == sum(p.numel() for p in model.parameters())
    assert info["trainable_parameters"] == info["parameter_count"]
    assert info["memory_bytes"] == sum(p.numel() * p.element_size() for p in model.parameters())
    assert info["buffer_bytes"] == sum(b.numel() * b.element_size() for b in model.buffers())
    assert info["buffer_bytes"] > 0  # BatchNorm running stats
    leaves = [name for name, m in model.named_modules() if not list(m.children())]
    assert [layer["name"] for layer in info["layers"]] == leaves
    assert [layer["type"] for layer in info["layers"]] == ["Linear", "ReLU", "Linear", "BatchNorm1d"]
    assert info["layers"][0]["parameters"] == 8 * 16 + 16
    assert info["layers"][0]["dtype"] == str(torch.float32)
    assert info["layers"][0]["shape"] == [16, 8]
    assert info["layers"][3]["parameters"] == 4 + 4


@pytest.mark.parametrize("p", [2.0, 1.0, math.inf])
def test_torch_gradient_norms_match_clip_grad_norm(p: float) -> None:
    torch = pytest.importorskip("torch")
    model = real_model()
    x = torch.randn(32, 8)
    model(x).pow(2).sum().backward()
    before = {name: param_.grad.clone() for name, param_ in model.named_parameters()}
    norms = th.gradient_norms(model, p)
    # Measuring leaves the gradients as they were.
    for name, param_ in model.named_parameters():
        assert torch.equal(param_.grad, before[name])
    # With max_norm=inf clip_grad_norm_ scales by 1 (a no-op) and returns the total norm.
    # (A deepcopy of the model would not do: copying a Parameter drops its .grad.)
    total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=math.inf, norm_type=p)
    assert float(total) > 0
    assert norms["total"] == pytest.approx(float(total), rel=1e-6)
    for name, param_ in model.named_parameters():
        assert norms[name] == pytest.approx(float(before[name].norm(p)), rel=1e-6)
    per_module = th.gradient_norms(model, p, per="module")
    assert set(per_module) == {"0", "2", "3", "total"}
    assert per_module["total"] == pytest.approx(float(total), rel=1e-6)


def test_torch_data_info() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, Subset as TorchSubset, TensorDataset

    dataset = TensorDataset(torch.randn(100, 3), torch.randn(100))
    loader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers=0)
    assert th.data_info(loader) == {
        "samples": 100,
        "batch_size": 32,
        "workers": 0,
        "shuffle": True,
        "batches": 4,
    }
    loader = DataLoader(dataset, batch_size=32, drop_last=True)
    assert th.data_info(loader)["shuffle"] is False
    assert th.data_info(loader)["batches"] == 3
    assert th.data_info(TorchSubset(dataset, list(range(10))))["samples"] == 10
    assert th.data_info(dataset)["samples"] == 100


def test_torch_save_state_dict_round_trip(tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    model = real_model()
    path = tmp_path / "model.pt"
    th.save_state_dict(model, path)
    loaded = torch.load(path)
    original = model.state_dict()
    assert list(loaded) == list(original)
    for key, value in original.items():
        assert torch.equal(loaded[key], value)
