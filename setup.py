"""Package layout: the repository's top-level `collector/` and `scorers/` folders are the
`driftline.collector` and `driftline.scorers` packages.

The folders stay at the top level (the project's layout), while their import names stay inside the
one `driftline` namespace, so the app-side install never drops a generic top-level `collector`
module into an application's environment. The mapping is setuptools' `package_dir`; an editable
install (`pip install -e .`) maps the same names to the same folders, so there is no link in the tree.
"""

from setuptools import find_namespace_packages, setup

ROOTS = {"driftline": "driftline", "driftline.collector": "collector", "driftline.scorers": "scorers"}


def _packages() -> list[str]:
    # Namespace discovery also lists the data folders (scorers/grounding/data, web/templates, ...),
    # so package-data ships their files and setuptools does not warn that it would drop them.
    out: list[str] = []
    for name, folder in ROOTS.items():
        out.append(name)
        out.extend(f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=["__pycache__", "*.__pycache__"]))
    return out


setup(packages=_packages(), package_dir=ROOTS)
