"""The two-worker batch runner (hybridbatch.pipeline.batches): the study's unfinished units in the study's order,
``--per-worker`` x N at a time through the worker copies, one commit per batch with the refreshed status blocks;
no batch started past ``--until``; the reports once nothing is left; bad options in one line (exit 2)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from helpers.tiny import REPO
from hybridbatch.params import read_params
from hybridbatch.pipeline import batches, study


@pytest.fixture
def stubbed(tmp_path, monkeypatch):
    """The study's first 7 main units, 2 of them finished; workers.run, commits and the reports recorded."""
    _, units = study.units(read_params(REPO / "params.yaml"))
    main = [u for u in units if u.study == "main"][:7]
    finished = {s for u in (main[0], main[3]) for s in u.stages}
    done: set[str] = set(finished)
    calls: dict[str, list] = {"workers": [], "commit": [], "reports": [], "readme": 0}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study, "units", lambda p: (["prepare"], main))
    monkeypatch.setattr(study, "pending_stages", lambda stages: {s for s in stages if s not in done})

    def fake_workers(root, n, targets):
        calls["workers"].append((n, list(targets)))
        done.update(targets)

    def fake_readme(params):
        calls["readme"] += 1
        return ["README.md", "docs/STUDY.md"]

    monkeypatch.setattr(batches.workers, "run", fake_workers)
    monkeypatch.setattr(study, "refresh_readme", fake_readme)
    monkeypatch.setattr(study, "commit", lambda unit, msg: calls["commit"].append((unit.paths, msg)))
    monkeypatch.setattr(study, "reproduce_all", lambda do_commit: calls["reports"].append(do_commit))
    return main, calls


def test_batches_take_the_unfinished_units_in_order_and_commit_each_batch(stubbed):
    main, calls = stubbed
    assert batches.run(str(REPO / "params.yaml"), 2, None, True) == 0
    todo = [u for i, u in enumerate(main) if i not in (0, 3)]
    got = [targets for _, targets in calls["workers"]]
    assert [n for n, _ in calls["workers"]] == [2, 2]
    assert got == [[s for u in todo[:4] for s in u.stages], [s for u in todo[4:] for s in u.stages]]
    assert len(calls["commit"]) == 2 and calls["reports"] == [True]
    paths, msg = calls["commit"][0]
    assert all(p in paths for u in todo[:4] for p in u.paths)
    assert "build/code" in paths and "README.md" in paths and "docs/STUDY.md" in paths
    assert msg.startswith("study: " + ", ".join(u.run for u in todo[:4]))


def test_no_batch_starts_past_until(stubbed):
    _, calls = stubbed
    soon = dt.datetime.now() + dt.timedelta(minutes=1)  # 4 main units at 15 min a family: far more than a minute
    assert batches.run(str(REPO / "params.yaml"), 2, soon, True) == 0
    assert calls["workers"] == [] and calls["commit"] == [] and calls["reports"] == []
    assert "batches: stop: the next batch (2 units)" in (study.LOG).read_text()  # shrunk to 1 a worker, still past


def test_a_smaller_batch_runs_where_a_whole_one_would_end_past_until(stubbed, monkeypatch):
    main, calls = stubbed
    monkeypatch.setattr(study, "measured_seconds", lambda: {"train": 600.0, "evaluate": 600.0})
    # a unit ~1200 s (its card and MIRACL stages not counted), x SLOWDOWN / 2 workers: 4 units ~60 min, 2 ~30 min
    until = dt.datetime.now() + dt.timedelta(minutes=40)
    assert batches.run(str(REPO / "params.yaml"), 2, until, True) == 0
    todo = [u for i, u in enumerate(main) if i not in (0, 3)]
    # the first batch is 1 unit a worker (later ones are estimated from its wall time: ~0 s with this stub)
    assert calls["workers"][0][1] == [s for u in todo[:2] for s in u.stages]


def test_unit_minutes_seed_the_first_estimate(stubbed):
    main, calls = stubbed
    until = dt.datetime.now() + dt.timedelta(minutes=25)  # 2 units of 20 min on 2 workers fit; 4 do not
    assert batches.run(str(REPO / "params.yaml"), 2, until, True, unit_minutes=20) == 0
    todo = [u for i, u in enumerate(main) if i not in (0, 3)]
    assert calls["workers"][0][1] == [s for u in todo[:2] for s in u.stages]


def test_without_commit_nothing_is_committed(stubbed):
    _, calls = stubbed
    assert batches.run(str(REPO / "params.yaml"), 2, None, False, per_worker=1) == 0
    assert len(calls["workers"]) == 3 and calls["commit"] == [] and calls["reports"] == [False]


@pytest.mark.parametrize("args", [["--workers", "0"], ["--per-worker", "0"], ["--until", "25:00"]])
def test_bad_options_are_one_line_with_exit_status_2(args, capsys):
    with pytest.raises(SystemExit) as exc:
        batches.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and ("error" in err[-1])


def test_an_only_run_leaves_the_reports_to_the_whole_study(stubbed, monkeypatch):
    """``--only ladder`` finishing its own units while other studies' units are left must not start the reports
    (a `dvc repro --allow-missing` would train the rest one by one, uncommitted, and analyse before the study ends)."""
    main, calls = stubbed
    ladder = [dataclasses.replace(u, study="ladder") for u in main[:2]]
    units = ladder + main[2:]
    monkeypatch.setattr(study, "units", lambda p: (["prepare"], units))
    assert batches.run(str(REPO / "params.yaml"), 2, None, True, only=["ladder"]) == 0
    assert [t for _, t in calls["workers"]] == [[s for s in units[1].stages]]  # units[0] finished before
    assert calls["reports"] == []
    assert batches.run(str(REPO / "params.yaml"), 2, None, True, only=["main"]) == 0
    assert calls["reports"] == [True]  # the last selection completes the whole study
