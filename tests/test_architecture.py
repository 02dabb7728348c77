"""The import direction of the layers (docs/architecture.md), read from the source with ast: no app imports a
layer above it, and function-local imports of project modules stay few and explained.

The layers, lowest first: oms (the kernel) < orders < inventory < fulfillment < printing, connectors <
aftersales, finance < desk, customer < pipeline < the interface modules of any app (views, API, URLs, tasks, admin, forms,
filters, serializers, management commands, template tags) < demo, bench (and scripts/). A module may import its
own layer and any lower one; two domain apps on one floor (printing and connectors, aftersales and finance)
do not import each other. Foreign keys point the same way (one documented exception).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.architecture

ROOT = Path(__file__).resolve().parents[1]

APP_LAYERS = {
    "oms": 0, "gateway": 0,  # gateway: the outbound kit (errors, HTTP client base, sandbox base), no Django
    "orders": 1,
    "inventory": 2,
    "fulfillment": 3,
    "printing": 4, "connectors": 4,
    "aftersales": 5, "finance": 5,
    "desk": 6, "customer": 6,  # read across the domain apps; their flows (expedite, tickets) are pipeline's
    "pipeline": 7,
}
INTERFACE = 8
TOP = 9  # demo data, benchmarks and scripts: they may import anything, and nothing imports them
TOP_PACKAGES = {"demo": TOP, "bench": TOP, "scripts": TOP}
LAYER_NAMES = {0: "oms", 1: "orders", 2: "inventory", 3: "fulfillment", 4: "printing/connectors",
               5: "aftersales/finance", 6: "desk/customer", 7: "pipeline", INTERFACE: "interface",
               TOP: "demo/bench"}

# A module is an interface module when its file or a package on its path is named so (views.py, views_kanban.py,
# urls_api.py, views/…), or it sits in management/commands/ or templatetags/.
INTERFACE_NAMES = ("views", "api", "urls", "tasks", "admin", "forms", "filters", "serializers", "middleware")
SKIPPED_DIRS = {"migrations", "tests", "node_modules", "static", "templates", "locale", "docs", "var"}
MAX_LOCAL_IMPORTS = 10


def is_interface(module: str) -> bool:
    parts = module.split(".")
    if "templatetags" in parts:
        return True
    if "management" in parts and "commands" in parts:
        return True
    for part in parts[1:]:
        if part in INTERFACE_NAMES:
            return True
        # views_kanban, urls_api…; but not oms.api_errors or oms.api_schema, the kernel's error format helpers.
        if any(part.startswith(f"{name}_") for name in INTERFACE_NAMES if name != "api"):
            return True
    return False


def layer_of(module: str) -> int | None:
    app = module.split(".")[0]
    if app in TOP_PACKAGES:
        return TOP_PACKAGES[app]
    if app not in APP_LAYERS:
        return None
    return INTERFACE if is_interface(module) else APP_LAYERS[app]


def project_packages() -> set[str]:
    return {path.name for path in ROOT.iterdir() if path.is_dir() and (path / "__init__.py").exists()
            and path.name not in SKIPPED_DIRS} | {"scripts"}


def project_modules() -> dict[str, Path]:
    """Dotted name -> file of every project module (migrations and tests left out)."""
    modules = {}
    for package in sorted(project_packages()):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if SKIPPED_DIRS & set(relative.parts[:-1]):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    path: Path
    line: int
    target: str  # the imported project module (a submodule when `from package import submodule`)
    local: bool  # inside a function body
    type_checking: bool  # under `if TYPE_CHECKING:`


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, packages: set[str], known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(child):
                    if target.split(".")[0] in packages:
                        found.append(Import(module, path, child.lineno, target, in_function, type_checking))
                continue
            guarded = type_checking or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda),
                  guarded)

    def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        source = _resolve(node, module, path.name == "__init__.py")
        # `from orders import services` imports the submodule orders.services; `from orders.models import Order`
        # imports orders.models.
        return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names]

    visit(tree, False, False)
    return found


def all_imports() -> list[Import]:
    modules = project_modules()
    packages = project_packages()
    found = []
    for module, path in modules.items():
        found.extend(imports_of(module, path, packages, set(modules)))
    return found


def where(item: Import) -> str:
    return f"{item.path.relative_to(ROOT)}:{item.line}"


def test_every_project_package_has_a_layer():
    unknown = sorted(package for package in project_packages() if layer_of(package) is None)
    assert not unknown, f"packages missing from the layer map in tests/test_architecture.py: {unknown}"


def test_no_module_imports_a_layer_above_its_own():
    violations = []
    for item in sorted(set(all_imports()), key=lambda item: (str(item.path), item.line, item.target)):
        if item.type_checking:
            continue
        source, target = layer_of(item.module), layer_of(item.target)
        if source is None or target is None:
            continue
        sideways = (0 < target == source < INTERFACE and item.module.split(".")[0] != item.target.split(".")[0])
        if target > source or sideways:
            violations.append(f"{where(item)} imports {item.target} "
                              f"(layer {LAYER_NAMES[source]} -> layer {LAYER_NAMES[target]})")
    assert not violations, f"{len(violations)} upward imports:\n" + "\n".join(violations)


def _has_comment(path: Path, line: int) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    here = lines[line - 1]
    above = lines[line - 2].strip() if line >= 2 else ""
    return "#" in here or above.startswith("#")


def test_function_local_imports_of_project_modules_are_few_and_explained():
    local = [item for item in all_imports() if item.local and not item.type_checking]
    statements = sorted({(item.path, item.line) for item in local})
    listing = "\n".join(f"{path.relative_to(ROOT)}:{line}" for path, line in statements)
    uncommented = [f"{path.relative_to(ROOT)}:{line}" for path, line in statements if not _has_comment(path, line)]
    assert len(statements) <= MAX_LOCAL_IMPORTS, (
        f"{len(statements)} function-local imports of project modules (at most {MAX_LOCAL_IMPORTS}):\n{listing}")
    assert not uncommented, ("function-local imports without a comment saying why (on the line or the line "
                             "above):\n" + "\n".join(uncommented))


def test_the_checker_sees_an_upward_import(tmp_path):
    # The check itself: a domain service importing the pipeline, or a view importing the demo, is caught.
    source = tmp_path / "services.py"
    source.write_text("from pipeline import orders\nfrom demo.loader import demo_load\n\n\ndef f():\n"
                      "    from fulfillment import services  # why: test\n", encoding="utf-8")
    found = imports_of("orders.services", source, {"pipeline", "demo", "fulfillment"},
                       {"pipeline.orders", "demo.loader", "fulfillment.services"})
    assert [(item.target, item.local) for item in found] == [
        ("pipeline.orders", False), ("demo.loader", False), ("fulfillment.services", True)]
    assert [layer_of(item.target) > layer_of("orders.services") for item in found] == [True, True, True]
    assert layer_of("orders.views") == INTERFACE and layer_of("demo.loader") > INTERFACE
    assert layer_of("oms.api_errors") == 0 and layer_of("printing.urls_api") == INTERFACE
    assert layer_of("orders.management.commands.x") == INTERFACE


# A model of a lower app that references a higher one, kept on purpose (docs/architecture.md says why).
FOREIGN_KEY_EXCEPTIONS = {("orders", "inventory.SKU")}


def test_foreign_keys_point_down():
    """A model's ForeignKey/OneToOneField/ManyToManyField to another app's model points to a lower layer."""
    from django.apps import apps  # noqa: PLC0415 - the app registry is ready only once pytest-django set it up

    violations = []
    for model in apps.get_models():
        app = model._meta.app_label
        if app not in APP_LAYERS:
            continue
        for field in model._meta.get_fields():
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            label = f"{target}.{field.related_model.__name__}"
            if target not in APP_LAYERS or target == app or (app, label) in FOREIGN_KEY_EXCEPTIONS:
                continue
            if APP_LAYERS[target] >= APP_LAYERS[app]:
                violations.append(f"{app}.{model.__name__}.{field.name} -> {label}")
    assert not violations, "foreign keys pointing up or sideways:\n" + "\n".join(sorted(violations))
