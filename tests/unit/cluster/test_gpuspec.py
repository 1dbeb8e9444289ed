"""The --workers grammar: ids, ranges, lists, groups, --gpus-per-worker, --num-workers, and every error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gllm.cluster.gpuspec import GpuSpecError, parse_gpu_item, split_items, worker_gpus


@pytest.mark.unit
class TestItems:
    """One item: ids, inclusive ranges and comma lists of both."""

    @pytest.mark.parametrize(
        ("item", "gpus"),
        [
            ("3", [3]),
            ("0:3", [0, 1, 2, 3]),
            ("2:2", [2]),
            ("0,2,5", [0, 2, 5]),
            ("0:1,4:5", [0, 1, 4, 5]),
            ("5,0:1", [5, 0, 1]),
            (" 7 ", [7]),
        ],
    )
    def test_forms(self, item: str, gpus: list[int]) -> None:
        """Each form gives the GPUs in the order written."""
        assert parse_gpu_item(item) == gpus

    @pytest.mark.parametrize(
        ("item", "message"),
        [
            ("5:3", "empty GPU range '5:3'"),
            ("a", "bad GPU spec 'a'"),
            ("0,x", "bad GPU spec 'x' in '0,x'"),
            ("1.5", "bad GPU spec"),
            ("0:1:2", "bad GPU spec"),
            ("-1", "negative GPU id"),
            ("0:-1", "negative GPU id"),
            ("", "empty GPU spec"),
            ("0,,1", "empty element"),
            ("0,", "empty element"),
            ("1,1", "GPU 1 appears twice"),
            ("0:2,1", "GPU 1 appears twice"),
            ("0:100000", "more than 4096 GPUs"),
        ],
    )
    def test_errors_name_the_bad_part(self, item: str, message: str) -> None:
        """A bad item is a GpuSpecError whose message points at the problem."""
        with pytest.raises(GpuSpecError, match=message):
            parse_gpu_item(item)

    @given(st.lists(st.integers(0, 999), unique=True, min_size=1, max_size=20))
    def test_any_list_of_distinct_ids_round_trips(self, gpus: list[int]) -> None:
        """A comma list of distinct ids parses back to the same list."""
        assert parse_gpu_item(",".join(map(str, gpus))) == gpus


@pytest.mark.unit
class TestWorkers:
    """How GPUs are grouped into workers."""

    def test_single_spec_gives_one_worker_per_gpu(self) -> None:
        """--workers 0:3: four workers of one GPU (the old GLLM's documented meaning)."""
        assert worker_gpus(["0:3"]) == [(0,), (1,), (2,), (3,)]

    def test_single_list_gives_one_worker_per_gpu(self) -> None:
        """--workers 0,2,5 and 0:1,4:5: one worker per GPU."""
        assert worker_gpus(["0,2,5"]) == [(0,), (2,), (5,)]
        assert worker_gpus(["0:1,4:5"]) == [(0,), (1,), (4,), (5,)]

    def test_several_specs_give_one_worker_each(self) -> None:
        """--workers 0:1 2:3: two workers of two GPUs."""
        assert worker_gpus(["0:1", "2:3"]) == [(0, 1), (2, 3)]
        assert worker_gpus(["0", "1", "2"]) == [(0,), (1,), (2,)]
        assert worker_gpus(["0,4", "1:3"]) == [(0, 4), (1, 2, 3)]

    def test_whitespace_inside_one_argument_separates_specs(self) -> None:
        """--workers "0:1 2:3" (one shell word) means the same as two arguments."""
        assert split_items(["0:1 2:3"]) == ["0:1", "2:3"]
        assert worker_gpus(["0:1 2:3"]) == worker_gpus(["0:1", "2:3"])

    def test_gpus_per_worker_splits_a_single_spec(self) -> None:
        """--workers 0:7 --gpus-per-worker 2: four workers of consecutive pairs."""
        assert worker_gpus(["0:7"], gpus_per_worker=2) == [(0, 1), (2, 3), (4, 5), (6, 7)]
        assert worker_gpus(["0:3"], gpus_per_worker=4) == [(0, 1, 2, 3)]

    def test_num_workers(self) -> None:
        """--num-workers N: GPUs 0..N-1, or N groups of --gpus-per-worker."""
        assert worker_gpus(num_workers=3) == [(0,), (1,), (2,)]
        assert worker_gpus(num_workers=2, gpus_per_worker=2) == [(0, 1), (2, 3)]

    @pytest.mark.parametrize(
        ("workers", "extra", "message"),
        [
            (["0:1", "1:2"], {}, "GPU 1 is given to worker 0 and to worker 1"),
            (["0", "0"], {}, "GPU 0 is given to worker 0 and to worker 1"),
            (["0:3", "5:3"], {}, "empty GPU range"),
            ([], {}, "empty --workers"),
            (["  "], {}, "empty --workers"),
            (["0:2"], {"gpus_per_worker": 2}, "3 GPUs in '0:2' cannot be split"),
            (["0:3"], {"gpus_per_worker": 0}, "at least 1"),
            (["0", "1"], {"gpus_per_worker": 1}, "applies to a single --workers spec"),
            (["0"], {"num_workers": 2}, "not both"),
            (None, {}, "give --workers"),
            (None, {"num_workers": 0}, "--num-workers must be at least 1"),
        ],
    )
    def test_errors(self, workers: list[str] | None, extra: dict[str, int], message: str) -> None:
        """Overlaps, bad groupings and missing specs are GpuSpecErrors."""
        with pytest.raises(GpuSpecError, match=message):
            worker_gpus(workers, **extra)
