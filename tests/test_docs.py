"""The docs stay true: the configuration reference matches the config models, and every relative
link in the Markdown files points at a file (and heading) that exists. No model is loaded."""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # text may span lines
FENCE = re.compile(r"^\s*(```|~~~)")


@functools.cache
def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "scripts" / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_up_to_date():
    gen = _generator()
    current = gen.TARGET.read_text(encoding="utf-8") if gen.TARGET.exists() else ""
    assert current == gen.render(), (
        "docs/configuration.md does not match the config models; regenerate it with "
        "`python scripts/gen_config_reference.py --write`"
    )


def _markdown_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "packages").glob("*/README.md"))]
    return [f for f in files if f.exists()]


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (newlines kept, so offsets map to lines)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return re.sub(r"`[^`]*`", lambda m: "\n" * m.group(0).count("\n"), "\n".join(lines))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file (a repeated heading gets -1, -2, ...)."""
    slug = _generator().slug
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not m:
            continue
        base = slug(m.group(1).replace("`", ""))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_relative_links_resolve():
    files = _markdown_files()
    assert (ROOT / "README.md") in files and any(f.parent.name == "docs" for f in files)
    broken = []
    for md in files:
        prose = _prose(md.read_text(encoding="utf-8"))
        for match in LINK.finditer(prose):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            dest = (md.parent / path_part).resolve() if path_part else md
            where = f"{md.relative_to(ROOT)}:{prose.count(chr(10), 0, match.start()) + 1}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{where} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def _commands(text: str) -> list[tuple[int, str]]:
    """``(line, command)`` of every `pte` command a reader is meant to run: the lines of fenced
    code blocks that start with `pte` (after an optional `... &&`, continued over trailing
    backslashes) and the examples in a table's last column."""
    out, fenced, buf, start = [], False, "", 0
    for i, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            if buf:
                buf += " " + line.strip()
            elif re.match(r"^\s*(\S.*&&\s*)?pte\s", line):
                buf, start = line.strip(), i
            else:
                continue
            if buf.endswith("\\"):
                buf = buf[:-1]
                continue
            out.append((start, buf))
            buf = ""
        elif line.startswith("| `pte "):
            out += [(i, cmd) for cmd in re.findall(r"`(pte [^`]+)`", line.split("|")[-2])]
    return out


def test_every_pte_command_in_the_docs_parses():
    """Each documented command line is accepted by the CLI as written (options, values, plugin
    names), without running it. A path under runs/ may not exist yet: an earlier command makes it."""
    import shlex

    import click

    from pte_cli.cli import cli

    seen, bad = 0, []
    for md in _markdown_files():
        for line, command in _commands(md.read_text(encoding="utf-8")):
            words = shlex.split(command.split("&&")[-1], comments=True)
            words = words[: words.index(">")] if ">" in words else words
            cmd, args = cli, words[1:]
            try:
                while isinstance(cmd, click.Group):
                    if not args or args[0] not in cmd.commands:
                        raise click.UsageError(f"no such command {args[:1]}")
                    cmd, args = cmd.commands[args[0]], args[1:]
                cmd.make_context(cmd.name, args)
            except click.ClickException as err:
                message = err.format_message()
                if not ("No such file" in message and "runs/" in message):
                    bad.append(f"{md.relative_to(ROOT)}:{line}: {command}\n    {message}")
            seen += 1
    assert seen >= 20, seen  # the extraction found the documented commands
    assert not bad, "documented commands the CLI rejects:\n" + "\n".join(bad)
