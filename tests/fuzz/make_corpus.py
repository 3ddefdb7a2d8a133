#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/<target>/.

Seeds are small valid (or nearly valid) inputs that start the fuzzer deep inside each reader:
recipes from recipes/, JSONL rows from recipes/ and tests/data, and generated safetensors
files, configs, tokenizers and chat templates. The tokenizer seeds are cut down from the
fixtures scripts/fetch_test_fixtures.sh puts in .cache/tokenizers (skipped when absent).
Rerun after changing a seed; the output is deterministic. Multi-file inputs are joined with
the "\\n#8<\\n" separator line (tests/fuzz/fuzz_util.h).
"""
import json
import os
import shutil
import struct
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
SEP = b"\n#8<\n"
MAX_SEED = 8 * 1024  # bytes; larger seeds slow every mutation down


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) <= MAX_SEED, (target, name, len(data))
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def join(*parts):
    return SEP.join(p.encode() if isinstance(p, str) else p for p in parts)


# ---- safetensors ------------------------------------------------------------------------
DT = {"BOOL": ("?", 1), "U8": ("B", 1), "I8": ("b", 1), "I16": ("h", 2), "I32": ("i", 4),
      "I64": ("q", 8), "F16": ("e", 2), "BF16": ("H", 2), "F32": ("f", 4), "F64": ("d", 8)}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, values)] laid out in order."""
    header, data = {}, b""
    for name, dtype, shape, values in tensors:
        fmt, _ = DT[dtype]
        if dtype == "BF16":
            raw = b"".join(struct.pack("<f", v)[2:] for v in values)
        else:
            raw = struct.pack("<" + fmt * len(values), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    w = [("w", "F32", [2, 3], [1, 2, 3, 4, 5, 6])]
    write("safetensors", "f32", safetensors(w, {"format": "pt"}))
    write("safetensors", "unpadded", safetensors([("x", "F32", [3], [1.5, -2, 0])], pad=False))
    write("safetensors", "dtypes", safetensors([
        ("b", "BOOL", [2], [True, False]), ("u8", "U8", [3], [0, 1, 255]), ("i8", "I8", [2], [-1, 1]),
        ("i16", "I16", [2], [-300, 300]), ("i32", "I32", [1], [7]), ("i64", "I64", [2], [-1, 1 << 40]),
        ("f16", "F16", [2, 1], [0.5, -65504]), ("bf16", "BF16", [2], [1, -3.5]), ("f64", "F64", [1], [3.25]),
    ]))
    write("safetensors", "scalar_and_empty", safetensors([("s", "F32", [], [42]), ("e", "F32", [0, 4], [])]))
    write("safetensors", "metadata_only", safetensors([], {"format": "pt", "note": "none"}))
    # A directory with an index naming the shard.
    index = json.dumps({"metadata": {"total_size": 24}, "weight_map": {"w": "model.safetensors"}})
    write("safetensors", "index", join(safetensors(w), index))


# ---- config.json ------------------------------------------------------------------------
def config_seeds():
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
             "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
             "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
             "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
             "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16"}
    qwen2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936,
             "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
             "num_key_value_heads": 2, "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
             "rope_theta": 1000000.0, "rope_scaling": None, "tie_word_embeddings": True,
             "bos_token_id": 151643, "eos_token_id": 151645, "torch_dtype": "bfloat16", "use_cache": True,
             "sliding_window": 32768, "use_sliding_window": False}
    qwen3 = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151936,
             "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
             "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 40960,
             "rms_norm_eps": 1e-06, "rope_theta": 1000000, "attention_bias": False, "tie_word_embeddings": True,
             "eos_token_id": 151645, "pad_token_id": None, "torch_dtype": "bfloat16"}
    tiny = {"model_type": "llama", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
    new_rope = dict(tiny, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})
    yarn = dict(tiny, rope_scaling={"type": "yarn", "factor": 4, "original_max_position_embeddings": 512})
    for name, cfg in [("llama3", llama), ("qwen2", qwen2), ("qwen3", qwen3), ("tiny", tiny),
                      ("rope_parameters", new_rope), ("yarn", yarn)]:
        write("model_config", name, json.dumps(cfg, indent=2))


