"""The environment files agree with each other, and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import tomllib

import yaml

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(specs) -> dict[str, str]:
    out = {}
    for spec in specs:
        m = PIN.match(spec.strip())
        assert m, f"not an exact pin: {spec!r}"
        out[_norm(m.group(1))] = m.group(2)
    return out


SELF = "hybridbatch["  # an extra that names other extras of the package itself (e.g. "hybridbatch[train]")


def pyproject_pins(repo) -> dict[str, str]:
    """Every exact pin of pyproject.toml: the core dependencies and every extra (self-references skipped)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += [s for s in extra if not s.startswith(SELF)]
    return _pins(specs)


def test_every_extra_is_pinned_and_all_covers_every_extra_but_test(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    pins = {}
    for name, specs in extras.items():
        pins[name] = _pins([s for s in specs if not s.startswith(SELF)])
    closure = dict(pins["all"])
    for ref in (s for s in extras["all"] if s.startswith(SELF)):
        for name in ref[len(SELF):-1].split(","):
            closure.update(pins[name.strip()])
    assert set(closure) == set().union(*(pins[n] for n in extras if n not in ("all", "test")))
    assert "torch" in pins["train"] and "sentence-transformers" in pins["st"] and "dvc" in pins["pipeline"]


def test_setup_installs_every_extra(repo):
    setup = (repo / "setup.sh").read_text()
    installs = [ln for ln in setup.splitlines() if "pip install" in ln and " -e " in ln]
    assert len(installs) == 2 and all(ln.rstrip().endswith("-e '.[all,test]'") for ln in installs), installs


def test_environment_yml_lists_the_same_pins_as_pyproject(repo):
    env = yaml.safe_load((repo / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip) == pyproject_pins(repo)
    assert "python=3.11" in env["dependencies"]


def test_constraints_pin_every_direct_dependency_at_the_same_version(repo):
    lines = [ln for ln in (repo / "constraints.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    constraints = _pins(lines)
    for name, version in pyproject_pins(repo).items():
        assert constraints.get(name) == version, f"{name}: pyproject {version}, constraints {constraints.get(name)}"
    assert constraints["torch"] == "2.13.0"


def test_ci_runs_the_readme_test_command_verbatim(repo):
    readme = (repo / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    commands = [ln for b in blocks[:2] for ln in b.splitlines() if ln and not ln.startswith("#")]
    assert commands[0].endswith("dvc repro") and commands[1].endswith("pytest"), commands
    assert commands[1] in (repo / ".ci" / "run").read_text()
