"""The separate Lava environment, shared by the tests that run Lava.

``lava_env`` builds it with ``scripts/build_lava_env.py`` (about a minute the first time,
instant once its stamp exists) and returns its folder. It skips, printing why, only where the
script reports that this machine cannot build it (exit 3: no Python 3.11 or no package
registry); any other build failure fails the tests. A skip is not a pass.
"""
import subprocess
import sys
from pathlib import Path

import pytest

BUILD_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build_lava_env.py"
CANNOT_BUILD = 3


@pytest.fixture(scope="session")
def lava_env() -> Path:
    """The Lava environment's folder, built (or found by its stamp) by the project's script."""
    result = subprocess.run([sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600)
    if result.returncode == CANNOT_BUILD:
        reason = f"Lava environment cannot be built here: {result.stderr.strip()[-2000:]}"
        print(reason)
        pytest.skip(reason)
    assert result.returncode == 0, f"build_lava_env.py failed:\n{result.stderr[-4000:]}"
    env = Path(result.stdout.strip().splitlines()[-1])
    assert (env / "bin" / "python").is_file(), env
    return env
