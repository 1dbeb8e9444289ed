"""Engine presets: command templates, parallel sizes, GPU lists."""

from __future__ import annotations

import sys

import pytest

from gllm.worker.engines import PRESETS, EngineSpec, model_alias, parallel_plan, parse_gpus, render_template


def _argv(engine: str, gpus: tuple[str, ...] = (), model: str = "org/model", port: int = 8010) -> list[str]:
    return EngineSpec(preset=PRESETS[engine], port=port, gpus=gpus, base_env={}).launch(model).argv


@pytest.mark.unit
class TestParallelPlan:
    """tp is the largest power of two dividing the GPU count; pp takes the rest."""

    @pytest.mark.parametrize(
        ("n", "tp", "pp"),
        [
            (0, 1, 1),
            (1, 1, 1),
            (2, 2, 1),
            (3, 1, 3),
            (4, 4, 1),
            (6, 2, 3),
            (8, 8, 1),
            (12, 4, 3),
            (16, 16, 1),
        ],
    )
    def test_rule(self, n: int, tp: int, pp: int) -> None:
        """Each GPU count splits as documented."""
        plan = parallel_plan(n)
        assert (plan.tp, plan.pp) == (tp, pp)
        assert plan.tp * plan.pp == max(1, n)

    def test_without_pipeline_all_gpus_are_tensor_parallel(self) -> None:
        """A preset without pipeline stages uses tp = n."""
        assert parallel_plan(6, pipeline=False).tp == 6


@pytest.mark.unit
class TestPresetCommands:
    """Every preset renders the documented command line."""

    def test_vllm_one_gpu(self) -> None:
        """vLLM: serve on loopback with tensor parallel size 1."""
        assert _argv("vllm", ("0",)) == [
            "vllm", "serve", "org/model", "--port", "8010", "--host", "127.0.0.1", "--tensor-parallel-size", "1",
            "--served-model-name", "org/model", "model",
        ]  # fmt: skip

    def test_vllm_adds_pipeline_stages_for_odd_gpu_counts(self) -> None:
        """Six GPUs: tp 2 x pp 3."""
        argv = _argv("vllm", ("0", "1", "2", "3", "4", "5"))
        assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
        assert argv[-2:] == ["--pipeline-parallel-size", "3"]

    def test_vllm_power_of_two_has_no_pipeline_flag(self) -> None:
        """Four GPUs: pure tensor parallel."""
        assert "--pipeline-parallel-size" not in _argv("vllm", ("0", "1", "2", "3"))

    def test_sglang(self) -> None:
        """SGLang: its launch_server module with --tp = GPU count."""
        assert _argv("sglang", ("0", "1", "2")) == [
            "python", "-m", "sglang.launch_server", "--model-path", "org/model", "--port", "8010", "--tp", "3",
        ]  # fmt: skip

    def test_llamacpp(self) -> None:
        """llama.cpp: llama-server -m MODEL --port PORT."""
        assert _argv("llamacpp", model="/m/x.gguf") == ["llama-server", "-m", "/m/x.gguf", "--port", "8010"]

    def test_sim_uses_this_interpreter(self) -> None:
        """The simulator runs with the same Python as the worker."""
        assert _argv("sim") == [
            sys.executable,
            "-m",
            "gllm",
            "sim-engine",
            "--port",
            "8010",
            "--model",
            "org/model",
            "--served-model-name",
            "org/model",
            "model",
        ]

    def test_model_with_spaces_stays_one_argument(self) -> None:
        """Templates are split before filling, so a path with spaces is one word."""
        assert "/models/my model" in _argv("llamacpp", model="/models/my model")

    @pytest.mark.parametrize("engine", ["vllm", "sim"])
    @pytest.mark.parametrize(
        ("model", "names"),
        [
            ("org/tiny-model", ["org/tiny-model", "tiny-model"]),
            ("/ckpt/step-100/", ["/ckpt/step-100/", "step-100"]),
            ("hub/org/model v2", ["hub/org/model v2", "model v2"]),
            ("tiny-model", ["tiny-model"]),
        ],
    )
    def test_model_is_served_under_its_alias_too(self, engine: str, model: str, names: list[str]) -> None:
        """vLLM and sim answer the full path and the last path component; a bare name is passed once."""
        argv = _argv(engine, model=model)
        start = argv.index("--served-model-name") + 1
        assert argv[start : start + len(names)] == names
        assert argv.count("--served-model-name") == 1
        assert len(argv) == start + len(names)  # nothing else after the names: no flag is swallowed

    @pytest.mark.parametrize("engine", ["sglang", "llamacpp"])
    def test_other_presets_name_the_model_once(self, engine: str) -> None:
        """SGLang and llama.cpp take one name; they get no alias."""
        assert "model" not in _argv(engine, model="org/model")

    @pytest.mark.parametrize("engine", sorted(PRESETS))
    def test_every_preset_knows_health_and_api_prefix(self, engine: str) -> None:
        """Health on /health and the OpenAI API under /v1 for every preset."""
        assert (PRESETS[engine].health_path, PRESETS[engine].api_prefix) == ("/health", "/v1")


