"""Every name neurosim.plugins lists resolves to its family module's object; importing the
package does not import the families (PyG, diffusers) until a name is used."""
import importlib
import subprocess
import sys

import neurosim.plugins as plugins


def test_every_listed_name_resolves_to_its_module():
    assert callable(plugins.convert) and plugins.convert is importlib.import_module("neurosim.plugins.convert").convert
    for module, names in plugins._FAMILIES.items():
        family = importlib.import_module(f"neurosim.plugins.{module}")
        for name in names:
            assert getattr(plugins, name) is getattr(family, name), (module, name)


def test_importing_the_package_imports_no_family():
    code = ("import sys, neurosim.plugins as p; "
            "print(sorted(m for m in sys.modules if m.startswith('neurosim.plugins.') or m in ('torch_geometric', "
            "'diffusers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['neurosim.plugins.block', 'neurosim.plugins.convert']"
