"""README.md is a landing page whose numbers are generated: every ``<!-- name -->...<!-- /name -->`` block of README.md
and docs/*.md is regenerated here, in memory, from the committed ``results/``, ``dvc.lock``, ``docs/timings.tsv``
and ``params.yaml`` (hybridbatch.reporting.readme, hybridbatch.pipeline.study), and must equal the committed text;
no result number stands outside those blocks; the README stays under 12 KB; two tables of the same runs agree;
and every relative link or path the README and docs/ name exists in the repository."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from helpers.tiny import REPO
from hybridbatch.params import read_params
from hybridbatch.pipeline import study
from hybridbatch.reporting import readme

MAX_README_BYTES = 12 * 1024
BLOCK = re.compile(r"<!-- ([\w-]+) -->\n?(.*?)<!-- /\1 -->", re.S)
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])


def _blocks(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in BLOCK.finditer(text)}


@pytest.fixture(scope="module")
def generated():
    """``{path: regenerated text}`` of every file with generated blocks (the significance tests run once: ~10 s)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)  # the study's status and costs read dvc.lock and docs/timings.tsv relative to the repository
        params = read_params(REPO / "params.yaml")
        return readme.generated_files(REPO, params, study.generated_blocks(params))


def test_every_generated_block_equals_its_regeneration_from_the_committed_results(generated):
    """A number typed by hand, or results changed without ``python -m hybridbatch.pipeline.study readme``, fails."""
    stale = []
    for path, text in generated.items():
        have, want = _blocks((REPO / path).read_text(encoding="utf-8")), _blocks(text)
        for name in want:
            if have.get(name, "").strip() != want[name].strip():
                stale.append(f"{path}: block {name}")
    assert not stale, ("stale generated blocks (run `python -m hybridbatch.pipeline.study readme`): "
                       + "; ".join(stale))


def test_every_marker_block_is_a_generated_one(generated):
    """No hand-filled ``<!-- x -->`` block that looks generated but is not."""
    for doc in DOCS:
        rel = str(doc.relative_to(REPO))
        names = set(_blocks(doc.read_text(encoding="utf-8")))
        assert names <= set(_blocks(generated.get(rel, ""))), f"{rel}: blocks {sorted(names)} not all generated"
    assert {"main-table", "verdict", "alpha-table"} <= set(_blocks(generated["README.md"]))


def test_no_result_number_outside_the_generated_blocks():
    """Outside its generated blocks the README holds no decimal (mAP, p value, difference): those drift."""
    text = BLOCK.sub("", (REPO / "README.md").read_text(encoding="utf-8"))
    stray = re.findall(r"(?<![\w.])[−+-]?0?\.\d{2,}\b", text)  # .777, 0.777, +.011; not 2408.10536
    assert not stray, f"README.md: numbers outside generated blocks: {stray}"


def test_readme_is_a_landing_page():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= MAX_README_BYTES
    # another engineer's section sits between these markers; the CI and users' commands are verbatim
    assert text.index("<!-- own-data:start -->") < text.index("<!-- own-data:end -->")
    assert "## Use it on your own data" in text
    for command in ("bash setup.sh && . .venv/bin/activate && dvc repro",
                    "bash setup.sh && . .venv/bin/activate && pytest",
                    "python -m hybridbatch.pipeline.regenerate"):
        assert command in text
    assert "bash setup.sh && . .venv/bin/activate && pytest" in (REPO / ".ci" / "run").read_text()


