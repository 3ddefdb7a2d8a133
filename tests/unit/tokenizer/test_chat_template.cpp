// The chat-template Jinja subset, one feature at a time, plus whole Llama-2 / Llama-3.1-style
// templates and the errors for unsupported features.
#include <gtest/gtest.h>

#include "selfrl/tokenizer/chat_template.h"
#include "test_util.h"

namespace selfrl::test {
namespace {

using tokenizer::ChatMessage;
using tokenizer::ChatTemplate;
using tokenizer::ChatTemplateOptions;

const std::vector<ChatMessage> kConv = {{"system", "S"}, {"user", "Hi"}, {"assistant", "Yo"}, {"user", "Q"}};

std::string render(const std::string& src, const std::vector<ChatMessage>& msgs = kConv, ChatTemplateOptions opt = {}) {
  return ChatTemplate(src, "t").render(msgs, opt);
}

TEST(ChatTemplateJinja, ForLoopVariables) {
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.length }}"
                   "{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %},{% endfor %}"),
            "014F,124,234,344L,");
  EXPECT_EQ(render("{% for m in messages if m.role == 'user' %}{{ m.content }}{% endfor %}"), "HiQ");
  EXPECT_EQ(render("{% for m in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(
      render("{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ i "
             "}}{% endfor %}"),
      "02");
}

TEST(ChatTemplateJinja, ConditionsAndOperators) {
  EXPECT_EQ(render("{% if 1 > 2 %}a{% elif 2 >= 2 and not false %}b{% else %}c{% endif %}"), "b");
  EXPECT_EQ(render("{{ 'ell' in 'hello' }} {{ 'x' not in ['x'] }} {{ 'role' in messages[0] }}"), "True False True");
  EXPECT_EQ(render("{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ none is none }} {{ 0 or 'dflt' }} {{ 1 and 2 }}"),
            "True True True dflt 2");
  EXPECT_EQ(render("{{ 'a' + 'b' ~ 3 ~ none }}"), "ab3None");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 * 3 + 1 }} {{ (messages|length) - 1 }}"),
            "3 -4 1 3.5 7 3");
  EXPECT_EQ(render("{{ 'yes' if messages else 'no' }}|{{ 'x' if false }}|"), "yes||");
}

TEST(ChatTemplateJinja, Tests) {
  EXPECT_EQ(render("{{ foo is defined }} {{ messages is defined }} {{ none is none }} {{ 'a' is string }}"
                   " {{ messages[0] is mapping }} {{ messages is iterable }} {{ 3 is number }} {{ messages[0].x is not "
                   "defined }}"),
            "False True True True True True True True");
}

TEST(ChatTemplateJinja, SubscriptsAttributesSlices) {
  EXPECT_EQ(render("{{ messages[0]['role'] }} {{ messages[-1].content }} {{ messages[1:]|length }}"
                   " {% for m in messages[::-1] %}{{ m.content }}{% endfor %} {{ 'abcdef'[1:4] }} {{ 'abc'[::-1] }}"
                   " {{ [1,2,3,4][::2] }} {{ messages[9] is defined }}"),
            "system Q 3 QYoHiS bcd cba [1, 3] False");
}

TEST(ChatTemplateJinja, Filters) {
  EXPECT_EQ(render("[{{ '  x \n'|trim }}] {{ messages|length }} {{ 'héllo'|length }} {{ 'Ab'|lower }}{{ 'Ab'|upper }}"
                   " {{ [1,2]|first }}{{ [1,2]|last }} {{ 5|string + '!' }} {{ ['a','b']|join(', ') }}"
                   " {{ undefined_var|default('d') }} {{ ''|default('e', true) }}"),
            "[x] 4 5 abAB 12 5! a, b d e");
  EXPECT_EQ(render("{{ {'name': 'f', 'args': [1, 'é', none, true]}|tojson }}"),
            "{\"name\": \"f\", \"args\": [1, \"é\", null, true]}");
  EXPECT_EQ(render("{{ {'a': [1]}|tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ]\n}");
}

TEST(ChatTemplateJinja, StringMethods) {
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('bc') }} {{ 'a</think>b'.split('</think>')[-1] }}"
                   " [{{ '\n\nx\n'.strip('\n') }}] [{{ '\nx\n'.lstrip('\n') }}] [{{ '  x  '.rstrip() }}]"
                   " {{ 'a b  c'.split()|length }} {{ 'aXbX'.replace('X', '-') }}"),
            "True True b [x] [x\n] [  x] 3 a-b-");
}

