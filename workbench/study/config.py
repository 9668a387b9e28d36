"""The study configuration: one TOML file, one frozen dataclass per section.

Every key has a default, and the defaults are the demo
(``workbench/configs/demo.toml`` spells them out). An unknown section or key,
or a value of the wrong type, is an error that names it and the fix.

>>> cfg = StudyConfig()
>>> cfg.model.name, cfg.second_model.name, cfg.generation.max_new_tokens
('smollm2-135m-instruct', 'gemma3-270m', 48)
>>> StudyConfig.from_dict({"items": {"train": 40}}).items.train
40
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.model.options import LoadOptions
from workbench.study.sections import (
    MIN_NULL,
    CausalConfig,
    ControlsConfig,
    HedgedConfig,
    check_n_null,
)

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 reads TOML with tomli
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

__all__ = [
    "AttributionConfig",
    "CaptureConfig",
    "ControlsConfig",
    "GenerationConfig",
    "HedgedConfig",
    "ItemsConfig",
    "ModelConfig",
    "ProbeConfig",
    "RunConfig",
    "SecondModelConfig",
    "SidecarConfig",
    "StudyConfig",
    "TemperingConfig",
    "TracesConfig",
    "demo_config_path",
    "load_config",
    "load_options",
]

#: What ``[model] dtype`` may be (the names load_model accepts).
DTYPES = ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
SPLIT_NAMES = ("train", "fresh", "fresh_hard")
AXES = ("correct", "asserts", "truncated")


def _fail(where: str, message: str) -> WorkbenchError:
    return WorkbenchError(f"config [{where}]: {message}")


def _check_chat(value: str, where: str) -> None:
    if value not in ("auto", "on", "off"):
        raise _fail(where, f"chat_template = {value!r}: use 'auto', 'on' or 'off'")


def _check_split(value: str, where: str, allowed: tuple[str, ...] = SPLIT_NAMES) -> None:
    if value not in allowed:
        raise _fail(where, f"split = {value!r}: use one of {', '.join(allowed)}")


def _check_placement(section: Any, where: str) -> None:
    """device, dtype, backend, device_map, max_memory (empty: none) checked before loading."""
    try:
        load_options(section)
    except WorkbenchError as e:
        raise _fail(where, str(e)) from None


def load_options(section: Any) -> LoadOptions:
    """A ``[model]`` or ``[second_model]`` section's placement as ``load_model`` options."""
    return LoadOptions(
        device=section.device, dtype=section.dtype, backend=section.backend,
        device_map=section.device_map or None, max_memory=section.max_memory or None,
    )  # fmt: skip


def chat_flag(value: str) -> bool | None:
    """``auto``/``on``/``off`` as the ``chat_template`` argument of generate/capture."""
    return {"auto": None, "on": True, "off": False}[value]


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: title, global seed and CPU threads for torch (0: one fewer than the cores)."""

    title: str = (
        "Is there a correctness handle in SmolLM2-135M-Instruct that survives a fresh test?"
    )
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise _fail("run", f"threads = {self.threads}: use 0 (auto) or a count")


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: the model under study and how prompts reach it."""

    name: str = "smollm2-135m-instruct"
    dtype: str = "float32"
    device: str = "cpu"
    batch_size: int = 48
    prompt_template: str = "{prompt}"
    chat_template: str = "auto"
    backend: str = "hf"
    device_map: str = ""
    max_memory: str = ""

    def __post_init__(self) -> None:
        _check_placement(self, "model")
        _check_chat(self.chat_template, "model")
        if "{prompt}" not in self.prompt_template:
            raise _fail("model", "prompt_template must contain {prompt}")
        if self.batch_size < 1:
            raise _fail("model", f"batch_size = {self.batch_size}: use 1 or more")
        if self.dtype not in DTYPES:
            raise _fail("model", f"dtype = {self.dtype!r}: use one of {', '.join(DTYPES)}")
        if not re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", self.device):
            raise _fail("model", f"device = {self.device!r}: use cpu, cuda, cuda:N, mps or auto")


