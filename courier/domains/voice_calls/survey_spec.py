"""A voice survey's ``spec``: its questions, how each is answered and checked
(docs/VOICE_CALLS.md, "The survey spec").

``check_spec`` names every problem of a spec (422, one error per problem, each pointing at the
attribute); ``questions_of`` reads a checked spec; ``judge`` checks one answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from courier.core.errors import ErrorItem

MAX_QUESTIONS = 20
MAX_PROMPT = 1000
MAX_CHOICES = 20
MAX_RETRIES = 5
DEFAULT_RETRIES = 1
DEFAULT_TIMEOUT = 5
TOP_KEYS = {"questions", "greeting", "goodbye"}
QUESTION_KEYS = {
    "name",
    "prompt",
    "answer",
    "choices",
    "min",
    "max",
    "digits",
    "retries",
    "timeout",
}
ANSWERS = ("dtmf", "speech")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KEYS = re.compile(r"^[0-9*#]{1,20}$")
POINTER = "/data/attributes/spec"


@dataclass(frozen=True)
class Question:
    name: str
    prompt: str
    answer: str  # dtmf or speech
    choices: tuple[str, ...] | None
    minimum: int | None
    maximum: int | None
    digits: int | None
    retries: int
    timeout: int


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value.strip()) > 0 and len(value) <= limit


def check_spec(spec: Any) -> list[ErrorItem]:
    """Every problem of ``spec``; empty when it is a valid survey."""
    problems: list[ErrorItem] = []

    def problem(where: str, detail: str) -> None:
        problems.append(ErrorItem(f"spec{where}: {detail}", "invalid-survey-spec", POINTER + where))

    if not isinstance(spec, dict):
        problem("", "must be an object with questions")
        return problems
    for key in sorted(set(spec) - TOP_KEYS):
        problem(f"/{key}", f"unknown field; a spec takes {', '.join(sorted(TOP_KEYS))}")
    for key in ("greeting", "goodbye"):
        if key in spec and not _text(spec[key], MAX_PROMPT):
            problem(f"/{key}", f"must be text of 1 to {MAX_PROMPT} characters")
    questions = spec.get("questions")
    if not isinstance(questions, list) or not questions:
        problem("/questions", "must be a list of 1 or more questions")
        return problems
    if len(questions) > MAX_QUESTIONS:
        problem("/questions", f"at most {MAX_QUESTIONS} questions")
    names: set[str] = set()
    for index, question in enumerate(questions):
        at = f"/questions/{index}"
        if not isinstance(question, dict):
            problem(at, "must be an object (prompt, answer ...)")
            continue
        for key in sorted(set(question) - QUESTION_KEYS):
            problem(
                f"{at}/{key}", f"unknown field; a question takes {', '.join(sorted(QUESTION_KEYS))}"
            )
        name = question.get("name", f"q{index + 1}")
        if not isinstance(name, str) or not NAME.match(name):
            problem(f"{at}/name", "must be 1 to 64 letters, digits, '_', '-' or '.'")
        elif name in names:
            problem(f"{at}/name", f"{name!r} names another question too")
        else:
            names.add(name)
        if not _text(question.get("prompt"), MAX_PROMPT):
            problem(f"{at}/prompt", f"is required: the text said, 1 to {MAX_PROMPT} characters")
        answer = question.get("answer")
        if answer not in ANSWERS:
            problem(f"{at}/answer", "is required: dtmf (keys pressed) or speech (words said)")
        choices = question.get("choices")
        if "choices" in question:
            if (
                not isinstance(choices, list)
                or not choices
                or len(choices) > MAX_CHOICES
                or not all(_text(c, 100) for c in choices)
            ):
                problem(f"{at}/choices", f"must be a list of 1 to {MAX_CHOICES} texts")
                choices = None
            elif len({c.strip().lower() for c in choices}) != len(choices):
                problem(f"{at}/choices", "lists a choice twice")
            elif answer == "dtmf" and not all(KEYS.match(c) for c in choices):
                problem(f"{at}/choices", "a dtmf choice is keys: digits, * or # (e.g. 1 or 12#)")
        for key in ("min", "max", "digits"):
            if key in question and answer == "speech":
                problem(f"{at}/{key}", "applies to dtmf answers only")
        minimum: Any = question.get("min")
        maximum: Any = question.get("max")
        digits: Any = question.get("digits")
        for key, value in (("min", minimum), ("max", maximum)):
            if key in question and (not _int(value) or not 0 <= value <= 10**9):
                problem(f"{at}/{key}", "must be a whole number from 0 to 1000000000")
        if _int(minimum) and _int(maximum) and minimum > maximum:
            problem(f"{at}/min", f"min ({minimum}) is above max ({maximum})")
        if "choices" in question and ("min" in question or "max" in question):
            problem(f"{at}/choices", "choices and a min/max range exclude each other")
        if "digits" in question:
            if not _int(digits) or not 1 <= digits <= 20:
                problem(f"{at}/digits", "must be a whole number of keys from 1 to 20")
            elif (
                isinstance(choices, list)
                and answer == "dtmf"
                and any(isinstance(c, str) and len(c) != digits for c in choices)
            ):
                problem(f"{at}/choices", f"every choice must be {digits} keys long (digits)")
        retries = question.get("retries", DEFAULT_RETRIES)
        if not _int(retries) or not 0 <= retries <= MAX_RETRIES:
            problem(f"{at}/retries", f"must be a whole number from 0 to {MAX_RETRIES}")
        timeout = question.get("timeout", DEFAULT_TIMEOUT)
        if not _int(timeout) or not 1 <= timeout <= 60:
            problem(f"{at}/timeout", "must be a whole number of seconds from 1 to 60")
    return problems


def questions_of(spec: dict[str, Any]) -> list[Question]:
    """The questions of a checked spec, with their defaults."""
    found = []
    for index, raw in enumerate(spec.get("questions") or []):
        choices = raw.get("choices")
        found.append(
            Question(
                name=str(raw.get("name", f"q{index + 1}")),
                prompt=str(raw["prompt"]),
                answer=str(raw["answer"]),
                choices=tuple(str(c) for c in choices) if choices else None,
                minimum=raw.get("min"),
                maximum=raw.get("max"),
                digits=raw.get("digits"),
                retries=int(raw.get("retries", DEFAULT_RETRIES)),
                timeout=int(raw.get("timeout", DEFAULT_TIMEOUT)),
            )
        )
    return found


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def judge(question: Question, given: str) -> tuple[Any, str | None]:
    """The answer's value, or None with why it is not valid."""
    if question.answer == "dtmf":
        keys = given.strip()
        if keys.endswith("#") and not (question.choices and keys in question.choices):
            keys = keys[:-1]
        if not keys:
            return None, "no keys pressed"
        if question.digits is not None and len(keys) != question.digits:
            return None, f"expected {question.digits} keys"
        if question.choices is not None:
            return (keys, None) if keys in question.choices else (None, "not one of the choices")
        if question.minimum is not None or question.maximum is not None:
            if not keys.isdigit():
                return None, "not a number"
            number = int(keys)
            if question.minimum is not None and number < question.minimum:
                return None, "below the range"
            if question.maximum is not None and number > question.maximum:
                return None, "above the range"
            return number, None
        return keys, None
    words = _words(given)
    if not words:
        return None, "nothing said"
    if question.choices is None:
        return " ".join(given.split()), None
    for choice in question.choices:
        wanted = _words(choice)
        if wanted == words or (
            wanted and any(words[i : i + len(wanted)] == wanted for i in range(len(words)))
        ):
            return choice, None
    return None, "not one of the choices"