@pytest.mark.unit
class TestLaunchEnvironment:
    """GPUs go to CUDA_VISIBLE_DEVICES; the rest of the environment is inherited."""

    def test_gpus_in_cuda_visible_devices(self) -> None:
        """The GPU list becomes CUDA_VISIBLE_DEVICES."""
        launch = EngineSpec(preset=PRESETS["vllm"], port=1, gpus=("2", "5"), base_env={"A": "1"}).launch("m")
        assert launch.env["CUDA_VISIBLE_DEVICES"] == "2,5"
        assert launch.env["A"] == "1"

    def test_no_gpus_leaves_cuda_visible_devices_alone(self) -> None:
        """Without --gpus the inherited value (if any) stays."""
        env = {"CUDA_VISIBLE_DEVICES": "7"}
        assert (
            EngineSpec(preset=PRESETS["vllm"], port=1, base_env=env).launch("m").env["CUDA_VISIBLE_DEVICES"]
            == "7"
        )

    def test_python_engines_are_unbuffered(self) -> None:
        """PYTHONUNBUFFERED makes log lines arrive as they are written."""
        assert (
            EngineSpec(preset=PRESETS["sim"], port=1, base_env={}).launch("m").env["PYTHONUNBUFFERED"] == "1"
        )

    def test_launch_knows_where_to_talk(self) -> None:
        """The launch carries the engine's base URL and health path."""
        launch = EngineSpec(preset=PRESETS["vllm"], port=8123, base_env={}).launch("m")
        assert launch.base_url == "http://127.0.0.1:8123"
        assert launch.health_path == "/health"


@pytest.mark.unit
class TestCustomTemplate:
    """--engine-cmd templates."""

    def test_custom_template_fills_every_placeholder(self) -> None:
        """All documented placeholders are filled."""
        spec = EngineSpec(
            preset=PRESETS["vllm"],
            port=9000,
            gpus=("0", "1", "2"),
            template="run {model} {engine_port} {tp} {pp} {n_gpus} {gpus} {python}",
            base_env={},
        )
        assert spec.launch("m").argv == ["run", "m", "9000", "1", "3", "3", "0,1,2", sys.executable]
        assert spec.name == "custom"

    def test_custom_template_gets_no_pipeline_flag(self) -> None:
        """The pipeline flag belongs to the preset's template only."""
        spec = EngineSpec(
            preset=PRESETS["vllm"], port=1, gpus=("0", "1", "2"), template="x {model}", base_env={}
        )
        assert spec.launch("m").argv == ["x", "m"]

    def test_alias_placeholder(self) -> None:
        """{alias} is the last path component; a custom template gets exactly the words it names."""
        spec = EngineSpec(
            preset=PRESETS["vllm"], port=1, template="vllm serve {model} --served-model-name {model} {alias}"
        )
        assert spec.launch("/ckpt/my run/step-100/").argv[-2:] == ["/ckpt/my run/step-100/", "step-100"]
        assert spec.launch("m").argv[-2:] == ["m", "m"]


@pytest.mark.unit
class TestModelAlias:
    """The alias is the model's last path component, as the balancer computes it."""

    @pytest.mark.parametrize(
        ("model", "alias"),
        [
            ("org/tiny-model", "tiny-model"),
            ("/ckpt/step-100/", "step-100"),
            ("/ckpt/step-100", "step-100"),
            ("tiny-model", "tiny-model"),
            ("a/b/c//", "c"),
            ("/", "/"),
        ],
    )
    def test_alias(self, model: str, alias: str) -> None:
        """rstrip("/") then the part after the last "/"; never empty."""
        assert model_alias(model) == alias

    @pytest.mark.parametrize("template", ["run {nope}", "", "run 'unclosed", "run {0}"])
    def test_bad_templates_are_readable_errors(self, template: str) -> None:
        """Unknown placeholders, empty or unparsable templates raise ValueError."""
        with pytest.raises(ValueError, match="template"):
            render_template(template, {"model": "m"})


@pytest.mark.unit
class TestParseGpus:
    """--gpus parsing."""

    @pytest.mark.parametrize(
        ("text", "gpus"), [("", []), (None, []), ("0", ["0"]), ("0,1", ["0", "1"]), (" 3 , 5", ["3", "5"])]
    )
    def test_valid(self, text: str | None, gpus: list[str]) -> None:
        """Comma lists of integers."""
        assert parse_gpus(text) == gpus

    @pytest.mark.parametrize("text", ["a", "0,,1", "0,0", "-1", "0:3"])
    def test_invalid(self, text: str) -> None:
        """Anything else is a ValueError."""
        with pytest.raises(ValueError):
            parse_gpus(text)
