"""The package's shape: no import cycles, layers that point one way, small files and functions,
argument errors before torch loads, and generic pieces that never ask which prior they have."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from tests.helpers.imports import PACKAGE, closure, cycles, import_graph

ROOT = PACKAGE.parent


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_outputs_commands_need_neither_the_training_loop_nor_the_guidance():
    graph = import_graph()
    for command in ("t3d.commands.render_video", "t3d.commands.export_mesh", "t3d.commands.evaluate"):
        reached = closure(graph, command)
        assert not {m for m in reached if m == "t3d.engine" or m.startswith("t3d.guidance")}, command


def test_configs_and_the_cli_import_no_torch():
    code = ("import sys; import t3d.cli.app, t3d.config, t3d.config.flagtable, t3d.run.folder, "
            "t3d.commands.generate; print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_a_bad_flag_is_reported_without_importing_torch(tmp_path):
    # torch made unimportable: the error must come out before anything tries to load it.
    code = ("import sys; sys.modules['torch'] = None; from t3d.cli import main; "
            f"sys.exit(main(['generate', 'a smiling head', '--steps', '0', '--out', r'{tmp_path / 'run'}']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == ["t3d: error: --steps must be between 1 and 1000000000, got 0"]
    assert not (tmp_path / "run").exists()


def test_files_and_functions_stay_small():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert too_long == []


def test_generic_pieces_never_ask_which_prior_they_have():
    # What differs between priors is a capability of the Prior interface (t3d/priors/base.py).
    identity = re.compile(r"prior\.name\b|hasattr\(prior|getattr\(prior|isinstance\(prior|is_analytic|\.refs\b")
    offenders = []
    for folder in ("guidance", "prompts", "scene"):
        for path in (PACKAGE / folder).rglob("*.py"):
            offenders += [f"{path.relative_to(ROOT)}:{i + 1}" for i, line in enumerate(path.read_text().splitlines())
                          if identity.search(line)]
    for path in (PACKAGE / "engine.py", PACKAGE / "commands" / "generate.py"):
        offenders += [f"{path.relative_to(ROOT)}:{i + 1}" for i, line in enumerate(path.read_text().splitlines())
                      if identity.search(line)]
    assert offenders == []


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def test_every_docs_reference_in_the_code_exists():
    reference = re.compile(r"docs/([a-z0-9-]+\.md)(?:#([a-z0-9-]+))?")
    missing = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "examples").glob("*"), *(ROOT / "tests").rglob("*.py")]:
        for page, anchor in reference.findall(path.read_text()) if path.is_file() else []:
            doc = ROOT / "docs" / page
            if not doc.is_file():
                missing.append(f"{path.relative_to(ROOT)}: docs/{page}")
                continue
            anchors = {_anchor(line.lstrip("#")) for line in doc.read_text().splitlines() if line.startswith("#")}
            if anchor and anchor not in anchors:
                missing.append(f"{path.relative_to(ROOT)}: docs/{page}#{anchor}")
    assert missing == []
