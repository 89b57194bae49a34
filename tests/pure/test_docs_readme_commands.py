"""README's commands measure what its text promises: every command that picks --sources keeps
single_comm, the reference the report's answer (does a separate AG communicator pay off?) needs;
without it the answer section is empty. Pure (reads README.md)."""

import os
import re

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")


def _commands_with_sources(text):
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = [command for block in blocks for command in block.replace("\\\n", " ").splitlines()]
    return [command for command in commands if "--sources " in command]


def test_every_readme_command_that_picks_sources_keeps_single_comm():
    with open(README, encoding="utf-8") as handle:
        commands = _commands_with_sources(handle.read())
    assert commands, "README shows no command with --sources: the test reads nothing"
    for command in commands:
        sources = re.search(r"--sources\s+(\S+)", command).group(1).split(",")
        assert "single_comm" in sources, command


def test_a_command_without_single_comm_is_caught():
    text = "```bash\ntorchrun -m agrs_bench.run --sources megatron_core,pg_collection \\\n  --pp 2\n```\n"
    (command,) = _commands_with_sources(text)
    assert "single_comm" not in re.search(r"--sources\s+(\S+)", command).group(1)
