"""The deploy commands as the files give them: the bash blocks of docs/DEPLOY.md (each with the
heading it is under and the variables its `# needs:` line names) and the steps of a workflow job.

The convention the blocks follow: every command runs as written in bash; a value the user supplies
is a shell variable, named on a `# needs: VAR1 VAR2` line at the top of the block; a value an earlier
step made is read by a command, never pasted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NEEDS = re.compile(r"^#\s*needs:\s*(?P<names>.*)$")
HEADING = re.compile(r"^(?P<level>#{2,4})\s+(?P<title>.+?)\s*$")
EXPRESSION = re.compile(r"\$\{\{\s*(?P<expr>.+?)\s*\}\}")
VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class Block:
    heading: str
    text: str
    needs: tuple[str, ...]


def blocks(markdown: str) -> list[Block]:
    """Every ```bash block, in order, with the nearest heading above it."""
    found: list[Block] = []
    heading = ""
    lines: list[str] | None = None
    for line in markdown.splitlines():
        if lines is None:
            match = HEADING.match(line)
            if match:
                heading = match["title"]
            elif line.strip() == "```bash":
                lines = []
        elif line.strip() == "```":
            text = "\n".join(lines) + "\n"
            found.append(Block(heading, text, needs(text)))
            lines = None
        else:
            lines.append(line)
    if lines is not None:
        raise ValueError(f"an unclosed ```bash block under {heading!r}")
    return found


def needs(text: str) -> tuple[str, ...]:
    """The variables a block's leading `# needs:` line names (comment lines may come before it)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        match = NEEDS.match(stripped)
        if match:
            names = tuple(match["names"].split())
            bad = [name for name in names if not VARIABLE.match(name)]
            if bad:
                raise ValueError(f"`# needs:` names shell variables in capitals, not {bad}")
            return names
        if not stripped.startswith("#"):
            return ()
    return ()


def commands(text: str) -> list[str]:
    """A block's commands: lines joined where they end in a backslash; comments and blank lines dropped."""
    found: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current.append(line)
        if not line.rstrip().endswith("\\"):
            found.append("\n".join(current))
            current = []
    if current:
        found.append("\n".join(current))
    return found


def first_word(command: str) -> str:
    """The program a command runs (after any VAR=value assignments)."""
    for word in command.split():
        if "=" in word and VARIABLE.match(word.split("=", 1)[0]):
            continue
        return word
    return ""


# --- workflows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    uses: str
    run: str
    env: dict[str, str]
    condition: str
    step_id: str
    with_: dict[str, str]


@dataclass
class Context:
    """What `${{ }}` expressions read: inputs, vars, secrets and the outputs of earlier steps."""

    inputs: dict[str, Any]
    vars: dict[str, str]
    secrets: dict[str, str]
    steps: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, expression: str) -> Any:
        path = expression.strip()
        parts = path.split(".")
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        sources: Mapping[str, Mapping[str, Any]] = {"inputs": self.inputs, "vars": self.vars, "secrets": self.secrets}
        if len(parts) == 2 and parts[0] in sources:
            if parts[1] not in sources[parts[0]]:
                raise KeyError(f"the rehearsal gives no value for {path}")
            return sources[parts[0]][parts[1]]
        raise ValueError(f"the rehearsal does not evaluate the expression {path!r}")

    def substitute(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            value = self.value(match["expr"])
            return str(value).lower() if isinstance(value, bool) else str(value)

        return EXPRESSION.sub(one, text)

    def holds(self, condition: str) -> bool:
        """A step's `if:`: a value, or its negation with `!`."""
        expression = EXPRESSION.sub(lambda m: m["expr"], condition).strip()
        if not expression:
            return True
        negate = expression.startswith("!")
        value = self.value(expression.lstrip("!").strip())
        return bool(value) != negate


def workflow_job(document: Mapping[str, Any], job: str) -> tuple[dict[str, str], list[Step]]:
    """A job's environment and steps."""
    definition = document["jobs"][job]
    steps = [
        Step(
            name=str(step.get("name") or step.get("uses") or ""),
            uses=str(step.get("uses", "")),
            run=str(step.get("run", "")),
            env={str(k): str(v) for k, v in (step.get("env") or {}).items()},
            condition=str(step.get("if", "")),
            step_id=str(step.get("id", "")),
            with_={str(k): str(v) for k, v in (step.get("with") or {}).items()},
        )
        for step in definition["steps"]
    ]
    return {str(k): str(v) for k, v in (definition.get("env") or {}).items()}, steps


def step_outputs(text: str) -> dict[str, str]:
    """What a step wrote to $GITHUB_OUTPUT (name=value lines)."""
    outputs: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs
