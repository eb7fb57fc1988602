"""A tool source: ``calculate``, exact arithmetic on + - * / // % ** and parentheses.

    tool_sources: [{type: calculator, max_exponent: 64}]
"""

from __future__ import annotations

import ast
import operator
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from react_eval import Sandbox, Task, ToolResult, ToolSpec

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the largest exponent ``**`` accepts (keeps a hostile expression from eating the harness' memory)
    max_exponent: int = Field(default=64, ge=1, le=10_000)
    #: the longest expression accepted, in characters
    max_length: int = Field(default=500, ge=1)


class Calculator:
    """One rollout's backend (stateless, so every rollout could share one)."""

    def __init__(self, config: CalculatorConfig):
        self.config = config

    async def list_tools(self) -> list[ToolSpec]:
        return [ToolSpec(name="calculate", description="Evaluate an arithmetic expression exactly.",
                         parameters={"type": "object", "properties": {"expression": {"type": "string"}},
                                     "required": ["expression"], "additionalProperties": False})]

    async def call(self, name: str, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        if name != "calculate":
            return ToolResult.error(f"unknown tool {name!r}", "unknown_tool")
        expression = str(arguments.get("expression", ""))
        if len(expression) > self.config.max_length:
            return ToolResult.error(f"expression longer than {self.config.max_length} characters", "invalid_arguments")
        try:
            value = self._eval(ast.parse(expression, mode="eval").body)
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as exc:
            return ToolResult.error(f"cannot evaluate {expression!r}: {exc}", "invalid_arguments")
        return ToolResult(content=_show(value))

    async def aclose(self) -> None:
        pass

    def _eval(self, node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self._eval(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self._eval(node.left), self._eval(node.right)
            if isinstance(node.op, ast.Pow) and (right.denominator != 1 or abs(right) > self.config.max_exponent):
                raise ValueError(f"exponents must be whole numbers up to {self.config.max_exponent}")
            return Fraction(_BINARY[type(node.op)](left, right))
        raise ValueError(f"only numbers and + - * / // % ** are allowed, not {type(node).__name__}")


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.12g}"


class CalculatorToolSource:
    """Opened once per rollout: a fresh :class:`Calculator`."""

    config_class = CalculatorConfig
    label = "calculator"

    def __init__(self, config: CalculatorConfig):
        self.config = config

    async def open(self, task: Task, sandbox: Sandbox | None) -> Calculator:
        return Calculator(self.config)