@dataclass(frozen=True)
class ItemsConfig:
    """``[items]``: items per split from ``workbench.labels.domains`` (0 skips ``fresh_hard``)."""

    families: tuple[str, ...] = ("capitals", "arithmetic")
    train: int = 110
    fresh: int = 100
    fresh_hard: int = 80
    seed: int = 0

    def __post_init__(self) -> None:
        from workbench.labels.domains import FAMILIES

        unknown = [f for f in self.families if f not in FAMILIES]
        if not self.families or unknown:
            what = f"{unknown[0]!r} is unknown" if unknown else "is empty"
            raise _fail("items", f"families {what}: use some of {', '.join(sorted(FAMILIES))}")
        for name in ("train", "fresh"):
            if getattr(self, name) < 2:
                raise _fail("items", f"{name} = {getattr(self, name)}: a split needs 2+ items")
        if self.fresh_hard < 0:
            raise _fail("items", f"fresh_hard = {self.fresh_hard}: use 0 to skip it or a count")

    def count(self, split: str) -> int:
        return int(getattr(self, split))


@dataclass(frozen=True)
class GenerationConfig:
    """``[generation]``: greedy decoding; the short cap is the truncation check."""

    max_new_tokens: int = 48
    short_max_new_tokens: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.short_max_new_tokens < self.max_new_tokens:
            raise _fail(
                "generation",
                f"short_max_new_tokens = {self.short_max_new_tokens} must be in 1.."
                f"{self.max_new_tokens - 1} (below max_new_tokens = {self.max_new_tokens})",
            )


@dataclass(frozen=True)
class CaptureConfig:
    """``[capture]``: head_in over the last N tokens, last-N-layer pooling, depth curve."""

    head_last_n: int = 4
    pooled_last_n: int = 4
    depth_curve: bool = True

    def __post_init__(self) -> None:
        if self.head_last_n < 1 or self.pooled_last_n < 1:
            raise _fail("capture", "head_last_n and pooled_last_n must be >= 1")


@dataclass(frozen=True)
class ProbeConfig:
    """``[probe]``: the five-step pipeline's settings (``probes.falsify``)."""

    Cs: tuple[float, ...] = (0.1, 1.0)
    folds: int = 5
    n_boot: int = 1000
    n_perm: int = 1000
    n_control: int = 5
    axes: tuple[str, ...] = ("correct", "asserts")
    depth_n_boot: int = 200
    depth_n_null: int = 200
    head_n_null: int = 200
    confounds: bool = True
    erase_confounds: bool = True

    def __post_init__(self) -> None:
        if not self.Cs or not all(math.isfinite(c) and c > 0 for c in self.Cs):
            raise _fail("probe", f"Cs = {list(self.Cs)}: pass positive values, e.g. [0.1, 1.0]")
        from probes.pipeline import check_resampling

        try:
            check_resampling(
                folds=self.folds, n_boot=self.n_boot, n_perm=self.n_perm, n_control=self.n_control
            )
        except WorkbenchError as e:
            raise _fail("probe", str(e)) from None
        bad = [a for a in self.axes if a not in AXES]
        if bad:
            raise _fail("probe", f"axes has {bad[0]!r}: use any of {', '.join(AXES)}")
        check_n_null(self.depth_n_null, "probe", "depth_n_null")
        check_n_null(self.head_n_null, "probe", "head_n_null")


