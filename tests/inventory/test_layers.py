"""inventory's domain modules import only inventory, orders and the oms kernel (never a layer above them)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventory"
ALLOWED = {"inventory", "orders", "oms"}
# The outer ring: they parse input, call a service or a pipeline step, and render; they may import anything.
INTERFACE = {"views", "api", "urls", "tasks", "admin", "forms", "filters", "serializers", "apps"}


def project_packages() -> set[str]:
    return {path.parent.name for path in ROOT.glob("*/__init__.py")}


def domain_modules() -> list[Path]:
    return sorted(path for path in INVENTORY.glob("*.py") if path.stem not in INTERFACE | {"__init__"})


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every import in the file, at module level or inside functions (where a cycle would hide)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_inventory_domain_modules_import_nothing_above_orders():
    packages = project_packages()
    assert {"inventory", "orders", "connectors", "pipeline"} <= packages
    modules = domain_modules()
    assert {"services", "selectors", "models", "excel", "reservation_sql"} <= {path.stem for path in modules}
    upward = [f"{path.relative_to(ROOT)}:{line} imports {name}"
              for path in modules for line, name in imported_modules(path)
              if name.split(".")[0] in packages - ALLOWED]
    assert upward == []


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path):
    module = tmp_path / "services.py"
    module.write_text("def f():\n    from connectors.stock_push import stock_changed\n")
    assert imported_modules(module) == [(2, "connectors.stock_push")]
