"""An import-linter contract type that allow-lists what a package imports.

import-linter's own types say what a package must not import (`forbidden`) or who may import
it (`protected`); none says "this package imports only these". That is the rule for
`akros_msgs` (DESIGN.md section 6.6: pydantic and the standard library, nothing else), and a
forbidden list cannot state it: whatever it does not name, a new dependency included, passes.
The root pyproject.toml registers this type as `only_imports`.
"""

import sys
from collections.abc import Iterable, Set
from typing import cast

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.imports import Module


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def imports_outside(
    imports: Iterable[tuple[str, str]],
    *,
    package: str,
    allowed: Iterable[str],
    standard_library: Set[str] = sys.stdlib_module_names,
) -> list[tuple[str, str]]:
    """The (importer, imported) pairs whose imported module is neither within `package`, nor
    in the standard library, nor within one of `allowed`, in the order given."""
    allowed = list(allowed)
    return [
        (importer, imported)
        for importer, imported in imports
        if not _is_within(imported, package)
        and imported.split(".")[0] not in standard_library
        and not any(_is_within(imported, name) for name in allowed)
    ]


class OnlyImportsContract(Contract):
    """`source_modules` (each with its descendants) import nothing but themselves, the
    standard library and `allowed_modules`. External packages are seen only when the top-level
    configuration has `include_external_packages = true`: without it this contract could not
    see the imports it exists to check, so it refuses to run."""

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField(), required=False)
    broken_contract_guidance = fields.TextField(required=False)

    # import-linter sets each field's parsed value on the instance, which type checkers cannot
    # see (its docs say so); these casts name the types it parsed them to.
    def _sources(self) -> list[Module]:
        return cast("list[Module]", self.source_modules)

    def _allowed(self) -> list[str]:
        return [module.name for module in cast("list[Module] | None", self.allowed_modules) or []]

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        if str(self.session_options.get("include_external_packages")).lower() != "true":
            raise ValueError(
                "An only_imports contract needs include_external_packages = true at the top level."
            )
        illegal: list[tuple[str, str, tuple[int | None, ...]]] = []
        for source in self._sources():
            if source.name not in graph.modules:
                raise ValueError(f"Module '{source.name}' does not exist.")
            importers = sorted({source.name} | graph.find_descendants(source.name))
            imports = [
                (importer, imported)
                for importer in importers
                for imported in sorted(graph.find_modules_directly_imported_by(importer))
            ]
            for importer, imported in imports_outside(
                imports, package=source.name, allowed=self._allowed()
            ):
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = tuple(detail["line_number"] for detail in details)
                illegal.append((importer, imported, lines))
        output.verbose_print(verbose, f"{len(illegal)} imports outside the allowed modules.")
        return ContractCheck(kept=not illegal, metadata={"illegal_imports": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        names = ", ".join(self._allowed()) or "nothing"
        output.print_error(
            f"Imports outside the standard library and the allowed modules ({names}):",
            bold=False,
        )
        output.new_line()
        for importer, imported, lines in check.metadata["illegal_imports"]:
            line_numbers = ", ".join(str(line) for line in lines)
            output.print_error(f"- {importer} -> {imported} (l.{line_numbers})", bold=False)
        output.new_line()
        guidance = cast("str | None", self.broken_contract_guidance)
        if guidance:
            output.print(guidance)
