"""The llama-quantize command line of the session's plan, built off the GUI thread and kept.

Building it for a 7B-class plan takes tens of milliseconds (compact rules over every tensor), so
the Plan panel asks for it in a light job; Copy afterwards reuses the text built for the same plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quant_core.plan import Plan
from quant_core.recipe import llama_quantize_command

from .workers import GeneratorWorker

if TYPE_CHECKING:
    from .session import ExplorerSession

COMMAND_OUTPUT = "OUTPUT.gguf"


class LlamaCommand:
    """The last command line built, for the plan it was built for; one light job at a time."""

    def __init__(self, session: ExplorerSession) -> None:
        self.session = session
        self._built: tuple[Plan, str] | None = None
        self._job: GeneratorWorker | None = None

    def text(self, output: str = COMMAND_OUTPUT) -> str:
        """The command line of the current plan (the last one built, when fresh)."""
        s = self.session
        assert s.model is not None and s.plan is not None
        if output == COMMAND_OUTPUT and self._built is not None and self._built[0] is s.plan:
            return self._built[1]
        return llama_quantize_command(s.model, s.plan, str(s.model.path), output)

    def request(self) -> None:
        """Build the current plan's command in a light job; the session's ``command_ready`` delivers it."""
        s = self.session
        if s.model is None or s.plan is None:
            return
        plan = s.plan
        if self._built is not None and self._built[0] is plan:
            s.command_ready.emit(self._built[1])
            return

        def done(text: str) -> None:
            if not s.closed and plan is s.plan:  # else a newer plan's command is coming
                self._built = (plan, text)
                s.command_ready.emit(text)

        def failed(message: str) -> None:
            if not s.closed:
                s.error.emit(message)

        s.light.drop(self._job)
        self._job = s.light.run(
            llama_quantize_command, s.model, plan, str(s.model.path), COMMAND_OUTPUT, on_result=done, on_error=failed
        )