# ---- adapter_config.json ----------------------------------------------------------------
def lora_seeds():
    peft = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "use_rslora": False, "use_dora": False,
            "bias": "none", "fan_in_fan_out": False, "init_lora_weights": True, "modules_to_save": None,
            "rank_pattern": {}, "alpha_pattern": {}, "layers_to_transform": None,
            "base_model_name_or_path": "Qwen/Qwen2.5-0.5B"}
    write("lora_config", "peft", json.dumps(peft, indent=2))
    write("lora_config", "all_linear", json.dumps({"r": 8, "lora_alpha": 16, "target_modules": "all-linear",
                                                   "use_rslora": True}))
    write("lora_config", "minimal", json.dumps({"target_modules": ["gate_proj", "up_proj", "down_proj",
                                                                   "lm_head"]}))


# ---- JSONL ------------------------------------------------------------------------------
def jsonl_seeds():
    write("jsonl", "knowrl_seed", read("recipes/tiny/data/knowrl_seed.jsonl"))
    write("jsonl", "knowrl_eval", read("recipes/tiny/data/knowrl_eval.jsonl"))
    corpus = read("tests/data/tokenizer/corpus.jsonl").split(b"\n")
    out = b""
    for line in corpus:
        if len(out) + len(line) + 1 > 2048:
            break
        out += line + b"\n"
    write("jsonl", "tokenizer_corpus", out)
    write("jsonl", "edges", b"\xef\xbb\xbf{\"prompt\": \"a\", \"answer\": 1}\r\n\r\n  \n"
          b"{\"prompt\": \"\\u00e9\\ud83d\\ude00\", \"answer\": [1, 2.5e3, null, true]}\n"
          b"{\"nested\": {\"a\": [{\"b\": {}}]}}")
    write("jsonl", "not_objects", b"[1, 2]\n\"text\"\n42\nnull\n{\"ok\": true}\n")


# ---- recipes ----------------------------------------------------------------------------
RECIPES = {"tiny": ["star.yaml", "lora_grpo.yaml", "judge_grpo.yaml", "bstar.yaml", "knowrl.yaml"],
           "real": ["intuitor_qwen2.5-1.5b_math.yaml", "knowrl_llama3.1-8b.yaml"]}


def recipe_seeds():
    overrides = "seed=3\nlearning_rate=1e-4\nlora.target_modules=[q_proj, v_proj]\ndata.eval=x.jsonl"
    for d in ("tiny", "real"):
        base = read(f"recipes/{d}/base.yaml")
        for f in RECIPES[d]:
            child = read(f"recipes/{d}/{f}")
            name = f"{d}_{f[:-5]}"
            if d == "tiny" and f in ("star.yaml", "lora_grpo.yaml"):
                write("recipe", name, join(child, base, overrides))
            else:
                write("recipe", name, join(child, base))
    write("recipe", "base_alone", read("recipes/tiny/base.yaml"))
    write("recipe", "anchors", "defaults: &d {temperature: 0.7, samples: [1, 2, 4]}\n"
          "eval: *d\ngeneration:\n  <<: *d\n  top_p: 0.9\nreward_funcs:\n  - accuracy\n  - format\n"
          "beta: .inf\nseed: 0x2A\nmodel: 'quoted: path'\nnotes: |\n  multi\n  line\n")
    write("recipe", "chain", join("extends: base.yaml\nseed: 1\n", "extends: base.yaml\n"))


# ---- tokenizer.json ---------------------------------------------------------------------
META = "\u2581"
TEXT = "Hello world! 1234 caf\u00e9 \u4f60\u597d <s>  spaces\tand\nnewlines</s> \U0001F600"


