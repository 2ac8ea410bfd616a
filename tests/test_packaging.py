"""The installed package: imported from outside the repository, versioned, with its commands.

The checks run in child interpreters started in a temporary folder, so that nothing from the
source tree can shadow the installed copy.
"""
import importlib.machinery
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(args, tmp_path, check=True):
    """Run a command in ``tmp_path``; return the finished process."""
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def project_version():
    """``[project] version`` from pyproject.toml (tomllib from Python 3.11, a regex before)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        section = text.split("[project]", 1)[1].split("\n[", 1)[0]
        return re.search(r'^version\s*=\s*"([^"]+)"', section, re.MULTILINE).group(1)
    return tomllib.loads(text)["project"]["version"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """What a fresh interpreter outside the repository sees of the installed package."""
    code = textwrap.dedent("""
        import importlib.metadata, json, sysconfig
        import gmm_fast, gmm_fast._lloyd
        dist = importlib.metadata.distribution("gmm_fast")
        print(json.dumps({
            "file": gmm_fast.__file__,
            "extension": gmm_fast._lloyd.__file__,
            "version": gmm_fast.__version__,
            "metadata_version": dist.version,
            "direct_url": dist.read_text("direct_url.json"),
            "site": [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]],
        }))
    """)
    result = run([sys.executable, "-c", code], tmp_path_factory.mktemp("outside"))
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_imports_the_installed_copy_from_outside_the_repository(installed):
    direct_url = json.loads(installed["direct_url"] or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        pytest.skip("editable install: the package is served from src/ on purpose")
    package_dir = Path(installed["file"]).resolve().parent
    assert package_dir.name == "gmm_fast"
    assert package_dir.parent in {Path(p).resolve() for p in installed["site"]}, installed
    assert not package_dir.is_relative_to(ROOT / "src")
    # The kernels are compiled extension modules, not sources picked up by accident.
    assert installed["extension"].endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_version_matches_pyproject_and_meson(installed):
    version = project_version()
    meson = re.search(r"version:\s*'([^']+)'", (ROOT / "meson.build").read_text(encoding="utf-8"))
    assert installed["version"] == version
    assert installed["metadata_version"] == version
    assert meson.group(1) == version


def gmm_fast_command():
    """The ``gmm-fast`` console script installed next to this interpreter."""
    scripts = sysconfig.get_path("scripts")
    command = shutil.which("gmm-fast", path=scripts)
    assert command is not None, f"no gmm-fast console script in {scripts}"
    return command


@pytest.mark.parametrize("prefix", [[sys.executable, "-m", "gmm_fast"], None],
                         ids=["python-m", "console-script"])
def test_command_line_help(prefix, tmp_path):
    prefix = prefix or [gmm_fast_command()]
    top = run(prefix + ["--help"], tmp_path)
    assert top.stdout.startswith("usage: gmm-fast")
    assert "demo" in top.stdout
    demo = run(prefix + ["demo", "--help"], tmp_path)
    assert "--random-state" in demo.stdout
    # A command is required: argparse exits with status 2 and says so.
    missing = run(prefix, tmp_path, check=False)
    assert missing.returncode == 2
    assert "required" in missing.stderr
