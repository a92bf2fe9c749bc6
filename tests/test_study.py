"""The study in pieces (hybridbatch.pipeline.study) and the quick check's copy (hybridbatch.pipeline.quickcheck): the units are the
grid's runs in priority order with DVC stage names that exist; the cost records round-trip; the runner says where its
log is, which unit and stage runs and the time left, removes a finished unit's checkpoints/<run>/ (only a finished
one's), and reports a bad option in one line (exit 2); an overlay is applied key by key and a typo changes nothing."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import yaml

from helpers.tiny import REPO
from hybridbatch.pipeline import study
from hybridbatch.params import read_params
from hybridbatch.pipeline.quickcheck import apply_overlay


def test_units_cover_the_grid_in_priority_order(tmp_path):
    from helpers.study import write_study_params

    params = read_params(write_study_params(tmp_path / "params.yaml"))  # the pre-registered study
    g = params["grid"]
    upstream, units = study.units(params)
    assert upstream[:2] == ["prepare", "import_model"]
    order = [u.study for u in units]
    # references, the main table, the ladder, the alpha sweep, the scaling studies -- never back (the pre-registered
    # cut order: what comes last is cut first)
    ranks = {"reference": 0, "main": 1, "ladder": 2, "alpha": 3, "size": 4, "languages": 4}
    assert [ranks[s] for s in order] == sorted(ranks[s] for s in order)
    main = [u.run for u in units if u.study == "main"]
    blocks = g["main"].values()
    assert len(main) == len(set(main)) == sum(len(b["folds"]) * len(b["strategies"]) * len(b["seeds"]) for b in blocks)
    seed_of = {u.run: int(u.run.rsplit("-s", 1)[1]) for u in units if u.study == "main"}
    # every cell's first 3 seeds, seed by seed; then the primary fold's further seeds; then the second fold's
    core = [seed_of[r] for r in main[:len([r for r in main if seed_of[r] <= 15])]]
    assert core == sorted(core) and set(core) == {13, 14, 15}
    rest = main[len(core):]
    primary = [r for r in rest if r.startswith("mlqa2xquad")]
    assert rest[:len(primary)] == primary and [seed_of[r] for r in rest[len(primary):]] == [16] * 3 + [17] * 3
    card = {u.run: [s for s in u.stages if s.startswith("model_card")] for u in units if u.study == "main"}
    assert card["mlqa2xquad-xy-s22"] == ["model_card@mlqa2xquad-xy-22"]
    assert card["xquad2mlqa-xx-mixed-s13"] == ["model_card_mixed@xquad2mlqa-xx-mixed-13"]
    alpha = [u.run for u in units if u.study == "alpha"]
    assert len(alpha) == len(g["alphas"]) * len(g["alpha_seeds"])
    ladder = [u for u in units if u.study == "ladder"]
    assert len(ladder) == len(g["ladder"]["steps"]) * len(g["ladder"]["strategies"]) * len(g["ladder"]["seeds"])
    assert ladder[0].stages == ["train_ladder@480-xx-13", "evaluate_ladder@480-xx-13"]
    for u in units:  # a unit is a whole run: trained and evaluated together, committed with its results
        assert u.paths[0] == f"results/{u.run}"
        families = [s.split("@")[0] for s in u.stages]
        if u.study != "reference" and not u.run.endswith("zeroshot"):
            assert families.index([f for f in families if f.startswith("train")][0]) < \
                families.index([f for f in families if f.startswith("evaluate")][0])


def test_units_of_an_older_grid_are_one_line_error(tmp_path):
    """A params file of the earlier study (grid.seeds, no grid.main) is refused in one line, naming the key."""
    params = read_params(REPO / "params.yaml")
    path = tmp_path / "old.yaml"
    g = {k: v for k, v in params["grid"].items() if k not in ("main", "tatoeba_seeds", "ladder", "alpha_seeds")}
    path.write_text(yaml.safe_dump({**params, "grid": {**g, "seeds": [13]}}))
    with pytest.raises(SystemExit) as err:
        study.main(["plan", "--params", str(path)])
    assert err.value.code == 2


def test_unit_stage_names_are_stages_of_the_pipeline():
    from dvc.repo import Repo

    params = read_params(REPO / "params.yaml")
    upstream, units = study.units(params)
    with Repo(str(REPO)) as repo:
        names = {s.addressing for s in repo.index.stages}
    wanted = set(upstream) | {s for u in units for s in u.stages}
    assert wanted <= names, sorted(wanted - names)[:5]


def test_cost_records_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study._record("train@mlqa2xquad-xx-13", 400.4, 790.0, 2100.0)
    study._record("train@mlqa2xquad-xy-13", 430.0, 800.0, 2000.0)
    study._record("train@mlqa2xquad-hybrid-13", 1300.0, 900.0, 2000.0)  # slowed by another job on the cores
    study._record("evaluate@mlqa2xquad-xy-13", 380.0, 700.0, 1500.0)
    lines = (tmp_path / study.TIMINGS).read_text().splitlines()
    assert lines[0].split("\t") == list(study.TIMING_COLUMNS) and len(lines) == 5
    assert study.measured_seconds() == {"train": 430.0, "evaluate": 380.0}  # the median per family


def test_overlay_is_applied_key_by_key(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    merged = apply_overlay(params, REPO / "configs" / "quick.yaml")
    quick = yaml.safe_load((REPO / "configs" / "quick.yaml").read_text())
    full = yaml.safe_load((REPO / "params.yaml").read_text())
    assert yaml.safe_load(params.read_text()) == merged
    assert merged["train"]["steps"] == quick["train"]["steps"]
    assert merged["train"]["lr"] == full["train"]["lr"]  # keys the overlay does not name stay
    assert merged["miracl"]["runs"] == quick["miracl"]["runs"]  # a mapping is one value


def test_overlay_typo_changes_nothing(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  stpes: 3\n")
    with pytest.raises(SystemExit, match="train.stpes is not a key"):
        apply_overlay(params, bad)
    assert params.read_text() == (REPO / "params.yaml").read_text()


def test_status_counts_a_unit_finished_only_with_its_lock_entries_and_metrics(tmp_path, monkeypatch):
    import json

    params = read_params(REPO / "params.yaml")
    _, units = study.units(params)
    done, half = units[0], next(u for u in units if u.study == "main")
    monkeypatch.chdir(tmp_path)
    stages = {s: {"cmd": "x"} for s in done.stages} | {half.stages[0]: {"cmd": "x"}}  # train only: not finished
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))
    for u in (done, half):
        (tmp_path / "results" / u.run).mkdir(parents=True)
        (tmp_path / "results" / u.run / "metrics.json").write_text(json.dumps(
            {"config": {"best_step": 45, "steps": 120, "mono_share": 0.5},
             "xquad_r": {"map_mo": 0.8, "map_cr": 0.64, "map_mul": 0.3, "rank_distance": 1217.1}}))
    rows = study.status_rows(params, tmp_path / "results")
    assert [r["run"] for r in rows if r["finished"]] == [done.run]
    text = study.status_markdown(rows)
    assert text.startswith(f"1 of {len(units)} units finished.")
    assert f"| `{done.run}` | 0.800 | 0.640 | 0.300 | 1217.1 | -- | 45/120 | 0.50 |" in text


def test_a_resumed_stage_is_recorded_apart_from_its_family(tmp_path, monkeypatch):
    """A training stage that continued from its checkpoint ran only part of a run: its time is recorded under
    "train-resumed" and neither the runner's estimate nor the cost table's "train" row counts it."""
    monkeypatch.chdir(tmp_path)
    study._record("train@a", 800.0, 1600.0, 4000.0)
    out = ("Running stage 'train@b':\n> python src/stages/train.py ...\n"
           "07:59:54 INFO hybridbatch.training.loop: resuming from the checkpoint at step 40\n")
    monkeypatch.setattr(study, "_dvc_waiting", lambda args: (0, out, 650.0, 1200.0, 4200.0))
    assert study.reproduce("train@b")
    families = [line.split("\t")[2] for line in (tmp_path / study.TIMINGS).read_text().splitlines()[1:]]
    assert families == ["train", "train-resumed"]
    assert study.measured_seconds()["train"] == 800.0


def test_costs_sum_the_units_at_their_family_means(tmp_path, monkeypatch):
    params = read_params(REPO / "params.yaml")
    upstream, units = study.units(params)
    monkeypatch.chdir(tmp_path)
    for stage, wall in (("train@a", 400), ("train@b", 440), ("evaluate@a", 300)):
        study._record(stage, wall, 2 * wall, 2000)
    text = study.cost_markdown(params)
    assert "| `train` | 2 | 7.0 | 14.0 | 2000 |" in text
    n_train = sum(1 for u in units for s in u.stages if s.startswith("train@"))
    n_eval = sum(1 for u in units for s in u.stages if s.startswith("evaluate@"))
    assert f"{(n_train * 420 + n_eval * 300) / 3600:.1f} h of wall time" in text
    assert "train_size" in text.split("not measured yet")[1] and "code_train" not in text


def test_fill_blocks_replaces_only_the_named_blocks_and_refuses_a_missing_one():
    text = "intro\n<!-- a -->\nold a\n<!-- /a -->\nmiddle\n<!-- b -->old b<!-- /b -->\nend\n"
    out = study.fill_blocks(text, {"a": "new a\n", "b": "new b"})
    assert out == "intro\n<!-- a -->\nnew a\n<!-- /a -->\nmiddle\n<!-- b -->\nnew b\n<!-- /b -->\nend\n"
    assert study.fill_blocks(out, {"a": "new a"}) == out  # idempotent
    with pytest.raises(SystemExit, match="README: no block <!-- c -->"):
        study.fill_blocks(text, {"c": "x"})


def test_pending_stages_is_dvc_allow_missing_test(tmp_path):
    """A stage whose output is gone (no DVC cache on this machine) but whose lock entry matches is finished;
    one whose dependency changed, or that never ran, is pending; a name that is no stage is an error."""
    import subprocess
    import sys

    def dvc(*args):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tmp_path, check=True, capture_output=True)

    dvc("init", "--no-scm")
    (tmp_path / "in.txt").write_text("1\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n"
        "  later:\n    cmd: cp in.txt later.txt\n    deps: [in.txt]\n    outs: [later.txt]\n")
    dvc("repro", "copy")
    (tmp_path / "out.txt").unlink()
    shutil.rmtree(tmp_path / ".dvc" / "cache")
    assert study.pending_stages(["copy"], tmp_path) == set()
    assert study.pending_stages(["copy", "later"], tmp_path) == {"later"}
    (tmp_path / "in.txt").write_text("2\n")
    assert study.pending_stages(["copy"], tmp_path) == {"copy"}
    with pytest.raises(SystemExit, match="no stage cpy"):
        study.pending_stages(["cpy"], tmp_path)


# ------------------------------------------------------------------------------------------ the runner's progress
def _stub_runner(monkeypatch, pending: set[str], outputs: dict[str, str] | None = None):
    """``run`` without DVC: every ``dvc repro`` answers from ``outputs`` (default: "Running stage"), measured
    at 60 s; ``pending`` stands in for DVC's own test; the final report stage does nothing."""
    calls: list[str] = []

    def fake_dvc(args):
        stage = args[-1]
        calls.append(stage)
        out = (outputs or {}).get(stage, f"Running stage '{stage}':\n> python ...\n")
        if out == "FAIL":
            return 1, "boom\n", 1.0, 1.0, 100.0
        return 0, out, 60.0, 60.0, 100.0

    monkeypatch.setattr(study, "_dvc_waiting", fake_dvc)
    monkeypatch.setattr(study, "pending_stages", lambda stages, root=None: set(pending) & set(stages))
    monkeypatch.setattr(study, "reproduce_all", lambda do_commit: None)
    return calls