def small_sp_tokenizer():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, META: 3, "a": 4, "b": 5, "c": 6, "ab": 7, META + "ab": 8,
             "bc": 9, "<0xC9>": 10, "<0x91>": 11, "z": 12}
    added = [{"id": i, "content": t, "special": True, "normalized": False} for t, i in
             [("<unk>", 0), ("<s>", 1), ("</s>", 2)]]
    return {"added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": META},
                                                               {"type": "Replace", "pattern": {"String": " "},
                                                                "content": META}]},
            "pre_tokenizer": None,
            "post_processor": {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": META}, "content": " "}, {"type": "ByteFallback"},
                {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                      "vocab": vocab, "merges": ["b c", "a b", META + " ab"]}}


def metaspace_tokenizer():
    j = small_sp_tokenizer()
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": META, "prepend_scheme": "first", "split": True}
    j["decoder"] = {"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": True}
    j["post_processor"] = {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]}
    return j


def cut_fixture(name, keep):
    """The fixture's tokenizer.json with ids < keep, the merges among them, and its first added
    tokens renumbered after them."""
    path = os.path.join(ROOT, ".cache", "tokenizers", name, "tokenizer.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    m = j["model"]
    vocab = {t: i for t, i in m["vocab"].items() if i < keep}
    merges = []
    for mg in m["merges"]:
        a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
        if a in vocab and b in vocab and (a + b) in vocab:
            merges.append(mg)
    m["vocab"], m["merges"] = vocab, merges
    added = [t for t in j["added_tokens"] if t["id"] < keep]
    extra = [t for t in j["added_tokens"] if t["id"] >= keep][:4]
    for k, t in enumerate(extra):
        t["id"] = keep + k
    j["added_tokens"] = added + extra
    # Ids the post-processor names must exist.
    pp = j.get("post_processor")
    if pp and pp.get("type") == "TemplateProcessing":
        for st in pp["special_tokens"].values():
            st["ids"] = [i if i < keep else keep for i in st["ids"]]
    return j


def tokenizer_seeds():
    dump = lambda j: json.dumps(j, ensure_ascii=False, separators=(",", ":"))
    write("tokenizer", "sentencepiece_small", join(dump(small_sp_tokenizer()), TEXT))
    write("tokenizer", "metaspace_small", join(dump(metaspace_tokenizer()), "ab abc zz"))
    for name, keep in [("qwen3", 300), ("llama3", 300), ("llama2", 300)]:
        j = cut_fixture(name, keep)
        if j is None:
            print(f"[corpus] .cache/tokenizers/{name} absent: no {name} seed (scripts/fetch_test_fixtures.sh)")
            continue
        write("tokenizer", f"{name}_cut", join(dump(j), TEXT))


# ---- chat templates ---------------------------------------------------------------------
TEMPLATES = {
    # The built-in formats (libselfrl/src/tokenizer/chat_template.cpp).
    "chatml": "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
              "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
              "{%- endif %}",
    "llama3": "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message.role + "
              "'<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>' }}{%- endfor %}"
              "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
    "plain": "{%- for message in messages %}{%- if message.role == 'system' %}{{- message.content + '\\n\\n' }}"
             "{%- elif message.role == 'user' %}{{- 'User: ' + message.content + '\\n' }}"
             "{%- else %}{{- 'Assistant: ' + message.content + '\\n' }}{%- endif %}{%- endfor %}"
             "{%- if add_generation_prompt %}{{- 'Assistant:' }}{%- endif %}",
    # Llama-2 style (tests/unit/tokenizer/test_chat_template.cpp).
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
              "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
              "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
              "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
              "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
              "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
              "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
              "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
              "{% endfor %}",
    # Thinking-model style: namespace, reverse loops, string methods, tojson, tools.
    "thinking": "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n"
                "{%- for message in messages[::-1] %}\n"
                "    {%- set index = (messages|length - 1) - loop.index0 %}\n"
                "    {%- if ns.multi_step_tool and message.role == 'user' and not message.content.startswith('<tool_response>') %}\n"
                "        {%- set ns.multi_step_tool = false %}\n"
                "        {%- set ns.last_query_index = index %}\n"
                "    {%- endif %}\n"
                "{%- endfor %}\n"
                "{%- if tools %}{{- '<tools>' }}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{%- endif %}\n"
                "{%- for message in messages %}\n"
                "    {%- if message.role == 'assistant' and '</think>' in message.content %}\n"
                "        {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}\n"
                "        {%- set reasoning = message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n"
                "        {%- if loop.index0 > ns.last_query_index %}\n"
                "            {{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content + '<|im_end|>\\n' }}\n"
                "        {%- else %}{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}{%- endif %}\n"
                "    {%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}\n"
                "{%- endfor %}\n"
                "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
                "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
                "{%- endif %}\n",
    # Llama-3.1 style: date defaults, system message extraction, strftime_now.
    "dated": "{{- bos_token }}\n{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- endif %}\n"
             "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
             "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}\n"
             "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Today Date: ' + date_string + '\\n\\n' }}"
             "{{- system_message }}{{- '<|eot_id|>' }}\n"
             "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
             "message['content'] | trim + '<|eot_id|>' }}{%- endfor %}\n"
             "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}\n",
    # Expressions, filters, tests, loops (one feature each, as the unit tests have them).
    "loops": "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.length }}{% if loop.first %}F{% endif %}"
             "{% if loop.last %}L{% endif %},{% endfor %}{% for m in messages if m.role == 'user' %}{{ m.content }}"
             "{% endfor %}{% for m in [] %}x{% else %}empty{% endfor %}{% for k, v in {'a': 1, 'b': 2}.items() %}"
             "{{ k }}={{ v }};{% endfor %}{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}"
             "{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
    "operators": "{% if 1 > 2 %}a{% elif 2 >= 2 and not false %}b{% else %}c{% endif %}"
                 "{{ 'ell' in 'hello' }} {{ 'x' not in ['x'] }} {{ 1 == 1.0 }} {{ none is none }} {{ 0 or 'd' }}"
                 "{{ 'a' + 'b' ~ 3 ~ none }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 * -3 }}"
                 "{{ 'yes' if messages else 'no' }} {{ foo is defined }} {{ 'a' is string }} {{ 3 is number }}"
                 "{{ messages[0] is mapping }} {{ messages is iterable }}",
    "filters": "[{{ '  x \\n'|trim }}] {{ messages|length }} {{ 'Ab'|lower }}{{ 'Ab'|upper }} {{ [1,2]|first }}"
               "{{ [1,2]|last }} {{ 5|string + '!' }} {{ ['a','b']|join(', ') }} {{ undefined_var|default('d') }}"
               "{{ ''|default('e', true) }} {{ {'name': 'f', 'args': [1, 'x', none, true]}|tojson }}"
               "{{ {'a': [1]}|tojson(indent=2) }} {{ 'x'|capitalize }} {{ '7'|int + 1 }}"
               "{{ [3,1,2]|reverse|list }} {{ -3|abs }} {{ 'aXb'|replace('X', '-') }} {{ {'k': 1}|items|list }}"
               "{{ messages|count }} {{ '<b>'|safe }}",
    "strings": "{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('bc') }} {{ 'a</think>b'.split('</think>')[-1] }}"
               " [{{ '\\n\\nx\\n'.strip('\\n') }}] [{{ '  x  '.rstrip() }}] {{ 'a b  c'.split()|length }}"
               " {{ 'aXbX'.replace('X', '-') }} {{ 'abcdef'[1:4] }} {{ 'abc'[::-1] }} {{ [1,2,3,4][::2] }}"
               " {{ messages[-1].content }} {{ messages[9] is defined }} {{ 'x'.upper() }} {{ 'AB'.lower() }}",
    "whitespace": "{# comment #}\n{% for m in messages %}\n    {% if m.role == 'user' %}\n{{ m.content }}\n    "
                  "{% endif %}\n{% endfor %}\na  {%- if true -%}  b  {%- endif -%}  c\n{{ 'x' }}\n{{- 'y' }}\n"
                  "{% generation %}{{ 'g' }}{% endgeneration %}",
    "namespace": "{% set ns = namespace(n=0, found=false) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                 "{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.found }}"
                 "{% set x = 1 %}{% for m in messages %}{% set x = 2 %}{% endfor %}{{ x }}"
                 "{% set d = {'k': [1, 2, {'z': none}]} %}{{ d.k[2].z is none }}{{ d['k']|length }}",
}


