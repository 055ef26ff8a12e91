"""Where Swagger UI's files are: the swagger-ui-py wheel ships them (docs/API.md says why this
package). Only its static folder is used; importing the package would load its framework
adapters, so the folder is found without importing it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import cache
from pathlib import Path

# What /api/docs loads: the standalone bundle (it defines SwaggerUIBundle) and its stylesheet.
FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


@cache
def folder() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(spec.submodule_search_locations[0]) / "static"


@cache
def version() -> str:
    return importlib.metadata.version("swagger-ui-py")
