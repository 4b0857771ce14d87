"""Writes kubesim's protobuf codec tables from the upstream `generated.proto` files.

    .venv/bin/python libs/kubesim/scripts/generate_protobuf_tables.py \
        [--api /work/.mirror/kubernetes+api/repo] \
        [--apimachinery /work/.mirror/kubernetes+apimachinery/repo]

Both arguments are git repositories (bare mirrors are fine): the files are read from their
HEAD with `git show`, and the commit hashes go into the output's header, so the tables say
exactly which wire format they describe. The upstream files are not copied into this repo.

The .proto files use a small proto2 subset, parsed here by hand: `package`, `import`,
`option`, top-level `message` blocks holding `optional`/`repeated` fields and
`map<string, T>` fields, and comments. Anything else stops the generator, so a change in
upstream's style cannot go unnoticed. (A PyPI proto parser would bring a dependency for
forty lines of regular expressions.)
"""

import argparse
import json
import re
import subprocess
from pathlib import Path
from typing import Any

API_FILES = (
    "core/v1",
    "apps/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "networking/v1",
    "scheduling/v1",
    "storage/v1",
    "events/v1",
    "policy/v1",
    "rbac/v1",
    "admissionregistration/v1",
)
APIMACHINERY_FILES = (
    "pkg/apis/meta/v1",
    "pkg/api/resource",
    "pkg/runtime",
    "pkg/runtime/schema",
    "pkg/util/intstr",
)
SCALARS = {"string", "bytes", "bool", "int32", "int64", "double"}

# Messages with their own JSON form (a string, a number or a raw document), written by hand in
# the codec rather than from a Go struct: go-to-protobuf's custom marshallers.
CUSTOM_JSON = {
    "k8s.io.apimachinery.pkg.api.resource.Quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Timestamp",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs",
    "k8s.io.apimachinery.pkg.runtime.RawExtension",
    "k8s.io.apimachinery.pkg.runtime.TypeMeta",
    "k8s.io.apimachinery.pkg.runtime.Unknown",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
}

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_FIELD = re.compile(r"(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;")
_MAP_FIELD = re.compile(r"map<\s*string\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")
_MESSAGE = re.compile(r"message\s+(\w+)\s*\{([^{}]*)\}")


