"""Engine presets: how to start vLLM, SGLang, llama.cpp or the simulated engine, as a command template.

A template is split like a shell command line first, then each word is filled in, so a model path with
spaces stays one argument. Placeholders: {model}, {alias} (the model's last path component, see
model_alias), {engine_port}, {tp}, {pp}, {n_gpus}, {gpus} (comma list), {python} (this interpreter).

The balancer routes a request to a worker when its `model` is the worker's model or that model's alias
(`org/tiny-model` or `tiny-model`, `/ckpt/step-100/` or `step-100`) and forwards the body unchanged, so the
vLLM and sim presets serve both names: `--served-model-name {model} {alias}` (the model once when the two
are equal). The first name is the one the engine reports first in /v1/models, which the balancer reads.

Parallel sizes come from the number of GPUs n (1 when none are given): tensor parallel size tp is the largest
power of two that divides n, and pipeline parallel size pp = n // tp. So 1, 2, 4, 8 GPUs run pure tensor
parallel, 6 GPUs run tp=2 x pp=3, 3 GPUs run tp=1 x pp=3. Tensor parallelism needs the attention head count
to divide by tp, which power-of-two sizes satisfy for nearly every model; the odd factor goes to pipeline
stages. A preset without a pipeline flag (SGLang, llama.cpp) uses tp = n.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EnginePreset:
    """A named way to start an engine."""

    name: str
    template: str
    health_path: str = "/health"
    api_prefix: str = "/v1"
    # Flag appended with the pipeline size when pp > 1; None: the preset has no pipeline stages.
    pp_flag: str | None = None
    # Flag appended with the model and its alias (vLLM's --served-model-name); None: one name only.
    names_flag: str | None = None


PRESETS: dict[str, EnginePreset] = {
    "vllm": EnginePreset(
        name="vllm",
        template="vllm serve {model} --port {engine_port} --host 127.0.0.1 --tensor-parallel-size {tp}",
        pp_flag="--pipeline-parallel-size",
        names_flag="--served-model-name",
    ),
    "sglang": EnginePreset(
        name="sglang",
        template="python -m sglang.launch_server --model-path {model} --port {engine_port} --tp {tp}",
    ),
    "llamacpp": EnginePreset(name="llamacpp", template="llama-server -m {model} --port {engine_port}"),
    "sim": EnginePreset(
        name="sim",
        template="{python} -m gllm sim-engine --port {engine_port} --model {model}",
        names_flag="--served-model-name",
    ),
}

DEFAULT_ENGINE = "vllm"


def model_alias(model: str) -> str:
    """The model's last path component: `org/tiny-model` -> `tiny-model`, `/ckpt/step-100/` -> `step-100`."""
    return model.rstrip("/").rsplit("/", 1)[-1] or model


@dataclass(frozen=True)
class ParallelPlan:
    """Tensor and pipeline parallel sizes for a number of GPUs."""

    tp: int
    pp: int


def parallel_plan(n_gpus: int, *, pipeline: bool = True) -> ParallelPlan:
    """Split `n_gpus` into tensor x pipeline parallel sizes (see the module docstring for the rule)."""
    n = max(1, n_gpus)
    if not pipeline:
        return ParallelPlan(tp=n, pp=1)
    tp = n & -n  # the largest power of two dividing n
    return ParallelPlan(tp=tp, pp=n // tp)


@dataclass(frozen=True)
class EngineLaunch:
    """Everything needed to start one engine process and talk to it."""

    argv: list[str]
    env: dict[str, str]
    port: int
    health_path: str = "/health"
    api_prefix: str = "/v1"
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        """Root URL of the engine's HTTP server."""
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class EngineSpec:
    """A preset (or custom template) bound to a port and GPUs; `launch(model)` gives the command."""

    preset: EnginePreset
    port: int
    gpus: Sequence[str] = ()
    template: str | None = None  # overrides the preset's template (--engine-cmd)
    base_env: Mapping[str, str] | None = None  # defaults to os.environ at launch time
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The preset name, or "custom" with a custom template."""
        return self.preset.name if self.template is None else "custom"

    def launch(self, model: str) -> EngineLaunch:
        """Build the command line and environment to serve `model`."""
        plan = parallel_plan(len(self.gpus), pipeline=self.preset.pp_flag is not None)
        alias = model_alias(model)
        values = {
            "model": model,
            "alias": alias,
            "engine_port": str(self.port),
            "tp": str(plan.tp),
            "pp": str(plan.pp),
            "n_gpus": str(len(self.gpus)),
            "gpus": ",".join(self.gpus),
            "python": sys.executable,
        }
        argv = render_template(self.template or self.preset.template, values)
        if self.template is None and self.preset.names_flag is not None:
            argv += [self.preset.names_flag, model, *([alias] if alias != model else [])]
        if self.template is None and self.preset.pp_flag is not None and plan.pp > 1:
            argv += [self.preset.pp_flag, str(plan.pp)]
        env = dict(os.environ if self.base_env is None else self.base_env)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        env["PYTHONUNBUFFERED"] = "1"  # Python engines then log line by line into our ring buffer
        env.update(self.extra_env)
        return EngineLaunch(
            argv=argv,
            env=env,
            port=self.port,
            health_path=self.preset.health_path,
            api_prefix=self.preset.api_prefix,
        )


def render_template(template: str, values: Mapping[str, str]) -> list[str]:
    """Split `template` like a shell line, then fill each word; an unknown placeholder is a ValueError."""
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"bad engine command template {template!r}: {exc}") from None
    if not words:
        raise ValueError("empty engine command template")
    try:
        return [word.format_map(values) for word in words]
    except (KeyError, IndexError, ValueError) as exc:
        known = ", ".join("{" + key + "}" for key in values)
        raise ValueError(f"bad placeholder {exc} in engine command template (known: {known})") from None


def parse_gpus(text: str | None) -> list[str]:
    """Parse a GPU list such as "0,1" (empty or None: no GPUs given); reject anything but integers."""
    if not text or not text.strip():
        return []
    gpus = [part.strip() for part in text.split(",")]
    for gpu in gpus:
        if not gpu.isdigit():
            raise ValueError(f"bad GPU id {gpu!r} in {text!r}: expected integers such as 0,1")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"duplicate GPU id in {text!r}")
    return gpus


def get_preset(name: str) -> EnginePreset:
    """Look a preset up by name with a readable error."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(PRESETS)}") from None
