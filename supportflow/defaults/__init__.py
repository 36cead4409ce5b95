"""The defaults that travel with the package: the canonical flow and the sandbox's knowledge.

A deployment's own `config/` folder (which `supportflow init` writes from these files) takes
their place when the working folder has one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PACKAGED = Path(__file__).resolve().parent
FLOWS = PACKAGED / "flows"
KNOWLEDGE = PACKAGED / "sandbox" / "knowledge.yaml"
LOCAL = Path("config")


def flows_dir() -> Path:
    """`./config/flows` when the working folder has one, else the package's flows."""
    local = LOCAL / "flows"
    return local.resolve() if local.is_dir() else FLOWS


def knowledge_file() -> Path:
    """`./config/sandbox/knowledge.yaml` when the working folder has one, else the package's."""
    local = LOCAL / "sandbox" / "knowledge.yaml"
    return local.resolve() if local.is_file() else KNOWLEDGE


class ConfigExists(Exception):
    """`supportflow init` would overwrite files that are already there."""


def write_config(target: Path, *, force: bool = False) -> list[Path]:
    """Copy the packaged flows and knowledge into `target` (a `config/` folder to start from)."""
    sources = [*sorted(FLOWS.glob("*.yaml")), KNOWLEDGE]
    planned = [(source, target / source.relative_to(PACKAGED)) for source in sources]
    existing = [destination for _, destination in planned if destination.exists()]
    if existing and not force:
        raise ConfigExists(", ".join(str(path) for path in existing))
    for source, destination in planned:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return [destination for _, destination in planned]