def git_show(repository: Path, path: str) -> str:
    return subprocess.run(  # noqa: S603 - fixed argument list, git from PATH on purpose
        ["git", "-C", str(repository), "show", f"HEAD:{path}"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def git_head(repository: Path) -> str:
    return subprocess.run(  # noqa: S603 - fixed argument list, git from PATH on purpose
        ["git", "-C", str(repository), "rev-parse", "HEAD"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def parse_proto(text: str) -> tuple[str, dict[str, list[list[Any]]]]:
    """The package name and, per message, its fields as [number, name, label, type].

    label is "optional", "repeated" or "map" (keys are always strings); type is a scalar name
    or a message name, still relative to the package when it does not start with a dot.
    """
    text = _COMMENT.sub("", text)
    package_match = re.search(r"package\s+([\w.]+)\s*;", text)
    if package_match is None:
        raise ValueError("no package statement")
    messages: dict[str, list[list[Any]]] = {}
    for name, body in _MESSAGE.findall(text):
        fields: list[list[Any]] = []
        for statement in (s.strip() for s in body.split(";")):
            if not statement:
                continue
            statement += ";"
            if match := _MAP_FIELD.fullmatch(statement):
                value_type, field_name, number = match.groups()
                fields.append([int(number), field_name, "map", value_type])
            elif match := _FIELD.fullmatch(statement):
                label, field_type, field_name, number = match.groups()
                fields.append([int(number), field_name, label, field_type])
            else:
                raise ValueError(f"message {name}: unsupported statement {statement!r}")
        messages[name] = fields
    rest = _MESSAGE.sub("", text)
    rest = re.sub(r"(syntax|package|import|option)\b[^;]*;", "", rest)
    if rest.strip():
        raise ValueError(f"unsupported top-level text: {rest.strip()[:80]!r}")
    return package_match.group(1), messages


def resolve(package: str, type_name: str, known: set[str]) -> str:
    if type_name in SCALARS:
        return type_name
    full = type_name[1:] if type_name.startswith(".") else f"{package}.{type_name}"
    if full not in known:
        raise ValueError(f"unresolved type {type_name} in package {package}")
    return full


_GO_STRUCT = re.compile(r"^type (\w+) struct\s*\{(?:\}|\n(.*?)^\})", re.DOTALL | re.MULTILINE)
_GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([\w.*\[\]{}]+)\s+`([^`]*)`\s*$")
_GO_TAG = re.compile(r'(\w+):"([^"]*)"')


def parse_go_structs(text: str) -> dict[str, dict[int, tuple[str, bool, bool, bool]]]:
    """Per Go struct, its protobuf-tagged fields: number -> (JSON name, inline, omitempty, pointer).

    The .proto keeps only the wire format; what the JSON form of the same object looks like
    (its names, which embedded structs are inlined, which zero values Go leaves out) is in the
    Go struct tags, so the codec can give the dicts a JSON decoder would give.
    """
    structs: dict[str, dict[int, tuple[str, bool, bool, bool]]] = {}
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    for name, body in _GO_STRUCT.findall(text):
        fields: dict[int, tuple[str, bool, bool, bool]] = {}
        for line in body.splitlines():
            line = re.sub(r"^\s*//.*|(`)\s*//.*$", r"\1", line)
            match = _GO_FIELD.match(line)
            if match is None:
                # Fields without a protobuf tag have no wire form; a tagged one must be read.
                if 'protobuf:"' in line:
                    raise ValueError(f"struct {name}: unsupported line {line.strip()!r}")
                continue
            go_name, go_type, tag_text = match.groups()
            tags = dict(_GO_TAG.findall(tag_text))
            if tags.get("protobuf", "-") == "-":
                continue
            number = int(tags["protobuf"].split(",")[1])
            json_parts = tags.get("json", "").split(",")
            # An embedded struct without a JSON name has its fields in the outer object.
            inline = (go_name is None and not json_parts[0]) or "inline" in json_parts[1:]
            json_name = "" if inline else json_parts[0] or go_name or go_type.split(".")[-1]
            fields[number] = (json_name, inline, "omitempty" in json_parts[1:], go_type[0] == "*")
        structs[name] = fields
    return structs


def tables(sources: list[str], go_sources: dict[str, str]) -> dict[str, list[list[Any]]]:
    """Every message's fields as [number, JSON name, label, type, inline, omit zero].

    go_sources maps a proto package to the Go source of its types. "omit zero" is true for
    a non-pointer scalar tagged omitempty: Go's JSON encoder leaves its zero value out, and
    protobuf cannot tell an unset one from a zero one, so the codec leaves it out too.
    """
    parsed = [parse_proto(text) for text in sources]
    known = {f"{package}.{name}" for package, messages in parsed for name in messages}
    go_structs = {package: parse_go_structs(text) for package, text in go_sources.items()}
    result: dict[str, list[list[Any]]] = {}
    for package, messages in parsed:
        for name, fields in messages.items():
            full_name = f"{package}.{name}"
            go_fields = None
            if full_name not in CUSTOM_JSON:
                go_fields = go_struct(go_structs, go_sources[package], package, name)
            rows = []
            for number, field_name, label, field_type in fields:
                resolved = resolve(package, field_type, known)
                json_name, inline, omit_zero = field_name, False, False
                if go_fields is not None:
                    if number not in go_fields:
                        raise ValueError(f"{full_name}: no Go field for number {number}")
                    json_name, inline, omitempty, pointer = go_fields[number]
                    omit_zero = (
                        omitempty and not pointer and label == "optional" and resolved in SCALARS
                    )
                rows.append([number, json_name, label, resolved, inline, omit_zero])
            result[full_name] = sorted(rows)
    return result


def go_struct(
    go_structs: dict[str, dict[str, dict[int, tuple[str, bool, bool, bool]]]],
    source: str,
    package: str,
    name: str,
) -> dict[int, tuple[str, bool, bool, bool]]:
    """A message's Go struct: in its package, or the metav1 struct it is declared as.

    core/v1 declares `type List metav1.List`, the one such case.
    """
    if name in go_structs[package]:
        return go_structs[package][name]
    alias = re.search(rf"^type {name} metav1\.(\w+)$", source, re.MULTILINE)
    if alias is None:
        raise ValueError(f"no Go struct for {package}.{name}")
    return go_structs["k8s.io.apimachinery.pkg.apis.meta.v1"][alias.group(1)]


def go_package_source(repository: Path, directory: str) -> str:
    """The Go sources of one package (tests and generated code left out), joined."""
    names = subprocess.run(  # noqa: S603 - fixed argument list, git from PATH on purpose
        ["git", "-C", str(repository), "ls-tree", "--name-only", "HEAD", f"{directory}/"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    chosen = [
        n
        for n in names
        if n.endswith(".go")
        and not n.endswith("_test.go")
        and not n.rsplit("/", 1)[-1].startswith(("generated", "zz_generated", "types_swagger"))
    ]
    return "\n".join(git_show(repository, n) for n in chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", type=Path, default=Path("/work/.mirror/kubernetes+api/repo"))
    parser.add_argument(
        "--apimachinery",
        type=Path,
        default=Path("/work/.mirror/kubernetes+apimachinery/repo"),
    )
    default_output = (
        Path(__file__).resolve().parents[1] / "src/akros_kubesim/protobuf/messages.json"
    )
    parser.add_argument("--output", type=Path, default=default_output)
    arguments = parser.parse_args()
    sources = [git_show(arguments.api, f"{p}/generated.proto") for p in API_FILES]
    sources += [
        git_show(arguments.apimachinery, f"{p}/generated.proto") for p in APIMACHINERY_FILES
    ]
    go_sources = {
        "k8s.io.api." + p.replace("/", "."): go_package_source(arguments.api, p) for p in API_FILES
    }
    go_sources |= {
        "k8s.io.apimachinery." + p.replace("/", "."): go_package_source(arguments.apimachinery, p)
        for p in APIMACHINERY_FILES
    }
    document = {
        "source": {
            "note": (
                "Generated by libs/kubesim/scripts/generate_protobuf_tables.py from the "
                "generated.proto files of the repositories below; do not edit by hand. "
                "Field rows: [number, JSON name, optional|repeated|map, type, inline, omit zero]."
            ),
            "licence": "Apache-2.0 (the Kubernetes Authors)",
            "repositories": {
                "https://github.com/kubernetes/api": {
                    "commit": git_head(arguments.api),
                    "files": [f"{p}/generated.proto, {p}/*.go" for p in API_FILES],
                },
                "https://github.com/kubernetes/apimachinery": {
                    "commit": git_head(arguments.apimachinery),
                    "files": [f"{p}/generated.proto, {p}/*.go" for p in APIMACHINERY_FILES],
                },
            },
        },
        "messages": dict(sorted(tables(sources, go_sources).items())),
    }
    # The source first, as the file's header; then one message per line.
    text = json.dumps(document, indent=None, separators=(",", ":"))
    text = text.replace(',"messages":{', ',\n"messages":{\n', 1)
    arguments.output.write_text(text.replace('],"k8s', '],\n"k8s') + "\n")


if __name__ == "__main__":
    main()