def test_run_says_where_its_log_is_which_unit_and_stage_runs_and_the_time_left(tmp_path, monkeypatch, capsys):
    params = read_params(REPO / "params.yaml")
    _, units = study.units(params)
    ref = [u for u in units if u.study == "reference"]
    monkeypatch.chdir(tmp_path)
    study._record("evaluate_zeroshot@x", 120.0, 100.0, 1000.0)  # measured: 2 min; bm25 not yet (15 min)
    todo = ref[1:]  # the first reference unit is finished before
    calls = _stub_runner(monkeypatch, {s for u in todo for s in u.stages})
    assert study.run(str(REPO / "params.yaml"), None, False, ["reference"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "study: log logs/study.log" in lines[0]
    assert (tmp_path / "logs" / "study.log").read_text().splitlines()[0].endswith(lines[0][9:])
    assert f"[1/{len(ref)}] {ref[0].run}: finished before" in out
    for i, u in enumerate(todo, 2):
        for stage in u.stages:
            assert f"[{i}/{len(ref)}] {u.run}: {stage}" in out
    first = next(line for line in lines if f"[2/{len(ref)}] {todo[0].run} (reference):" in line)
    expected = sum(2 if u.stages[0].startswith("evaluate_zeroshot") else 15 for u in todo)
    assert f"~{expected} min left for {len(todo)} unit(s)" in first
    last = next(line for line in lines if f"[{len(ref)}/{len(ref)}] {todo[-1].run} (reference):" in line)
    assert "left for 1 unit(s)" in last
    assert calls[:4] == ["prepare", "import_model", "code_train", "code_evaluate"]


def test_a_finished_or_restored_unit_leaves_no_checkpoint_directory(tmp_path, monkeypatch):
    """checkpoints/<run>/ of a unit that ran, was restored from the run cache (a killed training that DVC later
    satisfied) or was finished before is removed; that of a unit not reached, or whose stage failed, is kept:
    a killed run must still resume from it."""
    params = read_params(REPO / "params.yaml")
    _, units = study.units(params)
    main = [u for u in units if u.study == "main"][:4]
    monkeypatch.chdir(tmp_path)
    for u in main:
        (tmp_path / "checkpoints" / u.run / "step-000040").mkdir(parents=True)
    train = main[1].stages[0]
    restored = {train: f"Stage '{train}' is cached - skipping run, checking out outputs\n"}
    failing = {main[3].stages[0]: "FAIL"}
    _stub_runner(monkeypatch, {s for u in main[1:] for s in u.stages}, {**restored, **failing})
    monkeypatch.setattr(study, "units", lambda p: (["prepare"], main))
    with pytest.raises(SystemExit, match="failed"):
        study.run(str(REPO / "params.yaml"), None, False)
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left == [main[3].run]  # finished before (0), restored (1), ran (2): removed; failed (3): kept
    assert "restored from the run cache" in (tmp_path / study.LOG).read_text()


def test_run_stops_before_a_unit_past_until_and_keeps_its_checkpoint(tmp_path, monkeypatch):
    params = read_params(REPO / "params.yaml")
    _, units = study.units(params)
    main = [u for u in units if u.study == "main"][:1]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints" / main[0].run).mkdir(parents=True)
    calls = _stub_runner(monkeypatch, set(main[0].stages))
    monkeypatch.setattr(study, "units", lambda p: ([], main))
    soon = dt.datetime.now() + dt.timedelta(minutes=1)  # a main unit: ~30 min before any was measured
    assert study.run(str(REPO / "params.yaml"), soon, False) == 0
    assert calls == [] and (tmp_path / "checkpoints" / main[0].run).is_dir()
    assert f"stop: {main[0].run} would take ~30 min" in (tmp_path / study.LOG).read_text()


def test_parse_until_is_the_next_such_time():
    now = dt.datetime(2024, 5, 1, 22, 30, 15)
    assert study.parse_until("23:05", now) == dt.datetime(2024, 5, 1, 23, 5)
    assert study.parse_until("3:40", now) == dt.datetime(2024, 5, 2, 3, 40)


@pytest.mark.parametrize("args, named", [
    (["run", "--until", "25:00"], "--until '25:00'"),
    (["run", "--until", "soon"], "--until 'soon'"),
    (["run", "--until", "12:75"], "--until '12:75'"),
    (["run", "--params", "missing.yaml"], "--params missing.yaml: params file missing.yaml not found"),
    (["plan", "--params", "bad.yaml"], "--params bad.yaml: bad.yaml is not valid YAML"),
    (["status", "--params", "nogrid.yaml"], "--params nogrid.yaml: the grid cannot be read (KeyError: 'grid')"),
    (["run", "--params", "list.yaml"], "--params list.yaml: list.yaml: expected a mapping of sections"),
])
def test_cli_errors_are_one_line_with_exit_status_2(tmp_path, monkeypatch, capsys, args, named):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("grid: [1\n")
    (tmp_path / "nogrid.yaml").write_text("train: {}\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setattr(study, "run", lambda *a, **k: pytest.fail("ran despite a bad option"))
    with pytest.raises(SystemExit) as exc:
        study.main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and named in err, err


def test_each_committed_unit_carries_the_refreshed_status_blocks(tmp_path, monkeypatch):
    """With --commit, a unit's commit holds its paths, the code stamps and the README / docs blocks the runner
    refreshed after it, so every commit of the study is a state the README test accepts."""
    params = read_params(REPO / "params.yaml")
    _, units = study.units(params)
    main = [u for u in units if u.study == "main"][:2]
    monkeypatch.chdir(tmp_path)
    _stub_runner(monkeypatch, {s for u in main for s in u.stages})
    monkeypatch.setattr(study, "units", lambda p: ([], main))
    refreshed: list[int] = []
    monkeypatch.setattr(study, "refresh_readme", lambda p: refreshed.append(1) or ["README.md", "docs/STUDY.md"])
    commits: list[tuple[list[str], str]] = []
    monkeypatch.setattr(study, "commit", lambda unit, msg: commits.append((unit.paths, msg)))
    assert study.run(str(REPO / "params.yaml"), None, True) == 0
    assert len(refreshed) == len(commits) == 2
    for u, (paths, msg) in zip(main, commits):
        assert paths == [*u.paths, "build/code", "README.md", "docs/STUDY.md"] and msg.startswith(f"study: {u.run}")