@dataclass(frozen=True)
class SecondModelConfig:
    """``[second_model]``: step 5. ``responses = "own"`` (default) lets it answer (cut at
    the first line break), labels those and reports its own 2x2; ``"shared"`` reads the
    first model's responses with the first model's labels."""

    enabled: bool = True
    name: str = "gemma3-270m"
    responses: str = "own"
    prompt_template: str = "Question: {prompt}\nAnswer:"
    chat_template: str = "auto"
    max_new_tokens: int = 16
    batch_size: int = 32
    dtype: str = "float32"
    device: str = "cpu"
    backend: str = "hf"
    device_map: str = ""
    max_memory: str = ""

    def __post_init__(self) -> None:
        if self.enabled:
            _check_placement(self, "second_model")
        _check_chat(self.chat_template, "second_model")
        if self.responses not in ("shared", "own"):
            raise _fail("second_model", f"responses = {self.responses!r}: use 'shared' or 'own'")
        if "{prompt}" not in self.prompt_template:
            raise _fail("second_model", "prompt_template must contain {prompt}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise _fail("second_model", "max_new_tokens and batch_size must be >= 1")


@dataclass(frozen=True)
class AttributionConfig:
    """``[attribution]``: cohorts compared head by head on one split's items."""

    split: str = "train"
    cohort_a: str = "cw"
    cohort_b: str = "cr"
    min_cohort: int = 5
    top_k: int = 3
    n_null: int = 200

    def __post_init__(self) -> None:
        _check_split(self.split, "attribution")
        for c in (self.cohort_a, self.cohort_b):
            if c not in ("cw", "cr", "hw", "hr", "right", "wrong"):
                raise _fail("attribution", f"cohort {c!r}: use cw, cr, hw, hr, right or wrong")
        if self.min_cohort < 2 or self.top_k < 1:
            raise _fail("attribution", "min_cohort must be >= 2 and top_k >= 1")
        check_n_null(self.n_null, "attribution", "n_null")


@dataclass(frozen=True)
class TemperingConfig:
    """``[tempering]``: top heads from attribution scaled by each lambda, per seed (sampled).

    Judged by the causal rule: each lambda other than 1 is applied to the
    tempered heads and to ``n_random`` draws of as many random heads; the target
    (teacher-forced gold-answer log-prob) is read under every draw, and the
    first ``regenerate`` draws are also regenerated with every seed for the
    side effects (correctness, assertion, length, truncation; descriptive;
    0 by default, for the demo's time). The sweep over lambdas x seeds gives the
    tempered heads' own regenerations, its side effects against the seed spread,
    and the dose-response figure.
    """

    enabled: bool = True
    split: str = "fresh"
    n_items: int = 20
    lambdas: tuple[float, ...] = (0.0, 0.5, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    max_new_tokens: int = 32
    temperature: float = 0.8
    top_p: float = 0.95
    n_random: int = 20
    regenerate: int = 0

    def __post_init__(self) -> None:
        _check_split(self.split, "tempering")
        bad = [x for x in self.lambdas if not (math.isfinite(x) and x >= 0)]
        if bad:  # named before the missing reference: [-1.0] is wrong for its -1 first
            raise _fail("tempering", f"lambdas has {bad[0]}: use finite values >= 0")
        if 1.0 not in self.lambdas:
            raise _fail("tempering", f"lambdas = {list(self.lambdas)}: include 1.0, the reference")
        if len(self.seeds) < 3:
            raise _fail(
                "tempering",
                f"seeds = {list(self.seeds)}: the causal rule samples with 3 or more seeds",
            )
        if self.n_items < 1 or self.max_new_tokens < 1:
            raise _fail("tempering", "n_items and max_new_tokens must be >= 1")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise _fail(
                "tempering",
                f"temperature = {self.temperature}: the sweep samples; use a value > 0, e.g. 0.8",
            )
        if not 0 < self.top_p <= 1:
            raise _fail("tempering", f"top_p = {self.top_p}: use a value in (0, 1]")
        check_n_null(self.n_random, "tempering", "n_random")
        if self.n_random == 0:
            raise _fail("tempering", f"n_random = 0: use at least {MIN_NULL} random-head draws")
        if not 0 <= self.regenerate <= self.n_random:
            raise _fail(
                "tempering",
                f"regenerate = {self.regenerate}: use 0 to n_random ({self.n_random})",
            )


@dataclass(frozen=True)
class SidecarConfig:
    """``[sidecar]``: gate responses whose probe ``p_correct`` is under ``threshold``."""

    enabled: bool = True
    split: str = "fresh"
    threshold: float = 0.5
    hedge_prefix: str = "I'm not certain, but "

    def __post_init__(self) -> None:
        _check_split(self.split, "sidecar")
        if not 0 <= self.threshold <= 1:
            raise _fail("sidecar", f"threshold = {self.threshold}: use a probability in [0, 1]")
        if not self.hedge_prefix.strip():
            raise _fail(
                "sidecar",
                'hedge_prefix is empty: give the text to insert, e.g. "I\'m not sure, but "',
            )


@dataclass(frozen=True)
class TracesConfig:
    """``[traces]``: example responses drawn token by token (probe score, head norm)."""

    split: str = "fresh"
    n_examples: int = 4

    def __post_init__(self) -> None:
        _check_split(self.split, "traces")
        if self.n_examples < 0:
            raise _fail("traces", f"n_examples = {self.n_examples}: use 0 (none) or more")


_SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "model": ModelConfig,
    "items": ItemsConfig,
    "generation": GenerationConfig,
    "capture": CaptureConfig,
    "probe": ProbeConfig,
    "second_model": SecondModelConfig,
    "attribution": AttributionConfig,
    "tempering": TemperingConfig,
    "sidecar": SidecarConfig,
    "traces": TracesConfig,
    "hedged": HedgedConfig,
    "controls": ControlsConfig,
    "causal": CausalConfig,
}


def _coerce(value: Any, hint: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _fail(where, f"{key} = {value!r}: expected a list")
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(v, inner, where, key) for v in value)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    name = getattr(hint, "__name__", str(hint))
    raise _fail(where, f"{key} = {value!r} is not a {name}: fix its type")


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _fail(where, f"expected a table of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}: keys are {', '.join(names)}")
    return cls(**{k: _coerce(v, hints[k], where, k) for k, v in data.items()})


@dataclass(frozen=True)
class StudyConfig:
    """The whole study; ``to_json()`` is what the report and the cache keys record."""

    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    items: ItemsConfig = field(default_factory=ItemsConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    second_model: SecondModelConfig = field(default_factory=SecondModelConfig)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    tempering: TemperingConfig = field(default_factory=TemperingConfig)
    sidecar: SidecarConfig = field(default_factory=SidecarConfig)
    traces: TracesConfig = field(default_factory=TracesConfig)
    hedged: HedgedConfig = field(default_factory=HedgedConfig)
    controls: ControlsConfig = field(default_factory=ControlsConfig)
    causal: CausalConfig = field(default_factory=CausalConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        unknown = [k for k in data if k not in _SECTIONS]
        if unknown:
            raise WorkbenchError(
                f"config: unknown section [{unknown[0]}]: sections are {', '.join(_SECTIONS)}"
            )
        return cls(**{k: _section(_SECTIONS[k], v, k) for k, v in data.items()})

    @classmethod
    def from_toml(cls, path: str | Path) -> StudyConfig:
        path = Path(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise WorkbenchError(
                f"config file {path} {what}: pass a TOML file such as workbench/configs/demo.toml"
            )
        if tomllib is None:
            raise WorkbenchError(
                "reading a study TOML on Python 3.10 needs tomli: pip install tomli (or use 3.11+)"
            )
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError:
            raise WorkbenchError(
                f"config file {path} is not UTF-8 text: save it as UTF-8"
            ) from None
        except tomllib.TOMLDecodeError as e:
            raise WorkbenchError(f"config file {path} is not valid TOML ({e}): fix it") from None
        return cls.from_dict(data)

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain JSON values (what a cache key hashes)."""
        return section_json(getattr(self, name))

    def replace(self, section: str, **changes: Any) -> StudyConfig:
        """A copy with some keys of one section changed (validated again)."""
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)}
        )

    def to_json(self) -> dict[str, Any]:
        return {name: self.section(name) for name in _SECTIONS}


def section_json(section: Any) -> dict[str, Any]:
    """A config section (one of the frozen section dataclasses) as plain JSON values.

    A stage hashes the sections it was given into its cache key, so the key says
    exactly what the stage read.
    """
    return _plain(dataclasses.asdict(section))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def demo_config_path() -> Path:
    """The packaged ``workbench/configs/demo.toml``."""
    res = resources.files("workbench").joinpath("configs", "demo.toml")
    return Path(str(res))


def load_config(path: str | Path | None = None) -> StudyConfig:
    """Read a study TOML (default: the packaged demo)."""
    return StudyConfig.from_toml(demo_config_path() if path is None else path)
