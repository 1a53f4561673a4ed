#!/usr/bin/env python3
"""Seeds of the chat-template fuzz target (tests/fuzz/corpus/chat_template), standard library
only; same conventions as make_corpus.py: good_* must render, bad_* must be refused with a
one-line message (tests/fuzz/replay.c checks both). The good seeds are the
templates of tests/chat/make_jinja_cases.py plus small ones per construct; the bad ones cover
each failure family (syntax, unsupported, runtime type errors, raise_exception, the limits).
Re-run after editing: python3 tests/fuzz/make_corpus_chat.py
"""
import importlib.util
import os

from make_corpus import write

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("cases", os.path.join(HERE, "..", "chat", "make_jinja_cases.py"))
cases = importlib.util.module_from_spec(spec)
try:  # the case list needs no jinja2, but the module imports it: fall back to the small seeds
    spec.loader.exec_module(cases)
    BIG = {"good_chatml_tools": cases.CHATML_TOOLS, "good_reasoning": cases.REASONING}
except ImportError:
    BIG = {}

CHAT = {
    **BIG,
    "good_plain_text": "just text, no tags\n",
    "good_empty": "",
    "good_simple_chat": "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content | trim }}<|end|>\n{% endfor %}"
                        "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}",
    "good_whitespace": "{{- bos_token }}\n{%- if true %}\n    {{- 'x' -}}\n  {%+ if 1 %} y {% endif %}\n{% endif -%}\n  {# c #}\n",
    "good_loop_vars": "{% for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.revindex }}"
                      "{{ loop.previtem.role if loop.previtem is defined }}{% endfor %}",
    "good_namespace": "{% set ns = namespace(n=0) %}{% for m in messages if m.role == 'user' %}{% set ns.n = ns.n + 1 %}"
                      "{% endfor %}{{ ns.n }}",
    "good_filters": "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' / ') }}"
                    "{{ messages[0] | tojson(indent=2) }}{{ messages | length }}{{ 'a,b' .split(',') | list }}",
    "good_slices_methods": "{{ messages[1:] | length }}{{ messages[::-1][0].content }}{{ 'abc'[:-1] }}"
                           "{{ messages[0].content.startswith('Be') }}{{ '  x '.strip() }}",
    "good_macro": "{% macro turn(m, tag='|') %}{{ tag }}{{ m.role }}{{ tag }}{% endmacro %}"
                  "{% for m in messages %}{{ turn(m) }}{{ turn(m, tag='#') }}{% endfor %}",
    "good_arith": "{{ 1 + 2 * 3 }}{{ 7 // 2 }}{{ -7 % 3 }}{{ 2 ** 8 }}{{ 1 / 4 }}{{ 'a' ~ 1 ~ none }}",
    "good_dict_list": "{% set d = {'a': [1, 2], 'b': {'c': none}} %}{{ d }}{{ d.items() | list }}{{ d | tojson }}",
    "good_break_continue": "{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    # ---- refused
    "bad_unclosed_if": "{% if true %}never closed",
    "bad_unclosed_var": "{{ messages",
    "bad_unclosed_comment": "{# no end",
    "bad_unclosed_string": "{{ 'abc }}",
    "bad_syntax_operator": "{{ 1 + }}",
    "bad_stray_endfor": "{% endfor %}",
    "bad_unknown_filter": "{{ x | frobnicate }}",
    "bad_unknown_test": "{{ x is frobnicated }}",
    "bad_unsupported_include": "{% include 'other.j2' %}",
    "bad_unsupported_extends": "{% extends 'base.j2' %}",
    "bad_raise_exception": "{{ raise_exception('Conversation roles must alternate') }}",
    "bad_type_error": "{{ messages[0].content + 1 }}",
    "bad_undefined_attr": "{{ nothing.at.all }}",
    "bad_not_iterable": "{% for x in 42 %}{% endfor %}",
    "bad_division_by_zero": "{{ 1 // 0 }}",
    "bad_huge_range": "{% for i in range(1000000000) %}{% endfor %}",
    "bad_runaway_loop": "{% for i in range(3000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}",
    "bad_doubling_string": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "bad_output_limit": "{% for i in range(100000) %}{{ messages }}{% endfor %}",
    "bad_macro_recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "bad_deep_parens": "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    "bad_deep_values": "{% set ns = namespace(x=[]) %}{% for i in range(400) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | tojson }}",
    "bad_bad_escape": "{{ '\\x4' }}",
    "bad_int_overflow": "{{ 9223372036854775807 * 2 }}",
}

if __name__ == "__main__":
    write("chat_template", {k: v.encode() for k, v in CHAT.items()}, ".jinja")
