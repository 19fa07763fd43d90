from __future__ import annotations

import pytest

from llm_server.engine.chat import ChatFormatter, ChatTemplateError, Message, gemma_prompt


def test_gemma_turns_fold_the_system_prompt_into_the_first_user_turn() -> None:
    prompt = gemma_prompt(
        [
            Message("system", "Be brief."),
            Message("user", "Hi"),
            Message("assistant", "Hello"),
            Message("user", "Bye"),
        ]
    )
    assert prompt == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_the_fallback_stops_at_turn_markers() -> None:
    assert "<end_of_turn>" in ChatFormatter(None, "<bos>", "<eos>").stop_strings


def test_a_gguf_template_is_rendered() -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    formatter = ChatFormatter(template, "<s>", "</s>")
    assert formatter.render([Message("user", "hi")]) == "<s>[user]hi[assistant]"
    assert formatter.stop_strings == ()


def test_the_template_runs_in_a_sandbox() -> None:
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ChatTemplateError):
        ChatFormatter(escape, "", "").render([Message("user", "x")])


def test_raise_exception_in_a_template_is_a_chat_template_error() -> None:
    template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(ChatTemplateError, match="alternate"):
        ChatFormatter(template, "", "").render([Message("user", "x")])