def _table(block: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def test_the_alpha_tables_end_points_are_the_main_runs_of_the_sweeps_seeds():
    """alpha 0 / .5 / 1 are the X-Y / Hybrid / X-X-mono main runs of the sweep's seeds (every alpha has the same
    seeds; the main table averages more seeds of the primary fold): their seed means, digit for digit, from the
    results (the alpha table once said Cr. .675 / Mul. .557 where the same runs gave .674 / .556)."""
    from hybridbatch.reporting.results import seed_summary, study_results, summary_lookup
    blocks = _blocks((REPO / "README.md").read_text(encoding="utf-8"))
    if blocks["alpha-table"].strip().startswith("Pending"):
        pytest.skip("the study is running: no table yet (test_a_running_study_gets_pending_blocks covers this state)")
    alpha = _table(blocks["alpha-table"])
    params = read_params(REPO / "params.yaml")
    fold = params["grid"]["scaling_fold"]
    sweep = study_results(REPO / "results", params, "alpha")
    seeds = sorted({int(s) for s in sweep.loc[sweep["alpha"].astype(float) == 0.25, "seed"]})
    main = study_results(REPO / "results", params, "main")
    main = main[(main["fold"] == fold) & main["seed"].isin(seeds)]
    look = summary_lookup(seed_summary(main, ["map_mo", "map_cr", "map_mul"]))
    dataset = params["folds"][fold]["eval"]
    columns = {h.split(" (")[1].rstrip(")"): i for i, h in enumerate(alpha[0]) if "(" in h}
    assert set(columns) == {"X-Y", "Hybrid", "X-X-mono"}
    names = {"X-Y": "xy", "Hybrid": "hybrid", "X-X-mono": "xx"}
    for setting, key in (("Mo.", "map_mo"), ("Cr.", "map_cr"), ("Mul.", "map_mul")):
        arow = next(r for r in alpha[1:] if r[0] == setting)
        for label, col in columns.items():
            assert arow[col] == readme.num(look[(dataset, names[label], key)][0]), (label, setting)


def _ignored(rel: str) -> bool:
    """A path git ignores (a DVC output, logs, build products): named in docs but absent from a clean clone."""
    parts = [p for p in rel.split("/") if p]
    for i in range(len(parts)):
        gi = REPO.joinpath(*parts[:i]) / ".gitignore"
        if not gi.is_file():
            continue
        verdict = None
        for line in gi.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line.lstrip("!").strip("/")
            n = pattern.count("/") + 1
            if len(parts) - i >= n and fnmatch.fnmatch("/".join(parts[i:i + n]), pattern):
                verdict = not negate
        if verdict is not None:
            return verdict
    return False


PLACEHOLDER = re.compile(r"[<>*{}…]|\.\.\.")
BASES = ("", "src/", "src/hybridbatch/", "src/stages/")  # repository root; package-relative; stage scripts


def _named_paths(doc: Path) -> set[str]:
    text = doc.read_text(encoding="utf-8")
    links = {m for m in re.findall(r"\]\(([^)#\s]+)", text) if not re.match(r"[a-z]+:", m)}
    ticks = {t.rstrip(",.;:") for t in re.findall(r"`([^`\s]+)`", text)}
    ticks = {t for t in ticks if "/" in t and not re.match(r"[a-z]+:|--|\w+@", t)}
    return {p for p in links | ticks if not PLACEHOLDER.search(p)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_every_path_named_exists(doc):
    """Markdown links resolve from the file's folder; a path in backticks from the repository root (or, in the
    architecture tables, from src/, the package or the stage scripts); ``file::test`` names a test that exists."""
    missing = []
    for name in sorted(_named_paths(doc)):
        rel, _, test = name.rstrip("/").partition("::")
        if test:
            source = REPO / rel
            if not (source.is_file() and re.search(rf"def {re.escape(test)}\(", source.read_text(encoding="utf-8"))):
                missing.append(name)
            continue
        candidates = [(doc.parent / rel).resolve()] + [REPO / base / rel for base in BASES]
        if any(c.exists() for c in candidates):
            continue
        in_repo = [str(c.resolve().relative_to(REPO.resolve())) for c in candidates
                   if c.resolve().is_relative_to(REPO.resolve())]
        if any(_ignored(r) for r in in_repo):
            continue
        missing.append(name)
    assert not missing, f"{doc.relative_to(REPO)} names paths the repository does not hold: {missing}"


def test_a_running_study_gets_pending_blocks_without_numbers(tmp_path):
    """While a run of the study has no metrics.json, every result block says what is missing and shows no number
    and no interim test; the status says how many units are finished; once complete it says so."""
    params = read_params(REPO / "params.yaml")
    runs = list(dict.fromkeys(readme.grid_runs(params)["run"]))
    (tmp_path / "results" / runs[0]).mkdir(parents=True)
    (tmp_path / "results" / runs[0] / "metrics.json").write_text("{}")
    assert readme.missing_runs(tmp_path / "results", params) == runs[1:]
    blocks = readme.readme_blocks(tmp_path, params)
    assert set(blocks) == {"primary", "verdict", "secondary", "main-table", "alpha-table"}
    assert f"1 of the study's {len(runs)} runs have results (first missing: run `{runs[1]}`)" in blocks["primary"]
    assert all(b.startswith("Pending") and not re.search(r"\d\.\d|\.\d{2}", b) for b in blocks.values())
    assert "is running: **3 of 84 units finished**" in readme.status_block(3, 84)
    assert "is complete: all 84 units" in readme.status_block(84, 84)


def test_the_words_on_unmarked_cells_separate_small_p_from_mixed_seed_pairings():
    """An unmarked cell with p_Holm < .05 (seed pairings of both signs) is named as such, never folded into
    "p_Holm ≥ < .001"."""
    import pandas as pd
    rows = pd.DataFrame({"dataset": ["xquad_r", "xquad_r"], "setting": ["mo", "cr"], "p_holm": [0.0004, 0.6]})
    words = readme._rest(rows)
    assert words == "; no other cell is significant (XQuAD-R Mo.: p_Holm < .001 but seed pairings of both signs; " \
                    "elsewhere p_Holm ≥ .60)"
    assert "≥ <" not in words and readme._rest(rows.iloc[1:], lead="") == " (p_Holm ≥ .60)"
