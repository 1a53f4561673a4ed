#!/usr/bin/env python3
"""Fixture generator for tests/chat/test_chat_template.c: renders small templates, one or a few
constructs each, with jinja2 in the environment transformers gives chat templates
(transformers' own _compile_jinja_template: ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, {% generation %}, its tojson and raise_exception), and writes tests/chat/data/jinja_cases.json:
    [{"name", "template" | "template_of": "<../shared/tokenizers dir>", "vars", "rendered" | "error"}]
The C test renders each with msbnb and compares. Run from the interop venv (transformers 5.23, jinja2 3.1.6):
    ~/.cache/msbnb-venv/bin/python tests/chat/make_jinja_cases.py
"""
import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
import jinja2.ext

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "tokenizers")


def compile_template(source):
    """transformers' own template compiler (its sandbox, extensions, tojson and globals) when
    importable, else the same environment rebuilt with jinja2 (no {% generation %} then)."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
        return _compile_jinja_template(source)
    except ImportError:
        pass

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source)


U = [{"role": "user", "content": "Hi"}]
CHAT = [
    {"role": "system", "content": "  Be brief.  "},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3+3?"},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]
TOOL_CHAT = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "abc123XYZ", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "tool_call_id": "abc123XYZ", "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
    {"role": "tool", "tool_call_id": "abc123XYZ", "content": "second result"},
    {"role": "assistant", "content": "21.5 °C and clear."},
]

# A ChatML template with tools and tool calls, in the style of Qwen2.5's (written for this test).
CHATML_TOOLS = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# Reasoning-style template: the last user query found walking backwards with a namespace, thinking
# split off assistant replies (as Qwen3-style templates do; written for this test).
REASONING = """{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == "assistant" %}
        {%- set content = message.content %}
        {%- if '</think>' in content %}
            {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {{- '<|im_start|>assistant\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') + '<|im_end|>\\n' }}
        {%- else %}
            {{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}
        {%- endif %}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{{- 'last query: ' ~ ns.last_query_index }}
"""

REASONING_CHAT = [
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nA1"},
    {"role": "user", "content": "Q2"},
    {"role": "assistant", "content": "<think>\nthinking hard\n</think>\n\nA2"},
]

CASES = [
    # ---- whitespace control (trim_blocks, lstrip_blocks, - markers)
    ("ws_trim_lstrip", "{% if true %}\n  yes\n{% endif %}\nafter\n", {}),
    ("ws_lstrip_not_for_vars", "  {{ 'v' }}\n  {% if true %}x{% endif %}  \n{{ 'a' }}", {}),
    ("ws_minus_markers", "a  \n {%- if true -%}  \n b {{- ' c ' -}} \n d\n{%- endif %}\n e", {}),
    ("ws_plus_keeps_indent", "line\n    {%+ if true %}kept{% endif %}\n    {% if true %}stripped{% endif %}", {}),
    ("ws_comments", "a\n  {# a comment #}\nb {#- x -#}   c\n{# last #}", {}),
    ("ws_block_after_text_same_line", "text {% if true %}\n  in\n{% endif %} tail", {}),
    ("ws_crlf_and_trailing_newline", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("ws_var_end_keeps_newline", "{{ 'x' }}\n{{ 'y' }}\n", {}),
    # ---- literals, printing, escapes
    ("print_values", "{{ none }}|{{ true }}|{{ False }}|{{ 42 }}|{{ -7 }}|{{ 1.5 }}|{{ 1e20 }}|{{ 0.1 + 0.2 }}|"
     "{{ 1/3 }}|{{ 10/2 }}|{{ 2**62 }}|{{ -0.0 }}|{{ 1e-5 }}|{{ 123456789.0 }}|{{ undefined_thing }}|", {}),
    ("print_containers", "{{ [1, 'a', none, true, 2.5] }} {{ {'k': 'v', 'n': [1, {'x': \"it's\"}]} }} {{ (1,) }} {{ (1, 'b') }} {{ [] }} {{ {} }}", {}),
    ("string_escapes", "{{ 'a\\tb\\nc' }}|{{ \"q\\\"q\" }}|{{ '\\u00e9\\x41\\\\' }}|{{ 'ab' 'cd' }}|{{ 'don\\'t' }}", {}),
    ("repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n'] }}", {}),
    # ---- arithmetic and operators
    ("arith_ints", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }}", {}),
    ("arith_floats", "{{ 7.5 // 2 }} {{ 7.5 % 2 }} {{ 1 + 2.0 }} {{ 3 * 0.5 }} {{ 2 ** -1 }} {{ true + 1 }}", {}),
    ("concat", "{{ 'a' ~ 1 ~ none ~ true ~ [1] }}|{{ 'x' + 'y' }}|{{ [1] + [2, 3] }}|{{ 'ab' * 3 }}|{{ 2 * [0] }}", {}),
    ("compare", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ true == 1 }} "
     "{{ 'a' != 'a' }} {{ {'a': 1} == {'a': 1} }} {{ none == none }} {{ x == y }}", {}),
    ("in_not_in", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ '' in 'abc' }}", {}),
    ("and_or_values", "{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ '' and 'b' }}|{{ none or none }}|{{ not 0 }}|{{ not not 'x' }}", {}),
    ("cond_expr", "{{ 'y' if 1 else 'n' }}|{{ 'y' if 0 else 'n' }}|{{ 'y' if 0 }}|{{ 'a' if false else 'b' if true else 'c' }}", {}),
    ("precedence_filters", "{{ 'a' + ' b ' | trim + 'c' }}|{{ -3 | abs }}|{{ [1,2,3] | length * 2 }}|{{ not 1 in [1] }}", {}),
    # ---- attribute and item access, slicing
    ("access", "{{ m.role }}|{{ m['content'] }}|{{ m.missing }}|{{ xs[0] }}|{{ xs[-1] }}|{{ xs[9] }}|{{ xs.0 }}|{{ m.get('role') }}|{{ m.get('x', 'd') }}",
     {"m": {"role": "user", "content": "hey"}, "xs": [10, 20, 30]}),
    ("slicing", "{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ xs[::2] }}|{{ xs[-2:] }}|{{ xs[5:] }}|{{ s[1:3] }}|{{ s[:-1] }}|{{ s[::-1] }}|{{ u[1:3] }}|{{ u[-1] }}",
     {"xs": [1, 2, 3, 4], "s": "hello", "u": "h\u00e9llo\u4e16"}),
    ("unicode_length", "{{ u | length }} {{ u | reverse }} {{ u[0] }} {{ u | list }}", {"u": "\u00e9t\u00e9\U0001f600"}),
    # ---- statements
    ("for_loop_vars", "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.length }}"
     "{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}:{{ x }};{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("for_prev_next_cycle", "{% for x in xs %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}{{ loop.cycle('o', 'e') }}]{% endfor %}", {"xs": [1, 2, 3]}),
    ("for_else_filter", "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% else %}empty{% endfor %}|{% for x in [] %}x{% else %}none{% endfor %}", {"xs": [1, 2, 3]}),
    ("for_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("for_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d | items %}{{ k }}{% endfor %}|"
     "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}", {"d": {"x": 1, "y": [2]}}),
    ("for_over_string_dict_none", "{% for ch in 'ab' %}{{ ch }}-{% endfor %}{% for k in {} %}x{% endfor %}{% for x in nothing %}y{% endfor %}", {}),
    ("nested_loops", "{% for r in rows %}{% for c in r %}{{ loop.index }}{{ c }}{% endfor %}{{ loop.index }};{% endfor %}", {"rows": [["a", "b"], ["c"]]}),
    ("set_scoping", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}", {}),
    ("set_tuple_and_block", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 3, 4 %}{{ t }}{% set blk %}in {{ a }}{% endset %}[{{ blk }}]", {}),
    ("namespace", "{% set ns = namespace(count=0, found=none) %}{% for m in msgs %}{% if m.role == 'user' %}{% set ns.count = ns.count + 1 %}"
     "{% set ns.found = m.content %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}", {"msgs": CHAT}),
    ("if_elif_else", "{% for n in [1, 2, 3, 4] %}{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three{% else %}many{% endif %} {% endfor %}", {}),
    ("macro", "{% macro item(name, value='?', sep=': ') %}{{ name }}{{ sep }}{{ value }}{% endmacro %}{{ item('a') }}|{{ item('b', 2) }}|"
     "{{ item('c', sep='=', value=3) }}|{{ item('d') | upper }}", {}),
    ("generation_block", "{% for m in msgs %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}", {"msgs": CHAT}),
    # ---- filters
    ("filters_strings", "{{ '  pad  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'Hello' | upper }}|{{ 'Hello' | lower }}|{{ 'hello world' | title }}|"
     "{{ 'hELLO' | capitalize }}|{{ 'a-b-a' | replace('a', 'o') }}|{{ 'a-b-a' | replace('a', 'o', 1) }}|{{ 'x<y>&\"z\\'' | e }}|"
     "{{ 'one two  three' | wordcount }}|{{ 5 | string ~ 'x' }}", {}),
    ("filters_lists", "{{ xs | join(', ') }}|{{ xs | first }}|{{ xs | last }}|{{ xs | length }}|{{ xs | count }}|{{ xs | reverse | list }}|"
     "{{ xs | sort }}|{{ xs | sort(reverse=true) }}|{{ [3, 1, 3, 2] | unique | list }}|{{ xs | min }}|{{ xs | max }}|{{ [1, 2.5] | sum }}|"
     "{{ ['b', 'A', 'c'] | sort }}|{{ ['b', 'A', 'c'] | sort(case_sensitive=true) }}", {"xs": [3, 1, 2]}),
    ("filters_select", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('/') }}|"
     "{{ msgs | rejectattr('role', 'equalto', 'user') | list | length }}|{{ [1, 2, 3, 4] | select('odd') | list }}|"
     "{{ [1, 2, 3, 4] | reject('even') | list }}|{{ ['a', 'b'] | reject('equalto', 'a') | join }}|{{ [0, 1, ''] | select | list }}|"
     "{{ ['A', 'b'] | map('lower') | join }}|{{ msgs | map(attribute='missing', default='-') | join }}|{{ msgs | selectattr('role', 'in', ['system', 'assistant']) | list | length }}",
     {"msgs": CHAT}),
    ("filters_default", "{{ missing | default('dflt') }}|{{ '' | default('e') }}|{{ '' | default('e', true) }}|{{ none | d('n') }}|{{ 0 | default(5, boolean=true) }}", {}),
    ("filters_numbers", "{{ '42' | int + 1 }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ '2.5' | float }}|{{ 3 | float }}|{{ 2.7 | int }}|{{ -2.5 | abs }}|"
     "{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ 2.1 | round(0, 'ceil') }}", {}),
    ("filters_items_dictsort", "{{ d | items | list }}|{{ d | dictsort }}|{{ d | dictsort(reverse=true) }}|{{ d.keys() | list }}|{{ d.values() | list }}",
     {"d": {"b": 2, "a": 1, "c": 0}}),
    ("filter_indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}", {}),
    ("tojson", "{{ obj | tojson }}|{{ obj | tojson(indent=2) }}|{{ 'caf\\u00e9 \"q\" \\\\ \\n\\t\\u0001' | tojson }}|{{ [] | tojson(indent=4) }}|"
     "{{ {} | tojson }}|{{ none | tojson }}|{{ [true, false, 1.0, 0.5, 10] | tojson }}|{{ obj | tojson(sort_keys=true) }}|{{ {1: 'int key'} | tojson }}",
     {"obj": {"name": "f", "args": {"z": [1, 2, {"deep": None}], "a": "\u00e9\U0001f600"}, "n": 1.25}}),
    ("tojson_tools", "{% for t in tools %}{{ t | tojson(indent=4) }}\n\n{% endfor %}", {"tools": TOOLS}),
    # ---- tests
    ("tests_types", "{{ x is defined }} {{ nope is defined }} {{ nope is undefined }} {{ none is none }} {{ 's' is string }} {{ {} is mapping }} "
     "{{ [] is iterable }} {{ 's' is iterable }} {{ 1 is iterable }} {{ [] is sequence }} {{ 1 is number }} {{ 1.5 is number }} {{ 1 is integer }} "
     "{{ 1.0 is integer }} {{ 1.5 is float }} {{ true is boolean }} {{ true is true }} {{ 0 is false }} {{ range is callable }} {{ x is not none }}",
     {"x": 1}),
    ("tests_values", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} "
     "{{ 'a' is in 'abc' }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ none is sameas none }} {{ 2 is gt 1 }} {{ 2 is ge 3 }}", {}),
    # ---- string methods
    ("str_methods", "{{ '  a b  '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'xxaxx'.rstrip('x') }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|"
     "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ 'abcabc'.replace('b', 'B') }}|"
     "{{ 'abc'.upper() }}|{{ 'ABC'.lower() }}|{{ 'hi there'.title() }}|{{ 'hi'.capitalize() }}|{{ 'abcabc'.find('c') }}|{{ 'abcabc'.rfind('c') }}|"
     "{{ 'abcabc'.count('bc') }}|{{ '-'.join(['a', 'b']) }}|{{ '123'.isdigit() }}|{{ 'a1'.isalpha() }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|"
     "{{ 'prefix_x'.removeprefix('prefix_') }}|{{ 'file.txt'.removesuffix('.txt') }}", {}),
    # ---- globals
    ("range_dict", "{{ range(3) | list }}|{{ range(1, 7, 2) | list }}|{{ range(5, 0, -2) | list }}|{{ dict(a=1, b='x') }}|{{ range(0) | list }}", {}),
    # ---- errors jinja2 raises (ours must fail too)
    ("err_raise_exception", "{% if messages | length == 0 %}{{ raise_exception('no messages given') }}{% endif %}ok", {"messages": []}),
    ("err_attr_of_undefined", "{{ nothing.attr }}", {}),
    ("err_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("err_undefined_plus", "{{ nothing + 'a' }}", {}),
    ("err_unknown_filter", "{{ 'a' | no_such_filter }}", {}),
    ("err_unclosed_block", "{% if true %}never closed", {}),
    ("err_unclosed_tag", "{{ 'a' ", {}),
    ("err_bad_syntax", "{{ 1 + }}", {}),
    ("err_set_attr_on_dict", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("err_not_iterable", "{% for x in 5 %}{% endfor %}", {}),
    ("err_div_zero", "{{ 1 // 0 }}", {}),
    ("err_tojson_undefined", "{{ nothing | tojson }}", {}),
    ("err_endfor_without_for", "{% endfor %}", {}),
    # ---- whole chat templates
    ("chatml_tools", CHATML_TOOLS, {"messages": TOOL_CHAT, "tools": TOOLS, "add_generation_prompt": True}),
    ("chatml_plain", CHATML_TOOLS, {"messages": CHAT, "add_generation_prompt": False}),
    ("chatml_no_system", CHATML_TOOLS, {"messages": U, "add_generation_prompt": True}),
    ("reasoning", REASONING, {"messages": REASONING_CHAT}),
    ("llama3_custom_tools", "@llama-bpe", {"messages": TOOL_CHAT[:1], "tools": TOOLS, "bos_token": "<|begin_of_text|>", "add_generation_prompt": True}),
    ("llama3_tools_in_system", "@llama-bpe", {"messages": CHAT, "tools": TOOLS, "tools_in_user_message": False, "date_string": "1 Jan 2025",
                                             "bos_token": "<|begin_of_text|>", "add_generation_prompt": True}),
    ("llama3_builtin_tools", "@llama-bpe", {"messages": [TOOL_CHAT[0], {"role": "assistant", "tool_calls": [
        {"function": {"name": "brave_search", "arguments": {"query": "paris weather"}}}]}],
        "builtin_tools": ["brave_search", "code_interpreter"], "bos_token": "<|begin_of_text|>", "add_generation_prompt": False}),
    ("llama3_tool_call_json", "@llama-bpe", {"messages": TOOL_CHAT[:3], "bos_token": "<|begin_of_text|>", "add_generation_prompt": True}),
    ("llama3_two_tool_calls_refused", "@llama-bpe", {"messages": [{"role": "assistant", "tool_calls": [
        {"function": {"name": "a", "arguments": {}}}, {"function": {"name": "b", "arguments": {}}}]}], "bos_token": "<s>"}),
    ("mistral_tools", "@mistral-v3", {"messages": [{"role": "system", "content": "sys"}] + TOOL_CHAT[:3] + TOOL_CHAT[4:] +
                                      [{"role": "user", "content": "Thanks"}], "tools": TOOLS, "bos_token": "<s>", "eos_token": "</s>"}),
    ("mistral_roles_refused", "@mistral-v3", {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                                              "bos_token": "<s>", "eos_token": "</s>"}),
    ("mistral_bad_tool_id", "@mistral-v3", {"messages": [TOOL_CHAT[0], {"role": "assistant", "tool_calls": [
        {"id": "short", "function": {"name": "f", "arguments": {}}}]}], "bos_token": "<s>", "eos_token": "</s>"}),
    ("phi3_empty_system", "@phi-3", {"messages": [{"role": "system", "content": ""}] + CHAT[1:], "eos_token": "<|endoftext|>",
                                     "add_generation_prompt": False}),
]


def main():
    out = []
    for name, template, variables in CASES:
        case = {"name": name}
        if template.startswith("@"):
            case["template_of"] = template[1:]
            with open(os.path.join(SHARED, template[1:], "tokenizer_config.json")) as f:
                source = json.load(f)["chat_template"]
        else:
            case["template"] = template
            source = template
        case["vars"] = variables
        kwargs = {"tools": None, "documents": None}
        kwargs.update(variables)
        try:
            case["rendered"] = compile_template(source).render(**kwargs)
        except jinja2.exceptions.TemplateError as e:
            case["error"] = "%s: %s" % (type(e).__name__, e)
        except (TypeError, ZeroDivisionError, ValueError) as e:
            case["error"] = "%s: %s" % (type(e).__name__, e)
        out.append(case)
    os.makedirs(os.path.join(HERE, "data"), exist_ok=True)
    path = os.path.join(HERE, "data", "jinja_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("%s: %d cases (%d errors), jinja2 %s" % (path, len(out), sum("error" in c for c in out), jinja2.__version__))


if __name__ == "__main__":
    main()