TEST(ChatTemplateJinja, SetNamespaceAndScoping) {
  EXPECT_EQ(render("{% set x = 1 %}{% for m in messages %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(
      render("{% set ns = namespace(n=0, found=false) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
             "{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.found }}"),
      "4 True");
  EXPECT_EQ(render("{% if true %}{% set y = 'in-if' %}{% endif %}{{ y }}"), "in-if");
}

TEST(ChatTemplateJinja, WhitespaceControl) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks drops the indentation before it.
  EXPECT_EQ(
      render("{% for m in messages %}\n    {% if m.role == 'user' %}\n{{ m.content }}\n    {% endif %}\n{% endfor %}"),
      "Hi\nQ\n");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("{{ 'x' }}\n{{- 'y' }}\n"), "xy\n");  // no trim_blocks after {{ }}
  EXPECT_EQ(render("{# comment #}\nA  {{- ' B' -}}  C"), "A BC");
}

TEST(ChatTemplateJinja, VariablesFromOptions) {
  ChatTemplateOptions opt;
  opt.bos_token = "<s>";
  opt.eos_token = "</s>";
  opt.add_generation_prompt = false;
  opt.fixed_date = "26 Jul 2024";
  opt.string_vars["date_string"] = "1 Jan 2025";
  EXPECT_EQ(
      render("{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}{{ tools is none }}{{ strftime_now('%d %b %Y') "
             "}}|{{ date_string }}",
             kConv, opt),
      "<s></s>FalseTrue26 Jul 2024|1 Jan 2025");
  // Llama-3.1: date_string defaults when the caller does not pass it.
  EXPECT_EQ(
      render(
          "{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}{{ date_string }}"),
      "26 Jul 2024");
}

TEST(ChatTemplateJinja, Llama2Template) {
  // meta-llama/Llama-2-7b-chat-hf tokenizer_config.json chat_template.
  const std::string llama2 =
      "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
      "messages[0]['content'] %}"
      "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
      "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
      "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
      "'\\n<</SYS>>\\n\\n' + message['content'] %}"
      "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
      "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
      "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
  ChatTemplateOptions opt;
  opt.bos_token = "<s>";
  opt.eos_token = "</s>";
  EXPECT_EQ(render(llama2, kConv, opt), "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Yo </s><s>[INST] Q [/INST]");
  EXPECT_SELFRL_ERROR(render(llama2, {{"user", "a"}, {"user", "b"}}, opt), "Conversation roles must alternate",
                      "template line 1");
}

TEST(ChatTemplateJinja, BuiltinFormats) {
  EXPECT_EQ(render(tokenizer::builtin_chat_template("chatml"), {{"user", "hi"}}),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  ChatTemplateOptions opt;
  opt.bos_token = "<|begin_of_text|>";
  EXPECT_EQ(render(tokenizer::builtin_chat_template("llama3"), {{"user", " hi "}}, opt),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render(tokenizer::builtin_chat_template("plain"), {{"user", "2+2?"}}), "User: 2+2?\nAssistant:");
  EXPECT_SELFRL_ERROR(tokenizer::builtin_chat_template("vicuna"), "unknown built-in chat format \"vicuna\"", "chatml");
}

TEST(ChatTemplateJinja, UnsupportedAndMalformedAreErrors) {
  EXPECT_SELFRL_ERROR(ChatTemplate("ok\n{% macro f() %}{% endmacro %}", "tpl"),
                      "unsupported Jinja feature: {% macro %}", "tpl: template line 2");
  EXPECT_SELFRL_ERROR(render("{{ 'a'|wordcount }}"), "unsupported Jinja filter 'wordcount'");
  EXPECT_SELFRL_ERROR(render("\n\n{{ x is divisibleby(3) }}"), "unsupported Jinja test 'divisibleby'",
                      "template line 3");
  EXPECT_SELFRL_ERROR(ChatTemplate("{% if true %}x", "tpl"), "never closed with {% endif %}");
  EXPECT_SELFRL_ERROR(ChatTemplate("{{ 'a' ", "tpl"), "never closed");
  EXPECT_SELFRL_ERROR(ChatTemplate("{{ 'abc }}", "tpl"), "unterminated string");
  EXPECT_SELFRL_ERROR(render("{{ 'a' + 1 }}"), "unsupported operand types for +", "use ~");
  EXPECT_SELFRL_ERROR(render("{{ nothing.attr }}"), "'.attr' of an undefined value");
  EXPECT_SELFRL_ERROR(render("{{ 'a'.zfill(3) }}"), "method or attribute '.zfill'");
  EXPECT_SELFRL_ERROR(render("{{ raise_exception('bad input') }}"), "chat template raised an exception: bad input");
}

}  // namespace
}  // namespace selfrl::test