def chat_template_seeds():
    for name, src in TEMPLATES.items():
        write("chat_template", name, src)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    safetensors_seeds()
    config_seeds()
    lora_seeds()
    jsonl_seeds()
    recipe_seeds()
    tokenizer_seeds()
    chat_template_seeds()
    checkpoint_seeds()
    total = 0
    for d in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, d))
        size = sum(os.path.getsize(os.path.join(OUT, d, f)) for f in files)
        total += size
        print(f"[corpus] {d}: {len(files)} seeds, {size} bytes")
    print(f"[corpus] total {total} bytes")


# ---- checkpoint directories -------------------------------------------------------------
RNG_STATE_BYTES = 5056  # torch's CPU generator state (at::CPUGeneratorImpl::get_state().numel())


def checkpoint_dir(world_size=1, adapters=False, adam_steps=None):
    model = safetensors([("model.embed_tokens.weight", "F32", [2, 2], [1, 2, 3, 4]),
                         ("model.norm.weight", "BF16", [2], [1, 1])], {"format": "pt"})
    moments = [("model.embed_tokens.weight.exp_avg", "F32", [2, 2], [0] * 4),
               ("model.embed_tokens.weight.exp_avg_sq", "F32", [2, 2], [0] * 4)]
    steps = {"model.embed_tokens.weight": 3}
    files = {}
    ad = None
    if adapters:
        ad = safetensors([("lora_A", "F32", [1, 2], [0.5, 0.5])])
        moments += [("lora_A.exp_avg", "F32", [1, 2], [0, 0]), ("lora_A.exp_avg_sq", "F32", [1, 2], [0, 0])]
        steps["lora_A"] = 3
    optim = safetensors(moments, {"format": "selfrl-adamw"})
    rng = safetensors([(f"rank_{r}.cpu", "U8", [RNG_STATE_BYTES], [0] * RNG_STATE_BYTES)
                       for r in range(world_size)], {"format": "selfrl-rng"})
    state = json.dumps({"format_version": 1, "step": 3, "data_position": 24, "world_size": world_size,
                        "extra": {"iteration": 1, "temperature": 0.9},
                        "optimizer": {"steps_taken": 3, "steps_skipped": 0,
                                      "adam_steps": steps if adam_steps is None else adam_steps},
                        "scheduler": {"type": 0, "learning_rate": 0.001, "warmup_steps": 0, "total_steps": 10,
                                      "next_learning_rate": 0.001}}, indent=1).encode()
    parts = {"trainer_state.json": state, "model.safetensors": model, "optimizer.safetensors": optim,
             "rng.safetensors": rng}
    if ad is not None:
        parts["adapters.safetensors"] = ad
    files = {k: len(v) for k, v in parts.items()}
    complete = json.dumps({"step": 3, "files": files}).encode()
    order = ["trainer_state.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors",
             "adapters.safetensors"]
    return join(complete, *[parts[k] for k in order if k in parts])


def checkpoint_seeds():
    write("checkpoint", "complete", checkpoint_dir())
    write("checkpoint", "adapters", checkpoint_dir(adapters=True))
    write("checkpoint", "marker_only", json.dumps({"step": 1, "files": {"trainer_state.json": 2}}) + "\n#8<\n{}")


if __name__ == "__main__":
    sys.exit(main())
