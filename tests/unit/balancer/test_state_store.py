"""The state file: written atomically, read back, and a missing or broken file is an empty state."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from gllm.balancer.state_store import SavedState, StateStore, default_state_path, load_state, write_state


@pytest.mark.unit
class TestRoundTrip:
    """What is written is what is read."""

    def test_write_then_load(self, tmp_path: Path) -> None:
        """Workers (in order) and the model survive a write and a load."""
        path = tmp_path / "state.json"
        state = SavedState(("http://127.0.0.1:8001", "http://127.0.0.1:8002"), "org/model-7b")
        write_state(path, state)
        assert load_state(path) == state
        assert json.loads(path.read_text())["version"] == 1

    def test_no_model(self, tmp_path: Path) -> None:
        """A cluster without a model is saved as null and read back as None."""
        path = tmp_path / "state.json"
        write_state(path, SavedState(("http://a:1",), None))
        assert load_state(path) == SavedState(("http://a:1",), None)

    def test_creates_missing_folders(self, tmp_path: Path) -> None:
        """The parent folders are created."""
        path = tmp_path / "deep" / "er" / "state.json"
        write_state(path, SavedState(("http://a:1",), "m"))
        assert load_state(path).model == "m"


@pytest.mark.unit
class TestAtomicWrite:
    """A write replaces the file in one step and leaves no temporary file behind."""

    def test_replaces_and_leaves_no_temporary(self, tmp_path: Path) -> None:
        """Overwriting keeps exactly one file in the folder."""
        path = tmp_path / "state.json"
        for i in range(5):
            write_state(path, SavedState((f"http://w{i}:1",), f"m{i}"))
        assert os.listdir(tmp_path) == ["state.json"]
        assert load_state(path) == SavedState(("http://w4:1",), "m4")

    def test_failed_write_keeps_the_old_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the rename fails, the old state is intact and the temporary file is removed."""
        path = tmp_path / "state.json"
        old = SavedState(("http://old:1",), "old")
        write_state(path, old)

        def broken_replace(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", broken_replace)
        with pytest.raises(OSError, match="disk full"):
            write_state(path, SavedState(("http://new:1",), "new"))
        monkeypatch.undo()
        assert load_state(path) == old
        assert os.listdir(tmp_path) == ["state.json"]


@pytest.mark.unit
class TestLoadBadFiles:
    """A missing, unreadable or malformed file never stops the balancer: it starts empty."""

    def test_missing(self, tmp_path: Path) -> None:
        """No file: empty state."""
        assert load_state(tmp_path / "nope.json") == SavedState()

    @pytest.mark.parametrize(
        "content",
        ["", "{", "not json", "\x00\x01\x02", "[1, 2, 3]", '"text"', "null", "42"],
    )
    def test_corrupt(self, tmp_path: Path, content: str) -> None:
        """Truncated or non-object JSON: empty state."""
        path = tmp_path / "state.json"
        path.write_text(content)
        assert load_state(path) == SavedState()

    def test_wrong_field_types_are_dropped(self, tmp_path: Path) -> None:
        """Non-string workers are skipped; a non-list workers field or non-string model is ignored."""
        path = tmp_path / "state.json"
        path.write_text(json.dumps({"workers": ["http://a:1", 5, None, {"x": 1}], "model": 7}))
        assert load_state(path) == SavedState(("http://a:1",), None)
        path.write_text(json.dumps({"workers": "http://a:1", "model": ""}))
        assert load_state(path) == SavedState((), None)

    def test_directory_in_the_way(self, tmp_path: Path) -> None:
        """A folder where the file should be is unreadable: empty state, no exception."""
        path = tmp_path / "state.json"
        path.mkdir()
        assert load_state(path) == SavedState()


@pytest.mark.unit
class TestStateStore:
    """The store writes off the event loop and collapses bursts into the newest state."""

    def test_burst_ends_with_newest_state(self, tmp_path: Path) -> None:
        """Many saves in a row: after flush, the file holds the last one."""
        path = tmp_path / "state.json"

        async def scenario() -> None:
            store = StateStore(path)
            for i in range(50):
                store.save(SavedState(tuple(f"http://w{j}:1" for j in range(i + 1)), f"m{i}"))
            await store.flush()
            assert store.load() == SavedState(tuple(f"http://w{j}:1" for j in range(50)), "m49")

        asyncio.run(scenario())

    def test_flush_without_saves(self, tmp_path: Path) -> None:
        """flush() with nothing pending returns at once; load() of no file is empty."""

        async def scenario() -> SavedState:
            store = StateStore(tmp_path / "state.json")
            await store.flush()
            return store.load()

        assert asyncio.run(scenario()) == SavedState()

    def test_unwritable_path_is_logged_not_raised(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A state file under a regular file cannot be written: an error is logged, the balancer goes on."""
        blocker = tmp_path / "file"
        blocker.write_text("x")

        async def scenario() -> None:
            store = StateStore(blocker / "state.json")
            store.save(SavedState(("http://a:1",), "m"))
            await store.flush()

        asyncio.run(scenario())
        assert "cannot write state file" in caplog.text


@pytest.mark.unit
class TestDefaultPath:
    """The default path follows XDG_STATE_HOME and names the port."""

    def test_xdg(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """$XDG_STATE_HOME/gllm/balancer-PORT.json."""
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
        assert default_state_path(5333) == tmp_path / "gllm" / "balancer-5333.json"

    def test_home(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Without XDG_STATE_HOME: ~/.local/state/gllm/balancer-PORT.json."""
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        assert default_state_path(7) == tmp_path / ".local" / "state" / "gllm" / "balancer-7.json"
